"""Shared helpers for the benchmark scripts: locating ../shared/data and running recipes."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def require_shared(sub: str) -> Path:
    """The folder ``../shared/data/<sub>``, or exit with the reason (a user's clone has no shared/)."""
    path = SHARED / sub
    if not path.exists():
        print(f"skipped: {path} is not present (the real data sets live in ../shared/data next to the repository)")
        sys.exit(0)
    return path


def run_recipe(recipe: str, overrides: list[str] | None = None):
    """Train a recipe from the repository root; returns (results, seconds, run directory)."""
    import os

    import fmkit

    os.chdir(ROOT)
    t = time.perf_counter()
    run = fmkit.train(str(ROOT / recipe), overrides=(overrides or []) + ["train.progress=off"])
    results = dict(run.results, _train_seconds=run.train_seconds)
    return results, time.perf_counter() - t, run.run_dir


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "MISSES"


def finished_run(path: str):
    """A finished run directory as the :class:`fmkit.engine.run.Run` ``fmkit.train`` returned for it
    (results from ``eval.json``, training seconds from ``eval_details.json``): a benchmark reuses it
    instead of training the same settings again."""
    import json

    from fmkit.engine.run import Run

    rd = Path(path).resolve()
    details = json.loads((rd / "eval_details.json").read_text())
    return Run(run_dir=rd, results=json.loads((rd / "eval.json").read_text()), train_seconds=details["train_seconds"])


def reuse_arg(values: list[str], keys: tuple[str, ...]) -> dict[str, str]:
    """``--reuse KEY=RUN`` values as a dict, refusing keys the script does not have."""
    out = {}
    for v in values:
        key, _, run = v.partition("=")
        if key not in keys or not run:
            raise SystemExit(f"--reuse {v}: give KEY=RUN_DIR with KEY one of {', '.join(keys)}")
        out[key] = run
    return out


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: ``b`` and ``c`` are the cases only one of two models gets right."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def spread_verdict(values: list[float], target: float, higher_is_better: bool = True) -> str:
    """``meets`` when every repetition meets the target, ``MISSES`` when none does, else not resolved."""
    ok = [(v >= target) if higher_is_better else (v <= target) for v in values]
    return "meets" if all(ok) else ("MISSES" if not any(ok) else "NOT RESOLVED (repetitions on both sides of)")
