"""Model calls at a lower CPU priority: what the server's large-input lane runs on.

Only the model call itself goes to the lowered thread (ONNX Runtime releases the GIL while it
runs); decoding, tokenising and formatting stay on an ordinary thread, so a lowered thread never
holds the GIL that the event loop and the short-input lane wait for. The model run there is
single-threaded (a session of its own), so lowering that one thread lowers all of its work, and
no thread pool is ever started from it (a thread inherits its creator's nice value on Linux).
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from typing import Any, Callable

log = logging.getLogger("fmkit")


def lower_thread_priority(nice: int) -> bool:
    """Raise the calling thread's nice value by ``nice`` (Linux schedules threads one by one;
    lowering one's own priority needs no privilege). Whether it was lowered."""
    if nice <= 0 or not hasattr(os, "setpriority") or not hasattr(os, "getpriority"):
        return False
    try:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, before + nice))
        return os.getpriority(os.PRIO_PROCESS, tid) > before
    except OSError as e:
        log.info("could not lower a thread's priority (%s): large inputs share the cores evenly", e)
        return False


class LowPriorityRunner:
    """``run(batch)`` called on a thread of its own whose nice value is raised by ``nice``; the
    caller waits for the answer. ``lowered`` says whether the priority could be lowered (not on
    every platform): use the runner only when it is."""

    def __init__(self, run: Callable[[dict], Any], nice: int):
        self.run, self.nice = run, nice
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fmkit-low-priority")
        self.lowered = self.pool.submit(lower_thread_priority, nice).result()

    def __call__(self, batch: dict) -> Any:
        return self.pool.submit(self.run, batch).result()
