"""The loopback test servers are faithful enough: the real DVC CLI and boto3 work against them."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from projects import dvc_env
from servers import DagsHubRemoteServer, Fault, FaultProxy, MotoS3, s3_client
from servers.dagshub import REPO_PATH
from servers.faults import B2_CAP_MESSAGE, classify
from servers.link import LinkRelay

if TYPE_CHECKING:
    from botocore.client import BaseClient

MakeProxy = Callable[[str], FaultProxy]
DATA_FILES = 20
OBJECTS = DATA_FILES + 2  # the data files, the directory's .dir manifest, and big.bin


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd`` with a time bound; fail with its output if ``check``."""
    env = dvc_env() if args[2:3] == ("dvc",) else None  # the real `dvc` on B2: as its users set it
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(cwd, sys.executable, "-m", "dvc", *args, check=check)


def git_commit(cwd: Path, message: str) -> None:
    run(cwd, "git", "add", "-A")
    run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repo with ``data/`` (20 small files) and ``big.bin`` tracked by DVC."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    repo.mkdir()
    run(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    data = repo / "data"
    data.mkdir()
    for i in range(DATA_FILES):
        (data / f"f{i:02}.txt").write_text(f"file {i}\n" * (i + 1))
    (repo / "big.bin").write_bytes(bytes(range(256)) * 1024)
    dvc(repo, "add", "-q", "data", "big.bin")
    git_commit(repo, "data")
    return repo


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the template repo, DVC cache included."""
    return Path(shutil.copytree(template_repo, tmp_path / "repo", symlinks=True))


def clone_without_cache(repo: Path, dest: Path) -> Path:
    run(repo.parent, "git", "clone", "-q", str(repo), str(dest))
    assert not (dest / "data").exists()
    return dest


def add_remote(repo: Path, name: str, url: str, local: dict[str, str] | None = None) -> None:
    """Write a remote to .dvc/config and its secrets to .dvc/config.local."""
    with (repo / ".dvc" / "config").open("a") as f:
        f.write(f"['remote \"{name}\"']\n    url = {url}\n")
    if local:
        lines = "".join(f"    {key} = {value}\n" for key, value in local.items())
        with (repo / ".dvc" / "config.local").open("a") as f:
            f.write(f"['remote \"{name}\"']\n{lines}")


def add_s3_remote(repo: Path, name: str, bucket: str, endpoint: str) -> None:
    add_remote(repo, name, f"s3://{bucket}")
    with (repo / ".dvc" / "config").open("a") as f:
        f.write(f"    endpointurl = {endpoint}\n")


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


# --- DagsHub-like HTTP remote -------------------------------------------------------------------


def test_dvc_push_and_pull_through_dagshub_server(
    dagshub: DagsHubRemoteServer, repo: Path, tmp_path: Path
) -> None:
    creds = {"auth": "basic", "user": "user", "password": "token"}
    add_remote(repo, "http", dagshub.url, creds)

    dvc(repo, "push", "-r", "http")

    stored = dagshub.object_paths()
    assert len(stored) == OBJECTS
    assert all(p.startswith("files/md5/") for p in stored)
    assert sum(p.endswith(".dir") for p in stored) == 1
    uploads = [r for r in dagshub.requests if r.method == "POST"]
    assert len(uploads) == OBJECTS
    assert all(r.status == 201 and r.authorized for r in uploads)
    assert all(r.headers.get("Transfer-Encoding") == "chunked" for r in uploads)
    assert dagshub.count("PUT") == 0

    dagshub.clear_log()
    clone = clone_without_cache(repo, tmp_path / "clone")
    add_remote(clone, "http", dagshub.url, creds)
    dvc(clone, "pull", "-r", "http")

    assert same_tree(repo / "data", clone / "data")
    assert (clone / "big.bin").read_bytes() == (repo / "big.bin").read_bytes()
    served = {r.path.removeprefix(REPO_PATH + "/") for r in dagshub.requests if r.status == 200}
    assert served == set(stored)
    # Existence checks are GETs; HEAD is only used on the .dir manifest before downloading it.
    assert all(r.path.endswith(".dir") for r in dagshub.requests if r.method == "HEAD")
    assert dagshub.bytes_served() >= sum((dagshub.root / p).stat().st_size for p in stored)
    assert all(r.authorized for r in dagshub.requests)


def test_wrong_password_is_refused_with_401(dagshub: DagsHubRemoteServer, repo: Path) -> None:
    add_remote(repo, "http", dagshub.url, {"auth": "basic", "user": "user", "password": "wrong"})

    proc = dvc(repo, "push", "-r", "http", check=False)

    assert proc.returncode != 0
    assert dagshub.object_paths() == []
    assert dagshub.requests
    assert all(r.status == 401 for r in dagshub.requests)
    assert all(r.had_credentials and not r.authorized for r in dagshub.requests)


def test_dvc_push_through_proxy_to_dagshub(
    dagshub: DagsHubRemoteServer, fault_proxy: MakeProxy, repo: Path
) -> None:
    proxy = fault_proxy(dagshub.base_url)
    creds = {"auth": "basic", "user": "user", "password": "token"}
    add_remote(repo, "http", proxy.base_url + REPO_PATH, creds)

    dvc(repo, "push", "-r", "http")

    assert len(dagshub.object_paths()) == OBJECTS
    posts = [r for r in proxy.requests if r.method == "POST"]
    assert len(posts) == OBJECTS
    assert all(r.headers.get("Transfer-Encoding") == "chunked" for r in posts)
    stored = [r for r in dagshub.requests if r.method == "POST"]
    assert sorted(r.bytes_in for r in stored) == sorted(r.bytes_in for r in posts)
    assert all("Content-Length" in r.headers for r in stored)  # the proxy de-chunks


def test_dagshub_server_answers_like_dagshub(dagshub: DagsHubRemoteServer) -> None:
    dagshub.write("files/md5/ab/cdef", b"payload")
    conn = http.client.HTTPConnection("127.0.0.1", dagshub.port, timeout=5)
    auth = {"Authorization": "Basic dXNlcjp0b2tlbg=="}  # user:token

    def ask(method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        conn.request(method, "/owner/repo.dvc/" + path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp

    unauthorized = ask("GET", "files/md5/ab/cdef", {})
    assert unauthorized.status == 401
    assert unauthorized.getheader("WWW-Authenticate") == 'Basic realm="DagsHub"'
    head = ask("HEAD", "files/md5/ab/cdef", auth)
    assert (head.status, head.getheader("Content-Length")) == (200, "7")
    assert ask("GET", "files/md5/ab/0000", auth).status == 404
    assert ask("GET", "../outside", auth).status == 404
    dagshub.delete("files/md5/ab/cdef")
    assert ask("HEAD", "files/md5/ab/cdef", auth).status == 404
    assert [r.status for r in dagshub.requests] == [401, 200, 404, 404, 404]
    conn.close()


# --- moto S3 behind the fault proxy (Backblaze B2) ----------------------------------------------


def test_dvc_push_and_pull_s3_through_proxy(
    moto: MotoS3, s3_bucket: str, fault_proxy: MakeProxy, repo: Path, tmp_path: Path
) -> None:
    proxy = fault_proxy(moto.endpoint_url)
    add_s3_remote(repo, "b2", s3_bucket, proxy.base_url)

    dvc(repo, "push", "-r", "b2")

    assert len(moto.list_keys(s3_bucket, "files/md5/")) == OBJECTS
    assert proxy.count("PUT") == OBJECTS

    proxy.clear_log()
    clone = clone_without_cache(repo, tmp_path / "clone")
    add_s3_remote(clone, "b2", s3_bucket, proxy.base_url)
    dvc(clone, "pull", "-r", "b2")

    assert same_tree(repo / "data", clone / "data")
    gets = {r.path.removeprefix(f"/{s3_bucket}/") for r in proxy.requests if r.kind == "GET"}
    assert gets == set(moto.list_keys(s3_bucket))  # the .dir manifest is fetched 3 times
    assert proxy.bytes_served() > 256 * 1024


def test_b2_cap_blocks_downloads_only(moto: MotoS3, s3_bucket: str, fault_proxy: MakeProxy) -> None:
    proxy = fault_proxy(moto.endpoint_url)
    s3 = s3_client(proxy.base_url)
    for key in ("a", "b"):
        moto.put_key(s3_bucket, key, b"data")
    proxy.set_fault(Fault("b2_cap", after=1))

    assert s3.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"data"
    with pytest.raises(ClientError) as get_error:
        s3.get_object(Bucket=s3_bucket, Key="a")
    with pytest.raises(ClientError) as head_error:
        s3.head_object(Bucket=s3_bucket, Key="a")
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="")
    s3.put_object(Bucket=s3_bucket, Key="c", Body=b"new")
    s3.delete_object(Bucket=s3_bucket, Key="b")

    error = get_error.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"] == {"Code": "AccessDenied", "Message": B2_CAP_MESSAGE}
    assert head_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert [o["Key"] for o in listed["Contents"]] == ["a", "b"]
    assert moto.list_keys(s3_bucket) == ["a", "c"]
    assert [r.kind for r in proxy.requests] == ["GET", "GET", "HEAD", "LIST", "PUT", "DELETE"]
    assert [r.fault for r in proxy.requests][1:3] == ["b2_cap", "b2_cap"]

    proxy.clear_faults()
    assert s3.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"data"


def test_b2_cap_by_bytes_counts_what_was_served(
    moto: MotoS3, s3_bucket: str, fault_proxy: MakeProxy
) -> None:
    proxy = fault_proxy(moto.endpoint_url)
    s3 = s3_client(proxy.base_url)
    moto.put_key(s3_bucket, "big", b"x" * 3000)
    moto.put_key(s3_bucket, "small", b"y" * 10)
    proxy.set_fault(Fault("b2_cap", after_bytes=3005))

    assert len(s3.get_object(Bucket=s3_bucket, Key="big")["Body"].read()) == 3000
    with pytest.raises(ClientError):
        s3.get_object(Bucket=s3_bucket, Key="absent")  # a 404 counts no bytes
    assert s3.get_object(Bucket=s3_bucket, Key="small")["Body"].read() == b"y" * 10
    with pytest.raises(ClientError) as capped:  # 3,010 bytes served: past the cap
        s3.get_object(Bucket=s3_bucket, Key="small")
    assert capped.value.response["Error"] == {"Code": "AccessDenied", "Message": B2_CAP_MESSAGE}
    assert proxy.bytes_served() == 3010

    # Concurrent downloads cannot all slip under the cap before any of them is counted: eight
    # GETs sent together and held 1 s each, all in flight at once; only the first let through
    # passes.
    proxy.set_fault(Fault("b2_cap", after_bytes=1))
    proxy.add_fault(Fault("delay", seconds=1.0, only=("GET",)))
    proxy.clear_log()
    clients = [s3_client(proxy.base_url) for _ in range(8)]
    together = threading.Barrier(len(clients))

    def get_big(client: BaseClient) -> bool:
        together.wait(timeout=30)
        try:
            return len(client.get_object(Bucket=s3_bucket, Key="big")["Body"].read()) == 3000
        except ClientError:
            return False

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        assert sum(pool.map(get_big, clients)) == 1
    assert proxy.max_in_flight >= 4
    assert proxy.bytes_served() == 3000
    with pytest.raises(ValueError, match="after_bytes"):
        Fault("delay", after_bytes=1)


def test_throttle_limits_each_connection_not_the_client(
    moto: MotoS3, s3_bucket: str, fault_proxy: MakeProxy
) -> None:
    """1 MB at 4 MB/s per connection: at least a quarter of a second, on one connection or on
    each of two at once."""
    proxy = fault_proxy(moto.endpoint_url)
    moto.put_key(s3_bucket, "one", b"z" * 1_000_000)
    proxy.set_fault(Fault("throttle", bytes_per_second=4e6, only=("GET",)))

    def timed_get(_: int) -> float:
        started = time.monotonic()
        body = s3_client(proxy.base_url).get_object(Bucket=s3_bucket, Key="one")["Body"].read()
        assert len(body) == 1_000_000
        return time.monotonic() - started

    # Lower bounds only: a loaded machine stretches any time, never shortens it.
    assert timed_get(0) > 0.2
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert min(pool.map(timed_get, range(2))) > 0.2  # each connection paced on its own
    proxy.clear_log()
    s3_client(proxy.base_url).put_object(Bucket=s3_bucket, Key="up", Body=b"u" * 1_000_000)
    assert proxy.requests[-1].bytes_in == 1_000_000  # only=("GET",): uploads go unthrottled
    with pytest.raises(ValueError, match="bytes_per_second"):
        Fault("throttle")


def test_link_relay_delays_each_request_and_limits_each_connection(
    moto: MotoS3, s3_bucket: str
) -> None:
    """The TCP relay the benchmarks put in front of servers they did not write: 0.1 s per
    request, 4 MB/s per connection, bytes and signatures untouched."""
    port = int(moto.endpoint_url.rsplit(":", 1)[1])
    moto.put_key(s3_bucket, "one", b"r" * 1_000_000)
    with LinkRelay(port, delay=0.1, rate=4e6) as link:
        s3 = s3_client(link.base_url)
        started = time.monotonic()
        s3.head_object(Bucket=s3_bucket, Key="one")
        assert 0.1 <= time.monotonic() - started < 1.0

        def timed_get(_: int) -> float:
            began = time.monotonic()
            body = s3_client(link.base_url).get_object(Bucket=s3_bucket, Key="one")["Body"]
            assert body.read() == b"r" * 1_000_000
            return time.monotonic() - began

        # Lower bounds only: a loaded machine stretches any time, never shortens it.
        assert timed_get(0) > 0.3  # 0.1 s delay + 0.25 s at 4 MB/s
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert min(pool.map(timed_get, range(2))) > 0.3  # each connection paced
        s3.put_object(Bucket=s3_bucket, Key="up", Body=b"u" * 200_000)
        assert link.connections >= 3 and link.bytes_down >= 3_000_000
    assert s3_client(moto.endpoint_url).get_object(Bucket=s3_bucket, Key="up")["Body"].read() == (
        b"u" * 200_000
    )


def test_slowdown_unauthorized_hang_and_dead_port(
    moto: MotoS3, s3_bucket: str, fault_proxy: MakeProxy, dead_url: str
) -> None:
    proxy = fault_proxy(moto.endpoint_url)
    s3 = s3_client(proxy.base_url, timeout=5)
    moto.put_key(s3_bucket, "k", b"v")

    proxy.set_fault(Fault("slowdown", retry_after=7))
    with pytest.raises(ClientError) as slow:
        s3.get_object(Bucket=s3_bucket, Key="k")
    meta = slow.value.response["ResponseMetadata"]
    assert (meta["HTTPStatusCode"], slow.value.response["Error"]["Code"]) == (503, "SlowDown")
    assert meta["HTTPHeaders"]["retry-after"] == "7"

    proxy.set_fault(Fault("slowdown", rate=0.5, seed=1))
    answers = [proxy.plan("GET", "GET").fault is not None for _ in range(200)]
    assert 60 < sum(answers) < 140

    proxy.set_fault(Fault("unauthorized"))
    with pytest.raises(ClientError) as denied:
        s3.list_objects_v2(Bucket=s3_bucket)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401

    proxy.set_fault(Fault("hang", seconds=0.3))
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", f"/{s3_bucket}/k")
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    assert proxy.requests[-1].status == 0

    host, port = dead_url.removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(host, int(port), timeout=5).request("GET", "/")


def test_classify_s3_requests() -> None:
    assert classify("GET", "/bucket?list-type=2&prefix=files/") == "LIST"
    assert classify("GET", "/bucket") == "LIST"
    assert classify("GET", "/bucket/files/md5/ab/cd") == "GET"
    assert classify("HEAD", "/bucket/files/md5/ab/cd") == "HEAD"
    assert classify("POST", "/bucket/key?uploads") == "POST"
    assert classify("PATCH", "/bucket/key") == "OTHER"


def test_link_relay_counts_requests_by_kind_with_status_and_body_bytes(
    moto: MotoS3, s3_bucket: str
) -> None:
    """The relay frames HTTP/1.1 as it passes (heads parsed, bodies skipped by length): each
    request with its S3 kind, its answer's status and the body bytes each way."""
    port = int(moto.endpoint_url.rsplit(":", 1)[1])
    moto.put_key(s3_bucket, "one", b"r" * 300_000)
    with LinkRelay(port, s3=True) as link:
        s3 = s3_client(link.base_url)
        s3.head_object(Bucket=s3_bucket, Key="one")
        assert s3.get_object(Bucket=s3_bucket, Key="one")["Body"].read() == b"r" * 300_000
        s3.put_object(Bucket=s3_bucket, Key="up", Body=b"u" * 200_000)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=s3_bucket, Key="absent")
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="")["Contents"]
        assert {item["Key"] for item in listed} == {"one", "up"}
        s3.get_object(Bucket=s3_bucket, Key="one", Range="bytes=0-9")["Body"].read()

        seen = link.requests()
        assert [(r.method, r.kind, r.path.split("?")[0], r.status) for r in seen] == [
            ("HEAD", "HEAD", f"/{s3_bucket}/one", 200),
            ("GET", "GET", f"/{s3_bucket}/one", 200),
            ("PUT", "PUT", f"/{s3_bucket}/up", 200),
            ("HEAD", "HEAD", f"/{s3_bucket}/absent", 404),
            ("GET", "LIST", f"/{s3_bucket}", 200),
            ("GET", "GET", f"/{s3_bucket}/one", 206),
        ]
        assert [(r.bytes_in, r.bytes_out) for r in seen if r.kind != "LIST"] == [
            (0, 0),  # a HEAD's answer has a Content-Length but no body
            (0, 300_000),
            (200_000, 0),
            (0, 0),
            (0, 10),
        ]
        listing = next(r for r in seen if r.kind == "LIST")
        assert listing.bytes_in == 0 and listing.bytes_out > 100  # the XML listing
        assert link.unparsed == 0
        link.clear_log()
        assert link.requests() == []
        s3.head_object(Bucket=s3_bucket, Key="up")
        assert [r.kind for r in link.requests()] == ["HEAD"]
