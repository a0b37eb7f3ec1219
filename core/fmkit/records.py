"""Files of many inputs: CSV tables and JSON Lines read as records, one input each.

``fmkit predict FILE`` and ``POST /v1/predict/files?records=true`` read files with these helpers.
A record is a CSV row (a dict of column to text) or a JSONL line (any JSON value); the task's
:meth:`fmkit.Task.inputs_from_record` turns a record into the raw input its ``raw_to_example``
takes. Predictions echo their input (:func:`echo`).
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from typing import Any

from .errors import DataError

#: file name endings read as records
RECORD_SUFFIXES = (".csv", ".jsonl")


def is_record_file(name: str) -> bool:
    """Whether a file of this name is read as records (CSV or JSON Lines)."""
    return name.lower().endswith(RECORD_SUFFIXES)


_FIRST_CHARACTER = re.compile(r"\S")


def read_records(text: str, name: str) -> list[Any]:
    """The records of a CSV (each row after the header as a dict) or JSONL (each non-empty line's
    JSON value) text. ``name`` says which (by its ending) and names the file in errors."""
    return [record for record, _ in read_located_records(text, name)]


class TooManyRecords(DataError):
    """A file holds more records than the reader was allowed (the server's ``--max-items``)."""


def _numbered_lines(text: str):
    """``(line number, line)`` of ``text``, lines ending at ``\n`` only (``str.splitlines`` would also
    split at U+2028, U+0085 and others, which JSON allows inside strings), one at a time."""
    start, number = 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield number, text[start:end]
        start, number = end + 1, number + 1


def _over(limit: int | None, count: int, name: str) -> None:
    if limit is not None and count > limit:
        raise TooManyRecords(f"{name} holds more than {limit} records, the most one request may have")


def read_located_records(text: str, name: str, fmt: str | None = None,
                         limit: int | None = None) -> list[tuple[Any, str]]:
    """:func:`read_records`, each record with where it is (``"NAME:LINE"``, the line its row starts
    on), for errors about one record found after reading. ``fmt`` (``jsonl`` or ``csv``) says how
    to read it where ``name``'s ending does not (standard input). Past ``limit`` records reading
    stops with :class:`TooManyRecords`."""
    if (fmt or ("jsonl" if name.lower().endswith(".jsonl") else "csv")) == "jsonl":
        out = []
        for i, line in _numbered_lines(text):
            if line.strip():
                _over(limit, len(out) + 1, name)
                try:
                    out.append((json.loads(line), f"{name}:{i}"))
                except RecursionError:
                    raise DataError(f"{name}:{i}: not valid JSON: nested too deeply") from None
                except ValueError as e:  # json.JSONDecodeError, or a number past Python's digit limit
                    raise DataError(f"{name}:{i}: not valid JSON: {e}") from None
        return out
    first = _FIRST_CHARACTER.search(text)  # of the first non-blank line: no copy of the text
    if first and first.group() in "{[":
        raise DataError(f"{name}: its first line is JSON ({text[first.start():first.start() + 40]!r}...), not a CSV "
                        "header: name the file .jsonl (fmkit predict: or give --input-format jsonl)")
    _allow_long_csv_fields()
    # csv.reader, not DictReader: DictReader skips blank lines unseen, so the line a row starts on
    # could not be told; here every row, blank ones included, moves ``done`` on
    reader = csv.reader(io.StringIO(text), strict=True)  # strict: an unclosed quote is an error, not one long cell
    rows: list[tuple[Any, str]] = []
    header: list[str] | None = None
    done = 0  # the last line fully read
    try:
        for cells in reader:
            start, done = done + 1, reader.line_num
            if not cells:  # a blank line
                continue
            if header is None:
                twice = sorted(c for c, n in Counter(cells).items() if n > 1)
                if twice:
                    raise DataError(f"{name}:{start}: the header names {', '.join(repr(c) for c in twice)} more than "
                                    "once; give each column its own name")
                header = cells
                continue
            if len(cells) > len(header):
                raise DataError(f"{name}:{start}: more cells than the header's {len(header)} columns")
            row = dict(zip(header, cells + [None] * (len(header) - len(cells))))
            if any(v not in (None, "") for v in row.values()):
                _over(limit, len(rows) + 1, name)
                rows.append((row, f"{name}:{start}"))
    except csv.Error as e:
        if "new-line character seen in unquoted field" in str(e):
            raise DataError(f"{name}:{done + 1}: not valid CSV: a carriage return (\\r) alone inside a row; save "
                            "the file with \\n or \\r\\n line ends, or quote the cell") from None
        hint = " (a quote that is never closed?)" if "unexpected end of data" in str(e) else ""
        raise DataError(f"{name}:{done + 1}: not valid CSV: {e}{hint}") from None
    if header is None:
        raise DataError(f"{name}: empty CSV file (a header row and one row per input are expected)")
    return rows


def _allow_long_csv_fields() -> None:
    """Let the csv module read cells as long as the inputs fmkit accepts (its default stops at
    131,072 characters, below the server's 1,000,000 per input)."""
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(2**31 - 1)


def default_input(record: Any) -> Any:
    """A record's ``"input"`` field when it is an object with one, else the record itself."""
    return record["input"] if isinstance(record, dict) and "input" in record else record


def inputs_of(text: str, name: str, task: Any | None, limit: int | None = None) -> list[Any]:
    """The raw inputs of a CSV or JSONL file: a one-column CSV gives its cells; any other record
    goes through ``task.inputs_from_record`` (without a task: :func:`default_input`). Past ``limit``
    records reading stops with :class:`TooManyRecords`."""
    return [x for x, _ in located_inputs_of(text, name, task, limit=limit)]


def located_inputs_of(text: str, name: str, task: Any | None, fmt: str | None = None,
                      limit: int | None = None) -> list[tuple[Any, str]]:
    """:func:`inputs_of`, each input with where its record is (``"NAME:LINE"``); ``fmt`` and
    ``limit`` as for :func:`read_located_records`."""
    fmt = fmt or ("jsonl" if name.lower().endswith(".jsonl") else "csv")
    records = read_located_records(text, name, fmt, limit)
    if fmt == "csv" and records and len(records[0][0]) == 1:
        return [(next(iter(r.values())), where) for r, where in records]
    pick = task.inputs_from_record if task is not None else default_input
    out = []
    for r, where in records:
        try:
            out.append((pick(r), where))
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
    return out


def decode_upload(data: bytes, name: str) -> str:
    """An uploaded record file's text (UTF-8, a byte-order mark dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def echo(raw: Any) -> Any:
    """What an answer records as its input: the raw input itself when it is JSON (text, numbers,
    records, lists), its size for bytes (an upload is not copied into every answer)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return {"bytes": len(raw)}
    try:
        json.dumps(raw, allow_nan=False)
    except (TypeError, RecursionError):
        return repr(raw)[:200]
    except ValueError:  # NaN or infinity (JSONL allows them; a JSON answer cannot hold them): null
        try:
            return _finite(raw)
        except RecursionError:
            return repr(raw)[:200]
    return raw


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
