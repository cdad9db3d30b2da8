"""Evidence: why a pod failed, read from its container statuses before it is deleted.

Pure (docs/behaviour.md#evidence). Per container: the termination reason, exit code, message,
restart count and time (the current state if it is terminated or waiting, else the last
termination). The records go into a Warning Event and, the last few, into
`status.recovery.lastFailures`, so whoever arrives after the recreation still sees the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sync.core.timestamps import timestamp

KEEP = 5  # failures kept in the status, newest last
MESSAGE = 256  # characters kept of a container's message


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE else text[: MESSAGE - 1] + "…"


def container(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """What one container status says about a failure, None when it says nothing."""
    state = status.get("state", {})
    terminated = state.get("terminated") or status.get("lastState", {}).get("terminated")
    out: dict[str, Any] = {
        "name": status.get("name", ""),
        "restartCount": status.get("restartCount", 0),
    }
    if terminated:
        out["reason"] = terminated.get("reason", "")
        out["exitCode"] = terminated.get("exitCode", 0)
        if terminated.get("message"):
            out["message"] = _clip(str(terminated["message"]))
        if terminated.get("finishedAt"):
            out["finishedAt"] = terminated["finishedAt"]
        if "waiting" in state and state["waiting"].get("reason"):
            out["waiting"] = state["waiting"]["reason"]
        return out
    waiting = state.get("waiting")
    if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
        out["reason"] = waiting["reason"]
        if waiting.get("message"):
            out["message"] = _clip(str(waiting["message"]))
        return out
    return None


def containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status", {})
    found = [
        container(c)
        for key in ("initContainerStatuses", "containerStatuses")
        for c in status.get(key, ())
    ]
    return [c for c in found if c is not None]


def record(pod: Mapping[str, Any], group: int, role: str, now: float) -> dict[str, Any]:
    """One failure, as kept in the status."""
    out: dict[str, Any] = {
        "pod": pod["metadata"]["name"],
        "group": group,
        "role": role,
        "time": timestamp(now),
        "containers": containers(pod),
    }
    status = pod.get("status", {})
    if status.get("reason") or status.get("message"):
        out["podReason"] = _clip(f"{status.get('reason', '')}: {status.get('message', '')}")
    return out


def describe_container(c: Mapping[str, Any]) -> str:
    parts = [f"container {c['name']}"]
    if "exitCode" in c:
        parts.append(f"exit code {c['exitCode']}")
    if c.get("reason"):
        parts.append(f"reason {c['reason']}")
    if c.get("restartCount"):
        parts.append(f"{c['restartCount']} restarts")
    text = ", ".join(parts)
    if c.get("message"):
        text += f": {c['message']}"
    return text


def describe(rec: Mapping[str, Any]) -> str:
    """One line for the Event and condition messages."""
    details = [describe_container(c) for c in rec.get("containers", ())]
    if rec.get("podReason") and not details:
        details.append(rec["podReason"])
    return "; ".join(details) or "no container status reported"


def keep(previous: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The last KEEP failures, oldest first."""
    return [dict(r) for r in [*previous, *new][-KEEP:]]
