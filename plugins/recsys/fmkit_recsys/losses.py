"""Losses over candidate items for large catalogues: sampled softmax and BPR.

Both take ``(scores, relevance)``: ``scores`` ``[n, C]`` over ``C`` candidate items (all items, or
the positive and sampled negatives) and ``relevance`` ``[n, C]``: positive where an item is a
target, 0 where it is not, negative where it is to be ignored (a sampled negative that happens to be
the target). They carry ``fmkit_targets = "relevance"`` so the ``sequential-recommendation`` task hands
them relevance rather than class indices (full softmax is fmkit's ``cross-entropy``).
"""
from __future__ import annotations

from fmkit.components import Params


class SampledSoftmaxParams(Params):
    #: softmax temperature (scores are divided by it)
    temperature: float = 1.0


class BPRParams(Params):
    pass


def sampled_softmax(params: SampledSoftmaxParams, context: dict):
    """Softmax cross-entropy restricted to the candidates: ``-log(sum of positives' exp / sum of all)``.
    With uniformly sampled negatives this is the sampled softmax of Jean et al. (2015); rows
    without a positive are skipped."""
    import torch

    tau = params.temperature

    def loss(outputs, targets):
        s = (outputs.float() / tau).masked_fill(targets < 0, float("-inf"))
        pos = targets > 0
        has = pos.any(1)
        if not bool(has.any()):
            return (s * 0).sum()
        lse_all = torch.logsumexp(s, 1)
        lse_pos = torch.logsumexp(s.masked_fill(~pos, float("-inf")), 1)
        return (lse_all - lse_pos)[has].mean()

    loss.fmkit_targets = "relevance"
    return loss


def bpr(params: BPRParams, context: dict):
    """Bayesian personalised ranking (Rendle et al., 2009): ``-log sigmoid(s_pos - s_neg)`` over every
    pair of a more relevant and a less relevant candidate in a row, averaged."""
    import torch
    import torch.nn.functional as F

    def loss(outputs, targets):
        s, r = outputs.float(), targets.float()
        n_pos = int((r > 0).sum(1).max()) if r.numel() else 0
        if n_pos == 0:
            return (s * 0).sum()
        idx = r.topk(n_pos, dim=1).indices  # each row's positives first: [n, P] (P is small)
        r_p, s_p = r.gather(1, idx), s.gather(1, idx)
        pairs = (r_p[:, :, None] > r[:, None, :]) & (r_p[:, :, None] > 0) & (r[:, None, :] >= 0)  # [n, P, C]
        if not bool(pairs.any()):
            return (s * 0).sum()
        diff = s_p[:, :, None] - s[:, None, :]
        return -(F.logsigmoid(diff) * pairs).sum() / pairs.sum()

    loss.fmkit_targets = "relevance"
    return loss
