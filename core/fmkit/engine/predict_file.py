"""``fmkit predict``: batch inference on a file of raw inputs, written as JSONL or CSV."""
from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError
from ..records import echo, is_record_file, located_inputs_of
from ..serve.limits import bad_unicode

#: how ``fmkit predict --input-format`` reads its input; ``auto``: by the file's ending (standard
#: input, ``-``, as lines)
INPUT_FORMATS = ("auto", "lines", "jsonl", "csv")


def _text_of(path: str) -> tuple[str, str]:
    """The UTF-8 text of ``path`` (``-``: standard input) and the name errors give it."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            if sys.stdin is None:
                raise DataError("standard input is closed: pipe the inputs in, or give a file")
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
            return data.decode("utf-8-sig"), name
        # bytes, then decoded: read_text would turn a lone \r into a line end, standard input does not
        return Path(path).read_bytes().decode("utf-8-sig"), name
    except UnicodeDecodeError as e:
        raise DataError(f"input {name} is not UTF-8 text ({e.reason}: byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start}); save it as UTF-8") from None
    except OSError as e:
        raise DataError(f"cannot read input {name}: {e.strerror or e}") from None


def _lines(text: str, name: str) -> list[tuple[str, str]]:
    """One input per non-blank line. Lines end at ``\n`` (and ``\r\n``) only, so line numbers are
    those an editor shows: ``str.splitlines`` would also split at form feeds, U+2028 and others."""
    out = []
    for i, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip():
            out.append((line, f"{name}:{i}"))
    return out


def display_path(path: Path) -> str:
    """A file's path as text that any output can hold: bytes of a name that are not UTF-8 are
    shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def located_inputs(path: str, task=None, input_format: str = "auto") -> list[tuple[Any, str]]:
    """Raw inputs, each with where it came from (``FILE:LINE``, or a file's path). ``path``: CSV or
    JSON Lines records (each turned into an input by ``task.inputs_from_record``; a one-column CSV
    gives its cells), a folder (one input per file, a :class:`~pathlib.Path` read as bytes when its
    turn comes, as an upload to ``/v1/predict/files`` is; folders linked from it are not followed,
    so a link loop cannot recurse), ``-`` for standard input, or plain text (one input per non-blank
    line). ``input_format`` overrides what the file's ending says."""
    if input_format not in INPUT_FORMATS:
        raise DataError(f"input format {input_format!r}: choose one of {', '.join(INPUT_FORMATS)}")
    p = Path(path)
    if path != "-":
        try:
            mode = p.stat().st_mode
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise DataError(f"input {path} does not exist (a path relative to {Path.cwd()})") from None
            raise DataError(f"input {path[:300]}: {e.strerror or e}") from None
        if stat.S_ISDIR(mode):
            if input_format != "auto":
                raise DataError(f"--input-format {input_format} reads one file; {path} is a folder, whose files "
                                "are each one input (leave --input-format out)")
            return [(x, display_path(x)) for x in sorted(p.rglob("*")) if x.is_file()]
        if not stat.S_ISREG(mode):  # a FIFO or a device would block the read, or never end
            raise DataError(f"input {path} is not a regular file or a folder")
    text, name = _text_of(path)
    fmt = input_format
    if fmt == "auto":
        fmt = "lines" if path == "-" or not is_record_file(p.name) else p.suffix.lower().lstrip(".")
    if fmt in ("jsonl", "csv"):
        return located_inputs_of(text, name, task, fmt)
    lines = _lines(text, name)
    if lines and all(x.lstrip().startswith("{") and x.rstrip().endswith("}") for x, _ in lines[:100]):
        logging.getLogger("fmkit").warning("%s: every line looks like a JSON object, but is read as one text per "
                                           "line; give --input-format jsonl to read them as records", name)
    return lines


def _read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{where}: cannot read it: {e.strerror or e}; remove it from the folder, or fix its "
                        "permissions") from None


def is_blank_input(raw: Any) -> bool:
    """Whether a raw input holds no content: empty or white-space text or bytes (a 0-byte file), or a
    record (a text pair) whose every value is such text."""
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, (bytes, bytearray)):
        return not bytes(raw).strip()
    if isinstance(raw, dict):
        return bool(raw) and all(isinstance(v, (str, bytes)) and is_blank_input(v) for v in raw.values())
    return False


def _warn_blank(blank: list[str], total: int) -> None:
    if blank:
        shown = ", ".join(blank[:10]) + (f" and {len(blank) - 10} more" if len(blank) > 10 else "")
        logging.getLogger("fmkit").warning(
            "%d of %d inputs are blank (%s): each was predicted from no content, so its answer is the model's "
            "bias, not a reading of the input; check the column read, or remove them", len(blank), total, shown)


def _chunks(items: list, size: int) -> Iterator[list]:
    for s in range(0, len(items), size):
        yield items[s:s + size]


def predict_file(source: str, input_path: str, output: str | None, batch_size: int = 32,
                 trust_remote_code: bool = False, backend: str = "torch", input_format: str = "auto") -> int:
    """Predict every input of ``input_path`` with ``source`` (a run or export); returns their number.
    ``backend``: ``torch``, ``onnx``, or ``auto`` (ONNX Runtime when the export has an ONNX model);
    ``trust_remote_code``: see :func:`fmkit.load`. An input the task cannot take stops the run with
    a :class:`DataError` naming its file and line (nothing is written)."""
    from ..errors import UsageError
    from ..exporting.loading import load_predictor

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"batch size {batch_size!r} must be a whole number of at least 1")
    if backend == "auto":
        from ..serve.settings import resolve_backend

        backend = resolve_backend(source)
    if output == "-":  # as for the input: standard output
        output = None
    if output:  # found now, not after every prediction has run
        from ..utils.atomic import check_writable

        check_writable(output)
        if input_path != "-" and Path(output).exists() and Path(input_path).exists() \
                and os.path.samefile(output, input_path):
            raise UsageError(f"-o {output} is the input file: the predictions would replace the inputs; give "
                             "another output path")
    predictor = load_predictor(source, backend=backend, trust_remote_code=trust_remote_code)
    task = predictor.task
    located = located_inputs(input_path, task, input_format)
    rows, blank = [], []
    for chunk in _chunks(located, batch_size):
        raws, examples = [], []
        for x, where in chunk:
            raw = _read_file(x, where) if isinstance(x, Path) else x
            if is_blank_input(raw):
                blank.append(where)
            bad = bad_unicode(raw)
            if bad:
                raise DataError(f"{where}: not valid Unicode: {bad}")
            try:
                examples.append(task.raw_to_example(raw))
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            raws.append(raw)
        preds = (predictor.predict_examples(examples, batch_size) if task.encodes_examples()
                 else predictor.predict(raws, batch_size))
        rows += [{"input": where if isinstance(x, Path) else echo(x), **p} for (x, where), p in zip(chunk, preds)]
    _warn_blank(blank, len(rows))
    if output and output.lower().endswith(".csv"):
        buf = io.StringIO()
        flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows]
        w = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["input"])
        w.writeheader()
        w.writerows(flat)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows)
    if output:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(output, text)
    else:
        sys.stdout.write(text)
    return len(rows)
