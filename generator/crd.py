"""The ModelServing CustomResourceDefinition, built from the schema in `schema`.

CRD schemas cannot hold `$ref`, so every link is inlined here (the PodTemplateSpec twice per
role). `crds/` in the repository holds the output of `msctl crd`; a test keeps them equal.
"""

from __future__ import annotations

from typing import Any

from generator import naming
from generator.schema import MODELSERVING, podspec_definitions


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = _inline(definitions[node["$ref"]], definitions)
        return {**target, **_inline(siblings, definitions)}
    return {k: _inline(v, definitions) for k, v in node.items()}


def modelserving_crd() -> dict[str, Any]:
    schema = _inline(MODELSERVING, podspec_definitions())
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{naming.PLURAL}.{naming.API_GROUP}"},
        "spec": {
            "group": naming.API_GROUP,
            "names": {
                "kind": naming.KIND,
                "listKind": f"{naming.KIND}List",
                "plural": naming.PLURAL,
                "singular": naming.KIND.lower(),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.labelSelector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Replicas",
                            "type": "integer",
                            "jsonPath": ".status.replicas",
                            "description": "Total number of serving groups",
                        },
                        {
                            "name": "Available",
                            "type": "integer",
                            "jsonPath": ".status.availableReplicas",
                        },
                        {
                            "name": "Updated",
                            "type": "integer",
                            "jsonPath": ".status.updatedReplicas",
                        },
                        {
                            "name": "Stalled",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Stalled")].reason',
                            "description": "Why the ModelServing stopped progressing, if it did",
                            "priority": 1,
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                }
            ],
        },
    }
