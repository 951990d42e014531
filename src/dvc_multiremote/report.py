"""The typed results the commands return; JSON, Markdown and the console are rendered from
them and from the one verdict (``verdict.judge``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvc_multiremote.inventory import DirEntry, Inventory, OutputRef, SetAside
    from dvc_multiremote.verdict import Verdict


@dataclass
class RemoteReport:
    name: str
    url: str
    state: str
    message: str = ""
    objects_present: int | None = None
    objects_missing: int | None = None
    bytes_missing: int | None = None
    requests: dict[str, int] = field(default_factory=dict)
    objects_served: int | None = None
    bytes_served: int | None = None
    objects_pushed: int | None = None
    bytes_pushed: int | None = None
    objects_failed: int | None = None
    bytes_downloaded: int | None = None
    checked_with: str | None = None
    bytes_stored: int | None = None  # verify: under the DVC prefix, from the listing
    bytes_referenced: int | None = None  # verify: of those, what this project's scope needs


@dataclass
class OutputReport:
    path: str
    dvc_file: str
    md5: str
    is_dir: bool
    files: int | None
    missing: dict[str, int] = field(default_factory=dict)
    manifest_missing: list[str] = field(default_factory=list)
    line: int | None = None
    reason: str | None = None
    fixes: list[str] = field(default_factory=list)
    pinned_to: str | None = None  # ``remote: NAME``: checked there only

    def describe_gap(self, remote: str) -> str:
        """``300 of 1,000 files and the .dir manifest`` — what ``remote`` lacks of this output."""
        count = self.missing.get(remote, 0)
        if not self.is_dir:
            return "the file" if count else "nothing"
        manifest = remote in self.manifest_missing
        files = count - (1 if manifest else 0)
        parts = [f"{files:,} of {self.files:,} files"] if files or not manifest else []
        if manifest:
            parts.append("the .dir manifest")
        return " and ".join(parts)

    @classmethod
    def of(cls, out: OutputRef, entries: list[DirEntry] | None) -> OutputReport:
        """The report line of an output, before anything is known to be missing."""
        return cls(
            path=out.path,
            dvc_file=out.dvc_file,
            md5=out.md5,
            is_dir=out.is_dir,
            files=len(entries) if entries is not None else (out.nfiles if out.is_dir else 1),
            line=out.line,
            pinned_to=out.remote,
        )


def unknown_dirs(inventory: Inventory, reason: str) -> list[OutputReport]:
    """Directories whose manifest could not be read: their files are unknown, never fine."""
    unknown = []
    for out in inventory.outputs:
        if out.is_dir and inventory.contents.get(out.obj) is None:
            report = OutputReport.of(out, None)
            report.reason = reason
            unknown.append(report)
    return unknown


@dataclass
class MissingObject:
    md5: str
    path: str
    size: int | None
    missing_on: list[str]


@dataclass
class PairReport:
    """What a sync copied (or, in a dry run, would copy) from one remote to another."""

    source: str
    destination: str
    objects_copied: int
    bytes_copied: int


@dataclass(kw_only=True)
class Report:
    """What every command reports; each command's own result adds its fields below."""

    command: str
    scope: str = "workspace"
    remotes: list[RemoteReport]
    outputs: list[OutputReport] = field(default_factory=list)
    missing: list[MissingObject] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)

    @property
    def outputs_with_gaps(self) -> list[OutputReport]:
        return [out for out in self.outputs if out.missing or out.reason]

    @property
    def unknown_outputs(self) -> list[OutputReport]:
        """Directories whose manifest could not be read: their files are unknown, not fine."""
        return [out for out in self.outputs if out.reason]

    def to_dict(self, verdict: Verdict) -> dict[str, Any]:
        """The JSON report: every field of every command (``null`` where it does not apply),
        with ``ok`` and ``exit_code`` taken from the one verdict."""
        data = asdict(self)
        ordered = {"command": self.command, "ok": verdict.ok, "exit_code": int(verdict.code)}
        for name in _JSON_FIELDS:
            ordered[name] = data.get(name)
        return ordered


@dataclass(kw_only=True)
class VerifyReport(Report):
    """``verify`` (and ``demo``): which remote holds every object in scope."""


@dataclass(kw_only=True)
class PullReport(Report):
    """``pull``: where each object came from, and what was checked out."""

    remotes_used: list[str] = field(default_factory=list)
    checked_out: int = 0


@dataclass(kw_only=True)
class PushReport(Report):
    """``push``: what went to each remote, and what the local cache did not have."""

    not_in_cache: list[MissingObject] = field(default_factory=list)


@dataclass(kw_only=True)
class SyncReport(Report):
    """``sync``: what was copied between remotes, and what was left and why."""

    pairs: list[PairReport] = field(default_factory=list)
    skipped_budget: list[MissingObject] = field(default_factory=list)
    corrupt: list[MissingObject] = field(default_factory=list)
    unavailable: list[MissingObject] = field(default_factory=list)
    dry_run: bool = False


REPORT_TYPES: dict[str, type[Report]] = {
    "verify": VerifyReport,
    "demo": VerifyReport,
    "pull": PullReport,
    "push": PushReport,
    "sync": SyncReport,
}
# The JSON report's fields, in their documented order.
_JSON_FIELDS = (
    "scope",
    "remotes",
    "outputs",
    "missing",
    "totals",
    "warnings",
    "revisions",
    "set_aside",
    "remotes_used",
    "not_in_cache",
    "checked_out",
    "pairs",
    "skipped_budget",
    "corrupt",
    "unavailable",
    "dry_run",
)
