"""The GitHub Action, run as the runner runs its container: scenarios 1-8 of issue 5.

Each step runs ``entrypoint/main.py`` in a subprocess with the runner's variables
(``INPUT_*`` names keep their hyphens, every input at its ``action.yml`` default unless the step
sets it), against real servers on 127.0.0.1: moto S3 behind a B2-like proxy, a DagsHub-like HTTP
remote, and a fake GitHub REST API that PyGithub reaches through ``GITHUB_API_URL``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from projects import B2_KEY, B2_KEY_ID, TOKEN, Project, credentials_env
from servers.dagshub import DagsHubRemoteServer
from servers.faults import Fault, FaultProxy
from servers.git_http import GitHost
from servers.github import FakeGitHub, StoredComment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from servers.moto_s3 import MotoS3

ROOT = Path(__file__).resolve().parent.parent
ACTION_YML = ROOT / "action.yml"
ENTRYPOINT = ROOT / "entrypoint" / "main.py"
_SCRUBBED = ("INPUT_", "GITHUB_", "RUNNER_", "DAGSHUB_", "B2_", "DVC_REMOTE_")


def action_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))
    return spec


def input_defaults(token: str) -> dict[str, str]:
    """``INPUT_*`` variables as the runner sets them from ``action.yml``'s defaults."""
    found = {}
    for name, spec in action_spec()["inputs"].items():
        default = str(spec.get("default", ""))
        found[name] = token if default == "${{ github.token }}" else default
    return found


def input_env(inputs: dict[str, str]) -> dict[str, str]:
    return {"INPUT_" + name.upper(): value for name, value in inputs.items()}


def parse_outputs(text: str) -> dict[str, str]:
    """``name<<DELIM`` / value / ``DELIM`` blocks of a ``GITHUB_OUTPUT`` file."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        name, sep, delimiter = lines[index].partition("<<")
        assert sep, f"not a heredoc output line: {lines[index]!r}"
        end = lines.index(delimiter, index + 1)
        outputs[name] = "\n".join(lines[index + 1 : end])
        index = end + 1
    return outputs


@dataclass(frozen=True)
class Command:
    """One ``::name key=value,...::message`` workflow command from the log."""

    name: str
    properties: dict[str, str]
    message: str


_COMMAND = re.compile(r"^::(?P<name>[a-z-]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def _unescape(text: str) -> str:
    return (
        text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


def parse_commands(stdout: str) -> list[Command]:
    commands = []
    for line in stdout.splitlines():
        match = _COMMAND.match(line)
        if match:
            props = {}
            for pair in (match.group("props") or "").split(","):
                if pair:
                    key, _, value = pair.partition("=")
                    props[key] = _unescape(value)
            commands.append(Command(match.group("name"), props, _unescape(match.group("message"))))
    return commands


@dataclass
class Step:
    """A finished step: exit code, log, outputs, summary."""

    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path
    commands: list[Command] = field(default_factory=list)

    def annotations(self, level: str) -> list[Command]:
        return [c for c in self.commands if c.name == level]

    @property
    def log_without_masks(self) -> str:
        """stdout less the ``::add-mask::`` lines (the runner consumes those, never shows them)."""
        return "\n".join(
            line for line in self.stdout.splitlines() if not line.startswith("::add-mask::")
        )

    @property
    def report(self) -> dict[str, Any]:
        path = self.workspace / self.outputs["report"]
        data: dict[str, Any] = json.loads(path.read_text())
        return data


def run_step(
    workspace: Path,
    inputs: dict[str, str],
    *,
    token: str,
    api_url: str,
    event_name: str = "pull_request",
    event: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    files: Path,
    timeout: float = 180,
) -> Step:
    """Run ``entrypoint/main.py`` in ``workspace`` with the runner's variables."""
    files.mkdir(parents=True, exist_ok=True)
    output = files / "set_output"
    summary = files / "step_summary"
    event_path = files / "event.json"
    for path in (output, summary):
        path.write_text("")
    event_path.write_text(json.dumps(event or {}))
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    step_env = {
        **base,
        **input_env({**input_defaults(token), **inputs}),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_API_URL": api_url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "octo/data",
        "GITHUB_RUN_ID": "4242",
        "DVC_NO_ANALYTICS": "1",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        cwd=workspace,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Step(
        done.returncode,
        done.stdout,
        done.stderr,
        parse_outputs(output.read_text()),
        summary.read_text(),
        workspace,
        parse_commands(done.stdout),
    )


def pull_request_event(
    number: int, base: str, head: str, *, head_repo: str | None = "octo/data"
) -> dict[str, Any]:
    """A ``pull_request`` payload, trimmed to what the Action reads and a little more."""
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"sha": base, "ref": "main", "repo": {"full_name": "octo/data"}},
            "head": {
                "sha": head,
                "ref": "feature",
                "repo": {"full_name": head_repo, "fork": head_repo != "octo/data"}
                if head_repo
                else None,
            },
        },
        "repository": {"full_name": "octo/data"},
    }


