"""moto's S3 server on a free loopback port, speaking Backblaze B2's dialect; boto3 helpers."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

from .common import CHUNK_SIZE, HOST, RequestLog, Served

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from flask import Flask

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"

# B2's answer to a header it does not take, byte for byte (the header named is the first it met).
B2_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    "<Error>\n"
    "    <Code>{code}</Code>\n"
    "    <Message>{message}</Message>\n"
    "</Error>"
)
B2_UNSUPPORTED_HEADER = "Unsupported header '{header}' received for this API call."
# botocore's flexible checksums (on by default since 1.36): B2 refuses every one of them.
B2_REFUSED_HEADERS = ("x-amz-sdk-checksum-algorithm", "x-amz-trailer", "x-amz-checksum-mode")
B2_REFUSED_HEADER_PREFIX = "x-amz-checksum-"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def s3_client(
    endpoint_url: str,
    max_attempts: int = 1,
    timeout: float = 10.0,
    *,
    botocore_checksums: bool = False,
) -> BaseClient:
    """A boto3 S3 client for ``endpoint_url`` with dummy credentials and no retries by default.

    It speaks B2's dialect (checksums only where an operation requires one), as every S3 client
    must that talks to B2; ``botocore_checksums`` keeps botocore's defaults, which B2 refuses.
    """
    checksums = (
        {}
        if botocore_checksums
        else {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    )
    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        s3={"addressing_style": "path"},
        proxies={},
        **checksums,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=REGION, config=config, **CREDENTIALS
    )


class S3Only(DomainDispatcherApplication):
    """moto's server app, answering every request with moto's S3 app.

    moto's own dispatcher picks a service per request: under one lock it lists moto's package
    directory (200 stat calls) and tries 200 URL patterns, ~2 ms of CPU per request (a GET
    took 4.9 ms of server CPU with it, 2.9 ms without), so every client waits on that lock.
    B2 has no such cost."""

    def get_application(self, environ: dict[str, Any]) -> Flask:
        with self.lock:
            app = self.app_instances.get("s3")
            if app is None:
                app = self.app_instances["s3"] = self.create_app("s3")
            return app


@dataclass(frozen=True)
class Refusal:
    """A request the server refused instead of handing it to moto."""

    method: str
    path: str  # with the query string
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class S3Error:
    """An S3 error answer: status, ``<Code>`` and ``<Message>``."""

    status: int
    code: str
    message: str


class B2Front:
    """WSGI middleware in front of moto's app: B2's dialect and, on demand, a refusal of uploads.

    B2 answers 400 InvalidArgument to botocore's flexible-checksum headers
    (``x-amz-sdk-checksum-algorithm``, any ``x-amz-checksum-*``, ``x-amz-trailer``) and to
    ``Content-Encoding: aws-chunked``. Only object requests (``/bucket/key``) are checked:
    botocore puts a CRC32 on DeleteObjects (``POST /bucket?delete``) whatever it is told, and
    what B2 does with that is not the point here. Every refusal is logged on the owner.
    """

    def __init__(self, app: WSGIApp, owner: MotoS3) -> None:
        self.app = app
        self.owner = owner

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", ""))
        _bucket, _, key = str(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
        answer: S3Error | None = None
        if key and self.owner.b2_dialect:
            header = _unsupported_header(environ)
            if header is not None:
                message = B2_UNSUPPORTED_HEADER.format(header=header)
                answer = S3Error(400, "InvalidArgument", message)
        if answer is None and key and method in ("PUT", "POST"):
            answer = self.owner.uploads_refused
        if answer is None:
            return self.app(environ, start_response)
        # Read the body first: a client still sending it would see a reset, not our answer.
        stream = get_input_stream(environ)
        while stream.read(CHUNK_SIZE):
            pass
        query = environ.get("QUERY_STRING")
        path = str(environ.get("PATH_INFO", "")) + (f"?{query}" if query else "")
        self.owner.refusals.add(Refusal(method, path, answer.status, answer.code, answer.message))
        body = B2_ERROR_BODY.format(code=answer.code, message=answer.message).encode()
        start_response(
            f"{answer.status} {HTTPStatus(answer.status).phrase}",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _unsupported_header(environ: dict[str, Any]) -> str | None:
    """The first header of the request that B2 refuses, lower-cased, or None."""
    names = sorted(
        name[len("HTTP_") :].lower().replace("_", "-")
        for name in environ
        if name.startswith("HTTP_")
    )
    for name in B2_REFUSED_HEADERS:
        if name in names:
            return name
    for name in names:
        if name.startswith(B2_REFUSED_HEADER_PREFIX):
            return name
    if "aws-chunked" in str(environ.get("HTTP_CONTENT_ENCODING", "")).lower():
        return "content-encoding"
    return None


class MotoS3(Served):
    """moto's S3 server (threaded, as ``ThreadedMotoServer``) on 127.0.0.1 at a free port;
    moto's state lives in this process.

    It speaks B2's dialect unless ``b2_dialect`` is False (an attribute, switchable at any
    time): a client that sends botocore's default checksum headers gets B2's 400, and the
    refusal goes to :attr:`refusals`, so a test can assert that nothing was refused.
    """

    def __init__(self, *, b2_dialect: bool = True) -> None:
        self.b2_dialect = b2_dialect
        self.uploads_refused: S3Error | None = None
        self.refusals: RequestLog[Refusal] = RequestLog()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._client: BaseClient | None = None

    @contextlib.contextmanager
    def refusing_uploads(
        self, status: int = 403, code: str = "AccessDenied", message: str = "Access Denied"
    ) -> Iterator[None]:
        """Within the block, every write of an object (PutObject, multipart) gets this error;
        reads, listings and deletions still work (a key that may read but not write)."""
        self.uploads_refused = S3Error(status, code, message)
        try:
            yield
        finally:
            self.uploads_refused = None

    def start(self) -> Self:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
        app = B2Front(S3Only(create_backend_app), self)
        server = make_server(HOST, 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._server, self._port = server, server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = self._thread = self._port = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoS3 is not started")
        return self._port

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``, for boto3's ``endpoint_url`` and DVC's ``endpointurl``."""
        return f"http://{self.host}"

    base_url = endpoint_url

    @property
    def client(self) -> BaseClient:
        """A boto3 client bound to this server (made once, shared)."""
        if self._client is None:
            self._client = s3_client(self.endpoint_url)
        return self._client

    def create_bucket(self, prefix: str = "test") -> str:
        """Create a bucket with a fresh unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """All keys under ``prefix``, sorted."""
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def put_key(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def get_key(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def delete_key(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)
