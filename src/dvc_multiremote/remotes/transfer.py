"""Move single objects between a remote and local files: verified, atomic, retried, classified."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from dvc_multiremote.remotes.base import MAX_ATTEMPTS, Remote, RemoteFailed, backoff
from dvc_multiremote.remotes.classify import Failure, classify_exception
from dvc_multiremote.remotes.ranged import RangeIgnored, SizeDiffers, get_ranges

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from concurrent.futures import Executor
    from pathlib import Path

    from dvc_multiremote.inventory import ObjectRef

log = logging.getLogger(__name__)
T = TypeVar("T")
# A download that receives no byte for this long has its remote declared unreachable (a
# server that accepts the request and then says nothing). A slow one that keeps going is fine.
DEADLINE_SECONDS = float(os.environ.get("DVC_MULTIREMOTE_DEADLINE", "60"))
STALL_POLL_SECONDS = 1.0
HASH_INLINE_BYTES = 256 * 1024  # larger downloads are hashed off the event loop
UPLOAD_PARTS = 4  # S3 multipart parts of one upload in flight, at most (see ``upload``)


class ObjectMissing(Exception):
    """The remote answered: it does not have this object."""


class ObjectCorrupt(Exception):
    """The bytes the remote gave do not hash to the object's md5."""


class ObjectFailed(Exception):
    """This object kept failing on this remote (after retries); the remote itself may be fine.

    ``reason`` says why without naming the object, so that many failures read as one.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class Fetched:
    obj: ObjectRef
    path: Path
    size: int


def md5_matches(path: Path, obj: ObjectRef) -> bool:
    """Whether a downloaded file is the object it claims to be, hashed as DVC hashes it."""
    from dvc_data.hashfile.hash import file_md5

    if obj.is_dir:
        # A manifest's address is the md5 of its bytes, with ".dir" appended.
        expected = obj.md5[: -len(".dir")]
        name = "md5"
    else:
        expected = obj.md5
        name = "md5-dos2unix" if obj.legacy else "md5"
    return bool(file_md5(str(path), name=name) == expected)


def attempt(remote: Remote, action: Callable[[], T], what: str, *, writing: bool = False) -> T:
    """Run one object operation with bounded retries; classify what goes wrong.

    Raises ObjectMissing (404), RemoteFailed (the remote is now dropped: auth, cap,
    unreachable, or, ``writing``, a refused upload), or ObjectFailed (transient errors that
    persisted).
    """
    for number in range(1, MAX_ATTEMPTS + 1):
        if not remote.status.usable:
            raise RemoteFailed(remote.status.message)
        try:
            return action()
        except FileNotFoundError as exc:
            raise ObjectMissing(what) from exc
        except (ObjectCorrupt, ObjectMissing):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            time.sleep(_judge(remote, exc, what, number, writing=writing))
    raise AssertionError("unreachable: _judge raises on the last attempt")


async def attempt_async(
    remote: Remote, action: Callable[[], Awaitable[T]], what: str, *, writing: bool = False
) -> T:
    """``attempt`` for a coroutine, on the remote's event loop."""
    for number in range(1, MAX_ATTEMPTS + 1):
        if not remote.status.usable:
            raise RemoteFailed(remote.status.message)
        try:
            return await action()
        except FileNotFoundError as exc:
            raise ObjectMissing(what) from exc
        except (ObjectCorrupt, ObjectMissing):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            await asyncio.sleep(_judge(remote, exc, what, number, writing=writing))
    raise AssertionError("unreachable: _judge raises on the last attempt")


def _judge(
    remote: Remote, exc: Exception, what: str, number: int, *, writing: bool = False
) -> float:
    """Classify a failed attempt: raise if it is final, else return how long to back off."""
    failure = classify_exception(exc)
    if writing and failure.refused:
        # The server turned the write itself down (a header it does not take, a key that may
        # only read): every other upload would get the same answer, so the remote is done, in
        # the server's own words. A refused write is no download cap and no wrong key: the
        # probe read with the same key.
        remote.status.fail(
            Failure("error", f"refused uploads: {failure.answer}{remote.upload_hint(failure)}")
        )
        raise RemoteFailed(remote.status.message) from exc
    if failure.state == "missing":
        raise ObjectMissing(what) from exc
    if failure.state in ("auth", "cap-exceeded", "unreachable"):
        remote.status.fail(failure)
        raise RemoteFailed(failure.detail) from exc
    log.debug("%s on %s failed (attempt %d): %s", what, remote.spec.name, number, failure.detail)
    if number >= MAX_ATTEMPTS or failure.refused:
        # A request the server turned down as such (redirects that go round, say) would be
        # turned down again: not asked twice.
        raise ObjectFailed(f"{what}: {failure.detail}", failure.detail) from exc
    return _backoff(number, failure)


