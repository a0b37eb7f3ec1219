"""Micro-batching: concurrent requests are gathered (up to a size or a wait) and predicted together
in a worker thread, off the event loop."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


class Overloaded(RuntimeError):
    """More inputs are waiting than the batcher accepts: the server answers 503 with Retry-After
    rather than letting every waiting request's latency grow without bound."""


class MicroBatcher:
    """Collects items from many requests and runs ``predict(list)`` on batches of them.

    ``predict`` returns one outcome per item: a result, or an exception instance that fails that
    item's request alone (an input that cannot be decoded, say) while the rest of the batch is
    answered. An exception raised by ``predict`` fails every request of the batch.

    A batch takes every item already waiting (up to ``max_batch_size``). When the server is idle
    (one item waiting) it runs at once, so a lone client never pays ``max_wait_ms``; under load
    (several items waiting) it waits up to ``max_wait_ms`` for the batch to fill. Items that
    arrive while a batch runs form the next one.

    At most ``max_queue`` inputs wait; a request that would go past it is refused at once with
    :class:`Overloaded` (``None``: no bound).
    """

    def __init__(self, predict: Callable[[list[Any]], list[Any]], max_batch_size: int = 16, max_wait_ms: float = 5.0,
                 max_queue: int | None = 1024):
        self.predict, self.max_batch_size, self.max_wait = predict, max_batch_size, max_wait_ms / 1000
        self.max_queue = max_queue
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.inflight = 0

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        while self.inflight or (self.queue and not self.queue.empty()):  # finish requests in flight
            await asyncio.sleep(0.01)
        if self.task:
            self.task.cancel()

    async def submit(self, items: list[Any], return_exceptions: bool = False) -> list[Any]:
        """Predict ``items`` (one request's inputs); results in the same order. With
        ``return_exceptions`` an item's failure comes back in its place instead of being raised."""
        if self.max_queue is not None and self.queue.qsize() + len(items) > self.max_queue:
            raise Overloaded(f"{self.queue.qsize()} inputs are waiting (the limit is {self.max_queue}); retry shortly")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self.inflight += 1
        try:
            for item, fut in zip(items, futures):
                self.queue.put_nowait((item, fut))
            return list(await asyncio.gather(*futures, return_exceptions=return_exceptions))
        finally:
            self.inflight -= 1

    async def _loop(self) -> None:
        while True:
            item, fut = await self.queue.get()
            batch = [(item, fut)]
            while len(batch) < self.max_batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            busy = len(batch) > 1  # others are waiting too: worth waiting a little for a fuller batch
            deadline = time.monotonic() + (self.max_wait if busy else 0.0)
            while len(batch) < self.max_batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            try:
                results = await asyncio.to_thread(self.predict, [b[0] for b in batch])
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
