"""S3 and B2's S3 API: a listing of the objects prefix, in a few key ranges at once."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvc_multiremote.inventory import ObjectRef
from dvc_multiremote.remotes.base import (
    PROBE_OID,
    PROBE_TIMEOUT,
    Remote,
    read_body,
)
from dvc_multiremote.remotes.classify import Failure, classify_exception
from dvc_multiremote.remotes.ranged import READ_CHUNK, check_range
from dvc_multiremote.remotes.s3_signed import Page, SignedRequests
from dvc_multiremote.remotes.timestamps import use_fast_timestamps

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable
    from pathlib import Path

    from dvc.repo import Repo

    from dvc_multiremote.remotes.base import Heard
    from dvc_multiremote.remotes.s3_signed import Answer
    from dvc_multiremote.remotes.spec import RemoteSpec

log = logging.getLogger(__name__)
SIGNED_PUT_MAX = 8 * 2**20  # larger uploads: s3fs's (multipart from 100 MiB); bodies in memory


class S3Remote(Remote):
    """S3 (and B2's S3 API): a listing of the objects prefix, in a few ranges at once."""

    # Key ranges listed concurrently. Each wastes at most one partial page, so a listing of N
    # objects costs at most N/1000 + LIST_RANGES calls (LIST is billed on B2).
    LIST_RANGES = 3
    serves_ranges = True

    def __init__(
        self, repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False, jobs: int = 32
    ) -> None:
        super().__init__(repo, spec, refused_read_is_cap=refused_read_is_cap)
        self.jobs = jobs
        self.signed: SignedRequests | None = None  # learnt by the probe
        self.signed_methods: frozenset[str] = frozenset()  # those s3fs adds nothing to
        self._configure_client()

    def _bucket_key(self, path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    async def _call(self, method: str, kind: str, **kwargs: Any) -> Any:
        self.status.requests[kind] += 1
        return await self.fs.fs._call_s3(method, **kwargs)

    async def _get(self, obj: ObjectRef, byte_range: str | None = None) -> Answer | _Answered:
        """One GET of an object (``byte_range``: a ``Range`` value): signed and sent lean
        (``s3_signed``) when that answers 200/206, else through s3fs and botocore's full
        call, whose errors, redirects and retries are the ones the run classifies."""
        bucket, key = self._bucket_key(self.path_of(obj))
        if signed := self._lean("GET", bucket):
            self.status.requests["GET"] += 1
            if answer := await signed.get(key, byte_range):
                return answer
        extra = {"Range": byte_range} if byte_range else {}
        response = await self._call("get_object", "GET", Bucket=bucket, Key=key, **extra)
        return _Answered(response.get("ContentRange"), response["Body"])

    async def _list_page(
        self, bucket: str, prefix: str, start_after: str | None, token: str | None
    ) -> Page:
        """One page of the keys under ``prefix``: signed and sent lean, else botocore's call."""
        if signed := self._lean("LIST", bucket):
            self.status.requests["LIST"] += 1
            if page := await signed.list(prefix, start_after, token):
                return page
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        elif start_after:
            kwargs["StartAfter"] = start_after
        answer = await self._call("list_objects_v2", "LIST", **kwargs)
        return Page(
            [(item["Key"], int(item.get("Size", 0))) for item in answer.get("Contents", [])],
            bool(answer.get("IsTruncated")),
            answer.get("NextContinuationToken"),
        )

    puts_direct = True

    async def put_direct(self, obj: ObjectRef, source: Path, size: int) -> bool:
        # Larger files go through s3fs (multipart from 100 MiB). No deadline of our own: the
        # session's read timeout catches a stalled upload; a slow one that moves runs on.
        bucket, key = self._bucket_key(self.path_of(obj))
        signed = self._lean("PUT", bucket)
        if signed is None or size > SIGNED_PUT_MAX:
            return False
        body = await read_body(source, size)
        content_type, _ = mimetypes.guess_type(str(source))  # as s3fs guesses it
        self.status.requests["PUT"] += 1
        return await signed.put(key, body, content_type)

    def _lean(self, method: str, bucket: str) -> SignedRequests | None:
        """The way to sign and send this request ourselves (``s3_signed``), if it has one."""
        signed = self.signed
        if signed is None or signed.off or method not in self.signed_methods:
            return None
        return signed if bucket == signed.bucket else None

    async def get_file(self, obj: ObjectRef, path: Path) -> None:
        answer = await self._get(obj)
        try:
            with open(path, "wb") as file:
                async for chunk in answer.chunks(READ_CHUNK):
                    file.write(chunk)
        finally:
            answer.close()

    async def read_range(
        self, obj: ObjectRef, start: int, end: int, size: int
    ) -> AsyncGenerator[bytes, None]:
        answer = await self._get(obj, f"bytes={start}-{end}")
        try:
            # rclone's S3 answers ranges with 200 and the right Content-Range; S3 and B2, 206.
            check_range(answer.content_range, start, end, size)
            async for chunk in answer.chunks(READ_CHUNK):
                yield chunk
        finally:
            answer.close()

    def _configure_client(self) -> None:
        """The botocore settings of the one client s3fs makes on first use (in the probe) and
        every request of the run goes through: downloads, listings, uploads by DVC's odb."""
        config = self.fs.fs_args.setdefault("config_kwargs", {})
        # botocore keeps at most 10 connections per client: `jobs` requests beyond 10 would
        # queue, capping a pull at 10 GETs per round trip.
        config["max_pool_connections"] = max(self.jobs, config.get("max_pool_connections") or 10)
        # The dialect every S3-compatible store takes. botocore >= 1.36 adds CRC32 checksum
        # headers (or aws-chunked bodies with trailers, over HTTPS) to every upload and asks
        # for checksums on every download; B2, Wasabi, R2 and older MinIO answer 400. We need
        # none of it: every object is checked against its md5 (transfer.md5_matches), and
        # DVC's addresses are those md5s.
        config.update(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Our parameters are fixed; validating them is CPU spent per request for nothing.
        config.setdefault("parameter_validation", False)

    def _plain_methods(self, client: Any, bucket: str) -> frozenset[str]:
        """The methods to which s3fs adds nothing but bucket and key (no customer encryption
        key, no requester-pays, no ACL or grants, no versions), so that a signed request of
        our own (``s3_signed``) is the same request."""
        fs = self.fs.fs
        if getattr(fs, "version_aware", False):
            return frozenset()
        plain = set()
        calls = (
            ("GET", client.get_object),
            ("PUT", client.put_object),
            ("LIST", client.list_objects_v2),
        )
        for method, call in calls:
            try:
                kwargs = fs._get_s3_method_kwargs(call, Bucket=bucket, Key="k")
            except Exception as exc:  # noqa: BLE001 - another s3fs: take the full call
                log.debug("s3fs's %s arguments unknown (%s): botocore's full call", method, exc)
                continue
            if not {name for name, value in kwargs.items() if value is not None} - {
                "Bucket",
                "Key",
            }:
                plain.add(method)
        return frozenset(plain)

    def probe(self) -> None:
        bucket, key = self._bucket_key(self.odb.path)
        probe_key = self._bucket_key(self.odb.oid_to_path(PROBE_OID))[1]

        async def go() -> None:
            from botocore.exceptions import ClientError

            # The client itself, not s3fs's wrapper: a probe must not sit in five rounds of
            # retries. One GET of an absent key says reachable, credentials and reads all at once.
            client = await self.fs.fs.get_s3(bucket)
            if client.meta.config.request_checksum_calculation != "when_required":
                # Made before our settings (DVC changed when it builds its filesystem?): its
                # uploads would carry headers B2 refuses. Say so rather than push through it.
                raise RuntimeError("the S3 client was made without our checksum settings")
            # Every later request (listings, downloads) goes through this client's session.
            use_fast_timestamps(self.fs.fs.session)
            build_user_agent_once(client)
            self.status.requests["GET"] += 1
            learnt = SignedRequests.watch(client, bucket, probe_key)
            try:
                response = await client.get_object(Bucket=bucket, Key=probe_key)
                response["Body"].close()
            except ClientError as exc:
                failure = classify_exception(exc)
                if failure.state != "missing":
                    if failure.state != "auth" or not self.refused_read_is_cap:
                        raise
                    # A bare 403 from B2: capped if listing still works, refused if it does not.
                    self.status.requests["LIST"] += 1
                    await client.list_objects_v2(Bucket=bucket, Prefix=key + "/", MaxKeys=1)
                    raise _Capped(failure.detail) from exc
            finally:
                self.signed = learnt()
            self.signed_methods = self._plain_methods(client, bucket)

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

    def check(self, objects: Iterable[ObjectRef], jobs: int, heard: Heard | None = None) -> None:
        # Keys are our own instances: a million listing entries must not each keep a copy.
        wanted = {obj: obj for obj in objects}
        legacy = any(obj.legacy for obj in wanted)
        root = self.legacy_odb.path if legacy else self.odb.path
        bucket, prefix = self._bucket_key(root)
        prefix = prefix.rstrip("/") + "/"
        present: dict[ObjectRef, int | None] = {}
        stored = [0]  # every byte under the prefix, ours or not: what a free tier counts
        bounds = _hex_bounds(self.LIST_RANGES)

        async def list_range(low: str | None, high: str | None) -> None:
            token: str | None = None
            while True:
                page = await self._list_page(bucket, prefix, prefix + low if low else None, token)
                for name, size in page.keys:
                    if high and name >= prefix + high:
                        return
                    stored[0] += size
                    obj = self._object_of(bucket + "/" + name)
                    known = wanted.get(obj) if obj is not None else None
                    if known is not None:
                        present[known] = size
                if not page.truncated:
                    return
                token = page.token

        async def go() -> None:
            await asyncio.gather(*(list_range(low, high) for low, high in bounds))

        started = time.monotonic()
        try:
            self.run_async(go, None)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        self.status.present = present
        self.status.bytes_stored = stored[0]
        self.tell(heard, wanted, present)
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


@dataclass(frozen=True)
class _Answered:
    """botocore's own GetObject answer, read as a ``s3_signed.Answer`` is."""

    content_range: str | None
    body: Any  # aiobotocore's StreamingBody

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        while chunk := await self.body.read(size):
            yield chunk

    def close(self) -> None:
        self.body.close()


def build_user_agent_once(client: Any) -> None:
    """botocore builds its User-Agent header twice for every request, from the same parts,
    and that is about a tenth of the CPU a small GET costs here: build it once per client.
    (The string lists botocore's features; no store reads it for anything else.)"""
    creator = getattr(client, "_user_agent_creator", None)
    if creator is None or not hasattr(creator, "rebuild_and_replace_user_agent_handler"):
        return  # another botocore: leave it be
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.unregister(
        f"request-created.{service}", creator.rebuild_and_replace_user_agent_handler
    )
    text = creator.to_string()
    creator.to_string = lambda: text


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
