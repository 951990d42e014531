"""``demo``: a self-contained tour on a temporary project with two local-directory remotes."""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.errors import MultiremoteError
from dvc_multiremote.settings import Credentials, Settings

if TYPE_CHECKING:
    from dvc_multiremote.report import Report

IMAGES = 300
BIG_FILE_BYTES = 5_000_000


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _add_new_data(root: Path) -> None:
    from dvc.repo import Repo

    labels = root / "data" / "labels"
    labels.mkdir(parents=True)
    rng = random.Random(11)  # noqa: S311 - sample data
    for number in range(50):
        (labels / f"label{number:03d}.json").write_text(
            f'{{"id": {number}, "class": {rng.randint(0, 9)}}}\n'
        )
    with Repo(str(root)) as repo:
        repo.add([str(labels)])
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Labels")


def build_project(root: Path) -> Path:
    """A git + DVC project with sample data, remotes ``backblaze`` and ``dagshub``."""
    from dvc.repo import Repo

    root.mkdir(parents=True, exist_ok=True)
    _git(root, "init", "-q")
    repo = Repo.init(str(root))
    rng = random.Random(7)  # noqa: S311 - sample data, not security
    images = root / "data" / "images"
    images.mkdir(parents=True)
    for number in range(IMAGES):
        (images / f"img{number:04d}.bin").write_bytes(rng.randbytes(rng.randint(200, 4000)))
    (root / "data" / "model.bin").write_bytes(rng.randbytes(BIG_FILE_BYTES))
    with repo.config.edit() as config:
        config["core"]["remote"] = "backblaze"
        config["remote"]["backblaze"] = {"url": str(root.parent / "remotes" / "backblaze")}
        config["remote"]["dagshub"] = {"url": str(root.parent / "remotes" / "dagshub")}
    for remote in ("backblaze", "dagshub"):
        (root.parent / "remotes" / remote).mkdir(parents=True, exist_ok=True)
    repo.add([str(images), str(root / "data" / "model.bin")])
    repo.push(remote="backblaze")
    repo.close()
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Sample data")
    return root


class _Tour:
    """Runs our commands on the demo project and prints them as a person would type them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, command: str, repo: Path, comment: str, **options: object) -> Report:
        from dvc_multiremote.commands import run_command
        from dvc_multiremote.render import to_text
        from dvc_multiremote.verdict import judge

        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items())
        _say(f"$ dvc-multiremote {command} {flags}".rstrip() + f"   # {comment}")
        report = run_command(
            Settings(
                command=command,
                repo=repo,
                jobs=self.settings.jobs,
                credentials=Credentials(),
                **options,
            )
        )
        verdict = judge(report)
        _say(_indent(to_text(report, verdict)))
        _say(f"  → exit code {int(verdict.code)}")
        _say()
        return report


def run_demo(settings: Settings) -> Report:
    """A tour: verify finds gaps, sync fills them, pull survives ``backblaze`` down, push fills both."""
    started = time.monotonic()
    workdir = settings.keep or Path(tempfile.mkdtemp(prefix="dvc-multiremote-demo-"))
    if settings.keep and settings.keep.exists() and any(settings.keep.iterdir()):
        from dvc_multiremote.errors import UsageError

        raise UsageError(f"--keep {settings.keep} is not empty; give a new or empty directory.")
    tour = _Tour(settings)
    try:
        root = workdir / "project"
        _say(f"Building a DVC project in {root}")
        _say(
            f"  {IMAGES} small files in data/images, a {BIG_FILE_BYTES // 1_000_000} MB data/model.bin"
        )
        _say("  remotes: backblaze (default) and dagshub, two local directories")
        _say("  pushed to backblaze only, as a forgotten `dvc push -r dagshub` would leave it")
        _say()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            build_project(root)

        _say("Act 1 — what is where")
        first = tour.run("verify", root, "deep: every file of every directory, on every remote")
        _say("Act 2 — fill the gaps, remote to remote")
        tour.run("sync", root, "copies exactly what each remote lacks")
        tour.run("verify", root, "now complete")

        _say("Act 3 — backblaze goes down (a dead endpoint, a spent download cap)")
        clone = workdir / "ci-runner"
        _git(workdir, "clone", "-q", str(root), str(clone))
        dead = clone / "backblaze-is-down"
        dead.write_text("not a directory\n")
        (clone / ".dvc" / "config.local").write_text(
            f"['remote \"backblaze\"']\n    url = {dead / 'store'}\n"
        )
        _say(f"  a fresh clone in {clone}, empty cache, backblaze pointing at a dead location")
        pulled = tour.run("pull", clone, "each object from the first remote that can give it")
        complete = (clone / "data" / "images").is_dir() and (clone / "data" / "model.bin").is_file()
        _say(f"  data/ checked out from dagshub: {'yes' if complete else 'NO'}")
        _say()
        _say("Act 4 — new data, pushed to every remote at once")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _add_new_data(root)
        tour.run("push", root, "both remotes get the new files; manifests after their files")
        tour.run("verify", root, "complete again")
        missing_before = next((r.objects_missing for r in first.remotes if r.name == "dagshub"), 0)
        _say(
            f"Tour done in {time.monotonic() - started:.1f} s: dagshub lacked {missing_before or 0:,} "
            "objects, sync copied them, pull fell back past backblaze, push filled both remotes."
        )
        if settings.keep:
            _say(f"The project stays in {root}; try `dvc-multiremote verify --repo {root}`.")
        if not complete:
            raise MultiremoteError(
                "The demo's pull did not check data/ out from dagshub.",
                fix="Re-run with `--keep DIR` and look at DIR/ci-runner.",
            )
        # The tour's result is its fallback pull's: judged as a pull, which may fall back.
        return replace(pulled, command="demo")
    finally:
        if not settings.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _indent(text: str) -> str:
    return "".join("  " + line if line.strip() else line for line in text.splitlines(keepends=True))
