"""One verdict: for every command and every mix of remote states, the JSON report's
``exit_code``, the CLI's exit status and the Action's ``exit-code`` output are one number."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING

import pytest

from dvc_multiremote.action.publish import outputs_for, status
from dvc_multiremote.cli import finish
from dvc_multiremote.redact import Redactor
from dvc_multiremote.render import headline
from dvc_multiremote.report import (
    MissingObject,
    PairReport,
    PullReport,
    PushReport,
    RemoteReport,
    Report,
    SyncReport,
    VerifyReport,
)
from dvc_multiremote.settings import Settings
from dvc_multiremote.verdict import judge

if TYPE_CHECKING:
    from pathlib import Path

STATES = ("ok", "missing", "auth", "unreachable", "cap-exceeded")
USABLE = ("ok", "missing")
NAMES = ("backblaze", "dagshub")
TOTAL = 10
LACKING = 3  # objects a remote in state "missing" lacks
GAP = [MissingObject(f"{n:032x}", f"data/{n}", 1, []) for n in range(LACKING)]


def _remote(name: str, state: str) -> RemoteReport:
    message = "" if state in USABLE else f"{state} (as the server said)"
    return RemoteReport(name, f"s3://{name}", state, message)


def _gap(on: list[str]) -> list[MissingObject]:
    return [MissingObject(m.md5, m.path, m.size, on) for m in GAP]


def report_of(command: str, states: dict[str, str]) -> tuple[Report, int]:
    """The report a run with these remote states gives, and the exit code the rules promise."""
    remotes = [_remote(name, state) for name, state in states.items()]
    usable = [n for n, s in states.items() if s in USABLE]
    complete = [n for n, s in states.items() if s == "ok"]
    lacking = [n for n, s in states.items() if s == "missing"]
    broken = len(usable) < len(states)
    if command == "verify":
        for r in remotes:
            if r.state in USABLE:
                r.objects_missing = LACKING if r.state == "missing" else 0
        verify = VerifyReport(
            command="verify", remotes=remotes, missing=_gap(lacking) if lacking else []
        )
        return verify, 3 if broken else 1 if lacking else 0
    if command == "pull":
        # Every object comes from the first remote that has it; a lacking remote lacks 3.
        short = [] if complete else _gap(lacking) if lacking else _gap([])
        used = complete[:1] or lacking[:1]
        pull = PullReport(command="pull", remotes=remotes, missing=short, remotes_used=used)
        return pull, 0 if complete else 1 if lacking else 3
    if command == "push":
        return PushReport(command="push", remotes=remotes), 3 if broken else 0
    # sync: what a lacking remote lacks comes from a complete one, if any is usable.
    pairs = [PairReport(complete[0], n, LACKING, LACKING) for n in lacking] if complete else []
    unavailable = _gap(lacking) if lacking and not complete else []
    sync = SyncReport(command="sync", remotes=remotes, pairs=pairs, unavailable=unavailable)
    return sync, 3 if broken else 1 if unavailable else 0


CASES = [
    (command, dict(zip(NAMES, states, strict=True)))
    for command in ("verify", "pull", "push", "sync")
    for states in itertools.product(STATES, repeat=2)
]


@pytest.mark.parametrize(
    ("command", "states"), CASES, ids=[f"{c}-{'-'.join(s.values())}" for c, s in CASES]
)
def test_report_cli_and_action_agree_on_the_exit_code(
    command: str, states: dict[str, str], tmp_path: Path
) -> None:
    report, expected = report_of(command, states)
    report.totals = {"objects": TOTAL}
    json_path = tmp_path / "report.json"
    settings = Settings(command=command, json_path=json_path, quiet=True)
    cli_status = finish(report, settings, Redactor())
    written = json.loads(json_path.read_text())
    verdict = judge(report)
    action = outputs_for(report, verdict, "report.json").as_dict()
    assert cli_status == written["exit_code"] == int(action["exit-code"]) == expected
    assert written["ok"] is (expected == 0) and action["ok"] == str(expected == 0).lower()
    # No sentence claims that all is well unless every remote was checked.
    unusable = [n for n, s in states.items() if s not in USABLE]
    title, sentence = status(report, verdict), headline(report, verdict)
    for name in unusable:
        if command != "pull" or expected:
            assert name in title, title
        if command != "pull":
            assert name in sentence, sentence
    if unusable:
        assert "every remote" not in sentence, sentence
    if expected:
        assert "✅" not in title