# --- the world: a PR that adds data pushed to backblaze only ----------------------------------
GH_TOKEN = "ghs_fake0123456789abcdef"
GIT_TOKEN = "ghs_checkout9f8e7d6c5b4a"  # the token actions/checkout persisted for git
PREFIX = "store"
IMAGES = 12
LABELS = 10
MARKER = "<!-- dvc-multiremote:verify -->"
PR = 7


@dataclass
class PrWorld:
    """Base commit: data on both remotes. Head (the PR): data/labels, pushed to backblaze only."""

    project: Project
    moto: MotoS3
    bucket: str
    b2: FaultProxy
    dagshub: DagsHubRemoteServer
    github: FakeGitHub
    base: str
    head: str
    scratch: Path
    runs: list[Step] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return credentials_env(self.dagshub.host, self.b2.host)

    def event(self, **kwargs: Any) -> dict[str, Any]:
        return pull_request_event(PR, self.base, self.head, **kwargs)

    def step(
        self,
        inputs: dict[str, str] | None = None,
        *,
        event: dict[str, Any] | None = None,
        event_name: str = "pull_request",
        env: dict[str, str] | None = None,
        workspace: Path | None = None,
    ) -> Step:
        step = run_step(
            workspace or self.project.root,
            {"command": "verify", **(inputs or {})},
            token=GH_TOKEN,
            api_url=self.github.base_url,
            event_name=event_name,
            event=self.event() if event is None else event,
            env={**self.env, **(env or {})},
            files=self.scratch / f"run-{len(self.runs)}",
        )
        self.runs.append(step)
        return step

    def push_labels_to_dagshub(self) -> None:
        self.project.seed_dir(self.dagshub.root, "data/labels.dvc")

    def our_comments(self) -> list[StoredComment]:
        return [c for c in self.github.comments("octo", "data", PR) if MARKER in c.body]

    def md5_line(self, dvc_file: str) -> int:
        lines = (self.project.root / dvc_file).read_text().splitlines()
        return next(n for n, line in enumerate(lines, start=1) if "md5:" in line)


@pytest.fixture
def world(tmp_path: Path, moto: MotoS3, s3_bucket: str, fault_proxy) -> Iterator[PrWorld]:  # type: ignore[no-untyped-def]
    from servers.moto_s3 import s3_client

    project = Project.create(tmp_path / "project")
    project.write_dir("data/images", IMAGES)
    project.write_file("data/model.bin", 20_000)
    project.dvc_add("data/images", "data/model.bin")
    proxy = fault_proxy(moto.endpoint_url)
    dagshub = DagsHubRemoteServer(tmp_path / "dagshub-store", user=TOKEN, password=TOKEN).start()
    github = FakeGitHub(token=GH_TOKEN).start()
    project.add_remote(
        "backblaze", f"s3://{s3_bucket}/{PREFIX}", default=True, endpointurl=proxy.base_url
    )
    project.add_remote("dagshub", dagshub.url)
    base = project.commit("Add data")
    client = s3_client(moto.endpoint_url)
    project.seed_s3(client, s3_bucket, PREFIX, "data/images.dvc", "data/model.bin.dvc")
    project.seed_dir(dagshub.root, "data/images.dvc", "data/model.bin.dvc")
    project.git("checkout", "-q", "-b", "feature")
    head = project.add_dir("data/labels", LABELS, seed=3)
    project.seed_s3(client, s3_bucket, PREFIX, "data/labels.dvc")
    # Someone else's comment on the PR, which the Action must leave alone.
    github.add_comment("octo", "data", PR, "Looks good to me", "reviewer")
    yield PrWorld(project, moto, s3_bucket, proxy, dagshub, github, base, head, tmp_path / "runner")
    github.stop()
    dagshub.stop()


