"""Per-role status: `status.roles[]`, one entry per role name (pure).

docs/behaviour.md#role-status. Counts across all ServingGroups, so the size depends on the
number of roles, never on the number of groups.
"""

from __future__ import annotations

from typing import Any

from generator import naming
from generator.model import ModelServing
from sync.core.assess import Assessor
from sync.core.backoff import BACKING_OFF, FAILED, Ledger
from sync.core.observe import Observed


def compute(
    ms: ModelServing, observed: Observed, assessor: Assessor, ledger: Ledger
) -> list[dict[str, Any]]:
    out = []
    by_group = ms.recovery_policy == "ServingGroupRecreate"
    for role in ms.template.roles:
        counts = {"current": 0, "ready": 0, "updated": 0, "failed": 0, "backingOff": 0}
        for group in observed.groups.values():
            for instance in group.instances_of(role.name).values():
                if instance.terminating:
                    continue
                counts["current"] += 1
                counts["ready"] += assessor.instance_ready(instance)
                # By content, as the rollout judges it (docs/behaviour.md#adoption).
                counts["updated"] += assessor.instance_current(instance)
                key = (
                    group.ordinal,
                    "" if by_group else naming.role_id(role.name, instance.ordinal),
                )
                state = ledger.state(key)
                counts["failed"] += state == FAILED
                counts["backingOff"] += state == BACKING_OFF
        out.append({"name": role.name, "desired": ms.replicas * role.replicas, **counts})
    return out
