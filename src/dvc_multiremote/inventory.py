"""What a DVC project references: outputs per scope, and the objects behind them."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dvc_multiremote.errors import UsageError

if TYPE_CHECKING:
    from dvc.output import Output
    from dvc.repo import Repo


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    """One object as remotes store it: DVC 3 (``files/md5/``) or legacy DVC 2 layout."""

    md5: str
    legacy: bool = False

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass
class OutputRef:
    """One DVC output (a ``.dvc`` file's or a ``dvc.lock`` stage's) at some revision."""

    path: str
    dvc_file: str
    md5: str
    legacy: bool
    is_dir: bool
    size: int | None
    nfiles: int | None
    line: int | None = None
    remote: str | None = None  # ``remote: NAME``: the output belongs to that remote alone
    push: bool = True  # ``push: false``: never to leave the machine
    imported: bool = False  # ``dvc import`` (or a not-downloaded import): its source holds it

    @property
    def obj(self) -> ObjectRef:
        return ObjectRef(self.md5, self.legacy)


@dataclass(frozen=True)
class SetAside:
    """An output a command leaves alone on purpose, and why (listed apart in the report)."""

    path: str
    dvc_file: str
    why: str


@dataclass(slots=True)
class DirEntry:
    relpath: str
    obj: ObjectRef


@dataclass
class Inventory:
    """Outputs in scope, their directory contents, and every object they need."""

    outputs: list[OutputRef]
    contents: dict[ObjectRef, list[DirEntry] | None] = field(default_factory=dict)
    excluded: set[ObjectRef] = field(default_factory=set)
    shard: tuple[int, int] | None = None

    def owners(self) -> dict[ObjectRef, frozenset[str]]:
        """Objects that only some remotes owe (every output referencing them is pinned): the
        names of those remotes. Objects not listed here are owed by every remote."""
        if not any(out.remote for out in self.outputs):
            return {}  # the usual case, at no cost for a million files
        pinned: dict[ObjectRef, set[str]] = {}
        everywhere: set[ObjectRef] = set()
        for out in self.outputs:
            objs = [out.obj, *(entry.obj for entry in self.contents.get(out.obj) or [])]
            if out.remote is None:
                everywhere.update(objs)
            else:
                for obj in objs:
                    pinned.setdefault(obj, set()).add(out.remote)
        return {obj: frozenset(names) for obj, names in pinned.items() if obj not in everywhere}

    def objects(self) -> dict[ObjectRef, str]:
        """Every object in scope with a path a person recognises (first referencing output)."""
        found: dict[ObjectRef, str] = {}
        for out in self.outputs:
            found.setdefault(out.obj, out.path)
            for entry in self.contents.get(out.obj) or []:
                found.setdefault(entry.obj, posixpath.join(out.path, entry.relpath))
        for obj in self.excluded:
            found.pop(obj, None)
        if self.shard is not None:
            found = {obj: path for obj, path in found.items() if in_shard(obj.md5, self.shard)}
        return found


def in_shard(md5: str, shard: tuple[int, int]) -> bool:
    """Whether an md5 falls in shard I of N: contiguous ranges of the hash's first 8 hex digits."""
    index, count = shard
    return int(md5[:8], 16) * count // 16**8 == index - 1


def resolve_rev(repo: Repo, rev: str, option: str) -> str:
    """The commit SHA a revision names, or a usage error naming the option."""
    from scmrepo.exceptions import RevError

    try:
        return str(repo.scm.resolve_rev(rev))
    except RevError:
        raise UsageError(
            f"{option} names {rev!r}, which is not a commit in this repository."
        ) from None


def merge_base(repo: Repo, base: str, head: str) -> str:
    """``git merge-base`` of two commits, or a usage error naming ``--range``."""
    from dvc_multiremote.history import merge_base as best_common_ancestor

    found = best_common_ancestor(Path(repo.scm.root_dir), base, head)
    if found is None:
        raise UsageError(
            f"--range {base}..{head} has no merge-base; the two commits share no history."
        )
    return found


