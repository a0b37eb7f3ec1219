"""Shared helpers for the benchmark scripts: locating ../shared/data and running recipes."""
from __future__ import annotations

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
