"""A loopback reverse proxy that can misbehave like Backblaze B2 (or any remote) on demand.

Put it in front of moto S3 or the DagsHub server, point the client at :attr:`FaultProxy.base_url`
and switch faults on and off while the client runs::

    proxy.set_fault(Fault("b2_cap", after=10))     # 11th GET of an object gets 403
    proxy.set_fault(Fault("slowdown", rate=0.5))    # half of all requests get 503 SlowDown
    proxy.add_fault(Fault("delay", seconds=0.2, only=("GET",)))
    proxy.add_fault(Fault("throttle", bytes_per_second=25e6, only=("GET",)))  # per connection
    proxy.clear_faults()
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import parse_qs, urlsplit

from .common import HOST, BodyError, LoopbackServer, QuietHandler, RequestLog, iter_body

FaultName = Literal[
    "b2_cap",
    "unauthorized",
    "slowdown",
    "delay",
    "hang",
    "trickle",
    "throttle",
    "signature_mismatch",
]
FAULT_NAMES: tuple[str, ...] = get_args(FaultName)
# The header botocore's own calls carry and requests we sign ourselves (remotes/s3_signed.py) do
# not: what ``signature_mismatch`` tells them apart by.
SDK_CALL_HEADER = "amz-sdk-invocation-id"
TRICKLE_CHUNK = 16 * 1024
PACE_CHUNK = 64 * 1024  # a throttled connection sends (or reads) this much at a time
MAX_WAIT = 60.0  # upper bound of a delay or a hang, in seconds
UPSTREAM_TIMEOUT = 60.0

B2_CAP_MESSAGE = "Cannot download file, download bandwidth or transaction (Class B) cap exceeded."
B2_CAP_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f"<Error><Code>AccessDenied</Code><Message>{B2_CAP_MESSAGE}</Message></Error>"
).encode()
UNAUTHORIZED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InvalidAccessKeyId</Code>"
    b"<Message>The key you provided is not valid.</Message></Error>"
)
SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
SIGNATURE_MISMATCH_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated "
    b"does not match the signature you provided.</Message></Error>"
)

# Headers that describe one connection, or that the proxy sets itself: never copied across.
_NOT_COPIED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",  # we already answered "100 Continue" and send the body at once
        "host",
        "content-length",
    }
)


def classify(method: str, target: str) -> str:
    """Kind of an S3 request: LIST, GET, HEAD, PUT, POST, DELETE or OTHER."""
    parts = urlsplit(target)
    _bucket, _, key = parts.path.lstrip("/").partition("/")
    if method == "GET":
        query = parse_qs(parts.query, keep_blank_values=True)
        return "LIST" if not key or "list-type" in query or "prefix" in query else "GET"
    return method if method in ("HEAD", "PUT", "POST", "DELETE") else "OTHER"


def dead_port_url() -> str:
    """``http://127.0.0.1:PORT`` for a port where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}"


