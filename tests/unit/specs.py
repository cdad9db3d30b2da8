"""Small ModelServing documents for tests, built as plain dicts."""

from __future__ import annotations

import copy
from typing import Any


def pod_template(image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "main", "image": image}], **spec}}


def role(
    name: str = "prefill", replicas: int = 1, workers: int = 1, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "replicas": replicas,
        "workerReplicas": workers,
        "entryTemplate": pod_template(),
    }
    if workers > 0:
        out["workerTemplate"] = pod_template()
    out.update(extra)
    return out


def modelserving(
    name: str = "sample", replicas: int = 1, roles: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    template = spec.pop("template", {})
    return {
        "apiVersion": "workload.serving.volcano.sh/v1alpha1",
        "kind": "ModelServing",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "template": {"roles": roles if roles is not None else [role()], **template},
            **spec,
        },
    }


def pd(name: str = "sample", replicas: int = 1, workers: int = 1) -> dict[str, Any]:
    """1 prefill + 1 decode, each with `workers` workers."""
    return modelserving(name, replicas, [role("prefill", 1, workers), role("decode", 1, workers)])


def edit(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with the dotted `path` (list indices as numbers) set to `value`."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def lws_owned(doc: dict[str, Any], lws: str = "sample") -> dict[str, Any]:
    """A copy of `doc` controlled by the LeaderWorkerSet `lws`, as the LWS bridge makes it."""
    ref = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": lws,
        "uid": "lws-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return edit(doc, "metadata.ownerReferences", [ref])
