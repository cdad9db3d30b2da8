"""Explain: the objects a plan leaves as they are on purpose, in words (for `msctl plan`).

Pure. A terminating group or role instance is set aside until the API server says it is
gone, its ordinal reserved; a partition-protected group or role instance is kept at an older
revision. Neither shows up as a step, so the plan carries a note for each
(docs/behaviour.md#scaling, #rollout).
"""

from __future__ import annotations

from collections.abc import Mapping

from generator import naming
from generator.model import ModelServing
from sync.core.assess import GroupView
from sync.core.observe import Observed
from sync.core.rollout import role_partition


def held_notes(ms: ModelServing, observed: Observed, views: Mapping[int, GroupView]) -> list[str]:
    out: list[str] = []
    roles = {r.name: r for r in ms.template.roles}
    for ordinal in sorted(observed.groups):
        group, name = observed.groups[ordinal], naming.group_name(ms.name, ordinal)
        if group.terminating:
            out.append(
                f"ServingGroup {name} is terminating: counted and its ordinal reserved"
                " until it is gone"
            )
            continue
        view = views.get(ordinal)
        if view is not None and view.protected and view.revision != ms.revision:
            out.append(
                f"ServingGroup {name} is protected by the partition: kept at revision"
                f" {view.revision} (roles and counts from its ControllerRevision)"
            )
        for key in sorted(group.instances):
            instance = group.instances[key]
            where = f"{instance.role_id} in ServingGroup {name}"
            if instance.terminating:
                out.append(
                    f"{where} is terminating: set aside, its ordinal reserved, the group"
                    " Scaling until it is gone"
                )
                continue
            role = roles.get(instance.role)
            if (
                ms.rollout.role_rolling
                and role is not None
                and instance.ordinal < role_partition(role)
                and instance.role_hash != role.template_hash
            ):
                out.append(
                    f"{where} is protected by role {role.name}'s partition: kept at revision"
                    f" {instance.revision} (template {instance.role_hash})"
                )
    return out
