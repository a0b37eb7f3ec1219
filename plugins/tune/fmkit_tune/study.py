"""``fmkit tune`` / :func:`fmkit_tune.tune`: plan the study, run its workers, write its outputs.

A study lives in one folder (``<tracking.runs_dir>/tune/<study>`` by default): ``plan.json`` (the
base recipe and the search, so a re-run can tell it is the same study), ``study.db`` (SQLite
storage unless ``--storage`` names another), ``trials/trial-NNNN`` (each trial an ordinary run
directory), ``logs/`` (worker output with ``--workers``), and the outputs of :mod:`.outputs`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fmkit
from fmkit.errors import FmkitError, UsageError
from fmkit.utils.atomic import atomic_write_text

from . import outputs
from .checks import objective, recipe_value
from .settings import TuneSettings
from .storage import counts, default_storage, load_study, open_storage, recover

#: settings a re-run may change without making it another study
_FREE = ("trials", "timeout", "storage", "study", "dir")


@dataclass
class TuneResult:
    """What a study run returns (and ``fmkit tune`` prints)."""

    study: str
    directory: Path
    storage: str
    metric: str
    direction: str
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    #: the best trial's test results, scored once at the end (None without a test split)
    test: dict | None = None
    best_recipe: Path | None = None
    trials: list[dict] = field(default_factory=list)
    interrupted: bool = False
    html_missing: list[str] = field(default_factory=list)


def _plan(recipe, settings: TuneSettings, name: str, study_dir: Path, storage: str, trials: int,
          timeout: float | None, workers: int) -> dict:
    metric, direction = objective(settings, recipe)
    base = recipe.to_dict()
    base.pop("tune", None)
    threads = None
    if workers > 1 and base["train"].get("threads") is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    return {"study": name, "storage": storage, "dir": str(study_dir.resolve()), "base": base,
            "tune": settings.model_dump(mode="json", by_alias=True), "metric": metric, "direction": direction,
            "trials": trials, "timeout": timeout, "threads": threads, "warmup": settings.warmup_evaluations,
            "pruner": settings.pruner, "space_keys": list(settings.space)}


def _same_study(old: dict, new: dict) -> list[str]:
    """What differs between an existing study's plan and this run's, other than the budget."""
    diffs = []
    if old.get("base") != new["base"]:
        sections = sorted({k for k in set(old.get("base", {})) | set(new["base"])
                           if old.get("base", {}).get(k) != new["base"].get(k)})
        diffs.append(f"the recipe ({', '.join(sections)})")
    o = {k: v for k, v in (old.get("tune") or {}).items() if k not in _FREE}
    n = {k: v for k, v in new["tune"].items() if k not in _FREE}
    diffs += [f"tune.{k}" for k in sorted(set(o) | set(n)) if o.get(k) != n.get(k)]
    return diffs


def _enqueue_first(study, settings: TuneSettings, plan: dict, enqueue: list[dict] | None) -> None:
    """On a new study: the recipe's own values (``tune.baseline``), then ``enqueue``."""
    first = []
    if settings.baseline:
        first.append({k: recipe_value(plan["base"], k) for k in settings.space})
    first += list(enqueue or [])
    for params in first:
        unknown = set(params) - set(settings.space)
        if unknown:
            raise UsageError(f"enqueued parameters {sorted(unknown)} are not in tune.space ({list(settings.space)})")
        study.enqueue_trial(params)


def run_worker(plan: dict, index: int, on_trial=None, on_report=None) -> None:
    """Run trials until the study holds ``plan["trials"]`` (or ``plan["timeout"]`` passes)."""
    import optuna

    from .trial import make_objective

    settings = TuneSettings.model_validate(plan["tune"])
    started = time.monotonic()
    peek = optuna.load_study(study_name=plan["study"], storage=open_storage(plan["storage"]))
    seed = settings.seed + 1000 * index + len(peek.get_trials(deepcopy=False))  # never a repeated sequence
    study = load_study(plan, settings, settings.space, seed)
    objective_fn = make_objective(plan, settings.space, on_report)
    callbacks = [lambda st, t: on_trial()] if on_trial else []
    while True:
        done, running = counts(study)
        if done + running >= plan["trials"]:
            return
        if plan.get("timeout") and time.monotonic() - started > plan["timeout"]:
            return
        study.optimize(objective_fn, n_trials=1, catch=(FmkitError,), callbacks=callbacks)


