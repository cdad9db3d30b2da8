"""Expansion through the built-in templates: names, labels, env, Services, PodGroups."""

from __future__ import annotations

from typing import Any

import pytest

from generator import model, naming
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet
from tests.unit import specs

TEMPLATES = TemplateSet()


def render(doc: dict[str, Any], **settings: Any) -> list[dict[str, Any]]:
    ms = model.load(doc, plugins=TEMPLATES.plugins())
    return render_modelserving(Renderer(TEMPLATES, ms, Settings(**settings)))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def names(objects: list[dict[str, Any]], kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in by_kind(objects, kind)]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_objects_come_in_apply_order_and_by_group_role_instance_index() -> None:
    doc = specs.modelserving(
        replicas=2, roles=[specs.role("prefill", 2, 1), specs.role("decode", 1, 2)]
    )
    objects = render(doc)
    assert [o["kind"] for o in objects] == ["PodGroup"] * 2 + ["Service"] * 6 + ["Pod"] * 14
    assert names(objects, "Pod")[:7] == [
        "sample-0-prefill-0-0",
        "sample-0-prefill-0-1",
        "sample-0-prefill-1-0",
        "sample-0-prefill-1-1",
        "sample-0-decode-0-0",
        "sample-0-decode-0-1",
        "sample-0-decode-0-2",
    ]
    assert names(objects, "Service")[:3] == [
        "sample-0-prefill-0-0",
        "sample-0-prefill-1-0",
        "sample-0-decode-0-0",
    ]
    assert names(objects, "PodGroup") == ["sample-0", "sample-1"]


def test_pod_labels_identify_group_role_instance_and_revision() -> None:
    ms = model.load(specs.pd(), plugins=TEMPLATES.plugins())
    pods = by_kind(render(specs.pd()), "Pod")
    entry, worker = pods[0]["metadata"]["labels"], pods[1]["metadata"]["labels"]
    assert entry == {
        naming.NAME_LABEL: "sample",
        naming.GROUP_NAME_LABEL: "sample-0",
        naming.ROLE_LABEL: "prefill",
        naming.ROLE_ID_LABEL: "prefill-0",
        naming.REVISION_LABEL: ms.revision,
        naming.ROLE_TEMPLATE_HASH_LABEL: ms.template.roles[0].template_hash,
        naming.ENTRY_LABEL: "true",
    }
    assert naming.ENTRY_LABEL not in worker
    assert worker[naming.ROLE_ID_LABEL] == "prefill-0"


def test_template_labels_and_annotations_are_added() -> None:
    doc = specs.edit(
        specs.pd(),
        "spec.template.roles.0.entryTemplate.metadata",
        {"labels": {"team": "a"}, "annotations": {"note": "x"}},
    )
    pod = by_kind(render(doc), "Pod")[0]
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["annotations"]["note"] == "x"


def test_env_is_injected_into_every_container_replacing_user_values() -> None:
    doc = specs.edit(
        specs.pd(workers=2),
        "spec.template.roles.0.workerTemplate.spec",
        {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "env": [{"name": "WORKER_INDEX", "value": "9"}, {"name": "KEEP", "value": "1"}],
                },
                {"name": "b", "image": "y"},
            ],
        },
    )
    pods = by_kind(render(doc), "Pod")
    worker2 = next(p for p in pods if p["metadata"]["name"] == "sample-0-prefill-0-2")
    address = "sample-0-prefill-0-0.sample-0-prefill-0-0.default"
    expected = {"GROUP_SIZE": "3", "ENTRY_ADDRESS": address, "WORKER_INDEX": "2"}
    containers = worker2["spec"]["containers"] + worker2["spec"]["initContainers"]
    for container in containers:
        assert {k: v for k, v in env(container).items() if k != "KEEP"} == expected
    assert [e["name"] for e in containers[0]["env"]] == [
        "KEEP",
        "GROUP_SIZE",
        "ENTRY_ADDRESS",
        "WORKER_INDEX",
    ]
    assert env(pods[0]["spec"]["containers"][0])["WORKER_INDEX"] == "0"


def test_entry_pod_gets_hostname_and_subdomain_so_entry_address_resolves() -> None:
    pods = by_kind(render(specs.pd()), "Pod")
    assert pods[0]["spec"]["hostname"] == "sample-0-prefill-0-0"
    assert pods[0]["spec"]["subdomain"] == "sample-0-prefill-0-0"
    assert "hostname" not in pods[1]["spec"]


def test_scheduler_name_overrides_the_template() -> None:
    doc = specs.edit(specs.pd(), "spec.template.roles.0.entryTemplate.spec.schedulerName", "other")
    doc = specs.edit(doc, "spec.schedulerName", "volcano")
    assert {p["spec"]["schedulerName"] for p in by_kind(render(doc), "Pod")} == {"volcano"}


