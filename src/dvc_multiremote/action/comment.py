"""One sticky pull-request comment per label, created once and then edited in place (PyGithub).

Writes are never retried after the request may have reached GitHub: a repeated POST posts a
second comment. Reads and edits (idempotent) are retried a few times on 5xx and dropped
connections; every request gives up after :data:`TIMEOUT` seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from pydantic import SecretStr
    from urllib3.util.retry import Retry

    from dvc_multiremote.action.inputs import ActionInputs
    from dvc_multiremote.action.pull_request import RunnerEnv
    from dvc_multiremote.redact import Redactor

MAX_BODY = 65_536  # GitHub answers 422 to a longer comment
TIMEOUT = 10
_BODY_ROOM = 65_000  # what we aim for, leaving room for GitHub's own counting
_LABEL = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class CommentMarker:
    """The hidden ``<!-- dvc-multiremote:<label> -->`` that identifies our comment."""

    label: str

    def __post_init__(self) -> None:
        if not _LABEL.match(self.label):
            raise ValueError(f"comment label {self.label!r} may hold only [a-z0-9-]")

    def render(self) -> str:
        return f"<!-- dvc-multiremote:{self.label} -->"

    def found_in(self, body: str | None) -> bool:
        return self.render() in (body or "")


class CommentResult(NamedTuple):
    """What happened to the sticky comment."""

    action: Literal["created", "updated"]
    comment_id: int
    url: str


class CommentFailed(Exception):
    """GitHub refused or did not answer; ``status`` is the HTTP status when there was one."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fit_body(body: str, limit: int = _BODY_ROOM) -> str:
    """``body`` cut at a line so it stays under ``limit`` characters, open blocks closed."""
    if len(body) <= limit:
        return body
    kept: list[str] = []
    size = 0
    room = limit - 400  # the closing lines and the note
    for line in body.splitlines():
        if size + len(line) + 1 > room:
            break
        kept.append(line)
        size += len(line) + 1
    cut = len(body) - size
    if sum(1 for line in kept if line.lstrip().startswith("```")) % 2:
        kept.append("```")
    opened = sum(line.count("<details>") for line in kept)
    closed = sum(line.count("</details>") for line in kept)
    kept += ["", "</details>"] * max(0, opened - closed)
    kept += [
        "",
        f"… {cut:,} more characters cut to fit GitHub's comment limit; "
        "the job summary and the JSON report have everything.",
    ]
    return "\n".join(kept) + "\n"


def _retry() -> Retry:
    from urllib3.util.retry import Retry

    return Retry(
        total=3,
        connect=3,  # the request never left: safe for any method
        read=2,
        status=2,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD", "PATCH"}),  # never POST
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.5,
        backoff_max=4,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


def upsert_comment(
    *,
    api_url: str,
    token: SecretStr,
    repository: str,
    number: int,
    marker: CommentMarker,
    body: str,
) -> CommentResult:
    """Edit the newest comment on PR ``number`` that carries ``marker``, else create one."""
    import requests
    from github import Auth, Github, GithubException

    text = fit_body(marker.render() + "\n" + body)
    client = Github(
        base_url=api_url.rstrip("/"),
        auth=Auth.Token(token.get_secret_value()),
        timeout=TIMEOUT,
        retry=_retry(),
        lazy=True,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        issue = client.get_repo(repository, lazy=True).get_issue(number)
        newest = None
        for comment in issue.get_comments():
            if marker.found_in(comment.body):
                newest = comment  # the API lists oldest first
        if newest is not None:
            newest.edit(text)
            return CommentResult("updated", newest.id, newest.html_url)
        created = issue.create_comment(text)
        return CommentResult("created", created.id, created.html_url)
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        raise CommentFailed(exc.status, str(message or exc)) from None
    except requests.RequestException as exc:
        raise CommentFailed(None, f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()


COMMENT_FORBIDDEN = (
    "Could not comment on pull request #{number}: GitHub answered 403 ({detail}). The token cannot "
    "write comments here: on pull requests from forks GitHub makes it read-only; otherwise give "
    "the job `permissions: pull-requests: write`. The results are in this job's summary, and the "
    "job's result does not depend on the comment."
)


COMMENT_FAILED = (
    "Could not comment on pull request #{number}: {detail}. The results are in this job's "
    "summary, and the job's result does not depend on the comment."
)


COMMENT_UNAUTHENTICATED = (
    "No comment on pull request #{number}: the `github-token` input is empty. Leave it at its "
    "default (`${{{{ github.token }}}}`) or pass a token that may write pull-request comments."
)


COMMENT_NO_PR = (
    "`comment: always`, but this {event} event concerns no pull request, so there is nothing to "
    "comment on."
)


def post_comment(inputs: ActionInputs, env: RunnerEnv, body: str, redact: Redactor) -> str | None:
    """Create or update the sticky comment; returns a warning sentence when that failed."""
    from dvc_multiremote.action import runner
    from dvc_multiremote.action.pull_request import pull_request_number

    if inputs.comment == "never":
        return None
    number = (
        pull_request_number(env.event) if env.is_pr_event or inputs.comment == "always" else None
    )
    if number is None:
        if inputs.comment == "always":
            return COMMENT_NO_PR.format(event=env.event_name or "local")
        return None
    if inputs.github_token is None:
        return COMMENT_UNAUTHENTICATED.format(number=number)
    try:
        result = upsert_comment(
            api_url=env.api_url,
            token=inputs.github_token,
            repository=env.repository,
            number=number,
            marker=CommentMarker(inputs.label),
            body=redact(body),
        )
    except CommentFailed as exc:
        detail = redact(exc.message)
        if exc.status == 403:
            return COMMENT_FORBIDDEN.format(number=number, detail=detail)
        status = f"GitHub answered {exc.status} ({detail})" if exc.status else detail
        return COMMENT_FAILED.format(number=number, detail=status)
    runner.info(f"Comment {result.action}: {result.url}")
    return None
