"""Baselines fitted when built (nothing to train): popularity, item-kNN and EASE.

Each is fitted on the task's training sequences (``model_context()["train_sequences"]``) and keeps
what it learnt in buffers, so the run's checkpoint, exports and serving carry it like any weights;
fmkit evaluates a model without trainable parameters without training it. A recipe compares
against them with one line (``model: {name: ease}``).
"""
from __future__ import annotations

import numpy as np
import torch
from fmkit.components import Params
from fmkit.errors import UsageError
from torch import nn


def _fit_data(context: dict) -> tuple[int, list[list[int]] | None]:
    if "num_items" not in context:
        raise UsageError("this baseline ranks items: use it with the sequential-recommendation task")
    n = int(context["num_items"])
    if context.get("inference"):
        return n, None  # fitted values are loaded next
    seqs = context.get("train_sequences")
    if seqs is None:
        raise UsageError("the baseline is fitted on the task's training sequences, which this task has not seen; "
                         "build it in a training run")
    return n, seqs


def user_item_matrix(seqs: list[list[int]], n: int) -> np.ndarray:
    """Binary users x (items + 1) matrix (column 0, padding, stays empty)."""
    x = np.zeros((len(seqs), n + 1), dtype=np.float32)
    for u, s in enumerate(seqs):
        x[u, [i for i in s if i > 0]] = 1.0
    return x


class _HistoryLinear(nn.Module):
    """Scores = multi-hot(history) @ weights, the form item-kNN and EASE share."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, input_ids, positions=None, positives=None, negatives=None):
        x = torch.zeros(input_ids.shape[0], self.weights.shape[0], dtype=self.weights.dtype, device=input_ids.device)
        x = x.scatter(1, input_ids, 1.0)
        x = x * (torch.arange(self.weights.shape[0], device=input_ids.device) > 0).to(x.dtype)  # drop padding
        return x @ self.weights


class NoParams(Params):
    pass


class Popularity(nn.Module):
    """Most interacted-with items first (the same list for everyone, minus their history)."""

    def __init__(self, params: NoParams, context: dict):
        super().__init__()
        n, seqs = _fit_data(context)
        counts = torch.zeros(n + 1)
        if seqs is not None:
            for s in seqs:
                for i in s:
                    if i > 0:
                        counts[i] += 1
        self.register_buffer("scores", torch.log1p(counts))

    def forward(self, input_ids, positions=None, positives=None, negatives=None):
        return self.scores[None].expand(input_ids.shape[0], -1)


class ItemKNNParams(Params):
    #: neighbours kept per item (the most similar by cosine similarity of their user sets)
    neighbours: int = 100
    #: shrinkage of the similarity for items with few users in common
    shrink: float = 10.0


class ItemKNN(_HistoryLinear):
    """Item-based k-nearest neighbours (Sarwar et al., 2001): an item scores the summed cosine
    similarity to the history's items, keeping each history item's ``neighbours`` nearest."""

    def __init__(self, params: ItemKNNParams, context: dict):
        n, seqs = _fit_data(context)
        w = np.zeros((n + 1, n + 1), dtype=np.float32)
        if seqs is not None:
            x = user_item_matrix(seqs, n)
            co = x.T @ x
            norms = np.sqrt(np.diag(co))
            sim = co / (np.outer(norms, norms) + params.shrink + 1e-12)
            np.fill_diagonal(sim, 0.0)
            k = min(params.neighbours, n)
            keep = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            rows = np.arange(n + 1)[:, None]
            w[rows, keep] = sim[rows, keep]
            w[0] = 0.0
        super().__init__(torch.from_numpy(w))


class EASEParams(Params):
    #: L2 regularisation (Steck 2019 tunes it on validation; MovieLens-scale data: hundreds)
    l2: float = 200.0


class EASE(_HistoryLinear):
    """EASE (Steck, 2019): the closed-form item-item linear model ``B = -P / diag(P)`` with
    ``P = (X^T X + l2 I)^-1`` and a zero diagonal, the strongest simple baseline on MovieLens."""

    def __init__(self, params: EASEParams, context: dict):
        n, seqs = _fit_data(context)
        w = np.zeros((n + 1, n + 1), dtype=np.float32)
        if seqs is not None:
            x = user_item_matrix(seqs, n)[:, 1:].astype(np.float64)
            g = x.T @ x
            g[np.diag_indices(n)] += params.l2
            p = np.linalg.inv(g)
            b = -p / np.diag(p)[None, :]
            np.fill_diagonal(b, 0.0)
            w[1:, 1:] = b
        super().__init__(torch.from_numpy(w))
