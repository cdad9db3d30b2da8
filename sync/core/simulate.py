"""Simulate: a rollout played to its end in memory, with the daemon's own planner (pure).

For `msctl plan --from` and the rollout impact `msctl watch` prints
(docs/behaviour.md#offline-preview). A `World` holds one ModelServing's objects as the API
server would store them. A plan's writes are made to it the way the API makes them: a created
pod starts Pending, a deletion takes effect at once (the time a pod takes to terminate is part
of `ready_after`), a patch is a JSON patch, the status write replaces the status. A scripted
kubelet makes each created pod Running and Ready `ready_after` seconds after its creation.

`simulate` plans with the function it is handed (the shell renders, then calls
`sync.core.plan.plan`, exactly as the daemon does), applies the plan and plans again at once
while plans write anything, as the daemon reacts to its own writes; when a plan writes nothing
the clock runs to the next pod becoming ready; when no pod is pending either, it is over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch

from generator.kinds import Object
from generator.model import ModelServing
from sync.core import progress, rolestatus, status
from sync.core.assess import Assessor
from sync.core.backoff import Ledger
from sync.core.history import history
from sync.core.observe import Observed, observe
from sync.core.steps import Plan, Recall

Planner = Callable[[Observed, Mapping[str, Any], float, Recall | None], Plan]
What = Literal["created", "deleted", "ready"]

MAX_RECONCILES = 10_000  # far beyond any real rollout: only a planner that never settles


class Unsettled(Exception):
    """The planner kept writing: no steady state within MAX_RECONCILES reconciles."""


@dataclass(frozen=True)
class PodChange:
    """A pod created, deleted or made ready at `at` (seconds), and why."""

    at: float
    what: What
    labels: Mapping[str, str]
    reason: str = ""


@dataclass(frozen=True)
class Round:
    """One reconcile that wrote something: when, and its plan."""

    at: float
    plan: Plan


def ready_status() -> dict[str, Any]:
    """The status of a pod the kubelet reports Running and Ready (docs/behaviour.md#readiness)."""
    return {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


@dataclass
class World:
    name: str
    uid: str
    live: dict[str, Any]  # the ModelServing as stored, its status included
    objects: dict[tuple[str, str], Object] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # pod name -> when it gets ready
    serial: int = 0
    last: Observed | None = None  # the previous observation, whose unchanged pods are reused

    # Objects are never changed in place, only replaced (as a watch cache does): rendered
    # objects stay the renderer's, and an unchanged pod is the same object from one
    # observation to the next. Nested values are shared; jsonpatch copies what it patches.
    def put(self, obj: Object, **top: Any) -> Object:
        """`obj` with `top` fields replaced, stored under a new resourceVersion."""
        self.serial += 1
        meta = {**obj["metadata"], "resourceVersion": str(self.serial)}
        stored = {**obj, **top, "metadata": meta}
        self.objects[(stored["kind"], meta["name"])] = stored
        return stored

    def store(self, obj: Object, **top: Any) -> Object:
        """A new object: a uid of its own."""
        meta = {**obj["metadata"], "uid": f"{self.uid}-{self.serial + 1}"}
        return self.put({**obj, "metadata": meta}, **top)

    def settle(self, objects: Iterable[Object]) -> None:
        """Store `objects` as a converged daemon leaves them: every pod Running and Ready."""
        for obj in objects:
            self.store(obj, **({"status": ready_status()} if obj["kind"] == "Pod" else {}))

    def pods(self) -> list[Object]:
        return [o for (kind, _), o in sorted(self.objects.items()) if kind == "Pod"]

    def observed(self) -> Observed:
        by_kind: dict[str, list[Object]] = {}
        for (kind, _), obj in sorted(self.objects.items()):
            by_kind.setdefault(kind, []).append(obj)
        self.last = observe(
            self.name,
            self.uid,
            pods=by_kind.get("Pod", ()),
            services=by_kind.get("Service", ()),
            podgroups=by_kind.get("PodGroup", ()),
            revisions=by_kind.get("ControllerRevision", ()),
            previous=self.last,
        )
        return self.last

    def apply(self, plan: Plan, now: float, ready_after: float) -> list[PodChange]:
        """Make every write of `plan`; the pod changes it made."""
        changes: list[PodChange] = []
        for step in plan.steps:
            key = (step.kind, step.name)
            if step.verb == "create" and step.obj is not None:
                pod = step.kind == "Pod"
                stored = self.store(step.obj, **({"status": {"phase": "Pending"}} if pod else {}))
                if pod:
                    self.pending[step.name] = now + ready_after
                    changes.append(PodChange(now, "created", _labels(stored), step.reason))
            elif step.verb == "delete":
                gone = self.objects.pop(key, None)
                if step.kind == "Pod" and gone is not None:
                    self.pending.pop(step.name, None)
                    changes.append(PodChange(now, "deleted", _labels(gone), step.reason))
            elif step.verb == "patch" and key in self.objects:
                patched = jsonpatch.apply_patch(self.objects[key], [dict(op) for op in step.ops])
                self.serial += 1
                patched["metadata"]["resourceVersion"] = str(self.serial)
                self.objects[key] = patched
            elif step.verb == "status" and step.obj is not None:
                self.live = {**self.live, "status": step.obj["status"]}
        return changes

    def next_ready(self) -> float | None:
        return min(self.pending.values(), default=None)

    def ripen(self, now: float) -> list[PodChange]:
        """The kubelet's part: pods due by `now` become Running and Ready."""
        changes: list[PodChange] = []
        for name, due in sorted(self.pending.items()):
            if due <= now:
                pod = self.put(self.objects[("Pod", name)], status=ready_status())
                del self.pending[name]
                changes.append(PodChange(due, "ready", _labels(pod)))
        return changes


def _labels(obj: Object) -> Mapping[str, str]:
    labels: Mapping[str, str] = obj["metadata"].get("labels", {})
    return labels


def settled_status(ms: ModelServing, observed: Observed, now: float) -> dict[str, Any]:
    """The status a converged daemon wrote for `ms` over `observed` (docs/behaviour.md#status)."""
    assessor = Assessor(ms, history(ms, observed.revisions), observed, {})
    views = assessor.views()
    new = status.compute(ms, views, {}, now)
    ledger = Ledger({}, ms.settings, ms.generation or 0, now)
    new["roles"] = rolestatus.compute(ms, observed, assessor, ledger)
    progress.apply(ms, new, {}, views, observed, ledger, now)
    return new


@dataclass(frozen=True)
class Record:
    """A simulated rollout: the first plan, every reconcile that wrote, every pod change."""

    first: Plan
    start: float
    end: float
    rounds: tuple[Round, ...]
    changes: tuple[PodChange, ...]
    initial: tuple[Mapping[str, str], ...]  # the labels of the pods before the first plan
    final: tuple[Mapping[str, str], ...]  # and after the last

    @property
    def reconciles(self) -> int:
        return len(self.rounds)

    @property
    def writes(self) -> int:
        return sum(r.plan.writes for r in self.rounds)


def simulate(world: World, planner: Planner, ready_after: float, start: float = 0.0) -> Record:
    """Plan, apply, let pods become ready, until nothing is left to write or to wait for."""
    initial = tuple(_labels(p) for p in world.pods())
    now, recall = start, None
    first: Plan | None = None
    rounds: list[Round] = []
    changes: list[PodChange] = []
    for _ in range(MAX_RECONCILES):
        result = planner(world.observed(), world.live, now, recall)
        first = first or result
        recall = result.recall
        if result.writes:
            changes += world.apply(result, now, ready_after)
            rounds.append(Round(now, result))
            continue
        due = world.next_ready()
        if due is None:
            final = tuple(_labels(p) for p in world.pods())
            return Record(first, start, now, tuple(rounds), tuple(changes), initial, final)
        now = max(now, due)
        changes += world.ripen(now)
    raise Unsettled(f"the simulated rollout did not settle within {MAX_RECONCILES} reconciles")
