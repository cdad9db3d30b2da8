"""Rendering for the daemon: the objects a plan wants, through the generator, remembered.

Part of the daemon's shell. The daemon renders with exactly the renderer `msctl render` uses
(docs/behaviour.md#templates). A reconcile of a large ModelServing that changes nothing
must stay cheap, so each rendered object is kept for as long as the spec it came from: the
controller keeps one `Renderings` per spec (uid, generation, labels, annotations, PodGroup
CRD) and drops it when any of those change. Rendered pods are kept shared
(`sync.trim.SHARED`): thousands of them, and the live pods, share their equal parts
(docs/behaviour.md#cache). Everything a template can raise is raised here, before planning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.expand import Settings
from generator.kinds import Object
from generator.model import ModelServing
from generator.render import Renderer
from generator.structural import StructuralSchema
from generator.templating import TemplateError, TemplateSet
from sync.core.desired import Desired, PodKey, ServiceKey, Wanted, wanted
from sync.core.history import History, history
from sync.core.inputs import Inputs
from sync.core.observe import Observed
from sync.core.steps import Recall
from sync.trim import SHARED


class Renderings:
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
        self._pods: dict[PodKey, Object] = {}
        self._services: dict[ServiceKey, Object | None] = {}
        self._podgroups: dict[int, tuple[Object | None, Mapping[str, Any] | None]] = {}
        self._revision: Object | None = None
        self._history: tuple[tuple[tuple[str, str], ...], History] | None = None

    def history(self, revisions: Mapping[str, Object]) -> History:
        """The roles of every known revision; recomputed only when a revision object changes."""
        version = tuple(
            sorted((r, str(o["metadata"].get("resourceVersion", ""))) for r, o in revisions.items())
        )
        if self._history is None or self._history[0] != version:
            self._history = (version, history(self.ms, revisions))
        return self._history[1]

    def _podgroup(self, group: int) -> tuple[Object | None, Mapping[str, Any] | None]:
        found = self._podgroups.get(group)
        if found is None:
            podgroup = self.renderer.podgroup(group)
            spec = None
            if podgroup is not None and self.podgroup_schema is not None:
                spec = self.podgroup_schema.apply(podgroup.get("spec", {}))[0]
            found = self._podgroups[group] = (podgroup, spec)
        return found

    def desired(self, wanted: Wanted) -> Desired:
        """The rendered objects of every wanted slot."""
        if self._revision is None:
            roles = self.ms.raw["spec"]["template"]["roles"]
            self._revision = self.renderer.controller_revision(self.ms.revision, roles)
        pods: dict[PodKey, Object] = {}
        for key, slot in wanted.pods.items():
            obj = self._pods.get(key)
            if obj is None:
                obj = self._pods[key] = SHARED(
                    self.renderer.pod(slot.role, slot.group, slot.instance, slot.pod, slot.revision)
                )
            pods[key] = obj
        services: dict[ServiceKey, Object | None] = {}
        for skey, sslot in wanted.services.items():
            if skey not in self._services:
                self._services[skey] = self.renderer.service(
                    sslot.role, sslot.group, sslot.instance
                )
            services[skey] = self._services[skey]
        podgroups = {g: self._podgroup(g) for g in wanted.podgroups}
        return Desired(
            revision=self._revision,
            pods=pods,
            services=services,
            podgroups={g: pg for g, (pg, _) in podgroups.items()},
            podgroup_specs={g: spec for g, (_, spec) in podgroups.items()},
        )

    def inputs(
        self,
        observed: Observed,
        live: Mapping[str, Any] | None,
        now: float,
        recall: Recall | None = None,
    ) -> Inputs:
        """Everything the planner needs, the desired objects rendered."""
        known = self.history(observed.revisions)
        status = (live or {}).get("status", {})
        try:
            desired = self.desired(wanted(self.ms, known, observed, status))
        except TemplateError:
            raise
        except Exception as err:
            # User templates can fail in ways the renderer does not foresee (recursion,
            # sandbox limits): still a template error, reported on the ModelServing.
            raise TemplateError(f"{type(err).__name__}: {err}") from err
        return Inputs(self.ms, desired, known, observed, live, now, recall)