def collect_outputs(repo: Repo, targets: list[str], *, strict: bool = True) -> list[OutputRef]:
    """Cached outputs of ``targets`` (all when empty) in the revision ``repo`` is switched to."""
    from dvc.exceptions import DvcException

    def onerror(target: str, exc: Exception) -> None:
        if strict:
            raise UsageError(
                f"Target {target!r} is not a .dvc file, output or stage: {exc}"
            ) from None

    try:
        view = repo.index.targets_view(targets or None, onerror=onerror)
        outs = list(view.outs)
    except DvcException as exc:
        raise UsageError(
            f"DVC could not read the project's .dvc files and dvc.lock: {exc}"
        ) from None
    found: list[OutputRef] = []
    texts: dict[str, str] = {}
    for out in outs:
        ref = _output_ref(repo, out, texts)
        if ref is not None:
            found.append(ref)
    return found


def _output_ref(repo: Repo, out: Output, texts: dict[str, str]) -> OutputRef | None:
    if not out.use_cache:
        return None  # ``cache: false``: DVC neither pushes nor fetches it
    # A repo import, an import not downloaded (no hash), or an import-url from a versioned
    # source: DVC reads it from its source and never pushes it (its index swaps the storage).
    stage = out.stage
    imported = stage.is_repo_import or stage.is_partial_import or _versioned_import(stage)
    if not imported and (not out.hash_info or not out.hash_info.value):
        return None
    fs = repo.fs
    stage_path = out.stage.path
    if not stage_path.endswith(".dvc"):
        stage_path = fs.join(fs.dirname(stage_path), "dvc.lock")
    dvc_file = fs.relpath(stage_path, repo.root_dir)
    md5 = str(out.hash_info.value) if out.hash_info and out.hash_info.value else ""
    return OutputRef(
        path=out.fs.relpath(out.fs_path, repo.root_dir).replace("\\", "/"),
        dvc_file=dvc_file.replace("\\", "/"),
        md5=md5,
        legacy=out.hash_info.name == "md5-dos2unix",
        is_dir=md5.endswith(".dir"),
        size=out.meta.size if out.meta else None,
        nfiles=out.meta.nfiles if out.meta else None,
        line=_line_of(fs, stage_path, md5, texts) if md5 else None,
        remote=out.remote or None,
        push=bool(out.can_push),
        imported=imported,
    )


def _versioned_import(stage: Any) -> bool:
    """An ``import-url`` from a version-aware source (not a repo import: that would clone)."""
    try:
        return bool(stage.is_import and not stage.is_db_import and stage.is_versioned_import)
    except Exception:  # noqa: BLE001 - a dependency DVC cannot open: an ordinary output then
        return False


def _line_of(fs: Any, path: str, needle: str, texts: dict[str, str]) -> int | None:
    if path not in texts:
        try:
            texts[path] = fs.read_text(path)
        except OSError:
            texts[path] = ""
    for number, line in enumerate(texts[path].splitlines(), start=1):
        if needle in line:
            return number
    return None


def _identity(out: OutputRef) -> tuple[str, str, bool, str | None, bool, bool]:
    """One output at several commits is one, unless its pin, push or import flag changed."""
    return (out.path, out.md5, out.legacy, out.remote, out.push, out.imported)


def set_aside(outputs: list[OutputRef], *, keep_push_false: bool = False) -> list[SetAside]:
    """The outputs our remotes do not owe, and why: imports, ``push: false``."""
    found = []
    for out in outputs:
        if out.imported:
            why = "imported: its data lives in its source's storage, which DVC fetches it from"
        elif not out.push and not keep_push_false:
            why = "push: false: never pushed, so expected on no remote"
        else:
            continue
        found.append(SetAside(out.path, out.dvc_file, why))
    return found


