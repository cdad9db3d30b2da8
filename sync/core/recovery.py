"""Failed pods and the restart grace period (docs/behaviour.md#recovery).

A pod is failing when its phase is Failed, or when a container restarted since the daemon
last acknowledged its restart count and the pod is not Ready. The first time a failing pod is
seen, the time is written onto the pod itself (annotation `failed-since`), so the grace
window survives a daemon restart and belongs to that pod incarnation (a replacement pod has
a new UID and no mark). Every reconcile compares the mark with the grace period; a pod that
is Ready again inside the window has its mark cleared and its restart count acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.naming import FAILED_SINCE_ANNOTATION as FAILED_SINCE
from generator.naming import RESTARTS_SEEN_ANNOTATION as RESTARTS_SEEN
from sync.core.observe import PodState
from sync.core.timestamps import parse_timestamp, timestamp


def restarts_seen(pod: PodState) -> int:
    raw = pod.obj["metadata"].get("annotations", {}).get(RESTARTS_SEEN, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def failed_since(pod: PodState) -> float | None:
    raw = pod.obj["metadata"].get("annotations", {}).get(FAILED_SINCE)
    return parse_timestamp(raw) if raw else None


def failing(pod: PodState) -> bool:
    if pod.terminating:
        return False
    return pod.failed or (not pod.ready and pod.restarts > restarts_seen(pod))


@dataclass(frozen=True)
class Verdict:
    """What to do about one pod's health now."""

    action: str  # "none" | "mark" | "clear" | "acknowledge" | "wait" | "replace"
    annotations: dict[str, str | None]  # annotation changes to write (None: remove)
    wait: float = 0.0  # seconds until the grace window ends ("wait")
    why: str = ""


NOTHING = Verdict("none", {})


def judge(pod: PodState, now: float, grace: int) -> Verdict:
    since = failed_since(pod)
    if failing(pod):
        if since is None:
            if grace <= 0:
                return Verdict("replace", {}, why=_reason(pod))
            return Verdict(
                "mark", {FAILED_SINCE: timestamp(now)}, wait=float(grace), why=_reason(pod)
            )
        remaining = since + grace - now
        if remaining > 0:
            return Verdict("wait", {}, wait=remaining, why=_reason(pod))
        return Verdict("replace", {}, why=f"{_reason(pod)} for over {grace}s")
    if pod.ready and (since is not None or pod.restarts != restarts_seen(pod)):
        changes: dict[str, str | None] = {RESTARTS_SEEN: str(pod.restarts)}
        if since is not None:
            changes[FAILED_SINCE] = None
            return Verdict("clear", changes, why="recovered inside the grace period")
        return Verdict("acknowledge", changes, why="restart count acknowledged")
    return NOTHING


def _reason(pod: PodState) -> str:
    if pod.failed:
        return f"pod {pod.name} failed"
    return f"pod {pod.name} restarted ({pod.restarts} restarts) and is not ready"