def _no_traceback(step: Step) -> None:
    assert "Traceback" not in step.stdout + step.stderr, step.stderr


# --- scenario 1 -------------------------------------------------------------------------------
def test_first_pr_run_comments_annotates_outputs_and_fails(world: PrWorld) -> None:
    step = world.step()
    assert step.code == 1, step.stdout + step.stderr
    _no_traceback(step)
    # Every declared output, with the values a later step would read.
    assert set(step.outputs) == set(action_spec()["outputs"])
    assert step.outputs["ok"] == "false"
    assert step.outputs["exit-code"] == "1"
    assert step.outputs["missing-count"] == str(LABELS + 1)  # the files and the .dir manifest
    assert step.outputs["remotes-used"] == "backblaze,dagshub"
    assert step.outputs["transferred-count"] == "0"
    assert step.outputs["transferred-bytes"] == "0"
    assert step.outputs["report"] == ".dvc-multiremote/verify.json"
    report = step.report
    assert report["scope"] == "range"  # scope auto on a pull_request event: what the PR adds
    assert [o["path"] for o in report["outputs"]] == ["data/labels"]
    # One annotation, on the .dvc file at the line of its md5.
    errors = [a for a in step.annotations("error") if "file" in a.properties]
    assert len(errors) == 1, step.stdout
    error = errors[0]
    assert error.properties["file"] == "data/labels.dvc"
    assert error.properties["line"] == str(world.md5_line("data/labels.dvc"))
    assert error.properties["title"] == "Missing on dagshub"
    assert f"{LABELS} of {LABELS} files and the .dir manifest of data/labels" in error.message
    assert "dvc pull -r backblaze data/labels.dvc && dvc push -r dagshub data/labels.dvc" in (
        error.message
    )
    # The job summary.
    assert "dvc-multiremote verify: ❌ data missing" in step.summary
    assert "| `dagshub` | ❌ missing data |" in step.summary
    assert "`data/labels`" in step.summary
    # One comment, created.
    comments = world.our_comments()
    assert len(comments) == 1
    body = comments[0].body
    assert body.startswith(MARKER)
    assert "❌ data missing" in body and "data/labels" in body
    assert "dvc push -r dagshub data/labels.dvc" in body
    assert "https://github.com/octo/data/actions/runs/4242" in body
    assert (world.github.count("POST"), world.github.count("PATCH")) == (1, 0)
    assert len(world.github.comments("octo", "data", PR)) == 2  # the reviewer's is untouched


# --- scenario 2 -------------------------------------------------------------------------------
def test_second_run_edits_the_same_comment(world: PrWorld) -> None:
    first = world.step()
    comment_id = world.our_comments()[0].id
    second = world.step()
    assert (first.code, second.code) == (1, 1)
    comments = world.our_comments()
    assert [c.id for c in comments] == [comment_id]
    assert (world.github.count("POST"), world.github.count("PATCH")) == (1, 1)
    assert world.github.comments("octo", "data", PR)[0].body == "Looks good to me"


# --- scenario 3 -------------------------------------------------------------------------------
def test_after_the_data_is_pushed_the_comment_says_all_is_in_place(world: PrWorld) -> None:
    assert world.step().code == 1
    world.push_labels_to_dagshub()
    step = world.step()
    assert step.code == 0, step.stdout + step.stderr
    assert step.outputs["ok"] == "true"
    assert step.outputs["exit-code"] == "0"
    assert step.outputs["missing-count"] == "0"
    assert step.annotations("error") == []
    comments = world.our_comments()
    assert len(comments) == 1
    assert "✅ all data in place" in comments[0].body
    assert f"All {LABELS + 1} objects are on every remote" in comments[0].body
    assert "❌" not in comments[0].body
    assert "✅ all data in place" in step.summary


