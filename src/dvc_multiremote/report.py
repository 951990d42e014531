"""The typed result every command returns; JSON, Markdown and the console are rendered from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dvc_multiremote.errors import ExitCode
from dvc_multiremote.inventory import DirEntry, OutputRef


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
        )


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


@dataclass
class Report:
    command: str
    exit_code: int
    scope: str
    remotes: list[RemoteReport]
    outputs: list[OutputReport]
    missing: list[MissingObject]
    totals: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)
    remotes_used: list[str] | None = None
    not_in_cache: list[MissingObject] | None = None
    checked_out: int | None = None
    pairs: list[PairReport] | None = None
    skipped_budget: list[MissingObject] | None = None
    corrupt: list[MissingObject] | None = None
    unavailable: list[MissingObject] | None = None
    dry_run: bool | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def outputs_with_gaps(self) -> list[OutputReport]:
        return [out for out in self.outputs if out.missing or out.reason]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"command": self.command, "ok": self.ok, **data}
