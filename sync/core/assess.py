"""Assess: each observed ServingGroup judged against the spec (template, readiness, revision).

Pure. Shared by the planner (what to do) and the status (what to report), so both agree on
which groups are available, updated and being deleted. Whether a pod is up to date is
decided by its content when the planner knows it (`same`: UIDs of the pods that run what the
current revision renders, docs/behaviour.md#adoption), else by its revision labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.model import ModelServing, Role
from sync.core.history import History
from sync.core.observe import GroupState, InstanceState, Observed, PodState, most_common
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
        self,
        ms: ModelServing,
        history: History,
        observed: Observed,
        status: Mapping[str, Any],
        same: frozenset[str] | None = None,
    ) -> None:
        self.ms = ms
        self.history = history
        self.observed = observed
        self.status = status
        self.same = same
        self.partition = group_partition(ms)
        self.current = {r.name: r for r in ms.template.roles}
        # One plan asks the same of a group or instance many times; the observation it
        # judges does not change while the plan is made.
        self._updated: dict[int, bool] = {}
        self._instance_current: dict[int, bool] = {}

    def pod_current(self, pod: PodState) -> bool:
        """The pod runs what the current revision renders: judged by content when known (a
        pod just created has no UID yet, and carries the labels it was rendered with)."""
        if self.same is not None and pod.uid:
            return pod.uid in self.same
        if self.ms.rollout.role_rolling:
            role = self.current.get(pod.role)
            return role is not None and pod.role_hash == role.template_hash
        return pod.revision == self.ms.revision

    def instance_current(self, instance: InstanceState) -> bool:
        found = self._instance_current.get(id(instance))
        if found is None:
            live = [p for p in instance.pods.values() if not p.terminating]
            found = self._instance_current[id(instance)] = (
                instance.role in self.current
                and bool(live)
                and all(self.pod_current(p) for p in live)
            )
        return found

    def labelled_template(self, instance: InstanceState) -> Role | None:
        """The template the instance's labels name, if this daemon knows it."""
        return self.history.role_by_hash(instance.role, instance.role_hash, instance.revision)

    def template_of(self, instance: InstanceState) -> Role | None:
        """The template the instance runs: the current one when its content is current,
        else the one its labels name (None: unknown, e.g. written by another controller)."""
        if self.instance_current(instance):
            return self.current[instance.role]
        return self.labelled_template(instance)

    def instance_ready(self, instance: InstanceState) -> bool:
        if instance.terminating:
            return False
        template = self.template_of(instance)
        if template is not None:
            return instance.ready(template.size)
        # Unknown template: ready as its own pods are, the entry pod present.
        return 0 in instance.pods and instance.ready(len(instance.pods))

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
        """The instances (terminating ones too: they still exist) not running what the
        current revision renders for their role."""
        return [
            i
            for i in group.instances.values()
            if i.role not in self.current or not all(self.pod_current(p) for p in i.pods.values())
        ]

    def updated(self, group: GroupState) -> bool:
        found = self._updated.get(group.ordinal)
        if found is None:
            found = self._updated[group.ordinal] = self._judge_updated(group)
        return found

    def _judge_updated(self, group: GroupState) -> bool:
        if self.ms.rollout.role_rolling:
            return not self.outdated_instances(group)
        return bool(group.pods()) and all(
            i.role in self.current and all(self.pod_current(p) for p in i.pods.values())
            for i in group.instances.values()
        )

    def adopt(self, group: GroupState, instance: InstanceState) -> bool:
        """Whether the instance is kept as the current revision, its metadata patched: its
        content is current, and so is its group's unless roles roll one by one."""
        if not self.instance_current(instance):
            return False
        if self.ms.rollout.role_rolling:
            return True
        # A group the partition keeps at an older revision stays there as a whole: one of its
        # roles running today's content (or the others missing for a moment) moves nothing.
        return group.ordinal >= self.partition and self.updated(group)

    def observed_revision(self, group: GroupState) -> str:
        """The revision a group is at: the one its outdated pods carry (adopted pods already
        say ours). Under RoleRollingUpdate it moves to the current one only when none of its
        roles is outdated (docs/behaviour.md#rollout), and follows the instances a role
        partition protects while there are any: the others are on their way out."""
        if not self.ms.rollout.role_rolling:
            old = [p.revision for p in group.pods() if p.revision and not self.pod_current(p)]
            return most_common(old) if old else group.revision
        outdated = self.outdated_instances(group)
        if not outdated:
            return self.ms.revision if group.pods() else group.revision
        kept = [
            i
            for i in outdated
            if i.role in self.current and i.ordinal < role_partition(self.current[i.role])
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
        observed = self.observed_revision(group)
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
