"""Steps and plans: the values the planner returns and the daemon executes.

A plan is an ordered tuple of steps, each with the reason for it. Steps carry a wave; steps
of one wave may run concurrently, waves run in order, and no wave runs after one that failed.
Creations follow the apply order of `generator.kinds` (the revision, PodGroups, Services,
entry pods, worker pods); then patches, deletions, Events, the status write and, last, the
pruning of ControllerRevisions that nothing needs any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from generator.kinds import Object
from sync.core import diff
from sync.core.churn import Churn
from sync.core.events import Event

Verb = Literal["create", "patch", "delete", "event", "status"]
InstanceKey = tuple[int, str, int]  # (group, role, instance)


class Wave(IntEnum):
    REVISION = 0
    PODGROUP = 1
    SERVICE = 2
    ENTRY = 3
    WORKER = 4
    PATCH = 5
    DELETE = 6
    EVENT = 7
    STATUS = 8
    PRUNE = 9


def create_wave(kind: str, index: int = 0) -> Wave:
    """The wave that creates an object of `kind` (`index`: a pod's index, 0 for the entry)."""
    if kind == "ControllerRevision":
        return Wave.REVISION
    if kind == "PodGroup":
        return Wave.PODGROUP
    if kind == "Service":
        return Wave.SERVICE
    return Wave.ENTRY if index == 0 else Wave.WORKER


@dataclass(frozen=True)
class Step:
    verb: Verb
    kind: str
    name: str
    reason: str
    wave: Wave
    obj: Object | None = None  # create: the object; patch/delete: the live one; status: the body
    ops: tuple[Mapping[str, Any], ...] = ()
    event: Event | None = None

    def describe(self) -> str:
        """One line for people."""
        if self.event is not None:
            return f"event {self.event.reason}: {self.event.message}"
        if self.verb == "status":
            return f"write status of {self.kind} {self.name}: {self.reason}"
        text = f"{self.verb} {self.kind} {self.name}: {self.reason}"
        if self.ops:
            text += f" [{diff.describe_ops([dict(op) for op in self.ops])}]"
        return text

    def to_json(self) -> dict[str, Any]:
        """The step for machines (`msctl plan -o json`)."""
        out: dict[str, Any] = {
            "verb": self.verb,
            "kind": self.kind,
            "name": self.name,
            "reason": self.reason,
            "wave": self.wave.name.lower(),
        }
        if self.ops:
            out["patch"] = [dict(op) for op in self.ops]
        if self.event is not None:
            out["event"] = {
                "type": self.event.type,
                "reason": self.event.reason,
                "message": self.event.message,
            }
        if self.verb == "create" and self.obj is not None:
            out["object"] = self.obj
        if self.verb == "status" and self.obj is not None:
            out["status"] = self.obj.get("status", {})
        return out


PatchAnswers = Mapping[int, diff.PatchAnswer]


@dataclass(frozen=True)
class Recall:
    """What the next plan of the same ModelServing is handed back (plain values): the role
    instances ready now, to send RoleRunning once per instance, the patches and content
    verdicts computed, to spare recomputing them while neither side changed, and the recent
    writes (the safety net against loops, `sync.core.churn`)."""

    running: frozenset[InstanceKey] = frozenset()
    patches: PatchAnswers = field(default_factory=dict)
    # content verdicts of live pods (sync.core.adopt.Answers), spared while nothing changed
    contents: Mapping[tuple[int, int], tuple[Object, Any, str | None]] = field(default_factory=dict)
    churn: Churn = field(default_factory=Churn)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    requeue_after: float | None
    notes: tuple[str, ...] = ()
    waves: tuple[tuple[str, tuple[int, ...]], ...] = ()  # pending group rollout, for people
    recall: Recall = Recall()

    @property
    def writes(self) -> int:
        return sum(1 for s in self.steps if s.verb != "event")

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "rollout": [{"why": why, "groups": list(groups)} for why, groups in self.waves],
            "notes": list(self.notes),
            "requeueAfterSeconds": self.requeue_after,
        }
