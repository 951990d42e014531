"""moto's S3 server on a free loopback port, with a few boto3 helpers."""

from __future__ import annotations

import logging
import threading
import uuid
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from flask import Flask
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from .common import HOST

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


def s3_client(endpoint_url: str, max_attempts: int = 1, timeout: float = 10.0) -> BaseClient:
    """A boto3 S3 client for ``endpoint_url`` with dummy credentials and no retries by default."""
    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        s3={"addressing_style": "path"},
        proxies={},
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


class MotoS3:
    """moto's S3 server (threaded, as ``ThreadedMotoServer``) on 127.0.0.1 at a free port;
    moto's state lives in this process."""

    def __init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._client: BaseClient | None = None

    def start(self) -> Self:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
        app = S3Only(create_backend_app)
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
