"""The background logger on its own: the training thread never waits for MLflow, a failing server
is reported once, and queued metrics go out in batches."""
from __future__ import annotations

import logging
import threading
import time

from fmkit_mlflow.settings import MlflowSettings
from fmkit_mlflow.worker import Worker


class FakeClient:
    """Records log_batch calls; ``gate`` holds every call until it is set (a slow server)."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        self.gate.wait()
        self.batches.append([(m.key, m.value, m.step) for m in metrics])


def test_mlflow_worker_batches_metrics_in_order_off_the_calling_thread():
    client = FakeClient()
    client.gate.clear()  # the "server" answers nothing until released
    w = Worker("fake://", MlflowSettings(metrics_interval=0.1), lambda c: "run-1", client=client)
    started = time.perf_counter()
    for step in range(1, 2001):
        w.metrics({"train/loss": 1.0 / step, "train/lr": 0.1}, step)
    queued = time.perf_counter() - started
    assert queued < 1.0 and client.batches == []  # queued at once, nothing sent yet: nothing waited
    client.gate.set()
    assert w.close(30)
    rows = [r for b in client.batches for r in b]
    assert [(k, s) for k, _, s in rows] == [(k, s) for s in range(1, 2001) for k in ("train/loss", "train/lr")]
    assert 2 <= len(client.batches) < 100  # one log_batch per up to 1000 metrics, not one per step


def test_mlflow_worker_warns_once_when_the_server_is_down(caplog):
    calls = []

    def unreachable(client):
        calls.append(1)
        raise ConnectionError("Connection refused")

    w = Worker("http://127.0.0.1:9", MlflowSettings(retry_after=30), unreachable, client=FakeClient())
    with caplog.at_level(logging.WARNING, logger="fmkit.mlflow"):
        for step in range(200):
            w.metrics({"train/loss": 0.5}, step)
            w.job(lambda c, rid: None, "a tag")
        w.job(lambda c, rid: None, "the run's end", force=True)  # the end is tried even while down
        assert w.close(30)
    warnings = [r for r in caplog.records if "could not log" in r.getMessage()]
    assert len(warnings) == 1 and "Connection refused" in warnings[0].getMessage()
    assert "metrics.jsonl" in warnings[0].getMessage()
    assert len(calls) == 2 and w.failed == 2 and w.dropped > 0  # the first try and the forced end only
