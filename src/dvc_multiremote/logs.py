"""Logging for the CLI and the Action alike: to stderr, every line through the redactor."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc_multiremote.redact import Redactor


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


def configure_logging(
    redactor: Redactor,
    *,
    verbose: bool = False,
    quiet: bool = False,
    timed: bool = False,
    libraries: bool = False,
) -> None:
    """Our own debug lines with ``verbose``; libraries only when they warn (or everything of
    theirs too with ``libraries``). Secret values are masked either way.

    ``timed`` starts each line with the milliseconds since start: where the time goes.
    """
    when = "%(relativeCreated)7.0fms " if timed else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _RedactingFormatter(redactor, when + "%(levelname)s: %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if libraries else logging.ERROR if quiet else logging.WARNING)
    ours = logging.getLogger("dvc_multiremote")
    ours.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    if not verbose:
        # DVC logs for its own CLI; we report through our results instead.
        handler.addFilter(lambda record: record.name.startswith("dvc_multiremote"))
