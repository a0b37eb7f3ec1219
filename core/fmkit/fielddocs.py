"""Plain-words documentation of parameter fields, for starters, ``components show`` and the schema.

A field's description is its pydantic ``description=`` or, when it has none, the ``#:`` comment
lines just above it in the class body (the attribute-comment convention Sphinx reads too), so a
parameter documented once in the source reads the same in ``fmkit new recipe``, ``fmkit
components show``, ``fmkit schema`` and the docs. :func:`describe_type` turns an annotation into
words a recipe author reads (``number or null``, ``one of: model, mean``) instead of Python types.
"""
from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["comment_descriptions", "describe_type", "fill_descriptions"]

_FIELD = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:")
_NAMES = {int: "whole number", float: "number", bool: "true/false", str: "text", type(None): "null",
          Any: "any value", dict: "mapping", list: "list"}


def comment_descriptions(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``#:`` comment lines right above each field of ``cls``'s own body."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = _FIELD.match(line)
        if m and pending:
            out.setdefault(m.group(1), " ".join(pending))
        pending = []
    return out


def fill_descriptions(model: type[BaseModel]) -> bool:
    """Give each field of ``model`` without a ``description`` the text of its ``#:`` comment
    (searching the model's bases too); True when any field changed (the caller rebuilds)."""
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseModel) and klass is not BaseModel:
            found.update(comment_descriptions(klass))
    changed = False
    for name, field in model.model_fields.items():
        if not field.description and found.get(name):
            field.description = found[name]
            changed = True
    return changed


def describe_type(annotation: Any) -> str:
    """An annotation in a recipe author's words: ``number or null``, ``one of: head, head_tail``,
    ``list of text``, ``mapping (text to number)``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin in (list, tuple, set, frozenset):
        inner = sorted({describe_type(a) for a in args if a is not Ellipsis})
        return "list" + (f" of {' or '.join(inner)}" if inner else "")
    if origin is dict:
        return f"mapping ({describe_type(args[0])} to {describe_type(args[1])})" if len(args) == 2 else "mapping"
    if origin is typing.Annotated:
        return describe_type(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (" + ", ".join(f.alias or n for n, f in annotation.model_fields.items()) + ")"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation).replace("typing.", "")))