# --- scenario 4 -------------------------------------------------------------------------------
@pytest.mark.parametrize("complete", [False, True], ids=["data-missing", "data-complete"])
def test_comment_refused_with_403_is_a_warning(world: PrWorld, complete: bool) -> None:
    world.github.forbid_writes = True
    if complete:
        world.push_labels_to_dagshub()
    step = world.step()
    assert step.code == (0 if complete else 1), step.stdout + step.stderr
    _no_traceback(step)
    warnings = [
        w
        for w in step.annotations("warning")
        if w.properties.get("title") == "Pull request comment"
    ]
    assert len(warnings) == 1
    assert "403" in warnings[0].message
    assert "Resource not accessible by integration" in warnings[0].message
    assert "Could not comment on pull request #7" in step.summary
    assert world.our_comments() == []
    assert step.outputs["exit-code"] == ("0" if complete else "1")


def test_a_failed_post_is_never_repeated(world: PrWorld) -> None:
    world.github.fail_next("POST", 502)
    world.github.fail_next("GET", 503)  # reads are retried
    step = world.step()
    assert step.code == 1
    assert world.github.count("POST") == 1
    assert world.our_comments() == []
    assert any("502" in w.message for w in step.annotations("warning"))


# --- scenario 5 -------------------------------------------------------------------------------
def test_pr_that_repoints_the_b2_endpoint_gets_no_credentials(world: PrWorld, fault_proxy) -> None:  # type: ignore[no-untyped-def]
    attacker = fault_proxy(world.moto.endpoint_url)  # another server, recording every header
    world.project.add_remote(
        "backblaze",
        f"s3://{world.bucket}/{PREFIX}",
        default=True,
        endpointurl=attacker.base_url,
    )
    world.head = world.project.commit("Move backblaze")
    # B2_HOSTS matches both servers: only the change detection stands between keys and attacker.
    step = world.step(env={"B2_HOSTS": "127.0.0.1:*"})
    assert step.code == 2, step.stdout + step.stderr
    _no_traceback(step)
    assert attacker.requests == []
    assert not any(r.had_credentials for r in attacker.requests)
    errors = [e for e in step.annotations("error") if "backblaze" in e.properties.get("title", "")]
    assert len(errors) == 1
    assert errors[0].properties["title"] == "Remote backblaze changed in this pull request"
    assert "endpointurl" in errors[0].message and attacker.base_url in errors[0].message
    assert "credentials were withheld" in errors[0].message
    assert step.outputs["exit-code"] == "2"
    assert step.outputs["remotes-used"] == "dagshub"  # the rest was still checked
    assert "backblaze" in step.summary and "withheld" in step.summary
    for secret in (B2_KEY_ID, B2_KEY):
        assert all(secret not in json.dumps(r.headers) for r in attacker.requests)


def test_pr_that_adds_a_remote_gets_it_no_credentials(world: PrWorld) -> None:
    other = DagsHubRemoteServer(world.scratch / "other-store", user=TOKEN, password=TOKEN).start()
    try:
        world.project.add_remote("mirror", other.url)
        world.head = world.project.commit("Add a mirror")
        step = world.step(env={"DAGSHUB_HOSTS": "127.0.0.1:*"})
        assert step.code == 2
        assert other.requests == []
        assert any("'mirror' is new" in e.message for e in step.annotations("error"))
    finally:
        other.stop()


# --- scenario 6 -------------------------------------------------------------------------------
FORK_SECRETS = {"DAGSHUB_TOKEN": "", "B2_APPLICATION_KEY_ID": "", "B2_APPLICATION_KEY": ""}


def _fork_world(world: PrWorld) -> dict[str, Any]:
    """A pull request from a fork: GitHub sets the secret variables, empty."""
    world.dagshub.require_auth = False  # a public DagsHub repository reads without a token
    world.b2.set_fault(Fault("unauthorized"))  # B2 answers nothing without keys
    world.github.forbid_writes = True  # a fork's token is read-only
    return world.event(head_repo="stranger/data")


