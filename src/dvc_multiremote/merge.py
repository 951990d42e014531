"""``merge-reports``: shard reports of one ``verify`` or ``sync`` (a matrix) into one report."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from dvc_multiremote.errors import ExitCode, UsageError, worst
from dvc_multiremote.report import MissingObject, OutputReport, PairReport, RemoteReport, Report
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
    """A report written by ``--json``, back as a typed Report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"Report {path} cannot be read as JSON: {exc}.") from None
    if not isinstance(data, dict) or "remotes" not in data or "command" not in data:
        raise UsageError(f"Report {path} is not a dvc-multiremote JSON report.")
    return Report(
        **{
            **_known(Report, data),
            "remotes": [_build(RemoteReport, r) for r in data.get("remotes", [])],
            "outputs": [_build(OutputReport, o) for o in data.get("outputs", [])],
            "missing": _objects(data.get("missing")) or [],
            "pairs": [_build(PairReport, p) for p in data["pairs"]]
            if data.get("pairs") is not None
            else None,
            "not_in_cache": _objects(data.get("not_in_cache")),
            "skipped_budget": _objects(data.get("skipped_budget")),
            "corrupt": _objects(data.get("corrupt")),
            "unavailable": _objects(data.get("unavailable")),
        }
    )


def merge_reports(reports: list[Report]) -> Report:
    """One report equal to what a single unsharded run would have written."""
    commands = {report.command for report in reports}
    if len(commands) != 1:
        raise UsageError(
            f"The reports come from different commands ({', '.join(sorted(commands))})."
        )
    first = reports[0]
    merged = Report(
        command=first.command,
        exit_code=int(worst(*(ExitCode(r.exit_code) for r in reports))),
        scope=first.scope,
        remotes=_merge_remotes(reports),
        outputs=_merge_outputs(reports),
        missing=_merge_objects([r.missing for r in reports]) or [],
        totals=_sum_dicts([r.totals for r in reports]),
        warnings=list(dict.fromkeys(w for r in reports for w in r.warnings)),
        revisions=list(dict.fromkeys(rev for r in reports for rev in r.revisions)),
        remotes_used=_union_or_none([r.remotes_used for r in reports]),
        not_in_cache=_merge_objects([r.not_in_cache for r in reports]),
        checked_out=_sum_or_none([r.checked_out for r in reports]),
        pairs=_merge_pairs(reports),
        skipped_budget=_merge_objects([r.skipped_budget for r in reports]),
        corrupt=_merge_objects([r.corrupt for r in reports]),
        unavailable=_merge_objects([r.unavailable for r in reports]),
        dry_run=first.dry_run,
    )
    return merged


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
            if f.name.startswith(("objects_", "bytes_"))
        }
        merged.append(
            RemoteReport(
                name=name,
                url=parts[0].url,
                state=worst_part.state,
                message=worst_part.message,
                requests=_sum_dicts([part.requests for part in parts]),
                **numbers,
            )
        )
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
                    out.path, out.dvc_file, out.md5, out.is_dir, out.files, line=out.line
                )
            into = merged[key]
            for name, count in out.missing.items():
                into.missing[name] = into.missing.get(name, 0) + count
            into.manifest_missing = sorted({*into.manifest_missing, *out.manifest_missing})
            into.reason = into.reason or out.reason
            into.fixes = list(dict.fromkeys([*into.fixes, *out.fixes]))
    return list(merged.values())


def _merge_objects(lists: list[list[MissingObject] | None]) -> list[MissingObject] | None:
    if all(items is None for items in lists):
        return None
    merged: dict[str, MissingObject] = {}
    for items in lists:
        for item in items or []:
            if item.md5 in merged:
                known = merged[item.md5]
                known.missing_on = sorted({*known.missing_on, *item.missing_on})
            else:
                merged[item.md5] = MissingObject(
                    item.md5, item.path, item.size, list(item.missing_on)
                )
    return sorted(merged.values(), key=lambda item: item.path)


def _merge_pairs(reports: list[Report]) -> list[PairReport] | None:
    if all(report.pairs is None for report in reports):
        return None
    sums: dict[tuple[str, str], list[int]] = {}
    for report in reports:
        for pair in report.pairs or []:
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


def _union_or_none(lists: list[list[str] | None]) -> list[str] | None:
    if all(items is None for items in lists):
        return None
    return list(dict.fromkeys(name for items in lists for name in items or []))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _build(cls: type[T], data: dict[str, Any]) -> T:
    return cls(**_known(cls, data))


def _objects(items: list[dict[str, Any]] | None) -> list[MissingObject] | None:
    return None if items is None else [_build(MissingObject, item) for item in items]
