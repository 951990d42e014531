"""One error hierarchy; rendered once, at the edge (``cli.main``)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every command; precedence is USAGE > REMOTE > DATA > OK."""

    OK = 0
    DATA = 1
    USAGE = 2
    REMOTE = 3


def worst(*codes: ExitCode) -> ExitCode:
    """The code that wins under the documented precedence."""
    order = [ExitCode.USAGE, ExitCode.REMOTE, ExitCode.DATA, ExitCode.OK]
    for code in order:
        if code in codes:
            return code
    return ExitCode.OK


class MultiremoteError(Exception):
    """Base of every error we raise on purpose; its message is one sentence for the user."""

    exit_code = ExitCode.REMOTE

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def render(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class UsageError(MultiremoteError):
    """Bad option, unknown remote, not a DVC repo: the user must change the call."""

    exit_code = ExitCode.USAGE
