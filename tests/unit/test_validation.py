"""Every validation rule, one failing spec each: the field path and the message."""

from __future__ import annotations

from typing import Any

import pytest

from generator import model
from tests.unit import specs

PLUGINS = frozenset({"lws-standard-labels", "demo-pod-tweaks"})


def violations(doc: Any) -> list[str]:
    with pytest.raises(model.InvalidSpec) as err:
        model.load(doc, plugins=PLUGINS)
    return [str(v) for v in err.value.violations]


def base() -> dict[str, Any]:
    return specs.pd()


RR = {"type": "RoleRollingUpdate"}
CASES: list[tuple[str, dict[str, Any], str]] = [
    # --- schema: types, enums, bounds, patterns, required, unknown fields
    (
        "replicas must be an integer",
        specs.edit(base(), "spec.replicas", "two"),
        'spec.replicas: must be an integer, got "two"',
    ),
    (
        "replicas must not be negative",
        specs.edit(base(), "spec.replicas", -1),
        "spec.replicas: must be greater than or equal to 0, got -1",
    ),
    (
        "replicas must fit in int32",
        specs.edit(base(), "spec.replicas", 2**31),
        "spec.replicas: 2147483648 does not fit in int32",
    ),
    (
        "recoveryPolicy is an enum",
        specs.edit(base(), "spec.recoveryPolicy", "Always"),
        "spec.recoveryPolicy: must be one of ServingGroupRecreate, RoleRecreate, None;"
        ' got "Always"',
    ),
    (
        "rollout type is an enum",
        specs.edit(base(), "spec.rolloutStrategy", {"type": "Recreate"}),
        "spec.rolloutStrategy.type: must be one of ServingGroupRollingUpdate, RoleRollingUpdate;"
        ' got "Recreate"',
    ),
    (
        "template is required",
        {**base(), "spec": {"replicas": 1}},
        "spec.template: is required",
    ),
    (
        "roles are required",
        specs.edit(base(), "spec.template", {}),
        "spec.template.roles: is required",
    ),
    (
        "at least one role",
        specs.edit(base(), "spec.template.roles", []),
        "spec.template.roles: must have at least 1 item(s), got 0",
    ),
    (
        "at most four roles",
        specs.modelserving(roles=[specs.role(f"r{i}") for i in range(5)]),
        "spec.template.roles: must have at most 4 items, got 5",
    ),
    (
        "role name at most 12 characters",
        specs.edit(base(), "spec.template.roles.0.name", "prefillprefill"),
        'spec.template.roles[0].name: must be at most 12 characters, got 14 ("prefillprefill")',
    ),
    (
        "role name is a DNS-1035 label",
        specs.edit(base(), "spec.template.roles.0.name", "1prefill"),
        "spec.template.roles[0].name: must be a DNS-1035 label: lowercase letters, digits and '-',"
        ' starting with a letter and ending with a letter or digit, got "1prefill"',
    ),
    (
        "role name is lowercase",
        specs.edit(base(), "spec.template.roles.0.name", "Prefill"),
        "spec.template.roles[0].name: must be a DNS-1035 label",
    ),
    (
        "entryTemplate is required",
        specs.modelserving(roles=[{"name": "a", "workerReplicas": 0}]),
        "spec.template.roles[0].entryTemplate: is required",
    ),
    (
        "workerReplicas is required",
        specs.modelserving(roles=[{"name": "a", "entryTemplate": specs.pod_template()}]),
        "spec.template.roles[0].workerReplicas: is required",
    ),
    (
        "workerReplicas must not be negative",
        specs.edit(base(), "spec.template.roles.0.workerReplicas", -1),
        "spec.template.roles[0].workerReplicas: must be greater than or equal to 0, got -1",
    ),
    (
        "role replicas must not be negative",
        specs.edit(base(), "spec.template.roles.1.replicas", -2),
        "spec.template.roles[1].replicas: must be greater than or equal to 0, got -2",
    ),
    (
        "unknown fields are reported with a suggestion",
        specs.edit(base(), "spec.template.roles.0.workerReplica", 2),
        'spec.template.roles[0].workerReplica: unknown field (did you mean "workerReplicas"?)',
    ),
    (
        "unknown fields deep in the pod spec",
        specs.edit(base(), "spec.template.roles.0.entryTemplate.spec.containers.0.imag", "x"),
        "spec.template.roles[0].entryTemplate.spec.containers[0].imag: unknown field"
        ' (did you mean "image"?)',
    ),
    (
        "pod spec types are checked",
        specs.edit(
            base(),
            "spec.template.roles.0.entryTemplate.spec.containers.0.env",
            [{"name": "PORT", "value": 8080}],
        ),
        "spec.template.roles[0].entryTemplate.spec.containers[0].env[0].value: must be a string,"
        ' got integer 8080 (quote it: "8080")',
    ),
    (
        "quantities must be strings or integers",
        specs.edit(
            base(),
            "spec.template.roles.0.entryTemplate.spec.containers.0.resources",
            {"requests": {"cpu": 0.5}},
        ),
        'spec.template.roles[0].entryTemplate.spec.containers[0].resources.requests["cpu"]: must be'
        ' an integer or a string, got number 0.5 (write it as a string: "0.5")',
    ),
    (
        "quantities must be well formed",
        specs.edit(
            base(),
            "spec.template.roles.0.entryTemplate.spec.containers.0.resources",
            {"limits": {"memory": "2GB"}},
        ),
        'spec.template.roles[0].entryTemplate.spec.containers[0].resources.limits["memory"]: "2GB"'
        " is not a quantity",
    ),
    (
        "containers are required in a pod template",
        specs.edit(base(), "spec.template.roles.0.entryTemplate", {"spec": {}}),
        "spec.template.roles[0].entryTemplate.spec.containers: is required",
    ),
    (
        "container names are unique",
        specs.edit(
            base(),
            "spec.template.roles.0.entryTemplate.spec.containers",
            [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
        ),
        'spec.template.roles[0].entryTemplate.spec.containers[1]: duplicate entry (name="a");'
        " see spec.template.roles[0].entryTemplate.spec.containers[0]",
    ),
    (
        "template metadata takes labels and annotations only",
        specs.edit(base(), "spec.template.roles.0.entryTemplate.metadata", {"name": "x"}),
        "spec.template.roles[0].entryTemplate.metadata.name: unknown field",
    ),
    (
        "network topology mode is an enum",
        specs.edit(base(), "spec.template.networkTopology", {"groupPolicy": {"mode": "strict"}}),
        'spec.template.networkTopology.groupPolicy.mode: must be one of hard, soft; got "strict"',
    ),
    (
        "network topology tier is not negative",
        specs.edit(
            base(), "spec.template.networkTopology", {"rolePolicy": {"highestTierAllowed": -1}}
        ),
        "spec.template.networkTopology.rolePolicy.highestTierAllowed: must be greater than or"
        " equal to 0, got -1",
    ),
    (
        "grace period is not negative",
        specs.edit(base(), "spec.template.restartGracePeriodSeconds", -5),
        "spec.template.restartGracePeriodSeconds: must be greater than or equal to 0, got -5",
    ),
    (
        "plugin type is BuiltIn",
        specs.edit(base(), "spec.plugins", [{"name": "lws-standard-labels", "type": "Wasm"}]),
        'spec.plugins[0].type: must be one of BuiltIn; got "Wasm"',
    ),
    (
        "a YAML boolean where a string is expected",
        specs.edit(base(), "spec.schedulerName", True),
        "spec.schedulerName: must be a string, got boolean true",
    ),
    # --- webhook rules (docs/behaviour.md#validation)
    (
        "metadata.name is required",
        {**base(), "metadata": {"namespace": "default"}},
        "metadata.name: is required",
    ),
    (
        "generated names must fit in 63 characters",
        specs.modelserving(name="a" * 50, roles=[specs.role("prefill")]),
        "metadata.name: invalid name: generated names such as",
    ),
    (
        "generated names must be DNS-1035 labels",
        specs.modelserving(name="9lives"),
        'metadata.name: invalid name: generated names such as "9lives-1-prefill-1-1" must be'
        " DNS-1035 labels",
    ),
    (
        "role names are unique",
        specs.modelserving(roles=[specs.role("prefill"), specs.role("prefill")]),
        'spec.template.roles[1].name: roles name must be unique: "prefill" is also'
        " spec.template.roles[0]",
    ),
    (
        "images must not contain spaces",
        specs.edit(base(), "spec.template.roles.0.workerTemplate.spec.containers.0.image", "a b"),
        "spec.template.roles[0].workerTemplate.spec.containers[0].image: must not contain"
        ' spaces, got "a b"',
    ),
    (
        "images must not be blank",
        specs.edit(base(), "spec.template.roles.0.entryTemplate.spec.containers.0.image", "  "),
        "spec.template.roles[0].entryTemplate.spec.containers[0].image: is required: every"
        " container needs an image",
    ),
    (
        "templates cannot set the controller's identity labels",
        specs.edit(
            base(),
            "spec.template.roles.1.workerTemplate.metadata",
            {"labels": {"modelserving.volcano.sh/role-id": "x"}},
        ),
        'spec.template.roles[1].workerTemplate.metadata.labels["modelserving.volcano.sh/role-id"]:'
        " labels under modelserving.volcano.sh/ are set by the controller",
    ),
    (
        "workerTemplate is required with workers",
        specs.modelserving(
            roles=[{"name": "a", "workerReplicas": 2, "entryTemplate": specs.pod_template()}]
        ),
        "spec.template.roles[0].workerTemplate: workerTemplate is required when workerReplicas"
        " is greater than 0",
    ),
    (
        "group maxUnavailable cannot resolve to 0",
        specs.modelserving(
            replicas=3,
            rolloutStrategy={"rollingUpdateConfiguration": {"maxUnavailable": "10%"}},
        ),
        "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: maxUnavailable cannot"
        ' be 0 (got "10%" of 3 replicas); use at least 1',
    ),
    (
        "group maxUnavailable cannot be 0",
        specs.modelserving(rolloutStrategy={"rollingUpdateConfiguration": {"maxUnavailable": 0}}),
        "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: maxUnavailable cannot"
        " be 0",
    ),
    (
        "group maxUnavailable percent is at most 100%",
        specs.modelserving(
            rolloutStrategy={"rollingUpdateConfiguration": {"maxUnavailable": "120%"}}
        ),
        'spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable: "120%" is more than 100%',
    ),
    (
        "group partition must be an integer or percent",
        specs.modelserving(rolloutStrategy={"rollingUpdateConfiguration": {"partition": "half"}}),
        'spec.rolloutStrategy.rollingUpdateConfiguration.partition: "half" is neither an integer'
        ' nor a percent such as "25%"',
    ),
    (
        "group partition must not be negative",
        specs.modelserving(rolloutStrategy={"rollingUpdateConfiguration": {"partition": -1}}),
        "spec.rolloutStrategy.rollingUpdateConfiguration.partition: must not be negative, got -1",
    ),
    (
        "no group rolling config under RoleRollingUpdate",
        specs.modelserving(
            rolloutStrategy={**RR, "rollingUpdateConfiguration": {"maxUnavailable": 1}}
        ),
        "spec.rolloutStrategy.rollingUpdateConfiguration: is not allowed when"
        " rolloutStrategy.type is RoleRollingUpdate",
    ),
    (
        "role partition only with RoleRollingUpdate",
        specs.modelserving(roles=[specs.role(partition=1)]),
        "spec.template.roles[0].partition: partition is only valid when rolloutStrategy.type is"
        " RoleRollingUpdate",
    ),
    (
        "role maxUnavailable cannot resolve to 0",
        specs.modelserving(
            roles=[specs.role(replicas=3, maxUnavailable="20%")], rolloutStrategy=RR
        ),
        'spec.template.roles[0].maxUnavailable: maxUnavailable cannot be 0 (got "20%" of 3'
        " replicas)",
    ),
    (
        "role maxUnavailable at most the role replicas",
        specs.modelserving(roles=[specs.role(replicas=2, maxUnavailable=3)], rolloutStrategy=RR),
        "spec.template.roles[0].maxUnavailable: must not be greater than the role's replicas"
        " (2), got 3",
    ),
    (
        "role partition must be an integer or percent",
        specs.modelserving(roles=[specs.role(partition="x%")], rolloutStrategy=RR),
        'spec.template.roles[0].partition: "x%" is neither an integer nor a percent',
    ),
    (
        "minRoleReplicas keys are role names",
        specs.edit(base(), "spec.template.gangPolicy", {"minRoleReplicas": {"encode": 1}}),
        'spec.template.gangPolicy.minRoleReplicas["encode"]: is not a role of this ModelServing'
        " (roles: decode, prefill)",
    ),
    (
        "minRoleReplicas at most the role replicas",
        specs.edit(base(), "spec.template.gangPolicy", {"minRoleReplicas": {"prefill": 2}}),
        'spec.template.gangPolicy.minRoleReplicas["prefill"]: must not be greater than the'
        " role's replicas (1), got 2",
    ),
    (
        "minRoleReplicas not negative",
        specs.edit(base(), "spec.template.gangPolicy", {"minRoleReplicas": {"prefill": -1}}),
        'spec.template.gangPolicy.minRoleReplicas["prefill"]: must be greater than or equal to 0',
    ),
    (
        "ServingGroupRecreate does not pair with RoleRollingUpdate",
        specs.modelserving(recoveryPolicy="ServingGroupRecreate", rolloutStrategy=RR),
        "spec.rolloutStrategy.type: recoveryPolicy ServingGroupRecreate cannot be combined with"
        " rolloutStrategy RoleRollingUpdate",
    ),
    (
        "plugins must exist",
        specs.edit(base(), "spec.plugins", [{"name": "sidecar-injector"}]),
        'spec.plugins[0].name: unknown plugin "sidecar-injector"; available plugins:'
        " demo-pod-tweaks, lws-standard-labels",
    ),
    (
        "plugin scope names roles of the spec",
        specs.edit(
            base(), "spec.plugins", [{"name": "lws-standard-labels", "scope": {"roles": ["x"]}}]
        ),
        'spec.plugins[0].scope.roles[0]: "x" is not a role of this ModelServing',
    ),
    (
        "plugin scope target is an enum",
        specs.edit(
            base(), "spec.plugins", [{"name": "lws-standard-labels", "scope": {"target": "Pod"}}]
        ),
        'spec.plugins[0].scope.target: must be one of All, Entry, Worker; got "Pod"',
    ),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_reports_its_field_path_and_message(doc: dict[str, Any], expected: str) -> None:
    found = violations(doc)
    assert any(v.startswith(expected) for v in found), found


def test_all_violations_are_reported_together() -> None:
    doc = specs.edit(base(), "spec.replicas", -1)
    doc = specs.edit(doc, "spec.recoveryPolicy", "Sometimes")
    doc = specs.edit(doc, "spec.template.roles.1.name", "prefill")
    found = violations(doc)
    assert len(found) == 3
    assert [v.split(":")[0] for v in found] == [
        "spec.replicas",
        "spec.recoveryPolicy",
        "spec.template.roles[1].name",
    ]


def test_a_percent_of_zero_replicas_may_resolve_to_zero() -> None:
    # Scaling to zero must stay possible with a percent budget.
    doc = specs.modelserving(
        replicas=0, rolloutStrategy={"rollingUpdateConfiguration": {"maxUnavailable": "25%"}}
    )
    assert model.load(doc, plugins=PLUGINS).replicas == 0


def test_nulls_are_dropped_as_the_api_server_does() -> None:
    doc = specs.edit(base(), "spec.template.roles.0.entryTemplate.spec.containers.0.env", None)
    ms = model.load(doc, plugins=PLUGINS)
    assert "env" not in ms.template.roles[0].entry.spec["containers"][0]


def test_non_object_documents_are_rejected() -> None:
    assert violations([1, 2]) == ["must be an object, got a list"]
