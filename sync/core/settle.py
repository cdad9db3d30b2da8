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


def extend(
    new: dict[str, Any],
    inputs: Inputs,
    assessor: Assessor,
    assessed: list[GroupView],
    observed: Observed,
    ledger: Ledger,
    failures: Sequence[Mapping[str, Any]],
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
    progress.apply(ms, new, previous, assessed, observed, ledger, inputs.now)


def status_steps(
    inputs: Inputs,
    assessor: Assessor,
    assessed: list[GroupView],
    steps: Sequence[Step],
    ledger: Ledger | None = None,
    failures: Sequence[Mapping[str, Any]] = (),
) -> list[Step]:
    """The status write (when the status changes) and the deletion of every
    ControllerRevision that is neither the current nor the update revision."""
    live = inputs.live
    if live is None:
        return []  # not created yet: nothing to write status to
    ms, out = inputs.ms, []
    after = inputs.observed
    if any(s.verb != "event" for s in steps):
        after = after_writes(inputs, steps)
        assessor = Assessor(ms, inputs.history, after, inputs.status)
        assessed = assessor.views()
    new = status.compute(ms, assessed, inputs.status, inputs.now)
    if ledger is not None:
        extend(new, inputs, assessor, assessed, after, ledger, failures)
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