def test_fork_pr_without_secrets_checks_what_it_can(world: PrWorld) -> None:
    event = _fork_world(world)
    step = world.step(event=event, env=FORK_SECRETS)
    _no_traceback(step)
    assert step.code == 1, step.stdout + step.stderr  # dagshub was checked: it lacks the labels
    states = {r["name"]: r["state"] for r in step.report["remotes"]}
    assert states == {"backblaze": "auth", "dagshub": "missing"}
    assert "stranger/data" in step.summary
    assert "no secrets" in step.summary.lower()
    assert "not checked: backblaze" in step.summary
    assert any(
        w.properties.get("title") == "No secrets on a pull request from a fork"
        for w in step.annotations("warning")
    )
    # Scenario 2 of issue 13: the step succeeds on what could be checked, but its outputs,
    # its report and its title say that backblaze was not checked.
    world.push_labels_to_dagshub()
    again = world.step(event=event, env=FORK_SECRETS)
    assert again.code == 0, again.stdout  # what could be checked is complete
    assert again.outputs["ok"] == "false"
    assert again.outputs["exit-code"] == "3"
    assert again.report["exit_code"] == 3 and again.report["ok"] is False
    assert "⚠️ not checked: backblaze, credentials refused" in again.summary
    assert "✅" not in again.summary.splitlines()[0]
    assert "all data in place" not in again.summary


@pytest.mark.parametrize("command", ["push", "sync"])
def test_fork_pr_push_and_sync_fail_the_step_saying_why(world: PrWorld, command: str) -> None:
    event = _fork_world(world)
    step = world.step({"command": command}, event=event, env=FORK_SECRETS)
    _no_traceback(step)
    assert step.code == 3, step.stdout + step.stderr
    assert step.outputs["exit-code"] == "3"
    assert step.outputs["ok"] == "false"
    assert "✅" not in step.summary
    errors = step.annotations("error")
    assert len(errors) == 1
    assert "fork" in errors[0].message and "no secrets" in errors[0].message
    assert f"`{command}`" in errors[0].message
    assert not any(r.method in ("POST", "PUT") for r in world.dagshub.requests)


# --- scenario 7 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "name"),
    [
        ({"command": "frobnicate"}, "command"),
        ({"jobs": "0"}, "jobs"),
        ({"command": "pull", "streams": "many"}, "streams"),
        ({"command": "pull", "streams-cutoff": "big"}, "streams-cutoff"),
        ({"shard": "3/2"}, "shard"),
        ({"budget": "backblaze=lots"}, "budget"),
        ({"scope": "everything"}, "scope"),
        ({"remotes": "backblaze,nowhere"}, "remotes"),
        ({"fail-on-missing": "maybe"}, "fail-on-missing"),
        ({"working-directory": "no/such/dir"}, "working-directory"),
        ({"command": "push", "dry-run": "true"}, "dry-run"),
    ],
)
def test_each_invalid_input_is_one_error_naming_it_and_exit_2(
    world: PrWorld, inputs: dict[str, str], name: str
) -> None:
    step = world.step(inputs)
    assert step.code == 2, step.stdout + step.stderr
    _no_traceback(step)
    errors = step.annotations("error")
    assert len(errors) == 1, step.stdout
    assert errors[0].properties == {"title": "Invalid input"}
    message = errors[0].message
    assert message.startswith(f"Input `{name}` ")
    assert message.endswith(".") and "\n" not in message
    assert step.outputs["exit-code"] == "2" and step.outputs["ok"] == "false"
    assert set(step.outputs) == set(action_spec()["outputs"])
    assert "Invalid input" in step.summary and name in step.summary
    # Nothing was done: no remote and no GitHub request.
    assert world.dagshub.requests == [] and world.b2.requests == [] and world.github.requests == []


def test_every_bad_input_is_reported_at_once(world: PrWorld) -> None:
    step = world.step({"command": "frobnicate", "jobs": "0", "shard": "3/2", "scope": "x"})
    assert step.code == 2
    names = [e.message.split("`")[1] for e in step.annotations("error")]
    assert names == ["command", "jobs", "scope", "shard"]


