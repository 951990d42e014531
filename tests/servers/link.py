"""A distant link on loopback: a TCP relay that delays requests and limits each connection.

Every chunk a client sends reaches the server ``delay`` seconds later, in order (so each
request waits that long before the server sees it, as a round trip would), and each
connection's bytes from the server move at most ``rate`` bytes per second (a token bucket per
connection, as one TCP stream from a distant store). It parses nothing: any protocol passes
untouched, SigV4 signatures included, and it costs little CPU, so a benchmark measures the
tools and the link, not a Python proxy. (``FaultProxy`` is the one that counts requests and
plays faults.)

    with LinkRelay(upstream_port, delay=0.02, rate=25e6) as link:
        client.connect(link.host)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Self

from .common import HOST

if TYPE_CHECKING:
    from types import TracebackType

CHUNK = 64 * 1024
START_TIMEOUT = 10.0


class LinkRelay:
    """127.0.0.1:PORT relaying to 127.0.0.1:``upstream_port`` over a slow link."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0, rate: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.rate = rate
        self.port = 0
        self.connections = 0
        self.bytes_down = 0  # server to client
        self.bytes_up = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def set_link(self, delay: float, rate: float) -> None:
        """Change the link for connections made from now on (and their next bytes)."""
        self.delay, self.rate = delay, rate

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, HOST, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="link-relay", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError("the link relay did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), loop).result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(START_TIMEOUT)
        loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- one connection ---------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._client_to_server(reader, up_writer), self._server_to_client(up_reader, writer)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in (writer, up_writer):
                with contextlib.suppress(OSError, RuntimeError):
                    end.close()
            self._tasks.discard(task)

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Each chunk goes on ``delay`` after it arrived; chunks keep their order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                arrived, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                wait = arrived + self.delay - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                self.bytes_up += len(data)

        sender = asyncio.ensure_future(forward())
        try:
            while data := await reader.read(CHUNK):
                queue.put_nowait((time.monotonic(), data))
            queue.put_nowait((time.monotonic(), b""))
            await sender
        finally:
            sender.cancel()

    async def _server_to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The server's bytes at no more than ``rate`` per second on this connection."""
        paced_until = 0.0
        while data := await reader.read(CHUNK):
            if self.rate:
                now = time.monotonic()
                start = max(paced_until, now)
                if start > now:
                    await asyncio.sleep(start - now)
                paced_until = start + len(data) / self.rate
            writer.write(data)
            await writer.drain()
            self.bytes_down += len(data)
        with contextlib.suppress(OSError):
            writer.write_eof()
