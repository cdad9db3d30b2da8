"""Expansion: the values each template is fed, one object at a time (docs/behaviour.md#pods).

A ModelServing is ServingGroups x roles x role instances x (entry + workers). Everything that
is derived (names, labels, annotations, env vars, owner references, gang sums) is computed here,
in Python, and handed to the templates as plain data; the templates only arrange it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator import naming
from generator.model import ModelServing, PodTemplate, Role, ServingGroupTemplate
from generator.quantity import sum_requests


@dataclass(frozen=True)
class Settings:
    """What the renderer cannot read from the spec.

    podgroups: manage Volcano PodGroups (and annotate pods for them) when the scheduler is
        volcano; offline rendering assumes the PodGroup CRD is there (docs/behaviour.md#podgroups).
    subgroup_policy: the PodGroup CRD supports `spec.subGroupPolicy` (Volcano >= 1.14).
    owner_uid: the ModelServing's UID for owner references, overriding `metadata.uid`.
    """

    podgroups: bool = True
    subgroup_policy: bool = True
    owner_uid: str | None = None


@dataclass(frozen=True)
class Context:
    """Per-ModelServing values shared by all its objects."""

    ms: ModelServing
    settings: Settings
    modelserving: Mapping[str, Any] = field(init=False)
    owner_references: list[dict[str, Any]] = field(init=False)
    podgroup_owner_references: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        ms = self.ms
        uid = self.settings.owner_uid or ms.uid
        ref = {
            "apiVersion": naming.API_VERSION,
            "kind": naming.KIND,
            "name": ms.name,
            "uid": uid,
            "controller": True,
        }
        object.__setattr__(
            self,
            "modelserving",
            {
                "name": ms.name,
                "namespace": ms.namespace,
                "uid": uid,
                "labels": dict(ms.labels),
                "annotations": dict(ms.annotations),
                "lws_owner": ms.lws_owner,
            },
        )
        object.__setattr__(
            self, "owner_references", [{**ref, "blockOwnerDeletion": True}] if uid else []
        )
        object.__setattr__(self, "podgroup_owner_references", [ref] if uid else [])

    @property
    def podgroups(self) -> bool:
        return self.settings.podgroups and self.ms.uses_volcano


class RoleShape:
    """What every pod of one role (at one template) shares, computed once."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.template_hash = role.template_hash
        self.entry = _PodShape(role.entry)
        self.worker = _PodShape(role.worker) if role.worker is not None else None
        self.group_size = str(role.size)


class _PodShape:
    def __init__(self, template: PodTemplate) -> None:
        self.labels = template.labels
        self.annotations = template.annotations
        self.spec = template.spec
        self.containers = [_without_injected(c) for c in template.spec["containers"]]
        init = template.spec.get("initContainers")
        self.init_containers = [_without_injected(c) for c in init] if init is not None else None


def _without_injected(container: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Any]]:
    env = [e for e in container.get("env", ()) if e.get("name") not in naming.INJECTED_ENV]
    return container, env


def _with_env(
    containers: list[tuple[Mapping[str, Any], list[Any]]], injected: list[dict[str, str]]
) -> list[dict[str, Any]]:
    return [{**c, "env": env + injected} for c, env in containers]


def pod_values(
    ctx: Context, shape: RoleShape, *, group: int, instance: int, index: int, revision: str
) -> dict[str, Any]:
    """Values of pod `index` (0 = entry) of role instance `instance` in group `group`."""
    ms, role = ctx.ms, shape.role
    entry = index == 0
    pod = shape.entry if entry else shape.worker
    if pod is None:
        raise ValueError(f"role {role.name} has no workerTemplate, so no worker {index}")
    name = naming.pod_name(ms.name, group, role.name, instance, index)
    group_name = naming.group_name(ms.name, group)
    role_id = naming.role_id(role.name, instance)
    labels = {
        naming.NAME_LABEL: ms.name,
        naming.GROUP_NAME_LABEL: group_name,
        naming.ROLE_LABEL: role.name,
        naming.ROLE_ID_LABEL: role_id,
        naming.REVISION_LABEL: revision,
        naming.ROLE_TEMPLATE_HASH_LABEL: shape.template_hash,
    }
    if entry:
        labels[naming.ENTRY_LABEL] = "true"
    labels.update(pod.labels)
    annotations = dict(pod.annotations)
    if ctx.podgroups:
        annotations[naming.PODGROUP_ANNOTATION] = group_name
        annotations[naming.TASK_SPEC_ANNOTATION] = role_id
    injected = [
        {"name": naming.ENV_GROUP_SIZE, "value": shape.group_size},
        {
            "name": naming.ENV_ENTRY_ADDRESS,
            "value": naming.entry_address(ms.name, group, role.name, instance, ms.namespace),
        },
        {"name": naming.ENV_WORKER_INDEX, "value": str(index)},
    ]
    spec = dict(pod.spec)
    spec["schedulerName"] = ms.scheduler_name
    spec["containers"] = _with_env(pod.containers, injected)
    if pod.init_containers is not None:
        spec["initContainers"] = _with_env(pod.init_containers, injected)
    if entry:
        spec["hostname"] = name
        spec["subdomain"] = naming.service_name(ms.name, group, role.name, instance)
    return {
        "name": name,
        "namespace": ms.namespace,
        "labels": labels,
        "annotations": annotations,
        "spec": spec,
        "entry": entry,
        "index": index,
        "group": group_name,
        "group_index": group,
        "role": role.name,
        "role_id": role_id,
        "role_index": instance,
        "revision": revision,
        "role_template_hash": shape.template_hash,
    }


