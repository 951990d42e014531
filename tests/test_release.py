"""A release points the action at the pushed image by digest: the release script rewrites
``runs.image`` and nothing else, the result passes the linters, the release workflow keeps least
privilege and pins what it installs, pushes only ``sha-<short>`` before the image has run, and its
release job (run here against a local ``origin``, with a fake ``docker``) refuses a tag off main,
then tags the tested digest and moves ``vX.Y.Z`` onto a commit that changes only that line, and
``vX`` too when ``vX.Y.Z`` is its major's highest release tag (``v0`` alike)."""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from test_workflows import ROOT, _tool

if TYPE_CHECKING:
    from collections.abc import Callable

SCRIPT = ROOT / ".github" / "release" / "pin_image.py"
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
IMAGE = "ghcr.io/octo/dvc-multiremote"
DIGEST = "sha256:" + hashlib.sha256(b"a pushed image").hexdigest()
PINNED_LINE = re.compile(r"^  image: docker://ghcr\.io/octo/dvc-multiremote@sha256:[0-9a-f]{64}$")
GIT = ["git", "-c", "user.name=maintainer", "-c", "user.email=m@example.com"]
# A workflow that uses the written action as `uses: ./`: actionlint then reads its metadata and
# checks the step's inputs against it.
USES_IT = """\
name: Uses the released action
on: push
permissions: {}
jobs:
  verify:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - uses: ./
        with:
          command: verify
          fail-on-missing: "false"
"""


