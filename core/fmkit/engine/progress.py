"""Progress display: a rich bar on terminals, silence otherwise."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def interactive(setting: str = "auto") -> bool:
    if setting == "on":
        return True
    if setting == "off":
        return False
    return sys.stderr.isatty()


def track(items: Iterable[T], description: str, setting: str = "auto") -> Iterator[T]:
    """Iterate with a progress bar when attached to a terminal."""
    items = list(items)
    if not interactive(setting) or len(items) < 1000:
        yield from items
        return
    from rich.progress import track as rich_track

    yield from rich_track(items, description=description, transient=True)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingBar:
    """What a person watching a run sees, on stderr: a header, then a rich bar (loss, learning rate,
    samples/s, epoch, elapsed and time left) on a terminal, or one plain line per logged step when
    the output is a file or CI (``train.progress: auto``); a line per evaluation and a notice when a
    new best checkpoint is kept. ``off`` (and every rank but 0) prints nothing.

    The bar is redrawn from ``update`` on the training thread, between steps, not by rich's
    refresh thread: a thread that wakes ten times a second to render takes the GIL and a core from
    the training threads in the middle of a step, which costs every step a few percent on a CPU.
    """

    def __init__(self, total_steps: int, start_step: int, setting: str = "auto", epochs: int = 0):
        self.mode = "off" if setting == "off" else ("bar" if interactive(setting) else "lines")
        self.enabled = self.mode == "bar"
        self.total, self.start_step, self.epochs, self.epoch = total_steps, start_step, epochs, 0
        self.started = time.monotonic()
        self.last = 0.0
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train"), TextColumn("{task.fields[epoch]}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), transient=False,
                                 auto_refresh=False, console=Console(stderr=True))
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, info="", epoch="")
        self.progress.start()

    def _print(self, text: str) -> None:
        if self.mode == "bar":
            self.progress.console.print(text, highlight=False, markup=False)
            self.progress.refresh()
        elif self.mode == "lines":
            print(text, file=sys.stderr, flush=True)

    def header(self, lines: list[str]) -> None:
        """The run's facts before the first step (examples, steps, device, parameters)."""
        for line in lines:
            self._print(line)

    def note(self, text: str) -> None:
        """A line above the bar (an evaluation's metrics, a new best checkpoint)."""
        self._print(text)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.enabled and self.epochs:
            self.progress.update(self.task, epoch=f"epoch {epoch + 1}/{self.epochs}")

    def update(self, step: int, info: dict | None = None) -> None:
        if self.mode == "lines":
            if info:
                elapsed = time.monotonic() - self.started
                done = step - self.start_step
                left = elapsed / done * (self.total - step) if done > 0 else 0.0
                epoch = f" epoch {self.epoch + 1}/{self.epochs}" if self.epochs else ""
                self._print(f"step {step}/{self.total}{epoch}  " + "  ".join(f"{k} {v:.4g}" for k, v in info.items())
                            + f"  elapsed {_clock(elapsed)}  left {_clock(left)}")
            return
        if not self.enabled:
            return
        now = time.monotonic()
        if info is None and now - self.last < 0.2:
            return
        self.last = now
        fields = {}
        if info:
            fields["info"] = "  ".join(f"{k} {v:.4g}" for k, v in info.items())
        self.progress.update(self.task, completed=step, refresh=True, **fields)

    def close(self) -> None:
        if self.enabled:
            self.progress.refresh()
            self.progress.stop()
            self.enabled = False
