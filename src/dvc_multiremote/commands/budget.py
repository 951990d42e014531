"""``sync --budget``: the bytes each remote may still serve in this run, manifests included."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc_multiremote.commands.sync import Tally
    from dvc_multiremote.inventory import ObjectRef
    from dvc_multiremote.remotes import Remote


class Budget:
    """Bytes each remote may still serve in this run; reservations are taken under a lock."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = dict(limits)
        self.spent: dict[str, int] = dict.fromkeys(limits, 0)
        self._lock = threading.Lock()

    def capped(self, name: str) -> bool:
        return name in self.limits

    def fits(self, name: str, size: int | None) -> bool:
        if name not in self.limits:
            return True
        return size is not None and self.spent[name] + size <= self.limits[name]

    def reserve(self, name: str, size: int | None) -> bool:
        with self._lock:
            if not self.fits(name, size):
                return False
            if name in self.limits:
                self.spent[name] += size or 0
            return True

    def release(self, name: str, size: int | None) -> None:
        with self._lock:
            if name in self.limits:
                self.spent[name] -= size or 0


class ManifestGate:
    """Lets a remote with a ``--budget`` serve a manifest only if the budget still holds it.

    Manifests are read while the scope is expanded, before any file is copied; their bytes
    count against the budget and in ``bytes_downloaded`` like any other download.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.reserved: dict[tuple[str, ObjectRef], int] = {}
        self.refused: set[ObjectRef] = set()

    def __call__(self, remote: Remote, obj: ObjectRef) -> bool:
        name = remote.spec.name
        if not self.budget.capped(name):
            return True
        size = remote.size_of(obj)
        if size is None:
            return False  # absent, or its size unknown: a read that cannot be budgeted is not done
        if self.budget.reserve(name, size):
            self.reserved[(name, obj)] = size
            return True
        self.refused.add(obj)
        return False

    def settle(self, reads: dict[ObjectRef, tuple[str, int]], tally: Tally) -> None:
        """Count what was read; give back reservations of reads that did not happen."""
        for obj, (name, size) in reads.items():
            tally.downloaded[name] = tally.downloaded.get(name, 0) + size
            self.refused.discard(obj)
        for (name, obj), size in self.reserved.items():
            if reads.get(obj, ("", 0))[0] != name:
                self.budget.release(name, size)
        tally.skipped_budget.update(self.refused)
