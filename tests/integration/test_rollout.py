"""Rolling updates and failure recovery against the real API server (issue: rollouts)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from generator import naming
from generator.naming import FAILED_SINCE_ANNOTATION as FAILED_SINCE
from sync import kube
from tests.integration import kubelet as kl
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, Daemon, running_controller
from tests.unit import specs

NEW_IMAGE = "nginx:1.28"
BAD_IMAGE = "registry.invalid/no-such-image:1"


def rolling(replicas: int, max_unavailable: int, partition: int | None = None) -> dict[str, Any]:
    doc = specs.pd(replicas=replicas)
    config: dict[str, Any] = {"maxUnavailable": max_unavailable}
    if partition is not None:
        config["partition"] = partition
    doc["spec"]["rolloutStrategy"] = {
        "type": "ServingGroupRollingUpdate",
        "rollingUpdateConfiguration": config,
    }
    return doc


def set_image(cluster: Cluster, name: str, image: str, roles: tuple[int, ...] = (0, 1)) -> None:
    spec_roles = cluster.ms(name)["spec"]["template"]["roles"]
    for i in roles:
        for kind in ("entryTemplate", "workerTemplate"):
            spec_roles[i][kind]["spec"]["containers"][0]["image"] = image
    cluster.patch_ms(name, {"spec": {"template": {"roles": spec_roles}}})


def not_bad(pod: dict[str, Any]) -> bool:
    return all(c["image"] != BAD_IMAGE for c in pod["spec"]["containers"])


class Sampler:
    """Samples the cluster the whole time, recording the most groups ever unavailable."""

    def __init__(self, cluster: Cluster, name: str, replicas: int, size: int) -> None:
        self.cluster, self.name, self.replicas, self.size = cluster, name, replicas, size
        self.worst = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.worst = max(
                self.worst, self.cluster.groups_unavailable(self.name, self.replicas, self.size)
            )
            self.samples += 1
            self._stop.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)


def rolled_out(cluster: Cluster, name: str, replicas: int) -> bool:
    ms = cluster.ms(name)
    status = ms.get("status", {})
    return (
        status.get("observedGeneration") == ms["metadata"]["generation"]
        and status.get("updatedReplicas")
        == status.get("availableReplicas")
        == status.get("replicas")
        == replicas
        and status.get("currentRevision") == status.get("updateRevision")
    )


def revisions(cluster: Cluster) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for pod in cluster.pods().values():
        labels = pod["metadata"]["labels"]
        out.setdefault(int(labels[naming.GROUP_NAME_LABEL].rsplit("-", 1)[1]), set()).add(
            labels[naming.REVISION_LABEL]
        )
    return out


def test_an_image_change_never_takes_more_than_the_budget_down(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(rolling(4, 2))
    with (
        Kubelet(api, namespace, ready_after=1.0),
        running_controller(control_plane, namespace) as controller,
    ):
        old = cluster.wait_available("sample", 4)["status"]["updateRevision"]
        before = sum(controller.client.calls.values())
        with Sampler(cluster, "sample", 4, 4).running() as sampler:
            set_image(cluster, "sample", NEW_IMAGE)
            cluster.wait(lambda: rolled_out(cluster, "sample", 4), "the rollout done", 60)
        calls = sum(controller.client.calls.values()) - before
    assert sampler.worst <= 2, f"{sampler.worst} groups were unavailable at once"
    assert sampler.worst == 2, "the rollout never used its budget of 2"
    assert sampler.samples > 20
    new = cluster.ms("sample")["status"]["updateRevision"]
    assert new != old
    assert revisions(cluster) == {g: {new} for g in range(4)}
    assert all(p["spec"]["containers"][0]["image"] == NEW_IMAGE for p in cluster.pods().values())
    assert cluster.names(kube.REVISIONS) == [
        f"sample-{new}"
    ]  # history beyond current/update pruned
    assert calls / 16 < 6, f"{calls} API calls for 16 replaced pods"


def test_a_bad_image_replaces_exactly_the_budget_and_stops(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(rolling(6, 2))
    with Kubelet(api, namespace, select=not_bad), running_controller(control_plane, namespace):
        old = cluster.wait_available("sample", 6)["status"]["updateRevision"]
        uids = cluster.uids()
        set_image(cluster, "sample", BAD_IMAGE)
        cluster.wait(
            lambda: sum(1 for r in revisions(cluster).values() if old not in r) == 2,
            "2 groups replaced",
            30,
        )
        time.sleep(3)  # a wrong budget would replace more now
        by_group = revisions(cluster)
        replaced = sorted(g for g, r in by_group.items() if old not in r)
        assert replaced == [4, 5]
        kept = {
            n: u for n, u in cluster.uids().items() if not n.startswith(("sample-4-", "sample-5-"))
        }
        assert kept == {n: u for n, u in uids.items() if n in kept}
        status = cluster.ms("sample")["status"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["UpdateInProgress"]["status"] == "True"
        assert conditions["Available"]["status"] == "False"
        assert (status["updatedReplicas"], status["availableReplicas"]) == (2, 4)


def test_partition_3_of_5_updates_only_the_top_two(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(rolling(5, 1, partition=3))
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        old = cluster.wait_available("sample", 5)["status"]["updateRevision"]
        uids = cluster.uids()
        set_image(cluster, "sample", NEW_IMAGE)

        def done() -> bool:
            ms = cluster.ms("sample")
            status = ms["status"]
            return (
                status.get("observedGeneration") == ms["metadata"]["generation"]
                and status.get("updatedReplicas") == 2
                and status.get("availableReplicas") == 5
            )

        cluster.wait(done, "groups 3 and 4 updated", 60)
        new = cluster.ms("sample")["status"]["updateRevision"]
        assert revisions(cluster) == {0: {old}, 1: {old}, 2: {old}, 3: {new}, 4: {new}}
        protected = {
            n: u for n, u in uids.items() if n.startswith(("sample-0-", "sample-1-", "sample-2-"))
        }
        assert {n: u for n, u in cluster.uids().items() if n in protected} == protected
        status = cluster.ms("sample")["status"]
        assert (status["currentRevision"], status["updateRevision"]) == (old, new)
        assert (status["currentReplicas"], status["updatedReplicas"]) == (3, 2)
        assert cluster.names(kube.REVISIONS) == sorted([f"sample-{old}", f"sample-{new}"])


def test_role_rolling_update_touches_only_the_changed_role(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.modelserving(roles=[specs.role("prefill", 2, 1), specs.role("decode", 1, 1)])
    doc["spec"]["rolloutStrategy"] = {"type": "RoleRollingUpdate"}
    cluster.apply(doc)
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        decode = {n: u for n, u in cluster.uids().items() if "decode" in n}
        prefill = {n: u for n, u in cluster.uids().items() if "prefill" in n}
        set_image(cluster, "sample", NEW_IMAGE, roles=(0,))

        def prefill_replaced() -> bool:
            pods = cluster.pods()
            current = {n: p["metadata"]["uid"] for n, p in pods.items() if "prefill" in n}
            return (
                len(current) == 4
                and not set(current.values()) & set(prefill.values())
                and all(
                    p["spec"]["containers"][0]["image"] == NEW_IMAGE
                    for n, p in pods.items()
                    if "prefill" in n
                )
            )

        cluster.wait(prefill_replaced, "every prefill pod replaced", 60)
        cluster.wait_available("sample", 1)
        assert {n: u for n, u in cluster.uids().items() if "decode" in n} == decode


@pytest.mark.parametrize(
    ("policy", "replaced"),
    [
        ("RoleRecreate", {"sample-0-prefill-0-0", "sample-0-prefill-0-1"}),
        (
            "ServingGroupRecreate",
            {
                "sample-0-prefill-0-0",
                "sample-0-prefill-0-1",
                "sample-0-decode-0-0",
                "sample-0-decode-0-1",
            },
        ),
        ("None", {"sample-0-prefill-0-1"}),
    ],
)
def test_a_deleted_pod_is_recovered_by_the_policy(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    policy: str,
    replaced: set[str],
) -> None:
    cluster = Cluster(api, namespace)
    doc = specs.pd()
    doc["spec"]["recoveryPolicy"] = policy
    cluster.apply(doc)
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        uids = cluster.uids()
        cluster.kube.delete(kube.PODS, namespace, "sample-0-prefill-0-1")

        def recovered() -> dict[str, str] | None:
            now = cluster.uids()
            changed = {n for n in now if now[n] != uids.get(n)}
            return now if set(now) == set(uids) and changed == replaced else None

        cluster.wait(recovered, f"{policy} to replace {sorted(replaced)}", 30)
        cluster.wait_available("sample", 1)
        time.sleep(1)
        assert {n for n, u in cluster.uids().items() if u != uids[n]} == replaced


def graceful(grace: int) -> dict[str, Any]:
    doc = specs.pd()
    doc["spec"]["template"]["restartGracePeriodSeconds"] = grace
    doc["spec"]["recoveryPolicy"] = "RoleRecreate"
    return doc


def test_a_pod_that_recovers_inside_the_grace_period_is_left_alone(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(graceful(30))
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        uids = cluster.uids()
        kl.bump_restart(api, namespace, "sample-0-prefill-0-1")
        cluster.wait(
            lambda: (
                FAILED_SINCE
                in cluster.pods()["sample-0-prefill-0-1"]["metadata"].get("annotations", {})
            ),
            "the failure marked",
            10,
        )
        time.sleep(10)
        kl.mark_ready(api, namespace, "sample-0-prefill-0-1")
        cluster.wait(
            lambda: (
                FAILED_SINCE
                not in cluster.pods()["sample-0-prefill-0-1"]["metadata"].get("annotations", {})
            ),
            "the mark cleared",
            10,
        )
        time.sleep(25)  # past the end of the window
        assert cluster.uids() == uids


def test_a_pod_that_stays_failed_is_replaced_once_after_the_grace_period(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(graceful(30))
    with Kubelet(api, namespace), running_controller(control_plane, namespace):
        cluster.wait_available("sample", 1)
        uids = cluster.uids()
        kl.fail_pod(api, namespace, "sample-0-prefill-0-1")
        failed_at = time.monotonic()
        cluster.wait(
            lambda: (
                cluster.uids().get("sample-0-prefill-0-1")
                not in (None, uids["sample-0-prefill-0-1"])
            ),
            "the replacement",
            45,
        )
        took = time.monotonic() - failed_at
        assert 29 <= took <= 37, f"replaced after {took:.1f}s, grace is 30s"
        cluster.wait_available("sample", 1)
        time.sleep(2)
        now = cluster.uids()
        assert {n for n in now if now[n] != uids[n]} == {
            "sample-0-prefill-0-0",
            "sample-0-prefill-0-1",
        }
        deleting = [e for e in cluster.events() if e["reason"] == "RoleDeleting"]
        assert len(deleting) == 1


def test_a_daemon_restarted_mid_rollout_keeps_the_budget(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(rolling(4, 1))
    daemon = Daemon(control_plane.kubeconfig, namespace, tmp_path / "daemon.log")
    with Kubelet(api, namespace, ready_after=1.5):
        daemon.start()
        try:
            old = cluster.wait_available("sample", 4, 60)["status"]["updateRevision"]
            with Sampler(cluster, "sample", 4, 4).running() as sampler:
                set_image(cluster, "sample", NEW_IMAGE)
                cluster.wait(
                    lambda: any(old not in r for r in revisions(cluster).values()),
                    "the first group replaced",
                    30,
                )
                daemon.kill()
                time.sleep(1)
                daemon.start()
                cluster.wait(lambda: rolled_out(cluster, "sample", 4), "the rollout done", 90)
        finally:
            assert daemon.stop() == 0, daemon.output()
    assert sampler.worst == 1, f"{sampler.worst} groups down at once with maxUnavailable 1"


def test_a_daemon_restarted_mid_grace_window_keeps_the_window(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(graceful(20))
    daemon = Daemon(control_plane.kubeconfig, namespace, tmp_path / "daemon.log")
    with Kubelet(api, namespace):
        daemon.start()
        try:
            cluster.wait_available("sample", 1, 60)
            uid = cluster.uids()["sample-0-decode-0-1"]
            kl.fail_pod(api, namespace, "sample-0-decode-0-1")
            failed_at = time.monotonic()
            cluster.wait(
                lambda: (
                    FAILED_SINCE
                    in cluster.pods()["sample-0-decode-0-1"]["metadata"].get("annotations", {})
                ),
                "the failure marked",
                10,
            )
            daemon.kill()
            time.sleep(8)
            daemon.start()
            cluster.wait(
                lambda: cluster.uids().get("sample-0-decode-0-1") not in (None, uid),
                "the replacement",
                40,
            )
            took = time.monotonic() - failed_at
            assert 19 <= took <= 26, (
                f"replaced {took:.1f}s after failing; the window is 20s from the first sighting"
            )
        finally:
            assert daemon.stop() == 0, daemon.output()
