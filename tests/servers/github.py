"""A loopback stand-in for GitHub's REST API: the issue-comment endpoints a sticky comment uses.

- ``GET  /repos/{owner}/{repo}/issues/{n}/comments`` (paginated with ``page``/``per_page``)
- ``POST /repos/{owner}/{repo}/issues/{n}/comments``
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``

Switches: :attr:`FakeGitHub.forbid_writes` answers 403 "Resource not accessible by integration"
to every write (a fork's read-only token); :meth:`FakeGitHub.fail_next` answers the next N
requests of a method with a status (to see what is retried).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .common import BodyError, LoopbackServer, QuietHandler, RequestLog, iter_body

FORBIDDEN = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
    "status": "403",
}
BOT_LOGIN = "github-actions[bot]"


@dataclass(frozen=True)
class ApiRequest:
    """One request as the fake saw and answered it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class StoredComment:
    id: int
    owner: str
    repo: str
    number: int
    body: str
    login: str = BOT_LOGIN


class _Handler(QuietHandler):
    request_body: str = ""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        api: FakeGitHub = self.server.owner
        try:
            raw = b"".join(iter_body(self.rfile, self.headers))
        except BodyError:
            self.close_connection = True
            self._json(400, {"message": "Problems parsing JSON"})
            return
        self.bytes_in = len(raw)
        self.request_body = raw.decode("utf-8", "replace")
        try:
            status, payload, headers = api.answer(
                self.command, self.path, self.request_body, self.headers.get("Authorization")
            )
            self._json(status, payload, headers)
        finally:
            self.record_once()

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_body(status, body, {"Content-Type": "application/json", **(headers or {})})

    def record(self) -> None:
        self.server.owner.log.add(
            ApiRequest(
                method=self.command,
                path=self.path,
                status=self.status,
                headers=dict(self.headers.items()),
                body=self.request_body,
            )
        )


class FakeGitHub(LoopbackServer):
    """GitHub's REST API for PR comments, on 127.0.0.1; ``base_url`` goes to ``GITHUB_API_URL``."""

    handler_class = _Handler

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.forbid_writes = False
        self.log: RequestLog[ApiRequest] = RequestLog()
        self._comments: dict[int, StoredComment] = {}
        self._ids = itertools.count(1001)
        self._failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    # --- switches ---------------------------------------------------------------------------
    def fail_next(self, method: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``method`` with ``status`` (no effect)."""
        with self._lock:
            self._failures.setdefault(method.upper(), []).extend([status] * times)

    # --- state ------------------------------------------------------------------------------
    def comments(self, owner: str, repo: str, number: int) -> list[StoredComment]:
        with self._lock:
            return [
                c
                for c in sorted(self._comments.values(), key=lambda c: c.id)
                if (c.owner, c.repo, c.number) == (owner, repo, number)
            ]

    def add_comment(self, owner: str, repo: str, number: int, body: str, login: str) -> int:
        with self._lock:
            comment = StoredComment(next(self._ids), owner, repo, number, body, login)
            self._comments[comment.id] = comment
            return comment.id

    @property
    def requests(self) -> list[ApiRequest]:
        return self.log.snapshot()

    def count(self, method: str) -> int:
        return sum(1 for r in self.requests if r.method == method)

    # --- the API ----------------------------------------------------------------------------
    def _comment_json(self, c: StoredComment) -> dict[str, Any]:
        api = self.base_url
        return {
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "url": f"{api}/repos/{c.owner}/{c.repo}/issues/comments/{c.id}",
            "html_url": f"https://github.com/{c.owner}/{c.repo}/pull/{c.number}#issuecomment-{c.id}",
            "issue_url": f"{api}/repos/{c.owner}/{c.repo}/issues/{c.number}",
            "body": c.body,
            "user": {"login": c.login, "id": 41898282, "type": "Bot"},
            "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z",
        }

    def answer(
        self, method: str, target: str, body: str, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            queued = self._failures.get(method)
            if queued:
                return queued.pop(0), {"message": "injected failure"}, {}
        if self.token is not None and authorization not in (
            f"token {self.token}",
            f"Bearer {self.token}",
        ):
            return 401, {"message": "Bad credentials"}, {}
        parts = urlsplit(target)
        segments = [s for s in parts.path.split("/") if s]
        # /repos/{o}/{r}/issues/{n}/comments
        is_list = segments[4:5] != ["comments"] and segments[5:6] == ["comments"]
        if len(segments) == 6 and segments[0] == "repos" and segments[3] == "issues" and is_list:
            owner, repo, number = segments[1], segments[2], segments[4]
            if segments[5] != "comments" or not number.isdigit():
                return 404, {"message": "Not Found"}, {}
            if method == "GET":
                return self._list(owner, repo, int(number), parse_qs(parts.query))
            if method == "POST":
                if self.forbid_writes:
                    return 403, FORBIDDEN, {}
                text = json.loads(body or "{}").get("body", "")
                if len(text) > 65_536:
                    return 422, {"message": "Validation Failed"}, {}
                new = self.add_comment(owner, repo, int(number), text, BOT_LOGIN)
                return 201, self._comment_json(self._comments[new]), {}
        # /repos/{o}/{r}/issues/comments/{id}
        if len(segments) == 6 and segments[3:5] == ["issues", "comments"] and method == "PATCH":
            if self.forbid_writes:
                return 403, FORBIDDEN, {}
            comment = self._comments.get(int(segments[5])) if segments[5].isdigit() else None
            if comment is None:
                return 404, {"message": "Not Found"}, {}
            text = json.loads(body or "{}").get("body", "")
            if len(text) > 65_536:
                return 422, {"message": "Validation Failed"}, {}
            comment.body = text
            return 200, self._comment_json(comment), {}
        return 404, {"message": "Not Found"}, {}

    def _list(
        self, owner: str, repo: str, number: int, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = int((query.get("per_page") or ["30"])[0])
        page = int((query.get("page") or ["1"])[0])
        everything = self.comments(owner, repo, number)
        chunk = everything[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(everything):
            base = f"{self.base_url}/repos/{owner}/{repo}/issues/{number}/comments"
            headers["Link"] = f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, [self._comment_json(c) for c in chunk], headers
