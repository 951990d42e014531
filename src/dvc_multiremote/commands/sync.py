"""``sync``: copy only what each remote lacks, remote to remote, spending capped bandwidth last."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dvc_multiremote.commands.budget import Budget, ManifestGate
from dvc_multiremote.inventory import Inventory, ObjectRef, in_shard
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
    OutputReport,
    PairReport,
    RemoteReport,
    SyncReport,
)
from dvc_multiremote.scope import check_all, gather, local_cache_path
from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


def run_sync(settings: Settings) -> SyncReport:
    """Make every selected remote hold every object in scope."""
    with open_project(settings) as project:
        return sync_project(project, settings)


@dataclass
class Copy:
    """One object to bring to some destinations, with its candidate sources, best first."""

    obj: ObjectRef
    path: str
    size: int | None
    destinations: list[str]
    sources: list[str]
    local: Path | None = None  # a checked copy already on this machine (manifests)


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


def source_order(remotes: list[Remote], budget: Budget, prefer: list[str] | None) -> list[str]:
    """Remotes in the order they should serve.

    ``--prefer-source`` first when given; otherwise remotes without a ``--budget`` first. Within
    each group, remotes whose downloads are capped (B2, by ``B2_HOSTS``) come last, so capped
    bandwidth is spent only on what no one else can serve.
    """
    ordered = sorted(remotes, key=lambda remote: remote.refused_read_is_cap)
    names = [remote.spec.name for remote in ordered]
    if prefer:
        head = [name for name in prefer if name in names]
    else:
        head = [name for name in names if not budget.capped(name)]
    return head + [name for name in names if name not in head]


def plan(
    objects: dict[ObjectRef, str],
    remotes: list[Remote],
    budget: Budget,
    prefer: list[str] | None,
) -> tuple[list[Copy], list[ObjectRef]]:
    """Copies to make (files first, largest first without a budget; manifests last) and the
    objects no usable remote holds."""
    usable = [remote for remote in remotes if remote.status.present is not None]
    order = source_order(usable, budget, prefer)
    by_name = {remote.spec.name: remote for remote in usable}
    copies: list[Copy] = []
    unavailable: list[ObjectRef] = []
    for obj, path in objects.items():
        holders = [name for name in order if obj in (by_name[name].status.present or {})]
        lacking = [r.spec.name for r in usable if obj not in (r.status.present or {})]
        if not lacking:
            continue
        if not holders:
            unavailable.append(obj)
            continue
        size = _known_size(obj, [by_name[name] for name in holders])
        # Within budget first, then the preference order: capped bandwidth is spent last.
        holders.sort(key=lambda name: (not budget.fits(name, size), order.index(name)))
        copies.append(Copy(obj, path, size, lacking, holders))
    # Files before manifests. Without a budget, largest first: a big file started last would
    # run on alone after all the rest. Under a budget, path order, so the budget goes as planned.
    largest_first = not budget.limits
    copies.sort(key=lambda c: (c.obj.is_dir, -(c.size or 0) if largest_first else 0, c.path))
    return copies, unavailable


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


def _known_size(obj: ObjectRef, holders: list[Remote]) -> int | None:
    for remote in holders:
        size = (remote.status.present or {}).get(obj)
        if size is not None:
            return size
    return None


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
    check_all(remotes, objects, settings.check_jobs)
    copies, unavailable = plan(objects, remotes, budget, settings.prefer_source)
    if settings.shard:
        # Files split by hash; every shard finishes the manifests whose files are all there.
        shard = settings.shard
        copies = [c for c in copies if c.obj.is_dir or in_shard(c.obj.md5, shard)]
        unavailable = [obj for obj in unavailable if obj.is_dir or in_shard(obj.md5, shard)]
    if not settings.dry_run:
        _execute(project, inventory, copies, budget, tally, settings.transfer_jobs)
    else:
        _dry_run(copies, budget, tally)
    return _report(
        project, settings, inventory, objects, copies, unavailable, tally, gathered.revisions
    )


def _execute(
    project: Project,
    inventory: Inventory,
    copies: list[Copy],
    budget: Budget,
    tally: Tally,
    jobs: int,
) -> None:
    by_name = {remote.spec.name: remote for remote in project.remotes}
    os.makedirs(project.repo.tmp_dir, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dvc-multiremote-sync-", dir=project.repo.tmp_dir))
    try:
        files = [copy for copy in copies if not copy.obj.is_dir]
        run_parallel(files, lambda copy: _copy(copy, by_name, budget, tally, workdir), jobs)
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
        run_parallel(manifests, lambda copy: _copy(copy, by_name, budget, tally, workdir), jobs)
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
            fetched = download(source, copy.obj, workdir)
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
                len([o for o in objects if o not in (remote.status.present or {})])
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
        outputs=_unknown_outputs(inventory),
        missing=items(tally.failed, tally.failed),
        totals={"objects": len(objects), "bytes": sum(s or 0 for s in sizes.values())},
        warnings=warnings,
        revisions=revisions,
        pairs=pairs,
        skipped_budget=items(tally.skipped_budget),
        corrupt=items(tally.corrupt, tally.corrupt),
        unavailable=items(unavailable),
        dry_run=settings.dry_run,
    )


def _unknown_outputs(inventory: Inventory) -> list[OutputReport]:
    """Directories whose files are unknown: never counted as "nothing to copy"."""
    unknown = []
    for out in inventory.outputs:
        if out.is_dir and inventory.contents.get(out.obj) is None:
            report = OutputReport.of(out, None)
            report.reason = (
                "its .dir manifest could not be read from any remote that answered (or not "
                "within the budget), so its files are unknown and were not copied"
            )
            unknown.append(report)
    return unknown
