"""``sync``: copy only what each remote lacks, remote to remote, spending capped bandwidth last."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvc_multiremote.commands.budget import Budget, ManifestGate
from dvc_multiremote.commands.copy_plan import Copy, plan, source_order
from dvc_multiremote.commands.copying import Copier
from dvc_multiremote.commands.early_copies import EarlyCopies
from dvc_multiremote.inventory import Inventory, ObjectRef, in_shard
from dvc_multiremote.progress import Progress
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.report import (
    MissingObject,
    PairReport,
    RemoteReport,
    SyncReport,
    unknown_dirs,
)
from dvc_multiremote.scope import check_all, gather, owes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvc_multiremote.remotes import Remote
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
    if settings.dry_run:
        # Every remote is checked for everything: a pinned object may be copied from any.
        check_all(remotes, objects, settings.check_jobs)
        copies, unavailable = _plan(objects, remotes, budget, settings, owners)
        _dry_run(copies, budget, tally)
    else:
        progress = Progress("sync", 0, 0, enabled=not settings.quiet)
        try:
            with Copier(project, budget, tally, settings.transfer_jobs, progress) as copier:
                early = None
                if not budget.limits:
                    early = EarlyCopies(
                        remotes,
                        objects,
                        owners,
                        budget,
                        settings.prefer_source,
                        settings.shard,
                        copier.start,
                    )
                heard = early.heard_from if early is not None else None
                check_all(remotes, objects, settings.check_jobs, heard=heard)
                copies, unavailable = _plan(objects, remotes, budget, settings, owners)
                started = early.started if early is not None else set()
                copier.finish(inventory, copies, started)
        finally:
            progress.close()
    report = _report(
        project, settings, inventory, objects, copies, unavailable, tally, gathered.revisions
    )
    report.set_aside = gathered.set_aside
    report.warnings[:0] = gathered.warnings
    return report


def _plan(
    objects: dict[ObjectRef, str],
    remotes: list[Remote],
    budget: Budget,
    settings: Settings,
    owners: dict[ObjectRef, frozenset[str]],
) -> tuple[list[Copy], list[ObjectRef]]:
    copies, unavailable = plan(objects, remotes, budget, settings.prefer_source, owners)
    if settings.shard:
        # Files split by hash; every shard finishes the manifests whose files are all there.
        shard = settings.shard
        copies = [c for c in copies if c.obj.is_dir or in_shard(c.obj.md5, shard)]
        unavailable = [obj for obj in unavailable if obj.is_dir or in_shard(obj.md5, shard)]
    return copies, unavailable


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