def test_volcano_annotations_only_when_podgroups_are_managed() -> None:
    pods = by_kind(render(specs.pd()), "Pod")
    assert pods[0]["metadata"]["annotations"] == {
        naming.PODGROUP_ANNOTATION: "sample-0",
        naming.TASK_SPEC_ANNOTATION: "prefill-0",
    }
    objects = render(specs.pd(), podgroups=False)
    assert not by_kind(objects, "PodGroup")
    assert "annotations" not in by_kind(objects, "Pod")[0]["metadata"]
    other = render(specs.edit(specs.pd(), "spec.schedulerName", "default-scheduler"))
    assert not by_kind(other, "PodGroup")


def test_services_are_headless_and_select_the_entry_pod() -> None:
    service = by_kind(render(specs.pd()), "Service")[0]
    assert service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {
            naming.GROUP_NAME_LABEL: "sample-0",
            naming.ROLE_LABEL: "prefill",
            naming.ROLE_ID_LABEL: "prefill-0",
            naming.ENTRY_LABEL: "true",
        },
    }
    assert naming.REVISION_LABEL not in service["metadata"]["labels"]


def test_roles_without_worker_template_get_no_service_but_zero_workers_with_one_do() -> None:
    doc = specs.modelserving(
        roles=[
            specs.role("a", workers=0),
            {**specs.role("b", workers=0), "workerTemplate": specs.pod_template()},
        ]
    )
    assert names(render(doc), "Service") == ["sample-0-b-0-0"]


def test_owner_references_from_uid_or_flag() -> None:
    assert "ownerReferences" not in by_kind(render(specs.pd()), "Pod")[0]["metadata"]
    objects = render(specs.pd(), owner_uid="1234")
    pod_ref = by_kind(objects, "Pod")[0]["metadata"]["ownerReferences"]
    assert pod_ref == [
        {
            "apiVersion": "workload.serving.volcano.sh/v1alpha1",
            "kind": "ModelServing",
            "name": "sample",
            "uid": "1234",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    podgroup_ref = by_kind(objects, "PodGroup")[0]["metadata"]["ownerReferences"]
    assert "blockOwnerDeletion" not in podgroup_ref[0]
    doc = specs.edit(specs.pd(), "metadata.uid", "from-doc")
    assert by_kind(render(doc), "Service")[0]["metadata"]["ownerReferences"][0]["uid"] == "from-doc"


def test_podgroup_gang_sums_follow_min_role_replicas() -> None:
    def template(cpu: str, mem: str) -> dict[str, Any]:
        return {
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "x",
                        "resources": {"requests": {"cpu": cpu, "memory": mem}},
                    }
                ]
            }
        }

    prefill = {
        **specs.role("prefill", 2, 3),
        "entryTemplate": template("1", "2Gi"),
        "workerTemplate": template("2", "4Gi"),
    }
    decode = {
        **specs.role("decode", 1, 2),
        "entryTemplate": template("1", "1Gi"),
        "workerTemplate": template("1", "2Gi"),
    }
    doc = specs.modelserving(roles=[prefill, decode])
    spec = by_kind(render(doc), "PodGroup")[0]["spec"]
    assert spec["minMember"] == 2 * 4 + 3
    assert spec["minResources"] == {"cpu": "17", "memory": "33Gi"}
    doc = specs.edit(doc, "spec.template.gangPolicy", {"minRoleReplicas": {"prefill": 1}})
    spec = by_kind(render(doc), "PodGroup")[0]["spec"]
    assert spec["minMember"] == 4 + 3
    assert spec["minResources"] == {"cpu": "10", "memory": "19Gi"}
    assert [s["minSubGroups"] for s in spec["subGroupPolicy"]] == [1, 1]


def test_podgroup_subgroups_topology_and_queue() -> None:
    doc = specs.edit(
        specs.pd(),
        "spec.template.networkTopology",
        {
            "groupPolicy": {"highestTierAllowed": 2},
            "rolePolicy": {"mode": "soft", "highestTierAllowed": 1},
        },
    )
    doc = specs.edit(doc, "metadata.annotations", {naming.QUEUE_ANNOTATION: "gpu"})
    spec = by_kind(render(doc), "PodGroup")[0]["spec"]
    assert spec["queue"] == "gpu"
    assert spec["networkTopology"] == {"mode": "hard", "highestTierAllowed": 2}
    assert spec["subGroupPolicy"][0] == {
        "name": "prefill",
        "labelSelector": {
            "matchLabels": {naming.NAME_LABEL: "sample", naming.ROLE_LABEL: "prefill"}
        },
        "matchLabelKeys": [naming.ROLE_ID_LABEL],
        "subGroupSize": 2,
        "minSubGroups": 1,
        "networkTopology": {"mode": "soft", "highestTierAllowed": 1},
    }
    plain = by_kind(render(specs.pd(), subgroup_policy=False), "PodGroup")[0]["spec"]
    assert set(plain) == {"minMember", "minResources"}


