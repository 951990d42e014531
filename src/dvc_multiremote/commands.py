"""One entry point for every command; the CLI and the Action both call ``run_command``."""

from __future__ import annotations

from collections.abc import Callable

from dvc_multiremote.errors import UsageError
from dvc_multiremote.report import Report
from dvc_multiremote.settings import Settings


def _runner(command: str) -> Callable[[Settings], Report]:
    if command == "verify":
        from dvc_multiremote.verify import run_verify

        return run_verify
    if command == "pull":
        from dvc_multiremote.pull import run_pull

        return run_pull
    if command == "push":
        from dvc_multiremote.push import run_push

        return run_push
    if command == "sync":
        from dvc_multiremote.sync import run_sync

        return run_sync
    if command == "merge-reports":
        from dvc_multiremote.merge import run_merge

        return run_merge
    if command == "demo":
        from dvc_multiremote.demo import run_demo

        return run_demo
    raise UsageError(f"The command {command!r} is not available in this version yet.")


def run_command(settings: Settings) -> Report:
    """Run ``settings.command`` and return its typed report."""
    return _runner(settings.command)(settings)
