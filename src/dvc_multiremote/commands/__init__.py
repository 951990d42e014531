"""One entry point for every command; the CLI and the Action both call ``run_command``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from dvc_multiremote.errors import UsageError

if TYPE_CHECKING:
    from dvc_multiremote.report import Report
    from dvc_multiremote.settings import Settings

# Imported on use: `demo` and `merge-reports` should not pay for what `sync` needs, and back.
_RUNNERS = {
    "verify": ("dvc_multiremote.commands.verify", "run_verify"),
    "pull": ("dvc_multiremote.commands.pull", "run_pull"),
    "push": ("dvc_multiremote.commands.push", "run_push"),
    "sync": ("dvc_multiremote.commands.sync", "run_sync"),
    "merge-reports": ("dvc_multiremote.commands.merge", "run_merge"),
    "demo": ("dvc_multiremote.commands.demo", "run_demo"),
}


def run_command(settings: Settings) -> Report:
    """Run ``settings.command`` and return its typed report."""
    if settings.command not in _RUNNERS:
        raise UsageError(f"Unknown command {settings.command!r}.")
    module, function = _RUNNERS[settings.command]
    report: Report = getattr(import_module(module), function)(settings)
    return report
