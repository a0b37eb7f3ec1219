"""The plugin's components: parameter models (pydantic) and factories ``factory(params, context)``."""
from __future__ import annotations

from fmkit import Params


class BagParams(Params):
    dim: int = 64


class FocalParams(Params):
    gamma: float = 2.0


def bag_of_embeddings(params: BagParams, context: dict):
    import torch

    class BagOfEmbeddings(torch.nn.Module):
        fmkit_head_prefixes = ("head",)

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(int(context.get("vocab_size") or 30522), params.dim, mode="sum")
            self.head = torch.nn.Linear(params.dim, int(context.get("num_labels") or 2))

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            mask = attention_mask.float() if attention_mask is not None else input_ids.new_ones(input_ids.shape).float()
            w = mask / mask.sum(-1, keepdim=True).clamp(min=1)
            return self.head(self.emb(input_ids, per_sample_weights=w))

    return BagOfEmbeddings()


def focal(params: FocalParams, context: dict):
    import torch.nn.functional as F

    def loss(outputs, targets):
        # -100 marks a target to ignore (a label unseen in training, padding): leave it out of the mean
        keep = targets.long() != -100
        logp = F.log_softmax(outputs.float()[keep], -1)
        logp_t = logp.gather(-1, targets.long()[keep].unsqueeze(-1)).squeeze(-1)
        if logp_t.numel() == 0:
            return outputs.float().sum() * 0.0  # no target to learn from in this batch
        return (-(1 - logp_t.exp()) ** params.gamma * logp_t).mean()

    return loss
