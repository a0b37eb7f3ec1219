"""The background logger: one thread per MLflow run that sends everything the hooks queue, so the
training thread only ever appends to a queue.

The hooks put *jobs* (a callable taking the :class:`mlflow.MlflowClient`) and *metrics* on the
queue; the thread sends consecutive metrics as one ``log_batch``, at most one such request every
``metrics_interval`` seconds (fewer requests, less time taken from the training thread). When a
request fails (the server is down, a network error) the worker warns once, drops what comes in
for ``retry_after`` seconds, then tries again; training never waits for it and ``metrics.jsonl``
keeps every metric anyway.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from typing import Any, Callable

log = logging.getLogger("fmkit.mlflow")

_STOP = object()
BATCH = 1000  # MLflow's limit of metrics per log_batch


class Worker:
    """Sends queued jobs and metrics to one tracking server from a daemon thread.

    ``ensure_run`` is a job that creates (or re-opens) the MLflow run and returns its id; it runs
    before anything that needs the run id, and again after a failure, so a server that comes back
    up gets the rest of the run."""

    def __init__(self, uri: str | None, settings: Any, ensure_run: Callable[[Any], str], maxsize: int = 100_000,
                 client: Any = None):
        self.uri, self.settings, self.ensure_run = uri, settings, ensure_run
        self.run_id: str | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.sent = self.failed = self.dropped = 0
        self.warned = False
        self._retry_at = 0.0
        self._last_metrics = 0.0
        self._client = client  # None: an MlflowClient for ``uri``, made here (else on the worker thread)
        if self._client is None:
            # Import MLflow and make the client now, at the run's start, not on the worker thread while
            # the first steps train: the import takes about a second of CPU holding the GIL, which
            # made the first few hundred steps of a short run measurably slower. No request is sent.
            try:
                self._client_()
            except Exception:  # reported by the worker thread, which tries again
                self._client = None
        self.thread = threading.Thread(target=self._loop, name="fmkit-mlflow", daemon=True)
        self.thread.start()

    # --------------------------------------------------------------- the training thread's side
    def job(self, fn: Callable[[Any, str], None], what: str, force: bool = False) -> None:
        """Queue ``fn(client, run_id)``; never blocks (a full queue drops the job and counts it).
        ``force``: try it even while the server counts as down (the end of the run)."""
        self._put(("force" if force else "job", fn, what))

    def metrics(self, values: dict[str, float], step: int) -> None:
        """Queue metrics logged at ``step`` (numbers only; the timestamp is taken now)."""
        stamp = int(time.time() * 1000)
        self._put(("metrics", [(k, float(v), stamp, step) for k, v in values.items()], None))

    def _put(self, item) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float) -> bool:
        """Send what is queued (waiting at most ``timeout`` seconds) and stop; False if it gave up."""
        try:
            self.queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # --------------------------------------------------------------- the worker thread
    def _client_(self):
        if self._client is None:
            for var, value in (("MLFLOW_HTTP_REQUEST_TIMEOUT", max(1, math.ceil(self.settings.request_timeout))),
                               ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", self.settings.retries),
                               ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1),
                               ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 0.2),
                               ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
                               ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")):  # stdout is fmkit's (--json)
                os.environ.setdefault(var, str(value))  # the user's own settings win
            import mlflow

            if self.uri is None:  # neither the section nor MLFLOW_TRACKING_URI says: MLflow's default
                self.uri = mlflow.get_tracking_uri()
            self._client = mlflow.MlflowClient(tracking_uri=self.uri)
        return self._client

    def _loop(self) -> None:
        pending = None
        while True:
            item = pending if pending is not None else self.queue.get()
            pending = None
            if item is _STOP:
                return
            kind, payload, what = item
            if kind == "metrics":  # gather the metrics queued behind it into one request
                wait = self._last_metrics + self.settings.metrics_interval - time.monotonic()
                if wait > 0 and not self._retry_at:  # at most one metrics request per interval
                    time.sleep(wait)
                self._last_metrics = time.monotonic()
                rows = list(payload)
                while len(rows) < BATCH:
                    try:
                        nxt = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not _STOP and nxt[0] == "metrics":
                        rows.extend(nxt[1])
                    else:
                        pending = nxt
                        break
                self._send(lambda c, rid: _log_metrics(c, rid, rows), "metrics")
            else:
                self._send(payload, what, force=kind == "force")

    def _send(self, fn: Callable[[Any, str], None], what: str, force: bool = False) -> None:
        if not force and self._retry_at and time.monotonic() < self._retry_at:
            self.dropped += 1
            return
        try:
            client = self._client_()
            if self.run_id is None:
                self.run_id = self.ensure_run(client)
            fn(client, self.run_id)
            self.sent += 1
            if self._retry_at:
                log.info("fmkit-mlflow: %s answers again; logging resumed", self.uri)
                self._retry_at = 0.0
        except Exception as e:  # never let logging stop training: say so once, keep going
            self.failed += 1
            self._retry_at = time.monotonic() + self.settings.retry_after
            if not self.warned:
                self.warned = True
                reason = (str(e).strip().splitlines() or [""])[0][:300]
                log.warning("fmkit-mlflow: could not log %s to MLflow at %s (%s: %s); training goes on and its "
                            "metrics stay in metrics.jsonl. Logging tries again every %gs; this warning is not "
                            "repeated", what, self.uri, type(e).__name__, reason, self.settings.retry_after)

    def summary(self) -> str:
        return f"{self.sent} requests sent, {self.failed} failed, {self.dropped} dropped while the server was down"


def _log_metrics(client, run_id: str, rows: list) -> None:
    from mlflow.entities import Metric

    for s in range(0, len(rows), BATCH):
        client.log_batch(run_id, metrics=[Metric(k, v, t, step) for k, v, t, step in rows[s:s + BATCH]],
                         synchronous=True)
