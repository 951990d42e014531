"""``sync``: copy only what each remote lacks, remote to remote, spending capped bandwidth last."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.commands.budget import Budget, ManifestGate
from dvc_multiremote.commands.copy_plan import Copy, plan, source_order
from dvc_multiremote.inventory import Inventory, ObjectRef, in_shard
from dvc_multiremote.progress import Progress
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.remotes import Remote, RemoteFailed
from dvc_multiremote.remotes.transfer import (
    ObjectCorrupt,
    ObjectFailed,
    ObjectMissing,
    download,
    md5_matches,
    run_parallel,
    upload,
)
from dvc_multiremote.report import (
    MissingObject,
    PairReport,
    RemoteReport,
    SyncReport,
    unknown_dirs,
)
from dvc_multiremote.scope import check_all, gather, local_cache_path, owes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


def run_sync(settings: Settings) -> SyncReport:
    """Make every selected remote hold every object in scope."""
    with open_project(settings) as project:
        return sync_project(project, settings)


@dataclass
class Tally:
    """What a sync did, shared between worker threads."""

    pairs: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    downloaded: dict[str, int] = field(default_factory=dict)
    corrupt: dict[ObjectRef, set[str]] = field(default_factory=dict)
    skipped_budget: set[ObjectRef] = field(default_factory=set)
    failed: dict[ObjectRef, set[str]] = field(default_factory=dict)
    copied_to: dict[str, set[ObjectRef]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def copied(self, source: str, destination: str, obj: ObjectRef, size: int) -> None:
        with self.lock:
            pair = self.pairs.setdefault((source, destination), [0, 0])
            pair[0] += 1
            pair[1] += size
            self.copied_to.setdefault(destination, set()).add(obj)

    def note(self, table: dict[ObjectRef, set[str]], obj: ObjectRef, name: str) -> None:
        with self.lock:
            table.setdefault(obj, set()).add(name)


def _check_names(settings: Settings, remotes: list[Remote]) -> None:
    from dvc_multiremote.errors import UsageError

    names = [remote.spec.name for remote in remotes]
    for option, given in (
        ("--budget", list(settings.budget)),
        ("--prefer-source", settings.prefer_source or []),
    ):
        unknown = [name for name in given if name not in names]
        if unknown:
            raise UsageError(
                f"{option} names remote {unknown[0]!r}, which this run does not use; "
                f"the remotes are: {', '.join(names)}."
            )


def sync_project(project: Project, settings: Settings) -> SyncReport:
    remotes = project.remotes
    budget = Budget(settings.budget)
    _check_names(settings, remotes)
    gate = ManifestGate(budget)
    order = source_order(remotes, budget, settings.prefer_source)
    gathered = gather(project, settings, order, gate)
    tally = Tally()
    gate.settle(gathered.manifest_reads, tally)
    inventory = gathered.inventory
    objects = inventory.objects()
    owners = inventory.owners()
    # Every remote is checked for everything: a pinned object may be copied from any of them.
    check_all(remotes, objects, settings.check_jobs)
    copies, unavailable = plan(objects, remotes, budget, settings.prefer_source, owners)
    if settings.shard:
        # Files split by hash; every shard finishes the manifests whose files are all there.
        shard = settings.shard
        copies = [c for c in copies if c.obj.is_dir or in_shard(c.obj.md5, shard)]
        unavailable = [obj for obj in unavailable if obj.is_dir or in_shard(obj.md5, shard)]
    if not settings.dry_run:
        progress = Progress(
            "sync",
            len(copies),
            sum(c.size or 0 for c in copies),
            enabled=bool(copies) and not settings.quiet,
        )
        try:
            _execute(project, inventory, copies, budget, tally, settings.transfer_jobs, progress)
        finally:
            progress.close()
    else:
        _dry_run(copies, budget, tally)
    report = _report(
        project, settings, inventory, objects, copies, unavailable, tally, gathered.revisions
    )
    report.set_aside = gathered.set_aside
    report.warnings[:0] = gathered.warnings
    return report


def _execute(
    project: Project,
    inventory: Inventory,
    copies: list[Copy],
    budget: Budget,
    tally: Tally,
    jobs: int,
    progress: Progress,
) -> None:
    by_name = {remote.spec.name: remote for remote in project.remotes}

    def copy_one(copy: Copy) -> None:
        _copy(copy, by_name, budget, tally, workdir)
        progress.advance(copy.size or 0)

    os.makedirs(project.repo.tmp_dir, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dvc-multiremote-sync-", dir=project.repo.tmp_dir))
    try:
        files = [copy for copy in copies if not copy.obj.is_dir]
        run_parallel(files, copy_one, jobs)
        manifests = []
        for copy in (c for c in copies if c.obj.is_dir):
            entries = inventory.contents.get(copy.obj)
            if entries is None:
                # Its files are unknown (the manifest could not be read, or not within the
                # budget): copying it alone would make an incomplete directory look complete.
                if copy.obj not in tally.skipped_budget:
                    for name in copy.destinations:
                        tally.note(tally.failed, copy.obj, name)
                continue
            ready = [
                name
                for name in copy.destinations
                if _all_there(by_name[name], tally, (entry.obj for entry in entries))
            ]
            if ready:
                local = local_cache_path(project.repo, copy.obj)
                manifests.append(Copy(copy.obj, copy.path, copy.size, ready, copy.sources, local))
            for name in set(copy.destinations) - set(ready):
                tally.note(tally.failed, copy.obj, name)
        run_parallel(manifests, copy_one, jobs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _all_there(remote: Remote, tally: Tally, objs: Iterable[ObjectRef]) -> bool:
    present = remote.status.present or {}
    copied = tally.copied_to.get(remote.spec.name, set())
    return all(obj in present or obj in copied for obj in objs)


def _copy(
    copy: Copy, by_name: dict[str, Remote], budget: Budget, tally: Tally, workdir: Path
) -> None:
    """Bring one object from the best source that delivers good bytes to each destination."""
    destinations = [by_name[name] for name in copy.destinations]
    if (
        copy.obj.is_dir
        and copy.local is not None
        and copy.local.exists()
        and md5_matches(copy.local, copy.obj)
    ):
        # The manifest was read (and checked) while expanding the scope: no second download.
        _deliver(copy, destinations, copy.local, copy.sources[0], tally)
        return
    for name in copy.sources:
        source = by_name[name]
        if not source.status.usable:
            continue
        if not budget.reserve(name, copy.size):
            continue
        try:
            fetched = download(source, copy.obj, workdir, copy.size)
        except ObjectCorrupt:
            # Its bytes were downloaded: they stay counted against the budget.
            tally.note(tally.corrupt, copy.obj, name)
            with tally.lock:
                tally.downloaded[name] = tally.downloaded.get(name, 0) + (copy.size or 0)
            continue
        except (ObjectMissing, ObjectFailed, RemoteFailed) as exc:
            budget.release(name, copy.size)
            log.debug("%s not from %s: %s", copy.obj.md5, name, exc)
            continue
        with tally.lock:
            tally.downloaded[name] = tally.downloaded.get(name, 0) + fetched.size
        try:
            _deliver(copy, destinations, fetched.path, name, tally)
        finally:
            fetched.path.unlink(missing_ok=True)
        return
    if any(budget.capped(name) and not budget.fits(name, copy.size) for name in copy.sources):
        with tally.lock:
            tally.skipped_budget.add(copy.obj)
    else:
        for lacking in copy.destinations:
            tally.note(tally.failed, copy.obj, lacking)


def _deliver(copy: Copy, destinations: list[Remote], path: Path, source: str, tally: Tally) -> None:
    """Upload one verified local file to every destination that lacks it."""
    size = path.stat().st_size
    for destination in destinations:
        if not destination.status.usable:
            tally.note(tally.failed, copy.obj, destination.spec.name)
            continue
        try:
            upload(destination, copy.obj, path)
        except (ObjectFailed, RemoteFailed) as exc:
            log.debug("%s not to %s: %s", copy.obj.md5, destination.spec.name, exc)
            tally.note(tally.failed, copy.obj, destination.spec.name)
            continue
        tally.copied(source, destination.spec.name, copy.obj, size)


def _dry_run(copies: list[Copy], budget: Budget, tally: Tally) -> None:
    """What a real run would copy, with the same source choice and budget, changing nothing."""
    for copy in copies:
        source = next((name for name in copy.sources if budget.reserve(name, copy.size)), None)
        if source is None:
            tally.skipped_budget.add(copy.obj)
            continue
        for destination in copy.destinations:
            pair = tally.pairs.setdefault((source, destination), [0, 0])
            pair[0] += 1
            pair[1] += copy.size or 0
        tally.downloaded[source] = tally.downloaded.get(source, 0) + (copy.size or 0)


def _report(
    project: Project,
    settings: Settings,
    inventory: Inventory,
    objects: dict[ObjectRef, str],
    copies: list[Copy],
    unavailable: list[ObjectRef],
    tally: Tally,
    revisions: list[str],
) -> SyncReport:
    sizes = {copy.obj: copy.size for copy in copies}
    owners = inventory.owners()

    def items(
        objs: Iterable[ObjectRef], where: dict[ObjectRef, set[str]] | None = None
    ) -> list[MissingObject]:
        return [
            MissingObject(
                obj.md5,
                objects.get(obj, obj.md5),
                sizes.get(obj),
                sorted((where or {}).get(obj, set())),
            )
            for obj in sorted(objs, key=lambda o: objects.get(o, o.md5))
        ]

    remote_reports = [
        RemoteReport(
            name=remote.spec.name,
            url=remote.spec.display_url,
            state=remote.status.state if remote.status.state != "missing" else "ok",
            message=remote.status.message,
            requests=dict(remote.status.requests),
            objects_missing=(
                len(
                    [
                        o
                        for o in objects
                        if owes(owners, o, remote.spec.name)
                        and o not in (remote.status.present or {})
                    ]
                )
                if remote.status.present is not None
                else None
            ),
            bytes_downloaded=tally.downloaded.get(remote.spec.name, 0),
            checked_with=remote.status.checked_with if remote.status.present is not None else None,
        )
        for remote in project.remotes
    ]
    pairs = [
        PairReport(source, destination, counts[0], counts[1])
        for (source, destination), counts in sorted(tally.pairs.items())
    ]
    left = set(tally.failed) | tally.skipped_budget | set(unavailable)
    corrupt_refused = {obj for obj in tally.corrupt if obj in left}
    warnings = list(project.warnings)
    if corrupt_refused:
        warnings.append(f"{len(corrupt_refused)} object(s) had only corrupt copies.")
    return SyncReport(
        command="sync",
        scope=settings.scope,
        remotes=remote_reports,
        outputs=unknown_dirs(
            inventory,
            "its .dir manifest could not be read from any remote that answered (or not within "
            "the budget), so its files are unknown and were not copied",
        ),
        missing=items(tally.failed, tally.failed),
        totals={
            "objects": len(objects),
            "bytes": sum(s or 0 for s in sizes.values()),
            "pinned": len(owners),  # objects only some remotes owe (``remote:``)
        },
        warnings=warnings,
        revisions=revisions,
        pairs=pairs,
        skipped_budget=items(tally.skipped_budget),
        corrupt=items(tally.corrupt, tally.corrupt),
        unavailable=items(unavailable),
        dry_run=settings.dry_run,
    )
