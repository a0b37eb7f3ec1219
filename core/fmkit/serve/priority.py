"""Model calls in the background: what the server's large-input lane runs on.

Only the model call itself goes to the background thread (ONNX Runtime releases the GIL while it
runs); decoding, tokenising and formatting stay on an ordinary thread, so a background thread
rarely holds the GIL that the event loop and the short-input lane wait for. The model run there is
single-threaded (a session of its own), so lowering that one thread lowers all of its work, and
no thread pool is ever started from it (a thread inherits its creator's scheduling on Linux).

On Linux the thread goes to the ``SCHED_IDLE`` scheduling class: it runs on a core no ordinary
thread wants, and any ordinary thread that wakes up (the event loop on a new request, ONNX Runtime's
workers between two operators of a short request) takes the core from it at once. A raised nice
value alone only shrinks its share, and a waking thread may still wait for its time slice to end
(``benchmarks/serve_heavy_lane.py`` measured no gain from nice +10). Where ``SCHED_IDLE`` is not
available the nice value is raised to 19 instead; no privilege is needed for either.

``FMKIT_HEAVY_LANE=shared`` in the server's environment turns this off (:func:`heavy_lane_mode`).
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
from typing import Any, Callable

from ..errors import UsageError

log = logging.getLogger("fmkit")


def move_to_background() -> str | None:
    """Move the calling thread to the background: ``"idle"`` (Linux's ``SCHED_IDLE`` class),
    ``"nice 19"`` (where that class is not available), or ``None`` when neither could be done."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None and hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, idle, os.sched_param(0))  # 0: the calling thread
            if os.sched_getscheduler(0) == idle:
                return "idle"
        except OSError as e:
            log.info("could not move a thread to SCHED_IDLE (%s): trying nice 19", e)
    if hasattr(os, "setpriority") and hasattr(os, "getpriority"):
        import threading

        try:
            tid = threading.get_native_id()  # Linux schedules threads one by one
            before = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, 19)
            if os.getpriority(os.PRIO_PROCESS, tid) > before:
                return "nice 19"
        except OSError as e:
            log.info("could not lower a thread's priority (%s): large inputs share the cores evenly", e)
    return None


class BackgroundRunner:
    """``run(batch)`` called on a thread of its own moved to the background
    (:func:`move_to_background`); the caller waits for the answer. ``lowered`` says how its priority
    was lowered (``None``: it could not be, on this platform; use the runner only when it was)."""

    def __init__(self, run: Callable[[dict], Any]):
        self.run = run
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fmkit-background")
        self.lowered = self.pool.submit(move_to_background).result()

    def __call__(self, batch: dict) -> Any:
        return self.pool.submit(self.run, batch).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False)


#: ``FMKIT_HEAVY_LANE`` values: the large-input lane's model calls in the background, or as the other lane's
HEAVY_LANE_MODES = ("background", "shared")


def heavy_lane_mode() -> str:
    """How the large-input lane runs the model: ``background`` (the default: a single-threaded model
    call on a background thread, see :func:`move_to_background`) or ``shared`` (as the other lane
    does, on the same multi-threaded session, at the same priority); ``FMKIT_HEAVY_LANE`` in the
    server's environment chooses."""
    mode = os.environ.get("FMKIT_HEAVY_LANE", "").strip().lower() or "background"
    if mode not in HEAVY_LANE_MODES:
        raise UsageError(f"FMKIT_HEAVY_LANE={mode!r}: give one of {', '.join(HEAVY_LANE_MODES)}")
    return mode


def background_predictor(predictor, mode: str):
    """A predictor for the large-input lane whose model calls run single-threaded on a background
    thread (:class:`BackgroundRunner`), built at startup; ``None`` (the lane runs as the other)
    when ``mode`` is ``shared``, when the backend has no single-threaded runner (torch: its thread
    pool would inherit the lowered priority) or when the platform cannot lower a thread's."""
    if mode != "background":
        return None
    single = predictor.background()
    if single is predictor:
        return None
    from ..predictor import Predictor

    runner = BackgroundRunner(single.run_batch)
    if not runner.lowered:
        runner.close()
        return None
    return Predictor(predictor.task, runner, predictor.metadata, predictor.precision)
