"""``dvc-multiremote``: parse the command line, run one command, render its report, exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pydantic import ValidationError

from dvc_multiremote import __version__
from dvc_multiremote.commands import run_command
from dvc_multiremote.errors import ExitCode, MultiremoteError, UsageError
from dvc_multiremote.logs import configure_logging
from dvc_multiremote.redact import Redactor
from dvc_multiremote.settings import Credentials, Settings
from dvc_multiremote.signals import sigterm_raises
from dvc_multiremote.verdict import Verdict, judge

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dvc_multiremote.report import Report

PROG = "dvc-multiremote"


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one sentence and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(_sentence(message) + f" See `{PROG} --help`.")


def _sentence(message: str) -> str:
    message = message.strip()
    message = message[0].upper() + message[1:] if message else "Invalid arguments"
    return message if message.endswith(".") else message + "."


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return number


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="json_path", type=Path, metavar="PATH", help="write the JSON report"
    )
    parser.add_argument(
        "--markdown",
        dest="markdown_path",
        type=Path,
        metavar="PATH",
        help="write the Markdown report",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, default=Path("."), help="DVC project (default: .)")
    parser.add_argument(
        "-r",
        "--remotes",
        metavar="NAME[,NAME...]",
        help="remotes in order (default: the default remote, then the others as configured)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="parallel requests per remote (default: 32 transfers, 64 checks)",
    )
    _report_options(parser)
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="say more")
    loud.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help=".dvc files, outputs or stages"
    )


def _streams(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--streams",
        type=_positive_int,
        metavar="N",
        help="ranged GETs at once per large object, within --jobs (default: 8)",
    )
    parser.add_argument(
        "--streams-cutoff",
        metavar="SIZE",
        help="objects from this size (16MiB at least) come as --streams ranges (default: 64MiB)",
    )


def _scope(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--rev", metavar="REV", help="what that commit references")
    scope.add_argument("--range", metavar="BASE..HEAD", help="what HEAD adds over the merge-base")
    scope.add_argument(
        "--all-commits", action="store_true", help="every commit of every branch and tag"
    )
    parser.add_argument(
        "--shard", metavar="I/N", help="only objects whose md5 falls in shard I of N"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Keep a DVC project's data safe and reachable on several remotes at once.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    verify = commands.add_parser(
        "verify", help="check that every referenced object is on every remote"
    )
    _common(verify)
    _scope(verify)
    verify.add_argument(
        "--storage-limit",
        action="append",
        metavar="NAME=SIZE",
        help="warn when a listed remote stores more than 90%% of SIZE (e.g. backblaze=10GB)",
    )

    pull = commands.add_parser(
        "pull", help="fetch each object from the first remote that has it, then check out"
    )
    _common(pull)
    _streams(pull)
    push = commands.add_parser("push", help="push what the cache holds to every remote at once")
    _common(push)
    _streams(push)

    sync = commands.add_parser(
        "sync", help="copy what each remote lacks from a remote that has it, within budgets"
    )
    _common(sync)
    _streams(sync)
    _scope(sync)
    sync.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sync.add_argument(
        "--budget",
        action="append",
        metavar="NAME=SIZE",
        help="cap the bytes downloaded from a remote in this run (e.g. backblaze=1GB)",
    )
    sync.add_argument(
        "--prefer-source",
        metavar="NAME[,NAME...]",
        help="sources to spend first (default: remotes without a --budget)",
    )

    merge = commands.add_parser(
        "merge-reports", help="merge the JSON reports of a sharded verify or sync into one"
    )
    _report_options(merge)
    merge.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    merge.add_argument(
        "targets", nargs="+", metavar="REPORT", help="JSON reports (--json) of each shard"
    )

    demo = commands.add_parser("demo", help="a self-contained tour on a temporary project")
    _common(demo)
    demo.add_argument(
        "--keep", type=Path, metavar="DIR", help="build the demo project in DIR and keep it"
    )
    return parser


def parse_settings(argv: Sequence[str]) -> Settings:
    """Settings from the command line (credentials come from the environment)."""
    args = build_parser().parse_args(list(argv))
    values = {k: v for k, v in vars(args).items() if v is not None}
    try:
        return Settings(**values, credentials=Credentials())
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "input"
        raise UsageError(f"{name}: {first['msg']}.") from None


def finish(report: Report, settings: Settings, redactor: Redactor) -> int:
    """Judge a command's result once, render it, and return the exit code."""
    verdict = judge(report)
    emit(report, verdict, settings, redactor)
    return int(verdict.code)


def emit(report: Report, verdict: Verdict, settings: Settings, redactor: Redactor) -> None:
    """Print the report and write the files asked for, with every secret value removed."""
    from dvc_multiremote.render import to_markdown, to_text

    if settings.json_path:
        settings.json_path.parent.mkdir(parents=True, exist_ok=True)
        settings.json_path.write_text(redactor.json(report.to_dict(verdict)), encoding="utf-8")
    if settings.markdown_path:
        settings.markdown_path.parent.mkdir(parents=True, exist_ok=True)
        settings.markdown_path.write_text(redactor(to_markdown(report, verdict)), encoding="utf-8")
    if not settings.quiet and report.command != "demo":
        sys.stdout.write(redactor(to_text(report, verdict, verbose=settings.verbose)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    with sigterm_raises():
        return _main(sys.argv[1:] if argv is None else argv)


def _main(argv: Sequence[str]) -> int:
    redactor = Redactor.from_credentials(None)
    settings: Settings | None = None
    try:
        redactor = Redactor.from_credentials(Credentials())
        settings = parse_settings(argv)
        configure_logging(
            redactor, verbose=settings.verbose, quiet=settings.quiet, timed=settings.verbose
        )
        return finish(run_command(settings), settings, redactor)
    except MultiremoteError as exc:
        sys.stderr.write(redactor(f"{PROG}: error: {exc.render()}\n"))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else ExitCode.USAGE
        return int(code)
    except Exception as exc:  # noqa: BLE001 - the one place where the unexpected is rendered
        if settings is not None and settings.verbose:
            import traceback

            sys.stderr.write(redactor(traceback.format_exc()))
        sys.stderr.write(redactor(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}\n"))
        return int(ExitCode.REMOTE)
