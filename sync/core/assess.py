"""Assess: each observed ServingGroup judged against the spec (template, readiness, revision).

Pure. Shared by the planner (what to do) and the status (what to report), so both agree on
which groups are available, updated and being deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.model import ModelServing, Role
from sync.core.history import History
from sync.core.observe import GroupState, InstanceState, Observed, most_common
from sync.core.rollout import group_partition, role_partition


@dataclass(frozen=True)
class GroupView:
    ordinal: int
    roles: tuple[Role, ...]  # the template the group is kept at
    revision: str  # revision of that template
    observed_revision: str  # the revision most of its pods carry
    protected: bool  # partition keeps it at its revision
    running: bool  # every role instance of `roles` present and ready
    updated: bool  # at the ModelServing's current revision
    deleting: bool


class Assessor:
    def __init__(
        self, ms: ModelServing, history: History, observed: Observed, status: Mapping[str, Any]
    ) -> None:
        self.ms = ms
        self.history = history
        self.observed = observed
        self.status = status
        self.partition = group_partition(ms)

    def template_of(self, instance: InstanceState) -> Role | None:
        return self.history.role_by_hash(instance.role, instance.role_hash, instance.revision)

    def instance_ready(self, instance: InstanceState) -> bool:
        template = self.template_of(instance)
        return template is not None and not instance.terminating and instance.ready(template.size)

    def roles_for(self, ordinal: int, revision: str) -> tuple[tuple[Role, ...], str, bool]:
        """(roles, revision, protected) a group with this ordinal and revision is kept at."""
        current = self.ms.revision
        if ordinal < self.partition and revision and revision != current:
            history = self.history.roles_of(revision)
            if history is not None:
                return history, revision, True
        return self.ms.template.roles, current, ordinal < self.partition

    def roles_for_new(self, ordinal: int) -> tuple[tuple[Role, ...], str]:
        """A protected ordinal being (re)built goes back to the current revision's template."""
        old = str(self.status.get("currentRevision") or "")
        roles, revision, _ = self.roles_for(ordinal, old)
        return roles, revision

    def template_for_missing(self, role: Role, ordinal: int, revision: str) -> tuple[Role, str]:
        """(template, revision) a missing role instance is (re)built from: a role partition
        protects low ordinals at the template of the current (pre-update) revision."""
        if self.ms.rollout.role_rolling and ordinal < role_partition(role):
            old = str(self.status.get("currentRevision") or "")
            for candidate in (self.history.roles_of(old) if old else None) or ():
                if candidate.name == role.name:
                    return candidate, old
        return role, revision

    def outdated_instances(self, group: GroupState) -> list[InstanceState]:
        """RoleRollingUpdate: the instances (terminating ones too: they still exist) whose
        role template hash is not their role's current one."""
        hashes = {r.name: r.template_hash for r in self.ms.template.roles}
        return [i for i in group.instances.values() if hashes.get(i.role) != i.role_hash]

    def updated(self, group: GroupState) -> bool:
        if self.ms.rollout.role_rolling:
            return not self.outdated_instances(group)
        return bool(group.pods()) and all(p.revision == self.ms.revision for p in group.pods())

    def group_revision(self, group: GroupState) -> str:
        """The revision a group is at. Under RoleRollingUpdate it moves to the current one only
        when none of its roles is outdated (docs/behaviour.md#rollout): until then it is the
        revision its outdated instances carry, whatever the updated ones carry."""
        if not self.ms.rollout.role_rolling:
            return group.revision
        outdated = self.outdated_instances(group)
        if not outdated:
            return self.ms.revision if group.pods() else group.revision
        # Instances a role partition protects keep the revision the group had before any
        # rollout reached it; the others are on their way out.
        roles = {r.name: r for r in self.ms.template.roles}
        kept = [
            i for i in outdated if i.role in roles and i.ordinal < role_partition(roles[i.role])
        ]
        return most_common([p.revision for i in (kept or outdated) for p in i.pods.values()])

    def running(self, group: GroupState, roles: tuple[Role, ...]) -> bool:
        # A terminating instance makes its group Scaling, not Deleting: not available until
        # it is gone (docs/behaviour.md#readiness).
        if group.terminating or any(i.terminating for i in group.instances.values()):
            return False
        for role in roles:
            instances = [i for i in group.instances_of(role.name).values() if not i.terminating]
            if len(instances) != role.replicas or not all(
                self.instance_ready(i) for i in instances
            ):
                return False
        return True

    def view(self, group: GroupState) -> GroupView:
        observed = self.group_revision(group)
        roles, revision, protected = self.roles_for(group.ordinal, observed)
        return GroupView(
            ordinal=group.ordinal,
            roles=roles,
            revision=revision,
            observed_revision=observed,
            protected=protected,
            running=self.running(group, roles),
            updated=self.updated(group),
            deleting=group.terminating,
        )

    def views(self) -> list[GroupView]:
        return [self.view(self.observed.groups[o]) for o in sorted(self.observed.groups)]