def _pin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},  # not under GITHUB_ACTIONS, whatever runs the tests
    )


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _lint_action(repo: Path) -> None:
    """check-jsonschema on ``repo/action.yml``, and actionlint on a workflow using it as ``./``."""
    schema = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    (workflows / "uses-it.yml").write_text(USES_IT)
    if not (repo / ".git").exists():
        _git("init", "-q", cwd=repo)  # actionlint finds the project by its git repository
    lint = subprocess.run(
        [_tool("actionlint")], cwd=repo, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _without_image(action: dict[str, Any]) -> dict[str, Any]:
    return {**action, "runs": {k: v for k, v in action["runs"].items() if k != "image"}}


def test_the_release_script_pins_runs_image_by_digest_and_keeps_every_other_byte(
    tmp_path: Path,
) -> None:
    original = (ROOT / "action.yml").read_bytes()
    (tmp_path / "action.yml").write_bytes(original)

    done = _pin("--image", IMAGE, "--digest", DIGEST, cwd=tmp_path)  # default: ./action.yml

    assert done.returncode == 0, done.stderr
    written = (tmp_path / "action.yml").read_bytes()
    before, after = original.decode().splitlines(True), written.decode().splitlines(True)
    changed = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1, changed
    assert before[changed[0]] == "  image: Dockerfile\n"
    assert PINNED_LINE.match(after[changed[0]].rstrip("\n"))
    assert after[changed[0]].rstrip("\n").endswith("@" + DIGEST)
    source, pinned = yaml.safe_load(original), yaml.safe_load(written)
    assert pinned["runs"]["image"] == f"docker://{IMAGE}@{DIGEST}"
    assert _without_image(pinned) == _without_image(source)
    assert list(pinned) == list(source) and list(pinned["runs"]) == list(source["runs"])
    assert (ROOT / "action.yml").read_bytes() == original  # only the copy was written
    _lint_action(tmp_path)


def test_actionlint_reads_the_written_metadata(tmp_path: Path) -> None:
    """The check above is not vacuous: a broken action.yml used as ``./`` fails actionlint."""
    text = (ROOT / "action.yml").read_text().replace("using: docker", "using: dockr")
    (tmp_path / "action.yml").write_text(text)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "uses-it.yml").write_text(USES_IT)
    _git("init", "-q", cwd=tmp_path)
    lint = subprocess.run(
        [_tool("actionlint")], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 1 and 'invalid runner name "dockr"' in lint.stdout, lint.stdout


def test_comments_line_ends_and_deeper_image_keys_are_kept(tmp_path: Path) -> None:
    source = tmp_path / "src.yml"
    text = (
        "name: x\r\n"
        "description: y  # image: not this one\r\n"
        "runs:\r\n"
        "  # built on release\r\n"
        "  using: docker\r\n"
        "  image: 'Dockerfile'   # keep this comment\r\n"
        "  env:\r\n"
        "    image: not-this-either\r\n"
        "branding: {icon: database}\r\n"
    )
    source.write_bytes(text.encode())

    args = ["--image", IMAGE, "--digest", DIGEST, "--action", str(source), "--output", "out.yml"]
    done = _pin(*args, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert source.read_bytes() == text.encode()  # --output elsewhere leaves the source alone
    expected = text.replace(
        "  image: 'Dockerfile'   # keep", f"  image: docker://{IMAGE}@{DIGEST}   # keep"
    )
    assert (tmp_path / "out.yml").read_bytes() == expected.encode()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--digest", "sha256:abc"], "--digest"),
        (["--digest", "sha256:" + "A" * 64], "--digest"),
        (["--digest", DIGEST.removeprefix("sha256:")], "--digest"),
        (["--digest", "sha512:" + "f" * 128], "--digest"),
        (["--digest", DIGEST + "\n"], "--digest"),
        (["--image", "ghcr.io/Octo/dvc-multiremote"], "--image"),
        (["--image", IMAGE + ":v1"], "--image"),
        (["--image", f"{IMAGE}@{DIGEST}"], "--image"),
        (["--action", "README.md"], "--action"),
        (["--action", "absent.yml"], "--action"),
    ],
)
def test_a_bad_argument_is_one_sentence_naming_it_and_exit_2(
    tmp_path: Path, args: list[str], names: str
) -> None:
    (tmp_path / "action.yml").write_bytes((ROOT / "action.yml").read_bytes())
    (tmp_path / "README.md").write_text("# Not an action\n")
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = {"--image": IMAGE, "--digest": DIGEST, **given}

    done = _pin(*[part for pair in argv.items() for part in pair], cwd=tmp_path)

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {names} "), done.stderr
    assert lines[0].endswith(".") and lines[0].count(". ") == 0, lines[0]
    assert (tmp_path / "action.yml").read_bytes() == (ROOT / "action.yml").read_bytes()


def _release() -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load(RELEASE.read_text())
    return workflow


def _step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in job["steps"] if step.get("name") == name)


def _index(job: dict[str, Any], match: Callable[[dict[str, Any]], bool]) -> int:
    found = [n for n, step in enumerate(job["steps"]) if match(step)]
    assert len(found) == 1, found
    return found[0]


