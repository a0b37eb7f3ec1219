"""``tabular-mlp`` (an MLP over numeric columns and categorical embeddings) and the ``focal`` loss."""

import torch
from fmkit import Params
from torch import nn


class MLPParams(Params):
    #: width of each hidden layer, input side first
    hidden: list[int] = [64, 64]
    #: width of each categorical column's embedding (at most its number of values)
    embedding_dim: int = 8
    #: share of activations zeroed after each hidden layer while training
    dropout: float = 0.1


class TabularMLP(nn.Module):
    """Sized by the task's ``model_context()``: ``num_numeric``, ``cardinalities``, ``num_labels``/``num_targets``."""

    fmkit_head_prefixes = ("head",)  # what train.head_lr and backbone freezing treat as the head

    def __init__(self, params: MLPParams, context: dict):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(params.embedding_dim, n)) for n in context["cardinalities"])
        width, layers = context["num_numeric"] + sum(e.embedding_dim for e in self.embeddings), []
        for h in params.hidden:
            layers, width = layers + [nn.Linear(width, h), nn.ReLU(), nn.Dropout(params.dropout)], h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, context.get("num_labels") or context["num_targets"])

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric] + [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))


class FocalParams(Params):
    #: how much easy examples are down-weighted, by (1 - p) ** gamma; 0 is cross-entropy
    gamma: float = 2.0


def focal_loss(params: FocalParams, context: dict):
    """Focal loss of class logits ``[B, C]`` against class indices ``[B]`` (-100: ignored)."""
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        keep = targets != -100
        logp = torch.log_softmax(logits.float()[keep], -1).gather(1, targets[keep][:, None]).squeeze(1)
        return (-(1 - logp.exp()) ** params.gamma * logp).sum() / keep.sum().clamp(min=1)
    return loss
