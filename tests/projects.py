"""A real git + DVC project for scenarios, and a way to run our CLI on it as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servers.dagshub import DagsHubRemoteServer
from servers.moto_s3 import MotoS3, s3_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from servers.faults import FaultProxy

GIT = [
    "git",
    "-c",
    "user.name=test",
    "-c",
    "user.email=test@example.com",
    "-c",
    "init.defaultBranch=main",
]


@dataclass
class Run:
    """One finished run of ``dvc-multiremote``."""

    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    markdown: str | None

    def remote(self, name: str) -> dict[str, Any]:
        assert self.report is not None, self.stderr
        return next(r for r in self.report["remotes"] if r["name"] == name)

    def missing_paths(self, remote: str) -> set[str]:
        assert self.report is not None, self.stderr
        return {m["path"] for m in self.report["missing"] if remote in m["missing_on"]}

    @property
    def everything(self) -> str:
        return "\n".join([self.stdout, self.stderr, json.dumps(self.report), self.markdown or ""])


class Project:
    """A git repository with DVC initialised, sample data and remotes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path) -> Project:
        from dvc.repo import Repo

        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
        Repo.init(str(root)).close()
        project = cls(root)
        project.commit("Initialise DVC")
        return project

    # --- data ------------------------------------------------------------------------------
    def write_dir(
        self, rel: str, files: int, *, seed: int = 1, size: tuple[int, int] = (100, 2000)
    ) -> None:
        rng = random.Random(seed)
        folder = self.root / rel
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(files):
            (folder / f"f{number:04d}.bin").write_bytes(rng.randbytes(rng.randint(*size)))

    def add_dir(self, rel: str, files: int, *, seed: int = 1) -> str:
        """A new directory of ``files`` files, ``dvc add``ed and committed; the commit."""
        self.write_dir(rel, files, seed=seed)
        self.dvc_add(rel)
        return self.commit(f"Add {rel}")

    def write_file(self, rel: str, size: int, *, seed: int = 2) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(seed).randbytes(size))

    def dvc_add(self, *rels: str) -> None:
        from dvc.repo import Repo

        with Repo(str(self.root)) as repo:
            repo.add([str(self.root / rel) for rel in rels])

    def commit(self, message: str) -> str:
        subprocess.run([*GIT, "add", "-A"], cwd=self.root, check=True)
        subprocess.run(
            [*GIT, "commit", "-q", "--allow-empty", "-m", message], cwd=self.root, check=True
        )
        return self.git("rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            [*GIT, *args], cwd=self.root, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    # --- remotes ---------------------------------------------------------------------------
    def add_remote(self, name: str, url: str, *, default: bool = False, **options: str) -> None:
        from dvc.config import Config

        config = Config(dvc_dir=str(self.root / ".dvc"))
        with config.edit("repo") as conf:
            conf["remote"][name] = {"url": url, **options}
            if default:
                conf["core"]["remote"] = name

    def objects(self, *dvc_files: str) -> dict[str, str]:
        """``relative object path`` (``files/md5/ab/cd...``) -> workspace path, for the outputs."""
        found: dict[str, str] = {}
        for dvc_file in dvc_files:
            text = (self.root / dvc_file).read_text()
            md5 = text.split("md5: ", 1)[1].split()[0]
            out_path = (
                str(Path(dvc_file).with_suffix("")) if dvc_file.endswith(".dvc") else dvc_file
            )
            found[_obj_path(md5)] = out_path
            if md5.endswith(".dir"):
                for entry in json.loads(self.cache_path(md5).read_text()):
                    found[_obj_path(entry["md5"])] = f"{out_path}/{entry['relpath']}"
        return found

    def cache_path(self, md5: str) -> Path:
        return self.root / ".dvc" / "cache" / _obj_path(md5)

    def seed_dir(self, remote_root: Path, *dvc_files: str) -> None:
        """Put the outputs' objects where a DVC remote at ``remote_root`` keeps them."""
        for rel in self.objects(*dvc_files):
            target = remote_root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / ".dvc" / "cache" / rel, target)

    def seed_s3(self, client: Any, bucket: str, prefix: str, *dvc_files: str) -> None:
        for rel in self.objects(*dvc_files):
            body = (self.root / ".dvc" / "cache" / rel).read_bytes()
            client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}".lstrip("/"), Body=body)

    # --- our CLI -----------------------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        """Run ``dvc-multiremote`` in a subprocess, as a user or a workflow would."""
        out_dir = self.root.parent / f"out-{os.getpid()}-{random.random():.6f}"
        out_dir.mkdir()
        json_path, md_path = out_dir / "report.json", out_dir / "report.md"
        command = [sys.executable, "-m", "dvc_multiremote", *args]
        if args and args[0] not in ("--help", "--version"):
            command += ["--json", str(json_path), "--markdown", str(md_path)]
        done = subprocess.run(
            command,
            cwd=self.root,
            env=cli_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        report = json.loads(json_path.read_text()) if json_path.exists() else None
        markdown = md_path.read_text() if md_path.exists() else None
        shutil.rmtree(out_dir)
        return Run(done.returncode, done.stdout, done.stderr, report, markdown)

    def files_containing(self, needles: list[str]) -> list[str]:
        """Files under the project whose bytes contain any of ``needles``."""
        hits = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(needle.encode() in data for needle in needles):
                    hits.append(str(path.relative_to(self.root)))
        return hits


def credentials_env(dagshub_host: str, b2_host: str) -> dict[str, str]:
    """The secrets a workflow's step would pass, bound to the test servers' hosts."""
    return {
        "DAGSHUB_TOKEN": TOKEN,
        "DAGSHUB_HOSTS": dagshub_host,
        "B2_APPLICATION_KEY_ID": B2_KEY_ID,
        "B2_APPLICATION_KEY": B2_KEY,
        "B2_HOSTS": b2_host,
    }


# What a DVC user on B2 must set (botocore's flexible checksums off, treeverse/dvc#10695): for
# runs of the real `dvc`. Our command sets it in its own client; it must never get these from
# the environment, or a test would not notice if it stopped doing so.
DVC_ON_B2_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run of our command: this process's, without secrets and without
    the checksum settings a user's environment does not have."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DAGSHUB_", "B2_", "DVC_REMOTE_")) and k not in DVC_ON_B2_ENV
    }
    env["DVC_NO_ANALYTICS"] = "1"
    env.update(extra or {})
    return env


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run of the real ``dvc`` against the test servers (B2's dialect)."""
    return {**cli_env(), **DVC_ON_B2_ENV, **(extra or {})}


def _obj_path(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


TOKEN = "dh-tok-8c1f29e7b5"
B2_KEY_ID = "b2-id-4d7a90c3"
B2_KEY = "b2-key-f3e8a1b26c"
PREFIX = "store"
FILES = 40


@dataclass
class World:
    """One project with a B2-like S3 remote (``backblaze``) and a DagsHub-like one (``dagshub``)."""

    project: Project
    s3: FaultProxy
    bucket: str
    moto: MotoS3
    dagshub: DagsHubRemoteServer

    @property
    def env(self) -> dict[str, str]:
        return credentials_env(self.dagshub.host, self.s3.host)

    def run(self, command: str, *args: str, env: dict[str, str] | None = None) -> Run:
        return self.project.run(command, *args, env={**self.env, **(env or {})})

    def verify(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return self.run("verify", *args, env=env)

    def clone(self, name: str = "clone") -> Project:
        """A fresh clone of the project: what a CI runner has, with an empty DVC cache."""
        target = self.project.root.parent / name
        subprocess.run([*GIT, "clone", "-q", str(self.project.root), str(target)], check=True)
        return Project(target)

    def clone_with_b2_dead(self, dead_url: str, name: str = "clone") -> Project:
        """A fresh clone whose ``backblaze`` points at ``dead_url``, where nothing listens."""
        clone = self.clone(name)
        clone.add_remote(
            "backblaze", f"s3://{self.bucket}/{PREFIX}", default=True, endpointurl=dead_url
        )
        return clone

    def run_in(
        self, project: Project, command: str, *args: str, env: dict[str, str] | None = None
    ) -> Run:
        return project.run(command, *args, env={**self.env, **(env or {})})

    def s3_keys(self) -> list[str]:
        client = s3_client(self.moto.endpoint_url)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=PREFIX)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def make_world(
    tmp_path: Path, moto: MotoS3, bucket: str, make_proxy: Callable[[str], FaultProxy]
) -> Iterator[World]:
    """A project whose data is complete on both remotes; the DagsHub server stops afterwards."""
    project = Project.create(tmp_path / "project")
    project.write_dir("data/images", FILES)
    project.write_file("data/model.bin", 300_000)
    project.dvc_add("data/images", "data/model.bin")
    proxy = make_proxy(moto.endpoint_url)
    server = DagsHubRemoteServer(tmp_path / "dagshub-store", user=TOKEN, password=TOKEN).start()
    project.add_remote(
        "backblaze", f"s3://{bucket}/{PREFIX}", default=True, endpointurl=proxy.base_url
    )
    project.add_remote("dagshub", server.url)
    project.commit("Add data")
    project.seed_s3(
        s3_client(moto.endpoint_url), bucket, PREFIX, "data/images.dvc", "data/model.bin.dvc"
    )
    project.seed_dir(server.root, "data/images.dvc", "data/model.bin.dvc")
    moto.refusals.clear()  # the server outlives a test: its log starts here
    try:
        yield World(project, proxy, bucket, moto, server)
    finally:
        server.stop()
