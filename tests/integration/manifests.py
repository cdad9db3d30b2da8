"""Sends rendered manifests (helm template output) to the test control plane."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from sync import kube

_RBAC = "rbac.authorization.k8s.io"
RESOURCES = {
    r.kind: r
    for r in (
        kube.Resource("", "v1", "namespaces", "Namespace", False),
        kube.Resource("", "v1", "serviceaccounts", "ServiceAccount"),
        kube.Resource("", "v1", "configmaps", "ConfigMap"),
        kube.Resource("", "v1", "services", "Service"),
        kube.Resource(_RBAC, "v1", "clusterroles", "ClusterRole", False),
        kube.Resource(_RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        kube.Resource(_RBAC, "v1", "roles", "Role"),
        kube.Resource(_RBAC, "v1", "rolebindings", "RoleBinding"),
        kube.Resource("apps", "v1", "deployments", "Deployment"),
        kube.Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
        kube.Resource("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor"),
        kube.Resource(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
        ),
    )
}


def resource(doc: dict[str, Any]) -> kube.Resource:
    found = RESOURCES[doc["kind"]]
    assert doc["apiVersion"] == found.api_version, (doc["kind"], doc["apiVersion"])
    return found


def create_all(client: kube.Kube, docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create every object (for real); returns the created ones, to delete afterwards."""
    created = []
    for doc in docs:
        created.append(client.create(resource(doc), doc["metadata"].get("namespace"), doc))
    return created


def delete_all(client: kube.Kube, objects: Iterable[dict[str, Any]]) -> None:
    for obj in objects:
        with contextlib.suppress(kube.NotFound):
            client.delete(resource(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"])
