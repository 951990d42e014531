"""Large objects as several ranged GETs at once, written in place into one temporary file.

One TCP stream from B2 delivers a few tens of MB/s; a large object fetched as one stream waits
on that. From ``cutoff`` bytes an object is split into ``count`` ranges, fetched at once, each
written at its offset as it arrives (memory stays at one read buffer per stream), and the whole
file is md5-checked afterwards by the caller, as any download. A server that answers a ranged
GET with the whole object (200, not 206) is read as one stream from then on.
"""

from __future__ import annotations

import asyncio
import math
import os
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable
    from pathlib import Path

MIN_PART = 8 * 2**20  # at most size // MIN_PART ranges: a request per few MB is latency, not speed
READ_CHUNK = 1 << 20


class RangeIgnored(Exception):
    """The server answered a ranged GET with the whole object: it does not serve ranges."""


class SizeDiffers(RangeIgnored):
    """The object's size on the server is not the size expected: fetched as one stream."""


def check_range(content_range: str | None, start: int, end: int, size: int) -> None:
    """Check a ranged GET's ``Content-Range: bytes START-END/SIZE`` against what was asked.

    Raises RangeIgnored when there is none (the body is the whole object; some servers answer
    a range with 200 and the right Content-Range, which is fine) or it names other bytes, and
    SizeDiffers when the object has another size.
    """
    unit, _, rest = (content_range or "").strip().partition(" ")
    span, _, total = rest.partition("/")
    if unit != "bytes" or not span:
        raise RangeIgnored(f"no Content-Range in the answer to bytes={start}-{end}")
    if not total.strip().isdigit():
        # ``bytes 0-9/*``: the server does not say the size; no use asking it again.
        raise RangeIgnored(f"Content-Range {content_range!r} gives no size")
    if total.strip() != str(size):
        raise SizeDiffers(f"Content-Range {content_range!r}, expected a total of {size}")
    if span.strip() != f"{start}-{end}":
        raise RangeIgnored(f"Content-Range {content_range!r} for bytes={start}-{end}")


class ShortRange(Exception):
    """A range ended before its last byte (the connection closed early)."""


@dataclass(frozen=True)
class Streams:
    """How large objects are fetched: ``count`` ranges at once from ``cutoff`` bytes (the
    defaults are the settings' ``STREAMS`` and ``STREAMS_CUTOFF``); ``Streams()``: one stream."""

    count: int = 1
    cutoff: int = 0

    def split(self, size: int | None) -> list[tuple[int, int]] | None:
        """Inclusive byte ranges for an object of ``size`` bytes, or None for one stream."""
        if size is None or self.count < 2 or size < max(self.cutoff, 2 * MIN_PART):
            return None
        parts = min(self.count, size // MIN_PART)
        step = math.ceil(size / parts)
        return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


async def get_ranges(
    read_range: Callable[[int, int, int], AsyncGenerator[bytes, None]],
    path: Path,
    size: int,
    parts: list[tuple[int, int]],
    stall: float,
    slots: asyncio.Semaphore,
) -> None:
    """Fetch ``parts`` of an object of ``size`` bytes into ``path`` at once.

    ``read_range(start, end, size)`` raises RangeIgnored when the server answers with the whole
    object, SizeDiffers when its Content-Range says another size. The first range is asked
    alone until its first bytes arrive, so either costs one request, not ``len(parts)``. Each
    range holds one of the remote's request ``slots`` (``--jobs``) while it runs, and waits for
    one before it starts; from then on, a range that sends nothing for ``stall`` seconds fails
    the download (TimeoutError). A failing range cancels the others.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)

        async def drain(
            start: int, end: int, chunks: AsyncGenerator[bytes, None], first: bytes
        ) -> None:
            offset = start
            chunk: bytes | None = first
            while chunk:
                if offset + len(chunk) > end + 1:
                    raise ShortRange(f"bytes {start}-{end}: the server sent more than asked")
                os.pwrite(fd, chunk, offset)
                offset += len(chunk)
                chunk = await asyncio.wait_for(anext(chunks, None), stall)
            if offset != end + 1:
                raise ShortRange(f"bytes {start}-{end}: ended after {offset - start} bytes")

        async def one(start: int, end: int) -> None:
            async with slots, aclosing(read_range(start, end, size)) as chunks:
                first = await asyncio.wait_for(anext(chunks, b""), stall)
                await drain(start, end, chunks, first)

        # The first range's slot is given back when that range ends, not when the object
        # does: held by a range waiting on its siblings, slots could all end up idle.
        start, end = parts[0]
        await slots.acquire()
        held = [True]

        def release() -> None:
            if held:
                held.clear()
                slots.release()

        head = read_range(start, end, size)
        try:
            first = await asyncio.wait_for(anext(head, b""), stall)

            async def rest_of_head() -> None:
                try:
                    await drain(start, end, head, first)
                finally:
                    release()

            async with asyncio.TaskGroup() as group:
                group.create_task(rest_of_head())
                for later_start, later_end in parts[1:]:
                    group.create_task(one(later_start, later_end))
        finally:
            release()
            await head.aclose()
    except BaseExceptionGroup as group:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Cancelled (SIGTERM, a sibling download's failure): a range's error while it was
            # being torn down must not pass for the download's own failure.
            raise asyncio.CancelledError from None
        # One range's failure is the download's failure, classified like any other.
        raise group.exceptions[0] from None
    finally:
        os.close(fd)
