"""Built-in streaming metrics.

Classification metrics take ``preds`` as class scores ``(N, C)`` (logits or probabilities) and
``targets`` as class indices ``(N,)`` or multi-hot ``(N, C)`` (multi-label, thresholded at
``threshold`` on sigmoid scores). Regression metrics take tensors of any matching shape;
``targets`` may be a dict with ``target`` and ``naive`` (the seasonal-naive forecast) for MASE.
All state is sums kept in float64 tensors, so distributed ranks combine by summing.
"""
from __future__ import annotations

from typing import Literal

from ..components import Params
from ..interfaces import Metric


class ClassParams(Params):
    threshold: float = 0.5


class AveragedParams(ClassParams):
    average: Literal["macro", "micro", "weighted"] = "macro"


class TopKParams(ClassParams):
    k: int = 5


class AUCParams(ClassParams):
    bins: int = 1000


class NoMetricParams(Params):
    pass


class RegressionParams(Params):
    #: ``scaled``: on the values the model predicts; ``original``: after the task's
    #: ``inverse_transform`` (metric context), in the data's own units (key gets ``_original``)
    units: Literal["scaled", "original"] = "scaled"


def _is_multilabel(preds, targets) -> bool:
    return targets.dim() == preds.dim() and targets.shape == preds.shape and preds.dim() == 2


class _ClassStats(Metric):
    """Shared per-class counts: confusion matrix (multi-class) or tp/fp/fn (multi-label)."""

    def reset(self) -> None:
        import torch

        c = int(self.context.get("num_labels") or 0)
        self.num_classes = c
        self.confusion = torch.zeros(c, c, dtype=torch.float64) if c else None
        self.ml = None  # (3, C): tp, fp, fn for multi-label
        self.samples = torch.zeros(2, dtype=torch.float64)  # correct, total

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

        preds, targets = preds.detach().cpu(), targets.detach().cpu()
        if preds.dim() > 2:  # token-level: flatten, ignore padding (-100)
            preds, targets = preds.reshape(-1, preds.shape[-1]), targets.reshape(-1)
        if _is_multilabel(preds, targets):
            p = torch.sigmoid(preds.float()) >= self.params.threshold
            t = targets > 0.5
            if self.ml is None:
                self.ml = torch.zeros(3, preds.shape[1], dtype=torch.float64)
            self.ml[0] += (p & t).sum(0)
            self.ml[1] += (p & ~t).sum(0)
            self.ml[2] += (~p & t).sum(0)
            self.samples += torch.tensor([(p == t).all(1).sum().item(), len(p)], dtype=torch.float64)
            return
        if preds.dim() == 2:
            if targets.is_floating_point() and targets.dim() == 2:  # soft targets
                targets = targets.argmax(-1)
            keep = targets >= 0
            preds, targets = preds[keep], targets[keep].long()
            self._ensure(preds.shape[1])
            pred_idx = preds.argmax(-1)
        else:  # binary scores
            keep = targets >= 0
            preds, targets = preds[keep], targets[keep].long()
            self._ensure(2)
            pred_idx = (preds >= 0).long() if preds.is_floating_point() else preds.long()
        idx = targets * self.num_classes + pred_idx
        self.confusion += torch.bincount(idx, minlength=self.num_classes**2).reshape(self.num_classes, -1).double()
        self._scores_hook(preds, targets)

    def _scores_hook(self, preds, targets) -> None:
        pass

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
        else:
            correct, total = self.confusion.diag().sum().item(), self.confusion.sum().item()
        return {"accuracy": correct / total if total else 0.0}


class _PRF(_ClassStats):
    which = "f1"

    def compute(self):
        tp, fp, fn, support = self.counts()
        avg = self.params.average
        if avg == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        value = {"precision": precision, "recall": recall, "f1": f1}[self.which]
        if avg == "macro":
            present = support > 0
            value = value[present].mean() if present.any() else value.sum() * 0
        elif avg == "weighted":
            value = (value * support).sum() / support.sum().clamp(min=1)
        return {f"{self.which}_{avg}": float(value)}

    def artifacts(self):
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
        labels = self.context.get("labels") or [str(i) for i in range(self.num_classes)]
        return {"confusion_matrix": {"labels": labels, "matrix": self.confusion.long().tolist()}}


class TopKAccuracy(Metric):
    """Share of examples whose true class is among the ``k`` highest scores."""

    def reset(self):
        import torch

        self.sums = torch.zeros(2, dtype=torch.float64)

    def update(self, preds, targets):
        preds, targets = preds.detach().cpu(), targets.detach().cpu().long()
        if preds.dim() > 2:
            preds, targets = preds.reshape(-1, preds.shape[-1]), targets.reshape(-1)
        keep = targets >= 0
        preds, targets = preds[keep], targets[keep]
        k = min(self.params.k, preds.shape[-1])
        hit = (preds.topk(k, -1).indices == targets[:, None]).any(-1)
        self.sums[0] += hit.sum()
        self.sums[1] += len(hit)

    def compute(self):
        return {f"top{self.params.k}_accuracy": float(self.sums[0] / self.sums[1].clamp(min=1))}

    def state_tensors(self):
        return [self.sums]


