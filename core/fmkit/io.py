"""Reading raw inputs: one rule for every plugin, so a client sends an image, a sound or a table the
same way to every task.

A raw input that carries a file is accepted as:

- ``bytes`` / ``bytearray`` / ``memoryview``: the file's content (an upload);
- a :class:`pathlib.Path`: a file on this machine;
- a string: a ``data:`` URL (``data:image/png;base64,...``), the path of an existing file, or
  base64 text of the file's content (tried in that order);
- a dict: ``{"path": ...}``, ``{"base64": ...}`` or ``{"data_url": ...}``.

Anything else raises :class:`fmkit.errors.DataError` naming what it got and what it accepts.
Text inputs are simpler: :func:`read_text` takes a string as the text itself, and decodes uploaded
bytes as UTF-8.
"""
from __future__ import annotations

import base64
import binascii
import csv
from pathlib import Path
from typing import Any

from .errors import DataError

__all__ = ["decode_base64", "encode_base64", "is_file_input", "read_bytes", "read_csv", "read_text"]

#: a string longer than this is never taken for a file path
_MAX_PATH = 4096


def decode_base64(text: str, what: str = "input") -> bytes:
    """The bytes of base64 ``text`` (or of a ``data:`` URL); :class:`DataError` when it is not valid base64."""
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise DataError(f"{what}: a data URL must be 'data:<type>;base64,<data>'")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{what} text is neither an existing file path nor valid base64") from None


def encode_base64(data: bytes, mime: str | None = None) -> str:
    """``data`` as base64 text, or as a ``data:`` URL when ``mime`` is given (the forms HTTP clients send)."""
    text = base64.b64encode(bytes(data)).decode("ascii")
    return f"data:{mime};base64,{text}" if mime else text


def _existing_file(text: str) -> Path | None:
    if len(text) > _MAX_PATH or "\n" in text:
        return None
    try:
        path = Path(text)
        return path if path.is_file() else None
    except (OSError, ValueError):  # a name too long for the file system, an embedded NUL
        return None


def _looks_like_path(text: str) -> bool:
    return len(text) <= _MAX_PATH and ("/" in text or "\\" in text or bool(Path(text).suffix))


def is_file_input(raw: Any) -> bool:
    """Whether ``raw`` has one of the forms :func:`read_bytes` accepts (a dict only with its keys)."""
    if isinstance(raw, dict):
        return any(k in raw for k in ("path", "base64", "data_url"))
    return isinstance(raw, (bytes, bytearray, memoryview, Path, str))


def read_bytes(raw: Any, what: str = "input") -> bytes:
    """The file content a raw input carries (see the module's rule). ``what`` names the input in errors
    (``"image"``, ``"audio"``)."""
    if isinstance(raw, dict):
        if "path" in raw:
            raw = Path(raw["path"])
        elif "base64" in raw:
            return decode_base64(str(raw["base64"]), what)
        elif "data_url" in raw:
            return decode_base64(str(raw["data_url"]), what)
        else:
            raise DataError(f"an {what} dict needs 'path', 'base64' or 'data_url'; got keys {sorted(raw)}")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        if raw.startswith("data:"):
            return decode_base64(raw, what)
        path = _existing_file(raw)
        if path is None:
            try:
                return decode_base64(raw, what)
            except DataError:
                if _looks_like_path(raw):
                    raise DataError(f"{what} file {raw} does not exist (and the text is not valid base64)") from None
                raise
        raw = path
    if isinstance(raw, Path):
        if not raw.is_file():
            raise DataError(f"{what} file {raw} does not exist")
        return raw.read_bytes()
    raise DataError(f"cannot read {what} from a {type(raw).__name__}; pass a path, bytes, base64 text or a data URL")


def read_text(raw: Any, what: str = "text", encoding: str = "utf-8") -> str:
    """A text input: a string is the text itself; bytes (an upload) are decoded (``encoding``, a BOM
    dropped); :class:`DataError` otherwise."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            return bytes(raw).decode("utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding)
        except UnicodeDecodeError as e:
            raise DataError(f"the {what} file is not {encoding.upper() if encoding.lower() == 'utf-8' else encoding}: "
                            f"{e}") from None
    raise DataError(f"a {what} input must be a string or uploaded bytes; got {type(raw).__name__}")


def read_csv(path: str, delimiter: str = ",", encoding: str = "utf-8") -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` for every data row of a CSV file with a header, ``line`` being the 1-based line
    the row ends on (for messages such as ``data.csv:12: ...``). :class:`DataError` naming the file
    when it is missing, not in ``encoding``, malformed, or a row has more cells than the header."""
    try:
        with open(path, newline="", encoding=encoding) as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            rows = []
            for row in reader:
                if None in row:
                    raise DataError(f"{path}:{reader.line_num}: more cells than the header's {len(reader.fieldnames)}")
                rows.append((reader.line_num, row))
            return rows
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read as {encoding} CSV: {e}") from None
