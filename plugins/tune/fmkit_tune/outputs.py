"""What a study leaves in its folder: ``trials.csv``, ``best.yaml`` (the best trial's complete recipe,
ready for ``fmkit train``), ``best.json`` (its validation and, once, test results) and ``study.html``
(Optuna's own plots); and the live table of trials."""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState
from rich.table import Table

import fmkit
from fmkit.utils.atomic import atomic_write_text

from .checks import override


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def trial_rows(study: optuna.Study, space_keys: list[str]) -> list[dict[str, Any]]:
    """One flat row per trial (what ``trials.csv`` holds)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        note = a.get("pruned") or a.get("error") or ("interrupted: tried again" if a.get("interrupted") else "")
        if a.get("retry_of") is not None:
            note = f"retry of trial {a['retry_of']}" + (f"; {note}" if note else "")
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     **{k: t.params.get(k) for k in space_keys}, "steps": a.get("steps"),
                     "seconds": round(seconds, 1) if seconds is not None else None, "run_dir": a.get("run_dir"),
                     "note": note, "last_metrics": json.dumps(a.get("last_metrics") or a.get("validation") or {})})
    return rows


def write_trials_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def best_trial(study: optuna.Study):
    """The best completed trial (pruned and failed ones never win), or None."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        return None
    return (max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min)(done, key=lambda t: t.value)


def write_best(study_dir: Path, plan: dict, best, score_test: bool) -> dict:
    """``best.yaml`` and ``best.json``; the test split is scored here, once per best trial."""
    params = dict(best.params)
    recipe = fmkit.load_recipe(plan["base"], [override(k, v) for k, v in params.items()])
    info_path = study_dir / "best.json"
    old = json.loads(info_path.read_text()) if info_path.is_file() else {}
    info = {"trial": best.number, "params": params, "metric": plan["metric"], "direction": plan["direction"],
            "validation": best.value, "run_dir": best.user_attrs.get("run_dir"), "test": None}
    if old.get("trial") == best.number and "test" in old:
        info["test"] = old["test"]  # scored already: the test split is used once
        info["test_note"] = old.get("test_note")
    elif score_test:
        try:
            info["test"] = fmkit.evaluate(best.user_attrs["run_dir"], split="test")
        except fmkit.FmkitError as e:
            info["test_note"] = f"not scored: {e}"
    head = (f"# best trial {best.number} of study {plan['study']}: validation {plan['metric']} = {best.value:.6g}"
            + (f", test {plan['metric']} = {info['test'].get(plan['metric']):.6g}"
               if isinstance((info["test"] or {}).get(plan["metric"]), (int, float)) else "")
            + "\n# params: " + ", ".join(f"{k}={v!r}" for k, v in params.items())
            + "\n# train it: fmkit train best.yaml\n")
    atomic_write_text(study_dir / "best.yaml", head + yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    atomic_write_text(info_path, json.dumps(info, indent=2, default=str) + "\n")
    return info


def write_html(path: Path, study: optuna.Study, title: str) -> list[str]:
    """``study.html``: optimisation history, parameter importances, parallel coordinates and
    intermediate values (Optuna's plotly figures, plotly.js inline: the page works offline).
    Returns the plots that could not be drawn, with the reason."""
    import optuna.visualization as vis

    parts, missing = [], []
    plots = [("optimisation history", vis.plot_optimization_history),
             ("parameter importances", vis.plot_param_importances),
             ("parallel coordinates", vis.plot_parallel_coordinate),
             ("intermediate values", vis.plot_intermediate_values)]
    import warnings

    first = True
    for name, plot in plots:
        try:
            with warnings.catch_warnings():  # "too few trials for importances" and the like: said below
                warnings.simplefilter("ignore")
                fig = plot(study)
            parts.append(f"<h2>{html.escape(name)}</h2>"
                         + fig.to_html(full_html=False, include_plotlyjs=True if first else False))
            first = False
        except Exception as e:  # too few trials for importances, no intermediate values...
            missing.append(f"{name}: {e}")
            parts.append(f"<h2>{html.escape(name)}</h2><p>not drawn: {html.escape(str(e))}</p>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>")
    atomic_write_text(path, page)
    return missing


def render_table(rows: list[dict], plan: dict, live: dict | None = None, limit: int = 25) -> Table:
    """The live table: the latest trials, the running ones with their latest evaluation."""
    keys = list(plan["space_keys"])
    done = sum(r["state"] in ("complete", "pruned") for r in rows)
    t = Table(title=f"study {plan['study']}: {done}/{plan['trials']} trials, {plan['direction']} {plan['metric']}",
              title_justify="left")
    for head in ["#", "state", plan["metric"], *keys, "steps", "s"]:
        t.add_column(head, no_wrap=True)
    t.add_column("note", overflow="ellipsis", no_wrap=True, max_width=60)
    for r in rows[-limit:]:
        note = r["note"]
        if r["state"] == "running" and live and r["trial"] in live:
            ev, step, value = live[r["trial"]]
            note = f"evaluation {ev} (step {step}): {_fmt(value)}"
        t.add_row(str(r["trial"]), r["state"], _fmt(r["value"]), *(_fmt(r[k]) for k in keys), _fmt(r["steps"]),
                  _fmt(r["seconds"]), note[:80])
    return t
