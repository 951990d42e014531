"""What a run covers: the outputs in scope, their directories expanded, the remotes probed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.errors import UsageError
from dvc_multiremote.inventory import (
    DirEntry,
    Inventory,
    ObjectRef,
    OutputRef,
    SetAside,
    all_commit_outputs,
    expand,
    merge_base,
    outputs_at,
    read_manifest,
    resolve_rev,
    set_aside,
)

if TYPE_CHECKING:
    from dvc.repo import Repo

    from dvc_multiremote.project import Project
    from dvc_multiremote.remotes import Remote
    from dvc_multiremote.remotes.base import Heard
    from dvc_multiremote.settings import Settings

log = logging.getLogger(__name__)


def local_cache_path(repo: Repo, obj: ObjectRef) -> Path:
    """Where the local DVC cache keeps an object."""
    odb = repo.cache.legacy if obj.legacy else repo.cache.local
    return Path(odb.oid_to_path(obj.md5))


def load_from_cache(repo: Repo, obj: ObjectRef) -> list[DirEntry] | None:
    """A directory's entries from the local cache, or None if it is absent or unreadable."""
    odb = repo.cache.legacy if obj.legacy else repo.cache.local
    try:
        return read_manifest(odb, obj)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as exc:  # noqa: BLE001 - a corrupt copy (dvc_data's ObjectFormatError)
        log.debug("local copy of %s unreadable: %s", obj.md5, exc)
        return None


# May this remote serve this manifest? (sync asks its --budget.)
Admit = Callable[["Remote", ObjectRef], bool]


@dataclass
class Gathered:
    """The expanded inventory of a run, the commits it came from, and the manifests it read
    from remotes (object -> remote name and bytes)."""

    inventory: Inventory
    revisions: list[str]
    manifest_reads: dict[ObjectRef, tuple[str, int]] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def gather(
    project: Project,
    settings: Settings,
    read_order: list[str] | None = None,
    admit: Admit | None = None,
) -> Gathered:
    """Outputs in scope, every directory expanded through its manifest.

    Manifests missing from the local cache are read from the remotes in ``read_order``
    (default: the run's remote order) that ``admit`` lets serve them; a remote is probed when
    first asked (the rest are probed by ``check_all``, each on its own thread).
    """
    scope = scope_outputs(project.repo, settings)
    owed = project.owed_outputs(scope.outputs)
    inventory = Inventory(owed.outputs)
    readers = project.remotes
    if read_order:
        readers = sorted(readers, key=lambda r: read_order.index(r.spec.name))
    loader = ManifestLoader(project.repo, readers, admit)
    expand(inventory, loader)
    if scope.base_dirs:
        exclude_base_files(inventory, scope.base_dirs, loader)
    return Gathered(inventory, scope.revisions, loader.fetched, owed.set_aside, owed.warnings)


@dataclass
class Owed:
    """The outputs our remotes owe in a run, those set aside (and why), and what to tell."""

    outputs: list[OutputRef]
    set_aside: list[SetAside]
    warnings: list[str]


def owed_outputs(
    outputs: list[OutputRef], remotes: list[str], configured: list[str], *, pull: bool = False
) -> Owed:
    """What DVC's output model says the run's remotes owe, as ``dvc push`` applies it.

    Imports live in their sources' storage; ``push: false`` outputs are expected nowhere (a
    ``pull`` still takes them where they happen to be); an output pinned to a remote this run
    does not use is out of scope (said once per remote). ``pull`` keeps pinned outputs: the pin
    only says where to look first.
    """
    unknown = next((o for o in outputs if o.remote and o.remote not in configured), None)
    if unknown is not None:
        raise UsageError(
            f"{unknown.path} is pinned to remote {unknown.remote!r} ({unknown.dvc_file}), which "
            "is not a remote of this project; DVC would refuse it too.",
            fix=f"Add the remote, or correct `remote:` in {unknown.dvc_file}.",
        )
    kept: list[OutputRef] = []
    aside = set_aside(outputs, keep_push_false=pull)
    elsewhere: dict[str, list[OutputRef]] = {}
    for out in outputs:
        if out.imported or not (out.push or pull):
            continue
        if out.remote is not None and out.remote not in remotes and not pull:
            elsewhere.setdefault(out.remote, []).append(out)
            continue
        kept.append(out)
    warnings = []
    for name, outs in elsewhere.items():
        aside += [SetAside(o.path, o.dvc_file, f"pinned to remote {name!r}") for o in outs]
        warnings.append(
            f"{len(outs)} output(s) pinned to remote {name!r} are out of scope: this run does not "
            f"use {name!r} ({', '.join(o.path for o in outs[:3])}{', …' if len(outs) > 3 else ''})."
        )
    return Owed(kept, aside, warnings)


