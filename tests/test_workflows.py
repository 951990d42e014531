"""action.yml, the workflows, the examples and the Dockerfile pass the linters GitHub users trust,
and the hashed lock agrees with pyproject.toml's pins."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
_SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed; `pip install -e '.[test]'` installs it"
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_action_yml_matches_the_schema() -> None:
    done = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_and_examples_match_the_schema() -> None:
    assert {p.name for p in EXAMPLES} == {
        "dvc-pr-check.yml",
        "dvc-weekly-sync.yml",
        "dvc-train-pull.yml",
        "dvc-sharded-sync.yml",
    }
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "selftest.yml"}
    files = [str(p.relative_to(ROOT)) for p in WORKFLOWS + EXAMPLES]
    done = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint() -> None:
    files = [str(p.relative_to(ROOT)) for p in WORKFLOWS + EXAMPLES]
    done = _run(_tool("actionlint"), *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint() -> None:
    done = _run(_tool("hadolint"), "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES, ids=lambda p: p.name)
def test_least_privilege_time_limits_and_pinned_actions(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert "permissions" in workflow, "top-level permissions, least privilege"
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"job {name} has no timeout-minutes"
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./") and "dvc-multiremote@" not in uses:
                assert _SHA_PIN.match(uses), f"{uses} is not pinned by commit SHA"


def test_dockerfile_follows_the_container_rules() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE=python:3.12-slim" in text and "FROM ${BASE}" in text
    assert "PYTHONUNBUFFERED=1" in text
    assert "--require-hashes" in text and "dvc --version" in text
    # No git binary (the Action reads history with dulwich), and the checkout is trusted.
    instructions = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert "apt-get" not in instructions and "git config" not in instructions
    assert "GIT_PYTHON_REFRESH=quiet" in text and "directory = *" in text
    entrypoint = [line for line in text.splitlines() if line.startswith("ENTRYPOINT")]
    # Exec form into Python: /bin/sh (dash) drops INPUT_* variables whose names have hyphens.
    assert entrypoint == ['ENTRYPOINT ["/opt/venv/bin/python", "/action/entrypoint/main.py"]']
    # Dependencies are installed before the source is copied, so that layer caches.
    assert text.index("requirements/action.txt") < text.index("COPY src")


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_lock_agrees_with_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"])
    source = (ROOT / "requirements" / "action.in").read_text().splitlines()
    assert sorted(line for line in source if line and not line.startswith("#")) == sorted(
        project["dependencies"]
    ), "requirements/action.in must list pyproject.toml's dependencies"
    lock_text = (ROOT / "requirements" / "action.txt").read_text()
    locked = _pins(lock_text.splitlines())
    for name, version in wanted.items():
        assert locked.get(name) == version, f"{name}: lock has {locked.get(name)}, wants {version}"
    assert "pydantic-settings" in locked
    for block in re.split(r"\n(?=\S)", lock_text.strip()):
        if "==" in block.splitlines()[0]:
            assert "--hash=sha256:" in block, f"unhashed: {block.splitlines()[0]}"
