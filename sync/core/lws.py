"""The LWS bridge's decisions (pure): for one LeaderWorkerSet, what to create or put back on its
ModelServing, what its status says, and which Events to send (docs/behaviour.md#leaderworkerset).

The mapping itself is `generator.lws`; `sync.lws_bridge` reads the cluster, calls `decide`, and
executes the `BridgePlan` it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator import lws as mapping
from generator import model, naming
from generator.lws import Unsupported
from sync.core.diff import guarded
from sync.core.events import Event
from sync.core.timestamps import timestamp

NOT_HONOURED = "FieldsNotHonoured"
BRIDGED = "Bridged"
# Conditions of the ModelServing that mean the same on a LeaderWorkerSet, copied over.
MIRRORED = ("Available", "Progressing", "UpdateInProgress")


@dataclass(frozen=True)
class Desired:
    """The LWS mapped: the ModelServing to serve it, or why there is none."""

    modelserving: dict[str, Any] | None
    unsupported: tuple[Unsupported, ...] = ()
    invalid: str | None = None


def desire(lws: Mapping[str, Any], plugins: frozenset[str]) -> Desired:
    """Map a live LWS; the spec is defaulted as the API server defaults a ModelServing, so
    that it compares equal to the live one when nobody changed it."""
    problems = mapping.violations(lws)
    if problems:
        return Desired(None, invalid="; ".join(str(p) for p in problems))
    uid = lws["metadata"].get("uid")
    mapped = mapping.to_modelserving(lws, uid)
    try:
        ms = model.load(
            mapped.modelserving, namespace=lws["metadata"]["namespace"], plugins=plugins
        )
    except model.InvalidSpec as err:
        leader = "leaderTemplate" in lws["spec"]["leaderWorkerTemplate"]
        return Desired(
            None,
            mapped.unsupported,
            "; ".join(
                f"{mapping.origin(v.path, leader)}: {v.message}" if v.path else v.message
                for v in err.violations
            ),
        )
    body = {**mapped.modelserving, "spec": ms.raw["spec"]}
    return Desired(body, mapped.unsupported)


@dataclass(frozen=True)
class BridgePlan:
    """What one bridge reconcile writes; all empty when the LWS and its ModelServing agree."""

    create: dict[str, Any] | None = None
    spec_patch: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()

    @property
    def empty(self) -> bool:
        return (
            self.create is None and not self.spec_patch and self.status is None and not self.events
        )


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or ()
    return any(r.get("controller") and r.get("uid") == uid for r in refs)


def decide(
    lws: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    desired: Desired,
    now: float,
) -> BridgePlan:
    """The plan for `lws`, given its live ModelServing (None: there is none)."""
    uid = lws["metadata"]["uid"]
    create: dict[str, Any] | None = None
    patch: list[dict[str, Any]] = []
    events: list[Event] = []
    bridged: tuple[str, str, str]
    if desired.modelserving is None:
        bridged = ("False", "InvalidMapping", desired.invalid or "cannot be mapped")
        events.append(Event("InvalidMapping", bridged[2][:1000], "Warning"))
    elif live is None:
        create = desired.modelserving
        bridged = ("True", "ModelServingCreated", _served(lws))
        events.append(Event("ModelServingCreated", _served(lws)))
    elif not controlled_by(live, uid):
        message = (
            f"ModelServing {lws['metadata']['name']} exists and is not controlled by this "
            "LeaderWorkerSet; it is left alone"
        )
        bridged = ("False", "ModelServingExists", message)
        events.append(Event("ModelServingExists", message, "Warning"))
    else:
        bridged = ("True", "ModelServingSynced", _served(lws))
        if live.get("spec") != desired.modelserving["spec"]:
            patch = guarded(
                live, [{"op": "replace", "path": "/spec", "value": desired.modelserving["spec"]}]
            )
            events.append(
                Event(
                    "ModelServingSpecRestored", "the ModelServing spec is kept equal to the mapping"
                )
            )
    served = live if live is not None and controlled_by(live, uid) else None
    status = lws_status(lws, served, desired.unsupported, bridged, now)
    if desired.unsupported and _newly_reported(lws, desired.unsupported):
        events.append(Event(NOT_HONOURED, not_honoured_message(desired.unsupported), "Warning"))
    changed = status if status != (lws.get("status") or {}) else None
    return BridgePlan(create, patch, changed, tuple(events))


def _served(lws: Mapping[str, Any]) -> str:
    return f"served by ModelServing {lws['metadata']['name']}"


def not_honoured_message(unsupported: Sequence[Unsupported]) -> str:
    return "; ".join(str(u) for u in unsupported)[:1000]


def _newly_reported(lws: Mapping[str, Any], unsupported: Sequence[Unsupported]) -> bool:
    for condition in (lws.get("status") or {}).get("conditions") or ():
        if condition.get("type") == NOT_HONOURED:
            return bool(
                condition.get("message") != not_honoured_message(unsupported)
                or condition.get("status") != "True"
            )
    return True


def lws_status(
    lws: Mapping[str, Any],
    ms: Mapping[str, Any] | None,
    unsupported: Sequence[Unsupported],
    bridged: tuple[str, str, str],
    now: float,
) -> dict[str, Any]:
    """The LWS status: counts and conditions from its ModelServing, and the bridge's own."""
    old = lws.get("status") or {}
    ms_status = (ms or {}).get("status") or {}
    stamp = timestamp(now)
    generation = lws["metadata"].get("generation")
    conditions = [dict(c) for c in old.get("conditions") or ()]
    for condition in ms_status.get("conditions") or ():
        if condition.get("type") in MIRRORED:
            _set(
                conditions,
                condition["type"],
                condition["status"],
                condition.get("reason") or condition["type"],
                condition.get("message") or "",
                stamp,
                generation,
            )
    if unsupported:
        _set(
            conditions,
            NOT_HONOURED,
            "True",
            "UnsupportedFields",
            not_honoured_message(unsupported),
            stamp,
            generation,
        )
    else:
        _set(
            conditions,
            NOT_HONOURED,
            "False",
            "AllFieldsHonoured",
            "every field set is honoured",
            stamp,
            generation,
        )
    _set(conditions, BRIDGED, *bridged, stamp, generation)
    status: dict[str, Any] = {
        k: v for k, v in old.items() if k not in ("replicas", "readyReplicas", "updatedReplicas")
    }
    status["conditions"] = conditions
    status["hpaPodSelector"] = naming.lws_leader_selector(lws["metadata"]["name"])
    # Zero counts are left out, as the LWS API's omitempty writes them.
    for key, value in (
        ("replicas", ms_status.get("replicas", 0)),
        ("readyReplicas", ms_status.get("availableReplicas", 0)),
        ("updatedReplicas", ms_status.get("updatedReplicas", 0)),
    ):
        if value:
            status[key] = value
    return status


def _set(
    conditions: list[dict[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> None:
    """metav1.Condition semantics: the transition time moves only when the status flips."""
    for condition in conditions:
        if condition.get("type") == kind:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = now
            condition.update(status=status, reason=reason, message=message)
            if generation is not None:
                condition["observedGeneration"] = generation
            return
    made: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }
    if generation is not None:
        made["observedGeneration"] = generation
    conditions.append(made)
