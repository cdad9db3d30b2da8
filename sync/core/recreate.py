"""Recreate or hold: the backoff and budget verdict on one failed unit, with what to say.

Pure glue between `backoff` (when) and `evidence` (why) for the planner
(docs/behaviour.md#backoff): the planner asks before it deletes a failed pod's unit and gets
back whether to go ahead, how long to wait otherwise, the Events to send and the failure to
keep in the status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generator import naming
from generator.model import ModelServing
from sync.core import evidence
from sync.core.assess import Assessor, GroupView
from sync.core.backoff import Ledger, UnitKey, describe
from sync.core.events import Event
from sync.core.observe import Observed, PodState
from sync.core.timestamps import parse_timestamp


def unit_key(ms: ModelServing, pod: PodState) -> UnitKey:
    if ms.recovery_policy == "ServingGroupRecreate":
        return (pod.group, "")
    return (pod.group, naming.role_id(pod.role, pod.instance))


def reset_command(ms: ModelServing) -> str:
    return (
        f"kubectl -n {ms.namespace} annotate modelserving {ms.name} "
        f'{naming.RESET_FAILURES_ANNOTATION}="$(date +%s)" --overwrite'
    )


@dataclass(frozen=True)
class Gate:
    proceed: bool
    wait: float | None = None
    note: str = ""
    events: tuple[Event, ...] = ()
    failures: tuple[dict[str, Any], ...] = field(default=())  # evidence for the status


def gate(ledger: Ledger, ms: ModelServing, pod: PodState, why: str, now: float) -> Gate:
    key = unit_key(ms, pod)
    created = pod.obj["metadata"].get("creationTimestamp")
    decision = ledger.decide(
        key, pod.name, pod.uid, parse_timestamp(created) if isinstance(created, str) else None
    )
    record = evidence.record(pod.obj, pod.group, pod.role, now)
    cause = f"{why} ({evidence.describe(record)})"
    entry = ledger.units.get(key, {"group": key[0], "roleId": key[1]})
    unit = describe(entry)
    kept = (record,) if decision.new else ()
    if decision.action == "failed":
        return Gate(False, note=f"{unit} is Failed (restart budget spent); not recreated")
    if decision.action == "exhausted":
        settings = ms.settings
        message = (
            f"{unit} failed again after {decision.recreations} recreations within "
            f"{settings.restart_window}s (limit {settings.restart_limit}): {cause}; it is "
            f"not recreated until the spec changes or: {reset_command(ms)}"
        )
        event = Event("RestartBudgetExhausted", message, "Warning")
        return Gate(False, note=message, events=(event,), failures=kept)
    if decision.action == "wait":
        message = f"{cause}; {unit} backing off, recreated in {decision.wait:.0f}s"
        events = (Event("RecreateBackOff", message, "Warning"),) if decision.new else ()
        return Gate(False, wait=decision.wait, note=message, events=events, failures=kept)
    events = ()
    if decision.new:
        message = f"{cause}; recreating {unit} (recreation {decision.recreations})"
        events = (Event("PodFailed", message, "Warning"),)
    return Gate(True, events=events, failures=kept)


def readiness(
    ms: ModelServing,
    observed: Observed,
    assessor: Assessor,
    views: Mapping[int, GroupView],
    keys: Iterable[UnitKey],
) -> tuple[dict[UnitKey, bool], Callable[[UnitKey], bool]]:
    """For the units in `keys`: whether each is ready now, and whether the spec still has it."""
    ready: dict[UnitKey, bool] = {}
    for group, role_id in keys:
        found = observed.groups.get(group)
        if found is None:
            ready[(group, role_id)] = False
        elif not role_id:
            ready[(group, role_id)] = group in views and views[group].running
        else:
            parsed = naming.parse_ordinal(role_id)
            instance = found.instances.get(parsed) if parsed is not None else None
            ready[(group, role_id)] = instance is not None and assessor.instance_ready(instance)
    replicas = {r.name: r.replicas for r in ms.template.roles}

    def wanted(key: UnitKey) -> bool:
        if key[0] >= ms.replicas:
            return False
        parsed = naming.parse_ordinal(key[1]) if key[1] else None
        return parsed is None or parsed[1] < replicas.get(parsed[0], 0)

    return ready, wanted
