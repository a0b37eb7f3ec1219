"""Shared by the fmkit-tune tests: the tiny text recipe of the core's tests with a tune: section,
and the fmkit command line in a real subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import tiny_recipe  # noqa: E402  (the core tests' generated data and tiny model)


def study_recipe(tmp: Path, tune: dict, **train) -> Path:
    """``tmp/r.yaml``: the tiny recipe (120 generated sentences, a 1-layer 16-wide BERT) with ``tune``."""
    recipe = tiny_recipe(tmp, **{"epochs": 2, **train})
    recipe["tune"] = tune
    path = tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def cli_env() -> dict:
    """This checkout's core and plugin first on the path (the installed entry point finds the plugin)."""
    paths = [str(ROOT / "core"), str(ROOT / "plugins" / "tune"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def cli(*args: str, cwd: Path, timeout: int = 600, env: dict | None = None,
        **popen) -> subprocess.CompletedProcess:
    """``fmkit ARGS`` in a real subprocess (``env``: default :func:`cli_env`)."""
    return subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True,
                          env=env or cli_env(), cwd=cwd, timeout=timeout, **popen)


def trials(study_dir: Path) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from fmkit_tune.storage import open_storage  # tried again if the study's process is creating the tables

    study = optuna.load_study(study_name=study_dir.name, storage=open_storage(f"sqlite:///{study_dir / 'study.db'}"))
    return study.get_trials(deepcopy=False)
