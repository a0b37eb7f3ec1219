"""Text metrics: entity-level precision/recall/F1 over BIO tags, and perplexity.

Both keep only sums (float64 tensors), so distributed ranks combine them by summing, like the
core's metrics. Entity spans follow the CoNLL-2000 ``conlleval`` rules that seqeval's default
mode also uses: an ``I-X`` that does not continue an ``X`` entity starts a new one.
"""
from __future__ import annotations

from fmkit import Metric
from fmkit.components import Params


class EntityParams(Params):
    #: also report precision/recall/F1 per entity type
    per_type: bool = True


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``. IOB2, IOB1, BIOES prefixes accepted."""
    if tag in ("O", "") or len(tag) < 2 or tag[1] not in "-_":
        return ("O", "") if tag in ("O", "") else ("I", tag)
    return tag[0].upper(), tag[2:]


def entity_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """Entities ``(type, start, end_exclusive)`` in a tag sequence (conlleval chunking rules)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, t = split_tag(tag)
        ends = start is not None and (prefix in ("B", "S", "O") or t != kind)
        if ends:
            spans.add((kind, start, i))
            start, kind = None, None
        if prefix in ("B", "S") or (prefix in ("I", "E") and start is None):
            start, kind = i, t
        if prefix in ("E", "S") and start is not None:  # BIOES closes here
            spans.add((kind, start, i + 1))
            start, kind = None, None
    return spans


class EntityScores(Metric):
    """Entity-level (exact span and type) micro precision, recall and F1, as seqeval reports them.

    ``preds``: scores ``(N, T, C)``; ``targets``: tag ids ``(N, T)`` with -100 on positions that are
    not scored (special tokens, sub-words after a word's first): those are skipped in both.
    """

    def reset(self):
        import torch

        self.labels = list(self.context.get("labels") or [])
        self.counts = torch.zeros(len(self.types()) + 1, 3, dtype=torch.float64)  # tp, n_pred, n_gold

    def types(self) -> list[str]:
        return sorted({split_tag(lab)[1] for lab in self.labels} - {""})

    def update(self, preds, targets):
        pred_ids = preds.detach().argmax(-1).cpu()
        targets = targets.detach().cpu()
        index = {t: i + 1 for i, t in enumerate(self.types())}
        for p_row, t_row in zip(pred_ids, targets):
            keep = t_row != -100
            gold = entity_spans([self.labels[i] for i in t_row[keep].tolist()])
            pred = entity_spans([self.labels[i] for i in p_row[keep].tolist()])
            for spans, col in ((pred, 1), (gold, 2)):
                for kind, _, _ in spans:
                    self.counts[0, col] += 1
                    self.counts[index.get(kind, 0), col] += 1 if kind in index else 0
            for kind, _, _ in pred & gold:
                self.counts[0, 0] += 1
                if kind in index:
                    self.counts[index[kind], 0] += 1

    @staticmethod
    def _prf(row) -> tuple[float, float, float]:
        tp, n_pred, n_gold = (float(x) for x in row)
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def compute(self):
        p, r, f = self._prf(self.counts[0])
        out = {"entity_precision": p, "entity_recall": r, "entity_f1": f}
        if self.params.per_type:
            for i, kind in enumerate(self.types(), 1):
                out[f"entity_f1_{kind}"] = self._prf(self.counts[i])[2]
        return out

    def state_tensors(self):
        return [self.counts]

    def artifacts(self):
        rows = []
        for i, kind in enumerate(self.types(), 1):
            p, r, f = self._prf(self.counts[i])
            rows.append({"label": kind, "precision": p, "recall": r, "f1": f, "support": int(self.counts[i, 2])})
        return {"per_class": rows}


class PerplexityParams(Params):
    pass


class Perplexity(Metric):
    """``exp`` of the mean next-token negative log-likelihood over scored tokens.

    ``preds``: per-token NLL ``(N, T)``; ``targets``: a mask of the tokens that count ``(N, T)``
    (the causal-lm task's ``metric_inputs`` gives both). Also reports that mean as ``token_nll``.
    """

    higher_is_better = False

    def reset(self):
        import torch

        self.sums = torch.zeros(2, dtype=torch.float64)

    def update(self, preds, targets):
        mask = targets.detach().cpu().double()
        self.sums[0] += (preds.detach().cpu().double() * mask).sum()
        self.sums[1] += mask.sum()

    def compute(self):
        import math

        nll = float(self.sums[0] / self.sums[1].clamp(min=1))
        return {"perplexity": math.exp(min(nll, 700.0)), "token_nll": nll}

    def state_tensors(self):
        return [self.sums]