async def fetch_to(remote: Remote, obj: ObjectRef, path: Path, size: int | None) -> None:
    """One object into ``path``, on the remote's event loop: as ranged GETs at once when it is
    large (``remote.streams``) and the server serves ranges, else as one stream."""
    parts = remote.streams.split(size) if remote.serves_ranges and size else None
    slots = remote.request_slots()
    if parts is not None and size is not None:
        try:
            await get_ranges(
                lambda start, end, total: remote.read_range(obj, start, end, total),
                path,
                size,
                parts,
                DEADLINE_SECONDS,
                slots,
            )
        except SizeDiffers as exc:
            log.debug("%s on %s: %s; one stream", obj.md5, remote.spec.name, exc)
            path.unlink(missing_ok=True)
        except RangeIgnored as exc:
            remote.serves_ranges = False
            log.info(
                "%s answered a ranged GET with the whole object (%s): one stream per object",
                remote.spec.name,
                exc,
            )
            path.unlink(missing_ok=True)
        else:
            return
    async with slots:
        await guarded(remote.get_file(obj, path), path, remote.spec.name)


async def guarded(download: Awaitable[None], path: Path, name: str) -> None:
    """A download into ``path`` with a stall deadline of our own: DVC's filesystems wait on a
    silent server for minutes, through retries. The file must grow at least once per
    ``DEADLINE_SECONDS``; a slow download that keeps moving runs to the end."""
    task = asyncio.ensure_future(download)
    loop = asyncio.get_running_loop()
    size, moved = -1, loop.time()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=STALL_POLL_SECONDS)
            if done:
                task.result()
                return
            grown = path.stat().st_size if path.exists() else 0
            if grown != size:
                size, moved = grown, loop.time()
            elif loop.time() - moved >= DEADLINE_SECONDS:
                raise TimeoutError(f"no data for {DEADLINE_SECONDS:g} s from {name}")
    finally:
        if not task.done():
            task.cancel()


