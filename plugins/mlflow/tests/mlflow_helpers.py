"""Shared by the fmkit-mlflow tests: the core tests' tiny text recipe with an ``mlflow:`` section,
the fmkit command line in a real subprocess, and a real ``mlflow server`` on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import tiny_recipe  # noqa: E402  (the core tests' generated data and tiny model)


def write_recipe(tmp: Path, mlflow: dict | None = None, name: str = "r.yaml", **extra) -> Path:
    """``tmp/name``: the tiny recipe (120 generated sentences, a 1-layer 16-wide BERT), one epoch,
    with ``mlflow`` as its section when given and ``extra`` top-level sections."""
    recipe = tiny_recipe(tmp, epochs=1)
    if mlflow is not None:
        recipe["mlflow"] = mlflow
    recipe.update(extra)
    path = tmp / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def cli_env(**extra: str) -> dict:
    """This checkout's core and plugin first on the path, ``MLFLOW_*`` of the caller's shell left out."""
    paths = [str(ROOT / "core"), str(ROOT / "plugins" / "mlflow"), os.environ.get("PYTHONPATH", "")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FMKIT_TUNE_"))}
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, paths)), **extra}


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``fmkit ARGS`` in a real subprocess."""
    return subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True,
                          env=env or cli_env(), cwd=cwd, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(folder: Path, timeout: float = 120):
    """A real ``mlflow server`` on a free port of 127.0.0.1 with an SQLite backend and an artifact
    folder in ``folder``; yields its URL once ``/health`` answers, and stops it at the end."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                             "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=cli_env(),
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}): {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer in {timeout}s: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.close()
