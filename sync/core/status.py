"""Status: what `status` of a ModelServing says, computed from the assessed groups (pure).

docs/behaviour.md#status and #conditions: a deterministic currentRevision, a status for
replicas 0 like any other, condition messages that name ordinals and are refreshed; the
transition time moves only when a condition's status flips.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator import naming
from generator.model import ModelServing
from sync.core.assess import GroupView
from sync.core.rollout import group_partition
from sync.core.timestamps import timestamp

__all__ = ["compute", "summary", "timestamp"]

AVAILABLE, PROGRESSING, UPDATING = "Available", "Progressing", "UpdateInProgress"
# True while the daemon cannot make progress without a change from someone: the spec or a
# template is broken, or its writes keep being undone (kstatus reads the same type).
STALLED, RECONCILING = "Stalled", "Reconciling"


@dataclass(frozen=True)
class Problem:
    """Why the daemon is stalled: a condition reason and a message for people."""

    reason: str
    message: str


def stalled(
    conditions: Sequence[Mapping[str, Any]], problem: Problem, now: float
) -> list[dict[str, Any]]:
    """`conditions` with `Stalled=True` for `problem` and `Reconciling=False`, as kstatus
    readers expect of a resource its controller cannot make progress on. A plan clears
    them again (`sync.core.progress`)."""
    out = [dict(c) for c in conditions]
    stamp = timestamp(now)
    _set(out, STALLED, "True", problem.reason, problem.message, stamp)
    _set(out, RECONCILING, "False", problem.reason, "stalled: see Stalled", stamp)
    return out


def label_selector(ms: ModelServing) -> str:
    """One pod per ServingGroup (the first role's first entry pod), for HPA and KEDA."""
    first = ms.template.roles[0].name
    return naming.label_selector(
        {
            naming.NAME_LABEL: ms.name,
            naming.ENTRY_LABEL: "true",
            naming.ROLE_LABEL: first,
            naming.ROLE_ID_LABEL: naming.role_id(first, 0),
        }
    )


def current_revision(ms: ModelServing, views: Sequence[GroupView]) -> str:
    """Among groups not yet updated, the revision most hold; ties go to the lowest ordinal."""
    old = [v for v in views if not v.deleting and not v.updated and v.observed_revision]
    if not old:
        return ms.revision
    counts = Counter(v.observed_revision for v in old)
    top = max(counts.values())
    return next(v.observed_revision for v in old if counts[v.observed_revision] == top)


def _ordinals(values: Sequence[int]) -> str:
    return "[" + " ".join(str(v) for v in values) + "]"


def _set(
    conditions: list[dict[str, Any]], kind: str, status: str, reason: str, message: str, now: str
) -> None:
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != status:
                condition["lastTransitionTime"] = now
            condition.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
    )


set_condition = _set  # for the conditions of sync.core.progress


def _flip_false(conditions: list[dict[str, Any]], kinds: Sequence[str], now: str) -> None:
    for condition in conditions:
        if condition["type"] in kinds and condition["status"] == "True":
            condition.update(status="False", lastTransitionTime=now)


def conditions(
    ms: ModelServing, views: Sequence[GroupView], previous: Sequence[Mapping[str, Any]], now: float
) -> list[dict[str, Any]]:
    stamp = timestamp(now)
    out = [dict(c) for c in previous]
    progressing = [v.ordinal for v in views if v.deleting or not v.running]
    outdated = [v.ordinal for v in views if not v.deleting and not v.updated]
    updated = [v.ordinal for v in views if not v.deleting and v.updated]
    if not progressing and len(views) == ms.replicas:
        _set(out, AVAILABLE, "True", "AllGroupsReady", "All Serving groups are ready", stamp)
        _flip_false(out, (PROGRESSING, UPDATING), stamp)
    elif len(outdated) > group_partition(ms):
        message = (
            f"Some groups are progressing: {_ordinals(progressing)}, "
            f"updated groups: {_ordinals(updated)}"
        )
        _set(out, UPDATING, "True", "GroupsUpdating", message, stamp)
        _flip_false(out, (AVAILABLE,), stamp)
    else:
        message = f"Some groups are progressing: {_ordinals(progressing)}"
        _set(out, PROGRESSING, "True", "GroupProgressing", message, stamp)
        _flip_false(out, (AVAILABLE,), stamp)
    return out


def compute(
    ms: ModelServing, views: Sequence[GroupView], previous: Mapping[str, Any], now: float
) -> dict[str, Any]:
    live = [v for v in views if not v.deleting]
    updated = sum(1 for v in live if v.updated)
    available = sum(1 for v in views if v.running)
    current = len(live) - updated
    if group_partition(ms) == 0 and updated == available == len(views) == ms.replicas:
        current = updated
    status: dict[str, Any] = {
        "observedGeneration": ms.generation or 0,
        "replicas": len(views),
        "currentReplicas": current,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "currentRevision": current_revision(ms, views),
        "updateRevision": ms.revision,
        "labelSelector": label_selector(ms),
        "conditions": conditions(ms, views, previous.get("conditions", ()), now),
    }
    return status


def summary(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What a status write changes, in one line for people."""
    parts = [
        f"{key} {old.get(key, '-')} -> {new[key]}"
        if not isinstance(new[key], (dict, list))
        else f"{key} changed"
        for key in sorted(new)
        if key != "conditions" and old.get(key) != new[key]
    ]
    before = {c["type"]: c for c in old.get("conditions", ())}
    for condition in new.get("conditions", ()):
        if before.get(condition["type"]) != condition:
            parts.append(f"{condition['type']}={condition['status']} ({condition['reason']})")
    return ", ".join(parts) or "unchanged"
