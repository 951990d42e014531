"""A distant link on loopback: a TCP relay that delays requests and limits each connection.

Every chunk a client sends reaches the server ``delay`` seconds later, in order (so each
request waits that long before the server sees it, as a round trip would), and each
connection's bytes from the server move at most ``rate`` bytes per second (a token bucket per
connection, as one TCP stream from a distant store). Bytes pass untouched, SigV4 signatures
included (the Host header is the relay's, which is what the client signed), and it costs little
CPU, so a benchmark measures the tools and the link, not a Python proxy. (``FaultProxy`` is the
one that plays faults.)

It counts HTTP/1.1 exchanges on the side: each direction's bytes are framed incrementally (the
request or status line and headers up to CRLFCRLF, then the body skipped by ``Content-Length`` or
by its chunk sizes, never copied), and each connection pairs its answers with its requests in
order. :meth:`LinkRelay.requests` lists them (method, kind, path, status, body bytes each way);
with ``s3=True`` the kind tells an S3 LIST from a GET (``faults.classify``). A connection whose
bytes are not HTTP/1.1 is still relayed, just no longer counted (``unparsed``).

    with LinkRelay(upstream_port, delay=0.02, rate=25e6) as link:
        client.connect(link.host)
        link.requests()  # [Exchange(method="GET", kind="GET", path="/b/k", status=200, ...)]
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import TYPE_CHECKING, NamedTuple, Self

from .common import HOST
from .faults import classify

if TYPE_CHECKING:
    from types import TracebackType

CHUNK = 64 * 1024
START_TIMEOUT = 10.0
MAX_QUEUED = 64 * 2**20  # bytes a delayed upload may hold in the relay before it stops reading
EARLY = 1e-4  # a timer may fire this early: what is due by then goes
MAX_HEAD = 64 * 1024  # headers (or a chunk-size line) longer than this: not HTTP, stop counting
NO_BODY = (204, 304)


class Exchange(NamedTuple):
    """One request through the relay and what answered it."""

    method: str
    kind: str  # the method, or with ``s3=True`` the S3 kind (LIST apart from GET)
    path: str  # the request target as sent
    status: int  # 0: no answer (yet)
    bytes_in: int  # request body bytes (chunk data only, when chunked)
    bytes_out: int  # response body bytes relayed (0 for HEAD, 204, 304)


class _Record:
    """An exchange being relayed (mutable: its body bytes are counted as they pass)."""

    __slots__ = ("bytes_in", "bytes_out", "kind", "method", "path", "status")

    def __init__(self, method: str, kind: str, path: str) -> None:
        self.method, self.kind, self.path = method, kind, path
        self.status = self.bytes_in = self.bytes_out = 0

    def frozen(self) -> Exchange:
        return Exchange(
            self.method, self.kind, self.path, self.status, self.bytes_in, self.bytes_out
        )


# Framing states.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _TO_CLOSE, _OFF = range(7)


class _Framer:
    """Incremental HTTP/1.1 framing of one direction of one connection.

    Only the head of each message (start line and headers) and chunk-size lines are gathered;
    body bytes are skipped by count, so a 1 GB body costs a subtraction per 64 KB read.
    :meth:`head` (a request's or a response's) says what body follows.
    """

    def __init__(self, relay: LinkRelay, pending: deque[_Record]) -> None:
        self.relay = relay
        self.pending = pending  # requests of this connection not yet answered, oldest first
        self.state = _HEAD
        self.gathered = bytearray()  # a head, chunk-size line or trailer not complete yet
        self.left = 0  # body (or chunk) bytes still to skip
        self.record: _Record | None = None  # whose body is passing

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            state = self.state
            if state in (_BODY, _CHUNK_DATA):
                take = min(self.left, end - pos)
                self.left -= take
                pos += take
                self.count(take)
                if not self.left:
                    self.state = _HEAD if state == _BODY else _CHUNK_SIZE
            elif state == _HEAD:
                pos = self._head(data, pos)
            elif state in (_CHUNK_SIZE, _TRAILER):
                pos = self._line(data, pos)
            elif state == _TO_CLOSE:
                self.count(end - pos)
                return
            else:  # _OFF
                return

    def _until(self, data: bytes, pos: int, mark: bytes) -> tuple[bytes, int] | None:
        """The gathered bytes up to ``mark`` (and where they end in ``data``), else None
        (what there is stays gathered)."""
        if self.gathered:
            # The mark may straddle what was gathered and this read.
            tail = bytes(self.gathered[-(len(mark) - 1) :]) + data[pos : pos + len(mark) - 1]
            found = tail.find(mark)
            if found >= 0:
                stop = pos + found + len(mark) - min(len(self.gathered), len(mark) - 1)
                whole = bytes(self.gathered) + data[pos:stop]
                self.gathered.clear()
                return whole[: -len(mark)], stop
        found = data.find(mark, pos)
        if found >= 0:
            whole = bytes(self.gathered) + data[pos:found] if self.gathered else data[pos:found]
            self.gathered.clear()
            return whole, found + len(mark)
        self.gathered += data[pos:]
        if len(self.gathered) > MAX_HEAD:
            self._give_up()
        return None

    def _head(self, data: bytes, pos: int) -> int:
        while not self.gathered and data.startswith(b"\r\n", pos):
            pos += 2  # empty lines between messages
        if pos >= len(data):
            return pos
        found = self._until(data, pos, b"\r\n\r\n")
        if found is None:
            return len(data)
        head, pos = found
        head = head.lstrip(b"\r\n")  # empty lines before it, split across reads
        if not head:
            return pos
        lines = head.split(b"\r\n")
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    self._give_up()
                    return len(data)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        body = self.head(lines[0], length, chunked)
        if self.state == _OFF:
            return len(data)
        if body == "chunked":
            self.state = _CHUNK_SIZE
        elif body == "close":
            self.state = _TO_CLOSE
        elif body == "length" and length:
            self.state, self.left = _BODY, length
        return pos

    def _line(self, data: bytes, pos: int) -> int:
        found = self._until(data, pos, b"\r\n")
        if found is None:
            return len(data)
        line, pos = found
        if self.state == _TRAILER:
            if not line:
                self.state = _HEAD
            return pos
        if not line:
            return pos  # the CRLF after a chunk's data
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            self._give_up()
            return len(data)
        if size:
            self.state, self.left = _CHUNK_DATA, size
        else:
            self.state = _TRAILER
        return pos

    def _give_up(self) -> None:
        self.state = _OFF
        self.gathered.clear()
        self.relay.unparsed += 1

    # --- what a request or an answer adds ---------------------------------------------------
    def head(self, start: bytes, length: int | None, chunked: bool) -> str:
        """Note a message's head; its body: "length", "chunked", "close" or "none"."""
        raise NotImplementedError

    def count(self, size: int) -> None:
        raise NotImplementedError


