"""What each remote holds: one probe, then a listing (S3, local) or a HEAD per object (HTTP)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dvc_multiremote.classify import Failure, State, classify_exception, classify_status
from dvc_multiremote.concurrency import Throttle, bounded_gather
from dvc_multiremote.inventory import DirEntry, ObjectRef, read_manifest
from dvc_multiremote.remotes import RemoteSpec
from dvc_multiremote.timestamps import use_fast_timestamps

if TYPE_CHECKING:
    from dvc.repo import Repo

log = logging.getLogger(__name__)
T = TypeVar("T")

PROBE_TIMEOUT = 8.0
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0
MAX_ATTEMPTS = 3  # per object transfer: the pull/push contract
HEAD_ATTEMPTS = 5  # a HEAD is cheap; a flaky server should not hide a whole remote
MAX_RETRY_AFTER = 10.0
_PROBE_OID = "00" + "0" * 30


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
        self._probe_lock = threading.Lock()
        self._probed = False
        self.status = RemoteStatus(spec)
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

    # --- the three things a backend answers ---------------------------------
    lists_cheaply = True

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

    def check(self, objects: Iterable[ObjectRef], jobs: int) -> None:
        raise NotImplementedError

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

    def run_async(self, factory: Callable[[], Awaitable[T]], timeout: float | None) -> T:
        """Run a coroutine on the filesystem's event loop, bounded by ``timeout``."""
        from fsspec.asyn import sync

        async def bounded() -> T:
            return await asyncio.wait_for(factory(), timeout)

        return sync(self.fs.fs.loop, bounded)


