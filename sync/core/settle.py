"""Settle: the last writes of a plan, the ModelServing's status and the pruning of revisions.

Pure. The status is the one the objects will have once the plan's other writes are made
(created objects exist and are not ready yet, deleted ones are gone), so a reconcile that
creates a group reports it at once, as `kubectl get` would show it a moment later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.kinds import Object
from sync.core import evidence, progress, rolestatus, status
from sync.core.assess import Assessor, GroupView
from sync.core.backoff import Ledger
from sync.core.events import Event
from sync.core.inputs import Inputs
from sync.core.observe import Observed, observe
from sync.core.steps import Step, Wave
from sync.core.timestamps import timestamp


def _terminating(obj: Object, now: float) -> Object:
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": timestamp(now)}}


def after_writes(inputs: Inputs, steps: Sequence[Step]) -> Observed:
    """The observation once every write in `steps` has been made. An object exists until the
    API server says it is gone (a kubelet or a finalizer may hold it), so a deleted object
    is counted as terminating, not as gone; its deletion event brings the next reconcile,
    whose status says what is left (docs/behaviour.md#status)."""
    assert inputs.live is not None
    deleted = {id(s.obj) for s in steps if s.verb == "delete"}
    objects = [
        _terminating(o, inputs.now) if id(o) in deleted else o for o in inputs.observed.objects()
    ]
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


def in_use(assessor: Assessor, views: Sequence[GroupView], seen: Sequence[Observed]) -> set[str]:
    """Revisions whose ControllerRevision something still needs: the one a
    partition-protected group is kept at, and the one of every pod (terminating ones too:
    they still exist) that runs a template the current spec no longer has, since only that
    record can rebuild it (docs/behaviour.md#controllerrevisions). A pod adopted by content
    runs the current template, whatever its labels said before."""
    out = {v.revision for v in views if v.protected}
    for observed in seen:
        for group in observed.groups.values():
            for pod in group.pods():
                if pod.revision and not assessor.pod_current(pod):
                    out.add(pod.revision)
    return out


def extend(
    new: dict[str, Any],
    inputs: Inputs,
    assessor: Assessor,
    assessed: list[GroupView],
    observed: Observed,
    ledger: Ledger,
    failures: Sequence[Mapping[str, Any]],
    problem: status.Problem | None = None,
) -> None:
    """Our fields past the reference's: roles, recovery, progress and the kstatus conditions
    (docs/behaviour.md#role-status, #backoff, #progress)."""
    ms, previous = inputs.ms, inputs.status
    new["roles"] = rolestatus.compute(ms, observed, assessor, ledger)
    recovery = ledger.to_status()
    kept = evidence.keep(previous.get("recovery", {}).get("lastFailures", ()), failures)
    if kept:
        recovery["lastFailures"] = kept
    if recovery:
        new["recovery"] = recovery
    progress.apply(ms, new, previous, assessed, observed, ledger, inputs.now, problem)


def status_steps(
    inputs: Inputs,
    assessor: Assessor,
    assessed: list[GroupView],
    steps: Sequence[Step],
    ledger: Ledger | None = None,
    failures: Sequence[Mapping[str, Any]] = (),
    problem: status.Problem | None = None,
) -> list[Step]:
    """The status write (when the status changes; `problem`: why the daemon is stalled) and
    the deletion of every ControllerRevision that is neither the current nor the update
    revision."""
    live = inputs.live
    if live is None:
        return []  # not created yet: nothing to write status to
    ms, out = inputs.ms, []
    after = inputs.observed
    if any(s.verb != "event" for s in steps):
        after = after_writes(inputs, steps)
        assessor = Assessor(ms, inputs.history, after, inputs.status, assessor.same)
        assessed = assessor.views()
    new = status.compute(ms, assessed, inputs.status, inputs.now)
    if ledger is not None:
        extend(new, inputs, assessor, assessed, after, ledger, failures, problem)
    if new != live.get("status"):
        why = status.summary(live.get("status") or {}, new)
        body = {**live, "status": new}
        out.append(Step("status", live["kind"], ms.name, why, Wave.STATUS, obj=body))
    keep = {new["currentRevision"], new["updateRevision"]}
    keep |= in_use(assessor, assessed, (inputs.observed, after))
    for revision in sorted(inputs.observed.revisions):
        if revision not in keep:
            cr = inputs.observed.revisions[revision]
            why = (
                f"revision {revision} is neither the current nor the update revision,"
                " and nothing still runs it"
            )
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
