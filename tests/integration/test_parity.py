"""Parity with the reference in the corners (issue 15), on the real API server: terminating
role instances, pods held by a finalizer, partition-protected groups and instances rebuilt
from their ControllerRevision, and ServingGroupRecreate for an instance that vanished whole."""

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
from tests.integration.sync_helpers import Cluster, running_controller
from tests.unit import specs

OLD, NEW = "nginx:1.27", "nginx:1.28"
HOLD = "example.com/hold"


def set_role(cluster: Cluster, name: str, role: str, **fields: Any) -> None:
    roles = cluster.ms(name)["spec"]["template"]["roles"]
    for spec_role in roles:
        if spec_role["name"] == role:
            spec_role.update(fields)
    cluster.patch_ms(name, {"spec": {"template": {"roles": roles}}})


def set_image(cluster: Cluster, name: str, role: str, image: str) -> None:
    roles = cluster.ms(name)["spec"]["template"]["roles"]
    for spec_role in roles:
        if spec_role["name"] == role:
            for kind in ("entryTemplate", "workerTemplate"):
                if kind in spec_role:
                    spec_role[kind]["spec"]["containers"][0]["image"] = image
    cluster.patch_ms(name, {"spec": {"template": {"roles": roles}}})


def image(pod: dict[str, Any]) -> str:
    found: str = pod["spec"]["containers"][0]["image"]
    return found


def images(cluster: Cluster, name: str) -> list[str]:
    pod = cluster.pods().get(name)
    return [image(pod)] if pod is not None else []


def revision_of(doc: dict[str, Any]) -> str:
    return model.load(doc, plugins=TemplateSet().plugins()).revision


