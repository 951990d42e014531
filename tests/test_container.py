"""Scenario 9: build the Action's Dockerfile with podman and run scenario 1 inside the container,
the way the runner does (``docker run`` with ``INPUT_*`` variables, the workspace and the file
commands mounted, ``--workdir /github/workspace``).

No registry is reachable here, so the base image is made locally with debootstrap and passed as
``BASE``, and pip installs the hashed lock from wheels downloaded on the host (container-notes).
The first run takes about 5 minutes; the base image, the wheels and podman's store are cached
under ``$DVC_MULTIREMOTE_CONTAINER_CACHE`` (default ``~/.cache/dvc-multiremote-container``).

``DVC_MULTIREMOTE_CONTAINER_TEST`` unset: it runs where podman, runc and debootstrap are installed
(as root), else it is skipped with a line saying what is missing. ``1``: it must run, and fails
naming what is missing (``.ci/run`` installs the tools and sets it). ``0``: skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

from test_action import (  # noqa: F401 - `world` is a fixture
    GH_TOKEN,
    LABELS,
    MARKER,
    ROOT,
    PrWorld,
    action_spec,
    input_defaults,
    input_env,
    parse_commands,
    parse_outputs,
    world,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

SWITCH = "DVC_MULTIREMOTE_CONTAINER_TEST"
CACHE = Path(
    os.environ.get("DVC_MULTIREMOTE_CONTAINER_CACHE")
    or Path.home() / ".cache" / "dvc-multiremote-container"
)
SUITE = "bookworm"
# As python:3.12-slim has: Python and CA certificates, no git (the Action needs none).
PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
BASE_KEY = hashlib.sha256(f"{SUITE} {PACKAGES}".encode()).hexdigest()[:8]
BASE_IMAGE = f"localhost/pybase:{SUITE}-{BASE_KEY}"
IMAGE = "localhost/dvc-multiremote:test"
OWNER = 1001  # the runner's user on GitHub-hosted runners
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""

TOOLS = ("podman", "runc", "debootstrap")
INSTALL = "apt-get install podman buildah runc debootstrap"


class Decision(NamedTuple):
    """Whether the container test runs on this machine; when it does not, why, and if that fails."""

    run: bool
    reason: str = ""
    fails: bool = False


def lacking() -> list[str]:
    """What this machine lacks for the container test: the tools on PATH, and root."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return missing if os.geteuid() == 0 else [*missing, "root"]


def decide(switch: str | None, missing: Sequence[str]) -> Decision:
    """Unset: run if nothing is missing, else skip. ``1``: run, or fail naming what is missing."""
    if switch == "0":
        return Decision(run=False, reason=f"{SWITCH}=0")
    if switch not in (None, "", "1"):
        return Decision(False, f"{SWITCH} must be 0, 1 or unset, not {switch!r}", fails=True)
    if not missing:
        return Decision(run=True)
    tools = [tool for tool in missing if tool != "root"]
    lacks = "; ".join(
        ([f"{', '.join(tools)} not on PATH"] if tools else [])
        + (["not running as root"] if "root" in missing else [])
    )
    if switch == "1":
        return Decision(
            False,
            f"{SWITCH}=1 but {lacks}: `{INSTALL}` as root (.ci/run does), or set {SWITCH}=0",
            fails=True,
        )
    return Decision(False, f"{lacks}; `{INSTALL}` as root to run it (.ci/run does)")