@dataclass(frozen=True)
class Fault:
    """One misbehaviour; ``only`` limits it to some request kinds or methods.

    - ``b2_cap``: after ``after`` successful GETs of objects (or, with ``after_bytes``, once
      that many body bytes have been let through, as B2 counts its daily cap: a download is let
      through whole while the count is under the cap, so the last one may pass it), GET gets
      B2's 403 AccessDenied XML and HEAD a bare 403; LIST, PUT, POST and DELETE still pass (as
      on real B2).
    - ``unauthorized``: 401 with an S3-style XML body and a Basic challenge.
    - ``slowdown``: a ``rate`` fraction of requests (seeded, so repeatable) gets 503 SlowDown
      with ``Retry-After: retry_after``.
    - ``delay``: wait ``seconds`` then answer normally (adds up with other faults).
    - ``trickle``: answer normally, but send the body 16 KB at a time, ``seconds`` apart (a slow
      link that keeps moving).
    - ``throttle``: every connection moves at most ``bytes_per_second`` of bodies, each way (a
      token bucket per connection, as one TCP stream from a distant server): a client that
      opens several connections gets several times the bandwidth.
    - ``signature_mismatch``: 403 SignatureDoesNotMatch to requests that lack botocore's
      per-call headers (``SDK_CALL_HEADER``): a store that reads the requests we sign ourselves
      otherwise than botocore's own.
    - ``hang``: (after ``after`` successful GETs of objects, if set) never answer; the connection is closed after ``seconds`` (default
      :data:`MAX_WAIT`) or when the proxy stops.
    """

    name: FaultName
    only: tuple[str, ...] | None = None
    after: int = 0
    after_bytes: int = 0
    rate: float = 1.0
    retry_after: int = 1
    seconds: float = 0.0
    seed: int = 0
    bytes_per_second: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.only, str):
            raise TypeError("only must be a tuple of kinds, e.g. ('GET',)")
        if self.name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {self.name!r}; expected one of {FAULT_NAMES}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if not 0.0 <= self.seconds <= MAX_WAIT:
            raise ValueError(f"seconds must be within [0, {MAX_WAIT}]")
        if self.after < 0 or self.after_bytes < 0:
            raise ValueError("after and after_bytes must be >= 0")
        if self.after_bytes and (self.name != "b2_cap" or self.after):
            raise ValueError("after_bytes is for b2_cap alone, instead of after")
        if (self.name == "throttle") != (self.bytes_per_second > 0):
            raise ValueError("throttle needs bytes_per_second > 0, and only throttle takes it")

    def applies_to(self, kind: str, method: str, sdk_call: bool = True) -> bool:
        if self.only is not None and kind not in self.only and method not in self.only:
            return False
        if self.name == "signature_mismatch":
            return not sdk_call
        return self.name != "b2_cap" or kind in ("GET", "HEAD")


@dataclass
class _Active:
    """An installed fault and its running state."""

    fault: Fault
    rng: random.Random
    passed: int = 0  # b2_cap: GETs of objects let through so far
    bytes_passed: int = 0  # b2_cap with after_bytes: body bytes let through so far


@dataclass(frozen=True)
class ProxyRecord:
    """One request as the proxy saw and answered it."""

    method: str
    path: str
    kind: str
    status: int  # 0 when the proxy hung up without answering
    had_credentials: bool
    headers: dict[str, str]
    bytes_in: int
    bytes_out: int
    fault: str | None = None  # the fault that answered instead of the upstream
    arrived: float = 0.0  # time.monotonic() when the request reached the proxy
    in_flight: int = 0  # requests the proxy held when this one arrived, itself included


@dataclass
class _Plan:
    delay: float = 0.0
    trickle: float = 0.0  # seconds between 16 KB pieces of the body
    throttle: float = 0.0  # bytes per second of this connection, 0: unlimited
    fault: Fault | None = None
    reserved: _Active | None = None  # the b2_cap whose counter this request took


