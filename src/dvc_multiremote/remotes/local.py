"""Local directories and any other filesystem DVC can list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dvc_multiremote.inventory import ObjectRef
from dvc_multiremote.remotes.base import Remote
from dvc_multiremote.remotes.classify import classify_exception

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dvc_multiremote.remotes.base import Heard


class ListingRemote(Remote):
    """Local directories and any other filesystem DVC can list."""

    def probe(self) -> None:
        root = self.legacy_odb.path
        try:
            if not self.fs.isdir(self.odb.path) and not self.fs.isdir(root):
                if self.fs.exists(root):
                    raise NotADirectoryError(f"{root} is not a directory")
                if self.fs.protocol != "local":
                    raise FileNotFoundError(f"{root} does not exist")
                _creatable(Path(root))
                # A local directory not made yet: an empty remote, as DVC treats it (push and
                # sync create it). Said, in case the path is a typo or a disk not mounted.
                self.status.message = f"{root} does not exist yet: an empty remote"
                return
            self.fs.ls(root)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))

    def check(self, objects: Iterable[ObjectRef], jobs: int, heard: Heard | None = None) -> None:
        wanted = {obj: obj for obj in objects}
        present: dict[ObjectRef, int | None] = {}
        roots = [(self.odb, False)]
        if any(obj.legacy for obj in wanted):
            roots.append((self.legacy_odb, True))
        try:
            for odb, legacy in roots:
                if not self.fs.isdir(odb.path):
                    continue
                self.status.requests["LIST"] += 1
                for path in self.fs.find(odb.path):
                    rel = self.fs.relpath(path, odb.path).replace("\\", "/")
                    head, _, tail = rel.partition("/")
                    known = wanted.get(ObjectRef(head + tail, legacy))
                    if len(head) == 2 and known is not None:
                        present[known] = self._size(path)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))
            return
        self.status.present = present
        self.tell(heard, wanted, present)

    def _size(self, path: str) -> int | None:
        # A stat is free on a local disk; elsewhere it would be one more request per object.
        if self.fs.protocol != "local":
            return None
        return int(self.fs.size(path) or 0)


def _creatable(path: Path) -> None:
    """Raise unless ``path`` can be made: its nearest existing ancestor must be a directory."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is not a directory")
            return
