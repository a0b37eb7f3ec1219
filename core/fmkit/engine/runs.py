"""``fmkit runs`` and ``fmkit compare``: the runs under a folder, and several runs side by side on one
self-contained HTML page (metrics in one table, curves overlaid), as Ludwig's
``visualize compare_performance`` does."""
from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError
from ..utils.atomic import atomic_write_text


def _json(path: Path) -> dict:
    """A run's JSON file as a mapping; ``{}`` when it is missing, damaged or not a mapping."""
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _recipe_of(run_dir: Path) -> dict:
    """A run's recipe, ``{}`` when it is missing or damaged (the listing still shows the run)."""
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


def run_summary(run_dir: Path) -> dict[str, Any]:
    """One run's name, task, model, monitored metric and best value, status, date and size."""
    recipe = _recipe_of(run_dir)
    section = lambda k: (recipe.get(k) or {}) if isinstance(recipe.get(k), dict) else {"name": recipe.get(k)}  # noqa: E731
    best = _json(run_dir / "checkpoints" / "best" / "meta.json")
    if (run_dir / "eval.json").is_file():
        stopped = _json(run_dir / "eval_details.json").get("stopped")  # a hook's run.request_stop
        status = f"finished (stopped early: {stopped.get('reason')})" if isinstance(stopped, dict) else "finished"
    elif any((run_dir / "checkpoints").glob("step-*/meta.json")):
        status = "stopped (resume with --resume)"
    else:
        status = "no checkpoint"
    return {"name": run_dir.name, "task": section("task").get("name"), "model": section("model").get("name"),
            "monitor": best.get("monitor"), "best": best.get("value"), "status": status,
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime((run_dir / "recipe.yaml").stat().st_mtime)),
            "size_mb": round(_size(run_dir) / 1e6, 1), "path": str(run_dir)}


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run directory (a folder with ``recipe.yaml``) directly under ``runs_dir``, oldest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UsageError(f"no runs folder {root} (relative to {Path.cwd()}); give the recipe's tracking.runs_dir")
    runs = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
            and (p / "recipe.yaml").is_file()]
    return [run_summary(p) for p in sorted(runs, key=lambda p: (p / "recipe.yaml").stat().st_mtime)]


def format_runs(rows: list[dict[str, Any]]) -> str:
    """The runs as aligned text columns."""
    if not rows:
        return "no runs\n"
    cols = ["name", "task", "model", "monitor", "best", "status", "date", "size_mb"]
    cells = [[("-" if r[c] is None else f"{r[c]:.4g}" if isinstance(r[c], float) and c == "best" else str(r[c]))
              for c in cols] for r in rows]
    heads = ["name", "task", "model", "monitor", "best", "status", "date", "MB"]
    width = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda xs: "  ".join(x.ljust(w) for x, w in zip(xs, width)).rstrip()  # noqa: E731
    return "\n".join([line(heads)] + [line(c) for c in cells]) + "\n"


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (``[]`` without one); a damaged line is left out."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():  # a damaged line is left out of the plots
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _figure(runs: list[Path], split: str, key: str, plt) -> str | None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    drawn = False
    for r in runs:
        rows = [x for x in read_metrics(r) if x.get("split") == split and not x.get("final")
                and isinstance(x.get(key), (int, float))]
        if rows:
            ax.plot([x["step"] for x in rows], [x[key] for x in rows], "o-" if split == "validation" else "-",
                    label=r.name, markersize=3)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step"), ax.set_ylabel(f"{split} {key}"), ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return (f'<figure><img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
            f"<figcaption>{html.escape(split)} {html.escape(key)}</figcaption></figure>")


def compare_runs(run_dirs: list[str], output: str) -> Path:
    """Write ``output``: the runs' final metrics side by side, their settings that differ, and
    their training loss and validation curves overlaid."""
    runs = [Path(r) for r in run_dirs]
    for r in runs:
        if not (r / "recipe.yaml").is_file():
            raise UsageError(f"{r} is not an fmkit run directory (no recipe.yaml)")
    if len(runs) < 2:
        raise UsageError("fmkit compare needs at least two runs")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finals = [_json(r / "eval.json") for r in runs]
    keys = sorted({k for f in finals for k, v in f.items() if isinstance(v, (int, float))})
    head = "<tr><th>metric</th>" + "".join(f"<th>{html.escape(r.name)}</th>" for r in runs) + "</tr>"
    body = "".join("<tr><td>" + html.escape(k) + "</td>" + "".join(
        f"<td>{f[k]:.4f}</td>" if isinstance(f.get(k), (int, float)) else "<td>-</td>" for f in finals) + "</tr>"
        for k in keys)
    flat = [_flatten(_recipe_of(r)) for r in runs]
    differ = sorted(k for k in set().union(*flat) if len({json.dumps(f.get(k), sort_keys=True, default=str)
                                                               for f in flat}) > 1)
    settings = "".join("<tr><td>" + html.escape(k) + "</td>" + "".join(
        f"<td>{html.escape(str(f.get(k, '-')))}</td>" for f in flat) + "</tr>" for k in differ)
    val_keys = sorted({k for r in runs for x in read_metrics(r) if x.get("split") == "validation"
                       for k, v in x.items() if isinstance(v, (int, float)) and k not in ("step", "epoch")})
    figures = [_figure(runs, "train", "loss", plt)] + [_figure(runs, "validation", k, plt) for k in val_keys]
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>fmkit compare</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%}}figure{{display:inline-block;margin:0 1em 1em 0}}</style></head><body>
<h1>{len(runs)} runs compared</h1>
<h2>Final metrics</h2><table>{head}{body}</table>
<h2>Settings that differ</h2>{f'<table>{head.replace("metric", "setting")}{settings}</table>' if differ else '<p>none</p>'}
<h2>Curves</h2>{''.join(f for f in figures if f) or '<p>no curves recorded</p>'}
</body></html>"""
    out = Path(output)
    atomic_write_text(out, doc)
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flatten(v, key) if isinstance(v, dict) else {key: v})
    return out