class _Handler(QuietHandler):
    _upstream: http.client.HTTPConnection | None = None  # this client's upstream connection
    kind: str = "OTHER"
    plan: _Plan
    arrived: float = 0.0
    in_flight: int = 0
    _paced_until: float = 0.0  # throttle: when this connection may move its next byte

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.owner
        self.kind = classify(self.command, self.path)
        self.plan = _Plan()
        self.arrived = time.monotonic()
        self.in_flight = proxy.enter()
        try:
            sdk_call = SDK_CALL_HEADER in {name.lower() for name in self.headers}
            self.plan = proxy.plan(self.kind, self.command, sdk_call)
            body = b"".join(self._pace(piece) for piece in iter_body(self.rfile, self.headers))
            self.bytes_in = len(body)
            if self.plan.delay:
                proxy.stopping.wait(min(self.plan.delay, MAX_WAIT))
            if self.plan.fault is not None:
                self._answer_fault(self.plan.fault)
            else:
                self._forward(body)
        except BodyError:
            self.close_connection = True
            self.send_body(400, b"Bad request body", {"Connection": "close"})
        finally:
            proxy.leave()
            self.record_once()

    def record(self) -> None:
        proxy: FaultProxy = self.server.owner
        plan = self.plan
        if plan.reserved is not None and not 200 <= self.status < 300:
            proxy.release(plan.reserved)
        proxy.log.add(
            ProxyRecord(
                method=self.command,
                path=self.path,
                kind=self.kind,
                status=self.status,
                had_credentials="Authorization" in self.headers,
                headers=dict(self.headers.items()),
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                fault=plan.fault.name if plan.fault else None,
                arrived=self.arrived,
                in_flight=self.in_flight,
            )
        )

    def _answer_fault(self, fault: Fault) -> None:
        if fault.name == "hang":
            self.server.owner.stopping.wait(fault.seconds or MAX_WAIT)
            self.close_connection = True
        elif fault.name == "b2_cap":
            self.send_body(403, B2_CAP_BODY, {"Content-Type": "application/xml"})
        elif fault.name == "signature_mismatch":
            self.send_body(403, SIGNATURE_MISMATCH_BODY, {"Content-Type": "application/xml"})
        elif fault.name == "unauthorized":
            headers = {"Content-Type": "application/xml", "WWW-Authenticate": 'Basic realm="S3"'}
            self.send_body(401, UNAUTHORIZED_BODY, headers)
        else:  # slowdown
            headers = {"Content-Type": "application/xml", "Retry-After": str(fault.retry_after)}
            self.send_body(503, SLOWDOWN_BODY, headers)

    def _forward(self, body: bytes) -> None:
        try:
            resp, data = self._exchange(body)
        except (OSError, http.client.HTTPException) as exc:
            self.send_body(502, f"upstream failed: {exc!r}".encode())
            return
        proxy: FaultProxy = self.server.owner
        cap = self.plan.reserved
        # A download is counted against a cap by bytes as it is let through, not when it has
        # arrived: concurrent downloads cannot all slip under the cap before one is counted.
        if (
            cap is not None
            and cap.fault.after_bytes
            and 200 <= resp.status < 300
            and not proxy.take_bytes(cap, len(data))
        ):
            self.plan.reserved, self.plan.fault = None, cap.fault
            self._answer_fault(cap.fault)
            return
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _NOT_COPIED:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or resp.status in (204, 304)
        if no_body:
            if length := resp.getheader("Content-Length"):
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if no_body:
            return
        if self.plan.throttle:
            # Count what was sent, not what was due: a client that hangs up early (s3fs drops
            # a whole-object GET once it has the headers) is not served the rest.
            self.bytes_out = 0
            for start in range(0, len(data), PACE_CHUNK):
                piece = self._pace(data[start : start + PACE_CHUNK])
                self.wfile.write(piece)
                self.bytes_out += len(piece)
            return
        if not self.plan.trickle:
            self.wfile.write(data)
            return
        for start in range(0, len(data), TRICKLE_CHUNK):
            if start and proxy.stopping.wait(self.plan.trickle):
                return
            self.wfile.write(data[start : start + TRICKLE_CHUNK])
            self.wfile.flush()

    def _pace(self, piece: bytes) -> bytes:
        """Wait until this connection's token bucket holds ``piece``, then hand it on."""
        rate = self.plan.throttle
        if not rate:
            return piece
        now = time.monotonic()
        start = max(self._paced_until, now)
        if start > now:
            self.server.owner.stopping.wait(start - now)
        self._paced_until = start + len(piece) / rate
        return piece

    def _exchange(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        """Send the request upstream on this client's own keep-alive connection."""
        reused = self._upstream is not None and self._upstream.sock is not None
        try:
            return self._send_upstream(body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # The upstream closed an idle keep-alive connection: retry once on a new one.
            return self._send_upstream(body)

    def _send_upstream(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        proxy: FaultProxy = self.server.owner
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(
                proxy.upstream_hostname, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT
            )
        conn = self._upstream
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            host = self.headers.get("Host") if proxy.keep_host else None
            conn.putheader("Host", host or proxy.upstream_host)
            for name, value in self.headers.items():
                if name.lower() not in _NOT_COPIED:
                    conn.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            return resp, resp.read()  # http.client decodes chunked responses
        except BaseException:
            conn.close()
            self._upstream = None
            raise


class FaultProxy(LoopbackServer):
    """Threaded HTTP reverse proxy on 127.0.0.1 in front of ``upstream`` (a loopback base URL).

    ``keep_host``: pass the client's ``Host`` header on unchanged, for an upstream that checks
    SigV4 signatures (``rclone serve s3``): the signature covers the host the client called.
    """

    handler_class = _Handler

    def __init__(self, upstream: str, *, keep_host: bool = False) -> None:
        super().__init__()
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, not {upstream!r}")
        if parts.path not in ("", "/") or parts.port is None:
            raise ValueError(f"upstream must be a base URL with a port, not {upstream!r}")
        self.upstream_hostname: str = parts.hostname
        self.upstream_port: int = parts.port
        self.upstream_host = parts.netloc
        self.keep_host = keep_host
        self.log: RequestLog[ProxyRecord] = RequestLog()
        self._faults: list[_Active] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # most requests the proxy held at once since the last clear_log

    # --- faults -----------------------------------------------------------------------------

    def set_fault(self, fault: Fault) -> None:
        """Make ``fault`` the only active fault."""
        with self._lock:
            self._faults = [_Active(fault, random.Random(fault.seed))]

    def add_fault(self, fault: Fault) -> None:
        """Activate ``fault`` on top of the others; the first that answers wins."""
        with self._lock:
            self._faults.append(_Active(fault, random.Random(fault.seed)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = []

    def plan(self, kind: str, method: str, sdk_call: bool = True) -> _Plan:
        """Decide how to treat one request (``sdk_call``: it carries botocore's per-call
        headers), updating the faults' counters."""
        plan = _Plan()
        with self._lock:
            for active in self._faults:
                fault = active.fault
                if not fault.applies_to(kind, method, sdk_call):
                    continue
                if fault.name == "delay":
                    plan.delay += fault.seconds
                    continue
                if fault.name == "trickle":
                    plan.trickle = fault.seconds
                    continue
                if fault.name == "throttle":
                    plan.throttle = fault.bytes_per_second
                    continue
                if fault.name == "slowdown" and active.rng.random() >= fault.rate:
                    continue
                if fault.after_bytes:
                    if active.bytes_passed < fault.after_bytes:
                        if kind == "GET":
                            plan.reserved = active
                        continue
                elif active.passed < fault.after:
                    if kind == "GET":
                        active.passed += 1
                        plan.reserved = active
                    continue
                plan.fault = fault
                break
        return plan

    def enter(self) -> int:
        """Count a request in; returns how many are in flight now, itself included."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.in_flight

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def take_bytes(self, active: _Active, body_bytes: int) -> bool:
        """Let a download of ``body_bytes`` through a ``b2_cap`` by bytes, if still under it."""
        with self._lock:
            if active.bytes_passed >= active.fault.after_bytes:
                return False
            active.bytes_passed += body_bytes
            return True

    def release(self, active: _Active) -> None:
        """Give back a b2_cap slot taken by a GET that did not succeed."""
        with self._lock:
            if not active.fault.after_bytes:
                active.passed -= 1

    # --- request log ------------------------------------------------------------------------

    @property
    def requests(self) -> list[ProxyRecord]:
        """A copy of the request log, oldest first."""
        return self.log.snapshot()

    def clear_log(self) -> None:
        self.log.clear()
        with self._lock:
            self.max_in_flight = self.in_flight

    def count(self, kind: str | None = None) -> int:
        """Number of logged requests, optionally only those of ``kind`` (LIST, GET, HEAD...)."""
        return sum(1 for r in self.requests if kind is None or r.kind == kind)

    def bytes_served(self) -> int:
        """Body bytes of objects returned to the client by successful GETs."""
        return sum(r.bytes_out for r in self.requests if r.kind == "GET" and 200 <= r.status < 300)
