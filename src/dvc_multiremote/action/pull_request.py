"""Pull-request context: the event's base and head, their commits, and remotes the PR re-pointed.

A pull request controls ``.dvc/config``. A remote whose ``url`` or ``endpointurl`` differs from
the base commit's could send our credentials to a server the PR's author chose, so it gets none.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dvc_multiremote import history
from dvc_multiremote.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

PR_EVENTS: tuple[str, ...] = ("pull_request", "pull_request_target")
# Options that decide which server a remote's requests (and so its credentials) go to.
HOST_OPTIONS: tuple[str, ...] = ("url", "endpointurl")
FULL_HISTORY_FIX = (
    "Check out with full history: `actions/checkout` with `fetch-depth: 0` before this step."
)
log = logging.getLogger(__name__)
_REMOTE_SECTION = re.compile(r'^\s*remote\s+"(?P<name>[^"]+)"\s*$')


class PullRequestError(UsageError):
    """The pull request's commits cannot be compared (missing, unfetchable, unrelated)."""


@dataclass(frozen=True)
class PullRequest:
    """The parts of a ``pull_request`` event payload a run needs."""

    number: int
    base_sha: str
    head_sha: str
    base_repo: str
    head_repo: str | None

    @property
    def is_fork(self) -> bool:
        """Opened from another repository (or one since deleted): GitHub withholds secrets."""
        return self.head_repo != self.base_repo

    @property
    def range(self) -> str:
        return f"{self.base_sha}..{self.head_sha}"


@dataclass(frozen=True)
class RunnerEnv:
    """What the runner tells a step through ``GITHUB_*`` variables."""

    event_name: str
    event: dict[str, Any]
    workspace: Path
    in_runner: bool
    api_url: str
    server_url: str
    repository: str
    run_id: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunnerEnv:
        workspace = environ.get("GITHUB_WORKSPACE")
        return cls(
            event_name=environ.get("GITHUB_EVENT_NAME", ""),
            event=load_event(environ.get("GITHUB_EVENT_PATH")),
            workspace=Path(workspace) if workspace else Path.cwd(),
            in_runner=bool(workspace),
            api_url=environ.get("GITHUB_API_URL") or "https://api.github.com",
            server_url=environ.get("GITHUB_SERVER_URL") or "https://github.com",
            repository=environ.get("GITHUB_REPOSITORY", ""),
            run_id=environ.get("GITHUB_RUN_ID", ""),
        )

    @property
    def is_pr_event(self) -> bool:
        return self.event_name in PR_EVENTS

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"


def load_event(path: str | None) -> dict[str, Any]:
    """The webhook payload at ``$GITHUB_EVENT_PATH`` (empty when there is none)."""
    if not path or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pull_request_from(payload: dict[str, Any]) -> PullRequest | None:
    """The pull request a payload is about, if it names one with both commits."""
    pr = payload.get("pull_request")
    if not isinstance(pr, dict):
        return None
    base, head = pr.get("base") or {}, pr.get("head") or {}
    number = pr.get("number") or payload.get("number")
    if not (isinstance(number, int) and base.get("sha") and head.get("sha")):
        return None
    base_repo = (base.get("repo") or {}).get("full_name") or ""
    head_repo = (head.get("repo") or {}).get("full_name")
    return PullRequest(number, str(base["sha"]), str(head["sha"]), str(base_repo), head_repo)


def pull_request_number(payload: dict[str, Any]) -> int | None:
    """The PR a payload concerns: a pull_request event, or an issue comment on a PR."""
    pr = payload.get("pull_request")
    if isinstance(pr, dict) and isinstance(pr.get("number"), int):
        return int(pr["number"])
    issue = payload.get("issue")
    if (
        isinstance(issue, dict)
        and issue.get("pull_request")
        and isinstance(issue.get("number"), int)
    ):
        return int(issue["number"])
    return None


def ensure_commits(root: Path, pr: PullRequest) -> list[str]:
    """Make base, head and their merge-base available, fetching from ``origin`` if needed.

    Returns what was done, for the log; raises :class:`PullRequestError` with the fix.
    """
    done: list[str] = []
    missing = [sha for sha in (pr.base_sha, pr.head_sha) if not history.has_commit(root, sha)]
    if missing:
        try:
            history.fetch(root, missing)
        except history.FetchFailed as exc:
            which = "base" if pr.base_sha in missing else "head"
            raise PullRequestError(
                f"The {which} commit {missing[0][:12]} of pull request #{pr.number} is not in "
                f"this checkout, and fetching it from origin failed: {exc}",
                fix=FULL_HISTORY_FIX,
            ) from None
        still = [sha for sha in missing if not history.has_commit(root, sha)]
        if still:
            which = "base" if pr.base_sha in still else "head"
            raise PullRequestError(
                f"The {which} commit {still[0][:12]} of pull request #{pr.number} is not in this "
                "checkout, and origin did not send it.",
                fix=FULL_HISTORY_FIX,
            )
        done.append(f"fetched {', '.join(sha[:12] for sha in missing)} from origin")
    if history.merge_base(root, pr.base_sha, pr.head_sha) is None:
        if history.is_shallow(root):
            try:
                history.fetch(root, [pr.base_sha, pr.head_sha], unshallow=True)
                done.append("fetched the rest of the history (the checkout was shallow)")
            except history.FetchFailed as exc:
                log.debug("unshallowing fetch failed: %s", exc)
        if history.merge_base(root, pr.base_sha, pr.head_sha) is None:
            raise PullRequestError(
                f"Pull request #{pr.number}'s base {pr.base_sha[:12]} and head "
                f"{pr.head_sha[:12]} have no common ancestor in this checkout.",
                fix=FULL_HISTORY_FIX,
            )
    return done


