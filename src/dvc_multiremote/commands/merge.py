"""``merge-reports``: shard reports of one ``verify`` or ``sync`` (a matrix) into one report."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dvc_multiremote.errors import UsageError
from dvc_multiremote.inventory import SetAside
from dvc_multiremote.report import (
    REPORT_TYPES,
    MissingObject,
    OutputReport,
    PairReport,
    PullReport,
    PushReport,
    RemoteReport,
    Report,
    SyncReport,
)

if TYPE_CHECKING:
    from dvc_multiremote.settings import Settings

T = TypeVar("T")
# Worse states win when shards disagree about a remote.
_STATE_RANK = ["ok", "missing", "error", "cap-exceeded", "auth", "unreachable"]


def run_merge(settings: Settings) -> Report:
    """Merge the JSON reports named as targets."""
    if not settings.targets:
        raise UsageError("merge-reports needs the JSON reports to merge, e.g. shard-*/report.json.")
    return merge_reports([load_report(Path(path)) for path in settings.targets])


def load_report(path: Path) -> Report:
    """A report written by ``--json``, back as its command's typed report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"Report {path} cannot be read as JSON: {exc}.") from None
    if not isinstance(data, dict) or "remotes" not in data or "command" not in data:
        raise UsageError(f"Report {path} is not a dvc-multiremote JSON report.")
    kind = REPORT_TYPES.get(str(data["command"]))
    if kind is None:
        raise UsageError(f"Report {path} comes from {data['command']!r}, which has no report.")
    built = {
        "remotes": [_build(RemoteReport, r) for r in data.get("remotes", [])],
        "outputs": [_build(OutputReport, o) for o in data.get("outputs", [])],
        "pairs": [_build(PairReport, p) for p in data.get("pairs") or []],
        "set_aside": [_build(SetAside, a) for a in data.get("set_aside") or []],
        **{
            name: _objects(data.get(name))
            for name in ("missing", "not_in_cache", "skipped_budget", "corrupt", "unavailable")
        },
    }
    values = {**_known(kind, data), **built}
    return kind(**{k: v for k, v in values.items() if k in _names(kind) and v is not None})


def merge_reports(reports: list[Report]) -> Report:
    """One report equal to what a single unsharded run would have written; its exit code is
    judged again from the merged facts (``verdict.judge``), as for any run."""
    commands = {report.command for report in reports}
    if len(commands) != 1:
        raise UsageError(
            f"The reports come from different commands ({', '.join(sorted(commands))})."
        )
    first = reports[0]
    common: dict[str, Any] = {
        "command": first.command,
        "scope": first.scope,
        "remotes": _merge_remotes(reports),
        "outputs": _merge_outputs(reports),
        "missing": _merge_objects([r.missing for r in reports]),
        "totals": _sum_dicts([r.totals for r in reports]),
        "warnings": list(dict.fromkeys(w for r in reports for w in r.warnings)),
        "revisions": list(dict.fromkeys(rev for r in reports for rev in r.revisions)),
        "set_aside": list(dict.fromkeys(a for r in reports for a in r.set_aside)),
    }
    if isinstance(first, SyncReport):
        syncs = [r for r in reports if isinstance(r, SyncReport)]
        return SyncReport(
            **common,
            pairs=_merge_pairs(syncs),
            skipped_budget=_merge_objects([r.skipped_budget for r in syncs]),
            corrupt=_merge_objects([r.corrupt for r in syncs]),
            unavailable=_merge_objects([r.unavailable for r in syncs]),
            dry_run=first.dry_run,
        )
    if isinstance(first, PushReport):
        pushes = [r for r in reports if isinstance(r, PushReport)]
        return PushReport(**common, not_in_cache=_merge_objects([r.not_in_cache for r in pushes]))
    if isinstance(first, PullReport):
        pulls = [r for r in reports if isinstance(r, PullReport)]
        return PullReport(
            **common,
            remotes_used=list(dict.fromkeys(n for r in pulls for n in r.remotes_used)),
            checked_out=sum(r.checked_out for r in pulls),
        )
    return type(first)(**common)


def _merge_remotes(reports: list[Report]) -> list[RemoteReport]:
    by_name: dict[str, list[RemoteReport]] = {}
    for report in reports:
        for remote in report.remotes:
            by_name.setdefault(remote.name, []).append(remote)
    merged = []
    for name, parts in by_name.items():
        worst_part = max(
            parts, key=lambda r: _STATE_RANK.index(r.state) if r.state in _STATE_RANK else 0
        )
        numbers = {
            f.name: _sum_or_none([getattr(part, f.name) for part in parts])
            for f in fields(RemoteReport)
            if f.name.startswith(("objects_", "bytes_")) and f.name != "bytes_stored"
        }
        # Every shard lists the whole remote: what it stores is said once, not summed.
        stored = [part.bytes_stored for part in parts if part.bytes_stored is not None]
        numbers["bytes_stored"] = max(stored) if stored else None
        remote = RemoteReport(
            name=name,
            url=parts[0].url,
            state=worst_part.state,
            message=worst_part.message,
            requests=_sum_dicts([part.requests for part in parts]),
            checked_with=next((p.checked_with for p in parts if p.checked_with), None),
        )
        for number, value in numbers.items():
            setattr(remote, number, value)
        merged.append(remote)
    for remote in merged:
        if remote.state == "missing" and remote.objects_missing == 0:
            remote.state, remote.message = "ok", ""
    return merged


def _merge_outputs(reports: list[Report]) -> list[OutputReport]:
    merged: dict[tuple[str, str], OutputReport] = {}
    for report in reports:
        for out in report.outputs:
            key = (out.path, out.md5)
            if key not in merged:
                merged[key] = OutputReport(
                    out.path,
                    out.dvc_file,
                    out.md5,
                    out.is_dir,
                    out.files,
                    line=out.line,
                    pinned_to=out.pinned_to,
                )
            into = merged[key]
            for name, count in out.missing.items():
                into.missing[name] = into.missing.get(name, 0) + count
            into.manifest_missing = sorted({*into.manifest_missing, *out.manifest_missing})
            into.reason = into.reason or out.reason
            into.fixes = list(dict.fromkeys([*into.fixes, *out.fixes]))
    return list(merged.values())


def _merge_objects(lists: list[list[MissingObject]]) -> list[MissingObject]:
    merged: dict[str, MissingObject] = {}
    for items in lists:
        for item in items:
            if item.md5 in merged:
                known = merged[item.md5]
                known.missing_on = sorted({*known.missing_on, *item.missing_on})
            else:
                merged[item.md5] = MissingObject(
                    item.md5, item.path, item.size, list(item.missing_on)
                )
    return sorted(merged.values(), key=lambda item: item.path)


def _merge_pairs(reports: list[SyncReport]) -> list[PairReport]:
    sums: dict[tuple[str, str], list[int]] = {}
    for report in reports:
        for pair in report.pairs:
            total = sums.setdefault((pair.source, pair.destination), [0, 0])
            total[0] += pair.objects_copied
            total[1] += pair.bytes_copied
    return [PairReport(s, d, n, b) for (s, d), (n, b) in sorted(sums.items())]


def _sum_dicts(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for item in dicts:
        for key, value in item.items():
            total[key] = total.get(key, 0) + value
    return total


def _sum_or_none(values: list[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = _names(cls)
    return {key: value for key, value in data.items() if key in names}


def _build(cls: type[T], data: dict[str, Any]) -> T:
    return cls(**_known(cls, data))


def _objects(items: list[dict[str, Any]] | None) -> list[MissingObject] | None:
    return None if items is None else [_build(MissingObject, item) for item in items]
