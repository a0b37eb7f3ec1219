"""SASRec and BERT4Rec: transformers' BERT blocks over item sequences.

Both embed items (plus learnt positions), run ``transformers.models.bert.BertEncoder`` with a mask
the model builds itself (causal for SASRec, Kang & McAuley 2018; bidirectional for BERT4Rec,
Sun et al. 2019) and score items against the same item vectors that embed them (tied output).
``forward(input_ids)`` returns the scores of every item (column 0 is padding) for the item after
the history; training calls it with ``positions`` (the positions that have a target) and,
for sampled losses, ``positives``/``negatives`` to score only those candidates.
"""
from __future__ import annotations

import contextlib

import torch
from fmkit.components import Params
from fmkit.errors import UsageError
from torch import nn


class SeqModelParams(Params):
    #: size of each item's vector and of the transformer's states (must divide by num_heads)
    hidden_size: int = 64
    #: transformer layers
    num_layers: int = 2
    #: attention heads per layer
    num_heads: int = 2
    #: feed-forward width (default 4 x hidden_size)
    intermediate_size: int | None = None
    #: dropout probability on the embeddings and inside the transformer layers
    dropout: float = 0.2
    #: dropout probability on the attention weights (null: the same as dropout)
    attention_dropout: float | None = None
    #: transformers' attention kernel ("eager" or "sdpa"; exports always trace eager, which was also
    #: faster on CPU with this model's masks)
    attention: str = "eager"
    #: standard deviation of the random initial weights (item and position embeddings, transformer layers)
    init_range: float = 0.02


def _dims(context: dict) -> tuple[int, int]:
    if "num_items" not in context:
        raise UsageError("this model ranks items: use it with the sequential-recommendation task")
    return int(context["num_items"]), int(context["max_length"])


class ItemEmbedding(nn.Module):
    """One learnt vector per item index (0: padding, N+1: mask token)."""

    def __init__(self, rows: int, dim: int, init_range: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(rows, dim) * init_range)

    def table(self) -> torch.Tensor:
        return self.weight


class SequenceRecommender(nn.Module):
    """Item + position embeddings → BERT encoder → scores over items (tied to the item embeddings)."""

    fmkit_objective = "causal"
    fmkit_head_prefixes = ("output_bias",)

    def __init__(self, params: SeqModelParams, context: dict, items: nn.Module | None = None):
        super().__init__()
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertEncoder

        self.num_items, self.max_length = _dims(context)
        d = params.hidden_size
        if d % params.num_heads:
            raise UsageError(f"model.hidden_size {d} must be divisible by model.num_heads {params.num_heads}")
        self.items = items if items is not None else ItemEmbedding(self.num_items + 2, d, params.init_range)
        self.positions = nn.Embedding(self.max_length, d)
        nn.init.normal_(self.positions.weight, std=params.init_range)
        self.norm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(params.dropout)
        cfg = BertConfig(vocab_size=1, hidden_size=d, num_hidden_layers=params.num_layers,
                         num_attention_heads=params.num_heads, intermediate_size=params.intermediate_size or 4 * d,
                         hidden_dropout_prob=params.dropout,
                         attention_probs_dropout_prob=params.dropout if params.attention_dropout is None
                         else params.attention_dropout, max_position_embeddings=self.max_length,
                         initializer_range=params.init_range, hidden_act="gelu")
        cfg._attn_implementation = params.attention
        self.config = cfg
        self.encoder = BertEncoder(cfg)
        self.encoder.apply(self._init)
        self.output_bias = nn.Parameter(torch.zeros(self.num_items + 1))

    def _init(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)

    def fmkit_layer_prefixes(self) -> list[str]:
        return ["items", *[f"encoder.layer.{i}." for i in range(len(self.encoder.layer))]]

    @contextlib.contextmanager
    def fmkit_export_mode(self):
        """Trace plain ("eager") attention: the same outputs, a simpler graph for ONNX Runtime."""
        before = self.config._attn_implementation
        self.config._attn_implementation = "eager"
        try:
            yield
        finally:
            self.config._attn_implementation = before

    # ------------------------------------------------------------------ encoder
    def _mask(self, input_ids: torch.Tensor, dtype) -> torch.Tensor:
        """Additive attention mask ``[B, 1, L, L]``: padding keys hidden (and future keys when causal);
        every position may attend to itself, so no row is empty."""
        L = input_ids.shape[1]
        allowed = (input_ids > 0)[:, None, None, :].expand(-1, 1, L, -1)
        idx = torch.arange(L, device=input_ids.device)  # (no eye/tril: ONNX Runtime lacks them for booleans)
        if self.fmkit_objective == "causal":
            allowed = allowed & (idx[:, None] >= idx[None, :])[None, None]
        allowed = allowed | (idx[:, None] == idx[None, :])[None, None]
        return torch.zeros(allowed.shape, dtype=dtype, device=input_ids.device).masked_fill(~allowed, torch.finfo(dtype).min)

    def item_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The item table ``[N + 2, d]`` (padding, items, mask token) and the output bias ``[N + 1]``
        that one forward pass uses (a subclass may perturb them in training)."""
        return self.items.table(), self.output_bias

    def encode(self, input_ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """The encoder's states for ``input_ids``, embedded with ``table`` (from :meth:`item_vectors`)."""
        L = input_ids.shape[1]
        pos = torch.arange(self.max_length - L, self.max_length, device=input_ids.device)  # right-aligned
        h = table[input_ids] + self.positions(pos)[None]
        h = self.dropout(self.norm(h))
        h = h * (input_ids > 0).unsqueeze(-1).to(h.dtype)
        return self.encoder(h, attention_mask=self._mask(input_ids, h.dtype)).last_hidden_state

    def last_input(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The sequence whose last position predicts the next item."""
        return input_ids

    def forward(self, input_ids, positions=None, positives=None, negatives=None):
        full, bias = self.item_vectors()
        table = full[: self.num_items + 1]
        if positions is None:
            h = self.encode(self.last_input(input_ids), full)[:, -1]
            return h @ table.t() + bias
        h = self.encode(input_ids, full)[positions]  # [M, d]: only positions with a target
        if negatives is None:
            return h @ table.t() + bias
        pos = (h * table[positives]).sum(-1, keepdim=True) + bias[positives][:, None]
        return torch.cat([pos, h @ table[negatives].t() + bias[negatives]], 1)


class SASRec(SequenceRecommender):
    """SASRec (Kang & McAuley, 2018): causal self-attention, every position predicts the next item."""

    fmkit_objective = "causal"


class BERT4Rec(SequenceRecommender):
    """BERT4Rec (Sun et al., 2019): bidirectional self-attention trained to fill masked items; the
    next item is predicted by appending the mask token to the history."""

    fmkit_objective = "masked"

    def last_input(self, input_ids):
        mask = torch.full_like(input_ids[:, :1], self.num_items + 1)
        return torch.cat([input_ids[:, 1:], mask], 1)