def test_scope_pr_on_a_push_event_is_an_invalid_input(world: PrWorld) -> None:
    step = world.step({"scope": "pr"}, event={}, event_name="push")
    assert step.code == 2
    assert "push event" in step.annotations("error")[0].message


# --- scenario 8 -------------------------------------------------------------------------------
def test_no_secret_anywhere(world: PrWorld) -> None:
    remote_secret = "dvc-remote-secret-9a7c3d"
    secrets = [
        TOKEN,
        B2_KEY_ID,
        B2_KEY,
        GH_TOKEN,
        remote_secret,
        base64.b64encode(f"{TOKEN}:{TOKEN}".encode()).decode(),
    ]
    step = world.step(
        {"verbose": "true"}, env={"DVC_REMOTE_ARCHIVE_SECRET_ACCESS_KEY": remote_secret}
    )
    assert step.code == 1, step.stdout + step.stderr
    # Every secret is masked before anything else is printed.
    lines = step.stdout.splitlines()
    masks = [line.removeprefix("::add-mask::") for line in lines if line.startswith("::add-mask::")]
    assert set(secrets) <= set(masks)
    assert all(line.startswith("::add-mask::") for line in lines[: len(masks)])
    places = {
        "stdout": step.log_without_masks,
        "stderr": step.stderr,
        "outputs": json.dumps(step.outputs),
        "summary": step.summary,
        "comment": json.dumps([c.body for c in world.github.comments("octo", "data", PR)]),
        "api bodies": json.dumps([r.body for r in world.github.requests]),
        "report": json.dumps(step.report),
    }
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret is in {place}"
    assert world.project.files_containing(secrets) == []
    assert not (world.project.root / ".dvc" / "config.local").exists()


# --- more of what a user meets ------------------------------------------------------------------
def test_push_event_checks_the_workspace_and_does_not_comment(world: PrWorld) -> None:
    step = world.step(event={"ref": "refs/heads/feature"}, event_name="push")
    assert step.code == 1
    assert step.report["scope"] == "workspace"
    assert world.github.requests == []
    assert step.outputs["missing-count"] == str(LABELS + 1)


def test_fail_on_missing_false_reports_but_succeeds(world: PrWorld) -> None:
    step = world.step({"fail-on-missing": "false"})
    assert step.code == 0, step.stdout + step.stderr
    assert (step.outputs["ok"], step.outputs["exit-code"]) == ("false", "1")
    assert step.annotations("error") == []
    assert [w.properties.get("file") for w in step.annotations("warning")] == ["data/labels.dvc"]
    assert len(world.our_comments()) == 1


def test_comment_label_keeps_a_separate_sticky_comment(world: PrWorld) -> None:
    world.step()
    world.step({"comment-label": "nightly", "comment": "always"})
    bodies = [c.body for c in world.github.comments("octo", "data", PR)]
    assert sum(MARKER in b for b in bodies) == 1
    assert sum("<!-- dvc-multiremote:nightly -->" in b for b in bodies) == 1
    assert world.step({"comment": "never"}).code == 1
    assert world.github.count("POST") == 2


def test_shallow_checkout_fetches_the_base(world: PrWorld) -> None:
    clone = world.scratch / "shallow"
    origin = f"file://{world.project.root}"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "feature", origin, str(clone)],
        check=True,
    )
    assert (
        subprocess.run(
            ["git", "cat-file", "-e", world.base], cwd=clone, capture_output=True, check=False
        ).returncode
        != 0
    )
    step = world.step(workspace=clone)
    assert step.code == 1, step.stdout + step.stderr
    assert "fetched" in step.stdout
    assert [o["path"] for o in step.report["outputs"]] == ["data/labels"]


def test_shallow_checkout_that_cannot_fetch_says_how_to_fix_it(world: PrWorld) -> None:
    clone = world.scratch / "shallow"
    origin = f"file://{world.project.root}"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "feature", origin, str(clone)],
        check=True,
    )
    subprocess.run(
        ["git", "remote", "set-url", "origin", str(world.scratch / "gone")], cwd=clone, check=True
    )
    step = world.step(workspace=clone)
    assert step.code == 2
    _no_traceback(step)
    error = step.annotations("error")[0]
    assert error.properties["title"] == "Pull request commits unavailable"
    assert "fetch-depth: 0" in error.message
    assert world.dagshub.requests == []


