"""Progress deadline and the kstatus conditions (pure).

docs/behaviour.md#progress. A ModelServing is *settling* while its `Available` condition is
not `True` (a rollout, a scale-up, a recovery). Each time the counts of the status change the
time is noted in `status.progress`; when nothing has changed for the deadline
(`msctl.dev/progress-deadline-seconds`), `Progressing` turns `False` with reason
`ProgressDeadlineExceeded` and names the groups still short and why. `Reconciling` and
`Stalled` follow the kstatus conventions (Flux, cli-utils) so generic tools read the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.model import ModelServing
from sync.core import evidence, recreate
from sync.core.assess import GroupView
from sync.core.backoff import Ledger, describe
from sync.core.observe import Observed
from sync.core.status import (
    AVAILABLE,
    PROGRESSING,
    RECONCILING,
    STALLED,
    UPDATING,
    Problem,
    set_condition,
)
from sync.core.timestamps import parse_any_timestamp, timestamp

DEADLINE = "ProgressDeadlineExceeded"
BUDGET = "RestartBudgetExhausted"
NAMED = 5  # groups named in a message; the rest are counted


def _true(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions", ())
    )


def marker(status: Mapping[str, Any]) -> str:
    """The counts whose change is progress."""
    roles = status.get("roles", ())
    return "/".join(
        str(x)
        for x in (
            status.get("replicas", 0),
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            sum(r.get("ready", 0) for r in roles),
            sum(r.get("updated", 0) for r in roles),
        )
    )


def _since(status: Mapping[str, Any]) -> float | None:
    return _parse(status.get("progress", {}))


def _parse(progress: Mapping[str, Any]) -> float | None:
    raw = progress.get("since")
    return parse_any_timestamp(raw) if isinstance(raw, str) else None


def deadline_left(ms: ModelServing, status: Mapping[str, Any], now: float) -> float | None:
    """Seconds until the deadline passes, None if it is not running."""
    deadline = ms.settings.progress_deadline
    since = _since(status)
    if deadline <= 0 or since is None or _true(status, AVAILABLE):
        return None
    if status.get("progress", {}).get("exceeded"):
        return None
    return max(since + deadline - now, 0.1)


def why_stuck(views: Sequence[GroupView], observed: Observed) -> str:
    """The groups that hold the rollout back (not ready), or else the outdated ones."""
    stuck = [v for v in views if not v.running]
    waiting = "not ready"
    if not stuck:
        stuck = [v for v in views if not v.updated and not v.protected]
        waiting = "outdated"
    parts = []
    for view in stuck[:NAMED]:
        group = observed.groups.get(view.ordinal)
        reason = "being deleted" if view.deleting else waiting
        for pod in sorted(group.pods() if group else [], key=lambda p: p.name):
            if not pod.ready:
                found = evidence.containers(pod.obj)
                detail = "; ".join(evidence.describe_container(c) for c in found)
                phase = pod.obj.get("status", {}).get("phase", "Pending")
                reason = f"pod {pod.name} {detail or phase}"
                break
        parts.append(f"{view.ordinal} ({reason})")
    more = f" and {len(stuck) - NAMED} more" if len(stuck) > NAMED else ""
    return ", ".join(parts) + more


def _keep_transition(
    conditions: list[dict[str, Any]], previous: Mapping[str, Any], kind: str, reason: str
) -> None:
    """The reference conditions are recomputed before ours: a condition we set again the
    same way keeps its transition time instead of flipping twice in one reconcile."""
    before = next((c for c in previous.get("conditions", ()) if c.get("type") == kind), None)
    if before is None or before.get("reason") != reason:
        return
    for condition in conditions:
        if condition["type"] == kind and condition["status"] == before.get("status"):
            condition["lastTransitionTime"] = before["lastTransitionTime"]


def apply(
    ms: ModelServing,
    new: dict[str, Any],
    previous: Mapping[str, Any],
    views: Sequence[GroupView],
    observed: Observed,
    ledger: Ledger,
    now: float,
    problem: Problem | None = None,
) -> None:
    """Add `progress` and the deadline and kstatus conditions to the computed status `new`;
    `problem`: why the daemon itself cannot make progress (writes undone, `sync.core.churn`)."""
    stamp = timestamp(now)
    conditions: list[dict[str, Any]] = new["conditions"]
    settling = not _true(new, AVAILABLE)
    exceeded = False
    if settling:
        before = previous.get("progress", {})
        mark = marker(new)
        if before.get("marker") == mark and _since(previous) is not None:
            progress = dict(before)
        else:
            progress = {"marker": mark, "since": stamp}
        since = _parse(progress) or now
        deadline = ms.settings.progress_deadline
        exceeded = deadline > 0 and now - since >= deadline
        if exceeded:
            progress["exceeded"] = True
            message = (
                f"no progress for {deadline}s (since {progress['since']}); stuck groups: "
                f"{why_stuck(views, observed)}"
            )
            set_condition(conditions, PROGRESSING, "False", DEADLINE, message, stamp)
            _keep_transition(conditions, previous, PROGRESSING, DEADLINE)
        else:
            progress.pop("exceeded", None)
        new["progress"] = progress
    stalled = [(problem.reason, problem.message)] if problem is not None else []
    failed = ledger.failed()
    if failed:
        units = ", ".join(describe(e) for e in failed[:NAMED])
        more = f" and {len(failed) - NAMED} more" if len(failed) > NAMED else ""
        stalled.append(
            (
                BUDGET,
                f"restart budget spent, not recreated: {units}{more}; "
                f"reset with: {recreate.reset_command(ms)}",
            )
        )
    if exceeded:
        stalled.append(
            (DEADLINE, next(c["message"] for c in conditions if c["type"] == PROGRESSING))
        )
    if stalled:
        reason = stalled[0][0]
        set_condition(conditions, STALLED, "True", reason, "; ".join(m for _, m in stalled), stamp)
        set_condition(conditions, RECONCILING, "False", reason, "stalled: see Stalled", stamp)
        return
    set_condition(conditions, STALLED, "False", "NotStalled", "no failed unit, no stall", stamp)
    active = next(
        (c for c in conditions if c["type"] in (UPDATING, PROGRESSING) and c["status"] == "True"),
        None,
    )
    if settling and active is not None:
        set_condition(conditions, RECONCILING, "True", active["reason"], active["message"], stamp)
    else:
        set_condition(conditions, RECONCILING, "False", "Available", "nothing to do", stamp)
