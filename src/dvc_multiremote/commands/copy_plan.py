"""``sync``'s plan: which object each remote lacks, and which remote should serve it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dvc_multiremote.scope import owes

if TYPE_CHECKING:
    from pathlib import Path

    from dvc_multiremote.commands.budget import Budget
    from dvc_multiremote.inventory import ObjectRef
    from dvc_multiremote.remotes import Remote


@dataclass
class Copy:
    """One object to bring to some destinations, with its candidate sources, best first."""

    obj: ObjectRef
    path: str
    size: int | None
    destinations: list[str]
    sources: list[str]
    local: Path | None = None  # a checked copy already on this machine (manifests)


def source_order(remotes: list[Remote], budget: Budget, prefer: list[str] | None) -> list[str]:
    """Remotes in the order they should serve.

    ``--prefer-source`` first when given; otherwise remotes without a ``--budget`` first. Within
    each group, remotes whose downloads are capped (B2, by ``B2_HOSTS``) come last, so capped
    bandwidth is spent only on what no one else can serve.
    """
    ordered = sorted(remotes, key=lambda remote: remote.refused_read_is_cap)
    names = [remote.spec.name for remote in ordered]
    if prefer:
        head = [name for name in prefer if name in names]
    else:
        head = [name for name in names if not budget.capped(name)]
    return head + [name for name in names if name not in head]


def plan(
    objects: dict[ObjectRef, str],
    remotes: list[Remote],
    budget: Budget,
    prefer: list[str] | None,
    owners: dict[ObjectRef, frozenset[str]] | None = None,
) -> tuple[list[Copy], list[ObjectRef]]:
    """Copies to make (files first, largest first without a budget; manifests last) and the
    objects no usable remote holds. An object pinned to some remotes (``owners``) is copied to
    those only, from any remote that has it."""
    usable = [remote for remote in remotes if remote.status.present is not None]
    order = source_order(usable, budget, prefer)
    by_name = {remote.spec.name: remote for remote in usable}
    copies: list[Copy] = []
    unavailable: list[ObjectRef] = []
    for obj, path in objects.items():
        holders = [name for name in order if obj in (by_name[name].status.present or {})]
        lacking = [
            r.spec.name
            for r in usable
            if owes(owners or {}, obj, r.spec.name) and obj not in (r.status.present or {})
        ]
        if not lacking:
            continue
        if not holders:
            unavailable.append(obj)
            continue
        size = known_size(obj, [by_name[name] for name in holders])
        # Within budget first, then the preference order: capped bandwidth is spent last.
        holders.sort(key=lambda name: (not budget.fits(name, size), order.index(name)))
        copies.append(Copy(obj, path, size, lacking, holders))
    # Files before manifests. Without a budget, largest first: a big file started last would
    # run on alone after all the rest. Under a budget, path order, so the budget goes as planned.
    largest_first = not budget.limits
    copies.sort(key=lambda c: (c.obj.is_dir, -(c.size or 0) if largest_first else 0, c.path))
    return copies, unavailable


def known_size(obj: ObjectRef, holders: list[Remote]) -> int | None:
    """The object's size as the first holder that listed it says, if any did."""
    for remote in holders:
        size = (remote.status.present or {}).get(obj)
        if size is not None:
            return size
    return None
