"""``push``: what the local cache holds, to every remote at once; manifests after their files."""

from __future__ import annotations

import collections
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dvc_multiremote.inventory import Inventory, ObjectRef, expand, outputs_at
from dvc_multiremote.progress import Progress
from dvc_multiremote.project import Project, open_project
from dvc_multiremote.remotes import Remote, RemoteFailed
from dvc_multiremote.remotes.concurrency import Feed
from dvc_multiremote.remotes.transfer import Counter, ObjectFailed, upload_async
from dvc_multiremote.report import MissingObject, OutputReport, PushReport, RemoteReport
from dvc_multiremote.scope import load_from_cache, local_cache_path, owes

if TYPE_CHECKING:
    from pathlib import Path

    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


def run_push(settings: Settings) -> PushReport:
    """Push every object the targets reference and the cache holds to every selected remote."""
    with open_project(settings) as project:
        return push_project(project, settings)


@dataclass
class PushOutcome:
    """One remote's share of a push."""

    pushed: Counter = field(default_factory=Counter)
    failed: set[ObjectRef] = field(default_factory=set)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def why(self) -> str:
        """What the failed uploads said, the most common first: "" when none failed."""
        if not self.failed or not self.reasons:
            return ""
        reason, count = self.reasons.most_common(1)[0]
        return f"{len(self.failed):,} upload(s) failed; {count:,} said: {reason}"


def push_project(project: Project, settings: Settings) -> PushReport:
    repo, remotes = project.repo, project.remotes
    every = outputs_at(repo, [None], settings.targets, strict=True)
    owed = project.owed_outputs(every)
    inventory = Inventory(owed.outputs)
    expand(inventory, lambda obj: load_from_cache(repo, obj))
    objects = inventory.objects()
    owners = inventory.owners()
    cached = {obj for obj in objects if local_cache_path(repo, obj).exists()}
    sources = {obj: local_cache_path(repo, obj) for obj in cached}
    outcomes = {remote.spec.name: PushOutcome() for remote in remotes}

    progress = Progress("push", 0, 0, enabled=not settings.quiet)
    stopping = threading.Event()

    def push_to(remote: Remote) -> None:
        # Each remote gets what it owes: an output pinned to another remote is not its own.
        name = remote.spec.name
        own = {obj: path for obj, path in sources.items() if owes(owners, obj, name)}
        _push_remote(remote, inventory, own, outcomes[name], settings, progress, stopping)

    pool = ThreadPoolExecutor(max_workers=max(1, len(remotes)))
    try:
        for future in [pool.submit(push_to, remote) for remote in remotes]:
            future.result()
    except BaseException:
        # Interrupted (SIGTERM, Ctrl-C; signals reach this thread only): every remote's
        # check stops, no upload starts, the running ones end, then the run unwinds.
        stopping.set()
        raise
    finally:
        pool.shutdown(wait=True)
        progress.close()
    report = _report(project, inventory, objects, cached, outcomes)
    report.set_aside = owed.set_aside
    report.warnings += owed.warnings
    return report


def _push_remote(
    remote: Remote,
    inventory: Inventory,
    sources: dict[ObjectRef, Path],
    outcome: PushOutcome,
    settings: Settings,
    progress: Progress,
    stopping: threading.Event,
) -> None:
    """Fill one remote: each file goes up as soon as the check says the remote lacks it (a
    remote checked object by object starts uploading long before its last answer); manifests
    last, once every file they list is there. Once ``stopping`` is set, nothing new starts."""
    if not remote.ensure_probed():
        return
    present: set[ObjectRef] = set()
    jobs = settings.transfer_jobs
    uploads = _Uploads(remote, sources, outcome, jobs, progress, present, stopping)

    def heard(obj: ObjectRef, there: bool) -> None:
        # On the check's own thread: decide and hand over, never wait.
        if stopping.is_set():
            raise _Stopped  # ends the check: its remaining requests are not sent
        if there:
            with outcome.lock:
                present.add(obj)
        elif obj in sources and not obj.is_dir:
            progress.grow(1, sources[obj].stat().st_size)
            uploads.put(obj)

    try:
        remote.check(sources, settings.check_jobs, heard)
    except BaseException:
        # Interrupted (SIGTERM, Ctrl-C) or failed: start nothing new, let running uploads end.
        uploads.stop()
        raise
    finally:
        uploads.close()
    if remote.status.present is None or stopping.is_set():
        return  # the check itself failed (the remote's state says why), or the run stops
    # A manifest goes up only once every file it lists is there: DVC trusts a manifest.
    manifests = []
    for out in inventory.outputs:
        if not out.is_dir or out.obj not in sources or out.obj in present:
            continue
        entries = inventory.contents.get(out.obj) or []
        if all(entry.obj in present for entry in entries):
            manifests.append(out.obj)
        else:
            outcome.failed.add(out.obj)
    manifests = list(dict.fromkeys(manifests))
    for obj in manifests:
        progress.grow(1, sources[obj].stat().st_size)
    uploads = _Uploads(remote, sources, outcome, jobs, progress, present, stopping)
    try:
        for obj in manifests:
            uploads.put(obj)
    except BaseException:
        uploads.stop()
        raise
    finally:
        uploads.close()


