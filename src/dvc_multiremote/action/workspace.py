"""The runner's checkout seen from a container that runs as root: trust it, give it back."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


def trust_workspace() -> None:
    """Let libgit2 (DVC's pygit2) open a checkout that another user owns.

    The container runs as root on the runner user's checkout. The image tells git so with
    ``safe.directory '*'``; libgit2 keeps its own ownership check, switched off here alike.
    """
    try:
        import pygit2

        pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 0)
    except (ImportError, AttributeError, ValueError) as exc:
        log.debug("libgit2 ownership check left on: %s", exc)


def workspace_owner(workspace: Path) -> tuple[int, int] | None:
    """Owner of the checkout (its ``.git``), read before the container writes anything."""
    for candidate in (workspace / ".git", workspace):
        try:
            st = candidate.stat()
        except OSError:
            continue
        return st.st_uid, st.st_gid
    return None


def give_back(workspace: Path, owner: tuple[int, int] | None) -> int:
    """Give what this (root) process created in the workspace to the checkout's owner.

    The container runs as root; later steps run as the runner's user and must be able to
    change or delete what we wrote (reports, DVC's cache, pulled data, fetched git objects).
    """
    if not hasattr(os, "geteuid"):
        return 0  # not POSIX: no root to give files back from
    me = os.geteuid()
    if owner is None or me != 0 or owner[0] == me:
        return 0
    changed = 0
    for dirpath, dirnames, filenames in os.walk(workspace):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_uid == me:
                    os.lchown(path, *owner)
                    changed += 1
            except OSError:
                continue
    return changed
