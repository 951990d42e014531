"""DagsHub-style DVC HTTP remotes: no listing, so one HEAD per object."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dvc_multiremote.inventory import ObjectRef
from dvc_multiremote.remotes.base import (
    CONNECT_TIMEOUT,
    HEAD_ATTEMPTS,
    PROBE_OID,
    PROBE_TIMEOUT,
    READ_INLINE_BYTES,
    REQUEST_TIMEOUT,
    Remote,
    RemoteFailed,
    backoff,
    retry_after_seconds,
)
from dvc_multiremote.remotes.classify import Failure, classify_exception, classify_status
from dvc_multiremote.remotes.concurrency import Throttle, bounded_gather
from dvc_multiremote.remotes.ranged import READ_CHUNK, check_range

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable
    from pathlib import Path

    from dvc.repo import Repo

    from dvc_multiremote.remotes.base import Heard
    from dvc_multiremote.remotes.spec import RemoteSpec

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# A server that will not answer HEAD (405 Method Not Allowed, 501 Not Implemented) is checked
# with a GET of one byte, as DVC itself checks with GET.
HEAD_REFUSED = frozenset({405, 501})
RANGE_CHECK = "bytes=0-0"


class _HeadRefused(Exception):
    pass


def own_origin_only(origin: Any, header_names: Iterable[str]) -> Any:
    """An aiohttp client middleware that strips credentials from any request (a redirect's
    next hop included) whose origin (scheme, host, port) is not the remote's own.

    aiohttp drops ``Authorization`` on a cross-origin redirect but then applies the session's
    basic auth again, and keeps a session's custom headers: a presigned-URL host would get the
    token (and refuse the request for carrying two kinds of auth).
    """
    names = ("Authorization", *header_names)

    async def middleware(request: Any, handler: Any) -> Any:
        if request.url.origin() != origin:
            for name in names:
                request.headers.popall(name, None)
        return await handler(request)

    return middleware


def _upload_turned_into(resp: Any) -> Exception:
    """The error for an upload that a redirect (301/302 to a POST, 303) made a GET: whatever
    the GET was answered, nothing was stored, and every other upload would go the same way."""
    from aiohttp import ClientResponseError

    first = resp.history[0] if resp.history else resp
    moved_to = resp.url.with_user(None).with_query(None).with_fragment(None)
    return ClientResponseError(
        first.request_info,
        resp.history,
        status=first.status,
        message=(
            f"the server redirected the upload to {moved_to}, and a {first.status} is followed "
            "with a GET (as browsers do), so nothing was stored; point the remote's URL at "
            "where the data now lives"
        ),
    )


class HttpRemote(Remote):
    """DagsHub-style DVC HTTP remote: it cannot list, so one HEAD per object (or a one-byte
    ranged GET, where the server refuses HEAD; decided once, by the probe).

    Checks go through a plain aiohttp session of our own, on an event loop of our own: the
    same auth, headers and TLS settings as DVC's filesystem, but proxies are looked up once
    (not per request) and nothing queues behind another remote's work. Every request, DVC's
    downloads included, sends the remote's credentials to the remote's own origin only.
    """

    lists_cheaply = False
    serves_ranges = True  # until a server answers a ranged GET with the whole object

    def __init__(self, repo: Repo, spec: RemoteSpec, *, refused_read_is_cap: bool = False) -> None:
        from yarl import URL

        super().__init__(repo, spec, refused_read_is_cap=refused_read_is_cap)
        self.check_method = "HEAD"
        client = self.fs.fs_args.setdefault("client_kwargs", {})
        if self._proxy() is None:
            # DVC's HTTP client looks proxies up from the environment on a thread for every
            # request; with none configured that is pure overhead on each of N downloads.
            client["trust_env"] = False
        home = URL(spec.url).origin()
        client["middlewares"] = (own_origin_only(home, (client.get("headers") or {}).keys()),)

    def upload_hint(self, failure: Failure) -> str:
        """DVC uploads with POST unless told otherwise; many servers take PUT only."""
        if not failure.answer.startswith(("HTTP 404", "HTTP 405", "HTTP 501")):
            return ""
        method = self.fs.fs_args.get("upload_method", "POST")
        if method != "POST":
            return f" (sent as {method})"
        return (
            " (sent as POST; a server that takes uploads with PUT needs "
            f"`dvc remote modify {shlex.quote(self.spec.name)} method PUT`)"
        )

    puts_direct = True

    async def put_direct(self, obj: ObjectRef, source: Path, size: int) -> bool:
        # DVC's own request (its session, options, method; never retried, as DVC's writes are
        # not), with the body's length said, not streamed in chunks: a small body whole, a
        # larger one from the open file (aiohttp reads it off the loop), so any size goes so.
        fs = self.fs.fs
        method = str(fs.upload_method).lower()
        if method not in ("post", "put"):
            return False  # DVC's own upload says what is wrong with the method
        session = await fs.set_session()
        path = self.path_of(obj)
        send = session.put if method == "put" else session.post
        self.status.requests["PUT"] += 1
        with source.open("rb") as file:
            body = file.read() if size <= READ_INLINE_BYTES else file
            async with send(fs.encode_url(path), data=body, **fs.kwargs) as resp:
                if resp.method != method.upper():
                    raise _upload_turned_into(resp)
                fs._raise_not_found_for_status(resp, path)
        return True

    async def read_range(
        self, obj: ObjectRef, start: int, end: int, size: int
    ) -> AsyncGenerator[bytes, None]:
        # DVC's own session (its auth, TLS, proxies, our credentials middleware) and options.
        fs = self.fs.fs
        session = await fs.set_session()
        options = dict(fs.kwargs)
        headers = {**(options.pop("headers", None) or {}), "Range": f"bytes={start}-{end}"}
        url = self.path_of(obj)
        self.status.requests["GET"] += 1
        async with session.get(fs.encode_url(url), headers=headers, **options) as resp:
            fs._raise_not_found_for_status(resp, url)
            check_range(resp.headers.get("Content-Range"), start, end, size)
            async for chunk in resp.content.iter_chunked(READ_CHUNK):
                yield chunk

    def _session(self, jobs: int) -> Any:
        import aiohttp
        from dvc_http import make_context

        config = self.fs.fs_args.get("client_kwargs", {})
        return aiohttp.ClientSession(
            auth=config.get("auth"),
            headers=config.get("headers"),
            middlewares=config.get("middlewares", ()),
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

    async def _ask(self, session: Any, url: str, proxy: str | None) -> tuple[int, int | None, Any]:
        """One check request: its status, the object's size if known, its headers."""
        options = {"allow_redirects": True, "max_redirects": MAX_REDIRECTS, "proxy": proxy}
        if self.check_method == "HEAD":
            self.status.requests["HEAD"] += 1
            async with session.head(url, **options) as resp:
                return resp.status, resp.content_length, resp.headers
        self.status.requests["GET"] += 1
        async with session.get(url, headers={"Range": RANGE_CHECK}, **options) as resp:
            # One byte when the server honours Range; when it does not, a few bytes and the
            # connection is dropped rather than the whole object read.
            await resp.content.read(16)
            if resp.status != 206:
                resp.close()
            return resp.status, _range_total(resp.headers.get("Content-Range")), resp.headers

    async def _head(
        self, session: Any, obj: ObjectRef, proxy: str | None, throttle: Throttle | None = None
    ) -> tuple[bool, int | None]:
        """Whether the object is there (and its size); raises RemoteFailed on a remote failure
        and _HeadRefused when HEAD is refused."""
        url = self.path_of(obj)
        for attempt in range(1, HEAD_ATTEMPTS + 1):
            try:
                status, size, headers = await self._ask(session, url, proxy)
                retry_after = retry_after_seconds(headers.get("Retry-After"))
            except Exception as exc:  # noqa: BLE001
                failure = classify_exception(exc)
                # A failure to send may pass; an answer that goes round in redirects will not.
                transient = failure.state == "error" and not failure.refused
                failure = replace(failure, transient=transient)
            else:
                if throttle is not None:
                    throttle.heard(status, self.spec.name)
                if self.check_method == "HEAD" and status in HEAD_REFUSED:
                    raise _HeadRefused(f"HTTP {status}")
                if 200 <= status < 300 or (status == 416 and self.check_method == "GET"):
                    return True, size
                found = classify_status(status, retry_after=retry_after)
                if found is None:
                    return False, None
                failure = found
            if not failure.transient or attempt == HEAD_ATTEMPTS:
                self.status.fail(failure)
                raise RemoteFailed(failure.detail)
            await asyncio.sleep(backoff(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def probe(self) -> None:
        async def go() -> None:
            async with self._session(1) as session:
                try:
                    await asyncio.wait_for(
                        self._head(session, ObjectRef(PROBE_OID), self._proxy()), PROBE_TIMEOUT
                    )
                except _HeadRefused as exc:
                    log.debug(
                        "%s refused HEAD (%s): checking with ranged GETs", self.spec.name, exc
                    )
                    self.check_method = "GET"
                    await asyncio.wait_for(
                        self._head(session, ObjectRef(PROBE_OID), self._proxy()), PROBE_TIMEOUT
                    )

        if not self._connect_or_fail():
            return
        try:
            asyncio.run(go())
        except RemoteFailed:
            pass
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
        self.status.checked_with = "HEAD" if self.check_method == "HEAD" else f"GET {RANGE_CHECK}"

    def check(self, objects: Iterable[ObjectRef], jobs: int, heard: Heard | None = None) -> None:
        from dvc_multiremote.progress import Progress

        objects = list(objects)
        present: dict[ObjectRef, int | None] = {}
        proxy = self._proxy()
        throttle = Throttle(jobs)
        progress = Progress(
            f"{self.spec.name} ({self.check_method})",
            len(objects),
            None,
            enabled=self.show_progress,
        )

        async def go() -> None:
            async with self._session(jobs) as session:

                async def one(obj: ObjectRef) -> None:
                    there, size = await self._head(session, obj, proxy, throttle)
                    progress.advance()
                    if there:
                        present[obj] = size
                    if heard is not None:
                        heard(obj, there)

                await bounded_gather(objects, one, throttle)

        started = time.monotonic()
        try:
            asyncio.run(go())
        except _HeadRefused as exc:
            # HEAD answered the probe and is refused now: no guess, a failure that says so.
            self.status.fail(Failure("error", f"{self.spec.name} stopped answering HEAD ({exc})"))
            return
        except RemoteFailed:
            return
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        finally:
            progress.close()
        self.status.present = present
        log.debug(
            "%s: %d %s found %d objects in %.2f s (at most %d at once, %d at the least)",
            self.spec.name,
            self.status.requests[self.check_method],
            self.check_method,
            len(present),
            time.monotonic() - started,
            throttle.jobs,
            throttle.lowest,
        )


def _range_total(content_range: str | None) -> int | None:
    """The object's size from ``Content-Range: bytes 0-0/12345`` (or ``bytes */0``)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
