"""A loopback stand-in for DagsHub's DVC HTTP remote (``https://dagshub.com/<owner>/<repo>.dvc``)."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .common import CHUNK_SIZE, BodyError, LoopbackServer, QuietHandler, RequestLog, iter_body

REPO_PATH = "/owner/repo.dvc"
_UPLOAD_PREFIX = ".upload-"  # temp files of uploads in progress
_CHALLENGE = 'Basic realm="DagsHub"'
# Where a web app sends a request it will not take (a 302 to its sign-in page, answered 200).
SIGN_IN = "/login"
SIGN_IN_PAGE = b"<html><body><form>Sign in to DagsHub</form></body></html>"
# What a presigned-URL store answers a request that also carries an Authorization header.
TWO_AUTHS = (
    b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the "
    b"X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization "
    b"header should be specified</Message></Error>"
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw and answered it."""

    method: str
    path: str
    status: int
    had_credentials: bool
    authorized: bool
    headers: dict[str, str]
    bytes_in: int
    bytes_out: int


class _Handler(QuietHandler):
    credentials: tuple[bool, bool] = (False, False)  # (sent, right)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        owner: DagsHubRemoteServer = self.server.owner
        if owner.latency:
            owner.stopping.wait(owner.latency)
        self.credentials = owner.check_auth(self.headers.get("Authorization"))
        try:
            target = owner.file_for(self.path)
            if owner.refuse_authorization and self.credentials[0]:
                self.bytes_in = self._drain()
                self.send_body(400, TWO_AUTHS)
            elif owner.require_auth and not self.credentials[1]:
                self.bytes_in = self._drain()
                self.send_body(401, b"Unauthorized", {"WWW-Authenticate": _CHALLENGE})
            elif self.command == "HEAD" and owner.refuse_head:
                self.send_body(405, b"Method Not Allowed", {"Allow": "GET, POST, PUT"})
            elif self.command in owner.redirect_loop:
                self.send_body(302, b"", {"Location": self.path})
            elif self.command == "GET" and self.path.startswith(SIGN_IN):
                self.send_body(200, SIGN_IN_PAGE, {"Content-Type": "text/html"})
            elif self.command in ("POST", "PUT") and (moved := owner.moved_uploads(self.path)):
                status, location = moved
                self.bytes_in = self._drain()
                self.send_body(status, b"", {"Location": location})
            elif self.command == "GET" and owner.redirect_gets_to and target and target.is_file():
                # Object stores behind HTTP services answer with a presigned URL elsewhere.
                location = f"{owner.redirect_gets_to}{self.path}?X-Amz-Signature=presigned"
                self.send_body(307, b"", {"Location": location})
            elif self.command in ("GET", "HEAD"):
                self._download(target)
            else:
                self._upload(target)
        except BodyError:
            self.close_connection = True
            self.send_body(400, b"Bad request body", {"Connection": "close"})
        finally:
            self.record_once()

    def record(self) -> None:
        had_credentials, authorized = self.credentials
        self.server.owner.log.add(
            RequestRecord(
                method=self.command,
                path=self.path,
                status=self.status,
                had_credentials=had_credentials,
                authorized=authorized,
                headers=dict(self.headers.items()),
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
            )
        )

    def _drain(self) -> int:
        return sum(len(piece) for piece in iter_body(self.rfile, self.headers))

    def _download(self, target: Path | None) -> None:
        if target is None or not target.is_file():
            self.send_body(404, b"Not found")
            return
        with target.open("rb") as f:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            if self.command == "GET":
                shutil.copyfileobj(f, self.wfile, CHUNK_SIZE)

    def _upload(self, target: Path | None) -> None:
        """Stream the body to a temp file, rename it into place, answer."""
        if target is None:
            self.bytes_in = self._drain()
            self.send_body(404, b"Not found")
            return
        existed = target.is_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_UPLOAD_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                for piece in iter_body(self.rfile, self.headers):
                    f.write(piece)
                    self.bytes_in += len(piece)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.send_body(200 if existed else 201)