def _run(*command: str, timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        list(command), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert done.returncode == 0, f"{' '.join(command[:4])}… failed:\n{done.stdout}\n{done.stderr}"
    return done


def podman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """podman with a store of its own (vfs), runc and low ulimits (container-notes.md)."""
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    store = ["--root", str(CACHE / "storage"), "--runroot", str(CACHE / "runroot")]
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    return _run("podman", *store, "--storage-driver", "vfs", *args, timeout=timeout, env=env)


def _has_image(name: str) -> bool:
    conf = CACHE / "containers.conf"
    store = ["--root", str(CACHE / "storage"), "--runroot", str(CACHE / "runroot")]
    done = subprocess.run(
        ["podman", *store, "--storage-driver", "vfs", "image", "exists", name],
        env={**os.environ, "CONTAINERS_CONF": str(conf)},
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _debian_mirror() -> str:
    if os.environ.get("DVC_MULTIREMOTE_DEBIAN_MIRROR"):
        return os.environ["DVC_MULTIREMOTE_DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    return "http://deb.debian.org/debian"


def _base_image() -> None:
    """``BASE_IMAGE``: Debian with python3, pip and venv, from debootstrap."""
    if _has_image(BASE_IMAGE):
        return
    context = CACHE / f"base-{BASE_KEY}"
    tarball = context / "rootfs.tar.gz"
    if not tarball.exists():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        _run(
            "debootstrap",
            "--variant=minbase",
            f"--include={PACKAGES}",
            SUITE,
            str(rootfs),
            _debian_mirror(),
            timeout=900,
        )
        context.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        _run("tar", "-C", str(rootfs), "-czf", str(partial), ".")
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    (context / "Containerfile").write_text('FROM scratch\nADD rootfs.tar.gz /\nCMD ["/bin/bash"]\n')
    podman("build", "--network", "none", "-t", BASE_IMAGE, str(context))


def _wheels() -> Path:
    """The lock's wheels for CPython 3.11 on Linux (Debian's python3), plus sdist build tools."""
    lock = ROOT / "requirements" / "action.txt"
    wheels = CACHE / f"wheels-{hashlib.sha256(lock.read_bytes()).hexdigest()[:12]}"
    if (wheels / "pip.conf").exists():
        return wheels
    partial = wheels.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 37)] + [
        "manylinux2014_x86_64",
        "linux_x86_64",
        "any",
    ]
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(partial)]
    _run(
        *pip,
        "--require-hashes",
        "--no-deps",
        "-r",
        str(lock),
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        *[arg for platform in platforms for arg in ("--platform", platform)],
    )
    _run(*pip, "--no-deps", "setuptools", "wheel")  # to build the lock's sdists offline
    (partial / "pip.conf").write_text("[global]\nno-index = true\nfind-links = /wheels\n")
    partial.rename(wheels)
    return wheels


