"""The GitHub Action's main: inputs -> settings -> ``run_command`` -> outputs, summary, annotations,
PR comment, exit code. Every message here is rendered from typed results, never from logs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from dvc_multiremote import runner
from dvc_multiremote.action_inputs import (
    ActionInputs,
    InputProblem,
    InvalidInputs,
    read_inputs,
)
from dvc_multiremote.errors import ExitCode, MultiremoteError, worst
from dvc_multiremote.pr_scope import PR_EVENTS, PullRequest, RemoteChange
from dvc_multiremote.redact import Redactor
from dvc_multiremote.report import OutputReport, Report
from dvc_multiremote.settings import Credentials, Settings

log = logging.getLogger(__name__)

REPORT_DIR = ".dvc-multiremote"
_TOKEN_VARIABLES = ("INPUT_GITHUB-TOKEN", "INPUT_GITHUB_TOKEN")

# --- messages: the cause, the fix, where to read more -------------------------------------------
FORK_NOTE = (
    "This pull request comes from the fork `{fork}`, and GitHub gives workflows run for forks no "
    "secrets: DAGSHUB_TOKEN, B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and DVC_REMOTE_* were "
    "empty. {unchecked} Everything that could be checked without credentials was checked, and "
    "only that decides this run's result. The full check runs once the change is merged, or when "
    "a maintainer pushes the branch to this repository."
)
FORK_UNCHECKED = (
    "These remotes refused to answer without credentials and were not checked: {names}."
)
FORK_ALL_CHECKED = "Every remote answered without credentials."
CHANGED_REMOTE = (
    "The {change}. Its credentials were withheld and it was not contacted: a pull request must "
    "not be able to send this repository's secrets to a server of its choosing. If the change is "
    "intended, merge it first; the check then runs against the new address."
)
COMMENT_FORBIDDEN = (
    "Could not comment on pull request #{number}: GitHub answered 403 ({detail}). The token cannot "
    "write comments here: on pull requests from forks GitHub makes it read-only; otherwise give "
    "the job `permissions: pull-requests: write`. The results are in this job's summary, and the "
    "job's result does not depend on the comment."
)
COMMENT_FAILED = (
    "Could not comment on pull request #{number}: {detail}. The results are in this job's "
    "summary, and the job's result does not depend on the comment."
)
COMMENT_UNAUTHENTICATED = (
    "No comment on pull request #{number}: the `github-token` input is empty. Leave it at its "
    "default (`${{{{ github.token }}}}`) or pass a token that may write pull-request comments."
)
COMMENT_NO_PR = (
    "`comment: always`, but this {event} event concerns no pull request, so there is nothing to "
    "comment on."
)
NOT_A_PROJECT = (
    "Input `working-directory` ({path}) is not in a DVC project (no .dvc directory at or above "
    "it); check the repository out first (actions/checkout) or point working-directory at it."
)
SCOPE_NEEDS_PR = (
    "Input `scope` is pr, but this run was triggered by a {event} event, which has no pull "
    "request; use auto, workspace or all-commits."
)


# --- the runner's environment ------------------------------------------------------------------
@dataclass(frozen=True)
class RunnerEnv:
    """What the runner tells a step through ``GITHUB_*`` variables."""

    event_name: str
    event: dict[str, Any]
    workspace: Path
    in_runner: bool
    api_url: str
    server_url: str
    repository: str
    run_id: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunnerEnv:
        from dvc_multiremote.pr_scope import load_event

        workspace = environ.get("GITHUB_WORKSPACE")
        return cls(
            event_name=environ.get("GITHUB_EVENT_NAME", ""),
            event=load_event(environ.get("GITHUB_EVENT_PATH")),
            workspace=Path(workspace) if workspace else Path.cwd(),
            in_runner=bool(workspace),
            api_url=environ.get("GITHUB_API_URL") or "https://api.github.com",
            server_url=environ.get("GITHUB_SERVER_URL") or "https://github.com",
            repository=environ.get("GITHUB_REPOSITORY", ""),
            run_id=environ.get("GITHUB_RUN_ID", ""),
        )

    @property
    def is_pr_event(self) -> bool:
        return self.event_name in PR_EVENTS

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"


# --- outputs -----------------------------------------------------------------------------------
class ActionOutputs(NamedTuple):
    """Every output ``action.yml`` declares; written all at once or not at all."""

    ok: bool
    exit_code: int
    missing_count: int | None
    remotes_used: list[str]
    transferred_count: int | None
    transferred_bytes: int | None
    report: str

    @classmethod
    def failed(cls, code: int, report: str = "") -> ActionOutputs:
        """Outputs of a run that stopped before it had a report (counts unknown)."""
        return cls(False, code, None, [], None, None, report)

    def as_dict(self) -> dict[str, str]:
        def text(value: int | None) -> str:
            return "" if value is None else str(value)

        return {
            "ok": "true" if self.ok else "false",
            "exit-code": str(self.exit_code),
            "missing-count": text(self.missing_count),
            "remotes-used": ",".join(self.remotes_used),
            "transferred-count": text(self.transferred_count),
            "transferred-bytes": text(self.transferred_bytes),
            "report": self.report,
        }


class Verdict(NamedTuple):
    """The command's exit code as this run judges it, and what the step exits with."""

    code: int
    step_code: int
    excused: list[str]


