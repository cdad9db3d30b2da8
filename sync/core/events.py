"""Event values: what the planner wants said about a ModelServing (docs/behaviour.md#events).

Only the values live here; `sync.events` writes them, with client-go's spam protection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventType = Literal["Normal", "Warning"]
RoleStatus = Literal["Creating", "Running", "Deleting"]


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: EventType = "Normal"


def role_event(status: RoleStatus, role: str, role_id: str, group: str) -> Event:
    """RoleCreating / RoleRunning / RoleDeleting, worded as the reference controller does."""
    return Event(f"Role{status}", f"Role {role}/{role_id} in ServingGroup {group} is now {status}")
