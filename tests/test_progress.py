"""Long runs say where they stand: a plain line at most every 10 s in CI (no terminal), a live
bar in a terminal, nothing with ``-q``; always on stderr, so stdout stays the report."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from typing import TYPE_CHECKING

import pytest

from projects import TOKEN, Project, cli_env
from servers.dagshub import DagsHubRemoteServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FILES = 2000
LINE = re.compile(r"^pull: [\d,]+ of 2,000 objects")


@pytest.fixture
def slow_dagshub(tmp_path: Path) -> Iterator[tuple[Project, DagsHubRemoteServer]]:
    """2,000 small files on a DagsHub-like remote that answers each request after 250 ms."""
    project = Project.create(tmp_path / "project")
    project.write_dir("data/many", FILES, size=(10, 60))
    project.dvc_add("data/many")
    server = DagsHubRemoteServer(tmp_path / "store", user=TOKEN, password=TOKEN).start()
    project.add_remote("dagshub", server.url, default=True)
    project.commit("Many small files")
    project.seed_dir(server.root, "data/many.dvc")
    server.latency = 0.25
    try:
        yield project, server
    finally:
        server.stop()


def _env(server: DagsHubRemoteServer) -> dict[str, str]:
    return cli_env({"DAGSHUB_TOKEN": TOKEN, "DAGSHUB_HOSTS": server.host})


def _pull(clone: Path, server: DagsHubRemoteServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc_multiremote", "pull", *args],
        cwd=clone,
        env=_env(server),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _clone(project: Project, name: str) -> Path:
    target = project.root.parent / name
    subprocess.run(["git", "clone", "-q", str(project.root), str(target)], check=True)
    return target


def test_a_long_pull_in_ci_prints_where_it_stands_and_nothing_with_quiet(
    slow_dagshub: tuple[Project, DagsHubRemoteServer],
) -> None:
    project, server = slow_dagshub
    started = time.monotonic()
    done = _pull(_clone(project, "ci"), server)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if LINE.match(line)]
    assert lines, done.stderr  # at least one line before the end
    assert len(lines) <= seconds / 10 + 1  # at most one every 10 s
    assert "MB/s" in lines[0] or "KB/s" in lines[0] or "B/s" in lines[0]
    assert "left" in lines[0]
    assert not any(LINE.match(line) for line in done.stdout.splitlines())

    quiet = _pull(_clone(project, "quiet"), server, "-q")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stderr == "" and quiet.stdout == ""


def test_a_pull_in_a_terminal_shows_a_bar(
    slow_dagshub: tuple[Project, DagsHubRemoteServer],
) -> None:
    project, server = slow_dagshub
    server.latency = 0.02
    clone = _clone(project, "terminal")
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc_multiremote", "pull"],
        cwd=clone,
        env=_env(server),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=300) == 0, seen.decode(errors="replace")
    os.close(main)
    text = seen.decode(errors="replace")
    assert "pull:" in text and "objects" in text, text[-2000:]
    assert "\r" in text  # a live bar redraws its line
