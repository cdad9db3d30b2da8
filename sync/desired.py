"""Desired objects of one ModelServing spec, rendered through the generator and remembered.

The daemon renders with `msctl render`'s renderer (docs/behaviour.md#templates). A reconcile of a
large ModelServing that changes nothing must stay cheap, so each rendered object is kept for
as long as the spec it came from: the controller keeps one `Desired` per spec (uid,
generation, labels, annotations) and drops it when any of those change.

Historical templates (a revision's roles, for partition-protected groups and for role
instances created from an older template) come from the ControllerRevisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from generator.expand import Settings
from generator.model import ModelServing, Role
from generator.render import Renderer
from generator.structural import StructuralSchema
from generator.templating import TemplateSet
from sync.diff import PatchMemo

Object = dict[str, Any]


class Desired:
    def __init__(
        self,
        templates: TemplateSet,
        ms: ModelServing,
        settings: Settings,
        podgroup_schema: StructuralSchema | None = None,
    ) -> None:
        """`podgroup_schema`: the installed PodGroup CRD's spec schema, for its defaults."""
        self.ms = ms
        self.settings = settings
        self.podgroup_schema = podgroup_schema
        self.renderer = Renderer(templates, ms, settings)
        self._memo: dict[tuple[Any, ...], Any] = {}
        # Patches of live objects against the objects above, which live exactly as long.
        self.patches = PatchMemo()
        self._history: dict[str, tuple[Role, ...]] = {ms.revision: ms.template.roles}

    def _remember(self, key: tuple[Any, ...], make: Any) -> Any:
        found = self._memo.get(key)
        if found is None and key not in self._memo:
            found = self._memo[key] = make()
        return found

    def pod(self, role: Role, group: int, instance: int, index: int, revision: str) -> Object:
        key = ("pod", id(role), group, instance, index, revision)
        obj: Object = self._remember(
            key, lambda: self.renderer.pod(role, group, instance, index, revision)
        )
        return obj

    def service(self, role: Role, group: int, instance: int) -> Object | None:
        key = ("service", id(role), group, instance)
        obj: Object | None = self._remember(
            key, lambda: self.renderer.service(role, group, instance)
        )
        return obj

    def podgroup(self, group: int) -> Object | None:
        obj: Object | None = self._remember(
            ("podgroup", group), lambda: self.renderer.podgroup(group)
        )
        return obj

    def podgroup_spec_on_server(self, group: int) -> Mapping[str, Any] | None:
        """The rendered PodGroup spec with the CRD's defaults applied, as it would be stored."""
        podgroup = self.podgroup(group)
        if podgroup is None or self.podgroup_schema is None:
            return None
        schema = self.podgroup_schema
        spec: Mapping[str, Any] = self._remember(
            ("podgroup-server", group), lambda: schema.apply(podgroup.get("spec", {}))[0]
        )
        return spec

    def controller_revision(self) -> Object:
        roles = self.ms.raw["spec"]["template"]["roles"]
        obj: Object = self._remember(
            ("revision",), lambda: self.renderer.controller_revision(self.ms.revision, roles)
        )
        return obj

    def roles_of(self, revision: str, revisions: Mapping[str, Object]) -> tuple[Role, ...] | None:
        """The roles a revision was made of: the current spec, or its ControllerRevision."""
        found = self._history.get(revision)
        if found is not None:
            return found
        cr = revisions.get(revision)
        data = (cr or {}).get("data", {}).get("data")
        if not isinstance(data, list):
            return None
        try:
            recorded = tuple(Role.from_raw(r) for r in data)
        except (KeyError, TypeError):
            return None
        # The templates come from history; how many of each is always today's spec (scaling
        # is not a rollout, and a partition must not undo it).
        now = {r.name: r for r in self.ms.template.roles}
        roles = tuple(
            replace(
                r,
                replicas=now[r.name].replicas,
                max_unavailable=now[r.name].max_unavailable,
                partition=now[r.name].partition,
            )
            if r.name in now
            else r
            for r in recorded
        )
        self._history[revision] = roles
        return roles

    def role_by_hash(
        self, name: str, role_hash: str, revision: str, revisions: Mapping[str, Object]
    ) -> Role | None:
        """The template a role instance was made from, found by its role-template hash."""
        for role in self.ms.template.roles:
            if role.name == name and role.template_hash == role_hash:
                return role
        for role in self.roles_of(revision, revisions) or ():
            if role.name == name and role.template_hash == role_hash:
                return role
        for candidate in revisions:
            for role in self.roles_of(candidate, revisions) or ():
                if role.name == name and role.template_hash == role_hash:
                    return role
        return None
