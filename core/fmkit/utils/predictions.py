"""Turning class scores into JSON answers, shared by every classification task of every plugin."""
from __future__ import annotations

from typing import Any

#: the metrics a classification task reports by default (a task component's ``defaults.metrics``)
CLASSIFICATION_METRICS: list[Any] = [
    "accuracy", {"name": "f1", "average": "macro"}, {"name": "precision", "average": "macro"},
    {"name": "recall", "average": "macro"}, "confusion-matrix"]
"""The metrics a classification task reports by default (a task component's ``defaults.metrics``)."""


def class_predictions(outputs, labels: list[str], multi_label: bool = False, threshold: float = 0.5) -> list[dict]:
    """One answer per row of ``outputs`` (``[batch, classes]`` logits): ``label`` (best class),
    ``score`` and ``scores`` (softmax), or for multi-label ``labels`` above ``threshold`` (sigmoid)."""
    import numpy as np

    # numpy and plain lists: element-wise tensor access costs microseconds a value (milliseconds a
    # batch on the serving path), and a torch kernel here would wake torch's worker threads, which
    # then spin on the cores an ONNX Runtime backend needs for the next batch
    logits = np.asarray(outputs.detach().float().cpu().numpy() if hasattr(outputs, "detach") else outputs,
                        dtype=np.float64)
    best = logits.argmax(axis=-1).tolist()  # the first on ties, as torch.argmax
    if multi_label:
        rows = (1.0 / (1.0 + np.exp(-logits))).tolist()
        return [{"labels": [lab for lab, p in zip(labels, row) if p >= threshold],
                 "label": labels[b], "scores": dict(zip(labels, row))} for row, b in zip(rows, best)]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    rows = (shifted / shifted.sum(axis=-1, keepdims=True)).tolist()
    return [{"label": labels[b], "score": row[b], "scores": dict(zip(labels, row))} for row, b in zip(rows, best)]
