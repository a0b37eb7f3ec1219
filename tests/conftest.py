"""Shared fixtures: tiny generated text data, a tiny recipe, and a CLI runner."""
from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

# Under `make test` two pytest-xdist workers share the machine: one intra-op thread each (set before
# torch is imported, and inherited by the CLI subprocesses the tests start) instead of both asking
# for every core, which on two cores makes each slower than running alone.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "tests"))

POS = "good great wonderful lovely excellent superb enjoyable brilliant".split()
NEG = "bad awful terrible boring dreadful poor dull horrible".split()
FILL = "the movie film plot story actors was is and a very quite really".split()


def write_text_data(folder: Path, n: int = 120, seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size in (("train", n), ("test", n // 3)):
        path = folder / f"{split}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for i in range(size):
                label = "pos" if i % 2 == 0 else "neg"
                words = rng.sample(FILL, 4) + rng.sample(POS if label == "pos" else NEG, 2)
                rng.shuffle(words)
                w.writerow([" ".join(words), label])
        paths[split] = str(path)
    return paths


def tiny_recipe(tmp: Path, **train) -> dict:
    paths = write_text_data(tmp / "data")
    return {
        "task": {"name": "text-classification", "max_length": 16, "tokenizer": {"vocab_size": 200}},
        "model": {"name": "hf-classifier", "config": {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
                                                       "num_attention_heads": 2, "intermediate_size": 32,
                                                       "max_position_embeddings": 32}},
        "data": {"train": paths["train"], "test": paths["test"], "validation_split": 0.2, "cache_dir": str(tmp / "cache")},
        "optimizer": {"name": "adamw", "lr": 0.003},
        "train": {"epochs": 2, "batch_size": 8, "seed": 1, "log_every": 2, "progress": "off", **train},
        "tracking": {"runs_dir": str(tmp / "runs"), "tensorboard": False},
    }


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), e.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True, env=e,
                          cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture
def recipe_factory(tmp_path):
    return lambda **train: tiny_recipe(tmp_path, **train)


def _plugin_names() -> set[str]:
    from fmkit import plugins

    return set(plugins._default.infos) if plugins._default is not None else set()


@pytest.fixture(scope="session")
def _session_plugins():
    """The plugins the process-wide manager holds before any test registered one."""
    from fmkit import plugins

    return list(plugins._pending), _plugin_names() if plugins._default is not None else None


@pytest.fixture(autouse=True)
def _no_plugin_leaks(_session_plugins):
    """Plugins a test registers (``register_plugin``, a recipe's ``plugins:``) end with it: a later
    test in this process must not see another test's components or hooks."""
    yield
    from fmkit import plugins

    pending, names = _session_plugins
    plugins._pending[:] = pending
    if plugins._default is None:
        return
    if names is None:  # the manager was created by a test: the next one starts from a fresh one
        plugins._default = None
        return
    for name in _plugin_names() - names:
        plugins._default.unregister(name)