@dataclass(frozen=True)
class RemoteChange:
    """A remote the pull request re-pointed (or added)."""

    remote: str
    option: str
    before: str | None
    after: str | None

    def describe(self) -> str:
        if self.before is None and self.option == "url":
            return f"remote {self.remote!r} is new in this pull request ({_safe(self.after)})"
        return (
            f"remote {self.remote!r} has its {self.option} changed by this pull request "
            f"(from {_safe(self.before)} to {_safe(self.after)})"
        )


def _safe(url: str | None) -> str:
    """A URL without user, password or query, fit to print."""
    if not url:
        return "unset"
    parts = urlsplit(url)
    if not parts.scheme or parts.hostname is None:
        return url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def remote_hosts(config_text: str) -> dict[str, dict[str, str | None]]:
    """``{remote: {url, endpointurl}}`` from the text of a ``.dvc/config``."""
    from configobj import ConfigObj, ConfigObjError

    try:
        conf = ConfigObj(config_text.splitlines(), list_values=False, interpolation=False)
    except ConfigObjError as exc:
        raise UsageError(f"The DVC config of the pull request cannot be read: {exc}") from None
    found: dict[str, dict[str, str | None]] = {}
    for section, options in conf.items():
        match = _REMOTE_SECTION.match(section)
        if match and isinstance(options, dict):
            found[match.group("name")] = {
                option: (str(options[option]) if option in options else None)
                for option in HOST_OPTIONS
            }
    return found


def reaches_network(hosts: dict[str, str | None]) -> bool:
    """Whether a remote's requests leave the machine (and so could carry credentials)."""
    if hosts.get("endpointurl"):
        return True
    scheme = urlsplit(hosts.get("url") or "").scheme.lower()
    return scheme not in ("", "file") and len(scheme) > 1  # "c:" is a Windows drive


def config_at(root: Path, sha: str, dvc_root: Path) -> str:
    """The text of ``.dvc/config`` in commit ``sha`` (empty when that commit has none)."""
    rel = (dvc_root.resolve() / ".dvc" / "config").relative_to(root.resolve()).as_posix()
    return history.file_at(root, sha, rel) or ""


def changed_remotes(git_root: Path, dvc_root: Path, base_sha: str) -> list[RemoteChange]:
    """Remotes of the working tree's ``.dvc/config`` that point elsewhere than at ``base_sha``."""
    current_path = dvc_root / ".dvc" / "config"
    current = current_path.read_text(encoding="utf-8") if current_path.is_file() else ""
    before = remote_hosts(config_at(git_root, base_sha, dvc_root))
    changes: list[RemoteChange] = []
    for name, hosts in remote_hosts(current).items():
        if not reaches_network(hosts):
            continue  # a local directory receives no credentials, wherever it points
        old = before.get(name)
        if old is None:
            changes.append(RemoteChange(name, "url", None, hosts.get("url")))
            continue
        for option in HOST_OPTIONS:
            if hosts.get(option) != old.get(option):
                changes.append(RemoteChange(name, option, old.get(option), hosts.get(option)))
                break
    return changes


def git_toplevel(path: Path) -> Path | None:
    return history.toplevel(path)


@dataclass(frozen=True)
class PrContext:
    """What a pull-request run learnt before the command ran."""

    pull_request: PullRequest
    changes: tuple[RemoteChange, ...]
    fork_without_secrets: bool
    log: tuple[str, ...]


def read_pull_request(
    env: RunnerEnv, dvc_root: Path, git_root: Path | None, *, has_secrets: bool
) -> PrContext:
    """The event's pull request, its commits fetched, and the remotes it re-points."""
    pr = pull_request_from(env.event)
    if pr is None:
        raise PullRequestError(
            f"This {env.event_name} event's payload names no pull request base and head commit.",
            fix="Run the action on a pull_request event, or set `scope: workspace`.",
        )
    if git_root is None:
        raise PullRequestError(
            f"{dvc_root} is not in a git checkout, so pull request #{pr.number} cannot be "
            "compared with its base.",
            fix="Check the repository out with actions/checkout before this step.",
        )
    lines = [f"pull request #{pr.number}: base {pr.base_sha[:12]}, head {pr.head_sha[:12]}"]
    lines += ensure_commits(git_root, pr)
    changes = changed_remotes(git_root, dvc_root, pr.base_sha)
    if pr.is_fork:
        lines.append(f"opened from the fork {pr.head_repo or '(deleted)'}")
    return PrContext(pr, tuple(changes), pr.is_fork and not has_secrets, tuple(lines))