@pytest.mark.parametrize("target", ["All", "Entry", "Worker"])
def test_plugins_apply_within_their_scope(target: str) -> None:
    doc = specs.edit(
        specs.lws_owned(specs.pd()),
        "spec.plugins",
        [{"name": "lws-standard-labels", "scope": {"roles": ["decode"], "target": target}}],
    )
    pods = by_kind(render(doc), "Pod")
    labelled = [
        p["metadata"]["name"]
        for p in pods
        if "leaderworkerset.sigs.k8s.io/name" in p["metadata"]["labels"]
    ]
    expected = {
        "All": ["sample-0-decode-0-0", "sample-0-decode-0-1"],
        "Entry": ["sample-0-decode-0-0"],
        "Worker": ["sample-0-decode-0-1"],
    }
    assert labelled == expected[target]


def test_lws_labels_plugin_adds_the_leaderworkerset_labels_when_an_lws_owns_it() -> None:
    doc = specs.edit(specs.lws_owned(specs.pd()), "spec.plugins", [{"name": "lws-standard-labels"}])
    labels = by_kind(render(doc), "Pod")[1]["metadata"]["labels"]
    assert labels["leaderworkerset.sigs.k8s.io/name"] == "sample"
    assert labels["leaderworkerset.sigs.k8s.io/group-index"] == "0"
    assert labels["leaderworkerset.sigs.k8s.io/worker-index"] == "1"
    # sha1("sample-0")
    assert (
        labels["leaderworkerset.sigs.k8s.io/group-key"]
        == "c93bcf4e03b402e6c8bc9e2be97bb1fc09b865b7"
    )


def test_lws_labels_use_the_owning_leaderworkerset_name() -> None:
    doc = specs.edit(
        specs.lws_owned(specs.pd(), "other"), "spec.plugins", [{"name": "lws-standard-labels"}]
    )
    labels = by_kind(render(doc), "Pod")[0]["metadata"]["labels"]
    assert labels["leaderworkerset.sigs.k8s.io/name"] == "other"
    assert labels["leaderworkerset.sigs.k8s.io/worker-index"] == "0"


def test_lws_labels_plugin_adds_nothing_without_a_leaderworkerset_owner() -> None:
    plain = by_kind(render(specs.pd()), "Pod")
    doc = specs.edit(specs.pd(), "spec.plugins", [{"name": "lws-standard-labels"}])
    assert by_kind(render(doc), "Pod") == plain


def test_plugins_chain_in_spec_order() -> None:
    tweaks = {
        "name": "demo-pod-tweaks",
        "config": {
            "runtimeClassName": "nvidia",
            "annotations": {"a": "1"},
            "env": [{"name": "X", "value": "y"}],
        },
    }
    doc = specs.edit(
        specs.lws_owned(specs.pd()), "spec.plugins", [{"name": "lws-standard-labels"}, tweaks]
    )
    pod = by_kind(render(doc), "Pod")[0]
    assert pod["spec"]["runtimeClassName"] == "nvidia"
    assert pod["metadata"]["annotations"]["a"] == "1"
    assert env(pod["spec"]["containers"][0])["X"] == "y"
    assert "leaderworkerset.sigs.k8s.io/name" in pod["metadata"]["labels"]


def test_pods_do_not_share_mutable_structure() -> None:
    pods = by_kind(render(specs.pd()), "Pod")
    pods[0]["spec"]["containers"][0]["image"] = "changed"
    assert pods[1]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_rendering_is_deterministic() -> None:
    assert render(specs.pd(replicas=3)) == render(specs.pd(replicas=3))


def test_controller_revision_records_the_roles() -> None:
    ms = model.load(specs.pd(), plugins=TEMPLATES.plugins())
    renderer = Renderer(TEMPLATES, ms, Settings(owner_uid="u"))
    obj = renderer.controller_revision(ms.revision, ms.raw["spec"]["template"]["roles"])
    assert obj["metadata"]["name"] == f"sample-{ms.revision}"
    assert obj["metadata"]["labels"] == {
        naming.NAME_LABEL: "sample",
        naming.REVISION_LABEL: ms.revision,
    }
    assert obj["revision"] == 1
    assert obj["data"] == {"data": ms.raw["spec"]["template"]["roles"]}
