"""``fmkit predict``: batch inference on a file of raw inputs, written as JSONL or CSV."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError
from ..records import echo, is_record_file, located_inputs_of

#: how ``fmkit predict --input-format`` reads its input; ``auto``: by the file's ending (standard
#: input, ``-``, as lines)
INPUT_FORMATS = ("auto", "lines", "jsonl", "csv")


def _text_of(path: str) -> tuple[str, str]:
    """The UTF-8 text of ``path`` (``-``: standard input) and the name errors give it."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8-sig"), name
        return Path(path).read_text(encoding="utf-8-sig"), name
    except UnicodeDecodeError as e:
        raise DataError(f"input {name} is not UTF-8 text ({e.reason}: byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start}); save it as UTF-8") from None


def located_inputs(path: str, task=None, input_format: str = "auto") -> list[tuple[Any, str]]:
    """Raw inputs, each with where it came from (``FILE:LINE``, or a file's path). ``path``: CSV or
    JSON Lines records (each turned into an input by ``task.inputs_from_record``; a one-column CSV
    gives its cells), a folder (one input per file: a :class:`~pathlib.Path`, read as bytes when
    its turn comes, as an upload to ``/v1/predict/files`` is), ``-`` for standard input, or plain
    text (one input per non-blank line). ``input_format`` overrides what the file's ending says."""
    if input_format not in INPUT_FORMATS:
        raise DataError(f"input format {input_format!r}: choose one of {', '.join(INPUT_FORMATS)}")
    p = Path(path)
    if path != "-":
        if not p.exists():
            raise DataError(f"input {path} does not exist (a path relative to {Path.cwd()})")
        if p.is_dir():
            return [(x, str(x)) for x in sorted(p.rglob("*")) if x.is_file()]
        if not p.is_file():  # a FIFO or a device would block the read, or never end
            raise DataError(f"input {path} is not a regular file or a folder")
    text, name = _text_of(path)
    fmt = input_format
    if fmt == "auto":
        fmt = "lines" if path == "-" or not is_record_file(p.name) else p.suffix.lower().lstrip(".")
    if fmt in ("jsonl", "csv"):
        return located_inputs_of(text, name, task, fmt)
    return [(line, f"{name}:{i}") for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_inputs(path: str, task=None, input_format: str = "auto") -> list:
    """The raw inputs of :func:`located_inputs` alone (a folder's files as paths)."""
    return [x for x, _ in located_inputs(path, task, input_format)]


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
    predictor = load_predictor(source, backend=backend, trust_remote_code=trust_remote_code)
    task = predictor.task
    located = located_inputs(input_path, task, input_format)
    rows = []
    for chunk in _chunks(located, batch_size):
        raws = [x.read_bytes() if isinstance(x, Path) else x for x, _ in chunk]
        examples = []
        for raw, (_, where) in zip(raws, chunk):
            try:
                examples.append(task.raw_to_example(raw))
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
        preds = (predictor.predict_examples(examples, batch_size) if task.encodes_examples()
                 else predictor.predict(raws, batch_size))
        rows += [{"input": str(x) if isinstance(x, Path) else echo(x), **p} for (x, _), p in zip(chunk, preds)]
    if output and output.endswith(".csv"):
        from ..utils.atomic import atomic_write_text

        buf = io.StringIO()
        flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows]
        w = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["input"])
        w.writeheader()
        w.writerows(flat)
        atomic_write_text(output, buf.getvalue())
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if output:
            from ..utils.atomic import atomic_write_text

            atomic_write_text(output, text)
        else:
            sys.stdout.write(text)
    return len(rows)