@dataclass
class RunContext:
    """What the run learnt before the command ran: PR, withheld remotes, notes for people."""

    inputs: ActionInputs
    dvc_root: Path
    git_root: Path | None
    pull_request: PullRequest | None = None
    changes: list[RemoteChange] = field(default_factory=list)
    fork_without_secrets: bool = False
    notes: list[str] = field(default_factory=list)


# --- the pieces ----------------------------------------------------------------------------------
def secret_values(creds: Credentials, token: str | None) -> list[str]:
    """Every value to mask: credentials, the token, and the basic-auth form DagsHub receives."""
    values = list(creds.secret_values())
    if token:
        values.append(token)
    if creds.dagshub_token is not None:
        password = creds.dagshub_token.get_secret_value()
        user = creds.dagshub_user.get_secret_value() if creds.dagshub_user else password
        values += runner.basic_auth_forms(user, password)
    return [value for value in dict.fromkeys(values) if value]


def _raw_token(environ: Mapping[str, str]) -> str | None:
    for name in _TOKEN_VARIABLES:
        if environ.get(name):
            return environ[name].strip()
    return None


def _configure_logging(redact: Redactor, verbose: bool) -> None:
    class _Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Redacting("%(levelname)s: %(message)s"))
    if not verbose:
        handler.addFilter(lambda record: record.name.startswith("dvc_multiremote"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def check_inputs(inputs: ActionInputs, env: RunnerEnv) -> tuple[Path, list[InputProblem]]:
    """What the inputs say against this run: the project exists, remotes exist, PR scope fits."""
    from dvc_multiremote.project import find_root

    problems: list[InputProblem] = []
    if inputs.dry_run and inputs.command != "sync":
        # Never let a user who asked for a dry run get a real pull or push.
        problems.append(
            InputProblem(
                "dry-run",
                f"Input `dry-run` applies to `sync` only; `{inputs.command}` has no dry run.",
            )
        )
    if inputs.scope == "pr" and not env.is_pr_event:
        problems.append(
            InputProblem("scope", SCOPE_NEEDS_PR.format(event=env.event_name or "non-GitHub"))
        )
    workdir = inputs.working_directory
    if not workdir.is_dir():
        problems.append(
            InputProblem(
                "working-directory",
                f"Input `working-directory` ({workdir}) is not a directory in the workspace.",
            )
        )
        return workdir, problems
    try:
        dvc_root = find_root(workdir)
    except MultiremoteError:
        problems.append(InputProblem("working-directory", NOT_A_PROJECT.format(path=workdir)))
        return workdir, problems
    configured = _configured_remote_names(dvc_root)
    if configured is not None:
        for name_of_input, names in (
            ("remotes", inputs.remotes),
            ("prefer-source", inputs.prefer_source),
            ("budget", inputs.budget_names),
        ):
            unknown = [name for name in names if name not in configured]
            if unknown:
                problems.append(
                    InputProblem(
                        name_of_input,
                        f"Input `{name_of_input}` names {unknown[0]!r}, which is not a remote of "
                        f"this DVC project; its remotes are: {', '.join(configured) or 'none'}.",
                    )
                )
    return dvc_root, problems


def _configured_remote_names(dvc_root: Path) -> list[str] | None:
    from dvc.config import Config, ConfigError

    from dvc_multiremote.remotes import configured_remotes

    try:
        config = Config(dvc_dir=str(dvc_root / ".dvc"))
    except ConfigError:
        return None  # the command itself reports an invalid config
    return [spec.name for spec in configured_remotes(config)]


def prepare_pull_request(ctx: RunContext, env: RunnerEnv, creds: Credentials) -> list[str]:
    """Fetch what a PR run needs and find re-pointed remotes; returns log lines."""
    from dvc_multiremote.pr_scope import (
        PullRequestError,
        changed_remotes,
        ensure_commits,
        pull_request_from,
    )

    pr = pull_request_from(env.event)
    if pr is None:
        raise PullRequestError(
            f"This {env.event_name} event's payload names no pull request base and head commit.",
            fix="Run the action on a pull_request event, or set `scope: workspace`.",
        )
    ctx.pull_request = pr
    if ctx.git_root is None:
        raise PullRequestError(
            f"{ctx.dvc_root} is not in a git checkout, so pull request #{pr.number} cannot be "
            "compared with its base.",
            fix="Check the repository out with actions/checkout before this step.",
        )
    lines = [f"pull request #{pr.number}: base {pr.base_sha[:12]}, head {pr.head_sha[:12]}"]
    lines += ensure_commits(ctx.git_root, pr)
    ctx.changes = changed_remotes(ctx.git_root, ctx.dvc_root, pr.base_sha)
    ctx.fork_without_secrets = pr.is_fork and not creds.secret_values()
    if pr.is_fork:
        lines.append(f"opened from the fork {pr.head_repo or '(deleted)'}")
    return lines


def resolve_scope(inputs: ActionInputs, env: RunnerEnv) -> str:
    """``auto`` is ``pr`` for ``verify`` on pull-request events, else ``workspace``.

    ``pull``, ``push`` and ``sync`` act on the checkout, so ``auto`` keeps them on the workspace.
    """
    if inputs.scope == "auto":
        return "pr" if env.is_pr_event and inputs.command == "verify" else "workspace"
    return inputs.scope


def build_settings(
    ctx: RunContext, env: RunnerEnv, creds: Credentials, report_path: Path
) -> Settings:
    """The library's Settings for this run (changed remotes left out)."""
    inputs = ctx.inputs
    scope = resolve_scope(inputs, env)
    remotes: list[str] | None = inputs.remotes or None
    if ctx.changes:
        withheld = {change.remote for change in ctx.changes}
        names = inputs.remotes or (_configured_remote_names(ctx.dvc_root) or [])
        remotes = [name for name in names if name not in withheld]
    return Settings(
        command=inputs.command,
        repo=ctx.dvc_root,
        remotes=remotes,
        jobs=inputs.jobs,
        json_path=report_path,
        verbose=inputs.verbose,
        targets=inputs.targets,
        range=ctx.pull_request.range if scope == "pr" and ctx.pull_request else None,
        all_commits=scope == "all-commits",
        dry_run=inputs.dry_run,
        budget=inputs.budget,
        prefer_source=inputs.prefer_source or None,
        shard=inputs.shard,
        credentials=creds,
    )


def judge(report: Report, ctx: RunContext) -> Verdict:
    """The exit code: the report's, less remotes a fork could not reach, plus withheld remotes."""
    code = ExitCode(report.exit_code)
    excused: list[str] = []
    if ctx.fork_without_secrets:
        excused = [r.name for r in report.remotes if r.state == "auth"]
    if excused:
        codes = [ExitCode.OK]
        if code == ExitCode.USAGE:
            codes.append(ExitCode.USAGE)
        if any(r.state not in ("ok", "missing") and r.name not in excused for r in report.remotes):
            codes.append(ExitCode.REMOTE)
        if report.missing or any(out.reason for out in report.outputs):
            codes.append(ExitCode.DATA)
        code = worst(*codes)
    if ctx.changes:
        code = worst(code, ExitCode.USAGE)
    step = ExitCode.OK if code == ExitCode.DATA and not ctx.inputs.fail_on_missing else code
    return Verdict(int(code), int(step), excused)


def transferred(report: Report) -> tuple[int, int]:
    """Objects and bytes moved: pulled (served by remotes), pushed, or copied by ``sync``.

    A dry run counts what it would move.
    """
    if report.pairs is not None:
        return (
            sum(pair.objects_copied for pair in report.pairs),
            sum(pair.bytes_copied for pair in report.pairs),
        )
    objects = sum((r.objects_served or 0) + (r.objects_pushed or 0) for r in report.remotes)
    size = sum((r.bytes_served or 0) + (r.bytes_pushed or 0) for r in report.remotes)
    return objects, size


def outputs_for(report: Report, verdict: Verdict, report_rel: str) -> ActionOutputs:
    objects, size = transferred(report)
    # pull names the remotes that served data (the fallback shows); the others every remote.
    used = report.remotes_used if report.remotes_used is not None else None
    return ActionOutputs(
        ok=report.ok and verdict.code == ExitCode.OK,
        exit_code=verdict.code,
        missing_count=len(report.missing),
        remotes_used=used if used is not None else [r.name for r in report.remotes],
        transferred_count=objects,
        transferred_bytes=size,
        report=report_rel,
    )


def annotations_for(report: Report, prefix: str, level: runner.Level) -> list[runner.Annotation]:
    """One annotation per output with missing data, at the line of its md5."""
    found = []
    for out in report.outputs_with_gaps:
        parts = []
        for remote in out.missing:
            what = f"{out.describe_gap(remote)} of {out.path}" if out.is_dir else out.path
            if report.command == "pull":
                parts.append(f"{what} could be pulled from no remote")
            elif report.command == "push":
                parts.append(f"{what} could not be pushed to {remote}")
            else:
                parts.append(f"{what} {'are' if out.is_dir else 'is'} missing on {remote}")
        if out.reason:
            parts.append(f"{out.path}: {out.reason}")
        message = "; ".join(parts) + "."
        if out.fixes:
            message += " Fix: " + " ; ".join(out.fixes)
        found.append(
            runner.Annotation(
                level, message, _title(report.command, out), _join(prefix, out.dvc_file), out.line
            )
        )
    return found


def _title(command: str, out: OutputReport) -> str:
    remotes = ", ".join(out.missing)
    if command == "pull":
        return "Not pulled"
    if command == "push":
        return f"Not pushed to {remotes}" if remotes else "Not pushed"
    return f"Missing on {remotes}" if remotes else "Missing everywhere"


def _join(prefix: str, path: str) -> str:
    return path if prefix in ("", ".") else f"{prefix}/{path}"


def _status(report: Report, verdict: Verdict) -> str:
    if verdict.code == ExitCode.OK and not verdict.excused and report.ok:
        return "✅ all data in place"
    if verdict.code == ExitCode.OK:
        return "✅ all checked data in place"
    if verdict.code == ExitCode.DATA:
        return "❌ data missing"
    if verdict.code == ExitCode.USAGE:
        return "⛔ configuration problem"
    return "⚠️ not every remote could be checked"


def _alerts(notes: list[str]) -> list[str]:
    lines: list[str] = []
    for note in notes:
        lines += ["> [!WARNING]", f"> {note}", ""]
    return lines


def render_summary(report: Report, verdict: Verdict, ctx: RunContext, run_url: str | None) -> str:
    """The Markdown for the job summary and the PR comment."""
    from dvc_multiremote.render import to_markdown

    title = f"dvc-multiremote {report.command}: {_status(report, verdict)}"
    body = to_markdown(report, title=title)
    head, _, rest = body.partition("\n")
    lines = [head, "", *_alerts(ctx.notes)] if ctx.notes else [head]
    text = "\n".join(lines) + "\n" + rest
    footer = []
    if run_url:
        footer.append(f"[Workflow run]({run_url})")
    if ctx.pull_request is not None:
        footer.append(f"head {ctx.pull_request.head_sha[:12]}")
    if footer:
        text += "\n<sub>" + " · ".join(footer) + "</sub>\n"
    return text


def post_comment(ctx: RunContext, env: RunnerEnv, body: str, redact: Redactor) -> str | None:
    """Create or update the sticky comment; returns a warning sentence when that failed."""
    from dvc_multiremote.github_comment import CommentFailed, CommentMarker, upsert_comment
    from dvc_multiremote.pr_scope import pull_request_number

    inputs = ctx.inputs
    if inputs.comment == "never":
        return None
    number = (
        pull_request_number(env.event) if env.is_pr_event or inputs.comment == "always" else None
    )
    if number is None:
        if inputs.comment == "always":
            return COMMENT_NO_PR.format(event=env.event_name or "local")
        return None
    if inputs.github_token is None:
        return COMMENT_UNAUTHENTICATED.format(number=number)
    try:
        result = upsert_comment(
            api_url=env.api_url,
            token=inputs.github_token,
            repository=env.repository,
            number=number,
            marker=CommentMarker(inputs.label),
            body=redact(body),
        )
    except CommentFailed as exc:
        detail = redact(exc.message)
        if exc.status == 403:
            return COMMENT_FORBIDDEN.format(number=number, detail=detail)
        status = f"GitHub answered {exc.status} ({detail})" if exc.status else detail
        return COMMENT_FAILED.format(number=number, detail=status)
    runner.info(f"Comment {result.action}: {result.url}")
    return None


def trust_workspace() -> None:
    """Let libgit2 (DVC's pygit2) open a checkout that another user owns.

    The container runs as root on the runner user's checkout. The image tells git so with
    ``safe.directory '*'``; libgit2 keeps its own ownership check, switched off here alike.
    """
    try:
        import pygit2

        pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 0)
    except (ImportError, AttributeError, ValueError) as exc:
        log.debug("libgit2 ownership check left on: %s", exc)


def workspace_owner(workspace: Path) -> tuple[int, int] | None:
    """Owner of the checkout (its ``.git``), read before the container writes anything."""
    for candidate in (workspace / ".git", workspace):
        try:
            st = candidate.stat()
        except OSError:
            continue
        return st.st_uid, st.st_gid
    return None


def give_back(workspace: Path, owner: tuple[int, int] | None) -> int:
    """Give what this (root) process created in the workspace to the checkout's owner.

    The container runs as root; later steps run as the runner's user and must be able to
    change or delete what we wrote (reports, DVC's cache, pulled data, fetched git objects).
    """
    me = os.geteuid()
    if owner is None or me != 0 or owner[0] == me:
        return 0
    changed = 0
    for dirpath, dirnames, filenames in os.walk(workspace):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_uid == me:
                    os.lchown(path, *owner)
                    changed += 1
            except OSError:
                continue
    return changed


# --- main ------------------------------------------------------------------------------------
def fail(title: str, messages: list[str], code: int, report_rel: str = "") -> int:
    """The one failure path: annotations, summary, complete outputs, exit code."""
    for message in messages:
        runner.error(message, title)
    runner.append_summary(
        f"### ❌ dvc-multiremote: {title}\n\n" + "\n".join(f"- {m}" for m in messages)
    )
    runner.set_outputs(ActionOutputs.failed(code, report_rel).as_dict())
    return code


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the step; returns its exit code."""
    environ = os.environ if environ is None else environ
    env = RunnerEnv.from_environ(environ)
    owner = workspace_owner(env.workspace) if env.in_runner else None
    try:
        creds = Credentials()
    except ValidationError:
        creds = Credentials.model_construct()
    secrets = secret_values(creds, _raw_token(environ))
    runner.mask(secrets)
    redact = Redactor(tuple(sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)))
    _configure_logging(redact, verbose=False)
    if env.in_runner:
        trust_workspace()
    try:
        return _main(env, creds, redact)
    except InvalidInputs as exc:
        return fail("Invalid input", [p.message for p in exc.problems], ExitCode.USAGE)
    except MultiremoteError as exc:
        return fail(_title_of(exc), [redact(exc.render())], int(exc.exit_code))
    except KeyboardInterrupt:
        return fail("Interrupted", ["The step was cancelled."], 130)
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


def _main(env: RunnerEnv, creds: Credentials, redact: Redactor) -> int:
    from dvc_multiremote.commands import run_command
    from dvc_multiremote.pr_scope import git_toplevel
    from dvc_multiremote.render import to_text

    with runner.group("Inputs"):
        inputs = read_inputs()
        dvc_root, problems = check_inputs(inputs, env)
        if problems:
            raise InvalidInputs(problems)
        runner.info(_describe(inputs, env))
    _configure_logging(redact, inputs.verbose or runner.is_debug())
    ctx = RunContext(inputs, dvc_root, git_toplevel(dvc_root))
    if env.is_pr_event:
        with runner.group("Pull request"):
            for line in prepare_pull_request(ctx, env, creds):
                runner.info(line)
    for change in ctx.changes:
        message = CHANGED_REMOTE.format(change=change.describe())
        runner.error(message, f"Remote {change.remote} changed in this pull request")
        ctx.notes.append(message)

    report_rel = f"{REPORT_DIR}/{inputs.label}.json"
    report_path = env.workspace / report_rel
    report_path.parent.mkdir(parents=True, exist_ok=True)
    (report_path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    settings = build_settings(ctx, env, creds, report_path)
    if ctx.changes and not settings.remotes:
        return fail(
            "Remote changed in this pull request",
            ["No remote is left to check once the changed ones are withheld."],
            ExitCode.USAGE,
        )
    with runner.group(f"dvc-multiremote {inputs.command}"):
        report = run_command(settings)
        runner.info(redact(to_text(report, verbose=inputs.verbose)))
    report_path.write_text(redact.json(report.to_dict()), encoding="utf-8")

    verdict = judge(report, ctx)
    if ctx.fork_without_secrets and ctx.pull_request is not None:
        unchecked = (
            FORK_UNCHECKED.format(names=", ".join(verdict.excused))
            if verdict.excused
            else FORK_ALL_CHECKED
        )
        note = FORK_NOTE.format(fork=ctx.pull_request.head_repo, unchecked=unchecked)
        runner.warning(note, "No secrets on a pull request from a fork")
        ctx.notes.append(note)

    prefix = _annotation_prefix(ctx)
    level: runner.Level = "error" if inputs.fail_on_missing else "warning"
    runner.annotate_all(
        annotations_for(report, prefix, level), overflow_title="More outputs with missing data"
    )
    summary = render_summary(report, verdict, ctx, env.run_url)
    with runner.group("Pull request comment"):
        problem = post_comment(ctx, env, summary, redact)
    if problem:
        runner.warning(problem, "Pull request comment")
        ctx.notes.append(problem)
        summary = render_summary(report, verdict, ctx, env.run_url)
    runner.append_summary(redact(summary))
    runner.set_outputs(outputs_for(report, verdict, report_rel).as_dict())
    return verdict.step_code


def _title_of(exc: MultiremoteError) -> str:
    from dvc_multiremote.errors import UsageError
    from dvc_multiremote.pr_scope import PullRequestError

    if isinstance(exc, PullRequestError):
        return "Pull request commits unavailable"
    if isinstance(exc, UsageError):
        return "Configuration error"
    return "Remote error"


def _annotation_prefix(ctx: RunContext) -> str:
    if ctx.git_root is None:
        return ""
    try:
        return ctx.dvc_root.resolve().relative_to(ctx.git_root.resolve()).as_posix()
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
