"""Plumbing shared by the loopback test servers: threaded server, body decoding, request log."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import Message
    from io import BufferedIOBase
    from types import TracebackType

HOST = "127.0.0.1"
CHUNK_SIZE = 64 * 1024
# A connection that sends nothing for this long is dropped, so no handler thread lives forever.
IDLE_TIMEOUT = 60.0

R = TypeVar("R")


class BodyError(ValueError):
    """A request body that cannot be decoded."""


def iter_body(rfile: BufferedIOBase, headers: Message) -> Iterator[bytes]:
    """Yield a request body in pieces, decoding ``Transfer-Encoding: chunked``."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        while True:
            line = rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError as exc:
                raise BodyError(f"bad chunk size line {line!r}") from exc
            if size == 0:
                break
            yield from _read_exactly(rfile, size)
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BodyError("chunk not followed by CRLF")
        while rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # skip trailers
            pass
        return
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError as exc:
        raise BodyError("bad Content-Length") from exc
    if length < 0:
        raise BodyError("negative Content-Length")
    yield from _read_exactly(rfile, length)


def _read_exactly(rfile: BufferedIOBase, size: int) -> Iterator[bytes]:
    while size:
        data = rfile.read(min(size, CHUNK_SIZE))
        if not data:
            raise BodyError("body ended early")
        size -= len(data)
        yield data


class RequestLog(Generic[R]):
    """A thread-safe, append-only list of request records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[R] = []

    def add(self, record: R) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[R]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class _HTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its owner and can cut its open connections."""

    daemon_threads = True
    request_queue_size = 128  # DVC opens many connections at once; the default backlog is 5

    def __init__(self, owner: Any, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((getattr(owner, "bind_host", HOST), 0), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host name (a DNS query); we know it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a client that goes away mid-answer is normal in these tests."""

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with TCP_NODELAY that prints nothing.

    Subclasses log each request in :meth:`record`, which runs once per request just before
    the answer's headers go out (so a client never sees an answer its log entry lacks), or
    from :meth:`record_once` when no answer is sent at all.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it each request stalls ~44 ms (Nagle + delayed ACK)
    timeout = IDLE_TIMEOUT
    server: _HTTPServer
    status: int = 0  # of the answer; 0 while none is sent
    bytes_in: int = 0  # body bytes of the request
    bytes_out: int = 0  # body bytes of the answer (its Content-Length; 0 for HEAD)
    _recorded: bool = False

    def handle_one_request(self) -> None:
        self.status, self.bytes_in, self.bytes_out, self._recorded = 0, 0, 0, False
        super().handle_one_request()

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self.status = code
        super().send_response_only(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length" and self.command != "HEAD":
            self.bytes_out = int(value)
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if self.status >= 200:
            self.record_once()
        else:  # an interim "100 Continue" (answered by BaseHTTPRequestHandler itself)
            self.status = 0
        super().end_headers()

    def record_once(self) -> None:
        if not self._recorded:
            self._recorded = True
            self.record()

    def record(self) -> None:
        """Log the current request (status, bytes_in, bytes_out are set)."""

    def send_body(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Answer with ``body`` (left out for HEAD)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


class Served:
    """A test server as a context manager: started on enter, stopped on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackServer(Served):
    """Serves ``handler_class`` on 127.0.0.1 at a free port from a background thread."""

    handler_class: type[QuietHandler]

    bind_host = HOST  # any 127.x.y.z address: another "host" on this machine

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None or self.stopping.is_set():
            raise RuntimeError(f"{type(self).__name__} can be started only once")
        self._httpd = _HTTPServer(self, self.handler_class)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, release waiting handlers, cut open connections, close the port."""
        self.stopping.set()
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{self.bind_host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"
