"""The LeaderWorkerSet mapping: one `leaderworkerset.x-k8s.io/v1` LeaderWorkerSet in, the
ModelServing that serves it out, with every LWS field the mapping cannot honour named
(docs/behaviour.md#leaderworkerset).

Pure and shared: `msctl render`/`validate` map LWS documents with it offline, and the daemon's
bridge (`sync.core.lws`, `sync.lws_bridge`) maps live ones with it, so both agree byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator import naming
from generator.intstr import IntOrPercentError, scaled
from generator.structural import Violation, written

DEFAULT_SCHEDULER = "default-scheduler"

_KNOWN: dict[str, frozenset[str]] = {
    "spec": frozenset(
        {"replicas", "leaderWorkerTemplate", "rolloutStrategy", "startupPolicy", "networkConfig"}
    ),
    "spec.leaderWorkerTemplate": frozenset(
        {"leaderTemplate", "workerTemplate", "size", "restartPolicy", "subGroupPolicy"}
    ),
    "spec.rolloutStrategy": frozenset({"type", "rollingUpdateConfiguration"}),
    "spec.rolloutStrategy.rollingUpdateConfiguration": frozenset(
        {"partition", "maxUnavailable", "maxSurge"}
    ),
    "spec.networkConfig": frozenset({"subdomainPolicy"}),
}
_ENUMS: dict[str, tuple[str, ...]] = {
    "spec.startupPolicy": ("LeaderCreated", "LeaderReady"),
    "spec.leaderWorkerTemplate.restartPolicy": ("RecreateGroupOnPodRestart", "Default", "None"),
    "spec.rolloutStrategy.type": ("RollingUpdate",),
    "spec.networkConfig.subdomainPolicy": ("Shared", "UniquePerReplica"),
}
# LWS restartPolicy -> ModelServing recoveryPolicy. `Default` is LWS's deprecated name for
# "restart the failed pod only", which is what `None` does here.
_RECOVERY = {"RecreateGroupOnPodRestart": "ServingGroupRecreate", "Default": "None", "None": "None"}
# Where each part of the mapped role came from, for error messages on the LWS's own paths.
_ROLE = "spec.template.roles[0]"
_ORIGIN = {
    f"{_ROLE}.workerTemplate": "spec.leaderWorkerTemplate.workerTemplate",
    f"{_ROLE}.workerReplicas": "spec.leaderWorkerTemplate.size",
}


@dataclass(frozen=True, order=True)
class Unsupported:
    """An LWS field set to something the ModelServing cannot do, and what it does instead."""

    field: str
    value: str
    instead: str

    def __str__(self) -> str:
        return f"{self.field}={self.value} is not honoured; instead: {self.instead}"


@dataclass(frozen=True)
class Mapped:
    """The ModelServing document for one LWS, and the LWS fields it does not honour."""

    modelserving: dict[str, Any]
    unsupported: tuple[Unsupported, ...]


def is_lws(body: Any) -> bool:
    if not isinstance(body, dict) or body.get("kind") != naming.LWS_KIND:
        return False
    api = body.get("apiVersion")
    return isinstance(api, str) and api.split("/")[0] == naming.LWS_API_GROUP


def _get(node: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def violations(lws: Any) -> list[Violation]:
    """What makes `lws` unmappable: its shape, as far as the mapping reads it.

    The API server checks the rest against the real CRD; offline, the pod templates are
    checked by the ModelServing rules after mapping (`origin` names their LWS paths)."""
    found: list[Violation] = []
    if lws.get("apiVersion") != naming.LWS_API_VERSION:
        found.append(
            Violation(
                "apiVersion",
                f"must be {naming.LWS_API_VERSION}, got {written(lws.get('apiVersion'))}",
            )
        )
    if not isinstance(_get(lws, "metadata.name"), str):
        found.append(Violation("metadata.name", "required: the name of the LeaderWorkerSet"))
    if not isinstance(lws.get("spec"), Mapping):
        return [*found, Violation("spec", "required: an object")]
    for path, known in _KNOWN.items():
        node = _get(lws, path)
        if node is not None and not isinstance(node, Mapping):
            found.append(Violation(path, f"must be an object, got {written(node)}"))
        elif isinstance(node, Mapping):
            for key in sorted(set(node) - known):
                found.append(
                    Violation(f"{path}.{key}", f"unknown field; known: {', '.join(sorted(known))}")
                )
    for path, allowed in _ENUMS.items():
        value = _get(lws, path)
        if value is not None and value not in allowed:
            found.append(
                Violation(path, f"must be one of {', '.join(allowed)}, got {written(value)}")
            )
    for path, low in (("spec.replicas", 0), ("spec.leaderWorkerTemplate.size", 1)):
        value = _get(lws, path)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            found.append(Violation(path, f"must be an integer, got {written(value)}"))
        elif value is not None and value < low:
            found.append(Violation(path, f"must be at least {low}, got {value}"))
    for path in ("leaderTemplate", "workerTemplate"):
        full = f"spec.leaderWorkerTemplate.{path}"
        template = _get(lws, full)
        if template is None and path == "leaderTemplate":
            continue
        if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
            found.append(Violation(f"{full}.spec", "required: a pod spec"))
            continue
        found += _string_maps(template, full)
    return [*found, *_string_maps(lws, "")]


def _string_maps(obj: Mapping[str, Any], path: str) -> list[Violation]:
    """metadata, and its labels and annotations, are maps (of strings) where present."""
    where = f"{path}.metadata" if path else "metadata"
    meta = obj.get("metadata")
    if meta is None:
        return []
    if not isinstance(meta, Mapping):
        return [Violation(where, f"must be an object, got {written(meta)}")]
    found = []
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            found.append(
                Violation(f"{where}.{key}", f"must be a map of strings, got {written(value)}")
            )
    return found


def origin(path: str, has_leader: bool) -> str:
    """The LWS field a ModelServing field path was mapped from (for violations)."""
    entry = f"{_ROLE}.entryTemplate"
    if path.startswith(entry):
        source = "leaderTemplate" if has_leader else "workerTemplate"
        return f"spec.leaderWorkerTemplate.{source}" + path[len(entry) :]
    for prefix, source in _ORIGIN.items():
        if path.startswith(prefix):
            return source + path[len(prefix) :]
    return path


def _pod_template(raw: Mapping[str, Any]) -> dict[str, Any]:
    # A ModelServing pod template keeps labels and annotations of the metadata, as the
    # reference's conversion does; other metadata of a pod template means nothing to a pod.
    meta = raw.get("metadata") or {}
    kept = {k: dict(meta[k]) for k in ("labels", "annotations") if meta.get(k)}
    out: dict[str, Any] = {"spec": raw["spec"]}
    if kept:
        out["metadata"] = kept
    return out


def owner_reference(lws: Mapping[str, Any], uid: str) -> dict[str, Any]:
    return {
        "apiVersion": naming.LWS_API_VERSION,
        "kind": naming.LWS_KIND,
        "name": lws["metadata"]["name"],
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def to_modelserving(lws: Mapping[str, Any], uid: str | None = None) -> Mapped:
    """The ModelServing serving `lws` (valid per `violations`), controlled by the LWS `uid`.

    Without a uid (offline, none known) the owner reference still names the LWS, uid "",
    so that the `lws-standard-labels` plugin sees its owner; callers emitting the object
    drop such a reference (`emitted`)."""
    meta = lws["metadata"]
    spec = lws["spec"]
    lwt = spec["leaderWorkerTemplate"]
    worker = lwt["workerTemplate"]
    leader = lwt.get("leaderTemplate")
    size = lwt.get("size", 1)
    strategy = spec.get("rolloutStrategy") or {}
    rolling = strategy.get("rollingUpdateConfiguration") or {}
    replicas = spec.get("replicas", 1)
    unsupported: list[Unsupported] = []

    max_unavailable = rolling.get("maxUnavailable", 1)
    if _resolves_to_zero(max_unavailable, replicas):
        unsupported.append(
            Unsupported(
                "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable",
                str(max_unavailable),
                "maxUnavailable 1: a ModelServing rolls at least one group at a time",
            )
        )
        max_unavailable = 1
    rollout: dict[str, Any] = {"maxUnavailable": max_unavailable}
    if rolling.get("partition") is not None:
        rollout["partition"] = rolling["partition"]
    unsupported.extend(_unsupported(lws))

    schedulers = [t["spec"].get("schedulerName") for t in (leader, worker) if t is not None]
    scheduler = schedulers[0] or DEFAULT_SCHEDULER
    if len({s or DEFAULT_SCHEDULER for s in schedulers}) > 1:
        unsupported.append(
            Unsupported(
                "spec.leaderWorkerTemplate.workerTemplate.spec.schedulerName",
                str(schedulers[1] or DEFAULT_SCHEDULER),
                f"every pod of a ModelServing has one scheduler: {scheduler} (the leader's)",
            )
        )

    out_meta: dict[str, Any] = {
        "name": meta["name"],
        "ownerReferences": [owner_reference(lws, uid or "")],
    }
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    queue = (meta.get("annotations") or {}).get(naming.QUEUE_ANNOTATION)
    if queue:
        out_meta["annotations"] = {naming.QUEUE_ANNOTATION: queue}
    ms = {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": out_meta,
        "spec": {
            "replicas": replicas,
            "schedulerName": scheduler,
            "plugins": [{"name": naming.LWS_PLUGIN}],
            "recoveryPolicy": _RECOVERY[lwt.get("restartPolicy", "RecreateGroupOnPodRestart")],
            "rolloutStrategy": {
                "type": "ServingGroupRollingUpdate",
                "rollingUpdateConfiguration": rollout,
            },
            "template": {
                "roles": [
                    {
                        "name": naming.LWS_ROLE,
                        "replicas": 1,
                        "entryTemplate": _pod_template(leader if leader is not None else worker),
                        "workerReplicas": max(size - 1, 0),
                        "workerTemplate": _pod_template(worker),
                    }
                ]
            },
        },
    }
    return Mapped(ms, tuple(sorted(unsupported)))


def _resolves_to_zero(value: Any, replicas: int) -> bool:
    try:
        return scaled(value, max(replicas, 1), round_up=False) == 0
    except (IntOrPercentError, TypeError, ValueError):
        return False  # left to the ModelServing rules, which name the field


def _unsupported(lws: Mapping[str, Any]) -> list[Unsupported]:
    found: list[Unsupported] = []
    startup = _get(lws, "spec.startupPolicy")
    if startup == "LeaderReady":
        found.append(
            Unsupported(
                "spec.startupPolicy",
                startup,
                "LeaderCreated: workers are created with the leader; let them wait for "
                "$ENTRY_ADDRESS (an init container) if they need a ready leader",
            )
        )
    subdomain = _get(lws, "spec.networkConfig.subdomainPolicy")
    if subdomain == "Shared":
        found.append(
            Unsupported(
                "spec.networkConfig.subdomainPolicy",
                subdomain,
                "UniquePerReplica: each group has its own headless Service, named after its "
                "leader pod; $ENTRY_ADDRESS holds the leader's address",
            )
        )
    surge = _get(lws, "spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge")
    if surge not in (None, 0, "0%"):
        found.append(
            Unsupported(
                "spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge",
                str(surge),
                "no surge groups; maxUnavailable bounds the groups updated at once",
            )
        )
    policy = _get(lws, "spec.leaderWorkerTemplate.subGroupPolicy")
    if policy is not None:
        found.append(
            Unsupported(
                "spec.leaderWorkerTemplate.subGroupPolicy",
                _compact(policy),
                "one role of `size` pods per group; with schedulerName volcano its PodGroup "
                "gangs the whole group",
            )
        )
    for key, value in sorted((_get(lws, "metadata.annotations") or {}).items()):
        if key.startswith(naming.LWS_LABEL_PREFIX):
            found.append(
                Unsupported(
                    f"metadata.annotations[{key}]",
                    str(value),
                    "none applied; a ModelServing's spec.template.networkTopology (Volcano) "
                    "places groups by topology",
                )
            )
    return found


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def emitted(ms: Mapping[str, Any]) -> dict[str, Any]:
    """`ms` as written out: an owner reference without a uid is left out."""
    meta = dict(ms["metadata"])
    refs = [r for r in meta.get("ownerReferences", ()) if r.get("uid")]
    if refs:
        meta["ownerReferences"] = refs
    else:
        meta.pop("ownerReferences", None)
    return {**ms, "metadata": meta}
