"""The quick start's demo works with no network and no setup, and tells its story."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

from projects import cli_env

if TYPE_CHECKING:
    from pathlib import Path


def test_demo_tours_verify_sync_fallback_pull_and_push(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dvc_multiremote", "demo", "--keep", str(keep)],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "dagshub lacks 302 of 302 objects." in out
    assert "Copied 302 objects (5.6 MB): backblaze → dagshub 302." in out
    assert "All 302 objects are on every remote" in out
    assert "Pushed backblaze +51, dagshub +51." in out
    assert "All 353 objects are on every remote" in out
    assert "Pulled 302 objects" in out and "from dagshub (302)" in out
    assert "data/ checked out from dagshub: yes" in out
    assert done.stderr == ""
    assert (keep / "project" / "data" / "images.dvc").is_file()
    assert elapsed < 30, f"demo took {elapsed:.1f} s"
