"""`msctl run` as a process: killed and restarted, two replicas electing a leader."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from kubernetes import client

from sync import kube
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, Daemon
from tests.unit import specs


def five_by_five() -> dict[str, object]:
    """5 ServingGroups x 1 role instance x (1 entry + 4 workers) = 25 pods."""
    return specs.modelserving(replicas=5, roles=[specs.role("engine", 1, 4)])


def test_a_daemon_killed_mid_creation_converges_after_restart(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    daemon = Daemon(
        # 35 objects at 10 requests a second: seconds of creation to interrupt.
        control_plane.kubeconfig,
        namespace,
        tmp_path / "daemon.log",
        "--api-qps",
        "10",
    )
    daemon.start()
    try:
        cluster.wait(
            lambda: "ModelServing" in daemon.output() or "controller running" in daemon.output(),
            "the daemon up",
            30,
        )
        cluster.apply(five_by_five())
        cluster.wait(lambda: len(cluster.pods()) >= 3, "creation under way", 30)
        daemon.kill()
        at_kill = len(cluster.pods())
        assert 0 < at_kill < 25, f"the kill came too late to interrupt creation ({at_kill} pods)"
        daemon.start()
        cluster.wait(lambda: len(cluster.pods()) == 25, "25 pods", 60)
        time.sleep(2)  # anything extra would show up now
        names = sorted(cluster.pods())
        assert names == sorted(f"sample-{g}-engine-0-{k}" for g in range(5) for k in range(5))
        assert cluster.names(kube.PODGROUPS) == [f"sample-{g}" for g in range(5)]
        assert cluster.names(kube.SERVICES) == [f"sample-{g}-engine-0-0" for g in range(5)]
        with Kubelet(api, namespace):
            cluster.wait_available("sample", 5, 60)
    finally:
        assert daemon.stop() == 0, daemon.output()


def lease_holder(cluster: Cluster, namespace: str) -> str:
    try:
        lease = cluster.kube.get(kube.LEASES, namespace, "msctl-sync")
    except kube.NotFound:
        return ""
    return str(lease.get("spec", {}).get("holderIdentity") or "")


def test_leader_election_fails_over_when_the_leader_dies(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    # 5 s: a renew deadline of 3.3 s rides out a busy API server on a loaded CI machine.
    election = ("--leader-elect", "--lease-namespace", namespace, "--lease-duration", "5")
    first = Daemon(
        control_plane.kubeconfig,
        namespace,
        tmp_path / "a.log",
        *election,
        "--identity",
        "replica-a",
    )
    second = Daemon(
        control_plane.kubeconfig,
        namespace,
        tmp_path / "b.log",
        *election,
        "--identity",
        "replica-b",
    )
    first.start()
    try:
        cluster.wait(
            lambda: lease_holder(cluster, namespace) == "replica-a", "replica-a leading", 30
        )
        second.start()
        cluster.apply(specs.pd())
        with Kubelet(api, namespace):
            cluster.wait_available("sample", 1, 30)
            assert lease_holder(cluster, namespace) == "replica-a"
            first.kill()
            killed = time.monotonic()
            cluster.wait(
                lambda: lease_holder(cluster, namespace) == "replica-b", "replica-b leading", 15
            )
            took = time.monotonic() - killed
            # client-go semantics: at most a lease duration (5 s) and a retry period after the
            # last renewal; the rest is slack for a loaded CI machine.
            assert took < 5 + 2.5, f"took {took:.1f}s to take over a 5s lease"
            cluster.patch_ms("sample", {"spec": {"replicas": 2}})
            cluster.wait_available("sample", 2, 30)
        assert second.alive()
    finally:
        first.stop()
        assert second.stop() == 0, second.output()
    assert lease_holder(cluster, namespace) == ""  # released on SIGTERM


def test_probes_and_metrics_are_served(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    log = tmp_path / "daemon.log"
    daemon = Daemon(control_plane.kubeconfig, namespace, log, "--log-format", "json")
    daemon.start()
    try:
        port = cluster.wait(lambda: _port(daemon.output()), "the health port in the log", 30)
        base = f"http://127.0.0.1:{port}"
        cluster.wait(lambda: _get(base + "/readyz")[0] == 200, "ready", 30)
        assert _get(base + "/healthz")[0] == 200
        cluster.apply(specs.pd())
        cluster.wait(lambda: len(cluster.pods()) == 4, "pods", 30)
        cluster.wait(
            lambda: 'msctl_api_calls_total{verb="create"}' in _get(base + "/metrics")[1],
            "create calls counted",
            10,
        )
        metrics = _get(base + "/metrics")[1]
        assert "msctl_reconciles_total" in metrics
        assert "msctl_reconcile_duration_seconds_bucket" in metrics
        assert 'msctl_cached_objects{kind="Pod"} 4' in metrics
        # No kubelet: the groups never get ready, and the gauge counts the written condition.
        cluster.wait(
            lambda: (
                'msctl_modelservings{condition="Progressing",status="True"} 1.0'
                in _get(base + "/metrics")[1]
            ),
            "the ModelServing counted by condition",
            10,
        )
    finally:
        assert daemon.stop() == 0
    for line in daemon.output().splitlines():
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record)


def _port(output: str) -> int | None:
    for line in output.splitlines():
        if "serving /healthz" in line:
            return (
                int(json.loads(line)["port"])
                if line.startswith("{")
                else int(line.rsplit("port=", 1)[1])
            )
    return None


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
