"""The remote I/O layer's base: one opened remote, its probe, its status, bounded retries."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dvc_multiremote.inventory import DirEntry, ObjectRef, read_manifest
from dvc_multiremote.remotes.classify import Failure, State, classify_exception
from dvc_multiremote.remotes.ranged import Streams

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Container, Iterable
    from pathlib import Path

    from dvc.repo import Repo

    from dvc_multiremote.remotes.spec import RemoteSpec

log = logging.getLogger(__name__)
T = TypeVar("T")
Heard = Callable[[ObjectRef, bool], None]  # one object's check answer: (object, present)

PROBE_TIMEOUT = 8.0
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0
MAX_ATTEMPTS = 3  # per object transfer: the pull/push contract
HEAD_ATTEMPTS = 5  # a HEAD is cheap; a flaky server should not hide a whole remote
MAX_RETRY_AFTER = 10.0
PROBE_OID = "00" + "0" * 30
READ_INLINE_BYTES = 256 * 1024  # larger bodies are read off the event loop


class RemoteFailed(Exception):
    """The remote stopped answering usefully; its status already says why."""


@dataclass
class RemoteStatus:
    """What we learnt about one remote during a run."""

    spec: RemoteSpec
    state: State = "ok"
    message: str = ""
    present: dict[ObjectRef, int | None] | None = None
    requests: Counter[str] = field(default_factory=Counter)
    checked_with: str | None = None  # how presence is learnt: LIST, HEAD, or a ranged GET
    bytes_stored: int | None = None  # under the DVC prefix, from the listing (S3, local)

    @property
    def usable(self) -> bool:
        return self.state in ("ok", "missing")

    def fail(self, failure: Failure) -> None:
        if self.usable:
            self.state = failure.state
            self.message = failure.detail


class Remote:
    """One opened remote: DVC's filesystem and object layout, plus our probing on top."""

    def __init__(self, repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False) -> None:
        self.spec = spec
        self.refused_read_is_cap = refused_read_is_cap
        self.show_progress = False  # a check of one request per object says where it stands
        self.streams = Streams()  # large objects: ranged GETs at once (``remotes.ranged``)
        self.jobs = 32  # requests at once for transfers (``--jobs``); see ``request_slots``
        self._slots: asyncio.Semaphore | None = None
        self._probe_lock = threading.Lock()
        self._probed = False
        self.status = RemoteStatus(spec, checked_with="LIST" if self.lists_cheaply else None)
        dvc_remote = repo.cloud.get_remote(spec.name)
        self.odb = dvc_remote.odb
        self.legacy_odb = dvc_remote.legacy_odb
        self.fs = self.odb.fs

    # --- layout -------------------------------------------------------------
    def odb_for(self, obj: ObjectRef) -> Any:
        return self.legacy_odb if obj.legacy else self.odb

    def path_of(self, obj: ObjectRef) -> str:
        return str(self.odb_for(obj).oid_to_path(obj.md5))

    def size_of(self, obj: ObjectRef) -> int | None:
        """The object's size on this remote (one HEAD), or None if unknown or absent."""
        if not self.ensure_probed():
            return None
        self.status.requests["HEAD"] += 1
        try:
            size = self.odb_for(obj).fs.size(self.path_of(obj))
        except Exception as exc:  # noqa: BLE001 - absent, or the remote failed: unknown
            log.debug("size of %s on %s unknown: %s", obj.md5, self.spec.name, exc)
            return None
        return int(size) if size is not None else None

    def upload_hint(self, failure: Failure) -> str:
        """A hint to add to a refused upload's message, where the backend knows one."""
        return ""

    # --- the three things a backend answers ---------------------------------
    lists_cheaply = True
    serves_ranges = False  # ``read_range`` works; a server found to ignore Range turns it off

    def read_range(
        self, obj: ObjectRef, start: int, end: int, size: int
    ) -> AsyncGenerator[bytes, None]:
        """Bytes ``start`` to ``end`` (inclusive) of an object of ``size`` bytes, as they
        arrive, on the filesystem's event loop; raises ``ranged.RangeIgnored`` on a
        whole-object answer and ``ranged.SizeDiffers`` when the object has another size."""
        raise NotImplementedError

    async def get_file(self, obj: ObjectRef, path: Path) -> None:
        """The whole object into a new file at ``path``, as one stream, on the filesystem's
        event loop (a GET counted in ``status.requests``)."""
        self.status.requests["GET"] += 1
        await self.fs.fs._get_file(self.path_of(obj), str(path))

    puts_direct = False  # ``put_direct`` can upload (on the filesystem's event loop)

    async def put_direct(self, obj: ObjectRef, source: Path, size: int) -> bool:
        """Upload a file of ``size`` bytes as one request of the backend's own, on the
        filesystem's event loop, with no thread: False when the backend has none for it (too
        large for it, or that way is off), and DVC's object database uploads it."""
        return False

    def probe(self) -> None:
        raise NotImplementedError

    @property
    def contacted(self) -> bool:
        """Whether this run has talked to the remote at all."""
        return self._probed

    def ensure_probed(self) -> bool:
        """Probe once (the first caller does it), then say whether the remote is usable."""
        with self._probe_lock:
            if not self._probed:
                self._probed = True
                started = time.monotonic()
                self.probe()
                log.debug(
                    "%s: probed in %.2f s: %s %s",
                    self.spec.name,
                    time.monotonic() - started,
                    self.status.state,
                    self.status.message,
                )
        return self.status.usable

    def check(self, objects: Iterable[ObjectRef], jobs: int, heard: Heard | None = None) -> None:
        """Learn which of ``objects`` the remote holds (``status.present``), ``jobs`` requests
        at once. ``heard(obj, there)`` is told each answer as it comes: at once per object
        where each is asked alone (HTTP), all at the end of a listing (S3, local), so a caller
        can start work on an object before the whole check ends. It must not block."""
        raise NotImplementedError

    @staticmethod
    def tell(
        heard: Heard | None, objects: Iterable[ObjectRef], present: Container[ObjectRef]
    ) -> None:
        """A listing's answers, one per object, for ``heard``."""
        if heard is not None:
            for obj in objects:
                heard(obj, obj in present)

    def load_manifest(
        self, obj: ObjectRef, keep: Path | None = None, sizes: list[int] | None = None
    ) -> list[DirEntry] | None:
        """A directory's entries from this remote (a copy kept at ``keep``; the bytes read
        appended to ``sizes``), or None if absent."""

        if not self.ensure_probed():
            return None
        self.status.requests["GET"] += 1
        try:
            entries = read_manifest(self.odb_for(obj), obj, keep, sizes, check=True)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - classified, then the next source is tried
            failure = classify_exception(exc)
            if failure.state in ("missing", "error"):
                log.debug(
                    "manifest %s unreadable on %s: %s", obj.md5, self.spec.name, failure.detail
                )
                return None
            self.status.fail(failure)
            return None
        return entries

    # --- helpers ------------------------------------------------------------
    def _connect_or_fail(self) -> bool:
        """A plain TCP connect first: a dead endpoint is named in milliseconds, not after retries."""
        target = self.spec.endpoint if self.spec.kind == "s3" else self.spec.url
        netloc = self.spec.netloc
        if not target or netloc is None:
            return True
        host, port = netloc
        port = port or (443 if target.lower().startswith("https") else 80)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
            self.status.fail(Failure("unreachable", f"cannot connect to {host}:{port}: {reason}"))
            return False
        return True

    def request_slots(self) -> asyncio.Semaphore:
        """The ``jobs`` download requests this remote may have in flight, shared by whole
        objects and ranges alike (used on the filesystem's one event loop)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self.jobs))
        return self._slots

    def run_async(self, factory: Callable[[], Awaitable[T]], timeout: float | None) -> T:
        """Run a coroutine on the filesystem's event loop, bounded by ``timeout``."""
        from fsspec.asyn import sync

        async def bounded() -> T:
            return await asyncio.wait_for(factory(), timeout)

        result: T = sync(self.fs.fs.loop, bounded)
        return result


async def read_body(source: Path, size: int) -> bytes:
    """A small upload's body: read in place, or on a worker thread when it is not tiny."""
    if size <= READ_INLINE_BYTES:
        return source.read_bytes()
    return await asyncio.to_thread(source.read_bytes)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        return None


def backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return min(0.2 * 2.0 ** (attempt - 1), 5.0) * (0.5 + random.random())  # noqa: S311 - jitter
