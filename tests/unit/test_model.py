"""Defaults land where the API server would put them; the typed model reads them."""

from __future__ import annotations

from generator import model
from tests.unit import specs


def load(doc: dict) -> model.ModelServing:  # type: ignore[type-arg]
    return model.load(doc, plugins=frozenset({"lws-standard-labels"}))


def test_defaults_of_the_crd_are_applied() -> None:
    doc = specs.modelserving(
        roles=[{"name": "a", "workerReplicas": 0, "entryTemplate": specs.pod_template()}]
    )
    del doc["spec"]["replicas"]
    ms = load(doc)
    assert ms.replicas == 1
    assert ms.scheduler_name == "volcano"
    assert ms.recovery_policy == "RoleRecreate"
    assert ms.template.restart_grace_period_seconds == 0
    assert ms.rollout.type == "ServingGroupRollingUpdate"
    assert ms.rollout.max_unavailable == 1
    assert ms.rollout.partition is None
    role = ms.template.roles[0]
    assert role.replicas == 1
    assert role.max_unavailable == 1
    assert role.raw["maxUnavailable"] == 1
    assert "rolloutStrategy" not in ms.raw["spec"]


def test_nested_pod_spec_defaults_are_applied() -> None:
    doc = specs.edit(
        specs.pd(),
        "spec.template.roles.0.entryTemplate.spec.containers.0.ports",
        [{"containerPort": 80}],
    )
    ms = load(doc)
    assert ms.template.roles[0].entry.spec["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]


def test_network_topology_mode_defaults_to_hard() -> None:
    doc = specs.edit(
        specs.pd(), "spec.template.networkTopology", {"groupPolicy": {"highestTierAllowed": 1}}
    )
    assert load(doc).template.group_topology == {"highestTierAllowed": 1, "mode": "hard"}


def test_plugin_defaults() -> None:
    doc = specs.edit(specs.pd(), "spec.plugins", [{"name": "lws-standard-labels"}])
    ms = load(doc)
    assert ms.raw["spec"]["plugins"] == [{"name": "lws-standard-labels", "type": "BuiltIn"}]
    assert ms.plugins[0].target == "All"
    assert ms.plugins[0].roles == ()


def test_namespace_comes_from_the_document_or_the_caller() -> None:
    doc = specs.pd()
    assert model.load(doc, namespace="other").namespace == "default"
    del doc["metadata"]["namespace"]
    assert model.load(doc, namespace="other").namespace == "other"


def test_the_input_document_is_not_mutated() -> None:
    doc = specs.pd()
    before = specs.edit(doc, "spec.replicas", 1)
    load(doc)
    assert doc == before


def test_gang_replicas_is_capped_by_role_replicas() -> None:
    doc = specs.modelserving(roles=[specs.role("a", replicas=3), specs.role("b", replicas=2)])
    doc = specs.edit(doc, "spec.template.gangPolicy", {"minRoleReplicas": {"a": 1}})
    template = load(doc).template
    assert [template.gang_replicas(r) for r in template.roles] == [1, 2]


def test_plugin_scope() -> None:
    everywhere = model.Plugin("p", {}, (), "All")
    entries = model.Plugin("p", {}, ("decode",), "Entry")
    workers = model.Plugin("p", {}, (), "Worker")
    assert everywhere.applies_to("prefill", entry=False)
    assert entries.applies_to("decode", entry=True)
    assert not entries.applies_to("decode", entry=False)
    assert not entries.applies_to("prefill", entry=True)
    assert workers.applies_to("prefill", entry=False)
    assert not workers.applies_to("prefill", entry=True)