def service_values(ctx: Context, role: Role, group: int, instance: int) -> dict[str, Any] | None:
    """The headless Service of a role instance; None when the role has no workerTemplate."""
    if role.worker is None:
        return None
    ms = ctx.ms
    group_name = naming.group_name(ms.name, group)
    role_id = naming.role_id(role.name, instance)
    return {
        "name": naming.service_name(ms.name, group, role.name, instance),
        "namespace": ms.namespace,
        "labels": {
            naming.NAME_LABEL: ms.name,
            naming.GROUP_NAME_LABEL: group_name,
            naming.ROLE_LABEL: role.name,
            naming.ROLE_ID_LABEL: role_id,
        },
        "selector": {
            naming.GROUP_NAME_LABEL: group_name,
            naming.ROLE_LABEL: role.name,
            naming.ROLE_ID_LABEL: role_id,
            naming.ENTRY_LABEL: "true",
        },
        "group": group_name,
        "group_index": group,
        "role": role.name,
        "role_id": role_id,
        "role_index": instance,
    }


def _requests(template: PodTemplate) -> list[dict[str, Any]]:
    return [c.get("resources", {}).get("requests", {}) for c in template.spec["containers"]]


def podgroup_values(ctx: Context, group: int, template: ServingGroupTemplate) -> dict[str, Any]:
    """A group's Volcano PodGroup, always from the current spec (docs/behaviour.md#podgroups)."""
    ms = ctx.ms
    name = naming.podgroup_name(ms.name, group)
    terms: list[tuple[dict[str, Any], int]] = []
    min_member = 0
    subgroups = []
    for role in template.roles:
        gang = template.gang_replicas(role)
        min_member += role.size * gang
        terms.extend((r, gang) for r in _requests(role.entry))
        if role.worker is not None:
            terms.extend((r, gang * role.worker_replicas) for r in _requests(role.worker))
        subgroup: dict[str, Any] = {
            "name": role.name,
            "labelSelector": {
                "matchLabels": {naming.NAME_LABEL: ms.name, naming.ROLE_LABEL: role.name}
            },
            "matchLabelKeys": [naming.ROLE_ID_LABEL],
            "subGroupSize": role.size,
            "minSubGroups": gang,
        }
        if template.role_topology is not None:
            subgroup["networkTopology"] = dict(template.role_topology)
        subgroups.append(subgroup)
    return {
        "name": name,
        "namespace": ms.namespace,
        "labels": {naming.NAME_LABEL: ms.name, naming.GROUP_NAME_LABEL: name},
        "annotations": {naming.PODGROUP_ANNOTATION: name},
        "min_member": min_member,
        "min_resources": sum_requests(terms),
        "queue": ms.annotations.get(naming.QUEUE_ANNOTATION) or None,
        "network_topology": (
            dict(template.group_topology) if template.group_topology is not None else None
        ),
        "sub_group_policy": subgroups if ctx.settings.subgroup_policy else None,
    }


def revision_values(ctx: Context, revision: str, roles: Any, number: int = 1) -> dict[str, Any]:
    """The ControllerRevision of `revision` (docs/behaviour.md#controllerrevisions)."""
    ms = ctx.ms
    return {
        "name": naming.revision_name(ms.name, revision),
        "namespace": ms.namespace,
        "labels": {naming.NAME_LABEL: ms.name, naming.REVISION_LABEL: revision},
        "revision": number,
        "data": {"data": roles},
    }