def test_a_shallow_checkout_by_checkout_v6_fetches_with_its_token_and_no_git_binary(
    world: PrWorld,
) -> None:
    """actions/checkout v6 keeps the token's header in a file under $RUNNER_TEMP that the
    checkout's .git/config includes for its own git directory; the image has no git."""
    hosted = world.scratch / "github"
    hosted.mkdir(parents=True)
    bare = hosted / "data.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(world.project.root), str(bare)], check=True)
    clone = (world.scratch / "shallow").resolve()
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{bare}", str(clone)],
        check=True,
    )
    with GitHost(hosted, GIT_TOKEN) as github:
        subprocess.run(
            ["git", "remote", "set-url", "origin", github.url("data")], cwd=clone, check=True
        )
        credentials = world.scratch / "runner_temp" / "git-credentials-5f1c.config"
        credentials.parent.mkdir()
        header = "AUTHORIZATION: basic " + github.authorization.split()[1]
        subprocess.run(
            [
                "git",
                "config",
                "-f",
                str(credentials),
                f"http.{github.base_url}/.extraheader",
                header,
            ],
            check=True,
        )
        subprocess.run(
            ["git", "config", f"includeIf.gitdir:{clone}/.git.path", str(credentials)],
            cwd=clone,
            check=True,
        )
        no_git = world.scratch / "bin-without-git"
        no_git.mkdir()
        step = world.step(workspace=clone, env={"PATH": str(no_git)})
        asked = github.log.snapshot()
    assert step.code == 1, step.stdout + step.stderr
    assert "fetched" in step.stdout
    assert [o["path"] for o in step.report["outputs"]] == ["data/labels"]
    assert asked
    assert all((r.authorization or "").lower() == github.authorization.lower() for r in asked)
    token_forms = [GIT_TOKEN, github.authorization.split()[1]]
    for text in (step.stdout, step.stderr, step.summary, json.dumps(step.outputs)):
        assert not [form for form in token_forms if form in text]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files away needs root, as in the container")
def test_files_written_into_the_workspace_go_back_to_the_checkout_owner(world: PrWorld) -> None:
    owner = 4321
    for path in [world.project.root, *world.project.root.rglob("*")]:
        os.lchown(path, owner, owner)
    # What the image's `git config --system --add safe.directory '*'` does in the container.
    gitconfig = world.scratch / "gitconfig"
    gitconfig.parent.mkdir(parents=True, exist_ok=True)
    gitconfig.write_text("[safe]\n\tdirectory = *\n")
    step = world.step(env={"GIT_CONFIG_GLOBAL": str(gitconfig)})
    assert step.code == 1, step.stdout + step.stderr
    report = world.project.root / step.outputs["report"]
    assert report.stat().st_uid == owner
    assert report.parent.stat().st_uid == owner
    root_owned = [p for p in world.project.root.rglob("*") if p.lstat().st_uid == 0]
    assert root_owned == []


