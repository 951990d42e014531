"""The GitHub Action's main, a straight pipeline over values:
inputs -> pull-request context -> settings -> run -> verdict -> outputs, summary, annotations,
comment -> the step's exit code. Every message is rendered from typed results, never from logs.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from dvc_multiremote.action import runner
from dvc_multiremote.action.inputs import (
    WRITING_COMMANDS,
    ActionInputs,
    InvalidInputs,
    check_inputs,
    configured_remote_names,
    read_inputs,
)
from dvc_multiremote.action.publish import ActionOutputs
from dvc_multiremote.action.pull_request import PrContext, RunnerEnv
from dvc_multiremote.errors import ExitCode, MultiremoteError
from dvc_multiremote.logs import configure_logging
from dvc_multiremote.redact import Redactor, secret_values
from dvc_multiremote.settings import Credentials, Settings
from dvc_multiremote.signals import sigterm_raises

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from dvc_multiremote.report import Report
    from dvc_multiremote.verdict import Verdict

REPORT_DIR = ".dvc-multiremote"
_TOKEN_VARIABLES = ("INPUT_GITHUB-TOKEN", "INPUT_GITHUB_TOKEN")

# --- messages: the cause, the fix, where to read more -------------------------------------------
FORK_NOTE = (
    "This pull request comes from the fork `{fork}`, and GitHub gives workflows run for forks no "
    "secrets: DAGSHUB_TOKEN, B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and DVC_REMOTE_* were "
    "empty. {unchecked} The step's result is judged on what could be checked without "
    "credentials; its outputs (`ok`, `exit-code`) still say that not everything was. The full "
    "check runs once the change is merged, or when a maintainer pushes the branch to this "
    "repository."
)
FORK_UNCHECKED = (
    "These remotes refused to answer without credentials and were not checked: {names}."
)
FORK_ALL_CHECKED = "Every remote answered without credentials."
FORK_NEEDS_SECRETS = (
    "`{command}` did not run: this pull request comes from the fork `{fork}`, GitHub gives "
    "workflows run for forks no secrets, and `{command}` writes to the remotes, which needs them; "
    "run it on push events (after the merge) or with `command: verify` on pull requests."
)
CHANGED_REMOTE = (
    "The {change}. Its credentials were withheld and it was not contacted: a pull request must "
    "not be able to send this repository's secrets to a server of its choosing. If the change is "
    "intended, merge it first; the check then runs against the new address."
)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the step; returns its exit code."""
    from dvc_multiremote.action.workspace import give_back, trust_workspace, workspace_owner

    environ = os.environ if environ is None else environ
    env = RunnerEnv.from_environ(environ)
    owner = workspace_owner(env.workspace) if env.in_runner else None
    try:
        creds = Credentials()
    except ValidationError:
        creds = Credentials.model_construct()
    secrets = secret_values(creds, _raw_token(environ))
    runner.mask(secrets)
    redact = Redactor.of(secrets)
    configure_logging(redact)
    if env.in_runner:
        trust_workspace()
    try:
        with sigterm_raises():
            return _run(env, creds, redact)
    except InvalidInputs as exc:
        return fail("Invalid input", [p.message for p in exc.problems], ExitCode.USAGE)
    except MultiremoteError as exc:
        return fail(_title_of(exc), [redact(exc.render())], int(exc.exit_code))
    except KeyboardInterrupt:
        return fail("Interrupted", ["The step was cancelled."], 130)
    except SystemExit as exc:
        return fail("Interrupted", ["The step was stopped (SIGTERM)."], int(exc.code or 143))
    except Exception as exc:  # noqa: BLE001 - the one place where the unexpected is rendered
        if runner.is_debug():
            import traceback

            sys.stderr.write(redact(traceback.format_exc()))
        message = redact(f"{type(exc).__name__}: {exc}")
        return fail(
            "Unexpected error",
            [f"{message} (re-run with debug logging for the traceback, and report it)."],
            ExitCode.REMOTE,
        )
    finally:
        if env.in_runner:
            give_back(env.workspace, owner)


