"""Micro-batching: concurrent requests are gathered (up to a size or a wait) and predicted together
in a worker thread, off the event loop; large inputs take a lane of their own."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


class Overloaded(RuntimeError):
    """More inputs are waiting than the batcher accepts: the server answers 503 with Retry-After
    rather than letting every waiting request's latency grow without bound."""


class _Lane:
    """One queue and the loop that predicts its batches, one batch at a time."""

    def __init__(self, max_batch_size: int, max_wait: float):
        self.max_batch_size, self.max_wait = max_batch_size, max_wait
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    def waiting(self) -> int:
        return self.queue.qsize() if self.queue else 0


class MicroBatcher:
    """Collects items from many requests and runs ``predict(list)`` on batches of them.

    ``predict`` returns one outcome per item: a result, or an exception instance that fails that
    item's request alone (an input that cannot be decoded, say) while the rest of the batch is
    answered. An exception raised by ``predict`` fails every request of the batch.

    A batch takes every item already waiting (up to ``max_batch_size``). When the server is idle
    (one item waiting) it runs at once, so a lone client never pays ``max_wait_ms``; under load
    (several items waiting) it waits up to ``max_wait_ms`` for the batch to fill. Items that
    arrive while a batch runs form the next one.

    Large inputs (``size(item) > heavy_size``: characters of text, bytes of a file) go through a
    second lane, one at a time, in a worker thread of their own: one request of long documents
    keeps that lane busy, not the one every other client's short inputs go through. That lane
    calls ``heavy_predict`` (default ``predict``; the server's runs the model at a lower priority,
    see :mod:`fmkit.serve.priority`). ``predict`` and ``heavy_predict`` must be safe to call from
    two threads at once (a model in inference mode is).

    A request whose client has gone (:meth:`submit` cancelled) has its items dropped from the
    queues: they are never predicted. At most ``max_queue`` inputs wait; a request that would go
    past it is refused at once with :class:`Overloaded` (``None``: no bound).
    """

    def __init__(self, predict: Callable[[list[Any]], list[Any]], max_batch_size: int = 16, max_wait_ms: float = 5.0,
                 max_queue: int | None = 1024, size: Callable[[Any], int] | None = None,
                 heavy_size: int | None = None, heavy_predict: Callable[[list[Any]], list[Any]] | None = None):
        self.predict = predict
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000  # kept for inspection
        self.max_queue = max_queue
        self.size, self.heavy_size = size, heavy_size
        self.heavy_predict = heavy_predict
        self.light = _Lane(max_batch_size, max_wait_ms / 1000)
        self.heavy = _Lane(1, 0.0)
        self.inflight = 0
        self.dropped = 0  # items of abandoned requests never predicted

    @property
    def queue(self) -> asyncio.Queue | None:
        """The main lane's queue."""
        return self.light.queue

    async def start(self) -> None:
        for lane in (self.light, self.heavy):
            lane.queue = asyncio.Queue()
            lane.task = asyncio.create_task(self._loop(lane))

    async def stop(self) -> None:
        while self.inflight or self.light.waiting() or self.heavy.waiting():  # finish requests in flight
            await asyncio.sleep(0.01)
        for lane in (self.light, self.heavy):
            if lane.task:
                lane.task.cancel()

    def _lane(self, item: Any) -> _Lane:
        if self.heavy_size is not None and self.size is not None and self.size(item) > self.heavy_size:
            return self.heavy
        return self.light

    async def submit(self, items: list[Any], return_exceptions: bool = False) -> list[Any]:
        """Predict ``items`` (one request's inputs); results in the same order. With
        ``return_exceptions`` an item's failure comes back in its place instead of being raised.
        Cancelling this call (the client went away) drops the items not yet predicted."""
        waiting = self.light.waiting() + self.heavy.waiting()
        if self.max_queue is not None and waiting + len(items) > self.max_queue:
            raise Overloaded(f"{waiting} inputs are waiting (the limit is {self.max_queue}); retry shortly")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self.inflight += 1
        try:
            for item, fut in zip(items, futures):
                self._lane(item).queue.put_nowait((item, fut))
            return list(await asyncio.gather(*futures, return_exceptions=return_exceptions))
        except asyncio.CancelledError:
            for fut in futures:
                fut.cancel()  # the lanes skip cancelled items
            raise
        finally:
            self.inflight -= 1

    async def _next(self, lane: _Lane, timeout: float | None = None):
        """The next item still wanted (its request not abandoned), or ``None`` past ``timeout``."""
        while True:
            if timeout is None:
                entry = await lane.queue.get()
            else:
                try:
                    entry = await asyncio.wait_for(lane.queue.get(), timeout) if timeout > 0 else lane.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    return None
            if not entry[1].done():
                return entry
            self.dropped += 1

    async def _loop(self, lane: _Lane) -> None:
        while True:
            batch = [await self._next(lane)]
            while len(batch) < lane.max_batch_size and not lane.queue.empty():
                entry = await self._next(lane, 0)
                if entry is None:
                    break
                batch.append(entry)
            busy = len(batch) > 1  # others are waiting too: worth waiting a little for a fuller batch
            deadline = time.monotonic() + (lane.max_wait if busy else 0.0)
            while len(batch) < lane.max_batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                entry = await self._next(lane, timeout)
                if entry is None:
                    break
                batch.append(entry)
            wanted = [b for b in batch if not b[1].done()]  # some abandoned while the batch filled
            self.dropped += len(batch) - len(wanted)
            batch = wanted
            if not batch:
                continue
            try:
                items = [b[0] for b in batch]
                predict = (self.heavy_predict or self.predict) if lane is self.heavy else self.predict
                results = await asyncio.to_thread(predict, items)
                for (_, f), r in zip(batch, results):
                    if f.done():
                        continue
                    if isinstance(r, BaseException):
                        f.set_exception(r)
                    else:
                        f.set_result(r)
            except Exception as e:  # one bad batch fails its requests, never the server
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