# --- pure pieces ---------------------------------------------------------------------------------
def test_input_defaults_come_from_action_yml(monkeypatch: pytest.MonkeyPatch) -> None:
    from dvc_multiremote.action.inputs import ActionInputs, input_name
    from dvc_multiremote.action.publish import ActionOutputs

    spec = action_spec()
    assert set(spec["inputs"]) == {input_name(name) for name in ActionInputs.model_fields}
    assert spec["inputs"]["command"]["required"] is True
    assert "default" not in spec["inputs"]["command"]
    assert set(spec["outputs"]) == set(ActionOutputs.failed(0).as_dict())
    for name in list(os.environ):
        if name.startswith("INPUT_"):
            monkeypatch.delenv(name)
    for name, value in input_env({**input_defaults("tok"), "command": "verify"}).items():
        monkeypatch.setenv(name, value)
    from_yaml = ActionInputs().model_dump()
    for name in list(os.environ):
        if name.startswith("INPUT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("INPUT_COMMAND", "verify")
    monkeypatch.setenv("INPUT_GITHUB-TOKEN", "tok")
    assert from_yaml == ActionInputs().model_dump()


def test_comment_marker_and_body_limit() -> None:
    from dvc_multiremote.action.comment import MAX_BODY, CommentMarker, fit_body

    marker = CommentMarker("verify")
    assert marker.render() == "<!-- dvc-multiremote:verify -->"
    assert marker.found_in("text\n<!-- dvc-multiremote:verify -->\nmore")
    assert not marker.found_in("<!-- dvc-multiremote:verify-nightly -->")
    assert not marker.found_in(None)
    with pytest.raises(ValueError, match=r"may hold only \[a-z0-9-\]"):
        CommentMarker("Bad Label")
    rows = "\n".join(f"| `data/f{n:06d}.bin` | {'x' * 80} |" for n in range(5000))
    body = f"{marker.render()}\n<details>\n\n```sh\n{rows}\n```\n\n</details>\n"
    fitted = fit_body(body)
    assert len(fitted) < MAX_BODY
    assert fitted.count("```") % 2 == 0
    assert fitted.count("<details>") == fitted.count("</details>")
    assert "more characters cut" in fitted
    assert fit_body("short") == "short"


def test_annotations_are_escaped_and_capped(capsys: pytest.CaptureFixture[str]) -> None:
    from dvc_multiremote.action.runner import MAX_ANNOTATIONS, Annotation, annotate_all

    one = Annotation("error", "50% done\nnext: line", "Missing on a,b", "dir/x.dvc", 3)
    assert (
        one.render()
        == "::error file=dir/x.dvc,line=3,title=Missing on a%2Cb::50%25 done%0Anext: line"
    )
    assert Annotation("warning", "m").render() == "::warning::m"
    annotate_all([one] * (MAX_ANNOTATIONS + 7), overflow_title="More")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == MAX_ANNOTATIONS + 1
    assert lines[-1].startswith("::error title=More::7 more")


# --- every command goes through the same wiring ----------------------------------------------------
def test_pull_falls_back_to_dagshub_when_b2_hits_its_cap(world: PrWorld) -> None:
    world.push_labels_to_dagshub()
    clone = world.scratch / "clone"
    subprocess.run(["git", "clone", "-q", str(world.project.root), str(clone)], check=True)
    world.b2.set_fault(Fault("b2_cap"))
    step = world.step(
        {"command": "pull", "remotes": "backblaze,dagshub"},
        event={"ref": "refs/heads/feature"},
        event_name="push",
        workspace=clone,
    )
    assert step.code == 0, step.stdout + step.stderr
    everything = IMAGES + 1 + 1 + LABELS + 1  # files, manifests, model.bin
    assert step.outputs["remotes-used"] == "dagshub"
    assert step.outputs["transferred-count"] == str(everything)
    assert int(step.outputs["transferred-bytes"]) > 20_000
    assert len(list((clone / "data" / "labels").glob("*.bin"))) == LABELS
    assert world.github.requests == []


def test_push_fills_the_remote_that_lacks_data(world: PrWorld) -> None:
    step = world.step({"command": "push"}, event={"ref": "refs/heads/feature"}, event_name="push")
    assert step.code == 0, step.stdout + step.stderr
    assert step.outputs["transferred-count"] == str(LABELS + 1)
    assert step.outputs["remotes-used"] == "backblaze,dagshub"
    assert world.step({}, event={"ref": "refs/heads/feature"}, event_name="push").code == 0


def test_sync_copies_what_dagshub_lacks_within_the_budget(world: PrWorld) -> None:
    step = world.step(
        {"command": "sync", "budget": "backblaze=1GB", "dry-run": "true"},
        event={"ref": "refs/heads/feature"},
        event_name="push",
    )
    assert step.code == 0, step.stdout + step.stderr
    assert step.outputs["transferred-count"] == str(LABELS + 1)  # would be copied
    assert world.step({}, event={}, event_name="push").code == 1  # nothing was copied
    step = world.step(
        {"command": "sync", "budget": "backblaze=1GB"}, event={}, event_name="workflow_dispatch"
    )
    assert step.code == 0, step.stdout + step.stderr
    assert step.outputs["transferred-count"] == str(LABELS + 1)
    assert world.step({}, event={}, event_name="push").code == 0