class RocAuc(Metric):
    """ROC-AUC (one-vs-rest, macro over classes) from score histograms, so it streams and sums."""

    def reset(self):
        self.hist = None

    def update(self, preds, targets):
        import torch

        preds, targets = preds.detach().cpu().float(), targets.detach().cpu()
        if _is_multilabel(preds, targets):
            probs, onehot = torch.sigmoid(preds), targets > 0.5
        else:
            if preds.dim() == 1:
                preds = torch.stack([-preds, preds], -1)
            keep = targets >= 0
            preds, targets = preds[keep], targets[keep].long()
            probs = preds.softmax(-1)
            onehot = torch.nn.functional.one_hot(targets, probs.shape[-1]).bool()
        c, b = probs.shape[-1], self.params.bins
        if self.hist is None:
            self.hist = torch.zeros(2, c, b, dtype=torch.float64)
        idx = (probs.clamp(0, 1 - 1e-9) * b).long()
        for cls in range(c):
            self.hist[1, cls] += torch.bincount(idx[onehot[:, cls], cls], minlength=b).double()
            self.hist[0, cls] += torch.bincount(idx[~onehot[:, cls], cls], minlength=b).double()

    def compute(self):
        if self.hist is None:
            return {"roc_auc": 0.0}
        aucs = []
        for cls in range(self.hist.shape[1]):
            neg, pos = self.hist[0, cls], self.hist[1, cls]
            if pos.sum() == 0 or neg.sum() == 0:
                continue
            neg_below = neg.cumsum(0) - neg  # negatives strictly below each bin
            auc = (pos * (neg_below + 0.5 * neg)).sum() / (pos.sum() * neg.sum())
            aucs.append(float(auc))
        if self.hist.shape[1] == 2 and len(aucs) == 2:
            aucs = aucs[1:]
        return {"roc_auc": sum(aucs) / len(aucs) if aucs else 0.0}

    def state_tensors(self):
        return [self.hist] if self.hist is not None else []


class _Regression(Metric):
    """Sums of errors: abs, squared, abs-percentage, symmetric percentage, naive abs, count."""

    key = ""

    def reset(self):
        import torch

        self.sums = torch.zeros(6, dtype=torch.float64)

    def update(self, preds, targets):
        import torch

        naive = None
        if isinstance(targets, dict):
            naive, targets = targets.get("naive"), targets["target"]
        if getattr(self.params, "units", "scaled") == "original":
            inverse = self.context.get("inverse_transform")
            if inverse is None:
                raise ValueError(f"{self.key}: units: original needs a task that scales its targets")
            preds, targets = inverse(preds), inverse(targets)
            naive = inverse(naive) if naive is not None else None
        p = preds.detach().cpu().double().reshape(-1)
        t = targets.detach().cpu().double().reshape(-1)
        err = p - t
        eps = 1e-8
        self.sums[0] += err.abs().sum()
        self.sums[1] += (err**2).sum()
        self.sums[2] += (err.abs() / t.abs().clamp(min=eps)).sum()
        self.sums[3] += (2 * err.abs() / (p.abs() + t.abs()).clamp(min=eps)).sum()
        if naive is not None:
            self.sums[4] += (naive.detach().cpu().double().reshape(-1) - t).abs().sum()
        self.sums[5] += torch.tensor(float(t.numel()), dtype=torch.float64)

    def state_tensors(self):
        return [self.sums]

    def compute(self):
        n = max(float(self.sums[5]), 1.0)
        mae, mse = float(self.sums[0]) / n, float(self.sums[1]) / n
        values = {
            "mae": mae, "mse": mse, "rmse": mse**0.5,
            "mape": 100 * float(self.sums[2]) / n, "smape": 100 * float(self.sums[3]) / n,
            "mase": float(self.sums[0]) / float(self.sums[4]) if float(self.sums[4]) > 0 else float("nan"),
        }
        suffix = "_original" if getattr(self.params, "units", "scaled") == "original" else ""
        return {self.key + suffix: values[self.key]}


def _regression(key: str, doc: str) -> type[_Regression]:
    return type(key.upper(), (_Regression,), {"key": key, "__doc__": doc})


MAE = _regression("mae", "Mean absolute error.")
MSE = _regression("mse", "Mean squared error.")
RMSE = _regression("rmse", "Root mean squared error.")
MAPE = _regression("mape", "Mean absolute percentage error, in percent.")
SMAPE = _regression("smape", "Symmetric mean absolute percentage error, in percent.")
MASE = _regression("mase", "Mean absolute scaled error against the seasonal-naive forecast.")

