"""Ordinals and scale-down order, the same for ServingGroups and for role instances.

Scale-up fills the lowest missing ordinals in [0, desired), like a StatefulSet; ordinals that
still exist, terminating or beyond the range, count and stay reserved (docs/behaviour.md#scaling).
Scale-down removes, in order: unprotected before partition-protected, not-ready before ready,
cheaper (summed `controller.kubernetes.io/pod-deletion-cost`) before dearer, then the highest
ordinal first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def missing_ordinals(existing: Iterable[int], desired: int) -> list[int]:
    """Ordinals to create so that `existing` grows to `desired` members."""
    taken = set(existing)
    need = desired - len(taken)
    out: list[int] = []
    ordinal = 0
    while need > 0 and ordinal < desired:
        if ordinal not in taken:
            out.append(ordinal)
            need -= 1
        ordinal += 1
    return out


@dataclass(frozen=True)
class Candidate:
    ordinal: int
    ready: bool
    cost: int
    protected: bool = False

    def score(self) -> tuple[bool, bool, int, int]:
        return (self.protected, self.ready, self.cost, -self.ordinal)


def removal_order(candidates: Sequence[Candidate]) -> list[int]:
    """Ordinals in the order they should be removed."""
    return [c.ordinal for c in sorted(candidates, key=Candidate.score)]


def to_remove(candidates: Sequence[Candidate], desired: int) -> list[int]:
    """The ordinals to remove so that `desired` remain."""
    excess = len(candidates) - desired
    return removal_order(candidates)[: max(excess, 0)]
