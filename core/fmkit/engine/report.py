"""Plots (loss and metric curves, confusion matrix) and a self-contained ``report.html``."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..utils.atomic import atomic_write_text


def _records(run_dir: Path) -> list[dict]:
    from .runs import read_metrics

    return read_metrics(run_dir)


def make_plots(run_dir: Path, artifacts: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    recs = _records(run_dir)
    out = []
    train = [r for r in recs if r.get("split") == "train"]
    val = [r for r in recs if r.get("split") == "validation"]
    if train or val:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if train:
            ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
        if val:
            ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation loss")
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.legend(), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(plots / "loss.png", dpi=100)
        plt.close(fig)
        out.append(plots / "loss.png")
    keys = sorted({k for r in val for k, v in r.items() if isinstance(v, float) and k != "loss"})
    if val and keys:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for k in keys:
            ax.plot([r["step"] for r in val], [r.get(k) for r in val], "o-", label=k)
        ax.set_xlabel("step"), ax.set_title("validation metrics"), ax.legend(fontsize=8), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(plots / "metrics.png", dpi=100)
        plt.close(fig)
        out.append(plots / "metrics.png")
    cm = artifacts.get("confusion_matrix")
    if cm and len(cm["labels"]) <= 60:
        import numpy as np

        m = np.array(cm["matrix"])
        n = len(cm["labels"])
        size = max(4, min(14, 0.35 * n + 2))
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(n), cm["labels"], rotation=90, fontsize=7)
        ax.set_yticks(range(n), cm["labels"], fontsize=7)
        ax.set_xlabel("predicted"), ax.set_ylabel("true")
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if m[i, j] > m.max() / 2 else "black")
        fig.tight_layout()
        fig.savefig(plots / "confusion_matrix.png", dpi=100)
        plt.close(fig)
        out.append(plots / "confusion_matrix.png")
    for name, spec in artifacts.get("figures", {}).items():  # metric- or task-provided line figures
        path = plots / f"{name}.png"
        _line_panels(spec, path, plt)
        out.append(path)
    return out


def _line_panels(spec: dict, path: Path, plt) -> None:
    """Render a JSON figure spec: ``{"title", "panels": [{"title", "lines": [{"label", "x", "y", "style"}]}]}``.

    Metrics return such specs from ``artifacts()["figures"]`` (forecasts: context, truth and
    prediction), so the report draws them without knowing the modality.
    """
    panels = spec.get("panels", [])[:12]
    if not panels:
        return
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for line in panel.get("lines", []):
            ax.plot(line["x"], line["y"], line.get("style", "-"), label=line.get("label"), linewidth=1)
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if spec.get("title"):
        fig.suptitle(spec["title"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
                                    for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _provenance(run_dir: Path, split: str) -> str:
    """Which checkpoint the final numbers come from, how long training took, and why a hook stopped
    it early (``run.request_stop``)."""
    best, details = run_dir / "checkpoints" / "best" / "meta.json", run_dir / "eval_details.json"
    meta = json.loads(best.read_text()) if best.is_file() else {}
    info = json.loads(details.read_text()) if details.is_file() else {}
    seconds, stopped = info.get("train_seconds"), info.get("stopped")
    parts = []
    if isinstance(stopped, dict):
        parts.append(f"<b>Stopped early</b> by a plugin at step {stopped.get('step')} (epoch "
                     f"{int(stopped.get('epoch') or 0) + 1}): {html.escape(str(stopped.get('reason')))}.")
    if meta:
        value = meta.get("value")
        shown = f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))
        parts.append(f"The final metrics on the <b>{html.escape(split)}</b> split come from the best checkpoint: step "
                     f"<b>{meta.get('step')}</b> (epoch {int(meta.get('epoch', 0)) + 1}), validation "
                     f"{html.escape(str(meta.get('monitor')))} = <b>{shown}</b>.")
    if seconds is not None:
        parts.append(f"Training took {seconds:.1f} s.")
    return "<p>" + " ".join(parts) + "</p>" if parts else ""


def _export_checks(exports: dict | None) -> str:
    """One row per export: its verification against the eager model (and the int8 model's)."""
    rows = []
    for fmt, folder in (exports or {}).items():
        path = Path(folder) / "export.json"
        if not path.is_file():
            continue
        meta = json.loads(path.read_text())
        v = meta.get("verification") or {}
        row = {"export": fmt, "max |export - eager|": v.get("max_abs_diff"), "tolerance": v.get("tolerance"),
               "prediction agreement": v.get("prediction_agreement", "-"), "size MB": round(meta.get("size_bytes", 0) / 1e6, 1)}
        if meta.get("int8"):
            row["int8 agreement"] = meta["int8"].get("prediction_agreement", meta["int8"].get("max_relative_diff", "-"))
        rows.append(row)
    return _table(rows)


def write_report(run_dir: Path, recipe, results: dict, artifacts: dict, data: dict, split: str, task,
                 exports: dict | None = None) -> Path:
    """Write plots and ``report.html`` (images inlined, so the file stands alone): the final metrics
    and the checkpoint they come from, curves, per-class results, the data, the export checks."""
    import yaml

    plots = make_plots(run_dir, artifacts)
    env = json.loads((run_dir / "environment.json").read_text()) if (run_dir / "environment.json").is_file() else {}
    imgs = "".join(f'<figure><img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                   f"<figcaption>{p.stem.replace('_', ' ')}</figcaption></figure>" for p in plots)
    dropped = [{"split/reason": k, "rows": v} for k, v in (data.get("dropped") or {}).items()]
    examples = [{"split": k, "examples": v} for k, v in data.get("examples", {}).items()]
    metrics = [{"metric": k, "value": v} for k, v in results.items()]
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>fmkit report: {html.escape(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%}}figure{{display:inline-block;margin:0 1em 1em 0}}
pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}}</style></head><body>
<h1>fmkit run {html.escape(run_dir.name)}</h1>
<p>task <b>{html.escape(recipe.task.name)}</b>, model <b>{html.escape(recipe.model.name)}</b>; final metrics on the <b>{split}</b> split.</p>
<h2>Final metrics</h2>{_provenance(run_dir, split)}{_table(metrics)}
<h2>Curves</h2>{imgs or '<p>no curves recorded</p>'}
<h2>Per-class results</h2>{_table(artifacts.get('per_class', [])) or '<p>not a classification task</p>'}
<h2>Exports</h2>{_export_checks(exports) or '<p>none (export.formats is empty)</p>'}
<h2>Data</h2>{_table(examples)}<h3>Dropped while cleaning</h3>{_table(dropped) or '<p>none</p>'}
<h2>Recipe (resolved)</h2><pre>{html.escape(yaml.safe_dump(recipe.to_dict(), sort_keys=False))}</pre>
<h2>Environment</h2><pre>{html.escape(json.dumps(env, indent=2))}</pre>
</body></html>"""
    path = run_dir / "report.html"
    atomic_write_text(path, doc)
    return path
