"""The git history a run reads, through dulwich: no git binary (the image has none).

Commits, merge-bases and files at a commit, and fetching commits from ``origin`` with the
credentials ``actions/checkout`` left: an ``http.<url>.extraheader`` in ``.git/config`` (v4,
v5) or in a file under ``$RUNNER_TEMP`` that ``.git/config`` includes for this checkout (v6).
dulwich reads both (``includeIf "gitdir:..."`` too) and sends the header to that URL alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dulwich.objects import ObjectID

# The depth `git fetch --unshallow` asks for: all of it.
DEEPEN_ALL = 0x7FFFFFFF
FETCH_TIMEOUT = 60.0  # seconds without an answer from origin's server before a fetch fails


class FetchFailed(Exception):
    """Fetching from ``origin`` failed; the message says why in dulwich's words."""


def toplevel(path: Path) -> Path | None:
    """The working tree that holds ``path`` (``git rev-parse --show-toplevel``)."""
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        with Repo.discover(str(path)) as repo:
            return Path(repo.path).resolve()
    except (NotGitRepository, OSError):
        return None


def has_commit(root: Path, sha: str) -> bool:
    """Whether the commit is in the repository (``git cat-file -e SHA^{commit}``)."""
    from dulwich.objects import Commit
    from dulwich.repo import Repo

    with Repo(str(root)) as repo:
        try:
            return isinstance(repo[sha.encode()], Commit)
        except (KeyError, ValueError):
            return False


def merge_base(root: Path, base: str, head: str) -> str | None:
    """The best common ancestor of two commits, or None when they share no history."""
    from dulwich.graph import find_merge_base
    from dulwich.objects import ObjectID
    from dulwich.repo import Repo

    # A Repo opened afresh each time: dulwich reads .git/shallow once, at open, so one opened
    # before an unshallowing fetch would still see the old boundary as root commits.
    with Repo(str(root)) as repo:
        try:
            found = find_merge_base(repo, [ObjectID(base.encode()), ObjectID(head.encode())])
        except (KeyError, ValueError, AssertionError):  # dulwich asserts a SHA is a commit
            return None
    return found[0].decode() if found else None


def is_shallow(root: Path) -> bool:
    """Whether the clone has only part of the history (``--is-shallow-repository``)."""
    from dulwich.repo import Repo

    with Repo(str(root)) as repo:
        return bool(repo.get_shallow())


def file_at(root: Path, sha: str, rel: str) -> str | None:
    """The text of the file ``rel`` (POSIX, from the top) in commit ``sha``, if it has one."""
    from dulwich.errors import WrongObjectException
    from dulwich.object_store import tree_lookup_path
    from dulwich.objects import Blob, Commit, SubmoduleEncountered
    from dulwich.repo import Repo

    with Repo(str(root)) as repo:
        try:
            commit = repo[sha.encode()]
            if not isinstance(commit, Commit):
                return None
            _, found = tree_lookup_path(repo.__getitem__, commit.tree, rel.encode())
            blob = repo[found]
            return blob.data.decode("utf-8") if isinstance(blob, Blob) else None
        except (KeyError, ValueError, WrongObjectException, SubmoduleEncountered):
            return None  # no such commit or file (a path through a file or a submodule)
        except UnicodeDecodeError:
            return None


def fetch(root: Path, shas: Sequence[str], *, unshallow: bool = False) -> None:
    """Fetch commits by SHA from ``origin`` without tags (``unshallow``: with all their
    history, as ``git fetch --unshallow``); raises :class:`FetchFailed`."""
    from dulwich.client import default_urllib3_manager, get_transport_and_path
    from dulwich.objects import ObjectID
    from dulwich.repo import Repo

    with Repo(str(root)) as repo:
        config = repo.get_config_stack()
        try:
            url = config.get((b"remote", b"origin"), b"url").decode()
        except KeyError:
            raise FetchFailed("the checkout has no remote named origin") from None
        wants = [ObjectID(sha.encode()) for sha in shas]

        def determine_wants(
            refs: Mapping[Any, ObjectID], depth: int | None = None
        ) -> list[ObjectID]:
            return wants

        try:
            # dulwich's HTTP client waits forever on a silent server unless given a timeout.
            pool: Any = (
                default_urllib3_manager(config, base_url=url, timeout=FETCH_TIMEOUT)
                if url.lower().startswith(("http://", "https://"))
                else None
            )
            client, path = get_transport_and_path(
                url, config=config, operation="pull", quiet=True, pool_manager=pool
            )
            client.fetch(
                path,
                repo,
                determine_wants=determine_wants,
                depth=DEEPEN_ALL if unshallow else None,
            )
        except Exception as exc:  # dulwich's errors share no base class
            raise FetchFailed(str(exc) or type(exc).__name__) from exc
