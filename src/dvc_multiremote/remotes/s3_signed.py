"""S3 GETs, small PUTs and listings signed by botocore and sent on its session, without its
per-call machinery.

botocore spends about 2 ms of CPU on each call around the request itself (events, endpoint
rules, parameter building, response parsing): more than the request costs, so a pull or a push
of many small objects is bound by it. Once botocore has worked out a bucket's URL and signing
(on the probe's GET, watched here), a GET or a PUT of another key of that bucket is the same
request with another path: it is signed by botocore's SigV4 signer with the client's
credentials and sent on the client's own aiohttp session (its connection pool, TLS settings
and timeouts) as aiobotocore's ``send`` would send it, without converting the request and the
answer to botocore's objects; where a proxy is set, by that ``send`` itself. A PUT carries
what s3fs would send for a DVC object: the body, its length and signed SHA-256, and a guessed
Content-Type, so only when s3fs adds nothing else (no ACL, no encryption, no grants).

A listing page is read with Python's own XML parser (keys, sizes, continuation only). A 2xx
answer is used; a 4xx one (a missing key, a refused write, B2's cap) is raised as the
full call raises it, botocore's ClientError from botocore's parser, so that it is asked once.
Server errors, throttling, timeouts and any failure to send go to the client's full call, so
retries stay botocore's and s3fs's; a refusal of how we signed sends every later request there
too. Redirects are followed by aiohttp, as they are in the full call (the same session).
Whatever this module cannot vouch for (another signature version, S3 Express, an HTTP backend
that is not aiohttp, a URL that does not end in the key) turns it off for the client.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)
EVENT = "before-sign.s3.GetObject"
MAX_ERROR_DOCUMENT = 64 * 1024
# Refusals of the way a request was signed or framed, which botocore's own call may not get.
NOT_OURS_TO_JUDGE = frozenset(
    {
        "SignatureDoesNotMatch",
        "AuthorizationHeaderMalformed",
        "RequestTimeTooSkewed",
        "ExpiredToken",
        "XAmzContentSHA256Mismatch",
        "BadDigest",
        "IncompleteBody",
        "RequestTimeout",
    }
)
_WATCHER_ID = "dvc-multiremote-signed-requests"


@dataclass(frozen=True)
class Answer:
    """An open 200/206 answer: its ``Content-Range`` and its body, read once, then closed."""

    content_range: str | None
    response: Any  # aiohttp.ClientResponse

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        while chunk := await self.response.content.read(size):
            yield chunk

    def close(self) -> None:
        """Give the connection back to the pool when the body was read, else drop it."""
        if self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()


@dataclass(frozen=True)
class Reply:
    """An answer as sent: its status, its headers (case-insensitive) and the open
    aiohttp response, whose body is still to read."""

    status_code: int
    headers: Any  # a case-insensitive mapping
    raw: Any  # aiohttp.ClientResponse


@dataclass(frozen=True)
class Page:
    """One page of a listing: the keys with their sizes, and where the next page starts."""

    keys: list[tuple[str, int]]
    truncated: bool
    token: str | None


def read_page(document: bytes) -> Page | None:
    """A ListObjectsV2 answer's keys, sizes and continuation (Python's C XML parser, not
    botocore's model-driven one, ~10x the CPU per key); None when it is not a plain one."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(document)  # noqa: S314 - as botocore does: expat fetches no external entity, bounds expansion (>= 2.4.1)
    except ElementTree.ParseError:
        return None
    if _local(root.tag) != "ListBucketResult":
        return None
    keys: list[tuple[str, int]] = []
    truncated, token = False, None
    for child in root:
        name = _local(child.tag)
        if name == "Contents":
            fields = {_local(field.tag): field.text or "" for field in child}
            if "Key" not in fields or not fields.get("Size", "0").isdigit():
                return None
            keys.append((fields["Key"], int(fields.get("Size", "0"))))
        elif name == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken":
            token = child.text
        elif name == "EncodingType":
            return None  # keys encoded: not asked for, not ours to decode
    if truncated and not token:
        return None
    return Page(keys, truncated, token)


def _signed_host(url: str) -> str | None:
    """The Host botocore's SigV4 signer signs for ``url`` (its own function), if it has one."""
    try:
        from botocore.auth import _host_from_url
    except ImportError:  # pragma: no cover - a botocore without it: the signer works it out
        return None
    return str(_host_from_url(url))


