"""Built-in streaming metrics, checked against scikit-learn (tests/test_metrics_reference.py).

What they receive (a task's :meth:`fmkit.Task.metric_inputs`):

- classification: ``preds`` are class scores ``(N, C)`` (logits or probabilities; only their
  order matters, except for multi-label and binary thresholds, which apply ``sigmoid``), or
  one score per example ``(N,)`` for a binary task (a logit: ``sigmoid(score) >= threshold`` is
  class 1), or class indices ``(N,)`` of an integer dtype; ``targets`` are class indices
  ``(N,)`` or multi-hot ``(N, C)`` (multi-label). Leading axes beyond the first are more
  examples: scores ``(N, T, C)`` with targets ``(N, T)`` count ``N * T`` predictions. A negative
  target (such as -1, or torch's ``ignore_index`` -100) marks a prediction to skip.
- regression: ``preds`` and ``targets`` are tensors of the same shape; ``targets`` may also be a
  dict whose ``"target"`` entry is the tensor (a task adds what its own metrics need beside it).

Undefined values follow scikit-learn's ``zero_division=0`` for precision, recall and F1; ROC-AUC
of a class with only positives or only negatives is skipped, and ``nan`` when no class has both.
All state is sums kept in float64 tensors, so distributed ranks combine by summing.
"""
from __future__ import annotations

from typing import Literal

from ..components import Params
from ..interfaces import Metric


class ClassParams(Params):
    #: probability (after sigmoid) at which a multi-label or single-score binary prediction is positive
    threshold: float = 0.5


class AveragedParams(ClassParams):
    #: macro: the plain mean over classes; micro: from counts pooled over all classes;
    #: weighted: the mean over classes weighted by how many true examples each has
    average: Literal["macro", "micro", "weighted"] = "macro"


class TopKParams(ClassParams):
    #: a prediction counts as correct when the true class is among this many highest scores
    k: int = 5


class AUCParams(ClassParams):
    #: histogram bins over ``sigmoid(log-odds / 4)``; the AUC is exact up to pairs sharing a bin
    bins: int = 1000


class NoMetricParams(Params):
    pass


class RegressionParams(Params):
    #: ``scaled``: on the values the model predicts; ``original``: after the task's
    #: :meth:`fmkit.Task.inverse_transform`, in the data's own units (the key gets ``_original``)
    units: Literal["scaled", "original"] = "scaled"


def _is_multilabel(preds, targets) -> bool:
    return targets.dim() == preds.dim() and targets.shape == preds.shape and preds.dim() == 2


def _flatten(preds, targets):
    """Scores ``(N, ..., C)`` and targets ``(N, ...)`` as ``(M, C)`` and ``(M,)``, skipped ones dropped."""
    preds, targets = preds.detach().cpu(), targets.detach().cpu()
    if preds.dim() > 2 or (preds.dim() == 2 and targets.dim() == 2 and not _is_multilabel(preds, targets)):
        preds, targets = preds.reshape(-1, preds.shape[-1]), targets.reshape(-1)
    if targets.is_floating_point() and targets.dim() == 2:  # soft targets (mixup): their argmax
        targets = targets.argmax(-1)
    keep = targets >= 0
    return preds[keep], targets[keep].long()


class _ClassStats(Metric):
    """Shared per-class counts: confusion matrix (multi-class) or tp/fp/fn (multi-label)."""

    higher_is_better = True

    def reset(self) -> None:
        import torch

        c = int(self.context.get("num_labels") or 0)
        self.num_classes = c
        self.confusion = torch.zeros(c, c, dtype=torch.float64) if c else None
        self.ml = None  # (3, C): tp, fp, fn for multi-label
        self.samples = torch.zeros(2, dtype=torch.float64)  # exact matches, total (multi-label)

    def _ensure(self, c: int) -> None:
        import torch

        if self.confusion is None or self.confusion.shape[0] < c:
            new = torch.zeros(c, c, dtype=torch.float64)
            if self.confusion is not None:
                k = self.confusion.shape[0]
                new[:k, :k] = self.confusion
            self.confusion, self.num_classes = new, c

    def update(self, preds, targets) -> None:
        import torch

        if _is_multilabel(preds, targets):
            p = torch.sigmoid(preds.detach().cpu().float()) >= self.params.threshold
            t = targets.detach().cpu() > 0.5
            if self.ml is None:
                self.ml = torch.zeros(3, preds.shape[1], dtype=torch.float64)
            self.ml[0] += (p & t).sum(0)
            self.ml[1] += (p & ~t).sum(0)
            self.ml[2] += (~p & t).sum(0)
            self.samples += torch.tensor([(p == t).all(1).sum().item(), len(p)], dtype=torch.float64)
            return
        preds, targets = _flatten(preds, targets)
        if preds.dim() == 2:
            self._ensure(preds.shape[1])
            pred_idx = preds.argmax(-1)
        elif preds.is_floating_point():  # one binary score (a logit) per example
            self._ensure(2)
            pred_idx = (torch.sigmoid(preds.double()) >= self.params.threshold).long()
        else:  # class indices
            self._ensure(int(max(preds.max().item(), targets.max().item())) + 1 if len(preds) else 2)
            pred_idx = preds.long()
        if len(targets) and int(targets.max()) >= self.num_classes:
            self._ensure(int(targets.max()) + 1)
        idx = targets * self.num_classes + pred_idx
        self.confusion += torch.bincount(idx, minlength=self.num_classes**2).reshape(self.num_classes, -1).double()

    def state_tensors(self):
        return [t for t in (self.confusion, self.ml, self.samples) if t is not None]

    def counts(self):
        """Per-class true positives, false positives, false negatives and support."""
        if self.ml is not None:
            tp, fp, fn = self.ml
            return tp, fp, fn, tp + fn
        cm = self.confusion
        tp = cm.diag()
        return tp, cm.sum(0) - tp, cm.sum(1) - tp, cm.sum(1)


