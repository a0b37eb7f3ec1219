"""``fmkit predict``: batch inference on a file of raw inputs, written as JSONL or CSV."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import DataError


def read_inputs(path: str) -> list:
    """Raw inputs from a file: JSONL (``input`` field or the value), CSV (first column), a folder
    (one input per file, as its path), or plain text (one input per line)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"input {path} does not exist")
    if p.is_dir():
        return [str(x) for x in sorted(p.rglob("*")) if x.is_file()]
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".jsonl":
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    v = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{i}: not valid JSON: {e}") from None
                out.append(v.get("input", v) if isinstance(v, dict) else v)
        return out
    if p.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        return [r[0] for r in rows[1:] if r]
    return [line for line in text.splitlines() if line.strip()]


def predict_file(source: str, input_path: str, output: str | None, batch_size: int = 32,
                 trust_remote_code: bool = False) -> int:
    """Predict every input of ``input_path`` with ``source`` (a run or export); returns their number.
    ``trust_remote_code``: see :func:`fmkit.load`."""
    from ..errors import UsageError
    from ..exporting.loading import load_predictor

    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size {batch_size!r} must be a whole number of at least 1")
    predictor = load_predictor(source, trust_remote_code=trust_remote_code)
    inputs = read_inputs(input_path)
    preds = predictor.predict(inputs, batch_size=batch_size)
    rows = [{"input": x if isinstance(x, (str, int, float)) else None, **p} for x, p in zip(inputs, preds)]
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
