"""``fmkit predict``: batch inference on a file of raw inputs, written as JSONL or CSV."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import DataError
from ..records import echo, inputs_of, is_record_file


def read_inputs(path: str, task=None) -> list:
    """Raw inputs from a file: CSV or JSON Lines records (each turned into an input by
    ``task.inputs_from_record``; a one-column CSV gives its cells), a folder (one input per file,
    as its path), or plain text (one input per line)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"input {path} does not exist (a path relative to {Path.cwd()})")
    if p.is_dir():
        return [str(x) for x in sorted(p.rglob("*")) if x.is_file()]
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"input {path} is not UTF-8 text ({e.reason}: byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start}); save it as UTF-8") from None
    if is_record_file(p.name):
        return inputs_of(text, str(p), task)
    return [line for line in text.splitlines() if line.strip()]


def predict_file(source: str, input_path: str, output: str | None, batch_size: int = 32,
                 trust_remote_code: bool = False, backend: str = "torch") -> int:
    """Predict every input of ``input_path`` with ``source`` (a run or export); returns their number.
    ``backend``: ``torch``, ``onnx``, or ``auto`` (ONNX Runtime when the export has an ONNX model);
    ``trust_remote_code``: see :func:`fmkit.load`."""
    from ..errors import UsageError
    from ..exporting.loading import load_predictor

    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size {batch_size!r} must be a whole number of at least 1")
    if backend == "auto":
        from ..serve.settings import resolve_backend

        backend = resolve_backend(source)
    predictor = load_predictor(source, backend=backend, trust_remote_code=trust_remote_code)
    inputs = read_inputs(input_path, predictor.task)
    preds = predictor.predict(inputs, batch_size=batch_size)
    rows = [{"input": echo(x), **p} for x, p in zip(inputs, preds)]
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
