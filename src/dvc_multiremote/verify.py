"""``verify``: which remote holds every object in scope — deep, and honest about failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvc_multiremote.errors import ExitCode, worst
from dvc_multiremote.inventory import (
    DirEntry,
    Inventory,
    ObjectRef,
    OutputRef,
    all_commit_outputs,
    expand,
    merge_base,
    outputs_at,
    resolve_rev,
)
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.report import MissingObject, OutputReport, RemoteReport, Report
from dvc_multiremote.settings import Settings

if TYPE_CHECKING:
    from dvc.repo import Repo

    from dvc_multiremote.presence import Remote

log = logging.getLogger(__name__)


def run_verify(settings: Settings) -> Report:
    """Check every referenced object on every selected remote."""
    with open_project(settings) as project:
        return verify_project(project, settings)


def verify_project(project: Project, settings: Settings) -> Report:
    repo, remotes = project.repo, project.remotes
    outputs_scope = _scope_outputs(repo, settings)
    _parallel(remotes, lambda remote: remote.ensure_probed())
    inventory = Inventory(outputs_scope.outputs, excluded=set())
    loader = _Loader(repo, remotes)
    expand(inventory, loader)
    if outputs_scope.base_dirs:
        _exclude_base_files(inventory, outputs_scope.base_dirs, loader)
    objects = inventory.objects()
    usable = [remote for remote in remotes if remote.status.usable]
    _parallel(usable, lambda remote: remote.check(objects, settings.http_jobs))
    return build_report(
        "verify", settings.scope, inventory, remotes, project.warnings, outputs_scope.revisions
    )


@dataclass
class _Scope:
    """The outputs a run checks, the commits they came from, and (for a range) the base's dirs."""

    outputs: list[OutputRef]
    revisions: list[str] = field(default_factory=list)
    base_dirs: dict[str, ObjectRef] = field(default_factory=dict)


def _scope_outputs(repo: Repo, settings: Settings) -> _Scope:
    targets = settings.targets
    if settings.rev:
        sha = resolve_rev(repo, settings.rev, "--rev")
        return _Scope(outputs_at(repo, [sha], targets, strict=True), [sha], {})
    if settings.range:
        base_name, _, head_name = settings.range.partition("..")
        base = resolve_rev(repo, base_name, "--range")
        head = resolve_rev(repo, head_name, "--range")
        fork = merge_base(repo, base, head)
        base_outs = outputs_at(repo, [fork], targets, strict=False)
        head_outs = outputs_at(repo, [head], targets, strict=False)
        known = {out.obj for out in base_outs}
        new = [out for out in head_outs if out.obj not in known]
        base_dirs = {out.path: out.obj for out in base_outs if out.is_dir}
        return _Scope(new, [fork, head], base_dirs)
    if settings.all_commits:
        return _Scope(all_commit_outputs(repo, targets), [], {})
    return _Scope(outputs_at(repo, [None], targets, strict=True), [], {})


def _exclude_base_files(
    inventory: Inventory, base_dirs: dict[str, ObjectRef], loader: _Loader
) -> None:
    """In a range, files a changed directory already had at the merge-base are not the PR's."""
    for out in inventory.outputs:
        before = base_dirs.get(out.path)
        if out.is_dir and before is not None and before != out.obj:
            entries = loader(before) or []
            now = {entry.obj for entry in inventory.contents.get(out.obj) or []}
            inventory.excluded.update(entry.obj for entry in entries if entry.obj in now)


class _Loader:
    """Reads a ``.dir`` manifest from the local cache, else from the first remote that has it."""

    def __init__(self, repo: Repo, remotes: list[Remote]) -> None:
        self.repo = repo
        self.remotes = remotes
        self.cache: dict[ObjectRef, list[DirEntry] | None] = {}

    def __call__(self, obj: ObjectRef) -> list[DirEntry] | None:
        if obj not in self.cache:
            self.cache[obj] = self._load(obj)
        return self.cache[obj]

    def _load(self, obj: ObjectRef) -> list[DirEntry] | None:
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_data.hashfile.tree import Tree

        from dvc_multiremote.inventory import entries_from_manifest

        odb = self.repo.cache.legacy if obj.legacy else self.repo.cache.local
        try:
            return entries_from_manifest(Tree.load(odb, HashInfo("md5", obj.md5)), obj.legacy)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except Exception as exc:  # noqa: BLE001 - a corrupt cache copy: ask the remotes
            log.debug("local copy of %s unreadable: %s", obj.md5, exc)
        for remote in self.remotes:
            entries = remote.load_manifest(obj)
            if entries is not None:
                return entries
        return None


