"""Label names learnt from training examples: natural order, class counts, target indices."""
from __future__ import annotations

import re
from typing import Any, Iterable

from ..errors import DataError

__all__ = ["fit_labels", "labels_of", "multi_hot", "natural_key"]

_INT = re.compile(r"[+-]?\d+")
_PARTS = re.compile(r"(\d+)")


def natural_key(label: Any) -> tuple:
    """A sort key that orders labels as a person would: whole numbers by value (``"2"`` before
    ``"10"``, ``"-1"`` before ``"0"``) and before any other label; other labels by their text with
    runs of digits compared by value (``"class2"`` before ``"class10"``)."""
    text = str(label)
    if _INT.fullmatch(text):
        return (0, int(text), ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _PARTS.split(text) if p)
    return (1, 0, parts)


def labels_of(example: dict, key: str = "label") -> list[str]:
    """The labels of one example as strings: ``[]`` when it has none (``None``), one for a single
    label, several for a list or tuple (multi-label)."""
    value = example.get(key)
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def fit_labels(examples: Iterable[dict], key: str = "label") -> tuple[list[str], list[int]]:
    """``(labels, class_counts)`` of training examples: the label names in :func:`natural_key`
    order and how many examples carry each. Raises :class:`DataError` when no example has a label."""
    counts: dict[str, int] = {}
    for ex in examples:
        for lab in labels_of(ex, key):
            counts[lab] = counts.get(lab, 0) + 1
    if not counts:
        raise DataError(f"the training data has no labels (no example has a {key!r} value)")
    labels = sorted(counts, key=natural_key)
    return labels, [counts[lab] for lab in labels]


def multi_hot(labels: list[str], present: Iterable[str]) -> list[float]:
    """``1.0`` for each of ``labels`` in ``present``, ``0.0`` for the others (multi-label targets)."""
    present = set(present)
    return [1.0 if lab in present else 0.0 for lab in labels]