@pytest.fixture(scope="module")
def image() -> str:
    """The Action's image, built from the Dockerfile as GitHub builds it (BASE swapped)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    _base_image()
    wheels = _wheels()
    podman(
        "build",
        "--network",
        "none",
        "--pull=never",
        "--build-arg",
        f"BASE={BASE_IMAGE}",
        "-v",
        f"{wheels}:/wheels:ro",
        "-v",
        f"{wheels / 'pip.conf'}:/etc/pip.conf:ro",
        "-t",
        IMAGE,
        "-f",
        str(ROOT / "Dockerfile"),
        str(ROOT),
        timeout=1200,
    )
    return IMAGE


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_scenario_1_inside_the_container(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    here = decide(os.environ.get(SWITCH), lacking())
    if here.fails:
        pytest.fail(here.reason, pytrace=False)
    if not here.run:
        pytest.skip(here.reason)
    # Asked for only now, so that deciding starts no server and builds nothing.
    image: str = request.getfixturevalue("image")
    world: PrWorld = request.getfixturevalue("world")  # noqa: F811 - the imported fixture
    workspace = world.project.root
    for path in [workspace, *workspace.rglob("*")]:
        os.lchown(path, OWNER, OWNER)  # a checkout made by the runner's user
    file_commands, workflow, home = (tmp_path / n for n in ("file_commands", "workflow", "home"))
    for folder in (file_commands, workflow, home):
        folder.mkdir()
    (file_commands / "set_output").write_text("")
    (file_commands / "step_summary").write_text("")
    (workflow / "event.json").write_text(json.dumps(world.event()))
    variables = {
        **input_env({**input_defaults(GH_TOKEN), "command": "verify"}),
        **world.env,
        "HOME": "/github/home",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_API_URL": world.github.base_url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "octo/data",
        "GITHUB_RUN_ID": "4242",
    }
    env_args = [arg for name, value in variables.items() for arg in ("-e", f"{name}={value}")]
    done = subprocess.run(
        [
            "podman",
            "--root",
            str(CACHE / "storage"),
            "--runroot",
            str(CACHE / "runroot"),
            "--storage-driver",
            "vfs",
            "run",
            "--rm",
            "--network",
            "host",  # the test's servers listen on the host's 127.0.0.1
            *env_args,
            "-v",
            f"{workspace}:/github/workspace",
            "-v",
            f"{file_commands}:/github/file_commands",
            "-v",
            f"{workflow}:/github/workflow",
            "-v",
            f"{home}:/github/home",
            "--workdir",
            "/github/workspace",
            image,
        ],
        env={**os.environ, "CONTAINERS_CONF": str(CACHE / "containers.conf")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert "Traceback" not in log
    outputs = parse_outputs((file_commands / "set_output").read_text())
    assert set(outputs) == set(action_spec()["outputs"])
    assert (outputs["ok"], outputs["exit-code"]) == ("false", "1")
    assert outputs["missing-count"] == str(LABELS + 1)
    errors = [
        c for c in parse_commands(done.stdout) if c.name == "error" and "file" in c.properties
    ]
    assert [(e.properties["file"], e.properties["title"]) for e in errors] == [
        ("data/labels.dvc", "Missing on dagshub")
    ]
    assert errors[0].properties["line"] == str(world.md5_line("data/labels.dvc"))
    assert "❌ data missing" in (file_commands / "step_summary").read_text()
    assert len(world.our_comments()) == 1 and MARKER in world.our_comments()[0].body
    # Later steps run as the runner's user: nothing the container wrote may stay root's.
    report = workspace / outputs["report"]
    assert report.is_file() and report.stat().st_uid == OWNER
    assert [p for p in workspace.rglob("*") if p.lstat().st_uid != OWNER] == []
    secrets = [GH_TOKEN, *(v for k, v in world.env.items() if not k.endswith("_HOSTS"))]
    masked = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    assert not [s for s in secrets if s in masked]
    assert world.project.files_containing(secrets) == []


def _pytest_the_container_test(
    tmp_path: Path, switch: str | None
) -> subprocess.CompletedProcess[str]:
    """The container test alone, in a new pytest, with only python and git on PATH."""
    path = tmp_path / "bin"
    path.mkdir()
    git = shutil.which("git")
    assert git is not None
    (path / "python").symlink_to(sys.executable)
    (path / "git").symlink_to(git)
    env = {name: value for name, value in os.environ.items() if name != SWITCH}
    env |= {"PATH": str(path), "DVC_MULTIREMOTE_CONTAINER_CACHE": str(tmp_path / "cache")}
    if switch is not None:
        env[SWITCH] = switch
    test = "tests/test_container.py::test_scenario_1_inside_the_container"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_on_a_machine_without_podman_the_container_test_is_skipped(tmp_path: Path) -> None:
    done = _pytest_the_container_test(tmp_path, switch=None)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, log
    assert "podman" in skipped[0] and "apt-get install" in skipped[0], log
    assert "1 skipped" in done.stdout.splitlines()[-1], log
    assert not (tmp_path / "cache").exists()  # decided before any build


def test_when_ci_insists_a_machine_without_podman_fails_the_container_test(
    tmp_path: Path,
) -> None:
    done = _pytest_the_container_test(tmp_path, switch="1")
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert f"{SWITCH}=1 but podman" in done.stdout, log
    assert "1 failed" in done.stdout.splitlines()[-1], log
    assert not (tmp_path / "cache").exists()  # decided before any build


@pytest.mark.parametrize(
    ("switch", "missing", "expected"),
    [
        (None, [], Decision(run=True)),
        ("1", [], Decision(run=True)),
        ("0", [], Decision(run=False, reason=f"{SWITCH}=0")),
        ("0", ["podman"], Decision(run=False, reason=f"{SWITCH}=0")),
    ],
)
def test_the_switch_at_0_skips_the_container_test_even_where_it_could_run(
    switch: str | None, missing: list[str], expected: Decision
) -> None:
    assert decide(switch, missing) == expected


def test_a_user_without_root_is_told_so() -> None:
    assert decide(None, ["root"]).reason.startswith("not running as root;")
    assert decide("1", ["runc", "root"]).reason.startswith(
        f"{SWITCH}=1 but runc not on PATH; not running as root:"
    )


def test_a_switch_that_is_neither_0_nor_1_fails_naming_it() -> None:
    assert decide("yes", []) == Decision(
        run=False, reason=f"{SWITCH} must be 0, 1 or unset, not 'yes'", fails=True
    )