def _parallel(remotes: list[Remote], work: Callable[[Remote], object]) -> None:
    if len(remotes) <= 1:
        for remote in remotes:
            work(remote)
        return
    with ThreadPoolExecutor(max_workers=len(remotes)) as pool:
        for future in [pool.submit(work, remote) for remote in remotes]:
            future.result()


def build_report(
    command: str,
    scope: str,
    inventory: Inventory,
    remotes: list[Remote],
    warnings: list[str],
    revisions: list[str],
) -> Report:
    """Turn per-remote presence into the report every renderer reads."""
    objects = inventory.objects()
    sizes = _known_sizes(inventory, remotes)
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
        )
        if status.present is not None:
            lacking = [obj for obj in objects if obj not in status.present]
            report.objects_present = len(objects) - len(lacking)
            report.objects_missing = len(lacking)
            report.bytes_missing = sum(sizes.get(obj) or 0 for obj in lacking)
            if lacking and status.state == "ok":
                report.state = status.state = "missing"
                report.message = f"{len(lacking)} of {len(objects)} objects missing"
        remote_reports.append(report)

    missing = [
        MissingObject(
            md5=obj.md5,
            path=path,
            size=sizes.get(obj),
            missing_on=[r.spec.name for r in usable if obj not in (r.status.present or {})],
        )
        for obj, path in sorted(objects.items(), key=lambda item: item[1])
    ]
    missing = [item for item in missing if item.missing_on]
    outputs = [_output_report(out, inventory, usable) for out in inventory.outputs]

    codes = [ExitCode.OK]
    if any(not remote.status.usable for remote in remotes):
        codes.append(ExitCode.REMOTE)
    if missing or any(out.reason for out in outputs):
        codes.append(ExitCode.DATA)
    return Report(
        command=command,
        exit_code=int(worst(*codes)),
        scope=scope,
        remotes=remote_reports,
        outputs=outputs,
        missing=missing,
        totals={"objects": len(objects), "bytes": sum(sizes.get(obj) or 0 for obj in objects)},
        warnings=list(warnings),
        revisions=revisions,
    )


def _output_report(out: OutputRef, inventory: Inventory, usable: list[Remote]) -> OutputReport:
    entries = inventory.contents.get(out.obj) if out.is_dir else None
    own = [out.obj] + [entry.obj for entry in entries or [] if entry.obj not in inventory.excluded]
    report = OutputReport(
        path=out.path,
        dvc_file=out.dvc_file,
        md5=out.md5,
        is_dir=out.is_dir,
        files=len(entries) if entries is not None else (out.nfiles if out.is_dir else 1),
        line=out.line,
    )
    if out.is_dir and entries is None:
        report.reason = (
            "its .dir manifest is in no remote and not in the local cache, so its files are unknown"
        )
    target = out.dvc_file if out.dvc_file.endswith(".dvc") else out.path
    for remote in usable:
        present = remote.status.present or {}
        count = sum(1 for obj in set(own) if obj not in present)
        if count:
            name = remote.spec.name
            report.missing[name] = count
            if out.is_dir and out.obj not in present:
                report.manifest_missing.append(name)
            sources = [
                r.spec.name
                for r in usable
                if r is not remote and all(o in (r.status.present or {}) for o in set(own))
            ]
            if sources:
                report.fixes.append(
                    f"dvc pull -r {sources[0]} {target} && dvc push -r {name} {target}"
                )
            else:
                report.fixes.append(f"dvc push -r {name} {target}")
    return report


def _known_sizes(inventory: Inventory, remotes: list[Remote]) -> dict[ObjectRef, int | None]:
    sizes: dict[ObjectRef, int | None] = {}
    for out in inventory.outputs:
        if not out.is_dir and out.size is not None:
            sizes[out.obj] = out.size
    for remote in remotes:
        for obj, size in (remote.status.present or {}).items():
            if sizes.get(obj) is None and size is not None:
                sizes[obj] = size
    return sizes
