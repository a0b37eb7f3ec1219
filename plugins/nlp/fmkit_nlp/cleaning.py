"""Cleaning transforms for text; each dropped row is counted by the engine under its reason."""
from __future__ import annotations

import re
import unicodedata

from fmkit import Transform
from fmkit.components import Params

_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


class TextFieldParams(Params):
    #: the example fields to clean (a field that is missing or not text is left alone); drop-empty-text
    #: looks at the text field only
    fields: list[str] = ["text", "text_pair"]


class NormalizeParams(TextFieldParams):
    #: Unicode normal form: NFKC (also folds look-alikes such as full-width letters and ligatures), NFC, NFKD or NFD
    form: str = "NFKC"
    #: also lowercase the text
    lowercase: bool = False


class KnownLabelsParams(Params):
    #: the labels to keep; an example with any other label (or, multi-label, any label outside this list) is dropped
    labels: list[str]


def _apply(example: dict, fields: list[str], fn) -> dict:
    ex = dict(example)
    for f in fields:
        if isinstance(ex.get(f), str):
            ex[f] = fn(ex[f])
    return ex


class StripHtml(Transform):
    """Replace HTML tags (``<br />``) with spaces."""

    reason = "html"

    def __call__(self, example, rng=None):
        return _apply(example, self.params.fields, lambda s: _TAG.sub(" ", s))


class NormalizeText(Transform):
    """Unicode normalisation (NFKC by default), collapsed whitespace, optional lowercasing."""

    reason = "normalize"

    def __call__(self, example, rng=None):
        p = self.params

        def norm(s: str) -> str:
            s = _WS.sub(" ", unicodedata.normalize(p.form, s)).strip()
            return s.lower() if p.lowercase else s

        return _apply(example, p.fields, norm)


class DropEmpty(Transform):
    """Drop examples whose text is empty after stripping."""

    reason = "empty-text"

    def __call__(self, example, rng=None):
        return example if str(example.get("text") or "").strip() else None


class DropUnknownLabels(Transform):
    """Drop examples whose label is not one of ``labels``."""

    reason = "unknown-label"

    def __call__(self, example, rng=None):
        label = example.get("label")
        labels = label if isinstance(label, list) else [label]
        return example if all(lab in self.params.labels for lab in labels) else None
