"""Point a released ``action.yml`` at the pushed image by digest: ``runs.image`` becomes
``docker://IMAGE@sha256:...``; every other byte of the file stays as it was.

Run by ``.github/workflows/release.yml`` after the image is pushed. Standard library only, so the
release job needs nothing installed to run it. Exit 2, with one sentence naming the argument,
when an argument is not what it must be.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# A registry host (with an optional port), then one or more lowercase path components, as the
# distribution spec names repositories; no tag and no digest, since this script adds the digest.
_IMAGE = re.compile(
    r"[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A top-level key starts at column 0; `runs:`'s block ends at the next one.
_TOP_LEVEL_KEY = re.compile(r"^[^\s#][^:]*:")
_CHILD = re.compile(r"^(?P<indent>[ ]+)[^\s#]")
_IMAGE_LINE = re.compile(
    r"^(?P<indent>[ ]+)image:[ ]*(?P<value>[^#\r\n]*?)(?P<comment>[ ]+#[^\r\n]*)?(?P<eol>\r?\n?)$"
)

BAD_IMAGE = (
    "--image must be a lowercase image name without a tag or digest, such as "
    "`ghcr.io/owner/dvc-multiremote`, not {value!r}."
)
BAD_DIGEST = (
    "--digest must be `sha256:` followed by 64 lowercase hex digits "
    "(build-push-action's `digest` output), not {value!r}."
)
NO_FILE = "--action names {path}, which cannot be read ({cause})."
NO_WRITE = "--output names {path}, which cannot be written ({cause})."
NOT_ONE_IMAGE = (
    "--action names {path}, which must have exactly one `image:` line under `runs:`; found {count}."
)


class UsageError(Exception):
    """An argument that is not what it must be; the message is one sentence naming it."""


def image_lines(lines: list[str]) -> list[int]:
    """Indexes of the ``image:`` lines directly under the top-level ``runs:`` key."""
    found: list[int] = []
    runs_indent: str | None = None  # the indentation of runs' own keys, once seen
    in_runs = False
    for number, line in enumerate(lines):
        if _TOP_LEVEL_KEY.match(line):
            in_runs = line.split(":", 1)[0].strip() == "runs"
            runs_indent = None
            continue
        child = _CHILD.match(line)
        if not in_runs or not child:
            continue
        runs_indent = runs_indent or child["indent"]
        image = _IMAGE_LINE.match(line)
        if image and image["indent"] == runs_indent:
            found.append(number)
    return found


def pinned(text: str, image: str, digest: str) -> str:
    """``text`` (an action.yml) with ``runs.image`` set to ``docker://image@digest``. Only the
    value changes: indentation, a trailing comment and the line end are kept.
    ValueError (with the count) unless there is exactly one such line."""
    lines = text.splitlines(keepends=True)
    found = image_lines(lines)
    if len(found) != 1:
        raise ValueError(len(found))
    line = _IMAGE_LINE.match(lines[found[0]])
    if line is None:  # image_lines matched it; kept for the type checker
        raise ValueError(0)
    lines[found[0]] = (
        f"{line['indent']}image: docker://{image}@{digest}{line['comment'] or ''}{line['eol']}"
    )
    return "".join(lines)


def run(argv: list[str] | None = None) -> None:
    """Parse the arguments, pin the image and write the file; UsageError when one is wrong."""
    parser = argparse.ArgumentParser(description="Pin action.yml's runs.image to an image digest.")
    parser.add_argument("--image", required=True, help="e.g. ghcr.io/owner/dvc-multiremote")
    parser.add_argument("--digest", required=True, help="sha256:<64 hex>, the pushed digest")
    parser.add_argument("--action", default="action.yml", help="action.yml to read")
    parser.add_argument("--output", help="where to write (default: --action, in place)")
    args = parser.parse_args(argv)
    if not _IMAGE.fullmatch(args.image):
        raise UsageError(BAD_IMAGE.format(value=args.image))
    if not _DIGEST.fullmatch(args.digest):
        raise UsageError(BAD_DIGEST.format(value=args.digest))
    source = Path(args.action)
    try:
        # newline="" keeps the file's own line ends, so only the image value can change.
        with source.open(encoding="utf-8", newline="") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(NO_FILE.format(path=source, cause=type(exc).__name__)) from exc
    try:
        result = pinned(text, args.image, args.digest)
    except ValueError as exc:
        raise UsageError(NOT_ONE_IMAGE.format(path=source, count=exc.args[0])) from exc
    target = Path(args.output or source)
    try:
        target.write_text(result, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(NO_WRITE.format(path=target, cause=type(exc).__name__)) from exc
    sys.stdout.write(f"{target}: runs.image is docker://{args.image}@{args.digest}\n")


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except UsageError as exc:
        if os.environ.get("GITHUB_ACTIONS") == "true":
            sys.stdout.write(f"::error title=Invalid argument::{exc}\n")
        else:
            sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
