"""Turn what a remote answered (a status, an exception) into an honest error class."""

from __future__ import annotations

import asyncio
import errno
import ssl
from dataclasses import dataclass
from typing import Literal

State = Literal["ok", "missing", "auth", "cap-exceeded", "unreachable", "error"]

CAP_MARKER = "cap exceeded"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# 4xx answers that mean "not now" or "not this one" rather than "no such request, ever".
NOT_REFUSALS = frozenset({404, 408, 409, 413, 429})
# S3 codes that come with a 400 when the body was lost or mangled on the way: worth another try.
# S3 codes that are about one object (its size, its name), not about the remote's uploads.
OBJECT_400_CODES = frozenset({"EntityTooLarge", "KeyTooLongError", "InvalidObjectName"})
TRANSIENT_400_CODES = frozenset(
    {"RequestTimeout", "IncompleteBody", "BadDigest", "XAmzContentSHA256Mismatch"}
)


@dataclass(frozen=True)
class Failure:
    """Why a request failed: the state it puts its remote in, and whether to retry it."""

    state: State
    detail: str
    transient: bool = False
    retry_after: float | None = None
    # The server turned the request down as such (a 4xx that asking again will not change):
    # ``answer`` gives its words, "HTTP 400 InvalidArgument: Unsupported header ...".
    refused: bool = False
    answer: str = ""


def classify_status(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    retry_after: float | None = None,
) -> Failure | None:
    """Classify an HTTP status (with S3 error code and message when there is a body).

    Returns None for 404: the object is simply not there.
    """
    said = " ".join(part for part in (code, message) if part)
    text = f"HTTP {status}: {said}" if said else f"HTTP {status}"
    answer = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    # A redirect that reaches us was not (or could not be) followed: asking again is the same.
    refused = 300 <= status < 400 or (
        400 <= status < 500
        and status not in NOT_REFUSALS
        and code not in TRANSIENT_400_CODES
        and code not in OBJECT_400_CODES
    )
    if code == "NoSuchBucket":
        return Failure("error", f"the bucket does not exist ({text})", answer=answer)
    if status == 404:
        return None
    if status == 403 and message and CAP_MARKER in message.lower():
        return Failure("cap-exceeded", f"HTTP 403: {message}", refused=True, answer=answer)
    if status in (401, 403):
        return Failure("auth", f"credentials refused ({text})", refused=True, answer=answer)
    if status in TRANSIENT_STATUSES or code == "SlowDown":
        return Failure("error", text, transient=True, retry_after=retry_after, answer=answer)
    return Failure("error", f"unexpected {text}", refused=refused, answer=answer)


def classify_exception(exc: BaseException) -> Failure:  # noqa: PLR0911, PLR0912 - one per class
    """Classify an exception raised by DVC, fsspec, s3fs, botocore or aiohttp."""
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    chain = _chain(exc)
    for err in chain:
        if isinstance(err, ClientError):
            error = err.response.get("Error", {})
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            failure = classify_status(
                status or _status_from_code(str(error.get("Code", ""))),
                str(error.get("Code") or "") or None,
                str(error.get("Message") or "") or None,
            )
            return failure or Failure("missing", "not found (HTTP 404)")
        if isinstance(err, NoCredentialsError | PartialCredentialsError):
            return Failure("auth", f"no usable credentials: {err}")
        if isinstance(err, ssl.SSLError):
            return Failure("unreachable", f"TLS failed: {err}")
        if isinstance(err, BotoConnectionError):
            return Failure("unreachable", f"cannot connect: {_short(err)}")
    for err in chain:
        if loop := _redirect_loop(err):
            return loop
        http_status = _aiohttp_status(err)
        if http_status is not None:
            headers = getattr(err, "headers", None) or {}
            found = classify_status(
                http_status,
                message=str(getattr(err, "message", "") or "") or None,
                retry_after=_seconds(headers.get("Retry-After")),
            )
            return found or Failure("missing", "not found (HTTP 404)")
    for err in chain:
        if isinstance(err, asyncio.TimeoutError | TimeoutError):
            return Failure("unreachable", "no answer in time")
        if _is_aiohttp_connection_error(err):
            return Failure("unreachable", f"cannot connect: {_short(err)}")
        if isinstance(err, ConnectionError):
            return Failure("unreachable", f"connection failed: {_short(err)}")
        if isinstance(err, FileNotFoundError):
            return Failure("unreachable", f"not found: {_short(err)}")
        if isinstance(err, PermissionError):
            return Failure("auth", f"permission denied: {_short(err)}")
        if isinstance(err, NotADirectoryError):
            return Failure("unreachable", f"not a directory: {_short(err)}")
        if isinstance(err, OSError) and err.errno in (
            errno.ECONNREFUSED,
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
        ):
            return Failure("unreachable", f"cannot connect: {_short(err)}")
    return Failure("error", f"{type(exc).__name__}: {_short(exc)}")


def _status_from_code(code: str) -> int:
    return {"AccessDenied": 403, "NoSuchKey": 404, "NoSuchBucket": 404, "SlowDown": 503}.get(
        code, 0
    )


def _aiohttp_status(err: BaseException) -> int | None:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return None
    if isinstance(err, aiohttp.ClientResponseError):
        return int(err.status)
    return None


def _redirect_loop(err: BaseException) -> Failure | None:
    """aiohttp's TooManyRedirects (it carries no status): the remote sends requests round
    in redirects, often a sign-in page or an http/https pair sending back and forth."""
    try:
        from aiohttp import TooManyRedirects
    except ImportError:  # pragma: no cover - aiohttp always comes with dvc-http
        return None
    if not isinstance(err, TooManyRedirects) or not err.history:
        return None
    last = err.history[-1]
    where = last.url.with_user(None).with_query(None).with_fragment(None)
    answer = f"HTTP {last.status}: redirected {len(err.history)} times"
    detail = (
        f"{answer} without an answer, the last time from {where}: a redirect loop; "
        "check the remote's URL"
    )
    return Failure("error", detail, refused=True, answer=answer)


def _seconds(value: str | None) -> float | None:
    try:
        return min(float(value), 10.0) if value else None
    except ValueError:
        return None


def _is_aiohttp_connection_error(err: BaseException) -> bool:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp always comes with dvc-http
        return False
    return isinstance(err, aiohttp.ClientConnectionError | aiohttp.ServerTimeoutError)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
