"""The GitHub Actions runner's side of a step; the only module that imports actions-toolkit.

The toolkit writes outputs and workflow commands; what it lacks is written here once: annotation
properties without empty keys, a synchronous group, the job summary, and multi-line masks.
"""

from __future__ import annotations

import base64
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from actions_toolkit import core
from actions_toolkit.command import Command

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

Level = Literal["error", "warning", "notice"]
MAX_ANNOTATIONS = 50


@dataclass(frozen=True)
class Annotation:
    """One ``::error``/``::warning``/``::notice`` line, optionally pinned to a file and line."""

    level: Level
    message: str
    title: str | None = None
    file: str | None = None
    line: int | None = None

    def render(self) -> str:
        """``::error file=a.dvc,line=4,title=Missing on dagshub::message`` (escaped)."""
        properties: dict[str, object] = {
            key: value
            for key, value in (("file", self.file), ("line", self.line), ("title", self.title))
            if value is not None and value != ""
        }
        return str(Command(self.level, properties, self.message))


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def annotate(annotation: Annotation) -> None:
    """Print one annotation; the runner shows it on the run and, with a file, on the diff."""
    _write(annotation.render())


def error(message: str, title: str | None = None) -> None:
    annotate(Annotation("error", message, title))


def warning(message: str, title: str | None = None) -> None:
    annotate(Annotation("warning", message, title))


def annotate_all(annotations: list[Annotation], *, overflow_title: str) -> None:
    """At most :data:`MAX_ANNOTATIONS`, then one line that says how many more there are."""
    for annotation in annotations[:MAX_ANNOTATIONS]:
        annotate(annotation)
    extra = len(annotations) - MAX_ANNOTATIONS
    if extra > 0:
        level = annotations[0].level
        annotate(
            Annotation(
                level,
                f"{extra:,} more not shown here; the job summary and the JSON report list them all.",
                overflow_title,
            )
        )


def mask(secrets: Iterable[str]) -> None:
    """``::add-mask::`` every secret, line by line, before anything else is printed."""
    for secret in secrets:
        for line in secret.splitlines() or [secret]:
            if line.strip():
                core.set_secret(line)


def basic_auth_forms(user: str, password: str) -> list[str]:
    """The base64 ``user:password`` an HTTP client sends, so that it is masked too."""
    return [base64.b64encode(f"{user}:{password}".encode()).decode()]


def info(text: str) -> None:
    """Plain log text (already free of secrets)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable ``::group::`` in the log (the toolkit's own ``group`` is async)."""
    sys.stdout.flush()
    core.start_group(title)
    sys.stdout.flush()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        core.end_group()
        sys.stdout.flush()


def set_outputs(values: Mapping[str, str]) -> None:
    """Write step outputs to ``$GITHUB_OUTPUT`` (nothing when run outside a runner)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    Path(path).touch(exist_ok=True)  # the toolkit refuses a file that does not exist yet
    for name, value in values.items():
        core.set_output(name, value)


def append_summary(markdown: str) -> None:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY`` (nothing when run outside a runner)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
        summary.write("\n")


def is_debug() -> bool:
    """The workflow was re-run with debug logging."""
    return bool(core.is_debug())
