"""The remote I/O layer: one module per backend over a small base (``base``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvc_multiremote.remotes.base import Remote, RemoteFailed, RemoteStatus
from dvc_multiremote.remotes.spec import RemoteSpec

if TYPE_CHECKING:
    from dvc.repo import Repo

__all__ = ["Remote", "RemoteFailed", "RemoteSpec", "RemoteStatus", "open_remote"]


def open_remote(
    repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False, jobs: int = 32
) -> Remote:
    """The right backend for a remote's kind, sized for ``jobs`` requests at once."""
    if spec.kind == "s3":
        from dvc_multiremote.remotes.s3 import S3Remote

        return S3Remote(repo, spec, refused_read_is_cap=refused_read_is_cap, jobs=jobs)
    if spec.kind == "http":
        from dvc_multiremote.remotes.http import HttpRemote

        return HttpRemote(repo, spec)
    from dvc_multiremote.remotes.local import ListingRemote

    return ListingRemote(repo, spec)