def _safe_div(a, b):
    import torch

    return torch.where(b > 0, a / b.clamp(min=1e-12), torch.zeros_like(a))


class Accuracy(_ClassStats):
    """Share of correct predictions (exact match for multi-label)."""

    def compute(self):
        if self.ml is not None:
            correct, total = self.samples.tolist()
        elif self.confusion is None:
            return {"accuracy": 0.0}
        else:
            correct, total = self.confusion.diag().sum().item(), self.confusion.sum().item()
        return {"accuracy": correct / total if total else 0.0}


class _PRF(_ClassStats):
    which = "f1"

    def compute(self):
        if self.confusion is None and self.ml is None:
            return {f"{self.which}_{self.params.average}": 0.0}
        tp, fp, fn, support = self.counts()
        avg = self.params.average
        if avg == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        value = {"precision": precision, "recall": recall, "f1": f1}[self.which]
        if avg == "macro":
            # as scikit-learn: every label (multi-label), or every class seen in truth or predictions
            present = support >= 0 if self.ml is not None else (support > 0) | (fp > 0)
            value = value[present].mean() if present.any() else value.sum() * 0
        elif avg == "weighted":
            value = (value * support).sum() / support.sum().clamp(min=1)
        return {f"{self.which}_{avg}": float(value)}

    def artifacts(self):
        if self.confusion is None and self.ml is None:
            return {}
        tp, fp, fn, support = self.counts()
        p, r = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
        f = _safe_div(2 * p * r, p + r)
        labels = self.context.get("labels") or [str(i) for i in range(len(tp))]
        rows = [
            {"label": labels[i] if i < len(labels) else str(i), "precision": float(p[i]), "recall": float(r[i]),
             "f1": float(f[i]), "support": int(support[i])}
            for i in range(len(tp))
        ]
        return {"per_class": rows}


class Precision(_PRF):
    """Precision, averaged macro, micro or weighted over classes."""

    which = "precision"


class Recall(_PRF):
    """Recall, averaged macro, micro or weighted over classes."""

    which = "recall"


class F1(_PRF):
    """F1, averaged macro, micro or weighted over classes."""

    which = "f1"


class ConfusionMatrix(_ClassStats):
    """The confusion matrix (rows: truth, columns: prediction), reported as an artifact."""

    def compute(self):
        return {}

    def artifacts(self):
        if self.confusion is None:
            return {}
        labels = self.context.get("labels") or [str(i) for i in range(self.num_classes)]
        return {"confusion_matrix": {"labels": labels, "matrix": self.confusion.long().tolist()}}


class TopKAccuracy(Metric):
    """Share of examples whose true class is among the ``k`` highest scores.

    Ties are broken as scikit-learn's ``top_k_accuracy_score`` does: the higher class index first.
    """

    higher_is_better = True

    def reset(self):
        import torch

        self.sums = torch.zeros(2, dtype=torch.float64)

    def update(self, preds, targets):
        import torch

        preds, targets = _flatten(preds, targets)
        k = min(self.params.k, preds.shape[-1])
        order = torch.argsort(preds, dim=-1, stable=True).flip(-1)  # ties: higher index first
        hit = (order[:, :k] == targets[:, None]).any(-1)
        self.sums[0] += hit.sum()
        self.sums[1] += len(hit)

    def compute(self):
        return {f"top{self.params.k}_accuracy": float(self.sums[0] / self.sums[1].clamp(min=1))}

    def state_tensors(self):
        return [self.sums]


def _log_odds(preds, multilabel: bool):
    """Per-class log-odds ``log p - log(1 - p)`` in float64, without rounding p to 0 or 1."""
    import torch

    s = preds.double()
    if multilabel or s.dim() == 1:  # sigmoid scores: the score is the log-odds
        return s
    out = torch.empty_like(s)
    for k in range(s.shape[1]):
        others = torch.cat([s[:, :k], s[:, k + 1:]], 1)
        out[:, k] = s[:, k] - torch.logsumexp(others, 1)
    return out


