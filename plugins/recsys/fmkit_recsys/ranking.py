"""Full-ranking metrics: HR@K, NDCG@K and MRR of one held-out target among every item, streaming.

The task hands over the scores of all items with the history (and the padding column) set to
``-inf``, so the target competes with every item the user has not interacted with: no sampled
negatives, which overstate results and can even reorder models (Krichene & Rendle, KDD 2020).
Ties are split: a target tied with ``t`` other items ranks ``t / 2`` places lower than the items
it beats, so a model that scores everything alike gets the rank of a random guess, never the top.
A target the model cannot rank (unknown to training, or in the history) counts as a miss.
"""
from __future__ import annotations

import math

import torch
from fmkit.components import Params
from fmkit.interfaces import Metric


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among its row's scores (ties split); ``inf`` for a miss."""
    scores = scores.float()
    valid = (targets >= 0) & (targets < scores.shape[1])
    t = targets.clamp(0, scores.shape[1] - 1).long()
    s_t = scores.gather(1, t[:, None])
    higher = (scores > s_t).sum(1).float()
    ties = (scores == s_t).sum(1).float() - 1
    rank = higher + ties / 2
    miss = ~valid | ~torch.isfinite(s_t[:, 0])
    return torch.where(miss, torch.full_like(rank, math.inf), rank)


class RankingParams(Params):
    #: cut-offs of HR@K and NDCG@K
    ks: list[int] = [5, 10, 20]
    #: also report the mean reciprocal rank (over the full list)
    mrr: bool = True


class RankingMetrics(Metric):
    """HR@K (hit rate: the target is in the top K), NDCG@K (1 / log2(rank + 2) when in the top K) and MRR."""

    name = "ranking"

    def __init__(self, params: RankingParams, context: dict | None = None):
        if not params.ks or min(params.ks) < 1:
            raise ValueError(f"ranking: ks must be positive cut-offs; got {params.ks}")
        super().__init__(params, context)

    def reset(self) -> None:
        n = len(self.params.ks)
        self.hits, self.ndcg = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        self.rr, self.count = torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)

    def update(self, preds, targets) -> None:
        ranks = target_ranks(preds.detach().cpu(), targets.detach().cpu().reshape(-1)).double()
        for j, k in enumerate(self.params.ks):
            inside = ranks < k
            self.hits[j] += inside.sum()
            self.ndcg[j] += torch.where(inside, 1.0 / torch.log2(ranks.clamp(max=1e9) + 2), 0.0).sum()
        self.rr += torch.where(torch.isfinite(ranks), 1.0 / (ranks.clamp(max=1e18) + 1), 0.0).sum()
        self.count += len(ranks)

    def compute(self) -> dict[str, float]:
        n = max(float(self.count), 1.0)
        out = {}
        for j, k in enumerate(self.params.ks):
            out[f"hr@{k}"] = float(self.hits[j]) / n
            out[f"ndcg@{k}"] = float(self.ndcg[j]) / n
        if self.params.mrr:
            out["mrr"] = float(self.rr) / n
        return out

    def state_tensors(self):
        return [self.hits, self.ndcg, self.rr, self.count]
