"""Preview: what the daemon would do if a ModelServing file were applied (`msctl plan/diff`).

Reads the live objects of that ModelServing straight from the API (no informers, no writes),
plans with exactly the daemon's planner, and describes the plan for people: the ordered
steps with their reasons, the JSON patch of each object, and a pending rollout as waves.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator import model, naming
from generator.expand import Settings
from generator.templating import TemplateSet
from sync.core.observe import observe
from sync.core.plan import plan
from sync.core.replacements import Rollout
from sync.core.steps import Plan
from sync.rendering import Renderings

if TYPE_CHECKING:
    from sync import kube

PENDING_UID = "(not created yet)"


@dataclass(frozen=True)
class Preview:
    ms: model.ModelServing
    exists: bool
    plan: Plan
    against: str | None = None  # offline: what the plan is made against, instead of a cluster
    rollout: Rollout | None = None  # offline: the rollout simulated to its end

    def text(self) -> str:
        ms, steps = self.ms, self.plan.steps
        head = f"ModelServing {ms.key}: revision {ms.revision}, {ms.replicas} ServingGroup(s)"
        if self.against is not None:
            head += f" ({self.against})"
        lines = [head if self.exists else head + " (not in the cluster yet)"]
        if not steps:
            lines.append("  nothing to do: the cluster already matches this spec")
        width = len(str(len(steps)))
        for number, step in enumerate(steps, 1):
            lines.append(f"  {number:>{width}}. {step.describe()}")
        if len(self.plan.waves) > 1 or (self.plan.waves and self.plan.waves[0][1]):
            strategy = ms.rollout
            lines.append(
                f"rollout ({strategy.type}, maxUnavailable {strategy.max_unavailable}"
                + (f", partition {strategy.partition}" if strategy.partition is not None else "")
                + "), if each wave's replacements become ready:"
            )
            for number, (why, groups) in enumerate(self.plan.waves, 1):
                names = ", ".join(naming.group_name(ms.name, g) for g in groups)
                lines.append(f"  wave {number}: {names} ({why})")
        if any(k.startswith(naming.SETTINGS_PREFIX) for k in ms.annotations):
            lines.append(f"settings ({naming.SETTINGS_PREFIX}): {ms.settings.describe()}")
        lines.extend(f"note: {n}" for n in self.plan.notes)
        if self.plan.requeue_after is not None:
            lines.append(f"then look again in {self.plan.requeue_after:.0f}s")
        if self.rollout is not None:
            lines.extend(self.rollout.text())
        writes = self.plan.writes
        lines.append(f"{len(steps)} step(s), {writes} write(s); this command changed nothing")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The plan for machines: the same steps, with their objects and patches."""
        return {
            "modelServing": self.ms.key,
            "revision": self.ms.revision,
            "exists": self.exists,
            "settings": self.ms.settings.to_json(),
            **self.plan.to_json(),
            **({"against": self.against} if self.against is not None else {}),
            **({"simulation": self.rollout.to_json()} if self.rollout is not None else {}),
        }

    def patches(self) -> str:
        lines: list[str] = []
        for step in self.plan.steps:
            if step.verb == "patch":
                lines.append(f"~ {step.kind} {step.name}: {step.reason}")
                lines.extend(f"    {json.dumps(dict(op), sort_keys=True)}" for op in step.ops)
            elif step.verb == "create":
                lines.append(f"+ {step.kind} {step.name}: {step.reason}")
            elif step.verb == "delete":
                lines.append(f"- {step.kind} {step.name}: {step.reason}")
        if not lines:
            lines.append(f"no differences: the cluster matches {self.ms.key}")
        return "\n".join(lines) + "\n"


def preview(
    client: kube.Kube, templates: TemplateSet, doc: Mapping[str, Any], namespace: str
) -> Preview:
    """Plan `doc` (a ModelServing document) against the cluster, without writing anything."""
    # The client stack is imported here, not above: the offline preview shares `Preview`.
    from sync import kube  # noqa: PLC0415
    from sync.controller import (  # noqa: PLC0415
        PODGROUP_CRD,
        podgroup_spec_schema,
        podgroup_support,
    )

    ms = model.load(doc, namespace=namespace, plugins=templates.plugins())
    try:
        live = client.get(kube.MODELSERVINGS, ms.namespace, ms.name)
    except kube.NotFound:
        live = None
    uid = str(live["metadata"]["uid"]) if live else PENDING_UID
    if live is not None and ms.generation is None:
        # The generation the object would have once the file is applied: the same spec keeps
        # it, another one bumps it (a Failed unit is released by a new generation).
        generation = int(live["metadata"].get("generation") or 0)
        same = live.get("spec") == ms.raw["spec"]
        ms = dataclasses.replace(ms, generation=generation if same else generation + 1)
    try:
        crd: dict[str, Any] | None = client.get(kube.CRDS, None, PODGROUP_CRD)
    except kube.NotFound:
        crd = None
    supported, subgroups = podgroup_support(crd)
    renderings = Renderings(
        templates,
        ms,
        Settings(podgroups=supported, subgroup_policy=subgroups, owner_uid=uid),
        podgroup_spec_schema(crd),
    )
    selector = f"{naming.NAME_LABEL}={ms.name}"

    def listed(resource: kube.Resource) -> list[dict[str, Any]]:
        if live is None:
            return []
        return client.list(resource, ms.namespace, selector=selector)[0]

    observed = observe(
        ms.name,
        uid,
        pods=listed(kube.PODS),
        services=listed(kube.SERVICES),
        podgroups=listed(kube.PODGROUPS) if supported else [],
        revisions=listed(kube.REVISIONS),
    )
    result = plan(renderings.inputs(observed, live, time.time()))
    return Preview(ms, live is not None, result)