def stays(check: Any, seconds: float) -> None:
    """`check()` holds on every look for `seconds` (it returns a message when it does not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        problem = check()
        assert problem is None, problem
        time.sleep(0.1)


def test_a_terminating_role_instance_sets_aside_only_itself_and_its_ordinal(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    # Pods bound to a node are deleted gracefully: prefill-1 stays Terminating until told.
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(
        roles=[specs.role("prefill", 2, workers=0), specs.role("decode", 1, workers=0)]
    )
    cluster.apply(doc)
    with (
        Kubelet(api, namespace, node_name="node-1", finish_deletions=False),
        running_controller(control_plane, namespace),
    ):
        cluster.wait_available("sample", 1)
        set_role(cluster, "sample", "prefill", replicas=1)
        cluster.wait(
            lambda: "deletionTimestamp" in cluster.pods()["sample-0-prefill-1-0"]["metadata"],
            "prefill-1 terminating",
        )
        set_role(cluster, "sample", "decode", replicas=2)
        cluster.wait(
            lambda: kl.pods_ready(api, namespace, ["sample-0-decode-1-0"]),
            "decode-1 created and ready while prefill-1 is still terminating",
            timeout=15,
        )
        set_role(cluster, "sample", "prefill", replicas=3)
        # prefill-1 keeps its ordinal: only prefill-2 is new.
        cluster.wait(
            lambda: kl.pods_ready(api, namespace, ["sample-0-prefill-2-0"]),
            "prefill-2 created while prefill-1 is still terminating",
            timeout=15,
        )
        assert "deletionTimestamp" in cluster.pods()["sample-0-prefill-1-0"]["metadata"]

        def scaling() -> dict[str, Any] | None:
            ms = cluster.ms("sample")
            status = ms.get("status", {})
            ok = status.get("observedGeneration") == ms["metadata"]["generation"]
            return status if ok else None

        status = cluster.wait(scaling, "status of the latest generation")
        # The group is scaling (not available), not being deleted: it is still updated.
        assert status["replicas"] == 1
        assert status["updatedReplicas"] == 1
        assert status["availableReplicas"] == 0
        kl.finish_deletion(api, namespace, "sample-0-prefill-1-0")
        # prefill-1 comes back as a new instance once its ordinal is free.
        cluster.wait_available("sample", 1)
        assert sorted(cluster.pods()) == [
            "sample-0-decode-0-0",
            "sample-0-decode-1-0",
            "sample-0-prefill-0-0",
            "sample-0-prefill-1-0",
            "sample-0-prefill-2-0",
        ]


def test_a_pod_held_by_a_finalizer_exists_until_the_api_server_says_it_is_gone(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(
        roles=[specs.role("prefill", 2, workers=0), specs.role("decode", 1, workers=0)]
    )
    cluster.apply(doc)
    core = client.CoreV1Api(api)
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        core.patch_namespaced_pod(
            "sample-0-prefill-1-0", namespace, {"metadata": {"finalizers": [HOLD]}}
        )
        set_role(cluster, "sample", "prefill", replicas=1)
        cluster.wait(
            lambda: "deletionTimestamp" in cluster.pods()["sample-0-prefill-1-0"]["metadata"],
            "prefill-1 held by its finalizer",
        )

        def held() -> str | None:
            ms = cluster.ms("sample")
            status = ms.get("status", {})
            if status.get("observedGeneration") != ms["metadata"]["generation"]:
                return None  # not reconciled yet
            if status.get("availableReplicas") != 0:
                return f"group reported available while prefill-1 still exists: {status}"
            return None

        stays(held, 3.0)
        # Scaling up again while it is held: prefill-1 still counts (its ordinal reserved),
        # so nothing is created until it is gone.
        set_role(cluster, "sample", "prefill", replicas=2)
        held_uid = cluster.uids()["sample-0-prefill-1-0"]

        def nothing_new() -> str | None:
            if cluster.uids().get("sample-0-prefill-1-0") != held_uid or len(cluster.pods()) != 3:
                return f"pods changed while prefill-1 is held: {sorted(cluster.pods())}"
            return held()

        stays(nothing_new, 3.0)
        pod = cluster.pods()["sample-0-prefill-1-0"]
        assert pod["metadata"]["finalizers"] == [HOLD]
        core.patch_namespaced_pod(
            "sample-0-prefill-1-0",
            namespace,
            [{"op": "remove", "path": "/metadata/finalizers"}],
        )
        # Gone now: prefill-1 is made again, a new pod.
        cluster.wait(
            lambda: cluster.uids().get("sample-0-prefill-1-0") not in (None, held_uid),
            "prefill-1 recreated once the held pod is gone",
        )
        cluster.wait_available("sample", 1)
        assert sorted(cluster.pods()) == [
            "sample-0-decode-0-0",
            "sample-0-prefill-0-0",
            "sample-0-prefill-1-0",
        ]


def test_a_partition_protected_group_keeps_the_role_counts_of_its_revision(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(
        replicas=2,
        roles=[specs.role("prefill", 1, workers=0), specs.role("decode", 1, workers=0)],
        rolloutStrategy={
            "type": "ServingGroupRollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "partition": 1},
        },
    )
    cluster.apply(doc)
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 2)
        set_image(cluster, "sample", "prefill", NEW)
        cluster.wait(
            lambda: (
                NEW in images(cluster, "sample-1-prefill-0-0")
                and cluster.ms("sample")["status"].get("availableReplicas") == 2
            ),
            "group 1 updated and available",
        )
        set_role(cluster, "sample", "prefill", replicas=2)
        cluster.wait(
            lambda: kl.pods_ready(api, namespace, ["sample-1-prefill-1-0"]),
            "group 1 scaled prefill to 2",
        )

        def protected_group_unchanged() -> str | None:
            if "sample-0-prefill-1-0" in cluster.pods():
                return "protected group 0 got a prefill-1 its revision never had"
            return None

        stays(protected_group_unchanged, 3.0)
        status = cluster.ms("sample")["status"]
        assert status["availableReplicas"] == 2
        assert image(cluster.pods()["sample-0-prefill-0-0"]) == OLD


def test_servinggrouprecreate_recreates_the_group_when_an_instance_vanished_whole(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(
        roles=[specs.role("prefill", 1, workers=1), specs.role("decode", 1, workers=0)],
        recoveryPolicy="ServingGroupRecreate",
    )
    cluster.apply(doc)
    core = client.CoreV1Api(api)
    prefill = ["sample-0-prefill-0-0", "sample-0-prefill-0-1"]

    def recreated(before: dict[str, str]) -> bool:
        now = cluster.uids()
        return all(now.get(n) not in (None, before[n]) for n in prefill) and kl.pods_ready(
            api, namespace, [*prefill, "sample-0-decode-0-0"]
        )

    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        before = cluster.uids()
        core.delete_namespaced_pod("sample-0-decode-0-0", namespace)
        cluster.wait(lambda: recreated(before), "the whole group recreated (daemon running)")
        cluster.wait_available("sample", 1)
    # The same when the pod vanishes while the daemon is down.
    before = cluster.uids()
    core.delete_namespaced_pod("sample-0-decode-0-0", namespace)
    with running_controller(control_plane, namespace):
        cluster.wait(lambda: recreated(before), "the whole group recreated (daemon restarted)")
        cluster.wait_available("sample", 1)


def test_a_role_partition_keeps_its_history_and_rebuilds_protected_instances_from_it(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(
        roles=[
            specs.role("prefill", 3, workers=0, partition=1),
            specs.role("decode", 1, workers=0),
        ],
        rolloutStrategy={"type": "RoleRollingUpdate"},
    )
    cluster.apply(doc)
    old = revision_of(doc)
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        set_image(cluster, "sample", "prefill", NEW)
        new = revision_of(cluster.ms("sample"))
        names = ["sample-0-prefill-1-0", "sample-0-prefill-2-0"]

        def rolled() -> dict[str, Any] | None:
            pods = cluster.pods()
            if not all(n in pods and image(pods[n]) == NEW for n in names):
                return None
            if not kl.pods_ready(api, namespace, names):
                return None
            ms = cluster.ms("sample")
            status = ms.get("status", {})
            if status.get("observedGeneration") != ms["metadata"]["generation"]:
                return None
            return status if status.get("availableReplicas") == 1 else None

        status = cluster.wait(rolled, "prefill-1 and prefill-2 updated")
        assert image(cluster.pods()["sample-0-prefill-0-0"]) == OLD
        # prefill-0 is outdated (protected): the group has not moved to the new revision.
        assert (status["currentRevision"], status["updateRevision"]) == (old, new)
        assert status["updatedReplicas"] == 0
        assert f"sample-{old}" in cluster.names(kube.REVISIONS)
        first = cluster.uids()["sample-0-prefill-0-0"]
        client.CoreV1Api(api).delete_namespaced_pod("sample-0-prefill-0-0", namespace)

        def back() -> dict[str, Any] | None:
            pod = cluster.pods().get("sample-0-prefill-0-0")
            if pod is None or pod["metadata"]["uid"] == first:
                return None
            return pod if kl.pods_ready(api, namespace, ["sample-0-prefill-0-0"]) else None

        pod = cluster.wait(back, "prefill-0 recreated")
        assert image(pod) == OLD
        assert pod["metadata"]["labels"][naming.REVISION_LABEL] == old
        status = cluster.wait(rolled, "the group available again")
        assert (status["currentRevision"], status["updateRevision"]) == (old, new)
        assert status["updatedReplicas"] == 0
        assert f"sample-{old}" in cluster.names(kube.REVISIONS)


def remove_finalizers(
    api: client.ApiClient, namespace: str, resource: kube.Resource, name: str
) -> None:
    Cluster(api, namespace).kube.patch(
        resource, namespace, name, [{"op": "remove", "path": "/metadata/finalizers"}]
    )


def test_a_service_or_podgroup_held_by_a_finalizer_counts_until_it_is_gone_across_a_restart(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(replicas=2, roles=[specs.role("prefill", 2, workers=1)])
    cluster.apply(doc)
    hold = [{"op": "add", "path": "/metadata/finalizers", "value": [HOLD]}]
    with running_controller(control_plane, namespace):
        cluster.wait_available("sample", 2)
        cluster.kube.patch(kube.SERVICES, namespace, "sample-0-prefill-1-0", hold)
        cluster.kube.patch(kube.PODGROUPS, namespace, "sample-1", hold)
        cluster.patch_ms("sample", {"spec": {"replicas": 1}})
        set_role(cluster, "sample", "prefill", replicas=1)

        def settled() -> dict[str, Any] | None:
            ms = cluster.ms("sample")
            status = ms.get("status", {})
            gone = not any(n.startswith("sample-1-") for n in cluster.pods())
            held = "sample-0-prefill-1-0" not in cluster.pods()
            ok = status.get("observedGeneration") == ms["metadata"]["generation"]
            return status if ok and gone and held else None

        status = cluster.wait(settled, "group 1 and prefill-1 down to what the finalizers hold")
    # Restarted while they are held: the same view, read back from the cluster.
    with running_controller(control_plane, namespace):

        def still_held() -> str | None:
            status = cluster.ms("sample").get("status", {})
            if (status.get("replicas"), status.get("availableReplicas")) != (2, 0):
                return f"held objects not counted: {status}"
            return None

        assert status["replicas"] == 2  # group 1 still exists: its PodGroup does
        stays(still_held, 3.0)
        remove_finalizers(api, namespace, kube.SERVICES, "sample-0-prefill-1-0")
        remove_finalizers(api, namespace, kube.PODGROUPS, "sample-1")
        cluster.wait_available("sample", 1)
        assert cluster.names(kube.PODGROUPS) == ["sample-0"]
        assert cluster.names(kube.SERVICES) == ["sample-0-prefill-0-0"]
