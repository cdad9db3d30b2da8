"""Rendering: expanded values through the templates into Kubernetes objects (plain dicts).

One code path for offline rendering and the sync daemon (docs/behaviour.md#templates): it asks for a
group, a role instance or a single pod with the revision it wants; `render_modelserving` asks for
every group at the current revision.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator.expand import (
    Context,
    RoleShape,
    Settings,
    pod_values,
    podgroup_values,
    revision_values,
    service_values,
)
from generator.kinds import Object, apply_rank
from generator.model import ModelServing, Role
from generator.templating import TemplateError, TemplateSet


def _tidy(obj: Any, template: str) -> Object:
    """Drop null fields and empty metadata maps, check the object has an identity."""
    if not isinstance(obj, dict):
        raise TemplateError(f"output must be one object, got {type(obj).__name__}", template)
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise TemplateError("output object has no metadata.name", template)
    if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        raise TemplateError("output object needs apiVersion and kind", template)
    for key in ("labels", "annotations", "ownerReferences"):
        if key in meta and not meta[key]:
            del meta[key]
    for part in (obj, obj.get("spec")):
        if isinstance(part, dict):
            for key in [k for k, v in part.items() if v is None]:
                del part[key]
    return obj


class Renderer:
    """Renders the objects of one ModelServing with one template set."""

    def __init__(self, templates: TemplateSet, ms: ModelServing, settings: Settings) -> None:
        self.templates = templates
        self.ctx = Context(ms, settings)
        self._shapes: dict[int, RoleShape] = {}

    @property
    def ms(self) -> ModelServing:
        return self.ctx.ms

    def shape(self, role: Role) -> RoleShape:
        # Keyed by identity: a Role is immutable, and historical roles are distinct objects.
        found = self._shapes.get(id(role))
        if found is None or found.role is not role:
            found = self._shapes[id(role)] = RoleShape(role)
        return found

    def _plugins(self, role: str, entry: bool) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        """The chain entries that apply to the pod, in list order; duplicates stay."""
        return tuple((p.name, p.config) for p in self.ms.plugins if p.applies_to(role, entry))

    def _render(
        self,
        name: str,
        variables: dict[str, Any],
        plugins: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> Object:
        variables["modelserving"] = self.ctx.modelserving
        obj = self.templates.render(name, variables, plugins)
        return _tidy(obj, name)

    def pod(self, role: Role, group: int, instance: int, index: int, revision: str) -> Object:
        values = pod_values(
            self.ctx,
            self.shape(role),
            group=group,
            instance=instance,
            index=index,
            revision=revision,
        )
        return self._render(
            "pod.j2",
            {"pod": values, "owner_references": self.ctx.owner_references},
            self._plugins(role.name, index == 0),
        )

    def role_pods(self, role: Role, group: int, instance: int, revision: str) -> list[Object]:
        """The entry pod, then its workers in index order."""
        return [self.pod(role, group, instance, k, revision) for k in range(role.size)]

    def service(self, role: Role, group: int, instance: int) -> Object | None:
        values = service_values(self.ctx, role, group, instance)
        if values is None:
            return None
        return self._render(
            "service.j2", {"service": values, "owner_references": self.ctx.owner_references}
        )

    def podgroup(self, group: int) -> Object | None:
        if not self.ctx.podgroups:
            return None
        values = podgroup_values(self.ctx, group, self.ms.template)
        return self._render(
            "podgroup.j2",
            {"podgroup": values, "owner_references": self.ctx.podgroup_owner_references},
        )

    def controller_revision(self, revision: str, roles: Any, number: int = 1) -> Object:
        values = revision_values(self.ctx, revision, roles, number)
        return self._render(
            "controllerrevision.j2",
            {"revision": values, "owner_references": self.ctx.owner_references},
        )


@dataclass(frozen=True)
class GroupObjects:
    podgroup: Object | None
    services: list[Object]
    pods: list[Object]


def render_group(
    renderer: Renderer, group: int, roles: Sequence[Role], revision: str
) -> GroupObjects:
    services: list[Object] = []
    pods: list[Object] = []
    for role in roles:
        for instance in range(role.replicas):
            service = renderer.service(role, group, instance)
            if service is not None:
                services.append(service)
            pods.extend(renderer.role_pods(role, group, instance, revision))
    return GroupObjects(renderer.podgroup(group), services, pods)


def render_modelserving(renderer: Renderer) -> list[Object]:
    """Every object of the ModelServing at its current revision, in apply order."""
    ms = renderer.ms
    groups = [render_group(renderer, g, ms.template.roles, ms.revision) for g in range(ms.replicas)]
    podgroups = [g.podgroup for g in groups if g.podgroup is not None]
    objects = [*podgroups, *_flatten(g.services for g in groups), *_flatten(g.pods for g in groups)]
    # Stable: within a kind, objects stay in group, role, instance, index order.
    return sorted(objects, key=lambda obj: apply_rank(obj["kind"]))


def _flatten(lists: Iterator[list[Object]] | Any) -> list[Object]:
    return [obj for items in lists for obj in items]
