"""Ctrl-C and SIGTERM during training: noted by a signal handler, acted on at the next step boundary.

A signal that arrives in the middle of a step (between a forward and its backward, or between
two micro-batches of an accumulation window) cannot be saved exactly: the checkpoint would
record a loop position whose gradient was never applied. So the handler only notes it; the
training loop finishes the step (optimizer step, counters, the step's evaluation and checkpoint),
saves an "interrupted" checkpoint and raises :class:`Interrupted`. SIGTERM, what Kubernetes,
Slurm and spot instances send before killing a job, is handled the same way. A second signal
exits at once, without saving.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

#: the signals that stop training with a checkpoint
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving a checkpoint; the process should exit with
    ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM), as a shell reports a signal's end."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """While active (a ``with`` block), SIGINT and SIGTERM set :attr:`signum` instead of stopping
    the process; a second one writes a line and exits at once (``128 + signum``), saving nothing.

    Handlers can be installed only in the main thread: elsewhere the block changes nothing (and
    Python raises no KeyboardInterrupt in other threads). The previous handlers are restored on exit.
    """

    def __init__(self, announce: bool = True):
        self.signum: int | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            sys.stderr.write(f"\n{name} again: exiting now without saving a checkpoint\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        if self.announce:
            sys.stderr.write(f"\n{name}: stopping at the end of this step to save a checkpoint "
                             "(press Ctrl-C again to exit at once without saving)\n")
            sys.stderr.flush()
