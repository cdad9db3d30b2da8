"""Backoff, the restart budget, the evidence and the progress deadline against the real API
server (docs/behaviour.md#backoff, #evidence, #role-status, #progress)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from generator import naming
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet, condition
from tests.integration.sync_helpers import Cluster, Daemon, running_controller
from tests.unit import specs

CRASH = (3, "CUDA error: out of memory (device 0)")
POD = "sample-0-engine-0-0"


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    assert binary is not None, "kubectl is needed for the documented commands"
    return subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def msctl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = str(Path(sys.executable).parent / "msctl")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=60)


def crashing_modelserving(namespace: str) -> dict[str, Any]:
    doc = specs.modelserving(replicas=1, roles=[specs.role("engine", 1, 0)])
    doc["metadata"]["namespace"] = namespace
    doc["metadata"]["annotations"] = {
        naming.BACKOFF_BASE_ANNOTATION: "2",
        naming.BACKOFF_MAX_ANNOTATION: "16",
        naming.RESTART_LIMIT_ANNOTATION: "5",
        naming.RESTART_WINDOW_ANNOTATION: "600",
    }
    return doc


def uid_of(cluster: Cluster) -> str | None:
    pod = cluster.pods().get(POD)
    return None if pod is None else str(pod["metadata"]["uid"])


def recreations(cluster: Cluster) -> int:
    units = cluster.ms("sample").get("status", {}).get("recovery", {}).get("units", [{}])
    return int(units[0].get("recreations", 0))


def backing_off(cluster: Cluster, recreations: int) -> bool:
    units = cluster.ms("sample").get("status", {}).get("recovery", {}).get("units", [{}])
    return bool(units[0].get("state") == "BackingOff" and units[0]["recreations"] == recreations)


def next_incarnation(cluster: Cluster, after: str | None, timeout: float) -> tuple[str, float]:
    """Wait for a pod named POD with a UID other than `after`; its UID and when it was seen."""
    found = cluster.wait(
        lambda: (u := uid_of(cluster)) is not None and u != after and u,
        f"a new incarnation of {POD}",
        timeout,
    )
    return str(found), time.monotonic()


def test_a_pod_failing_on_every_start_backs_off_survives_a_restart_then_fails(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    kubeconfig = Path(control_plane.kubeconfig)
    daemon = Daemon(kubeconfig, namespace, tmp_path / "daemon.log")
    with Kubelet(api, namespace, crash=lambda pod: CRASH):
        daemon.start()
        try:
            cluster.apply(crashing_modelserving(namespace))
            next_incarnation(cluster, None, 30)
            # The first recreation follows the first crash at once, often before the first
            # pod is even seen here: count from the pod of that first recreation.
            uid = str(
                cluster.wait(
                    lambda: recreations(cluster) >= 1 and uid_of(cluster),
                    "the first recreation",
                    30,
                )
            )
            seen = [time.monotonic()]
            for n in range(1, 5):  # four more recreations, 2, 4, 8 and 16 s apart
                if n == 4:  # kill the daemon inside the 16 s backoff, start it again
                    cluster.wait(lambda: backing_off(cluster, 4), "the 16 s backoff", 20)
                    daemon.kill()
                    time.sleep(2)
                    daemon.start()
                uid, at = next_incarnation(cluster, uid, 60)
                seen.append(at)
            gaps = [round(b - a, 1) for a, b in itertools.pairwise(seen)]
            print(f"\nrecreation gaps (s): {gaps}")
            # The backoff counts from the reconcile that decided the recreation; the pods are
            # seen here one API round trip or two later, so a gap may look shorter by that,
            # and longer on a loaded machine.
            for gap, base in zip(gaps, (2, 4, 8, 16), strict=True):
                assert base - 0.5 <= gap < base + 5, gaps
            ms = cluster.wait(
                lambda: (
                    (m := cluster.ms("sample"))
                    and m.get("status", {}).get("recovery", {}).get("units", [{}])[0].get("state")
                    == "Failed"
                    and m
                ),
                "the role instance marked Failed",
                30,
            )
            unit = ms["status"]["recovery"]["units"][0]
            assert (unit["roleId"], unit["recreations"]) == ("engine-0", 5)
            time.sleep(3)
            assert uid_of(cluster) == uid, "a Failed unit is not recreated"
            pod = cluster.pods()[POD]
            assert pod["status"]["phase"] == "Failed"  # the evidence stays
            last = ms["status"]["recovery"]["lastFailures"][-1]
            assert last["containers"][0]["exitCode"] == 3
            assert last["containers"][0]["message"] == CRASH[1]
            warnings = {
                e["reason"]: e["message"] for e in cluster.events() if e["type"] == "Warning"
            }
            assert "exit code 3" in warnings["PodFailed"] and CRASH[1] in warnings["PodFailed"]
            exhausted = warnings["RestartBudgetExhausted"]
            assert CRASH[1] in exhausted and naming.RESET_FAILURES_ANNOTATION in exhausted
            waited = kubectl(
                kubeconfig,
                "-n",
                namespace,
                "wait",
                "modelserving/sample",
                "--for=condition=Stalled",
                "--timeout=20s",
            )
            assert waited.returncode == 0, waited.stderr
            stalled = {c["type"]: c for c in ms["status"]["conditions"]}["Stalled"]
            assert stalled["reason"] == "RestartBudgetExhausted"
            # msctl plan says what the daemon holds back, and refuses a bad setting
            path = tmp_path / "ms.yaml"
            doc = crashing_modelserving(namespace)
            path.write_text(yaml.safe_dump(doc))
            shown = msctl("plan", "-f", str(path), "--kubeconfig", str(kubeconfig))
            assert shown.returncode == 0, shown.stderr
            assert "settings (msctl.dev/): backoff 2s doubling to 16s" in shown.stdout
            assert "restart limit 5 in 600s" in shown.stdout
            assert "note: role instance engine-0 of ServingGroup 0 is Failed" in shown.stdout
            doc["metadata"]["annotations"][naming.RESTART_LIMIT_ANNOTATION] = "0"
            path.write_text(yaml.safe_dump(doc))
            refused = msctl("plan", "-f", str(path), "--kubeconfig", str(kubeconfig))
            assert refused.returncode == 2
            assert 'metadata.annotations["msctl.dev/restart-limit"]' in refused.stderr
            # the documented one-line reset
            reset = kubectl(
                kubeconfig,
                "-n",
                namespace,
                "annotate",
                "modelserving",
                "sample",
                f"{naming.RESET_FAILURES_ANNOTATION}=1",
                "--overwrite",
            )
            assert reset.returncode == 0, reset.stderr
            next_incarnation(cluster, uid, 30)
        finally:
            assert daemon.stop() == 0, daemon.output()


def test_a_rollout_to_a_bad_image_reports_the_deadline_and_names_the_stuck_group(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    kubeconfig = Path(control_plane.kubeconfig)
    bad = "registry.invalid/vllm:missing"
    doc = specs.modelserving(replicas=3, roles=[specs.role("engine", 1, 1)])
    doc["metadata"]["namespace"] = namespace
    doc["metadata"]["annotations"] = {naming.PROGRESS_DEADLINE_ANNOTATION: "6"}
    cluster.apply(doc)

    def image_is_bad(pod: dict[str, Any]) -> bool:
        return bool(pod["spec"]["containers"][0]["image"] == bad)

    with (
        Kubelet(api, namespace, pull_fails=image_is_bad),
        running_controller(control_plane, namespace),
    ):
        cluster.wait_available("sample", 3)
        cluster.patch_ms(
            "sample",
            {
                "spec": {
                    "template": {
                        "roles": [
                            {
                                **doc["spec"]["template"]["roles"][0],
                                "entryTemplate": specs.pod_template(bad),
                            }
                        ]
                    }
                }
            },
        )

        def roles_match_pods() -> bool:
            ms = cluster.ms("sample")
            roles = {r["name"]: r for r in ms.get("status", {}).get("roles", ())}
            pods = [p for p in cluster.pods().values() if "deletionTimestamp" not in p["metadata"]]
            entries = [p for p in pods if p["metadata"]["labels"].get(naming.ENTRY_LABEL) == "true"]
            instances = {p["metadata"]["labels"][naming.GROUP_NAME_LABEL] for p in entries}
            by_group: dict[str, list[dict[str, Any]]] = {}
            for p in pods:
                by_group.setdefault(p["metadata"]["labels"][naming.GROUP_NAME_LABEL], []).append(p)
            ready = sum(
                1
                for g in by_group.values()
                if len(g) == 2 and all(condition(p, "Ready") == "True" for p in g)
            )
            revision = ms["status"]["updateRevision"]
            updated = sum(
                1
                for g in by_group.values()
                if all(p["metadata"]["labels"][naming.REVISION_LABEL] == revision for p in g)
            )
            want = {"desired": 3, "current": len(instances), "ready": ready, "updated": updated}
            return {k: roles.get("engine", {}).get(k) for k in want} == want

        cluster.wait(roles_match_pods, "status.roles[] to match the pods mid-rollout", 30)
        waited = kubectl(
            kubeconfig,
            "-n",
            namespace,
            "wait",
            "modelserving/sample",
            "--for=jsonpath={.status.conditions[?(@.type=='Progressing')].reason}"
            "=ProgressDeadlineExceeded",
            "--timeout=40s",
        )
        assert waited.returncode == 0, waited.stderr
        shown = kubectl(kubeconfig, "-n", namespace, "get", "modelserving", "sample", "-o", "yaml")
        ms = yaml.safe_load(shown.stdout)
        print("\n" + yaml.safe_dump({"status": ms["status"]}, sort_keys=False))
        progressing = {c["type"]: c for c in ms["status"]["conditions"]}["Progressing"]
        assert progressing["reason"] == "ProgressDeadlineExceeded"
        assert "stuck groups: 2 (pod sample-2-engine-0-0" in progressing["message"]
        assert "ImagePullBackOff" in progressing["message"] and bad in progressing["message"]
        stalled = kubectl(
            kubeconfig,
            "-n",
            namespace,
            "wait",
            "modelserving/sample",
            "--for=condition=Stalled",
            "--timeout=10s",
        )
        assert stalled.returncode == 0, stalled.stderr
        wide = kubectl(kubeconfig, "-n", namespace, "get", "modelserving", "sample", "-o", "wide")
        print(wide.stdout)
        assert "ProgressDeadlineExceeded" in wide.stdout.splitlines()[1]  # the Stalled column
        assert roles_match_pods()