class RocAuc(Metric):
    """ROC-AUC, one-vs-rest and macro over classes (binary: of the positive class), streaming.

    Scores are binned on ``sigmoid(log-odds / 4)``, so saturated probabilities (exactly 0 or 1 in
    floating point) still rank by their logits; pairs in one bin count as ties (half).
    """

    higher_is_better = True

    def reset(self):
        self.hist, self.multilabel = None, False

    def update(self, preds, targets):
        import torch

        multilabel = self.multilabel = _is_multilabel(preds, targets)
        if multilabel:
            preds, onehot = preds.detach().cpu(), targets.detach().cpu() > 0.5
            z = _log_odds(preds, True)
        else:
            preds, targets = _flatten(preds, targets)
            z = _log_odds(preds, False)
            if z.dim() == 1:  # one binary score: negative and positive class
                z = torch.stack([-z, z], -1)
            onehot = torch.nn.functional.one_hot(targets, z.shape[-1]).bool()
        c, b = z.shape[-1], self.params.bins
        if self.hist is None:
            self.hist = torch.zeros(2, c, b, dtype=torch.float64)
        idx = (torch.sigmoid(z / 4) * b).long().clamp(0, b - 1)
        for cls in range(c):
            self.hist[1, cls] += torch.bincount(idx[onehot[:, cls], cls], minlength=b).double()
            self.hist[0, cls] += torch.bincount(idx[~onehot[:, cls], cls], minlength=b).double()

    def compute(self):
        if self.hist is None:
            return {"roc_auc": float("nan")}
        aucs = {}
        for cls in range(self.hist.shape[1]):
            neg, pos = self.hist[0, cls], self.hist[1, cls]
            if pos.sum() == 0 or neg.sum() == 0:
                continue
            neg_below = neg.cumsum(0) - neg  # negatives strictly below each bin
            aucs[cls] = float((pos * (neg_below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))
        if self.hist.shape[1] == 2 and not self.multilabel and 1 in aucs:  # binary: the positive class
            aucs = {1: aucs[1]}
        return {"roc_auc": sum(aucs.values()) / len(aucs) if aucs else float("nan")}

    def state_tensors(self):
        return [self.hist] if self.hist is not None else []


class _Regression(Metric):
    """Sums of errors: absolute, squared, absolute-percentage, symmetric-percentage, count."""

    key = ""
    higher_is_better = False

    def reset(self):
        import torch

        self.sums = torch.zeros(5, dtype=torch.float64)

    def update(self, preds, targets):
        import torch

        if isinstance(targets, dict):
            targets = targets["target"]
        if getattr(self.params, "units", "scaled") == "original":
            inverse = self.context.get("inverse_transform")
            if inverse is None:
                raise ValueError(f"metric {self.key!r} with units: original needs a task that scales its targets "
                                 "(one that implements Task.inverse_transform); use units: scaled")
            preds, targets = inverse(preds), inverse(targets)
        p = preds.detach().cpu().double().reshape(-1)
        t = targets.detach().cpu().double().reshape(-1)
        err = p - t
        eps = torch.finfo(torch.float64).eps  # scikit-learn's floor for |target| in MAPE
        den = p.abs() + t.abs()
        self.sums[0] += err.abs().sum()
        self.sums[1] += (err**2).sum()
        self.sums[2] += (err.abs() / t.abs().clamp(min=eps)).sum()
        self.sums[3] += torch.where(den > 0, 2 * err.abs() / den.clamp(min=eps), torch.zeros_like(den)).sum()
        self.sums[4] += float(t.numel())

    def state_tensors(self):
        return [self.sums]

    def compute(self):
        n = max(float(self.sums[4]), 1.0)
        mae, mse = float(self.sums[0]) / n, float(self.sums[1]) / n
        values = {"mae": mae, "mse": mse, "rmse": mse**0.5,
                  "mape": 100 * float(self.sums[2]) / n, "smape": 100 * float(self.sums[3]) / n}
        suffix = "_original" if getattr(self.params, "units", "scaled") == "original" else ""
        return {self.key + suffix: values[self.key]}


def _regression(key: str, doc: str) -> type[_Regression]:
    return type(key.upper(), (_Regression,), {"key": key, "__doc__": doc})


MAE = _regression("mae", "Mean absolute error.")
MSE = _regression("mse", "Mean squared error.")
RMSE = _regression("rmse", "Root mean squared error.")
MAPE = _regression("mape", "Mean absolute percentage error, in percent (scikit-learn's, times 100).")
SMAPE = _regression("smape", "Symmetric mean absolute percentage error, in percent (0 where both are 0).")