def test_the_release_workflow_passes_the_linters() -> None:
    files = [str(RELEASE.relative_to(ROOT))]
    schema = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = subprocess.run(
        [_tool("actionlint"), *files], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_release_workflow_builds_pushes_and_pins_with_least_privilege() -> None:
    workflow = _release()
    on = workflow.get("on", workflow.get(True))  # PyYAML reads a bare `on` as True
    assert on == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert workflow["permissions"] == {}
    # A group per tag: GitHub cancels a group's pending run when another arrives, so one group
    # for every tag would drop releases; nor is a release cut off half-way.
    assert workflow["concurrency"] == {
        "group": "release-${{ github.ref_name }}",
        "cancel-in-progress": False,
    }
    jobs = workflow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "image": {"contents": "read", "packages": "write"},
        "check": {"contents": "read", "packages": "read"},
        "release": {"contents": "write", "packages": "write"},
    }
    assert jobs["check"]["needs"] == "image"
    assert jobs["release"]["needs"] == ["image", "check"]
    for name, job in jobs.items():
        assert job["timeout-minutes"] <= 30, name
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            # Values reach scripts through env, never spliced into the script text.
            assert "${{" not in step.get("run", ""), (name, step.get("name"))

    image = jobs["image"]
    # The image job pushes `sha-<short>` and nothing else: no version tag before the check.
    assert not any("metadata-action" in step.get("uses", "") for step in image["steps"])
    push = next(s for s in image["steps"] if s.get("id") == "push")
    assert push["uses"].startswith("docker/build-push-action@")
    assert push["with"]["push"] is True and push["with"]["platforms"] == "linux/amd64"
    assert push["with"]["tags"] == "${{ steps.name.outputs.image }}:${{ steps.name.outputs.tag }}"
    assert "org.opencontainers.image.source=" in push["with"]["labels"]
    assert image["outputs"]["digest"] == "${{ steps.push.outputs.digest }}"
    assert "imagetools" not in yaml.safe_dump(image) + yaml.safe_dump(jobs["check"])

    # The action the check job runs is the one the release job commits: both come from the
    # script, fed the digest the push recorded.
    writes = {
        "check": "Write the released action.yml beside the source",
        "release": "Write action.yml with the image's digest",
    }
    for job, step in writes.items():
        pin = _step(jobs[job], step)
        assert "pin_image.py" in pin["run"]
        assert pin["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    assert any(s.get("uses") == "./released" for s in jobs["check"]["steps"])

    # The release job, after the check: the tag is checked first (with main's history at hand),
    # then the version tags go onto the tested digest, with a login, then the git tags move.
    release = jobs["release"]
    checkout = release["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0
    checked = _index(release, lambda s: s.get("id") == "tag")
    login = _index(release, lambda s: s.get("uses", "").startswith("docker/login-action@"))
    tags = _index(release, lambda s: "imagetools create" in s.get("run", ""))
    moved = _index(release, lambda s: "push --atomic" in s.get("run", ""))
    assert checked < login < tags < moved
    assert release["steps"][tags]["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"


def _exact_pins() -> dict[str, str]:
    """``name: version`` for pyproject.toml's ``name==version`` requirements (extras dropped)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        pinned = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement)
        if pinned:
            pins[pinned[1].lower()] = pinned[2]
    return pins


def test_every_pip_install_in_the_release_workflow_is_the_projects_own_pin() -> None:
    pins = _exact_pins()
    assert pins["check-jsonschema"] == "0.39.0"  # the `test` extra's pin
    scripts = [step.get("run", "") for job in _release()["jobs"].values() for step in job["steps"]]
    installed: dict[str, str] = {}
    for line in "\n".join(scripts).splitlines():
        if "pip install" not in line:
            continue
        words = shlex.split(line)
        assert words[:2] == ["pip", "install"], line
        for word in words[2:]:
            pinned = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", word)
            assert pinned, f"{word!r} in {line.strip()!r} is not pinned with =="
            installed[pinned[1].lower()] = pinned[2]
    assert installed == {"check-jsonschema": "0.39.0", "dvc": "3.67.1"}
    assert all(pins[name] == version for name, version in installed.items()), (installed, pins)


# The expressions the release workflow's `env:` values use, as GitHub would fill them in.
_EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")
_FAKE_DOCKER = """\
#!/bin/bash
for arg in "$@"; do printf '%s\\t' "$arg"; done >> "$DOCKER_LOG"
echo >> "$DOCKER_LOG"
"""


def _run_steps(
    job: dict[str, Any],
    context: dict[str, str],
    *,
    cwd: Path,
    scratch: Path,
    names: list[str] | None = None,
    after: dict[str, Callable[[], None]] | None = None,
) -> tuple[list[subprocess.CompletedProcess[str]], dict[str, str]]:
    """Run ``job``'s ``run:`` steps (those in ``names``, else all) in order as an ubuntu runner's
    bash would, each ``env:`` value from ``context`` or an earlier step's ``$GITHUB_OUTPUT``;
    stop at the first failure. ``after[name]`` runs once that step has succeeded. Returns each
    step's result and the steps' outputs (``steps.ID.outputs.NAME``)."""
    outputs: dict[str, str] = {}
    results: list[subprocess.CompletedProcess[str]] = []
    base = {
        "PATH": f"{scratch / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(scratch),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GITHUB_STEP_SUMMARY": str(scratch / "summary.md"),
        "DOCKER_LOG": str(scratch / "docker.log"),
    }
    steps = [s for s in job["steps"] if "run" in s and (names is None or s.get("name") in names)]
    assert names is None or [s["name"] for s in steps] == names
    for number, step in enumerate(steps):
        assert "if" not in step, step  # every step runs; decisions are made in the scripts
        env = dict(base, GITHUB_OUTPUT=str(scratch / f"output-{number}"))
        for key, value in step.get("env", {}).items():
            expression = _EXPRESSION.fullmatch(value)
            assert expression, f"{key}: {value!r}"
            env[key] = {**context, **outputs}[expression[1]]
        script = step["run"].replace("python3 ", f"{sys.executable} ")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        results.append(done)
        if done.returncode != 0:
            break
        written = Path(env["GITHUB_OUTPUT"])
        for line in written.read_text().splitlines() if written.exists() else []:
            key, value = line.split("=", 1)
            outputs[f"steps.{step['id']}.outputs.{key}"] = value
        if after and step.get("name") in after:
            after[step["name"]]()
    return results, outputs


def test_the_image_job_names_the_image_and_its_only_tag(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    sha = hashlib.sha256(b"a tagged commit").hexdigest()[:40]  # a commit id's shape
    context = {"github.repository_owner": "Octo-Org", "github.sha": sha}
    results, outputs = _run_steps(
        _release()["jobs"]["image"],
        context,
        cwd=tmp_path,
        scratch=tmp_path,
        names=["Image name and tag"],
    )
    assert results[-1].returncode == 0, results[-1].stderr
    assert outputs == {
        "steps.name.outputs.image": "ghcr.io/octo-org/dvc-multiremote",
        "steps.name.outputs.tag": f"sha-{sha[:7]}",
    }


@dataclass
class _Release:
    """A local bare ``origin`` in place of GitHub, and the runner's checkout of the tagged commit."""

    origin: Path
    maintainer: Path
    runner: Path
    source: str
    scratch: Path

    def refs(self) -> str:
        return _git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.origin)

    def tag(self, *tags: str, at: str = "HEAD") -> None:
        """Tags ``at`` in the maintainer's clone and pushes the tags (`vX` lightweight, as a
        maintainer's first major tag would be; versions annotated)."""
        for tag in tags:
            if re.fullmatch(r"v[0-9]+", tag):
                _git("tag", "-f", tag, at, cwd=self.maintainer)
            else:
                _git("tag", "-f", "-a", tag, "-m", tag, at, cwd=self.maintainer)
        _git(
            "push",
            "-q",
            "--force",
            "origin",
            *[f"refs/tags/{t}" for t in tags],
            cwd=self.maintainer,
        )

    def run(
        self, tag: str, after: dict[str, Callable[[], None]] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """The release job's scripts, with `docker` a fake that logs its arguments."""
        context = {
            "github.ref_name": tag,
            "github.sha": self.source,
            "github.token": "not-a-real-token",
            "needs.image.outputs.image": IMAGE,
            "needs.image.outputs.digest": DIGEST,
        }
        results, _ = _run_steps(
            _release()["jobs"]["release"],
            context,
            cwd=self.runner,
            scratch=self.scratch,
            after=after,
        )
        return results

    def docker_calls(self) -> list[list[str]]:
        log = self.scratch / "docker.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split("\t")[:-1] for line in lines]


def _repository(tmp_path: Path, *, earlier: list[str], on_main: bool = True) -> _Release:
    """main has an earlier commit (carrying the ``earlier`` tags) and the commit to release; with
    ``on_main=False`` that commit is on a branch that never reached main."""
    scratch = tmp_path / "scratch"
    (scratch / "bin").mkdir(parents=True)
    docker = scratch / "bin" / "docker"
    docker.write_text(_FAKE_DOCKER)
    docker.chmod(0o755)
    origin, maintainer, runner = (
        tmp_path / "origin.git",
        tmp_path / "maintainer",
        tmp_path / "runner",
    )
    _git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    _git("init", "-q", "-b", "main", str(maintainer), cwd=tmp_path)
    shutil.copy(ROOT / "action.yml", maintainer / "action.yml")
    (maintainer / ".github" / "release").mkdir(parents=True)
    shutil.copy(SCRIPT, maintainer / ".github" / "release" / "pin_image.py")
    _git("add", "-A", cwd=maintainer)
    _git("commit", "-q", "-m", "Earlier", cwd=maintainer)
    _git("remote", "add", "origin", str(origin), cwd=maintainer)
    if not on_main:
        _git("checkout", "-q", "-b", "experiment", cwd=maintainer)
    _git("commit", "-q", "--allow-empty", "-m", "Release me", cwd=maintainer)
    source = _git("rev-parse", "HEAD", cwd=maintainer)
    _git("push", "-q", "origin", "main", cwd=maintainer)
    release = _Release(origin, maintainer, runner, source, scratch)
    if earlier:
        release.tag(*earlier, at="main~1" if on_main else "main")
    return release


def _checkout(release: _Release, tag: str) -> None:
    """The maintainer pushes ``tag``; actions/checkout (``ref: github.sha``, full history) gives
    the runner a detached HEAD at the tagged commit."""
    release.tag(tag, at=release.source)
    _git("clone", "-q", str(release.origin), str(release.runner), cwd=release.origin.parent)
    _git("checkout", "-q", "--detach", release.source, cwd=release.runner)


@pytest.mark.parametrize(
    ("tag", "earlier", "later", "moves_major"),
    [
        pytest.param("v1.2.3", ["v1", "v1.2.2"], [], True, id="the-highest-moves-v1"),
        pytest.param("v0.1.0", [], [], True, id="v0.x-makes-v0"),
        pytest.param("v0.2.0", ["v0", "v0.1.0", "v1.0.0"], [], True, id="v0-moves-like-v1"),
        pytest.param("v1.2.3", ["v1", "v1.3.0"], [], False, id="rerun-of-an-older-tag"),
        pytest.param("v1.9.0", ["v1", "v1.10.0"], [], False, id="version-order-not-text"),
        pytest.param(
            "v1.9.0", ["v1", "v1.8.0", "v1.10.0-rc1", "v10.0.0"], [], True, id="only-vX.Y.Z"
        ),
        pytest.param("v1.2.3", ["v1"], ["v1.2.4"], False, id="a-tag-pushed-since-checkout"),
    ],
)
def test_the_release_steps_tag_the_tested_image_and_move_the_tags(
    tmp_path: Path, tag: str, earlier: list[str], later: list[str], moves_major: bool
) -> None:
    """The release job's own scripts, run against a local bare ``origin`` in place of GitHub:
    ``vX.Y.Z`` moves onto a commit that changes only the image line, and the major tag moves,
    in git and on the image, only when ``vX.Y.Z`` is its major's highest release tag."""
    release = _repository(tmp_path, earlier=earlier)
    _checkout(release, tag)
    if later:
        release.tag(*later, at=release.source)
    major = tag.split(".", maxsplit=1)[0]
    major_before = _git("tag", "-l", "--format=%(objectname)", major, cwd=release.origin)

    results = release.run(tag)

    assert all(done.returncode == 0 for done in results), [d.stdout + d.stderr for d in results]
    origin = release.origin
    assert release.docker_calls() == [
        ["buildx", "imagetools", "create", "--prefer-index=false", "--tag", f"{IMAGE}:{tag}"]
        + (["--tag", f"{IMAGE}:{major}"] if moves_major else [])
        + [f"{IMAGE}@{DIGEST}"]
    ]
    assert _git("cat-file", "-t", tag, cwd=origin) == "tag"  # annotated, saying the digest
    assert DIGEST in _git("tag", "-l", "--format=%(contents)", tag, cwd=origin)
    released = _git("rev-parse", f"{tag}^{{commit}}", cwd=origin)
    assert released != release.source
    assert _git("rev-parse", f"{released}^", cwd=origin) == release.source
    assert _git("diff", "--name-only", release.source, released, cwd=origin) == "action.yml"
    action = _git("show", f"{released}:action.yml", cwd=origin)
    assert f"  image: docker://{IMAGE}@{DIGEST}" in action.splitlines()
    assert _git("rev-parse", "main", cwd=origin) == release.source  # keeps `image: Dockerfile`
    message = _git("log", "-1", "--format=%B", released, cwd=origin)
    assert DIGEST in message
    summary = (release.scratch / "summary.md").read_text()
    assert released in summary and DIGEST in summary
    if moves_major:
        assert _git("cat-file", "-t", major, cwd=origin) == "tag"
        assert DIGEST in _git("tag", "-l", "--format=%(contents)", major, cwd=origin)
        assert _git("rev-parse", f"{major}^{{commit}}", cwd=origin) == released
        assert f"tags: {tag}, {major}, sha-" in message
    else:
        assert _git("tag", "-l", "--format=%(objectname)", major, cwd=origin) == major_before
        assert f"tags: {tag}, sha-" in message
        assert f"`{major}` stayed" in summary
        notices = [line for line in results[0].stdout.splitlines() if line.startswith("::notice")]
        assert len(notices) == 1 and f"{major} stays where it is" in notices[0], notices


def test_a_tag_off_main_is_refused_in_one_sentence_and_nothing_moves(tmp_path: Path) -> None:
    release = _repository(tmp_path, earlier=["v1", "v1.2.2"], on_main=False)
    _checkout(release, "v1.2.3")
    before = release.refs()

    results = release.run("v1.2.3")

    assert len(results) == 1 and results[0].returncode == 1  # the first step, then no other
    errors = [line for line in results[0].stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, results[0].stdout
    assert errors[0].startswith("::error title=Not on main::v1.2.3 tags ")
    assert release.source in errors[0] and "not on main" in errors[0]
    assert errors[0].endswith(".") and errors[0].count(". ") == 0, errors[0]
    assert release.refs() == before
    assert release.docker_calls() == []


def test_a_tag_moved_during_the_release_fails_the_push_and_no_tag_moves(tmp_path: Path) -> None:
    """Another run (or a maintainer) moves `v1` after this run has looked: the leased, atomic
    push refuses both tags rather than overwrite that."""
    release = _repository(tmp_path, earlier=["v1", "v1.2.2"])
    _checkout(release, "v1.2.3")

    snapshots: list[str] = []

    def someone_moves_v1() -> None:
        _git("tag", "-f", "-a", "v1", "-m", "moved meanwhile", "main~1", cwd=release.maintainer)
        _git("push", "-q", "--force", "origin", "refs/tags/v1", cwd=release.maintainer)
        snapshots.append(release.refs())

    results = release.run(
        "v1.2.3", after={"Add the version tags to the tested image": someone_moves_v1}
    )

    assert len(snapshots) == 1 and results[-1].returncode != 0
    assert "stale info" in results[-1].stderr, results[-1].stderr
    assert release.refs() == snapshots[0]  # neither v1.2.3 nor v1 moved
    assert _git("rev-parse", "v1.2.3^{commit}", cwd=release.origin) == release.source
