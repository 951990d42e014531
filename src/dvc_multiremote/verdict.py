"""The one verdict: every command's result becomes an exit code here and nowhere else.

The report, the console text, the Markdown, the Action's outputs, its title and its annotations
all read the ``Verdict``; none of them works the exit code out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvc_multiremote.errors import ExitCode, worst
from dvc_multiremote.report import PullReport, PushReport, RemoteReport, Report, SyncReport

if TYPE_CHECKING:
    from collections.abc import Iterable

USABLE_STATES = ("ok", "missing")
# What a remote's state means, in words for a sentence ("could not check dagshub: ...").
STATE_WORDS = {
    "auth": "credentials refused",
    "cap-exceeded": "download cap exceeded",
    "unreachable": "unreachable",
    "error": "error",
}


@dataclass(frozen=True)
class Unusable:
    """A remote the command needed and could not use, and why."""

    remote: str
    state: str
    message: str

    @property
    def why(self) -> str:
        return STATE_WORDS.get(self.state, self.state)

    def describe(self) -> str:
        """``dagshub, credentials refused``."""
        return f"{self.remote}, {self.why}"


@dataclass(frozen=True)
class Verdict:
    """How a run ended.

    ``code`` is the truth about everything in scope. ``checked_code`` is the same rule with the
    ``excused`` remotes left out (a fork's pull request has no secrets): what could be checked.
    """

    code: ExitCode
    unusable: tuple[Unusable, ...] = ()
    excused: tuple[str, ...] = ()
    checked_code: ExitCode = ExitCode.OK
    short: bool = False  # something in scope is missing, failed, left over or unknown

    @property
    def ok(self) -> bool:
        return self.code == ExitCode.OK

    @property
    def everything_checked(self) -> bool:
        """True only when every remote in scope was checked or used: no sentence may say
        "every remote holds everything" otherwise."""
        return not self.unusable

    def unusable_names(self) -> list[str]:
        return [item.remote for item in self.unusable]


def judge(report: Report, *, excused: Iterable[str] = (), withheld: bool = False) -> Verdict:
    """The verdict of a command's result.

    Rules, for every command (precedence USAGE > REMOTE > DATA > OK):

    - a remote the command needed and could not use is never fine: REMOTE. ``pull`` needs a
      remote only for what its cache lacks, so a pull that got everything through the fallback
      is OK, and one left short with no usable source is REMOTE;
    - data missing, failed, left over or unknown (a directory whose manifest could not be read)
      is DATA;
    - ``withheld``: the Action kept credentials from a remote the pull request re-pointed: USAGE.
    """
    excused = tuple(excused)
    unusable = tuple(Unusable(r.name, r.state, r.message) for r in report.remotes if not _usable(r))
    code = _code(report, unusable, withheld)
    kept = tuple(item for item in unusable if item.remote not in excused)
    return Verdict(code, unusable, excused, _code(report, kept, withheld), _data_short(report))


def _code(report: Report, unusable: tuple[Unusable, ...], withheld: bool) -> ExitCode:
    codes = [ExitCode.OK]
    if withheld:
        codes.append(ExitCode.USAGE)
    short = _data_short(report)
    if isinstance(report, PullReport):
        if short:
            any_source = any(_usable(r) for r in report.remotes)
            codes.append(ExitCode.DATA if any_source else ExitCode.REMOTE)
        return worst(*codes)
    if unusable:
        codes.append(ExitCode.REMOTE)
    if short:
        codes.append(ExitCode.DATA)
    return worst(*codes)


def _data_short(report: Report) -> bool:
    """Whether anything in scope is missing, failed, left over or unknown."""
    if report.missing or report.unknown_outputs:
        return True
    if isinstance(report, PushReport):
        return bool(report.not_in_cache)
    if isinstance(report, SyncReport):
        return bool(report.skipped_budget or report.unavailable or report.corrupt)
    return False


def _usable(remote: RemoteReport) -> bool:
    return remote.state in USABLE_STATES