class DagsHubRemoteServer(LoopbackServer):
    """DagsHub-like DVC remote: basic auth, GET/HEAD/POST/PUT of files kept under ``root``.

    The DVC remote URL is :attr:`url`; ``<url>/files/md5/ab/cdef...`` maps to
    ``root / "files/md5/ab/cdef..."``.
    """

    handler_class = _Handler

    def __init__(
        self,
        root: Path,
        user: str = "user",
        password: str = "token",
        require_auth: bool = True,
        latency: float = 0.0,
        *,
        bind_host: str = "127.0.0.1",
        refuse_head: bool = False,
        redirect_gets_to: str | None = None,
        refuse_authorization: bool = False,
        redirect_uploads: tuple[int, str] | None = None,
        redirect_loop: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.bind_host = bind_host
        self.refuse_head = refuse_head  # HEAD answers 405, as some servers do
        self.redirect_gets_to = redirect_gets_to  # object GETs answer 307 to this base URL
        self.refuse_authorization = refuse_authorization  # a presigned-URL host: 400 if sent
        # (status, prefix): uploads answer ``status`` to ``prefix`` + their path, which maps to
        # the same files (a moved repository) unless it is the sign-in page.
        self.redirect_uploads = redirect_uploads
        # Requests of these methods answer 302 to themselves, as when redirects go round.
        self.redirect_loop = redirect_loop
        self.latency = latency  # seconds every request waits, as over a real network
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = password
        self.require_auth = require_auth
        self.log: RequestLog[RequestRecord] = RequestLog()

    @property
    def url(self) -> str:
        """The DVC remote URL."""
        return self.base_url + REPO_PATH

    # --- request handling -------------------------------------------------------------------

    def check_auth(self, header: str | None) -> tuple[bool, bool]:
        """Return (credentials were sent, they are right) for an Authorization header."""
        if not header:
            return False, False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return True, False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return True, False
        return True, decoded == f"{self.user}:{self.password}"

    def moved_uploads(self, request_path: str) -> tuple[int, str] | None:
        """(status, Location) for an upload to ``request_path`` when uploads are redirected."""
        if self.redirect_uploads is None:
            return None
        status, prefix = self.redirect_uploads
        if request_path.startswith(prefix + "/"):
            return None  # already moved
        return status, prefix + request_path

    def file_for(self, request_path: str) -> Path | None:
        """Map a request path under ``/owner/repo.dvc/`` to a file under ``root``, else None."""
        path = unquote(urlsplit(request_path).path)
        if self.redirect_uploads and path.startswith(self.redirect_uploads[1] + "/"):
            path = path[len(self.redirect_uploads[1]) :]
        if not path.startswith(REPO_PATH + "/"):
            return None
        rel = PurePosixPath(path[len(REPO_PATH) + 1 :])
        if not rel.parts or rel.is_absolute() or ".." in rel.parts:
            return None
        if any(part.startswith(_UPLOAD_PREFIX) for part in rel.parts):
            return None
        return self.root.joinpath(*rel.parts)

    # --- request log ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        return self.log.snapshot()

    def clear_log(self) -> None:
        self.log.clear()

    def count(self, method: str | None = None) -> int:
        """Number of logged requests, optionally only those with ``method``."""
        return sum(1 for r in self.requests if method is None or r.method == method)

    def bytes_served(self) -> int:
        """Body bytes sent by successful GETs."""
        return sum(r.bytes_out for r in self.requests if r.method == "GET" and r.status == 200)

    # --- stored objects ---------------------------------------------------------------------

    def object_paths(self) -> list[str]:
        """Relative POSIX paths of the stored files (e.g. ``files/md5/ab/cdef...``), sorted."""
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(_UPLOAD_PREFIX)
        )

    def delete(self, relpath: str) -> None:
        (self.root / relpath).unlink()

    def write(self, relpath: str, data: bytes) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
