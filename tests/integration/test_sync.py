"""The sync loop against the real API server: creation, scaling, repair, ownership."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from generator import model, naming
from generator.templating import TemplateSet
from sync import kube
from tests.integration import kubelet as kl
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, example, running_controller
from tests.unit import specs


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_a_1p1d_modelserving_is_created_exactly_and_becomes_available(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    created = cluster.apply(example("prefill-decode", namespace))
    uid = created["metadata"]["uid"]
    with running_controller(control_plane, namespace):
        ms = cluster.wait_available("qwen-pd", 1)
    revision = model.load(ms, plugins=TemplateSet().plugins()).revision
    pods = cluster.pods()
    assert sorted(pods) == [
        "qwen-pd-0-decode-0-0",
        "qwen-pd-0-decode-0-1",
        "qwen-pd-0-prefill-0-0",
        "qwen-pd-0-prefill-0-1",
    ]
    entry = pods["qwen-pd-0-prefill-0-0"]
    assert entry["metadata"]["labels"] == {
        naming.NAME_LABEL: "qwen-pd",
        naming.GROUP_NAME_LABEL: "qwen-pd-0",
        naming.ROLE_LABEL: "prefill",
        naming.ROLE_ID_LABEL: "prefill-0",
        naming.REVISION_LABEL: revision,
        naming.ROLE_TEMPLATE_HASH_LABEL: entry["metadata"]["labels"][
            naming.ROLE_TEMPLATE_HASH_LABEL
        ],
        naming.ENTRY_LABEL: "true",
        "app.kubernetes.io/component": "prefill",
    }
    assert entry["metadata"]["ownerReferences"] == [
        {
            "apiVersion": naming.API_VERSION,
            "kind": naming.KIND,
            "name": "qwen-pd",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    worker = pods["qwen-pd-0-prefill-0-1"]
    address = f"qwen-pd-0-prefill-0-0.qwen-pd-0-prefill-0-0.{namespace}"
    assert env(worker["spec"]["containers"][0]) == {
        "GROUP_SIZE": "2",
        "ENTRY_ADDRESS": address,
        "WORKER_INDEX": "1",
    }
    assert entry["spec"]["hostname"] == entry["spec"]["subdomain"] == "qwen-pd-0-prefill-0-0"
    assert entry["metadata"]["annotations"] == {
        naming.PODGROUP_ANNOTATION: "qwen-pd-0",
        naming.TASK_SPEC_ANNOTATION: "prefill-0",
    }
    services = {s["metadata"]["name"]: s for s in cluster.objects(kube.SERVICES)}
    assert sorted(services) == ["qwen-pd-0-decode-0-0", "qwen-pd-0-prefill-0-0"]
    assert services["qwen-pd-0-prefill-0-0"]["spec"]["clusterIP"] == "None"
    assert services["qwen-pd-0-prefill-0-0"]["spec"]["publishNotReadyAddresses"] is True
    (podgroup,) = cluster.objects(kube.PODGROUPS)
    assert podgroup["metadata"]["name"] == "qwen-pd-0"
    assert podgroup["spec"]["minMember"] == 4
    assert podgroup["spec"]["minResources"] == {
        "cpu": "16",
        "memory": "128Gi",
        "nvidia.com/gpu": "4",
    }
    assert [s["name"] for s in podgroup["spec"]["subGroupPolicy"]] == ["prefill", "decode"]
    assert cluster.names(kube.REVISIONS) == [f"qwen-pd-{revision}"]
    status = ms["status"]
    assert status["currentRevision"] == status["updateRevision"] == revision
    assert status["labelSelector"] == (
        "modelserving.volcano.sh/entry=true,modelserving.volcano.sh/name=qwen-pd,"
        "modelserving.volcano.sh/role-id=prefill-0,modelserving.volcano.sh/role=prefill"
    )
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "AllGroupsReady"),
        "Progressing": ("False", "GroupProgressing"),
        "Reconciling": ("False", "Available"),  # kstatus: Current (docs/behaviour.md#progress)
        "Stalled": ("False", "NotStalled"),
    }
    reasons = sorted(
        e["reason"] for e in cluster.events() if e["involvedObject"]["name"] == "qwen-pd"
    )
    assert reasons == ["RoleCreating", "RoleCreating", "RoleRunning", "RoleRunning"]


def test_group_and_role_scaling_remove_the_right_objects(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        cluster.patch_ms("sample", {"spec": {"replicas": 3}})
        cluster.wait_available("sample", 3)
        assert cluster.names(kube.PODGROUPS) == ["sample-0", "sample-1", "sample-2"]
        cluster.patch_ms("sample", {"spec": {"replicas": 1}})
        cluster.wait_available("sample", 1)
        cluster.wait(
            lambda: (
                cluster.live_pod_names()
                == [f"sample-0-{r}-0-{k}" for r in ("decode", "prefill") for k in (0, 1)]
            ),
            "pods of group 0 only",
        )
        assert cluster.names(kube.SERVICES) == ["sample-0-decode-0-0", "sample-0-prefill-0-0"]
        assert cluster.names(kube.PODGROUPS) == ["sample-0"]
        roles = cluster.ms("sample")["spec"]["template"]["roles"]
        roles[0]["replicas"] = 3
        cluster.patch_ms("sample", {"spec": {"template": {"roles": roles}}})
        cluster.wait(
            lambda: len([n for n in cluster.live_pod_names() if "prefill" in n]) == 6,
            "3 prefill instances",
        )
        cluster.wait_available("sample", 1)
        roles[0]["replicas"] = 1
        cluster.patch_ms("sample", {"spec": {"template": {"roles": roles}}})
        cluster.wait(
            lambda: (
                [n for n in cluster.live_pod_names() if "prefill" in n]
                == ["sample-0-prefill-0-0", "sample-0-prefill-0-1"]
            ),
            "prefill-0 only",
        )
        cluster.wait(
            lambda: cluster.names(kube.SERVICES) == ["sample-0-decode-0-0", "sample-0-prefill-0-0"],
            "services of instance 0",
        )


def test_scale_down_takes_not_ready_first_then_the_cheapest(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd(replicas=4))
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 4)
        kl.mark_not_ready(api, namespace, "sample-2-decode-0-0")
        for k in (0, 1):
            cluster.kube.merge_patch(
                kube.PODS,
                namespace,
                f"sample-3-prefill-0-{k}",
                {"metadata": {"annotations": {naming.DELETION_COST_ANNOTATION: "100"}}},
            )
            cluster.kube.merge_patch(
                kube.PODS,
                namespace,
                f"sample-1-prefill-0-{k}",
                {"metadata": {"annotations": {naming.DELETION_COST_ANNOTATION: "-100"}}},
            )
        cluster.wait(
            lambda: cluster.ms("sample")["status"].get("availableReplicas") == 3,
            "group 2 not ready",
        )
        cluster.patch_ms("sample", {"spec": {"replicas": 2}})
        cluster.wait(
            lambda: cluster.names(kube.PODGROUPS) == ["sample-0", "sample-3"], "groups 0 and 3 left"
        )


def test_a_deleted_service_is_recreated(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        old = cluster.kube.get(kube.SERVICES, namespace, "sample-0-decode-0-0")
        cluster.kube.delete(kube.SERVICES, namespace, "sample-0-decode-0-0")

        def recreated() -> dict[str, Any] | None:
            try:
                svc = cluster.kube.get(kube.SERVICES, namespace, "sample-0-decode-0-0")
            except kube.NotFound:
                return None
            return svc if svc["metadata"]["uid"] != old["metadata"]["uid"] else None

        svc = cluster.wait(recreated, "the Service back")
        assert svc["metadata"]["ownerReferences"][0]["name"] == "sample"


def test_a_foreign_pod_with_our_name_is_left_alone(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    ms = cluster.apply(specs.pd())
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sample-0-prefill-0-1",
            "labels": {
                naming.NAME_LABEL: "sample",
                naming.GROUP_NAME_LABEL: "sample-0",
                "owner": "someone",
            },
        },
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    cluster.kube.create(kube.PODS, namespace, foreign)
    with running_controller(control_plane, namespace):
        cluster.wait(
            lambda: any(e["reason"] == "ForeignObject" for e in cluster.events()),
            "a ForeignObject event",
        )
        cluster.wait(lambda: "sample-0-decode-0-1" in cluster.pods(), "the rest created")
        pod = cluster.pods()["sample-0-prefill-0-1"]
        assert pod["metadata"]["labels"]["owner"] == "someone"
        assert "ownerReferences" not in pod["metadata"]
        assert ms["metadata"]["uid"]
        cluster.kube.delete(kube.PODS, namespace, "sample-0-prefill-0-1")
        cluster.wait_available("sample", 1)


def test_the_scale_subresource_drives_the_groups(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        client.CustomObjectsApi(api).patch_namespaced_custom_object_scale(
            naming.API_GROUP,
            "v1alpha1",
            namespace,
            naming.PLURAL,
            "sample",
            {"spec": {"replicas": 2}},
        )
        cluster.wait_available("sample", 2)
        scale = client.CustomObjectsApi(api).get_namespaced_custom_object_scale(
            naming.API_GROUP, "v1alpha1", namespace, naming.PLURAL, "sample"
        )
        assert scale["status"]["replicas"] == 2
        assert scale["status"]["selector"] == cluster.ms("sample")["status"]["labelSelector"]


class LateAnswers(kube.Kube):
    """The real client, but the answers to writes reach the controller 0.5 s late, as they
    can on a loaded machine: by then the watch has brought what happened next."""

    def _json(self, verb: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = super()._json(verb, method, path, **kwargs)
        if verb in ("create", "patch", "update"):
            time.sleep(0.5)
        return answer


def test_late_answers_to_writes_do_not_hide_what_happened_since(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    # The kubelet marks each new pod Ready well before the controller gets the answer to its
    # create, and the status write's answer comes after the scale below: a cache that took
    # those answers as the latest state would wait forever for pods that are long Ready.
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace, client_class=LateAnswers):
        cluster.wait_available("sample", 1)
        cluster.patch_ms("sample", {"spec": {"replicas": 2}})
        cluster.wait_available("sample", 2)


def test_a_no_op_reconcile_makes_no_api_call(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd(replicas=2))
    with running_controller(control_plane, namespace, workers=1) as controller:
        cluster.wait_available("sample", 2)
        cluster.wait(controller.queue.idle, "an idle queue")
        before = dict(controller.client.calls)
        result = controller.reconcile(f"{namespace}/sample")
        assert result is not None
        assert result.plan.steps == ()
        assert dict(controller.client.calls) == before


def test_a_spec_the_api_server_accepts_but_the_rules_refuse_gets_an_event_and_no_pods(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.edit(
        specs.pd(), "spec.template.roles.0.entryTemplate.spec.containers.0.image", "nginx latest"
    )
    cluster.apply(doc)  # the CRD has no CEL rule for images (too costly for the API server)
    with running_controller(control_plane, namespace):
        event = cluster.wait(
            lambda: next((e for e in cluster.events() if e["reason"] == "InvalidSpec"), None),
            "an InvalidSpec event",
        )
    assert event["type"] == "Warning"
    assert (
        "spec.template.roles[0].entryTemplate.spec.containers[0].image: must not contain spaces"
        in event["message"]
    )
    assert cluster.pods() == {}