@dataclass
class Scope:
    """The outputs a run checks, the commits they came from, and (for a range) the base's dirs."""

    outputs: list[OutputRef]
    revisions: list[str] = field(default_factory=list)
    base_dirs: dict[str, ObjectRef] = field(default_factory=dict)


def scope_outputs(repo: Repo, settings: Settings) -> Scope:
    targets = settings.targets
    if settings.rev:
        sha = resolve_rev(repo, settings.rev, "--rev")
        return Scope(outputs_at(repo, [sha], targets, strict=True), [sha], {})
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
        return Scope(new, [fork, head], base_dirs)
    if settings.all_commits:
        return Scope(all_commit_outputs(repo, targets), [], {})
    return Scope(outputs_at(repo, [None], targets, strict=True), [], {})


def exclude_base_files(
    inventory: Inventory, base_dirs: dict[str, ObjectRef], loader: ManifestLoader
) -> None:
    """In a range, files a changed directory already had at the merge-base are not the PR's."""
    for out in inventory.outputs:
        before = base_dirs.get(out.path)
        if out.is_dir and before is not None and before != out.obj:
            entries = loader(before) or []
            now = {entry.obj for entry in inventory.contents.get(out.obj) or []}
            inventory.excluded.update(entry.obj for entry in entries if entry.obj in now)


class ManifestLoader:
    """Reads a ``.dir`` manifest from the local cache, else from the first remote that has it."""

    def __init__(self, repo: Repo, remotes: list[Remote], admit: Admit | None = None) -> None:
        self.repo = repo
        self.remotes = remotes
        self.admit = admit
        self.cache: dict[ObjectRef, list[DirEntry] | None] = {}
        self.fetched: dict[ObjectRef, tuple[str, int]] = {}

    def __call__(self, obj: ObjectRef) -> list[DirEntry] | None:
        if obj not in self.cache:
            self.cache[obj] = self._load(obj)
        return self.cache[obj]

    def _load(self, obj: ObjectRef) -> list[DirEntry] | None:
        entries = load_from_cache(self.repo, obj)
        if entries is not None:
            return entries
        keep = local_cache_path(self.repo, obj)
        for remote in self.remotes:
            if self.admit is not None and not self.admit(remote, obj):
                continue
            sizes: list[int] = []
            entries = remote.load_manifest(obj, keep, sizes)
            if entries is not None:
                self.fetched[obj] = (remote.spec.name, sum(sizes))
                return entries
        return None


def check_all(
    remotes: list[Remote],
    objects: dict[ObjectRef, str],
    jobs: int,
    owners: dict[ObjectRef, frozenset[str]] | None = None,
    heard: Callable[[Remote], Heard] | None = None,
) -> None:
    """Which of ``objects`` each remote holds, each remote on its own thread: probed (if not
    yet) and then checked, so one remote's slow probe does not hold back the others. A remote
    is asked only for what it owes (``owners``: objects pinned to some remotes). ``heard``
    gives each remote's check a callback told every answer as it comes."""

    def probe_and_check(remote: Remote) -> None:
        if remote.ensure_probed():
            name = remote.spec.name
            owed = objects if not owners else [o for o in objects if owes(owners, o, name)]
            remote.check(owed, jobs, heard(remote) if heard is not None else None)

    on_remotes(remotes, probe_and_check)


def on_remotes(remotes: list[Remote], work: Callable[[Remote], object]) -> None:
    if len(remotes) <= 1:
        for remote in remotes:
            work(remote)
        return
    with ThreadPoolExecutor(max_workers=len(remotes)) as pool:
        for future in [pool.submit(work, remote) for remote in remotes]:
            future.result()


def owes(owners: dict[ObjectRef, frozenset[str]], obj: ObjectRef, remote: str) -> bool:
    """Whether ``remote`` owes ``obj`` (every remote does, unless the object is pinned)."""
    names = owners.get(obj)
    return names is None or remote in names