class _Requests(_Framer):
    def head(self, start: bytes, length: int | None, chunked: bool) -> str:
        parts = start.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            self._give_up()
            return "none"
        method, path = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        kind = classify(method, path) if self.relay.s3 else method
        self.record = _Record(method, kind, path)
        self.pending.append(self.record)
        self.relay.log(self.record)
        return "chunked" if chunked else "length"

    def count(self, size: int) -> None:
        if self.record is not None:
            self.record.bytes_in += size


class _Answers(_Framer):
    def head(self, start: bytes, length: int | None, chunked: bool) -> str:
        parts = start.split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            self._give_up()
            return "none"
        if status == 101:  # switching protocols: what follows is not HTTP/1.1
            self._give_up()
            return "none"
        if status < 200:  # 100 Continue: the answer is still to come
            return "none"
        self.record = self.pending.popleft() if self.pending else None
        method = self.record.method if self.record is not None else ""
        if self.record is not None:
            self.record.status = status
        if method == "HEAD" or status in NO_BODY:
            return "none"
        if chunked:
            return "chunked"
        return "length" if length is not None else "close"

    def count(self, size: int) -> None:
        if self.record is not None:
            self.record.bytes_out += size


class _Outbox:
    """One direction of a link: bytes written to ``transport`` at given times, in order (one
    timer for whatever waits, not one per chunk)."""

    def __init__(self, link: _Link, upstream: bool) -> None:
        self.link = link
        self.upstream = upstream  # client to server (counted in ``bytes_up``)
        self.transport: asyncio.Transport | None = None
        self.items: deque[tuple[float, bytes]] = deque()
        self.queued = 0  # bytes waiting
        self.timer: asyncio.TimerHandle | None = None
        self.eof = False  # the sender is done: write EOF once the rest has gone
        self.done = False

    def push(self, when: float, data: bytes) -> None:
        if not self.items and when <= self.link.loop.time():
            self._write(data)
            return
        self.items.append((when, data))
        self.queued += len(data)
        if self.timer is None:
            self.timer = self.link.loop.call_at(self.items[0][0], self._flush)

    def push_eof(self) -> None:
        self.eof = True
        if not self.items:
            self._write_eof()

    def _flush(self) -> None:
        self.timer = None
        due = self.link.loop.time() + EARLY
        while self.items and self.items[0][0] <= due:
            _when, data = self.items.popleft()
            self.queued -= len(data)
            self._write(data)
        if self.items:
            self.timer = self.link.loop.call_at(self.items[0][0], self._flush)
        elif self.eof:
            self._write_eof()
        self.link.update_reading()

    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if self.upstream:
            self.link.relay.bytes_up += len(data)
        else:
            self.link.relay.bytes_down += len(data)

    def _write_eof(self) -> None:
        if self.done:
            return
        self.done = True
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                if self.transport.can_write_eof():
                    self.transport.write_eof()
        self.link.finish_if_done()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.items.clear()
        self.queued = 0


