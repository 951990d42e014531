"""Local directories and any other filesystem DVC can list."""

from __future__ import annotations

from collections.abc import Iterable

from dvc_multiremote.inventory import ObjectRef
from dvc_multiremote.remotes.base import Remote
from dvc_multiremote.remotes.classify import classify_exception


class ListingRemote(Remote):
    """Local directories and any other filesystem DVC can list."""

    def probe(self) -> None:
        try:
            if not self.fs.isdir(self.odb.path) and not self.fs.isdir(self.legacy_odb.path):
                if not self.fs.exists(self.legacy_odb.path):
                    raise FileNotFoundError(f"{self.legacy_odb.path} does not exist")
                raise NotADirectoryError(f"{self.legacy_odb.path} is not a directory")
            self.fs.ls(self.legacy_odb.path)
        except Exception as exc:  # noqa: BLE001
            self.status.fail(classify_exception(exc))

    def check(self, objects: Iterable[ObjectRef], jobs: int) -> None:
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

    def _size(self, path: str) -> int | None:
        # A stat is free on a local disk; elsewhere it would be one more request per object.
        if self.fs.protocol != "local":
            return None
        return int(self.fs.size(path) or 0)