def outputs_at(
    repo: Repo, revs: Iterable[str | None], targets: list[str], *, strict: bool
) -> list[OutputRef]:
    """Outputs at each revision (``None`` is the working tree), without repeats."""
    seen: dict[tuple[str, str, bool, str | None, bool, bool], OutputRef] = {}
    for rev in revs:
        if rev is None:
            outs = collect_outputs(repo, targets, strict=strict)
        else:
            outs = []
            for _ in repo.brancher(revs=[rev], workspace=False):
                outs = collect_outputs(repo, targets, strict=strict)
        for out in outs:
            seen.setdefault(_identity(out), out)
    return list(seen.values())


def all_commit_outputs(repo: Repo, targets: list[str]) -> list[OutputRef]:
    """Outputs referenced by any commit of any branch or tag, and by the working tree."""
    seen: dict[tuple[str, str, bool, str | None, bool, bool], OutputRef] = {}
    for _ in repo.brancher(all_branches=True, all_tags=True, all_commits=True, workspace=True):
        for out in collect_outputs(repo, targets, strict=False):
            seen.setdefault(_identity(out), out)
    return list(seen.values())


ManifestLoader = Callable[[ObjectRef], list[DirEntry] | None]


def expand(inventory: Inventory, load: ManifestLoader) -> None:
    """Fill in every directory output's files from its ``.dir`` manifest (None if no one has it)."""
    for out in inventory.outputs:
        if out.is_dir and out.obj not in inventory.contents:
            inventory.contents[out.obj] = load(out.obj)


def _is_address_of(data: bytes, obj: ObjectRef) -> bool:
    return hashlib.md5(data).hexdigest() + ".dir" == obj.md5  # noqa: S324 - DVC's content address


def _keep_copy(data: bytes, obj: ObjectRef, keep: Path) -> None:
    """Save a manifest read from a remote (if its bytes are what its address says), atomically:
    a sync then copies it from here instead of downloading it a second time."""
    if not _is_address_of(data, obj):
        return
    keep.parent.mkdir(parents=True, exist_ok=True)
    partial = keep.with_name(keep.name + f".{os.getpid()}.part")
    partial.write_bytes(data)
    os.chmod(partial, 0o444)
    os.replace(partial, keep)


_BETWEEN = re.compile(r"[\s,]*")


def read_manifest(
    odb: Any,
    obj: ObjectRef,
    keep: Path | None = None,
    sizes: list[int] | None = None,
    *,
    check: bool = False,
) -> list[DirEntry]:
    """A directory's entries from its ``.dir`` manifest in ``odb`` (local cache or a remote).

    The manifest is DVC's JSON list of ``{"md5", "relpath"}``. It is decoded one entry at a time
    rather than through ``dvc_data``'s Tree: for a million files that keeps the peak memory to
    our own compact entries instead of the raw list plus a Tree of Meta and HashInfo objects.
    Raises FileNotFoundError when absent and ValueError when it is not a manifest, or (with
    ``check``, for DVC 3 objects) when its bytes are not what its address says.
    """
    with odb.fs.open(odb.oid_to_path(obj.md5), "rb") as fobj:
        data = fobj.read()
    if sizes is not None:
        sizes.append(len(data))  # what the read cost, parsed or not
    if check and not obj.legacy and not _is_address_of(data, obj):
        raise ValueError(f"{obj.md5} does not match its content")
    if keep is not None:
        _keep_copy(data, obj, keep)
    text = data.decode("utf-8")
    del data
    decoder = json.JSONDecoder()
    position = _BETWEEN.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", position):
        raise ValueError(f"{obj.md5} is not a DVC directory manifest")
    position += 1
    entries: list[DirEntry] = []
    while True:
        position = _BETWEEN.match(text, position).end()  # type: ignore[union-attr]
        if text.startswith("]", position):
            return entries
        item, position = decoder.raw_decode(text, position)
        if not isinstance(item, dict) or "relpath" not in item or "md5" not in item:
            raise ValueError(f"{obj.md5} is not a DVC directory manifest")
        entries.append(DirEntry(item["relpath"], ObjectRef(item["md5"], obj.legacy)))