class _Link:
    """One client connection and its own connection to the server."""

    def __init__(self, relay: LinkRelay, loop: asyncio.AbstractEventLoop) -> None:
        self.relay = relay
        self.loop = loop
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        pending: deque[_Record] = deque()
        self.requests = _Requests(relay, pending)
        self.answers = _Answers(relay, pending)
        self.up = _Outbox(self, upstream=True)
        self.down = _Outbox(self, upstream=False)
        self.paced_until = 0.0
        self.client_full = False  # the client's socket buffer is full: stop reading the server
        self.server_full = False
        self.closed = False

    # --- from the client --------------------------------------------------------------------
    def from_client(self, data: bytes) -> None:
        self.requests.feed(data)
        self.up.push(self.loop.time() + self.relay.delay, data)
        self.update_reading()

    def from_server(self, data: bytes) -> None:
        self.answers.feed(data)
        rate = self.relay.rate
        if rate:
            now = self.loop.time()
            start = max(self.paced_until, now)
            self.paced_until = start + len(data) / rate
            self.down.push(start, data)
        else:
            self.down.push(0.0, data)
        self.update_reading()

    def update_reading(self) -> None:
        """Read each side only while the other can take more (flow control both ways)."""
        if self.closed:
            return
        if self.client is not None:
            _reading(
                self.client,
                self.server is not None and not self.server_full and self.up.queued < MAX_QUEUED,
            )
        if self.server is not None:
            # A paced connection reads the server no faster than it sends (as before: a chunk
            # at a time), so a slow link never holds a whole download in memory.
            _reading(self.server, not self.client_full and self.down.queued < CHUNK)

    def finish_if_done(self) -> None:
        if self.up.done and self.down.done:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self._end(abort=False)

    def abort(self) -> None:
        self._end(abort=True)

    def _end(self, *, abort: bool) -> None:
        """Stop both directions and let go of both connections (``abort``: at once, unsent
        data dropped)."""
        self.closed = True
        self.up.cancel()
        self.down.cancel()
        for transport in (self.client, self.server):
            if transport is not None:
                if abort:
                    transport.abort()
                else:
                    transport.close()
        self.relay.links.discard(self)


