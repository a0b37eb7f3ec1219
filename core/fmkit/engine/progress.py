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


class TrainingBar:
    """Loss, learning rate, samples/s and ETA for the training loop; redrawn at most 5 times a second.

    The bar is redrawn from ``update`` on the training thread, between steps, not by rich's
    refresh thread: a thread that wakes ten times a second to render takes the GIL and a core from
    the training threads in the middle of a step, which costs every step a few percent on a CPU.
    """

    def __init__(self, total_steps: int, start_step: int, setting: str = "auto"):
        self.enabled = interactive(setting)
        self.last = 0.0
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False,
                                 auto_refresh=False)
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, info="")
        self.progress.start()

    def update(self, step: int, info: dict | None = None) -> None:
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