class S3Remote(Remote):
    """S3 (and B2's S3 API): a listing of the objects prefix, in a few ranges at once."""

    # Key ranges listed concurrently. Each wastes at most one partial page, so a listing of N
    # objects costs at most N/1000 + LIST_RANGES calls (LIST is billed on B2).
    LIST_RANGES = 3

    def __init__(
        self, repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False, jobs: int = 32
    ) -> None:
        super().__init__(repo, spec, refused_read_is_cap=refused_read_is_cap)
        self.jobs = jobs

    def _bucket_key(self, path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    async def _call(self, method: str, kind: str, **kwargs: Any) -> Any:
        self.status.requests[kind] += 1
        return await self.fs.fs._call_s3(method, **kwargs)

    def probe(self) -> None:
        # Before the client exists (the probe makes it; its imports run here, on the probe's
        # thread, not ahead of every remote's work). botocore keeps at most 10 connections per
        # client: `jobs` requests beyond 10 would queue, capping a pull at 10 GETs per round trip.
        config = self.fs.fs_args.setdefault("config_kwargs", {})
        config["max_pool_connections"] = max(self.jobs, config.get("max_pool_connections") or 10)
        # Every download is checked against its md5 (transfer.md5_matches), so botocore's CRC32
        # of each response body, and its validation of our fixed parameters, are CPU spent per
        # object for nothing.
        config.setdefault("response_checksum_validation", "when_required")
        config.setdefault("parameter_validation", False)
        bucket, key = self._bucket_key(self.odb.path)
        probe_key = self._bucket_key(self.odb.oid_to_path(_PROBE_OID))[1]

        async def go() -> None:
            from botocore.exceptions import ClientError

            # The client itself, not s3fs's wrapper: a probe must not sit in five rounds of
            # retries. One GET of an absent key says reachable, credentials and reads all at once.
            client = await self.fs.fs.get_s3(bucket)
            # Every later request (listings, downloads) goes through this client's session.
            use_fast_timestamps(self.fs.fs.session)
            self.status.requests["GET"] += 1
            try:
                response = await client.get_object(Bucket=bucket, Key=probe_key)
                response["Body"].close()
            except ClientError as exc:
                failure = classify_exception(exc)
                if failure.state == "missing":
                    return
                if failure.state != "auth" or not self.refused_read_is_cap:
                    raise
                # A bare 403 from B2: capped if listing still works, refused if it does not.
                self.status.requests["LIST"] += 1
                await client.list_objects_v2(Bucket=bucket, Prefix=key + "/", MaxKeys=1)
                raise _Capped(failure.detail) from exc

        if not self._connect_or_fail():
            return
        try:
            self.run_async(go, PROBE_TIMEOUT)
        except _Capped as exc:
            self.status.fail(
                Failure("cap-exceeded", f"listing works but downloads are refused ({exc})")
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            self.status.fail(classify_exception(exc))

    def check(self, objects: Iterable[ObjectRef], jobs: int) -> None:
        # Keys are our own instances: a million listing entries must not each keep a copy.
        wanted = {obj: obj for obj in objects}
        legacy = any(obj.legacy for obj in wanted)
        root = self.legacy_odb.path if legacy else self.odb.path
        bucket, prefix = self._bucket_key(root)
        prefix = prefix.rstrip("/") + "/"
        present: dict[ObjectRef, int | None] = {}
        bounds = _hex_bounds(self.LIST_RANGES)

        async def list_range(low: str | None, high: str | None) -> None:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
                if token:
                    kwargs["ContinuationToken"] = token
                elif low:
                    kwargs["StartAfter"] = prefix + low
                page = await self._call("list_objects_v2", "LIST", **kwargs)
                for item in page.get("Contents", []):
                    name = item["Key"]
                    if high and name >= prefix + high:
                        return
                    obj = self._object_of(bucket + "/" + name)
                    known = wanted.get(obj) if obj is not None else None
                    if known is not None:
                        present[known] = int(item.get("Size", 0))
                if not page.get("IsTruncated"):
                    return
                token = page.get("NextContinuationToken")

        async def go() -> None:
            await asyncio.gather(*(list_range(low, high) for low, high in bounds))

        started = time.monotonic()
        try:
            self.run_async(go, None)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        self.status.present = present
        log.debug(
            "%s: %d LIST calls found %d of %d objects in %.2f s",
            self.spec.name,
            self.status.requests["LIST"],
            len(present),
            len(wanted),
            time.monotonic() - started,
        )

    def _object_of(self, path: str) -> ObjectRef | None:
        for odb, legacy in ((self.odb, False), (self.legacy_odb, True)):
            root = odb.path.rstrip("/") + "/"
            if path.startswith(root):
                rest = path[len(root) :]
                head, _, tail = rest.partition("/")
                if len(head) == 2 and tail and "/" not in tail:
                    return ObjectRef(head + tail, legacy)
        return None


def _hex_bounds(ranges: int) -> list[tuple[str | None, str | None]]:
    """Split the two-hex-digit directory space into ``ranges`` contiguous key ranges.

    Range I starts after key ``low`` (so ``StartAfter`` is the last name before it) and stops
    before ``high``; the last range also covers legacy names and anything past ``ff``.
    """
    cuts = [f"{round(256 * i / ranges):02x}" for i in range(1, ranges)]
    lows: list[str | None] = [None, *cuts]
    highs: list[str | None] = [*cuts, None]
    # StartAfter is exclusive: start after the largest name sorting before ``cut``.
    return [
        (_just_before(low) if low else None, high) for low, high in zip(lows, highs, strict=True)
    ]


def _just_before(name: str) -> str:
    """A key that sorts right before every key starting with ``name`` (``4f`` -> ``4e~``)."""
    return name[:-1] + chr(ord(name[-1]) - 1) + "~"


class _Capped(Exception):
    pass


class HttpRemote(Remote):
    """DagsHub-style DVC HTTP remote: it cannot list, so one HEAD per object.

    HEADs go through a plain aiohttp session of our own, on an event loop of our own: the
    same auth, headers and TLS settings as DVC's filesystem, but proxies are looked up once
    (not per request) and nothing queues behind another remote's work.
    """

    lists_cheaply = False

    def __init__(self, repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False) -> None:
        super().__init__(repo, spec, refused_read_is_cap=refused_read_is_cap)
        if self._proxy() is None:
            # DVC's HTTP client looks proxies up from the environment on a thread for every
            # request; with none configured that is pure overhead on each of N downloads.
            self.fs.fs_args.setdefault("client_kwargs", {})["trust_env"] = False

    def _session(self, jobs: int) -> Any:
        import aiohttp
        from dvc_http import make_context

        config = self.fs.fs_args.get("client_kwargs", {})
        return aiohttp.ClientSession(
            auth=config.get("auth"),
            headers=config.get("headers"),
            trust_env=False,
            connector=aiohttp.TCPConnector(limit=jobs, ssl=make_context(config.get("ssl_verify"))),
            timeout=aiohttp.ClientTimeout(
                total=REQUEST_TIMEOUT, sock_connect=config.get("connect_timeout") or CONNECT_TIMEOUT
            ),
        )

    def _proxy(self) -> str | None:
        from urllib.parse import urlsplit
        from urllib.request import getproxies, proxy_bypass

        parts = urlsplit(self.spec.url)
        proxy = getproxies().get(parts.scheme)
        if not proxy or proxy_bypass(parts.hostname or ""):
            return None
        return proxy

    async def _head(
        self, session: Any, obj: ObjectRef, proxy: str | None, throttle: Throttle | None = None
    ) -> tuple[bool, int | None]:
        """Whether the object is there (and its size); raises RemoteFailed on a remote failure."""
        url = self.path_of(obj)
        for attempt in range(1, HEAD_ATTEMPTS + 1):
            self.status.requests["HEAD"] += 1
            try:
                async with session.head(url, allow_redirects=True, proxy=proxy) as resp:
                    status, size = resp.status, resp.content_length
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except Exception as exc:  # noqa: BLE001
                failure = classify_exception(exc)
                failure = Failure(failure.state, failure.detail, transient=failure.state == "error")
            else:
                if throttle is not None:
                    throttle.heard(status, self.spec.name)
                if 200 <= status < 300:
                    return True, size
                found = classify_status(status, retry_after=retry_after)
                if found is None:
                    return False, None
                failure = found
            if not failure.transient or attempt == HEAD_ATTEMPTS:
                self.status.fail(failure)
                raise RemoteFailed(failure.detail)
            await asyncio.sleep(_backoff(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def probe(self) -> None:
        async def go() -> None:
            async with self._session(1) as session:
                await asyncio.wait_for(
                    self._head(session, ObjectRef(_PROBE_OID), self._proxy()), PROBE_TIMEOUT
                )

        if not self._connect_or_fail():
            return
        try:
            asyncio.run(go())
        except RemoteFailed:
            pass
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))

    def check(self, objects: Iterable[ObjectRef], jobs: int) -> None:
        present: dict[ObjectRef, int | None] = {}
        proxy = self._proxy()
        throttle = Throttle(jobs)

        async def go() -> None:
            async with self._session(jobs) as session:

                async def one(obj: ObjectRef) -> None:
                    there, size = await self._head(session, obj, proxy, throttle)
                    if there:
                        present[obj] = size

                await bounded_gather(objects, one, throttle)

        started = time.monotonic()
        try:
            asyncio.run(go())
        except RemoteFailed:
            return
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        self.status.present = present
        log.debug(
            "%s: %d HEAD found %d objects in %.2f s (at most %d at once, %d at the least)",
            self.spec.name,
            self.status.requests["HEAD"],
            len(present),
            time.monotonic() - started,
            throttle.jobs,
            throttle.lowest,
        )


class ListingRemote(Remote):
    """Local directories and any other filesystem DVC can list."""

    def probe(self) -> None:
        try:
            if not self.fs.isdir(self.odb.path) and not self.fs.isdir(self.legacy_odb.path):
                if not self.fs.exists(self.legacy_odb.path):
                    raise FileNotFoundError(f"{self.legacy_odb.path} does not exist")
                raise NotADirectoryError(f"{self.legacy_odb.path} is not a directory")
            self.fs.ls(self.legacy_odb.path)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))

    def check(self, objects: Iterable[ObjectRef], jobs: int) -> None:
        wanted = {obj: obj for obj in objects}
        present: dict[ObjectRef, int | None] = {}
        roots = [(self.odb, False)]
        if any(obj.legacy for obj in wanted):
            roots.append((self.legacy_odb, True))
        try:
            for odb, legacy in roots:
                if not self.fs.isdir(odb.path):
                    continue
                self.status.requests["LIST"] += 1
                for path in self.fs.find(odb.path):
                    rel = self.fs.relpath(path, odb.path).replace("\\", "/")
                    head, _, tail = rel.partition("/")
                    known = wanted.get(ObjectRef(head + tail, legacy))
                    if len(head) == 2 and known is not None:
                        present[known] = self._size(path)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        self.status.present = present

    def _size(self, path: str) -> int | None:
        # A stat is free on a local disk; elsewhere it would be one more request per object.
        if self.fs.protocol != "local":
            return None
        return int(self.fs.size(path) or 0)


def open_remote(
    repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False, jobs: int = 32
) -> Remote:
    """The right backend for a remote's kind, sized for ``jobs`` requests at once."""
    if spec.kind == "s3":
        return S3Remote(repo, spec, refused_read_is_cap=refused_read_is_cap, jobs=jobs)
    if spec.kind == "http":
        return HttpRemote(repo, spec)
    return ListingRemote(repo, spec)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        return None


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return min(0.2 * 2 ** (attempt - 1), 5.0) * (0.5 + random.random())  # noqa: S311 - jitter