def _run_workers(plan: dict, plan_path: Path, workers: int, show) -> None:
    """``workers`` processes on this machine against the same storage; the table polls it."""
    logs = Path(plan["dir"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(workers):
        log = open(logs / f"worker-{i}.log", "ab")
        procs.append((subprocess.Popen([sys.executable, "-m", "fmkit_tune.worker", str(plan_path), str(i)],
                                       stdout=log, stderr=subprocess.STDOUT), log))
    try:
        while any(p.poll() is None for p, _ in procs):
            show()
            time.sleep(2)
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: they stop at a step with a checkpoint
        for p, _ in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.terminate()
        raise
    finally:
        for _, log in procs:
            log.close()
    failed = [(i, p.returncode) for i, (p, _) in enumerate(procs) if p.returncode not in (0,)]
    if failed:
        i, code = failed[0]
        tail = (logs / f"worker-{i}.log").read_text(errors="replace").strip().splitlines()[-5:]
        if code in (130, 143, -2, -15):
            raise KeyboardInterrupt
        raise FmkitError(f"worker {i} exited with code {code}; the end of {logs / f'worker-{i}.log'}:\n  "
                         + "\n  ".join(tail))


def run_study(recipe: Any, overrides: list[str] | None = None, trials: int | None = None,
              timeout: float | None = None, workers: int = 1, storage: str | None = None, study: str | None = None,
              directory: str | None = None, enqueue: list[dict] | None = None, progress: bool = True) -> TuneResult:
    """Run (or continue) the study of ``recipe``'s ``tune:`` section. Re-running the same call after a
    crash or Ctrl-C continues it: finished trials are kept, interrupted ones run again from their
    last checkpoint, and the study stops when it holds ``trials`` trials."""
    import optuna
    from rich.console import Console
    from rich.live import Live

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if workers < 1:
        raise UsageError(f"--workers {workers}: give 1 or more")
    loaded = fmkit.load_recipe(recipe, overrides)  # the tune: section is checked with the rest
    settings = loaded.section("tune")
    if settings is None:
        raise UsageError("the recipe has no tune: section: add one naming the search space, e.g.\n"
                         "tune:\n  space:\n    optimizer.lr: {float: [1e-5, 1e-3], log: true}")
    stem = Path(recipe).stem if isinstance(recipe, (str, os.PathLike)) else "study"
    name = study or settings.study or stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"study name {name!r}: use letters, digits, '.', '-' and '_'")
    study_dir = Path(directory or settings.dir or Path(loaded.tracking.runs_dir) / "tune" / name)
    grid = None
    if settings.sampler == "grid":
        grid = 1
        for p in settings.space.values():
            grid *= len(p.grid())
    n = trials or settings.trials or grid or 20
    if grid is not None and n > grid:
        print(f"note: the grid has {grid} points: the study stops at {grid} trials", file=sys.stderr)
        n = grid
    url = storage or settings.storage
    storage_obj = open_storage(url) if url else None  # a server that cannot be reached: nothing written
    study_dir.mkdir(parents=True, exist_ok=True)
    if storage_obj is None:
        url = default_storage(study_dir)
        storage_obj = open_storage(url)
    plan = _plan(loaded, settings, name, study_dir, url, n, timeout or settings.timeout, workers)
    plan_path = study_dir / "plan.json"
    if plan_path.is_file():
        diffs = _same_study(json.loads(plan_path.read_text()), plan)
        if diffs:
            raise UsageError(f"study {name!r} in {study_dir} was started with another setup; changed: "
                             f"{', '.join(diffs)}. Continue it with the same recipe, or start another study "
                             "with --study NAME")
    atomic_write_text(plan_path, json.dumps(plan, indent=2) + "\n")

    st = optuna.create_study(storage=storage_obj, study_name=name, direction=plan["direction"], load_if_exists=True)
    if st.direction.name.lower() != plan["direction"]:
        raise UsageError(f"study {name!r} in {url} {st.direction.name.lower()}s; this recipe asks to "
                         f"{plan['direction']} {plan['metric']}: use another --study name")
    if not st.get_trials(deepcopy=False):
        _enqueue_first(st, settings, plan, enqueue)
    again = recover(st, storage_obj)
    console = Console(stderr=True)
    if again:
        console.print(f"continuing study {name}: trial(s) {', '.join(map(str, again))} run again "
                      "(interrupted before they finished)", soft_wrap=True)
    live_values: dict[int, tuple] = {}

    def table():
        return outputs.render_table(outputs.trial_rows(st, plan["space_keys"]), plan, live_values)

    result = TuneResult(name, study_dir, url, plan["metric"], plan["direction"])
    with Live(table(), console=console, refresh_per_second=1, transient=False, auto_refresh=False) \
            if progress else _Quiet() as live:
        def show():
            live.update(table(), refresh=True)

        def on_report(number, ev, step, value):
            live_values[number] = (ev, step, value)
            show()

        try:
            if workers == 1:
                run_worker(plan, 0, on_trial=show, on_report=on_report)
            else:
                _run_workers(plan, plan_path, workers, show)
        except KeyboardInterrupt:
            result.interrupted = True
        except BaseException:  # a worker that failed: the trials so far are still written down
            try:
                _finish(result, st, plan, study_dir, score_test=False)
            except Exception:
                pass
            raise
        show()
    _finish(result, st, plan, study_dir, score_test=not result.interrupted)
    if result.interrupted:
        console.print(f"interrupted: the study is saved in {study_dir}; run the same command again to continue it",
                      soft_wrap=True)
    return result


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *a, **k):
        pass


def _finish(result: TuneResult, st, plan: dict, study_dir: Path, score_test: bool) -> None:
    rows = outputs.trial_rows(st, plan["space_keys"])
    result.trials = rows
    outputs.write_trials_csv(study_dir / "trials.csv", rows)
    best = outputs.best_trial(st)
    if best is not None:
        info = outputs.write_best(study_dir, plan, best, score_test)
        result.best_trial, result.best_value, result.best_params = best.number, best.value, dict(best.params)
        result.test, result.best_recipe = info.get("test"), study_dir / "best.yaml"
    result.html_missing = outputs.write_html(study_dir / "study.html", st, f"fmkit-tune study {plan['study']}")
