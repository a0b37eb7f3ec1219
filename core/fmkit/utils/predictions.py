"""Turning class scores into JSON answers, shared by every classification task of every plugin."""
from __future__ import annotations

from typing import Any

#: the metrics a classification task reports by default (a task component's ``defaults.metrics``)
CLASSIFICATION_METRICS: list[Any] = [
    "accuracy", {"name": "f1", "average": "macro"}, {"name": "precision", "average": "macro"},
    {"name": "recall", "average": "macro"}, "confusion-matrix"]


def class_predictions(outputs, labels: list[str], multi_label: bool = False, threshold: float = 0.5) -> list[dict]:
    """One answer per row of ``outputs`` (``[batch, classes]`` logits): ``label`` (best class),
    ``score`` and ``scores`` (softmax), or for multi-label ``labels`` above ``threshold`` (sigmoid)."""
    import torch

    outputs = outputs.float()
    if multi_label:
        probs = torch.sigmoid(outputs)
        return [{"labels": [lab for lab, p in zip(labels, row) if p >= threshold],
                 "label": labels[int(row.argmax())],
                 "scores": {lab: float(p) for lab, p in zip(labels, row)}} for row in probs]
    probs = outputs.softmax(-1)
    return [{"label": labels[int(row.argmax())], "score": float(row.max()),
             "scores": {lab: float(p) for lab, p in zip(labels, row)}} for row in probs]
