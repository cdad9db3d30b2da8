"""The CRD and the Python model describe the same thing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from generator import model, schema
from generator.crd import modelserving_crd
from tests.unit import specs
from tests.unit.test_validation import violations

MS = model.ModelServing


def leaf_paths(node: dict[str, Any], prefix: str) -> Iterator[str]:
    """Dotted property paths of the ModelServing part of the schema (not into pod templates)."""
    if "$ref" in node:
        yield prefix
        return
    node = node.get("items", node)
    properties = node.get("properties")
    if not properties:
        yield prefix
        return
    for key, child in properties.items():
        yield from leaf_paths(child, f"{prefix}.{key}")


# Every spec field of the schema, and where the typed model exposes it (for a document built
# with the value in MAXIMAL below).
READERS: dict[str, Callable[[MS], Any]] = {
    "spec.replicas": lambda ms: ms.replicas,
    "spec.schedulerName": lambda ms: ms.scheduler_name,
    "spec.plugins.name": lambda ms: ms.plugins[0].name,
    "spec.plugins.type": lambda ms: ms.raw["spec"]["plugins"][0]["type"],
    "spec.plugins.config": lambda ms: dict(ms.plugins[0].config),
    "spec.plugins.scope.roles": lambda ms: list(ms.plugins[0].roles),
    "spec.plugins.scope.target": lambda ms: ms.plugins[0].target,
    "spec.template.restartGracePeriodSeconds": lambda ms: ms.template.restart_grace_period_seconds,
    "spec.template.gangPolicy.minRoleReplicas": lambda ms: dict(
        ms.template.min_role_replicas or {}
    ),
    "spec.template.networkTopology.groupPolicy.mode": lambda ms: (ms.template.group_topology or {})[
        "mode"
    ],
    "spec.template.networkTopology.groupPolicy.highestTierAllowed": lambda ms: (
        ms.template.group_topology or {}
    )["highestTierAllowed"],
    "spec.template.networkTopology.groupPolicy.highestTierName": lambda ms: (
        ms.template.group_topology or {}
    )["highestTierName"],
    "spec.template.networkTopology.rolePolicy.mode": lambda ms: (ms.template.role_topology or {})[
        "mode"
    ],
    "spec.template.networkTopology.rolePolicy.highestTierAllowed": lambda ms: (
        ms.template.role_topology or {}
    )["highestTierAllowed"],
    "spec.template.networkTopology.rolePolicy.highestTierName": lambda ms: (
        ms.template.role_topology or {}
    )["highestTierName"],
    "spec.template.roles.name": lambda ms: ms.template.roles[0].name,
    "spec.template.roles.replicas": lambda ms: ms.template.roles[0].replicas,
    "spec.template.roles.entryTemplate": lambda ms: ms.template.roles[0].entry.spec["containers"][
        0
    ]["image"],
    "spec.template.roles.workerReplicas": lambda ms: ms.template.roles[0].worker_replicas,
    "spec.template.roles.workerTemplate": lambda ms: (
        ms.template.roles[0].worker or ms.template.roles[0].entry
    ).spec["containers"][0]["image"],
    "spec.template.roles.maxUnavailable": lambda ms: ms.template.roles[0].max_unavailable,
    "spec.template.roles.partition": lambda ms: ms.template.roles[0].partition,
    "spec.rolloutStrategy.type": lambda ms: ms.rollout.type,
    "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable": lambda ms: (
        ms.rollout.max_unavailable
    ),
    "spec.rolloutStrategy.rollingUpdateConfiguration.partition": lambda ms: ms.rollout.partition,
    "spec.recoveryPolicy": lambda ms: ms.recovery_policy,
}

TOPOLOGY = {"mode": "soft", "highestTierAllowed": 3, "highestTierName": "rack"}
ROLE = {**specs.role("alpha", replicas=3, workers=2), "maxUnavailable": 2, "partition": 1}
ROLE["entryTemplate"] = specs.pod_template("entry:1")
ROLE["workerTemplate"] = specs.pod_template("worker:1")
GROUP_DOC = specs.modelserving(
    replicas=5,
    roles=[{k: v for k, v in ROLE.items() if k != "partition"}],
    schedulerName="custom",
    plugins=[
        {
            "name": "lws-standard-labels",
            "config": {"k": "v"},
            "scope": {"roles": ["alpha"], "target": "Worker"},
        }
    ],
    template={
        "restartGracePeriodSeconds": 9,
        "gangPolicy": {"minRoleReplicas": {"alpha": 2}},
        "networkTopology": {"groupPolicy": TOPOLOGY, "rolePolicy": TOPOLOGY},
    },
    rolloutStrategy={
        "type": "ServingGroupRollingUpdate",
        "rollingUpdateConfiguration": {"maxUnavailable": "40%", "partition": 2},
    },
    recoveryPolicy="None",
)
ROLE_DOC = specs.modelserving(roles=[ROLE], rolloutStrategy={"type": "RoleRollingUpdate"})
EXPECTED: dict[str, tuple[dict[str, Any], Any]] = {
    "spec.replicas": (GROUP_DOC, 5),
    "spec.schedulerName": (GROUP_DOC, "custom"),
    "spec.plugins.name": (GROUP_DOC, "lws-standard-labels"),
    "spec.plugins.type": (GROUP_DOC, "BuiltIn"),
    "spec.plugins.config": (GROUP_DOC, {"k": "v"}),
    "spec.plugins.scope.roles": (GROUP_DOC, ["alpha"]),
    "spec.plugins.scope.target": (GROUP_DOC, "Worker"),
    "spec.template.restartGracePeriodSeconds": (GROUP_DOC, 9),
    "spec.template.gangPolicy.minRoleReplicas": (GROUP_DOC, {"alpha": 2}),
    "spec.template.networkTopology.groupPolicy.mode": (GROUP_DOC, "soft"),
    "spec.template.networkTopology.groupPolicy.highestTierAllowed": (GROUP_DOC, 3),
    "spec.template.networkTopology.groupPolicy.highestTierName": (GROUP_DOC, "rack"),
    "spec.template.networkTopology.rolePolicy.mode": (GROUP_DOC, "soft"),
    "spec.template.networkTopology.rolePolicy.highestTierAllowed": (GROUP_DOC, 3),
    "spec.template.networkTopology.rolePolicy.highestTierName": (GROUP_DOC, "rack"),
    "spec.template.roles.name": (GROUP_DOC, "alpha"),
    "spec.template.roles.replicas": (GROUP_DOC, 3),
    "spec.template.roles.entryTemplate": (GROUP_DOC, "entry:1"),
    "spec.template.roles.workerReplicas": (GROUP_DOC, 2),
    "spec.template.roles.workerTemplate": (GROUP_DOC, "worker:1"),
    "spec.template.roles.maxUnavailable": (GROUP_DOC, 2),
    "spec.template.roles.partition": (ROLE_DOC, 1),
    "spec.rolloutStrategy.type": (ROLE_DOC, "RoleRollingUpdate"),
    "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable": (GROUP_DOC, "40%"),
    "spec.rolloutStrategy.rollingUpdateConfiguration.partition": (GROUP_DOC, 2),
    "spec.recoveryPolicy": (GROUP_DOC, "None"),
}


def test_every_schema_field_is_read_by_the_model() -> None:
    assert set(leaf_paths(schema.SPEC, "spec")) == set(READERS) == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(READERS))
def test_the_model_exposes_each_field(path: str) -> None:
    doc, value = EXPECTED[path]
    ms = model.load(doc, plugins=frozenset({"lws-standard-labels"}))
    assert READERS[path](ms) == value


def cel_rules(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", ()):
            yield rule["rule"]
        for value in node.values():
            yield from cel_rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from cel_rules(value)


# Every CEL rule of the CRD, a document that breaks it, and the Python violation for it.
CEL_CASES: dict[str, tuple[dict[str, Any], str]] = {
    schema.NAME_LENGTH_RULE: (specs.modelserving("m" * 50), "metadata.name: invalid name"),
    schema.NAME_FORM_RULE: (specs.modelserving("9m"), "metadata.name: invalid name"),
    "self.workerReplicas == 0 || has(self.workerTemplate)": (
        specs.modelserving(
            roles=[{"name": "a", "workerReplicas": 1, "entryTemplate": specs.pod_template()}]
        ),
        "spec.template.roles[0].workerTemplate: workerTemplate is required",
    ),
    "self == oldSelf": (specs.pd(), ""),  # update-only: immutability is the API server's to check
    "self.all(x, self.exists_one(y, y.name == x.name))": (
        specs.modelserving(roles=[specs.role("a"), specs.role("a")]),
        "spec.template.roles[1].name: roles name must be unique",
    ),
    "!has(oldSelf.gangPolicy) || has(self.gangPolicy)": (specs.pd(), ""),  # update-only
    schema.SERVING_GROUP["x-kubernetes-validations"][1]["rule"]: (
        specs.edit(specs.pd(), "spec.template.gangPolicy", {"minRoleReplicas": {"x": 1}}),
        'spec.template.gangPolicy.minRoleReplicas["x"]: is not a role',
    ),
    schema.PERCENT_OR_INT: (
        specs.modelserving(rolloutStrategy={"rollingUpdateConfiguration": {"partition": "1"}}),
        "spec.rolloutStrategy.rollingUpdateConfiguration.partition:",
    ),
    schema.ROLLOUT["x-kubernetes-validations"][0]["rule"]: (
        specs.modelserving(
            rolloutStrategy={"type": "RoleRollingUpdate", "rollingUpdateConfiguration": {}}
        ),
        "spec.rolloutStrategy.rollingUpdateConfiguration: is not allowed",
    ),
    schema.SPEC["x-kubernetes-validations"][0]["rule"]: (
        specs.modelserving(
            recoveryPolicy="ServingGroupRecreate", rolloutStrategy={"type": "RoleRollingUpdate"}
        ),
        "spec.rolloutStrategy.type: recoveryPolicy ServingGroupRecreate cannot be combined",
    ),
    schema.SPEC["x-kubernetes-validations"][1]["rule"]: (
        specs.modelserving(roles=[specs.role(partition=1)]),
        "spec.template.roles[0].partition: partition is only valid",
    ),
}


def test_every_cel_rule_has_a_python_counterpart() -> None:
    assert set(cel_rules(modelserving_crd())) == set(CEL_CASES)


@pytest.mark.parametrize("rule", sorted(r for r, case in CEL_CASES.items() if case[1]))
def test_python_rejects_what_each_cel_rule_rejects(rule: str) -> None:
    doc, expected = CEL_CASES[rule]
    assert any(v.startswith(expected) for v in violations(doc))


def test_the_crd_has_no_refs_left_and_the_expected_identity() -> None:
    crd = modelserving_crd()
    assert "$ref" not in str(crd)
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == "modelservings.workload.serving.volcano.sh"
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.labelSelector",
    }
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Replicas",
        "Available",
        "Updated",
        "Stalled",
        "Age",
    ]
    stalled = version["additionalPrinterColumns"][3]
    assert stalled["priority"] == 1  # kubectl get -o wide: a reason, not noise on every line
