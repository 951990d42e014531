"""Shared fixtures: loopback-only environment and real test servers (see ``tests/servers``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from projects import DVC_ON_B2_ENV, World, make_world
from servers import DagsHubRemoteServer, FaultProxy, MotoS3, dead_port_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    *DVC_ON_B2_ENV,  # our command must speak B2's dialect on its own, as for a user
)


@pytest.fixture(scope="session", autouse=True)
def loopback_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy AWS credentials, no proxies, no ~/.aws, and no DVC analytics or update checks."""
    home = tmp_path_factory.mktemp("env")
    dvc_global = home / "dvc-global"
    dvc_global.mkdir()
    (dvc_global / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    with pytest.MonkeyPatch.context() as mp:
        for name in (*_PROXY_VARS, *_AWS_VARS):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(home / "aws-config-absent"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials-absent"))
        mp.setenv("DVC_NO_ANALYTICS", "1")
        mp.setenv("DVC_GLOBAL_CONFIG_DIR", str(dvc_global))
        mp.setenv("DVC_SYSTEM_CONFIG_DIR", str(home / "dvc-system"))
        mp.setenv("DVC_SITE_CACHE_DIR", str(home / "dvc-site-cache"))
        yield


@pytest.fixture(scope="session")
def moto(loopback_env: None) -> Iterator[MotoS3]:
    """moto S3 on 127.0.0.1 speaking B2's dialect (see ``MotoS3``), started once for the
    session."""
    with MotoS3() as server:
        yield server


@pytest.fixture
def s3_bucket(moto: MotoS3) -> str:
    """A new, empty bucket on :func:`moto`."""
    return moto.create_bucket()


@pytest.fixture
def dagshub(tmp_path: Path) -> Iterator[DagsHubRemoteServer]:
    """A DagsHub-like DVC remote (user ``user``, password ``token``) storing under tmp_path."""
    with DagsHubRemoteServer(tmp_path / "dagshub") as server:
        yield server


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """Factory ``make_proxy(upstream_base_url) -> FaultProxy``; every proxy stops at teardown."""
    proxies: list[FaultProxy] = []

    def make_proxy(upstream: str) -> FaultProxy:
        proxy = FaultProxy(upstream).start()
        proxies.append(proxy)
        return proxy

    yield make_proxy
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def dead_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens."""
    return dead_port_url()


@pytest.fixture
def world(
    tmp_path: Path, moto: MotoS3, s3_bucket: str, fault_proxy: Callable[[str], FaultProxy]
) -> Iterator[World]:
    """Both remotes complete: every object of data/images (40 files) and data/model.bin."""
    yield from make_world(tmp_path, moto, s3_bucket, fault_proxy)
