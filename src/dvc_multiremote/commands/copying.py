"""``sync``'s copies: each object from the best source that delivers good bytes, to every
remote that lacks it, ``--jobs`` at once."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.commands.copy_plan import Copy
from dvc_multiremote.remotes import RemoteFailed
from dvc_multiremote.remotes.concurrency import Feed
from dvc_multiremote.remotes.transfer import (
    ObjectCorrupt,
    ObjectFailed,
    ObjectMissing,
    download_async,
    hashing,
    md5_matches,
    upload_async,
)
from dvc_multiremote.scope import local_cache_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvc_multiremote.commands.budget import Budget
    from dvc_multiremote.commands.sync import Tally
    from dvc_multiremote.inventory import Inventory, ObjectRef
    from dvc_multiremote.progress import Progress
    from dvc_multiremote.project import Project
    from dvc_multiremote.remotes import Remote

log = logging.getLogger(__name__)


class Copier:
    """Runs the copies, ``jobs`` at once, as coroutines on fsspec's event loop, where DVC's S3
    and HTTP filesystems do their I/O (a small file's copy costs no thread; a synchronous
    filesystem's part of a copy, a local remote's, runs on one of ``jobs`` threads): files as
    they are started (some while the checks still run), the largest waiting one first, then
    the manifests whose files are all there."""

    def __init__(
        self, project: Project, budget: Budget, tally: Tally, jobs: int, progress: Progress
    ) -> None:
        from fsspec.asyn import get_loop

        self.project = project
        self.budget = budget
        self.tally = tally
        self.jobs = max(1, jobs)
        self.progress = progress
        self.by_name = {remote.spec.name: remote for remote in project.remotes}
        os.makedirs(project.repo.tmp_dir, exist_ok=True)
        self.workdir = Path(
            tempfile.mkdtemp(prefix="dvc-multiremote-sync-", dir=project.repo.tmp_dir)
        )
        # Without a budget, largest first: a big file started last would run on alone after
        # all the rest. Under a budget, the plan's order, so the budget goes as planned.
        self.largest_first = not budget.limits
        self.loop = get_loop()
        self.threads = ThreadPoolExecutor(max_workers=self.jobs)
        self.feed: Feed[Copy] | None = self._feed()

    def _feed(self) -> Feed[Copy]:
        def rank(copy: Copy) -> int:
            return -(copy.size or 0) if self.largest_first else 0

        return Feed(self.loop, self._one, self.jobs, rank)

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._close()
            elif self.feed is not None:
                # Interrupted (SIGTERM, Ctrl-C) or failed: start nothing new, let running
                # copies end; the run's own exception is the one that propagates.
                self.feed.stop()
                try:
                    self._close()
                except Exception as exc:  # noqa: BLE001 - the run already fails
                    log.debug("a copy failed while the run stopped: %s", exc)
        finally:
            self.threads.shutdown(wait=True)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _close(self) -> None:
        """Wait for every copy started; raise the first one's unexpected error."""
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.close()

    def start(self, copy: Copy) -> None:
        """Queue one copy (from any thread; never waits)."""
        self.progress.grow(1, copy.size or 0)
        if self.feed is not None:
            self.feed.put(copy)

    def finish(self, inventory: Inventory, copies: list[Copy], started: set[ObjectRef]) -> None:
        """The plan's files not started yet, then, once every file is done, its manifests."""
        for copy in copies:
            if not copy.obj.is_dir and copy.obj not in started:
                self.start(copy)
        self._close()
        tally, by_name = self.tally, self.by_name
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
                local = local_cache_path(self.project.repo, copy.obj)
                manifests.append(Copy(copy.obj, copy.path, copy.size, ready, copy.sources, local))
            for name in set(copy.destinations) - set(ready):
                tally.note(tally.failed, copy.obj, name)
        self.feed = self._feed()
        for copy in manifests:
            self.start(copy)
        self._close()

    async def _one(self, copy: Copy) -> None:
        await self._copy(copy)
        self.progress.advance(copy.size or 0)

    async def _copy(self, copy: Copy) -> None:
        """Bring one object from the best source that delivers good bytes to each destination."""
        budget, tally = self.budget, self.tally
        destinations = [self.by_name[name] for name in copy.destinations]
        local = copy.local
        if (
            copy.obj.is_dir
            and local is not None
            and local.exists()
            and await hashing(local, lambda: md5_matches(local, copy.obj), self.threads)
        ):
            # The manifest was read (and checked) while expanding the scope: no second download.
            await self._deliver(copy, destinations, local, copy.sources[0])
            return
        for name in copy.sources:
            source = self.by_name[name]
            if not source.status.usable:
                continue
            if not budget.reserve(name, copy.size):
                continue
            try:
                fetched = await download_async(
                    source, copy.obj, self.workdir, copy.size, self.threads
                )
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
                await self._deliver(copy, destinations, fetched.path, name)
            finally:
                fetched.path.unlink(missing_ok=True)
            return
        if any(budget.capped(name) and not budget.fits(name, copy.size) for name in copy.sources):
            with tally.lock:
                tally.skipped_budget.add(copy.obj)
        else:
            for lacking in copy.destinations:
                tally.note(tally.failed, copy.obj, lacking)

    async def _deliver(
        self, copy: Copy, destinations: list[Remote], path: Path, source: str
    ) -> None:
        """Upload one verified local file to every destination that lacks it."""
        tally = self.tally
        size = path.stat().st_size
        for destination in destinations:
            if not destination.status.usable:
                tally.note(tally.failed, copy.obj, destination.spec.name)
                continue
            try:
                await upload_async(destination, copy.obj, path, self.threads)
            except (ObjectFailed, RemoteFailed) as exc:
                log.debug("%s not to %s: %s", copy.obj.md5, destination.spec.name, exc)
                tally.note(tally.failed, copy.obj, destination.spec.name)
                continue
            tally.copied(source, destination.spec.name, copy.obj, size)


def _all_there(remote: Remote, tally: Tally, objs: Iterable[ObjectRef]) -> bool:
    present = remote.status.present or {}
    copied = tally.copied_to.get(remote.spec.name, set())
    return all(obj in present or obj in copied for obj in objs)
