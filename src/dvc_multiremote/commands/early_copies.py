"""``sync``'s copies that start while the checks still run.

A remote checked object by object (DagsHub's HTTP form) answers for hours of objects one at a
time; a listing answers all at once. As soon as every remote has answered for a file, its copy
is decided exactly as the plan would decide it (same sources in the same order, same
destinations) and started; the full plan, made once the checks end, leaves it out. Without a
``--budget`` only: a budget's spending order is decided over the whole plan.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from dvc_multiremote.commands.copy_plan import Copy, known_size, source_order
from dvc_multiremote.inventory import in_shard
from dvc_multiremote.scope import owes

if TYPE_CHECKING:
    from collections.abc import Callable

    from dvc_multiremote.commands.budget import Budget
    from dvc_multiremote.inventory import ObjectRef
    from dvc_multiremote.remotes import Remote
    from dvc_multiremote.remotes.base import Heard


class EarlyCopies:
    """Collects every remote's answer per file and hands each complete one to ``start``."""

    def __init__(
        self,
        remotes: list[Remote],
        objects: dict[ObjectRef, str],
        owners: dict[ObjectRef, frozenset[str]],
        budget: Budget,
        prefer: list[str] | None,
        shard: tuple[int, int] | None,
        start: Callable[[Copy], None],
    ) -> None:
        self.remotes = remotes
        self.objects = objects
        self.owners = owners
        self.order = source_order(remotes, budget, prefer)
        self.shard = shard
        self.start = start
        self.started: set[ObjectRef] = set()
        self._answers: dict[ObjectRef, dict[str, bool]] = {}
        self._lock = threading.Lock()

    def heard_from(self, remote: Remote) -> Heard:
        """The ``heard`` callback for one remote's check."""
        name = remote.spec.name

        def heard(obj: ObjectRef, there: bool) -> None:
            if obj.is_dir or obj not in self.objects:
                return  # manifests go after their files, in the plan
            if self.shard is not None and not in_shard(obj.md5, self.shard):
                return
            with self._lock:
                answers = self._answers.setdefault(obj, {})
                answers[name] = there
                if len(answers) < len(self.remotes):
                    return
                del self._answers[obj]
            copy = self._copy_of(obj, answers)
            if copy is not None:
                with self._lock:
                    self.started.add(obj)
                self.start(copy)

        return heard

    def _copy_of(self, obj: ObjectRef, answers: dict[str, bool]) -> Copy | None:
        """What ``copy_plan.plan`` would decide for this object, without a budget."""
        holders = [name for name in self.order if answers[name]]
        lacking = [
            remote.spec.name
            for remote in self.remotes
            if owes(self.owners, obj, remote.spec.name) and not answers[remote.spec.name]
        ]
        if not holders or not lacking:
            return None
        by_name = {remote.spec.name: remote for remote in self.remotes}
        size = known_size(obj, [by_name[name] for name in holders])
        return Copy(obj, self.objects[obj], size, lacking, holders)
