"""The typed ModelServing: what every later stage reads.

`load` takes one decoded document, applies the schema (defaults included, as the API server
would), runs every webhook rule and the API server's pod rules (`podvalidation`), and returns
either a `ModelServing` or all violations. The defaulted document is kept (`raw`,
`Role.raw`): it is what the revision hash is computed over and what a ControllerRevision
stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from generator import naming, settings
from generator.podvalidation import pod_violations
from generator.revision import revision_hash, role_template_hash
from generator.schema import modelserving_schema
from generator.settings import Settings
from generator.structural import Violation
from generator.validation import webhook_violations

DEFAULT_NAMESPACE = "default"


class InvalidSpec(Exception):
    """A document breaks the schema, the webhook or the pod rules; carries every violation."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(str(v) for v in violations))
        self.violations = violations


@dataclass(frozen=True)
class PodTemplate:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> PodTemplate:
        meta = raw.get("metadata", {})
        return cls(meta.get("labels", {}), meta.get("annotations", {}), raw["spec"])


@dataclass(frozen=True)
class Role:
    name: str
    replicas: int
    entry: PodTemplate
    worker_replicas: int
    worker: PodTemplate | None
    max_unavailable: int | str | None
    partition: int | str | None
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def size(self) -> int:
        """Pods per role instance: the entry pod and its workers."""
        return 1 + self.worker_replicas

    @cached_property
    def template_hash(self) -> str:
        return role_template_hash(self.raw)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Role:
        worker = raw.get("workerTemplate")
        return cls(
            name=raw["name"],
            replicas=raw["replicas"],
            entry=PodTemplate.from_raw(raw["entryTemplate"]),
            worker_replicas=raw["workerReplicas"],
            worker=PodTemplate.from_raw(worker) if worker is not None else None,
            max_unavailable=raw.get("maxUnavailable"),
            partition=raw.get("partition"),
            raw=raw,
        )


@dataclass(frozen=True)
class ServingGroupTemplate:
    restart_grace_period_seconds: int
    min_role_replicas: Mapping[str, int] | None
    group_topology: Mapping[str, Any] | None
    role_topology: Mapping[str, Any] | None
    roles: tuple[Role, ...]

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)

    def gang_replicas(self, role: Role) -> int:
        """Instances of `role` the PodGroup requires together (docs/behaviour.md#podgroups)."""
        wanted = (self.min_role_replicas or {}).get(role.name, role.replicas)
        return min(wanted, role.replicas)


@dataclass(frozen=True)
class Plugin:
    name: str
    config: Mapping[str, Any]
    roles: tuple[str, ...]
    target: str

    def applies_to(self, role: str, entry: bool) -> bool:
        if self.roles and role not in self.roles:
            return False
        return self.target == "All" or (self.target == "Entry") == entry


@dataclass(frozen=True)
class RolloutStrategy:
    type: str
    max_unavailable: int | str
    partition: int | str | None

    @property
    def role_rolling(self) -> bool:
        return self.type == "RoleRollingUpdate"


@dataclass(frozen=True)
class ModelServing:
    name: str
    namespace: str
    uid: str | None
    generation: int | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    replicas: int
    scheduler_name: str
    plugins: tuple[Plugin, ...]
    template: ServingGroupTemplate
    rollout: RolloutStrategy
    recovery_policy: str
    raw: Mapping[str, Any] = field(repr=False)
    # The LeaderWorkerSet that controls it, if any (docs/behaviour.md#leaderworkerset).
    lws_owner: str | None = None
    # the msctl.dev/ annotations (docs/behaviour.md#settings)
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def revision(self) -> str:
        return revision_hash(self.raw["spec"]["template"]["roles"])

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def uses_volcano(self) -> bool:
        return self.scheduler_name == naming.VOLCANO_SCHEDULER


def _typed(raw: Mapping[str, Any], namespace: str) -> ModelServing:
    meta = raw["metadata"]
    spec = raw["spec"]
    template = spec["template"]
    gang = template.get("gangPolicy") or {}
    topology = template.get("networkTopology") or {}
    strategy = spec.get("rolloutStrategy") or {}
    rolling = strategy.get("rollingUpdateConfiguration") or {}
    return ModelServing(
        name=meta["name"],
        namespace=meta.get("namespace") or namespace,
        uid=meta.get("uid"),
        generation=meta.get("generation"),
        labels=meta.get("labels") or {},
        annotations=meta.get("annotations") or {},
        replicas=spec["replicas"],
        scheduler_name=spec["schedulerName"],
        plugins=tuple(
            Plugin(
                name=p["name"],
                config=p.get("config", {}),
                roles=tuple(p.get("scope", {}).get("roles", ())),
                target=p.get("scope", {}).get("target", "All"),
            )
            for p in spec.get("plugins", ())
        ),
        template=ServingGroupTemplate(
            restart_grace_period_seconds=template["restartGracePeriodSeconds"],
            min_role_replicas=gang.get("minRoleReplicas"),
            group_topology=topology.get("groupPolicy"),
            role_topology=topology.get("rolePolicy"),
            roles=tuple(Role.from_raw(r) for r in template["roles"]),
        ),
        rollout=RolloutStrategy(
            type=strategy.get("type", "ServingGroupRollingUpdate"),
            max_unavailable=rolling.get("maxUnavailable", 1),
            partition=rolling.get("partition"),
        ),
        recovery_policy=spec["recoveryPolicy"],
        raw=raw,
        lws_owner=_lws_owner(meta.get("ownerReferences") or ()),
        settings=settings.parse(meta.get("annotations") or {}),
    )


def _lws_owner(refs: Any) -> str | None:
    """The name of the owning LeaderWorkerSet; by kind alone, as the reference's plugin does."""
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("kind") == naming.LWS_KIND and ref.get("name"):
            return str(ref["name"])
    return None


def load(
    doc: Any, *, namespace: str = DEFAULT_NAMESPACE, plugins: frozenset[str] = frozenset()
) -> ModelServing:
    """Default and validate one ModelServing document.

    `plugins` are the plugin names the template set provides; `spec.plugins` may only name
    those. Raises InvalidSpec with every violation found.
    """
    defaulted, violations = modelserving_schema().apply(doc)
    violations += webhook_violations(defaulted, plugins)
    violations += pod_violations(defaulted)
    violations += settings.violations(defaulted)
    if violations:
        raise InvalidSpec(list(dict.fromkeys(violations)))
    return _typed(defaulted, namespace)
