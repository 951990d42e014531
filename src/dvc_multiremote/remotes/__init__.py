"""The remote I/O layer: one module per backend over a small base (``base``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvc_multiremote.remotes.base import Remote, RemoteFailed, RemoteStatus
from dvc_multiremote.remotes.ranged import Streams
from dvc_multiremote.remotes.spec import RemoteSpec

if TYPE_CHECKING:
    from dvc.repo import Repo

__all__ = ["Remote", "RemoteFailed", "RemoteSpec", "RemoteStatus", "open_remote"]


def open_remote(
    repo: Repo,
    spec: RemoteSpec,
    *,
    refused_read_is_cap: bool = False,
    jobs: int = 32,
    streams: Streams | None = None,
) -> Remote:
    """The right backend for a remote's kind, sized for ``jobs`` requests at once, with large
    objects moved as ``streams``."""
    remote: Remote
    if spec.kind == "s3":
        from dvc_multiremote.remotes.s3 import S3Remote

        remote = S3Remote(repo, spec, refused_read_is_cap=refused_read_is_cap, jobs=jobs)
    elif spec.kind == "http":
        from dvc_multiremote.remotes.http import HttpRemote

        remote = HttpRemote(repo, spec)
    else:
        from dvc_multiremote.remotes.local import ListingRemote

        remote = ListingRemote(repo, spec)
    remote.streams = streams or Streams()
    remote.jobs = jobs
    return remote