class _Stopped(Exception):
    """The run is stopping: a remote's check ends at its next answer."""


class _Uploads:
    """One remote's uploads, ``jobs`` at once, handed over from any thread to coroutines on an
    event loop: the filesystem's own when it is asynchronous (S3, HTTP: a small file costs no
    thread), else fsspec's, each upload then on one of ``jobs`` threads. Each outcome is
    recorded in ``outcome`` and ``present``."""

    def __init__(
        self,
        remote: Remote,
        sources: dict[ObjectRef, Path],
        outcome: PushOutcome,
        jobs: int,
        progress: Progress,
        present: set[ObjectRef],
        stopping: threading.Event,
    ) -> None:
        from fsspec.asyn import get_loop

        self.remote = remote
        self.stopping = stopping
        self.sources = sources
        self.outcome = outcome
        self.progress = progress
        self.present = present
        # Threads: every upload (a synchronous filesystem), or the large ones (DVC's).
        self.threads = ThreadPoolExecutor(max_workers=max(1, jobs))
        asynchronous = getattr(remote.fs.fs, "async_impl", False)
        self.feed = Feed(remote.fs.fs.loop if asynchronous else get_loop(), self._one, jobs)

    def put(self, obj: ObjectRef) -> None:
        if not self.stopping.is_set():
            self.feed.put(obj)

    def stop(self) -> None:
        self.feed.stop()  # uploads under way end; a large one may still be on a thread

    def close(self) -> None:
        """Wait for every upload started."""
        try:
            self.feed.close()
        finally:
            self.threads.shutdown(wait=True)

    async def _one(self, obj: ObjectRef) -> None:
        if self.stopping.is_set():
            return
        if not self.remote.status.usable:
            self._failed(obj)
            return
        try:
            size = await upload_async(self.remote, obj, self.sources[obj], self.threads)
        except (RemoteFailed, ObjectFailed) as exc:
            self._failed(obj, exc)
            return
        self._pushed(obj, size)

    def _failed(self, obj: ObjectRef, exc: Exception | None = None) -> None:
        # With no exception: known absent and now not pushed (the remote failed meanwhile).
        if exc is not None:
            log.debug("push of %s to %s failed: %s", obj.md5, self.remote.spec.name, exc)
        with self.outcome.lock:
            self.outcome.failed.add(obj)
            if isinstance(exc, ObjectFailed):
                self.outcome.reasons[exc.reason] += 1

    def _pushed(self, obj: ObjectRef, size: int) -> None:
        self.outcome.pushed.add(size)
        self.progress.advance(size)
        with self.outcome.lock:
            self.present.add(obj)


def _report(
    project: Project,
    inventory: Inventory,
    objects: dict[ObjectRef, str],
    cached: set[ObjectRef],
    outcomes: dict[str, PushOutcome],
) -> PushReport:
    remote_reports = []
    for remote in project.remotes:
        status, outcome = remote.status, outcomes[remote.spec.name]
        usable = status.usable
        remote_reports.append(
            RemoteReport(
                name=status.spec.name,
                url=status.spec.display_url,
                state=status.state if status.state != "missing" else "ok",
                message=status.message or outcome.why(),
                requests=dict(status.requests),
                objects_pushed=outcome.pushed.objects,
                bytes_pushed=outcome.pushed.bytes,
                objects_failed=len(outcome.failed) if usable else None,
            )
        )
    not_in_cache = [
        MissingObject(md5=obj.md5, path=path, size=None, missing_on=["cache"])
        for obj, path in sorted(objects.items(), key=lambda item: item[1])
        if obj not in cached
    ]
    failed = {
        obj: sorted(name for name, outcome in outcomes.items() if obj in outcome.failed)
        for obj in objects
    }
    missing = [
        MissingObject(md5=obj.md5, path=objects[obj], size=None, missing_on=names)
        for obj, names in sorted(failed.items(), key=lambda item: objects[item[0]])
        if names
    ]
    outputs = []
    for out in inventory.outputs:
        entries = inventory.contents.get(out.obj) if out.is_dir else None
        report = OutputReport.of(out, entries)
        own = {out.obj, *(entry.obj for entry in entries or [])}
        for name, outcome in outcomes.items():
            count = len(own & outcome.failed)
            if count:
                report.missing[name] = count
                if out.is_dir and out.obj in outcome.failed:
                    report.manifest_missing.append(name)  # "5 of 5 files and the manifest"
        if out.obj not in cached:
            report.reason = "not in the local cache, so it cannot be pushed from here"
        outputs.append(report)
    return PushReport(
        command="push",
        scope="workspace",
        remotes=remote_reports,
        outputs=outputs,
        missing=missing,
        totals={
            "objects": len(objects),
            "bytes": sum(
                p.stat().st_size
                for o in cached
                if (p := local_cache_path(project.repo, o)).exists()
            ),
        },
        warnings=list(project.warnings),
        not_in_cache=not_in_cache,
    )
