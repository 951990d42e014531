"""Many requests at once on one event loop, as many as a remote will take."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)
T = TypeVar("T")

GATE_POLL = 0.02  # seconds a worker waits before looking again at a lowered limit


class Throttle:
    """How many requests may be in flight at a remote, the way TCP paces a connection: ``jobs``
    at first; halved (not below ``floor``) when the remote says slow down (429 or 503), at most
    once per ``calm`` seconds so that one burst of refusals counts once; raised by a quarter
    again (up to ``jobs``) after each ``calm`` seconds of normal answers."""

    def __init__(self, jobs: int, *, floor: int = 4, calm: float = 1.0) -> None:
        self.jobs = max(1, jobs)
        self.limit = self.jobs
        self.floor = min(floor, self.jobs)
        self.calm = calm
        self.lowest = self.jobs  # the least it came down to
        self._last = -calm  # when the limit last changed, or a refusal came

    def heard(self, status: int, remote: str) -> None:
        """An HTTP answer from ``remote``: 429 and 503 mean slow down, anything else is normal."""
        if status in (429, 503):
            self.slow_down(remote)
        else:
            self.answered()

    def slow_down(self, remote: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.calm and self.limit > self.floor:
            self.limit = max(self.floor, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            log.info("%s: asked to slow down; at most %d requests in flight", remote, self.limit)
        self._last = now

    def answered(self) -> None:
        """A normal answer: after a calm spell, a few more requests may go at once."""
        if self.limit < self.jobs:
            now = time.monotonic()
            if now - self._last >= self.calm:
                self.limit = min(self.jobs, self.limit + max(1, self.limit // 4))
                self._last = now


async def bounded_gather(
    items: Iterable[T], work: Callable[[T], Awaitable[None]], jobs: int | Throttle
) -> None:
    """Run ``work`` on every item, at most ``jobs`` at once (or a throttle's limit at the
    time); the first error stops the rest."""
    throttle: Throttle | None = None
    if isinstance(jobs, Throttle):
        throttle, workers = jobs, jobs.jobs
    else:
        workers = max(1, jobs)
    iterator = iter(items)
    active = 0

    async def worker() -> None:
        nonlocal active
        while True:
            while throttle is not None and active >= throttle.limit:
                await asyncio.sleep(GATE_POLL)
            try:
                item = next(iterator)
            except StopIteration:
                return
            active += 1
            try:
                await work(item)
            finally:
                active -= 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


class Feed(Generic[T]):
    """Work handed over from any thread, done by ``jobs`` coroutines on ``loop`` (another
    thread's): one hop per item, no thread waiting on it. Items wait in the order they came,
    or lowest ``rank`` first. ``stop`` starts nothing new; ``close`` waits for what was started
    and raises the first error of ``work``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        work: Callable[[T], Awaitable[None]],
        jobs: int,
        rank: Callable[[T], int] | None = None,
    ) -> None:
        self.loop = loop
        self.work = work
        self.jobs = max(1, jobs)
        self.rank = rank
        self.stopping = False
        self._order = itertools.count()  # ties (and no rank) in the order they came
        self._queue: asyncio.PriorityQueue[tuple[int, int, T | None]] = asyncio.PriorityQueue()
        self._done = asyncio.run_coroutine_threadsafe(self._run(), loop)

    def put(self, item: T) -> None:
        rank = self.rank(item) if self.rank is not None else 0
        self._hand((rank, next(self._order), item))

    def stop(self) -> None:
        self.stopping = True

    def close(self) -> None:
        for _ in range(self.jobs):
            self._hand((sys.maxsize, next(self._order), None))
        self._done.result()

    def _hand(self, entry: tuple[int, int, T | None]) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, entry)

    async def _run(self) -> None:
        async def worker() -> None:
            while (item := (await self._queue.get())[2]) is not None:
                if not self.stopping:
                    await self.work(item)

        tasks = [asyncio.ensure_future(worker()) for _ in range(self.jobs)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