def _reading(transport: asyncio.Transport, wanted: bool) -> None:
    if transport.is_closing() or transport.is_reading() == wanted:
        return
    if wanted:
        transport.resume_reading()
    else:
        transport.pause_reading()


class _ClientSide(asyncio.Protocol):
    def __init__(self, relay: LinkRelay) -> None:
        self.relay = relay
        self.link: _Link | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        loop = asyncio.get_running_loop()
        self.link = link = _Link(self.relay, loop)
        link.client = link.down.transport = transport
        transport.pause_reading()  # until the server's side is connected
        self.relay.connections += 1
        self.relay.links.add(link)
        task = loop.create_task(self.relay.connect(link))
        self.relay.connecting.add(task)
        task.add_done_callback(self.relay.connecting.discard)

    def data_received(self, data: bytes) -> None:
        assert self.link is not None
        self.link.from_client(data)

    def eof_received(self) -> bool:
        assert self.link is not None
        self.link.up.push_eof()
        return True  # keep the other half open: the answer may still be coming

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link is not None:
            self.link.close()

    def pause_writing(self) -> None:
        if self.link is not None:
            self.link.client_full = True
            self.link.update_reading()

    def resume_writing(self) -> None:
        if self.link is not None:
            self.link.client_full = False
            self.link.update_reading()


class _ServerSide(asyncio.Protocol):
    def __init__(self, link: _Link) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link.from_server(data)

    def eof_received(self) -> bool:
        self.link.down.push_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()

    def pause_writing(self) -> None:
        self.link.server_full = True
        self.link.update_reading()

    def resume_writing(self) -> None:
        self.link.server_full = False
        self.link.update_reading()


class LinkRelay:
    """127.0.0.1:PORT relaying to 127.0.0.1:``upstream_port`` over a slow link."""

    def __init__(
        self, upstream_port: int, *, delay: float = 0.0, rate: float = 0.0, s3: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.rate = rate
        self.s3 = s3  # kinds as S3 means them: a GET of no key or with a listing query is LIST
        self.port = 0
        self.connections = 0
        self.bytes_down = 0  # server to client
        self.bytes_up = 0
        self.unparsed = 0  # connections whose bytes stopped looking like HTTP/1.1: not counted
        self._log: list[_Record] = []
        self._log_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self.links: set[_Link] = set()  # open connections
        self.connecting: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def set_link(self, delay: float, rate: float) -> None:
        """Change the link for connections made from now on (and their next bytes)."""
        self.delay, self.rate = delay, rate

    # --- the exchanges ----------------------------------------------------------------------
    def log(self, record: _Record) -> None:
        with self._log_lock:
            self._log.append(record)

    def requests(self) -> list[Exchange]:
        """The requests since the last :meth:`clear_log`, oldest first, as they stand now."""
        with self._log_lock:
            records = list(self._log)
        return [record.frozen() for record in records]

    def clear_log(self) -> None:
        """Forget the requests seen so far (``connections`` and the byte counts go on)."""
        with self._log_lock:
            self._log = []

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _ClientSide(self), HOST, 0)
            )
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
            for task in list(self.connecting):
                task.cancel()
            await asyncio.gather(*self.connecting, return_exceptions=True)
            for link in list(self.links):
                link.abort()
            await asyncio.sleep(0)  # let the transports close

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
    async def connect(self, link: _Link) -> None:
        """Open the link's own connection to the server, then let the client's bytes flow."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _ServerSide(link), HOST, self.upstream_port
            )
        except OSError:
            link.close()
            return
        except asyncio.CancelledError:
            return
        assert isinstance(transport, asyncio.Transport)
        if link.closed:
            transport.close()
            return
        link.server = link.up.transport = transport
        link.update_reading()
