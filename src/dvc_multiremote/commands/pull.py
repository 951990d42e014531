"""``pull``: each object from the first remote that can give it, then check the workspace out."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.inventory import (
    Inventory,
    ObjectRef,
    OutputRef,
    SetAside,
    expand,
    outputs_at,
)
from dvc_multiremote.progress import Progress
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.remotes import Remote, RemoteFailed
from dvc_multiremote.remotes.concurrency import bounded_gather
from dvc_multiremote.remotes.transfer import (
    Counter,
    Fetched,
    ObjectCorrupt,
    ObjectFailed,
    ObjectMissing,
    download_async,
)
from dvc_multiremote.report import MissingObject, OutputReport, PullReport, RemoteReport
from dvc_multiremote.scope import load_from_cache, local_cache_path

if TYPE_CHECKING:
    from dvc.repo import Repo

    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)
# A remote that can list is listed once it has said "not here" this often during a pull (and
# more than LIST_WHEN_MORE_THAN objects are asked of it): from then on, what it lacks is not
# asked for. A remote that holds everything, the usual case, is never listed.
MISSES_BEFORE_LISTING = 20
LIST_WHEN_MORE_THAN = 100


def run_pull(settings: Settings) -> PullReport:
    """Fetch what the targets need with per-object fallback across remotes, then check out."""
    with open_project(settings) as project:
        return pull_project(project, settings)


@dataclass
class FetchResult:
    """What a fetch got, from where, and what no remote could give."""

    served: dict[str, Counter] = field(default_factory=dict)
    lacking: dict[ObjectRef, set[str]] = field(default_factory=dict)
    corrupt: dict[ObjectRef, set[str]] = field(default_factory=dict)
    # Downloads that failed (after retries, or refused): the object may well be there.
    failed: dict[ObjectRef, set[str]] = field(default_factory=dict)
    failure: dict[str, str] = field(default_factory=dict)  # per remote: the first reason
    unresolved: list[ObjectRef] = field(default_factory=list)


class Fetcher:
    """Per-object fallback: every object goes to the first remote in order that delivers it."""

    def __init__(self, repo: Repo, remotes: list[Remote], workdir: Path, jobs: int) -> None:
        self.repo = repo
        self.remotes = remotes
        self.workdir = workdir
        self.jobs = jobs
        self.result = FetchResult(served={remote.spec.name: Counter() for remote in remotes})
        self.progress: Progress | None = None
        self.sizes: dict[ObjectRef, int] = {}  # recorded in .dvc files and dvc.lock
        self._lock = threading.Lock()
        self._folders: set[Path] = set()  # cache folders known to exist

    def in_cache(self, obj: ObjectRef) -> bool:
        return local_cache_path(self.repo, obj).exists()

    def fetch(
        self, objects: list[ObjectRef], first: dict[ObjectRef, str] | None = None
    ) -> list[ObjectRef]:
        """Fetch every object not yet in the cache; return those no remote could deliver.

        An object in ``first`` (pinned with ``remote: NAME``) is asked of that remote first.
        """
        remaining = [obj for obj in dict.fromkeys(objects) if not self.in_cache(obj)]
        first = first or {}
        for remote in self.remotes:
            pinned = [obj for obj in remaining if first.get(obj) == remote.spec.name]
            if pinned and remote.ensure_probed():
                got = self._from(remote, pinned)
                remaining = [obj for obj in remaining if obj not in got]
        for remote in self.remotes:
            if not remaining:
                break
            if not remote.ensure_probed():
                continue
            # What its own remote just missed is not asked of it again.
            ask = [obj for obj in remaining if first.get(obj) != remote.spec.name]
            got = self._from(remote, ask) if ask else set()
            remaining = [obj for obj in remaining if obj not in got]
        return remaining

    def _from(self, remote: Remote, objects: list[ObjectRef]) -> set[ObjectRef]:
        """Fetch what this remote has of ``objects``, ``jobs`` at a time: coroutines on its
        event loop when its filesystem is asynchronous (S3, HTTP), else on ``jobs`` threads."""
        got: set[ObjectRef] = set()
        listing = _ListingOnMisses(remote, objects, self.jobs)
        asynchronous = getattr(remote.fs.fs, "async_impl", False)
        threads = ThreadPoolExecutor(max_workers=1 if asynchronous else self.jobs)

        async def each(obj: ObjectRef) -> None:
            if not remote.status.usable:
                return
            if listing.lacks(obj):
                self._note(self.result.lacking, obj, remote)
                return
            loop = asyncio.get_running_loop()
            size = self.sizes.get(obj) or (remote.status.present or {}).get(obj)
            try:
                fetched = await download_async(remote, obj, self.workdir, size, threads)
            except ObjectMissing:
                self._note(self.result.lacking, obj, remote)
                # A listing may run through this same loop: wait for it from a thread.
                await loop.run_in_executor(threads, listing.missed)
                return
            except Exception as exc:  # noqa: BLE001 - the next remote is tried
                self._failed(remote, obj, exc)
                return
            self._keep(remote, fetched, got)

        try:
            if asynchronous:
                remote.run_async(lambda: bounded_gather(objects, each, self.jobs), None)
            else:
                asyncio.run(bounded_gather(objects, each, self.jobs))
        finally:
            # Interrupted: start nothing new, let running downloads finish.
            threads.shutdown(wait=True, cancel_futures=True)
        return got

    def _failed(self, remote: Remote, obj: ObjectRef, exc: Exception) -> None:
        if isinstance(exc, ObjectCorrupt):
            self._note(self.result.corrupt, obj, remote)
        elif isinstance(exc, ObjectFailed):
            log.debug("%s not from %s: %s", obj.md5, remote.spec.name, exc)
            self._note(self.result.failed, obj, remote)
            self.result.failure.setdefault(remote.spec.name, exc.reason)
        elif isinstance(exc, RemoteFailed):
            log.debug("%s not from %s: %s", obj.md5, remote.spec.name, exc)
        else:
            raise exc

    def _keep(self, remote: Remote, fetched: Fetched, got: set[ObjectRef]) -> None:
        try:
            self._store(fetched.path, fetched.obj)
        finally:
            fetched.path.unlink(missing_ok=True)
        self.result.served[remote.spec.name].add(fetched.size)
        if self.progress is not None:
            self.progress.advance(fetched.size)
        with self._lock:
            got.add(fetched.obj)

    def _store(self, path: Path, obj: ObjectRef) -> None:
        """Move a verified download into the cache: a rename (same disk), so atomic and no copy."""
        from dvc_objects.fs.local import localfs

        odb = self.repo.cache.legacy if obj.legacy else self.repo.cache.local
        target = local_cache_path(self.repo, obj)
        try:
            if target.parent not in self._folders:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(target.parent)
            os.replace(path, target)
        except OSError:
            # Another filesystem (a cache elsewhere): DVC's copy to a temporary name and a rename.
            odb.add(str(path), localfs, obj.md5, check_exists=False)
            return
        odb.protect(str(target))

    def _note(self, table: dict[ObjectRef, set[str]], obj: ObjectRef, remote: Remote) -> None:
        with self._lock:
            table.setdefault(obj, set()).add(remote.spec.name)


class _ListingOnMisses:
    """Lists a remote once it has missed ``MISSES_BEFORE_LISTING`` objects, then answers
    ``lacks`` from the listing; until then (and for a remote that cannot list) it knows nothing."""

    def __init__(self, remote: Remote, objects: list[ObjectRef], jobs: int) -> None:
        self.remote = remote
        self.objects = objects
        self.jobs = jobs
        self.misses = 0
        self.present: dict[ObjectRef, int | None] | None = None
        self._listed = not (remote.lists_cheaply and len(objects) > LIST_WHEN_MORE_THAN)
        self._lock = threading.Lock()

    def lacks(self, obj: ObjectRef) -> bool:
        return self.present is not None and obj not in self.present

    def missed(self) -> None:
        with self._lock:
            self.misses += 1
            if self._listed or self.misses < MISSES_BEFORE_LISTING:
                return
            self._listed = True
        self.remote.check(self.objects, self.jobs)
        if self.remote.status.usable:
            self.present = self.remote.status.present or {}


def pull_project(project: Project, settings: Settings) -> PullReport:
    repo, remotes = project.repo, project.remotes
    jobs = settings.transfer_jobs
    every = outputs_at(repo, [None], settings.targets, strict=True)
    names = [remote.spec.name for remote in remotes]
    outputs = project.owed_outputs(every, pull=True).outputs
    inventory = Inventory(outputs)
    os.makedirs(repo.tmp_dir, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dvc-multiremote-", dir=repo.tmp_dir))
    fetcher = Fetcher(repo, remotes, workdir, jobs)
    try:
        # Manifests first: they say which files a directory needs.
        pins = {out.obj: out.remote for out in outputs if out.remote and out.remote in names}
        fetcher.fetch([out.obj for out in outputs if out.is_dir], pins)
        expand(inventory, lambda obj: load_from_cache(repo, obj))
        objects = inventory.objects()
        fetcher.progress = _progress(repo, inventory, objects, settings)
        fetcher.sizes = {
            out.obj: out.size for out in inventory.outputs if out.size and not out.is_dir
        }
        # An object pinned with ``remote: NAME`` is asked of NAME first.
        first = {
            obj: min(usable, key=names.index)
            for obj, owners in inventory.owners().items()
            if (usable := [name for name in owners if name in names])
        }
        unresolved = fetcher.fetch(list(objects), first)
    finally:
        if fetcher.progress is not None:
            fetcher.progress.close()
        shutil.rmtree(workdir, ignore_errors=True)
    imports = fetch_imports(repo, [out for out in every if out.imported])
    checked_out, checkout_warnings = _checkout(repo, settings.targets)
    report = _report(project, inventory, fetcher.result, unresolved, checked_out, checkout_warnings)
    report.set_aside = [aside for aside, _ in imports]
    report.missing += [failed for _, failed in imports if failed is not None]
    return report


def _progress(
    repo: Repo, inventory: Inventory, objects: dict[ObjectRef, str], settings: Settings
) -> Progress:
    """Progress of what the cache lacks. The bytes are known (the outputs' recorded sizes)
    only when the cache lacks everything, as on a fresh runner; else objects alone count."""
    lacking = [obj for obj in objects if not local_cache_path(repo, obj).exists()]
    sizes = [out.size for out in inventory.outputs]
    fresh = len(lacking) == len(objects) and None not in sizes
    size = sum(s or 0 for s in sizes) if fresh else None
    return Progress("pull", len(lacking), size, enabled=bool(lacking) and not settings.quiet)


def fetch_imports(
    repo: Repo, imports: list[OutputRef]
) -> list[tuple[SetAside, MissingObject | None]]:
    """Imports come from their sources, through DVC, as ``dvc pull`` gets them; each is said
    on a line of its own, with what went wrong when DVC could not fetch it."""

    done: list[tuple[SetAside, MissingObject | None]] = []
    for out in imports:
        try:
            repo.fetch(targets=[os.path.join(repo.root_dir, out.dvc_file)])
        except Exception as exc:  # noqa: BLE001 - said for this import; the pull goes on
            why = f"imported: DVC could not fetch it from its source: {exc}"
            missing = MissingObject(out.md5, out.path, out.size, ["its source"])
            done.append((SetAside(out.path, out.dvc_file, why), missing))
            continue
        why = "imported: fetched from its source by DVC"
        done.append((SetAside(out.path, out.dvc_file, why), None))
    return done


def _checkout(repo: Repo, targets: list[str]) -> tuple[int, list[str]]:
    from dvc.exceptions import CheckoutError

    try:
        stats = repo.checkout(targets=targets or None, allow_missing=True)
    except CheckoutError as exc:
        return 0, [f"checkout left {len(exc.target_infos)} path(s) out: {exc}"]
    return sum(len(paths) for key, paths in stats.items() if key in ("added", "modified")), []


def _report(
    project: Project,
    inventory: Inventory,
    result: FetchResult,
    unresolved: list[ObjectRef],
    checked_out: int,
    warnings: list[str],
) -> PullReport:
    objects = inventory.objects()
    repo = project.repo
    remotes_used = [name for name, counter in result.served.items() if counter.objects]
    remote_reports = []
    for remote in project.remotes:
        status = remote.status
        counter = result.served[status.spec.name]
        message = status.message
        if not remote.contacted:
            message = "not contacted: nothing was needed from it"
        remote_reports.append(
            RemoteReport(
                name=status.spec.name,
                url=status.spec.display_url,
                state=status.state if status.state != "missing" else "ok",
                message=message,
                requests=dict(status.requests),
                objects_served=counter.objects,
                bytes_served=counter.bytes,
            )
        )
    answered = [r.spec.name for r in project.remotes if r.status.usable and r.contacted]
    missing = [
        MissingObject(
            md5=obj.md5,
            path=objects.get(obj, obj.md5),
            size=None,
            missing_on=sorted(result.lacking.get(obj, set()) | result.corrupt.get(obj, set()))
            or [name for name in answered if name not in result.failed.get(obj, set())],
        )
        for obj in sorted(unresolved, key=lambda o: objects.get(o, o.md5))
    ]
    outputs = []
    for out in inventory.outputs:
        entries = inventory.contents.get(out.obj) if out.is_dir else None
        own = {out.obj, *(entry.obj for entry in entries or [])}
        lacking = [obj for obj in unresolved if obj in own]
        report = OutputReport.of(out, entries)
        if lacking:
            report.missing = {"any remote": len(lacking)}
        if out.is_dir and entries is None:
            report.reason = (
                "its .dir manifest is on no remote that answered, so its files are unknown"
            )
        outputs.append(report)
    notes = list(project.warnings) + warnings
    for remote in project.remotes:
        if remote.status.state not in ("ok", "missing") and remotes_used:
            notes.append(
                f"Fell back past {remote.spec.name} ({remote.status.state}: {remote.status.message})."
            )
    for name, why in result.failure.items():
        count = sum(1 for names in result.failed.values() if name in names)
        notes.append(
            f"{name}: {count} download(s) failed, so it may hold those objects all the same: {why}"
        )
    corrupt = sorted({name for names in result.corrupt.values() for name in names})
    if corrupt:
        notes.append(f"Corrupt copies were refused from: {', '.join(corrupt)}.")
    fallback = [name for name in remotes_used if name != project.remotes[0].spec.name]
    if fallback and remotes_used:
        notes.append(f"Fallback used: objects came from {', '.join(remotes_used)}.")
    sizes = {obj: size for obj in objects if (size := _cached_size(repo, obj)) is not None}
    return PullReport(
        command="pull",
        scope="workspace",
        remotes=remote_reports,
        outputs=outputs,
        missing=missing,
        totals={"objects": len(objects), "bytes": sum(sizes.values())},
        warnings=notes,
        remotes_used=remotes_used,
        checked_out=checked_out,
    )


def _cached_size(repo: Repo, obj: ObjectRef) -> int | None:
    """The size of an object in the local cache; None when the cache lacks it."""
    try:
        return os.stat(local_cache_path(repo, obj)).st_size
    except OSError:
        return None
