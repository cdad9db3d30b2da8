"""`msctl plan` and `msctl diff --kubeconfig` against live objects: they say, never write."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, running_controller
from tests.integration.test_rollout import rolling

MSCTL = str(Path(sys.executable).parent / "msctl")


def msctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MSCTL, *args], capture_output=True, text=True, check=False, timeout=60)


def write(tmp: Path, doc: dict[str, Any], namespace: str) -> Path:
    body = copy.deepcopy(doc)
    body["metadata"]["namespace"] = namespace
    path = tmp / "ms.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_plan_of_a_new_modelserving_lists_every_creation(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    done = msctl(
        "plan",
        "-f",
        str(write(tmp_path, rolling(2, 1), namespace)),
        "--kubeconfig",
        str(control_plane),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"ModelServing {namespace}/sample: revision ")
    assert lines[0].endswith("(not in the cluster yet)")
    assert sum("create Pod " in line for line in lines) == 8
    assert sum("create PodGroup " in line for line in lines) == 2
    assert sum("create Service " in line for line in lines) == 4
    # 15 objects and 4 RoleCreating events
    assert lines[-1] == "19 step(s), 15 write(s); this command changed nothing"


def test_plan_shows_a_pending_rollout_as_waves_and_diff_the_patches(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    doc = rolling(4, 2)
    cluster.apply(doc)
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 4)
    before = cluster.uids()
    changed = copy.deepcopy(doc)
    for role in changed["spec"]["template"]["roles"]:
        for kind in ("entryTemplate", "workerTemplate"):
            role[kind]["spec"]["containers"][0]["image"] = "nginx:1.28"
    changed["spec"]["plugins"] = [
        {"name": "demo-pod-tweaks", "config": {"annotations": {"team": "x"}}}
    ]
    path = write(tmp_path, changed, namespace)
    plan = msctl("plan", "-f", str(path), "--kubeconfig", str(control_plane))
    assert plan.returncode == 0, plan.stderr
    text = plan.stdout
    assert (
        "rollout (ServingGroupRollingUpdate, maxUnavailable 2),"
        " if each wave's replacements become ready:"
    ) in text
    assert (
        "  wave 1: sample-3, sample-2 (4 groups, at least 2 must stay available"
        " (maxUnavailable 2), 0 updated group(s) not ready yet)"
    ) in text
    assert "  wave 2: sample-1, sample-0 (" in text
    assert "delete PodGroup sample-3: rolling update to revision" in text
    diff = msctl("diff", "-f", str(path), "--kubeconfig", str(control_plane))
    assert diff.returncode == 0, diff.stderr
    assert (
        "~ Pod sample-0-prefill-0-0: pod labels or annotations differ from the spec" in diff.stdout
    )
    assert '"path": "/metadata/annotations/team"' in diff.stdout
    assert "- Pod sample-3-prefill-0-0:" in diff.stdout
    assert cluster.uids() == before  # neither command wrote anything


def test_diff_of_an_unchanged_modelserving_says_so(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    doc = rolling(1, 1)
    cluster.apply(doc)
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
    done = msctl(
        "diff", "-f", str(write(tmp_path, doc, namespace)), "--kubeconfig", str(control_plane)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"no differences: the cluster matches {namespace}/sample\n"


def test_an_unreachable_cluster_is_an_api_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "x", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
            }
        )
    )
    done = msctl(
        "plan",
        "-f",
        str(write(tmp_path, rolling(1, 1), "default")),
        "--kubeconfig",
        str(kubeconfig),
    )
    assert done.returncode == 5
    assert done.stderr.startswith("the Kubernetes API failed:")
    assert "Traceback" not in done.stderr


def test_plan_json_holds_every_write_the_daemon_would_make_the_status_included(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    doc = rolling(2, 1)
    cluster.apply(doc)  # in the cluster, but no daemon has seen it: no objects, no status
    source = str(write(tmp_path, doc, namespace))
    done = msctl("plan", "-f", source, "--kubeconfig", str(control_plane), "-o", "json")
    assert done.returncode == 0, done.stderr
    (plan,) = json.loads(done.stdout)
    assert plan["modelServing"] == f"{namespace}/sample"
    assert plan["exists"] is True
    verbs = [s["verb"] for s in plan["steps"]]
    assert verbs.count("create") == 15
    assert verbs[-1] == "status"  # the last wave: after every object is made
    status = plan["steps"][-1]["status"]
    assert (status["replicas"], status["availableReplicas"]) == (2, 0)
    assert status["updateRevision"] == plan["revision"]
    pods = [s["object"] for s in plan["steps"] if s["verb"] == "create" and s["kind"] == "Pod"]
    assert {p["metadata"]["namespace"] for p in pods} == {namespace}
    text = msctl("plan", "-f", source, "--kubeconfig", str(control_plane))
    assert "write status of ModelServing sample: " in text.stdout
    assert cluster.pods() == {}  # plan writes nothing


def test_the_offline_preview_plans_what_the_live_plan_plans_over_the_rolled_out_spec(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    doc = rolling(4, 2)
    cluster.apply(doc)
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 4)
    changed = copy.deepcopy(doc)
    for role in changed["spec"]["template"]["roles"]:
        for kind in ("entryTemplate", "workerTemplate"):
            role[kind]["spec"]["containers"][0]["image"] = "nginx:1.28"
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = write(tmp_path / "old", doc, namespace)
    new = write(tmp_path / "new", changed, namespace)
    live = msctl("plan", "-f", str(new), "--kubeconfig", str(control_plane))
    offline = msctl("plan", "-f", str(new), "--from", str(old))
    assert live.returncode == offline.returncode == 0, live.stderr + offline.stderr

    def planned(text: str) -> list[str]:
        # The steps and the wave forecast; the status write differs in what it changes from
        # (the live status was written over time, the offline one is computed at once).
        lines = text.split("simulated rollout", maxsplit=1)[0].splitlines()[1:]
        # "look again" counts down to the progress deadline from when each was planned.
        skip = ("write status of", "step(s)", "then look again")
        return [line for line in lines if not any(s in line for s in skip)]

    assert planned(offline.stdout) == planned(live.stdout)
    assert offline.stdout.splitlines()[-1] == live.stdout.splitlines()[-1]  # the counts
    assert "  wave 2 at 1m30s: replace sample-1, sample-0; ready at 3m" in offline.stdout


def test_plan_shows_a_terminating_instance_and_a_protected_group_for_what_they_are(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    doc = rolling(2, 1, partition=1)
    cluster.apply(doc)
    changed = copy.deepcopy(doc)
    for role in changed["spec"]["template"]["roles"]:
        for kind in ("entryTemplate", "workerTemplate"):
            role[kind]["spec"]["containers"][0]["image"] = "nginx:1.28"
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        ms = cluster.wait_available("sample", 2)
        old = ms["status"]["currentRevision"]
        cluster.patch_ms("sample", {"spec": {"template": changed["spec"]["template"]}})
        cluster.wait(
            lambda: (
                cluster.ms("sample")["status"].get("updatedReplicas") == 1
                and cluster.ms("sample")["status"].get("availableReplicas") == 2
            ),
            "group 1 updated",
        )
    core = client.CoreV1Api(api)
    held = "sample-1-decode-0-1"
    core.patch_namespaced_pod(held, namespace, {"metadata": {"finalizers": ["example.com/hold"]}})
    core.delete_namespaced_pod(held, namespace)
    try:
        done = msctl(
            "plan",
            "-f",
            str(write(tmp_path, changed, namespace)),
            "--kubeconfig",
            str(control_plane),
        )
        assert done.returncode == 0, done.stderr
        notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
        assert notes == [
            "note: rollout: no outdated group outside the partition",
            f"note: ServingGroup sample-0 is protected by the partition: kept at revision {old}"
            " (roles and counts from its ControllerRevision)",
            "note: decode-0 in ServingGroup sample-1 is terminating: set aside, its ordinal"
            " reserved, the group Scaling until it is gone",
        ]
        assert "sample-1-decode-0" not in done.stdout.split("note: ")[0]  # left alone
    finally:
        core.patch_namespaced_pod(
            held, namespace, [{"op": "remove", "path": "/metadata/finalizers"}]
        )
