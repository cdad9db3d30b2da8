"""Smoke tests of the test infrastructure itself: the control plane, the per-test
namespace, the kubelet stand-in, garbage collection and the Volcano PodGroup CRD."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.integration.kubelet import (
    Kubelet,
    bind,
    bump_restart,
    condition,
    fail_pod,
    finish_deletion,
    mark_not_ready,
    mark_ready,
    pods_ready,
    read_pod,
    to_json,
    wait_for,
)

if TYPE_CHECKING:
    from tests.integration.conftest import ControlPlane

HERE = Path(__file__).resolve().parent
REUSE_ENV = "MSCTL_TEST_KUBECONFIG"


def make_pod(
    api: client.ApiClient, namespace: str, name: str, containers: tuple[str, ...] = ("main",)
) -> dict[str, Any]:
    body: Any = {
        "metadata": {"name": name, "labels": {"app": "smoke"}},
        "spec": {
            "initContainers": [{"name": "init", "image": "registry.test/init:1"}],
            "containers": [{"name": c, "image": f"registry.test/{c}:1"} for c in containers],
        },
    }
    return to_json(api, client.CoreV1Api(api).create_namespaced_pod(namespace, body))


def statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in pod["status"].get("containerStatuses", [])}


def absent(read: Callable[..., object], *args: str) -> bool:
    try:
        read(*args)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


# -- control plane and namespaces ---------------------------------------------------------


def test_api_server_is_real(api: client.ApiClient, control_plane: ControlPlane) -> None:
    assert client.VersionApi(api).get_code().major == "1"
    names = {
        to_json(api, ns)["metadata"]["name"] for ns in client.CoreV1Api(api).list_namespace().items
    }
    assert {"default", "kube-system"} <= names
    assert control_plane.kubeconfig.is_file()
    assert os.fspath(control_plane) == str(control_plane.kubeconfig)


@pytest.mark.parametrize("attempt", [1, 2])
def test_namespace_is_fresh_per_test(api: client.ApiClient, namespace: str, attempt: int) -> None:
    core = client.CoreV1Api(api)
    ns = to_json(api, core.read_namespace(namespace))
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["msctl.test/namespace"] == "true"
    assert core.list_namespaced_config_map(namespace).items == []
    # The same name in both parametrized runs: a shared namespace would answer 409 here.
    body: Any = {"metadata": {"name": "same-in-every-test"}}
    core.create_namespaced_config_map(namespace, body)


def test_namespace_deletion_finishes(api: client.ApiClient, control_plane: ControlPlane) -> None:
    if not control_plane.namespace_deletion:
        pytest.skip("the namespace controller does not run (MSCTL_CP_KCM=0?)")
    core = client.CoreV1Api(api)
    ns: Any = {"metadata": {"name": "smoke-ns-deletion"}}
    core.create_namespace(ns)
    cm: Any = {"metadata": {"name": "content"}}
    core.create_namespaced_config_map("smoke-ns-deletion", cm)
    core.delete_namespace("smoke-ns-deletion")
    wait_for(
        lambda: absent(core.read_namespace, "smoke-ns-deletion"),
        timeout=30,
        what="namespace smoke-ns-deletion to be deleted",
    )


# -- kubelet stand-in ---------------------------------------------------------------------


def test_mark_ready_is_visible_through_the_api(api: client.ApiClient, namespace: str) -> None:
    make_pod(api, namespace, "web", containers=("app", "sidecar"))
    mark_ready(api, namespace, "web")

    pod = read_pod(api, namespace, "web")  # a fresh read, not the patch answer
    assert pod is not None
    assert pod["status"]["phase"] == "Running"
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert condition(pod, kind) == "True", kind
    assert set(statuses(pod)) == {"app", "sidecar"}
    for s in statuses(pod).values():
        assert s["ready"] is True and s["started"] is True
        assert s["restartCount"] == 0
        assert set(s["state"]) == {"running"}
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert pod["status"]["podIP"] and pod["status"]["startTime"]
    assert "nodeName" not in pod["spec"]  # unscheduled pods keep their instant deletion


def test_mark_not_ready_and_back(api: client.ApiClient, namespace: str) -> None:
    make_pod(api, namespace, "flaky")
    ip = mark_ready(api, namespace, "flaky")["status"]["podIP"]
    pod = mark_not_ready(api, namespace, "flaky")
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready") == "False"
    assert statuses(pod)["main"]["ready"] is False
    pod = mark_ready(api, namespace, "flaky")
    assert condition(pod, "Ready") == "True"
    assert pod["status"]["podIP"] == ip


def test_bump_restart(api: client.ApiClient, namespace: str) -> None:
    make_pod(api, namespace, "crashy", containers=("a", "b"))
    mark_ready(api, namespace, "crashy")

    pod = bump_restart(api, namespace, "crashy", container="b")
    b = statuses(pod)["b"]
    assert b["restartCount"] == 1
    assert b["ready"] is False
    assert b["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert b["lastState"]["terminated"]["exitCode"] == 1
    assert statuses(pod)["a"]["restartCount"] == 0 and statuses(pod)["a"]["ready"] is True
    assert condition(pod, "Ready") == "False"

    bump_restart(api, namespace, "crashy")
    pod = mark_ready(api, namespace, "crashy")
    assert {n: s["restartCount"] for n, s in statuses(pod).items()} == {"a": 1, "b": 2}
    assert condition(pod, "Ready") == "True"

    with pytest.raises(ValueError, match="no container 'nope'"):
        bump_restart(api, namespace, "crashy", container="nope")


def test_fail_pod(api: client.ApiClient, namespace: str) -> None:
    make_pod(api, namespace, "doomed")
    mark_ready(api, namespace, "doomed")
    pod = fail_pod(api, namespace, "doomed", exit_code=137, reason="OOMKilled")
    assert pod["status"]["phase"] == "Failed"
    assert statuses(pod)["main"]["state"]["terminated"]["exitCode"] == 137
    assert condition(pod, "Ready") == "False"
    # Failed pods are deleted at once even when bound to a node: nothing is left to stop.
    bind_failed = make_pod(api, namespace, "doomed-bound")
    bind(api, namespace, bind_failed["metadata"]["name"], "node-a")
    fail_pod(api, namespace, "doomed-bound")
    client.CoreV1Api(api).delete_namespaced_pod("doomed-bound", namespace)
    assert read_pod(api, namespace, "doomed-bound") is None


def test_bound_pod_terminates_only_when_finished(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    make_pod(api, namespace, "bound")
    bind(api, namespace, "bound", "node-a")
    mark_ready(api, namespace, "bound")
    core.delete_namespaced_pod("bound", namespace)
    pod = read_pod(api, namespace, "bound")
    assert pod is not None and "deletionTimestamp" in pod["metadata"]  # Terminating
    finish_deletion(api, namespace, "bound")
    assert read_pod(api, namespace, "bound") is None


def test_unbound_pod_is_deleted_at_once(api: client.ApiClient, namespace: str) -> None:
    make_pod(api, namespace, "loose")
    mark_ready(api, namespace, "loose")
    client.CoreV1Api(api).delete_namespaced_pod("loose", namespace)
    assert read_pod(api, namespace, "loose") is None


def test_kubelet_thread_readies_new_pods(
    api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    names = [f"replica-{i}" for i in range(3)]
    for name in names:
        make_pod(api, namespace, name)
    wait_for(lambda: pods_ready(api, namespace, names), what="3 pods to become Ready")


def test_kubelet_thread_delays_binds_and_selects(api: client.ApiClient, namespace: str) -> None:
    stand_in = Kubelet(
        api,
        namespace,
        ready_after=0.5,
        terminate_after=0.5,
        node_name="node-b",
        select=lambda pod: pod["metadata"]["name"] != "left-alone",
    )
    with stand_in:
        make_pod(api, namespace, "left-alone")
        t0 = time.monotonic()
        make_pod(api, namespace, "slow")
        wait_for(lambda: pods_ready(api, namespace, ["slow"]), what="pod slow to become Ready")
        assert time.monotonic() - t0 >= 0.5
        slow = read_pod(api, namespace, "slow")
        assert slow is not None and slow["spec"]["nodeName"] == "node-b"
        left = read_pod(api, namespace, "left-alone")
        assert left is not None and left["status"]["phase"] == "Pending"

        client.CoreV1Api(api).delete_namespaced_pod("slow", namespace)
        slow = read_pod(api, namespace, "slow")
        assert slow is not None and "deletionTimestamp" in slow["metadata"]
        wait_for(
            lambda: read_pod(api, namespace, "slow") is None,
            what="the graceful deletion of pod slow to be finished",
        )


# -- garbage collection -------------------------------------------------------------------


def test_owner_reference_cascade(
    api: client.ApiClient, namespace: str, control_plane: ControlPlane
) -> None:
    if not control_plane.garbage_collection:
        pytest.skip("kube-controller-manager's garbage collector does not run")
    core = client.CoreV1Api(api)
    owner_body: Any = {"metadata": {"name": "owner"}}
    owner = to_json(api, core.create_namespaced_config_map(namespace, owner_body))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    dependent: Any = {
        "metadata": {"name": "dependent", "ownerReferences": [ref]},
        "spec": {"containers": [{"name": "c", "image": "registry.test/c:1"}]},
    }
    core.create_namespaced_pod(namespace, dependent)
    core.delete_namespaced_config_map("owner", namespace)
    wait_for(
        lambda: read_pod(api, namespace, "dependent") is None,
        timeout=10,
        what="the garbage collector to delete the dependent pod",
    )


# -- Volcano PodGroup CRD -----------------------------------------------------------------

GROUP, VERSION, PLURAL = "scheduling.volcano.sh", "v1beta1", "podgroups"


def podgroup(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PodGroup",
        "metadata": {"name": name},
        "spec": spec,
    }


def create_podgroup(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def get_podgroup(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    got = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    assert isinstance(got, dict)
    return got


def test_podgroup_crd_accepts_subgroups_and_topology(api: client.ApiClient, namespace: str) -> None:
    body = podgroup(
        "serving-0",
        minMember=4,
        minTaskMember={"entry": 1, "worker": 3},
        minResources={"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 4},
        priorityClassName="high",
        networkTopology={"mode": "soft", "highestTierAllowed": 2},
        subGroupPolicy=[
            {
                "name": "role-a",
                "subGroupSize": 2,
                "minSubGroups": 1,
                "labelSelector": {"matchLabels": {"app": "serving"}},
                "matchLabelKeys": ["role-id"],
                "networkTopology": {"highestTierName": "rack"},
            }
        ],
    )
    create_podgroup(api, namespace, body)
    spec = get_podgroup(api, namespace, "serving-0")["spec"]
    assert spec["queue"] == "default"  # defaulted by the schema
    assert spec["networkTopology"] == {"mode": "soft", "highestTierAllowed": 2}
    sub = spec["subGroupPolicy"][0]
    assert sub["networkTopology"] == {"mode": "hard", "highestTierName": "rack"}
    assert sub["matchLabelKeys"] == ["role-id"]
    assert sub["subGroupSize"] == 2

    # The status subresource exists: status is written apart from spec.
    status: Any = {"status": {"phase": "Running", "running": 4}}
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "serving-0", status
    )
    assert get_podgroup(api, namespace, "serving-0")["status"] == status["status"]


@pytest.mark.parametrize(
    "topology",
    [{"mode": "medium"}, {"highestTierAllowed": 1, "highestTierName": "rack"}],
    ids=["bad-mode", "tier-and-tier-name"],
)
def test_podgroup_crd_rejects_bad_topology(
    api: client.ApiClient, namespace: str, topology: dict[str, Any]
) -> None:
    body = podgroup("bad", minMember=1, subGroupPolicy=[{"name": "s", "networkTopology": topology}])
    with pytest.raises(ApiException) as err:
        create_podgroup(api, namespace, body)
    assert err.value.status == 422


# -- the fixtures' own behaviour, seen from a separate pytest run -------------------------


def run_pytest(tmp_path: Path, test_source: str, env: dict[str, str]) -> str:
    """Run a one-test pytest session in tmp_path with a copy of this folder's conftest."""
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    env = {**env, "PYTHONPATH": str(HERE.parents[1])}  # for tests.integration.kubelet
    (tmp_path / "test_inner.py").write_text(test_source)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider", "-rs"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    return res.stdout + res.stderr


def test_failure_report_carries_component_logs(tmp_path: Path, control_plane: ControlPlane) -> None:
    if control_plane.log_dir is None:
        pytest.skip("the control plane's log folder is unknown")
    env = {**os.environ, REUSE_ENV: str(control_plane.kubeconfig)}
    out = run_pytest(tmp_path, "def test_fails(namespace):\n    assert False\n", env)
    assert "1 failed" in out, out
    assert "apiserver log (last" in out, out
    assert "etcd log (last" in out, out


def test_skipped_without_go(tmp_path: Path) -> None:
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not (Path(p) / "go").exists()
    )
    env = {k: v for k, v in os.environ.items() if k != REUSE_ENV}
    env["PATH"] = path
    out = run_pytest(tmp_path, "def test_needs_cluster(namespace):\n    pass\n", env)
    assert "1 skipped" in out, out
    assert "need the Go toolchain" in out, out