def _proxied(http: Any, url: str) -> bool:
    """Whether aiobotocore would send requests for ``url`` through a proxy (or add a proxy's
    Host header, an experimental botocore switch): then they go through its ``send``."""
    from botocore.utils import ensure_boolean

    if ensure_boolean(os.environ.get("BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER", "")):
        return True
    try:
        return http._proxy_config.proxy_url_for(url) is not None
    except AttributeError:  # pragma: no cover - another aiobotocore: its send does it all
        return True


def _lowercase(headers: Any) -> dict[str, str]:
    """Headers as botocore's parser gets them from aiobotocore: lower-case names."""
    return {str(name).lower(): value for name, value in headers.items()}


def _local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rpartition("}")[2]


@dataclass
class SignedRequests:
    """GETs and PUTs of one bucket's keys, signed and sent as botocore did the watched GET."""

    client: Any
    bucket: str
    prefix: str  # the URL up to the key
    signing_name: str
    region: str
    user_agent: str | None
    # The Host header as botocore's signer works it out from the URL (the same for every
    # request here): given, the signer does not parse the URL again for each request.
    host: str | None = None
    # A proxy is set for the bucket's URL: requests go through aiobotocore's ``send``.
    proxied: bool = False
    # Off once a server took our request otherwise than botocore's (a signature it would not
    # check, say): every request of the run then goes through the full call.
    off: bool = False

    @staticmethod
    def watch(client: Any, bucket: str, key: str) -> Callable[[], SignedRequests | None]:
        """Watch the client sign a GET of ``key`` in ``bucket``; the returned function stops
        watching and gives what was learnt (None when this path cannot be vouched for)."""
        seen: list[tuple[Any, str, str, str]] = []

        def watcher(
            request: Any, signing_name: str, region_name: str, signature_version: str, **_: Any
        ) -> None:
            seen.append((request, signing_name, region_name, signature_version))

        client.meta.events.register(EVENT, watcher, unique_id=_WATCHER_ID)

        def learnt() -> SignedRequests | None:
            client.meta.events.unregister(EVENT, unique_id=_WATCHER_ID)
            if len(seen) != 1:
                return None
            return SignedRequests._from(client, bucket, key, *seen[0])

        return learnt

    @staticmethod
    def _from(
        client: Any,
        bucket: str,
        key: str,
        request: Any,
        signing_name: str,
        region: str,
        version: str,
    ) -> SignedRequests | None:
        from aiobotocore.httpsession import AIOHTTPSession

        signing = request.context.get("signing") or {}
        path = "/" + quote(key, safe="/~")
        why = None
        if version != "s3v4":
            why = f"signature version {version!r}"
        elif signing.get("request_credentials") or signing.get("identity_cache") is not None:
            why = "credentials per request (S3 Express)"
        elif not isinstance(getattr(client._endpoint, "http_session", None), AIOHTTPSession):
            why = "an HTTP backend other than aiohttp"
        elif getattr(client._request_signer, "_credentials", None) is None:
            why = "no credentials"
        elif not request.url.endswith(path) or "?" in request.url:
            why = f"a URL that does not end in the key ({request.url})"
        if why:
            log.debug("S3 GETs go through botocore's full call: %s", why)
            return None
        return SignedRequests(
            client=client,
            bucket=bucket,
            prefix=request.url[: -len(path) + 1],
            signing_name=signing.get("signing_name") or signing_name,
            region=signing.get("region") or region,
            user_agent=request.headers.get("User-Agent"),
            host=_signed_host(request.url),
            proxied=_proxied(client._endpoint.http_session, request.url),
        )

    async def get(self, key: str, byte_range: str | None = None) -> Answer | None:
        """GET ``key`` (``byte_range``: a ``Range`` value): the answer if 200/206; None for
        the full call to ask again; raises botocore's ClientError for a 4xx answer."""
        answer = await self._send("GET", key, {"Range": byte_range} if byte_range else {})
        if answer is None:
            return None
        if answer.status_code in (200, 206):
            return Answer(answer.headers.get("content-range"), answer.raw)
        await self._refuse(answer, "GetObject")
        return None

    async def list(self, prefix: str, start_after: str | None, token: str | None) -> Page | None:
        """One ListObjectsV2 page of the keys under ``prefix`` (after ``start_after``, or from
        a continuation ``token``): None for the full call to ask (an answer this module does
        not read as botocore would); raises botocore's ClientError for a 4xx answer."""
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        elif start_after:
            query["start-after"] = start_after
        answer = await self._send("GET", "", {}, query=query)
        if answer is None:
            return None
        if answer.status_code != HTTPStatus.OK:
            await self._refuse(answer, "ListObjectsV2")
            return None
        try:
            document = await answer.raw.read()
        finally:
            answer.raw.release()
        return read_page(document)

    async def put(self, key: str, body: bytes, content_type: str | None) -> bool:
        """PUT ``body`` at ``key``: True once stored; False for the full call to put it;
        raises botocore's ClientError for a 4xx answer."""
        headers = {"Content-Type": content_type} if content_type else {}
        answer = await self._send("PUT", key, headers, body)
        if answer is None:
            return False
        if 200 <= answer.status_code < 300:
            try:
                await answer.raw.read()  # a few bytes: the connection goes back to the pool
            finally:
                answer.raw.release()
            return True
        await self._refuse(answer, "PutObject")
        return False

    async def _refuse(self, answer: Reply, operation: str) -> None:
        """Raise a 4xx answer as the full call would (botocore's parser, its ClientError):
        asking again would only be refused again (a missing key, a key that may not write,
        B2's cap). Return for the full call to ask again where it may fare otherwise: a
        server error, a redirect aiohttp did not follow, a request timed out or throttled
        (botocore retries those), and a refusal of how we signed (then for the whole run)."""
        from botocore.exceptions import ClientError
        from botocore.parsers import create_parser

        status = answer.status_code
        try:
            if not HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
                return
            if status in (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS):
                return
            document = b""
            while len(document) < MAX_ERROR_DOCUMENT and (
                chunk := await answer.raw.content.read(MAX_ERROR_DOCUMENT - len(document))
            ):
                document += chunk
        finally:
            answer.raw.close()
        model = self.client.meta.service_model.operation_model(operation)
        parsed = create_parser("rest-xml").parse(
            {"status_code": status, "headers": _lowercase(answer.headers), "body": document},
            model.output_shape,
        )
        code = parsed.get("Error", {}).get("Code")
        if code in NOT_OURS_TO_JUDGE:
            log.info(
                "%s answered %s to a request signed the lean way: botocore's full call from now on",
                urlsplit(self.prefix).netloc,
                code,
            )
            self.off = True
            return
        raise ClientError(parsed, operation)

    async def _send(
        self,
        method: str,
        key: str,
        headers: dict[str, str],
        body: bytes = b"",
        query: dict[str, str] | None = None,
    ) -> Reply | None:
        """Sign and send one request (of the bucket itself when ``key`` is empty); its answer,
        or None if sending failed."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self.off:
            return None
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        if self.host:
            headers["Host"] = self.host
        url = self.prefix + quote(key, safe="/~")
        if not key and urlsplit(url).path not in ("", "/"):
            url = url[:-1]  # the bucket in the path: ``/bucket``, as botocore asks for it
        if query:
            # Already in SigV4's canonical form (sorted, RFC 3986): signed as it is sent.
            url += "?" + "&".join(
                f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
                for name, value in sorted(query.items())
            )
        request = AWSRequest(method=method, url=url, headers=headers, data=body)
        request.stream_output = True
        try:
            credentials = self.client._request_signer._credentials.get_frozen_credentials()
            if inspect.isawaitable(credentials):
                credentials = await credentials
            S3SigV4Auth(credentials, self.signing_name, self.region).add_auth(request)
            return await self._transmit(request)
        except Exception as exc:  # noqa: BLE001 - the full call will say what is wrong
            log.debug("signed %s of %s failed (%s): the full call instead", method, key, exc)
            return None

    async def _transmit(self, request: Any) -> Reply:
        """Send a signed request on the client's aiohttp session as aiobotocore's ``send``
        does (its headers, ``Accept-Encoding: identity``, no decompression, its timeouts),
        without turning the request and the answer into botocore's objects and back (~0.1 ms
        of CPU per request): when no proxy is set. Through a proxy, aiobotocore sends it."""
        from yarl import URL

        http = self.client._endpoint.http_session
        if self.proxied or not hasattr(http, "_get_session"):
            answer = await http.send(request.prepare())
            return Reply(answer.status_code, answer.headers, answer.raw)
        headers = {
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }
        headers["Accept-Encoding"] = "identity"  # botocore#1255, as aiobotocore sends it
        body = request.data or None
        if request.method not in ("GET", "HEAD"):
            headers["Content-Length"] = str(len(body or b""))  # as botocore's preparer adds
        session = await http._get_session(None)
        response = await session.request(
            request.method, URL(request.url, encoded=True), headers=headers, data=body
        )
        return Reply(response.status, response.headers, response)