def download(remote: Remote, obj: ObjectRef, workdir: Path, size: int | None = None) -> Fetched:
    """Fetch one object into a new file under ``workdir`` and check its md5; ``size``, when
    known, lets a large object come as ranged GETs at once."""
    path = _temp_file(workdir, obj)
    fs = remote.fs.fs

    def get() -> Fetched:
        if getattr(fs, "async_impl", False):
            remote.run_async(lambda: fetch_to(remote, obj, path, size), None)
        else:
            remote.status.requests["GET"] += 1
            remote.fs.get_file(remote.path_of(obj), str(path))
        return _checked(remote, obj, path)

    try:
        return attempt(remote, get, f"download of {obj.md5}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def download_async(
    remote: Remote,
    obj: ObjectRef,
    workdir: Path,
    size: int | None = None,
    threads: Executor | None = None,
) -> Fetched:
    """``download`` from a coroutine: on the running event loop itself when the remote's
    filesystem does its I/O there (DVC's S3 and HTTP: no thread per object; large files are
    hashed on a worker thread, small ones in place), else (a local remote) on one of
    ``threads``."""
    loop = asyncio.get_running_loop()
    if not _runs_on(remote, loop):
        return await loop.run_in_executor(threads, download, remote, obj, workdir, size)
    path = _temp_file(workdir, obj)

    async def get() -> Fetched:
        await fetch_to(remote, obj, path, size)
        return await hashing(path, lambda: _checked(remote, obj, path))

    try:
        return await attempt_async(remote, get, f"download of {obj.md5}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def hashing(path: Path, check: Callable[[], T], threads: Executor | None = None) -> T:
    """``check``, a hash of ``path``, from a coroutine: in place when the file is small (less
    than a hop to a thread costs), else on ``threads`` (the loop's default executor)."""
    if path.stat().st_size <= HASH_INLINE_BYTES:
        return check()
    return await asyncio.get_running_loop().run_in_executor(threads, check)


def _runs_on(remote: Remote, loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the remote's filesystem does its I/O on ``loop`` (fsspec's, for S3 and HTTP)."""
    fs = remote.fs.fs
    return bool(getattr(fs, "async_impl", False)) and fs.loop is loop


def _temp_file(workdir: Path, obj: ObjectRef) -> Path:
    """A fresh name in ``workdir`` (a directory private to this run), not yet created: the
    download creates it, so each object costs one file creation, as in DVC."""
    return workdir / f"{obj.md5[:8]}.{uuid.uuid4().hex}.part"


def _checked(remote: Remote, obj: ObjectRef, path: Path) -> Fetched:
    if not md5_matches(path, obj):
        raise ObjectCorrupt(f"{obj.md5} on {remote.spec.name} does not match its md5")
    return Fetched(obj, path, path.stat().st_size)


def upload(remote: Remote, obj: ObjectRef, source: Path) -> int:
    """Put one local file on the remote at the object's address (DVC's layout and method)."""

    def put() -> int:
        size = source.stat().st_size
        if remote.puts_direct and remote.run_async(
            lambda: remote.put_direct(obj, source, size), None
        ):
            return size
        return _put_by_odb(remote, obj, source)

    try:
        return attempt(remote, put, _what(obj), writing=True)
    except ObjectMissing as exc:
        raise _not_found_on_upload(remote, obj) from exc


async def upload_async(
    remote: Remote, obj: ObjectRef, source: Path, threads: Executor | None = None
) -> int:
    """``upload`` from a coroutine: on the running event loop itself when the remote's
    filesystem does its I/O there (what the backend sends itself, ``put_direct``, goes up with
    no thread; the rest through DVC's object database on one of ``threads``), else (a local
    remote) wholly on one of ``threads``."""
    loop = asyncio.get_running_loop()
    if not _runs_on(remote, loop):
        return await loop.run_in_executor(threads, upload, remote, obj, source)

    async def put() -> int:
        size = source.stat().st_size
        if remote.puts_direct and await remote.put_direct(obj, source, size):
            return size
        return await loop.run_in_executor(threads, _put_by_odb, remote, obj, source)

    try:
        return await attempt_async(remote, put, _what(obj), writing=True)
    except ObjectMissing as exc:
        raise _not_found_on_upload(remote, obj) from exc


def _what(obj: ObjectRef) -> str:
    return f"upload of {obj.md5}"


def _put_by_odb(remote: Remote, obj: ObjectRef, source: Path) -> int:
    """DVC's object database's upload of one file (from a worker thread)."""
    from dvc_objects.fs.local import localfs

    remote.status.requests["PUT"] += 1
    # ``batch_size`` is the parts of one S3 multipart upload in flight (DVC passes it to
    # s3fs as ``max_concurrency``; 50 MiB parts from 100 MiB, each held in memory, so
    # at most UPLOAD_PARTS: ``--jobs`` large uploads at once hold jobs x 200 MiB).
    parts = max(1, min(remote.streams.count, UPLOAD_PARTS))
    remote.odb_for(obj).add(str(source), localfs, obj.md5, check_exists=False, batch_size=parts)
    return source.stat().st_size


def _not_found_on_upload(remote: Remote, obj: ObjectRef) -> ObjectFailed:
    """A 404 to a write is no absent object: a failed upload, reported as such."""
    reason = "the remote answered 404 Not Found to the upload"
    reason += remote.upload_hint(Failure("missing", "HTTP 404", answer="HTTP 404"))
    return ObjectFailed(f"upload of {obj.md5}: {reason}", reason)


class Counter:
    """A thread-safe tally of objects and bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.objects = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        with self._lock:
            self.objects += 1
            self.bytes += size


def _backoff(number: int, failure: Failure) -> float:
    return backoff(number, failure.retry_after)
