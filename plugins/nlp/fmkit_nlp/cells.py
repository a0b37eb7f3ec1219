"""One cell of a training file checked for what the model can read: texts are strings of valid
Unicode, labels strings or numbers (lists of them for multi-label tasks). Anything else is a
:class:`~fmkit.errors.DataError` naming the file, the line and the column."""
from __future__ import annotations

from fmkit.errors import DataError


def blank(value) -> bool:
    """None, NaN (pandas' missing value) or only whitespace."""
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def kind_of(value) -> str:
    """A JSON-ish name of ``value``'s type, for error messages (``a number``, ``an object``, ``null``)."""
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", tuple: "a list", dict: "an object",
            type(None): "null", str: "a string", bytes: "bytes"}.get(type(value), type(value).__name__)


def _kind(value) -> str:
    """:func:`kind_of`, with a number's value (``a number (5)``): a file's cell is found by it."""
    kind = kind_of(value)
    return f"{kind} ({value!r})" if kind == "a number" else kind


def _native(value):
    """``value`` with NumPy's scalars and arrays (what pandas gives for Parquet cells) as Python's."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


def _valid_unicode(value: str, where, i: int, column: str) -> str:
    """``value``, or :class:`DataError` naming ``where(i)`` (its file and line) when it holds a lone
    UTF-16 surrogate (a JSON escape such as ``"\\ud800"`` without its other half), which no tokenizer
    or file can take."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(f"{where(i)}: {column!r} is not valid Unicode (a lone UTF-16 surrogate "
                        f"\\u{ord(value[e.start]):04x} at character {e.start}, half of a pair); fix or remove "
                        "it") from None
    return value


def text_cell(value, where, i: int, column: str, field: str):
    """A text cell of row ``i``: a string (checked for valid Unicode), ``None`` when blank;
    :class:`DataError` naming the file and line (``where(i)``) and the column for any other type (a
    number, an object, a list): a tokenizer takes strings only."""
    if isinstance(value, str):
        return _valid_unicode(value, where, i, column)
    value = _native(value)
    if blank(value):
        return None
    raise DataError(f"{where(i)}: the {column!r} value must be a string; got {_kind(value)}; check data.{field}")


def label_cell(value, where, i: int, column: str, many: bool):
    """A label cell of row ``i``: a string, or a number or boolean (read as its text, ``1`` as
    ``"1"``); a list of them only when ``many`` (multi-label). :class:`DataError` naming the file and
    line (``where(i)``) and the column for an object or, for a single-label task, a list (either
    became a class named like ``"{'a': 'neg'}"``), or a string that is not valid Unicode."""
    if isinstance(value, str):
        return _valid_unicode(value, where, i, column)
    value = _native(value)
    if isinstance(value, (list, tuple)) and many:
        for item in value:
            if not (item is None or isinstance(item, (str, int, float))):
                raise DataError(f"{where(i)}: the {column!r} value must be a list of labels (strings or "
                                f"numbers); it holds {_kind(item)}")
            if isinstance(item, str):
                _valid_unicode(item, where, i, column)
        return list(value)
    if value is None or isinstance(value, (int, float)):
        return value
    hint = (" (a list of labels is read when task.multi_label is true or data.label_separator is set)"
            if isinstance(value, (list, tuple)) else "")
    raise DataError(f"{where(i)}: the {column!r} value must be a string or a number; got {_kind(value)}{hint}; "
                    "check data.label_column")
