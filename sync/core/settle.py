"""Settle: the last writes of a plan, the ModelServing's status and the pruning of revisions.

Pure. The status is the one the objects will have once the plan's other writes are made
(created objects exist and are not ready yet, deleted ones are gone), so a reconcile that
creates a group reports it at once, as `kubectl get` would show it a moment later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.kinds import Object
from sync.core import status
from sync.core.assess import Assessor, GroupView
from sync.core.events import Event
from sync.core.inputs import Inputs
from sync.core.observe import Observed, observe
from sync.core.steps import Step, Wave


def after_writes(inputs: Inputs, steps: Sequence[Step]) -> Observed:
    """The observation once every write in `steps` has been made. A graceful deletion leaves
    a terminating object behind for a while; its watch event brings the next reconcile,
    whose status says so."""
    assert inputs.live is not None
    deleted = {id(s.obj) for s in steps if s.verb == "delete"}
    objects = [o for o in inputs.observed.objects() if id(o) not in deleted]
    objects += [s.obj for s in steps if s.verb == "create" and s.obj is not None]
    by_kind: dict[str, list[Object]] = {}
    for obj in objects:
        by_kind.setdefault(obj.get("kind", ""), []).append(obj)
    return observe(
        inputs.ms.name,
        inputs.live["metadata"]["uid"],
        pods=by_kind.get("Pod", ()),
        services=by_kind.get("Service", ()),
        podgroups=by_kind.get("PodGroup", ()),
        revisions=by_kind.get("ControllerRevision", ()),
    )


def status_steps(
    inputs: Inputs,
    assessor: Assessor,
    assessed: list[GroupView],
    steps: Sequence[Step],
    problem: status.Problem | None = None,
) -> list[Step]:
    """The status write (when the status changes; `problem`: why the daemon is stalled) and
    the deletion of every ControllerRevision that is neither the current nor the update
    revision."""
    live = inputs.live
    if live is None:
        return []  # not created yet: nothing to write status to
    ms, out = inputs.ms, []
    if any(s.verb != "event" for s in steps):
        after = after_writes(inputs, steps)
        assessed = Assessor(ms, inputs.history, after, inputs.status, assessor.same).views()
    new = status.compute(ms, assessed, inputs.status, inputs.now, problem)
    if new != live.get("status"):
        why = status.summary(live.get("status") or {}, new)
        body = {**live, "status": new}
        out.append(Step("status", live["kind"], ms.name, why, Wave.STATUS, obj=body))
    keep = {new["currentRevision"], new["updateRevision"]}
    for revision in sorted(inputs.observed.revisions):
        if revision not in keep:
            cr = inputs.observed.revisions[revision]
            why = f"revision {revision} is neither the current nor the update revision"
            out.append(Step("delete", cr["kind"], cr["metadata"]["name"], why, Wave.PRUNE, obj=cr))
    return out


def stalled_steps(live: Mapping[str, Any], problem: status.Problem, now: float) -> list[Step]:
    """What a reconcile that cannot plan writes: `Stalled` in the status and a Warning
    Event, nothing else (a broken spec or template must not cost a single object)."""
    name = live["metadata"]["name"]
    previous = live.get("status") or {}
    conditions = status.stalled(previous.get("conditions", ()), problem, now)
    out = [Step("event", "Event", name, problem.reason, Wave.EVENT, event=_warning(problem))]
    if conditions != previous.get("conditions"):
        body = {**live, "status": {**previous, "conditions": conditions}}
        why = f"Stalled=True ({problem.reason})"
        out.append(Step("status", live["kind"], name, why, Wave.STATUS, obj=body))
    return out


def _warning(problem: status.Problem) -> Event:
    return Event(problem.reason, problem.message, "Warning")
