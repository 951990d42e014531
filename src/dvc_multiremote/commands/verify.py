"""``verify``: which remote holds every object in scope — deep, and honest about failures."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dvc_multiremote.errors import UsageError
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.report import MissingObject, OutputReport, RemoteReport, VerifyReport
from dvc_multiremote.scope import check_all, gather, owes

if TYPE_CHECKING:
    from collections.abc import Callable

    from dvc_multiremote.inventory import Inventory, ObjectRef, OutputRef
    from dvc_multiremote.remotes import Remote
    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


def run_verify(settings: Settings) -> VerifyReport:
    """Check every referenced object on every selected remote."""
    with open_project(settings) as project:
        return verify_project(project, settings)


def verify_project(project: Project, settings: Settings) -> VerifyReport:
    remotes = project.remotes
    unknown = [n for n in settings.storage_limit if n not in {r.spec.name for r in remotes}]
    if unknown:
        raise UsageError(
            f"--storage-limit names remote {unknown[0]!r}, which this run does not use; the "
            f"remotes are: {', '.join(r.spec.name for r in remotes)}."
        )
    for remote in remotes:
        remote.show_progress = not settings.quiet
    gathered = gather(project, settings)
    inventory = gathered.inventory
    if settings.shard:
        inventory.shard = settings.shard
    objects = inventory.objects()
    check_all(remotes, objects, settings.check_jobs, inventory.owners())
    report = build_report(
        "verify",
        settings.scope,
        inventory,
        objects,
        remotes,
        [*project.warnings, *gathered.warnings],
        gathered.revisions,
    )
    report.set_aside = gathered.set_aside
    report.warnings += _storage_warnings(report, settings.storage_limit)
    return report


STORAGE_WARN_AT = 0.9


def _storage_warnings(report: VerifyReport, limits: dict[str, int]) -> list[str]:
    """A warning for each remote above 90% of its ``--storage-limit``."""
    from dvc_multiremote.render import human_size

    names = {remote.name: remote for remote in report.remotes}
    warnings = []
    for name, limit in limits.items():
        stored = names[name].bytes_stored
        if stored is None:
            warnings.append(
                f"{name}: its storage could not be measured (only listed remotes are), so "
                f"--storage-limit {name}={human_size(limit)} was not checked."
            )
        elif stored > STORAGE_WARN_AT * limit:
            warnings.append(
                f"{name} stores {human_size(stored)} under its DVC prefix, "
                f"{stored / limit:.0%} of its {human_size(limit)} limit."
            )
    return warnings


def build_report(
    command: str,
    scope: str,
    inventory: Inventory,
    objects: dict[ObjectRef, str],
    remotes: list[Remote],
    warnings: list[str],
    revisions: list[str],
) -> VerifyReport:
    """Turn per-remote presence into the report every renderer reads. A remote lacks an
    object only if it owes it (an output pinned to another remote is not its business)."""
    size_of = _size_finder(inventory, remotes)
    owners = inventory.owners()
    usable = [remote for remote in remotes if remote.status.present is not None]
    remote_reports = []
    for remote in remotes:
        status = remote.status
        report = RemoteReport(
            name=status.spec.name,
            url=status.spec.display_url,
            state=status.state,
            message=status.message,
            requests=dict(status.requests),
            checked_with=status.checked_with if status.present is not None else None,
            bytes_stored=status.bytes_stored if status.present is not None else None,
        )
        if status.present is not None:
            name = status.spec.name
            owed = [obj for obj in objects if owes(owners, obj, name)]
            lacking = [obj for obj in owed if obj not in status.present]
            report.objects_present = len(owed) - len(lacking)
            if report.bytes_stored is not None:
                held = status.present
                report.bytes_referenced = sum(held.get(obj) or 0 for obj in owed if obj in held)
            report.objects_missing = len(lacking)
            report.bytes_missing = sum(size_of(obj) or 0 for obj in lacking)
            if lacking and status.state == "ok":
                report.state = status.state = "missing"
                report.message = f"{len(lacking)} of {len(owed)} objects missing"
        remote_reports.append(report)

    missing = []
    for obj, path in objects.items():
        lacking_on = [
            r.spec.name
            for r in usable
            if owes(owners, obj, r.spec.name) and obj not in (r.status.present or {})
        ]
        if lacking_on:
            missing.append(MissingObject(obj.md5, path, size_of(obj), lacking_on))
    missing.sort(key=lambda item: item.path)
    outputs = [
        _output_report(out, inventory, objects, [r for r in usable if _owes_output(out, r)])
        for out in inventory.outputs
    ]

    return VerifyReport(
        command=command,
        scope=scope,
        remotes=remote_reports,
        outputs=outputs,
        missing=missing,
        totals={"objects": len(objects), "bytes": sum(size_of(obj) or 0 for obj in objects)},
        warnings=list(warnings),
        revisions=revisions,
    )


def _output_report(
    out: OutputRef, inventory: Inventory, in_scope: dict[ObjectRef, str], usable: list[Remote]
) -> OutputReport:
    entries = inventory.contents.get(out.obj) if out.is_dir else None
    own = {obj for obj in [out.obj, *(entry.obj for entry in entries or [])] if obj in in_scope}
    report = OutputReport.of(out, entries)
    if out.is_dir and entries is None:
        report.reason = (
            "its .dir manifest is in no remote and not in the local cache, so its files are unknown"
        )
    target = out.dvc_file if out.dvc_file.endswith(".dvc") else out.path
    for remote in usable:
        present = remote.status.present or {}
        count = sum(1 for obj in own if obj not in present)
        if count:
            name = remote.spec.name
            report.missing[name] = count
            if out.is_dir and out.obj in in_scope and out.obj not in present:
                report.manifest_missing.append(name)
            sources = [
                r.spec.name
                for r in usable
                if r is not remote and all(o in (r.status.present or {}) for o in own)
            ]
            if sources:
                report.fixes.append(
                    f"dvc pull -r {sources[0]} {target} && dvc push -r {name} {target}"
                )
            else:
                report.fixes.append(f"dvc push -r {name} {target}")
    return report


def _size_finder(inventory: Inventory, remotes: list[Remote]) -> Callable[[ObjectRef], int | None]:
    """An object's size from its .dvc file, a remote's listing, or the local cache — no copies."""
    outputs = {out.obj: out.size for out in inventory.outputs if not out.is_dir}

    def size_of(obj: ObjectRef) -> int | None:
        size = outputs.get(obj)
        for remote in remotes:
            if size is not None:
                break
            size = (remote.status.present or {}).get(obj)
        return size

    return size_of


def _owes_output(out: OutputRef, remote: Remote) -> bool:
    return out.remote is None or out.remote == remote.spec.name
