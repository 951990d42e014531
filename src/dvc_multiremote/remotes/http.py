"""DagsHub-style DVC HTTP remotes: no listing, so one HEAD per object."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dvc_multiremote.inventory import ObjectRef
from dvc_multiremote.remotes.base import (
    CONNECT_TIMEOUT,
    HEAD_ATTEMPTS,
    PROBE_OID,
    PROBE_TIMEOUT,
    REQUEST_TIMEOUT,
    Remote,
    RemoteFailed,
    backoff,
    retry_after_seconds,
)
from dvc_multiremote.remotes.classify import Failure, classify_exception, classify_status
from dvc_multiremote.remotes.concurrency import Throttle, bounded_gather

if TYPE_CHECKING:
    from dvc.repo import Repo

    from dvc_multiremote.remotes.spec import RemoteSpec

log = logging.getLogger(__name__)


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
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
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
            await asyncio.sleep(backoff(attempt, failure.retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def probe(self) -> None:
        async def go() -> None:
            async with self._session(1) as session:
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
