"""A git host on loopback: git's own smart-HTTP server (``git http-backend``) behind Basic auth,
as github.com serves a checkout's ``origin`` to a runner holding a token."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servers.common import LoopbackServer, QuietHandler, RequestLog

if TYPE_CHECKING:
    from pathlib import Path

BACKEND_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitRequest:
    method: str
    path: str
    status: int
    authorization: str | None


class _Handler(QuietHandler):
    @property
    def owner(self) -> GitHost:
        owner: GitHost = self.server.owner
        return owner

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def record(self) -> None:
        self.owner.log.add(
            GitRequest(self.command, self.path, self.status, self.headers.get("Authorization"))
        )

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Authorization", "").lower() != self.owner.authorization.lower():
            self.send_body(401, headers={"WWW-Authenticate": 'Basic realm="git"'})
            return
        path, _, query = self.path.partition("?")
        env = {
            "GIT_PROJECT_ROOT": str(self.owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header in ("Git-Protocol", "Content-Encoding"):
            if header in self.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        done = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=BACKEND_TIMEOUT,
            check=False,
        )
        head, _, rest = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name and name.lower() != "content-length":
                headers[name] = value
        self.send_body(status, rest, headers)


class GitHost(LoopbackServer):
    """Serves the bare repositories under ``root`` at ``/<name>.git`` to one token, as
    GitHub serves ``x-access-token:<token>`` in Basic auth."""

    handler_class = _Handler

    def __init__(self, root: Path, token: str) -> None:
        super().__init__()
        self.root = root
        self.token = token
        self.log: RequestLog[GitRequest] = RequestLog()

    @property
    def authorization(self) -> str:
        pair = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return f"Basic {pair}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}.git"
