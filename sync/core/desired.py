"""Desired objects: what the planner may ask for, and those objects once rendered.

Planning never renders. `wanted()` names every object a plan of the observed state can need
(each pod, Service and PodGroup by its slot: template, group, instance, index, revision); the
daemon's shell renders those through the generator, exactly as `msctl render` does, into a
`Desired` value; the planner then only looks objects up. A template error therefore stops a
reconcile before anything is planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from generator.kinds import Object
from generator.model import ModelServing, Role
from sync.core import scaling
from sync.core.assess import Assessor
from sync.core.history import History
from sync.core.observe import Observed

# (role name, role template hash, group, instance, index, revision label)
PodKey = tuple[str, str, int, int, int, str]
# (role name, role template hash, group, instance)
ServiceKey = tuple[str, str, int, int]


class PodSlot(NamedTuple):  # a tuple: thousands are made per reconcile
    role: Role
    group: int
    instance: int
    pod: int  # the pod's index in its role instance (`index` is a tuple method)
    revision: str

    @property
    def key(self) -> PodKey:
        r = self.role
        return (r.name, r.template_hash, self.group, self.instance, self.pod, self.revision)


class ServiceSlot(NamedTuple):
    role: Role
    group: int
    instance: int

    @property
    def key(self) -> ServiceKey:
        return (self.role.name, self.role.template_hash, self.group, self.instance)


def pod_key(role: Role, group: int, instance: int, index: int, revision: str) -> PodKey:
    return (role.name, role.template_hash, group, instance, index, revision)


def service_key(role: Role, group: int, instance: int) -> ServiceKey:
    return (role.name, role.template_hash, group, instance)


@dataclass(frozen=True)
class Wanted:
    """The slots a plan may fill or compare against."""

    pods: Mapping[PodKey, PodSlot] = field(default_factory=dict)
    services: Mapping[ServiceKey, ServiceSlot] = field(default_factory=dict)
    podgroups: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Desired:
    """The rendered objects of the wanted slots.

    `podgroups[g]` and `services[k]` are None where no such object is rendered (PodGroups
    not managed; a role without workers); `podgroup_specs[g]` is the PodGroup spec as the
    server would store it, the installed CRD's defaults applied (None: no CRD schema)."""

    revision: Object  # the ControllerRevision of the spec's revision
    pods: Mapping[PodKey, Object]
    services: Mapping[ServiceKey, Object | None]
    podgroups: Mapping[int, Object | None]
    podgroup_specs: Mapping[int, Mapping[str, Any] | None]

    def pod(self, role: Role, group: int, instance: int, index: int, revision: str) -> Object:
        return self.pods[pod_key(role, group, instance, index, revision)]

    def service(self, role: Role, group: int, instance: int) -> Object | None:
        return self.services[service_key(role, group, instance)]


def wanted(
    ms: ModelServing, history: History, observed: Observed, status: Mapping[str, Any]
) -> Wanted:
    """Every slot the planner can ask for: new groups, missing role instances and pods, and
    the counterparts of every live pod and Service (to diff them)."""
    assessor = Assessor(ms, history, observed, status)
    pods: dict[PodKey, PodSlot] = {}
    services: dict[ServiceKey, ServiceSlot] = {}
    current = {r.name: r for r in ms.template.roles}

    def instance(role: Role, group: int, ordinal: int, revisions: set[str]) -> None:
        name, template = role.name, role.template_hash
        services[(name, template, group, ordinal)] = ServiceSlot(role, group, ordinal)
        for revision in revisions:
            for index in range(role.size):
                pods[(name, template, group, ordinal, index, revision)] = PodSlot(
                    role, group, ordinal, index, revision
                )

    for ordinal in scaling.missing_ordinals(observed.groups, ms.replicas):
        roles, revision = assessor.roles_for_new(ordinal)
        for role in roles:
            for number in range(role.replicas):
                instance(role, ordinal, number, {revision})
    for ordinal, group in observed.groups.items():
        view = assessor.view(group)
        for role in view.roles:
            for number in scaling.missing_ordinals(group.instances_of(role.name), role.replicas):
                template, revision = assessor.template_for_missing(role, number, view.revision)
                instance(template, ordinal, number, {revision})
        for live in group.instances.values():
            found = assessor.template_of(live)
            if found is not None:
                labels = {p.revision or live.revision for p in live.pods.values()}
                instance(found, ordinal, live.ordinal, {live.revision} | labels)
            # what the current revision renders for it: its content is judged against that
            # (docs/behaviour.md#adoption), and an adopted instance is patched to it
            if live.role in current:
                instance(current[live.role], ordinal, live.ordinal, {ms.revision})
    podgroups = frozenset(observed.groups) | frozenset(range(ms.replicas))
    return Wanted(pods, services, podgroups)
