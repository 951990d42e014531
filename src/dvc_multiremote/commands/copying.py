"""``sync``'s copies: each object from the best source that delivers good bytes, to every
remote that lacks it, ``--jobs`` at once."""

from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.commands.copy_plan import Copy
from dvc_multiremote.remotes import RemoteFailed
from dvc_multiremote.remotes.transfer import (
    ObjectCorrupt,
    ObjectFailed,
    ObjectMissing,
    download,
    md5_matches,
    run_parallel,
    upload,
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
    """Runs the copies on ``jobs`` threads: files as they are started (some while the checks
    still run), the largest waiting one first, then the manifests whose files are all there."""

    def __init__(
        self, project: Project, budget: Budget, tally: Tally, jobs: int, progress: Progress
    ) -> None:
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
        self.waiting: queue.PriorityQueue[tuple[int, int, Copy | None]] = queue.PriorityQueue()
        self.counter = itertools.count()
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.workers = [
            threading.Thread(target=self._work, name=f"sync-copy-{n}", daemon=True)
            for n in range(self.jobs)
        ]
        for worker in self.workers:
            worker.start()

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            # Interrupted (SIGTERM, Ctrl-C) or failed: start nothing new, let running copies end.
            self.stopping.set()
        self._join()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _work(self) -> None:
        while True:
            _, _, copy = self.waiting.get()
            if copy is None:
                return
            if self.stopping.is_set():
                continue
            try:
                _copy(copy, self.by_name, self.budget, self.tally, self.workdir)
            except BaseException as exc:  # noqa: BLE001 - raised again by ``finish``
                self.errors.append(exc)
                self.stopping.set()
            self.progress.advance(copy.size or 0)

    def _join(self) -> None:
        for _ in self.workers:
            self.waiting.put((sys.maxsize, next(self.counter), None))
        for worker in self.workers:
            worker.join()
        self.workers = []

    def start(self, copy: Copy) -> None:
        """Queue one copy (from any thread; never waits)."""
        self.progress.grow(1, copy.size or 0)
        rank = -(copy.size or 0) if self.largest_first else 0
        self.waiting.put((rank, next(self.counter), copy))

    def finish(self, inventory: Inventory, copies: list[Copy], started: set[ObjectRef]) -> None:
        """The plan's files not started yet, then, once every file is done, its manifests."""
        for copy in copies:
            if not copy.obj.is_dir and copy.obj not in started:
                self.start(copy)
        self._join()
        if self.errors:
            raise self.errors[0]
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

        def copy_one(copy: Copy) -> None:
            _copy(copy, self.by_name, self.budget, self.tally, self.workdir)
            self.progress.advance(copy.size or 0)

        for copy in manifests:
            self.progress.grow(1, copy.size or 0)
        run_parallel(manifests, copy_one, self.jobs)


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
