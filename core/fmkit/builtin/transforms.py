"""Modality-free cleaning transforms: drop rows with missing fields, drop duplicates."""
from __future__ import annotations

from ..components import Params
from ..interfaces import Transform


class FieldsParams(Params):
    #: example fields to look at; empty means every field
    fields: list[str] = []


def _values(example: dict, fields: list[str]):
    keys = fields or sorted(example)
    return [example.get(k) for k in keys]


class DropMissing(Transform):
    """Drop examples where a field is missing, None, NaN or an empty string."""

    stage = "clean"
    reason = "missing-value"

    def __call__(self, example, rng=None):
        for v in _values(example, self.params.fields):
            if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
                return None
        return example


class DropDuplicates(Transform):
    """Drop examples whose fields repeat an earlier example exactly."""

    stage = "clean"
    reason = "duplicate"

    def __init__(self, params, context=None):
        super().__init__(params, context)
        self.seen: set[str] = set()

    def __call__(self, example, rng=None):
        key = repr(_values(example, self.params.fields))
        if key in self.seen:
            return None
        self.seen.add(key)
        return example
