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
from pathlib import Path

from dvc_multiremote.report import Report
from dvc_multiremote.settings import Credentials, Settings

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


def run_demo(settings: Settings) -> Report:
    """Build the project, push to ``backblaze`` only, and show what ``dagshub`` lacks."""
    from dvc_multiremote.render import to_text
    from dvc_multiremote.verify import run_verify

    started = time.monotonic()
    workdir = settings.keep or Path(tempfile.mkdtemp(prefix="dvc-multiremote-demo-"))
    if settings.keep and settings.keep.exists() and any(settings.keep.iterdir()):
        from dvc_multiremote.errors import UsageError

        raise UsageError(f"--keep {settings.keep} is not empty; give a new or empty directory.")
    try:
        root = workdir / "project"
        _say(f"Building a DVC project in {root}")
        _say(
            f"  {IMAGES} small files in data/images, one {BIG_FILE_BYTES // 1_000_000} MB file data/model.bin"
        )
        _say("  remotes: backblaze (default) and dagshub, two local directories")
        _say("  pushed to backblaze only, as a forgotten `dvc push -r dagshub` would leave it")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            build_project(root)
        _say()
        _say("$ dvc-multiremote verify   # deep: every file of every directory, on every remote")
        verify_settings = Settings(
            command="verify",
            repo=root,
            jobs=settings.jobs,
            json_path=settings.json_path,
            markdown_path=settings.markdown_path,
            credentials=Credentials(),
        )
        report = run_verify(verify_settings)
        _say(_indent(to_text(report)))
        lacking = next((r for r in report.remotes if r.name == "dagshub"), None)
        if lacking is not None and lacking.objects_missing:
            _say(
                f"dagshub lacks {lacking.objects_missing:,} objects: every file of data/images, its .dir "
                "manifest, and data/model.bin."
            )
        _say(
            f"exit code {report.exit_code} (1 = data missing somewhere)  ·  {time.monotonic() - started:.1f} s"
        )
        if settings.keep:
            _say(f"The project stays in {root}; try `dvc-multiremote verify --repo {root}`.")
        report.command = "demo"
        return report
    finally:
        if not settings.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _indent(text: str) -> str:
    return "".join("  " + line if line.strip() else line for line in text.splitlines(keepends=True))
