"""Shared by the benchmarks: a loopback-only environment, the test servers each in a process of
their own, and a git + DVC project with one directory of N small files."""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from servers import DagsHubRemoteServer, FaultProxy, MotoS3, s3_client  # noqa: E402

TOKEN = "bench-token-5e1f0c"
PREFIX = "store"
DATA = "data/images"
SEED_JOBS = 10  # boto3 keeps 10 connections per client
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
_DROPPED_PREFIXES = ("DAGSHUB_", "B2_", "DVC_REMOTE_", "AWS_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def loopback_env(home: Path) -> None:
    """Make this process (and every child) talk to 127.0.0.1 only, with dummy credentials."""
    for name in list(os.environ):
        if name in _PROXY_VARS or name.startswith(_DROPPED_PREFIXES):
            del os.environ[name]
    dvc_global = home / "dvc-global"
    dvc_global.mkdir(parents=True, exist_ok=True)
    (dvc_global / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    os.environ.update(
        {
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "aws-config-absent"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials-absent"),
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(dvc_global),
            "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        }
    )


# --- servers, each side in its own process -------------------------------------------------
# In one process the servers would share one GIL: moto's CPU-heavy LISTs would then stall the
# HTTP server, serialising exactly the two remotes a multi-remote tool checks at the same time.


class S3Side:
    """moto S3 with a request-counting FaultProxy in front (clients use the proxy)."""

    def __init__(self) -> None:
        self.moto = MotoS3().start()
        self.proxy = FaultProxy(self.moto.endpoint_url).start()

    def moto_url(self) -> str:
        return self.moto.endpoint_url

    def proxy_url(self) -> str:
        return self.proxy.base_url

    def proxy_host(self) -> str:
        return self.proxy.host

    def create_bucket(self) -> str:
        return self.moto.create_bucket("bench")

    def counts(self) -> dict[str, int]:
        return {kind: self.proxy.count(kind) for kind in ("LIST", "HEAD", "GET")}

    def clear_log(self) -> None:
        self.proxy.clear_log()

    def cpu(self) -> float:
        """CPU seconds this process (moto and proxy) has used so far."""
        return time.process_time()


class HttpSide:
    """A DagsHub-like DVC remote (basic auth ``TOKEN:TOKEN``) storing under ``root``."""

    def __init__(self, root: str) -> None:
        self.server = DagsHubRemoteServer(Path(root), user=TOKEN, password=TOKEN).start()

    def url(self) -> str:
        return self.server.url

    def host(self) -> str:
        return self.server.host

    def counts(self) -> dict[str, int]:
        return {method: self.server.count(method) for method in ("HEAD", "GET")}

    def clear_log(self) -> None:
        self.server.clear_log()

    def cpu(self) -> float:
        """CPU seconds this process (the HTTP server) has used so far."""
        return time.process_time()


class _Host(BaseManager):
    """A process hosting one side; calls on its proxies run there."""


_Host.register("S3Side", S3Side)
_Host.register("HttpSide", HttpSide)


def _host(stack: ExitStack) -> Any:
    return stack.enter_context(_Host())


# --- the project ------------------------------------------------------------------------------


@dataclass
class World:
    """A project whose ``data/images`` (N files) is meant for remotes ``s3`` and ``http``."""

    root: Path
    s3: S3Side
    bucket: str
    http: HttpSide
    http_root: Path

    @property
    def config_local(self) -> Path:
        return self.root / ".dvc" / "config.local"

    @property
    def cache(self) -> Path:
        return self.root / ".dvc" / "cache"

    def our_env(self) -> dict[str, str]:
        """Credentials as our CLI takes them: from the environment, bound to hosts."""
        return {
            **os.environ,
            "DAGSHUB_TOKEN": TOKEN,
            "DAGSHUB_HOSTS": self.http.host(),
            "B2_APPLICATION_KEY_ID": "testing",
            "B2_APPLICATION_KEY": "testing",
            "B2_HOSTS": self.s3.proxy_host(),
        }

    def dvc_credentials(self, present: bool) -> None:
        """Write (or remove) the HTTP remote's basic auth in ``config.local`` for the DVC CLI."""
        if present:
            self.config_local.write_text(
                f"['remote \"http\"']\n    auth = basic\n    user = {TOKEN}\n"
                f"    password = {TOKEN}\n"
            )
        else:
            self.config_local.unlink(missing_ok=True)

    def clear_logs(self) -> None:
        self.s3.clear_log()
        self.http.clear_log()

    def server_cpu(self) -> float:
        return self.s3.cpu() + self.http.cpu()

    def requests(self) -> dict[str, dict[str, int]]:
        return {"s3": self.s3.counts(), "http": self.http.counts()}

    def objects(self) -> dict[str, str]:
        """``files/md5/ab/cd...`` -> workspace path, for ``data/images`` and its manifest."""
        md5 = (self.root / f"{DATA}.dvc").read_text().split("md5: ", 1)[1].split()[0]
        found = {_obj_path(md5): DATA}
        for entry in json.loads((self.cache / _obj_path(md5)).read_text()):
            found[_obj_path(entry["md5"])] = f"{DATA}/{entry['relpath']}"
        return found

    def seed(self, s3_objects: Iterable[str], http_objects: Iterable[str]) -> None:
        """Upload objects from the local cache straight to each store, many at once."""
        client = s3_client(self.s3.moto_url(), max_attempts=3)

        def put(rel: str) -> None:
            client.upload_file(str(self.cache / rel), self.bucket, f"{PREFIX}/{rel}")

        def copy(rel: str) -> None:
            target = self.http_root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.cache / rel, target)

        with ThreadPoolExecutor(SEED_JOBS) as pool:
            list(pool.map(put, s3_objects))
            list(pool.map(copy, http_objects))


def build_world(work: Path, files: int, stack: ExitStack) -> World:
    """Start the servers and create the project; the remotes are configured but still empty."""
    from dvc.repo import Repo

    s3 = cast(S3Side, _host(stack).S3Side())
    http_root = work / "http-store"
    http = cast(HttpSide, _host(stack).HttpSide(str(http_root)))
    root = work / "project"
    _write_files(root / DATA, files, seed=files)
    git = [*GIT, "-C", str(root)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    bucket = s3.create_bucket()
    logging.getLogger("dvc").setLevel(logging.WARNING)  # no "Initialized DVC repository..."
    with Repo.init(root) as repo:
        repo.add([str(root / DATA)])
        with repo.config.edit("repo") as conf:
            conf["core"]["remote"] = "s3"
            conf["remote"]["s3"] = {
                "url": f"s3://{bucket}/{PREFIX}",
                "endpointurl": s3.proxy_url(),
            }
            conf["remote"]["http"] = {"url": http.url()}
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add data"], check=True)
    return World(root, s3, bucket, http, http_root)


def _write_files(folder: Path, files: int, *, seed: int) -> None:
    """``files`` files of 100-2,000 random (but seeded) bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for number in range(files):
        (folder / f"f{number:05d}.bin").write_bytes(rng.randbytes(rng.randint(100, 2000)))


def _obj_path(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


# --- running and reporting --------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float  # wall time
    cpu: float  # user + system time of the command and its children
    code: int
    stdout: str
    stderr: str


def timed(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Timed:
    """Run a command to completion and measure its wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Timed(seconds, cpu, done.returncode, done.stdout, done.stderr)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def our_cli() -> list[str]:
    """Our console script next to this interpreter (no pyenv shim), else ``python -m``."""
    script = Path(sys.executable).with_name("dvc-multiremote")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dvc_multiremote"]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