def _run(env: RunnerEnv, creds: Credentials, redact: Redactor) -> int:
    from dvc_multiremote.action.comment import post_comment
    from dvc_multiremote.action.publish import annotations_for, outputs_for, render_summary
    from dvc_multiremote.action.pull_request import git_toplevel, read_pull_request
    from dvc_multiremote.commands import run_command
    from dvc_multiremote.render import to_text
    from dvc_multiremote.verdict import judge

    with runner.group("Inputs"):
        inputs = read_inputs()
        dvc_root = check_inputs(inputs, env.event_name, env.is_pr_event)
        runner.info(_describe(inputs, env))
    debug = inputs.verbose or runner.is_debug()
    configure_logging(redact, verbose=debug, libraries=debug)
    git_root = git_toplevel(dvc_root)

    pr: PrContext | None = None
    if env.is_pr_event:
        with runner.group("Pull request"):
            pr = read_pull_request(env, dvc_root, git_root, has_secrets=bool(creds.secret_values()))
            for line in pr.log:
                runner.info(line)
    notes = _withheld_notes(pr)
    if pr is not None and pr.fork_without_secrets and inputs.command in WRITING_COMMANDS:
        fork = pr.pull_request.head_repo or "(deleted)"
        message = FORK_NEEDS_SECRETS.format(command=inputs.command, fork=fork)
        return fail("No secrets on a pull request from a fork", [message], ExitCode.REMOTE)

    report_rel = f"{REPORT_DIR}/{inputs.label}.json"
    report_path = env.workspace / report_rel
    settings = build_settings(inputs, env, dvc_root, pr, report_path, creds)
    if pr is not None and pr.changes and not settings.remotes:
        return fail(
            "Remote changed in this pull request",
            ["No remote is left to check once the changed ones are withheld."],
            ExitCode.USAGE,
        )
    with runner.group(f"dvc-multiremote {inputs.command}"):
        report = run_command(settings)
        verdict = judge(
            report, excused=_excused(report, inputs, pr), withheld=bool(pr and pr.changes)
        )
        runner.info(redact(to_text(report, verdict, verbose=inputs.verbose)))
    report_path.parent.mkdir(parents=True, exist_ok=True)
    (report_path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    report_path.write_text(redact.json(report.to_dict(verdict)), encoding="utf-8")

    if pr is not None and pr.fork_without_secrets:
        notes.append(_fork_note(pr, verdict))
    level: runner.Level = "error" if inputs.fail_on_missing else "warning"
    runner.annotate_all(
        annotations_for(report, _annotation_prefix(git_root, dvc_root), level),
        overflow_title="More outputs with missing data",
    )
    head = pr.pull_request.head_sha if pr is not None else None
    summary = render_summary(report, verdict, notes, env.run_url, head)
    with runner.group("Pull request comment"):
        problem = post_comment(inputs, env, summary, redact)
    if problem:
        runner.warning(problem, "Pull request comment")
        summary = render_summary(report, verdict, [*notes, problem], env.run_url, head)
    runner.append_summary(redact(summary))
    runner.set_outputs(outputs_for(report, verdict, report_rel).as_dict())
    return step_code(verdict, inputs, pr)


def step_code(verdict: Verdict, inputs: ActionInputs, pr: PrContext | None) -> int:
    """What the step exits with. The outputs always carry the verdict's own code; the step
    may succeed where the user asked it to: a fork's ``verify`` is judged on what could be
    checked (as documented), and ``fail-on-missing: false`` lets missing data pass."""
    code = verdict.checked_code if pr is not None and pr.fork_without_secrets else verdict.code
    if code == ExitCode.DATA and not inputs.fail_on_missing:
        return int(ExitCode.OK)
    return int(code)


def _excused(report: Report, inputs: ActionInputs, pr: PrContext | None) -> list[str]:
    """On a fork's pull request (no secrets), ``verify`` excuses remotes that refused it."""
    if pr is None or not pr.fork_without_secrets or inputs.command != "verify":
        return []
    return [r.name for r in report.remotes if r.state == "auth"]


def _fork_note(pr: PrContext, verdict: Verdict) -> str:
    names = ", ".join(verdict.excused)
    unchecked = FORK_UNCHECKED.format(names=names) if verdict.excused else FORK_ALL_CHECKED
    note = FORK_NOTE.format(fork=pr.pull_request.head_repo, unchecked=unchecked)
    runner.warning(note, "No secrets on a pull request from a fork")
    return note


def _withheld_notes(pr: PrContext | None) -> list[str]:
    """An error annotation for each remote the pull request re-pointed; their sentences."""
    notes = []
    for change in pr.changes if pr is not None else ():
        message = CHANGED_REMOTE.format(change=change.describe())
        runner.error(message, f"Remote {change.remote} changed in this pull request")
        notes.append(message)
    return notes


def resolve_scope(inputs: ActionInputs, env: RunnerEnv) -> str:
    """``auto`` is ``pr`` for ``verify`` on pull-request events, else ``workspace``.

    ``pull``, ``push`` and ``sync`` act on the checkout, so ``auto`` keeps them on the workspace.
    """
    if inputs.scope == "auto":
        return "pr" if env.is_pr_event and inputs.command == "verify" else "workspace"
    return inputs.scope


def build_settings(
    inputs: ActionInputs,
    env: RunnerEnv,
    dvc_root: Path,
    pr: PrContext | None,
    report_path: Path,
    creds: Credentials,
) -> Settings:
    """The library's Settings for this run (changed remotes left out)."""
    scope = resolve_scope(inputs, env)
    remotes: list[str] | None = inputs.remotes or None
    if pr is not None and pr.changes:
        withheld = {change.remote for change in pr.changes}
        names = inputs.remotes or (configured_remote_names(dvc_root) or [])
        remotes = [name for name in names if name not in withheld]
    return Settings(
        command=inputs.command,
        repo=dvc_root,
        remotes=remotes,
        jobs=inputs.jobs,
        **({"streams": inputs.streams} if inputs.streams else {}),
        **({"streams_cutoff": inputs.streams_cutoff} if inputs.streams_cutoff else {}),
        json_path=report_path,
        verbose=inputs.verbose,
        targets=inputs.targets,
        range=pr.pull_request.range if scope == "pr" and pr is not None else None,
        all_commits=scope == "all-commits",
        dry_run=inputs.dry_run,
        budget=inputs.budget,
        storage_limit=inputs.storage_limit,
        prefer_source=inputs.prefer_source or None,
        shard=inputs.shard,
        credentials=creds,
    )


def fail(title: str, messages: list[str], code: int, report_rel: str = "") -> int:
    """The one failure path: annotations, summary, complete outputs, exit code."""
    for message in messages:
        runner.error(message, title)
    runner.append_summary(
        f"### ❌ dvc-multiremote: {title}\n\n" + "\n".join(f"- {m}" for m in messages)
    )
    runner.set_outputs(ActionOutputs.failed(code, report_rel).as_dict())
    return code


def _raw_token(environ: Mapping[str, str]) -> str | None:
    for name in _TOKEN_VARIABLES:
        if environ.get(name):
            return environ[name].strip()
    return None


def _title_of(exc: MultiremoteError) -> str:
    from dvc_multiremote.action.pull_request import PullRequestError
    from dvc_multiremote.errors import UsageError

    if isinstance(exc, PullRequestError):
        return "Pull request commits unavailable"
    if isinstance(exc, UsageError):
        return "Configuration error"
    return "Remote error"


def _annotation_prefix(git_root: Path | None, dvc_root: Path) -> str:
    if git_root is None:
        return ""
    try:
        return dvc_root.resolve().relative_to(git_root.resolve()).as_posix()
    except ValueError:
        return ""


def _describe(inputs: ActionInputs, env: RunnerEnv) -> str:
    scope = resolve_scope(inputs, env)
    remotes = ", ".join(inputs.remotes) or "all configured"
    extra = f", targets: {', '.join(inputs.targets)}" if inputs.targets else ""
    return (
        f"command: {inputs.command}; remotes: {remotes}; scope: {scope}{extra}; "
        f"comment: {inputs.comment}; fail-on-missing: {str(inputs.fail_on_missing).lower()}"
    )
