"""What the serving and security tests share: one tiny trained run per test process, and a real
uvicorn server on 127.0.0.1 started with ``fmkit serve``'s own configuration."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

_RUN: dict[str, Path] = {}


def tiny_run(tmp_path_factory) -> Path:
    """A tiny text-classification run with a safetensors export, trained once per process (read
    it, never change it: copy it first)."""
    if "run" not in _RUN:
        import fmkit
        from conftest import tiny_recipe

        tmp = tmp_path_factory.mktemp("tiny-run")
        recipe = tiny_recipe(tmp, epochs=1)
        recipe["export"] = {"formats": ["safetensors"]}
        run = fmkit.train(recipe, run_dir=str(tmp / "run"))
        _RUN["run"] = Path(run.run_dir)
        _RUN["export"] = Path(run.exports["safetensors"])
    return _RUN["run"]


def tiny_export(tmp_path_factory) -> Path:
    tiny_run(tmp_path_factory)
    return _RUN["export"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server(app, header_timeout=...) as url:`` a real uvicorn (``fmkit serve``'s
    configuration: header deadline, keep-alive, graceful shutdown) in a thread."""

    def __init__(self, app, **config):
        import uvicorn

        from fmkit.serve.protocol import uvicorn_config

        self.port = free_port()
        config.setdefault("log_level", "warning")
        config.setdefault("timeout_graceful_shutdown", 10)
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
