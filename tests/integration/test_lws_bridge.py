"""The LWS bridge against the real LeaderWorkerSet CRD (sigs.k8s.io/lws, installed by the test
control plane): LeaderWorkerSets become ModelServings and pods, and stay in step with them."""

from __future__ import annotations

import copy
import itertools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from generator import naming
from generator.templating import TemplateSet
from sync import kube
from sync.core.lws import BRIDGED, NOT_HONOURED
from sync.lws_bridge import LwsBridge
from sync.shards import shard_of
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, Daemon, running_controller
from tests.integration.test_preview import msctl, write


def lws(
    name: str = "lws", *, replicas: int = 2, size: int = 4, leader: bool = True
) -> dict[str, Any]:
    def template(image: str, role: str) -> dict[str, Any]:
        return {
            "metadata": {"labels": {"app": role}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        }

    lwt: dict[str, Any] = {"size": size, "workerTemplate": template("nginx:1.27", "worker")}
    if leader:
        lwt["leaderTemplate"] = template("nginx:1.27-leader", "leader")
    return {
        "apiVersion": naming.LWS_API_VERSION,
        "kind": naming.LWS_KIND,
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "leaderWorkerTemplate": lwt},
    }


class LwsCluster(Cluster):
    def create_lws(self, doc: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(doc)
        body["metadata"]["namespace"] = self.namespace
        return self.kube.create(kube.LEADERWORKERSETS, self.namespace, body)

    def lws(self, name: str) -> dict[str, Any]:
        return self.kube.get(kube.LEADERWORKERSETS, self.namespace, name)

    def patch_lws(self, name: str, patch: dict[str, Any], sub: str = "") -> dict[str, Any]:
        return self.kube.merge_patch(kube.LEADERWORKERSETS, self.namespace, name, patch, sub=sub)

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        conditions = self.lws(name).get("status", {}).get("conditions", ())
        return next((c for c in conditions if c["type"] == kind), None)

    def wait_lws_ready(self, name: str, replicas: int, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.lws(name)
            status = obj.get("status", {})
            ok = status.get("replicas") == status.get("readyReplicas") == replicas
            return obj if ok else None

        found: dict[str, Any] = self.wait(ready, f"LWS {name} with {replicas} ready", timeout)
        return found


@contextmanager
def running_bridge(kubeconfig: Any, namespace: str) -> Iterator[LwsBridge]:
    client_ = kube.Kube.connect(os.fspath(kubeconfig), pool=8)
    bridge = LwsBridge(client_, TemplateSet(), namespace)
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.stop()
        client_.close()


@contextmanager
def serving(control_plane: ControlPlane, api: client.ApiClient, namespace: str) -> Iterator[None]:
    """The ModelServing controller, the bridge and a kubelet, all for `namespace`."""
    with (
        Kubelet(api, namespace),
        running_controller(control_plane, namespace),
        running_bridge(control_plane, namespace),
    ):
        yield


def lws_labels(pod: dict[str, Any]) -> dict[str, str]:
    labels = pod["metadata"]["labels"]
    return {k: v for k, v in labels.items() if k.startswith(naming.LWS_LABEL_PREFIX)}


@pytest.mark.parametrize(
    ("leader", "size"),
    [(True, 4), (False, 4), (True, 1), (False, 1)],
    ids=lambda v: f"leader={v}" if isinstance(v, bool) else f"size={v}",
)
def test_a_leaderworkerset_becomes_a_modelserving_and_labelled_pods(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, leader: bool, size: int
) -> None:
    cluster = LwsCluster(api, namespace)
    created = cluster.create_lws(lws(size=size, leader=leader))
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 2)
    ms = cluster.ms("lws")
    assert ms["metadata"]["ownerReferences"] == [
        {
            "apiVersion": naming.LWS_API_VERSION,
            "kind": naming.LWS_KIND,
            "name": "lws",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    [role] = ms["spec"]["template"]["roles"]
    assert (role["name"], role["replicas"], role["workerReplicas"]) == ("default", 1, size - 1)
    entry_image = "nginx:1.27-leader" if leader else "nginx:1.27"
    assert role["entryTemplate"]["spec"]["containers"][0]["image"] == entry_image
    assert ms["spec"]["plugins"] == [{"name": naming.LWS_PLUGIN, "type": "BuiltIn"}]
    pods = cluster.pods()
    assert len(pods) == 2 * size
    for group in range(2):
        for index in range(size):
            pod = pods[naming.pod_name("lws", group, "default", 0, index)]
            labels = lws_labels(pod)
            assert labels[naming.LWS_NAME_LABEL] == "lws"
            assert labels[naming.LWS_GROUP_INDEX_LABEL] == str(group)
            assert labels[naming.LWS_WORKER_INDEX_LABEL] == str(index)
            image = entry_image if index == 0 else "nginx:1.27"
            assert pod["spec"]["containers"][0]["image"] == image
    status = cluster.lws("lws")["status"]
    assert status["hpaPodSelector"] == naming.lws_leader_selector("lws")
    assert cluster.condition("lws", BRIDGED)["status"] == "True"
    assert cluster.condition("lws", NOT_HONOURED)["status"] == "False"


def test_scaling_through_the_lws_scale_subresource_reaches_the_pods(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = LwsCluster(api, namespace)
    cluster.create_lws(lws(replicas=1, size=2))
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 1)
        cluster.patch_lws("lws", {"spec": {"replicas": 3}}, sub="scale")
        cluster.wait_lws_ready("lws", 3)
        scale = cluster.kube.get(kube.LEADERWORKERSETS, namespace, "lws/scale")
        assert scale["status"]["replicas"] == 3
        assert scale["status"]["selector"] == naming.lws_leader_selector("lws")
        assert cluster.ms("lws")["spec"]["replicas"] == 3
        assert len(cluster.live_pod_names()) == 6
        cluster.patch_lws("lws", {"spec": {"replicas": 1}}, sub="scale")
        cluster.wait_lws_ready("lws", 1)
        cluster.wait(lambda: len(cluster.live_pod_names()) == 2, "scaled down to 2 pods")


def test_a_spec_change_of_the_lws_rolls_the_groups(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = LwsCluster(api, namespace)
    cluster.create_lws(lws(replicas=2, size=2))
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 2)
        before = cluster.uids()
        worker = {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}
        cluster.patch_lws("lws", {"spec": {"leaderWorkerTemplate": {"workerTemplate": worker}}})

        def rolled() -> bool:
            pods = [p for p in cluster.pods().values() if "deletionTimestamp" not in p["metadata"]]
            workers = [p for p in pods if lws_labels(p)[naming.LWS_WORKER_INDEX_LABEL] != "0"]
            return len(pods) == 4 and all(
                p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in workers
            )

        cluster.wait(rolled, "every worker on nginx:1.28", 60)
        cluster.wait_lws_ready("lws", 2)
        after = cluster.uids()
        assert not set(before.values()) & set(after.values())
        ms = cluster.ms("lws")
        assert ms["status"]["updatedReplicas"] == 2


def test_an_edited_bridged_modelserving_is_put_back(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = LwsCluster(api, namespace)
    cluster.create_lws(lws(replicas=1, size=2))
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 1)
        mapped = cluster.ms("lws")["spec"]
        edited = cluster.patch_ms("lws", {"spec": {"replicas": 4, "recoveryPolicy": "None"}})
        assert edited["spec"]["replicas"] == 4
        cluster.wait(lambda: cluster.ms("lws")["spec"] == mapped, "the mapped spec restored")
        reasons = {
            e["reason"]
            for e in cluster.events()
            if e["involvedObject"]["kind"] == "LeaderWorkerSet"
        }
        assert "ModelServingSpecRestored" in reasons
        # Groups made while the edit stood are scaled away again.
        cluster.wait(lambda: len(cluster.live_pod_names()) == 2, "back to one group of 2 pods")
        cluster.wait_lws_ready("lws", 1)


def test_deleting_the_lws_removes_everything(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    if not control_plane.garbage_collection:
        pytest.skip("needs the garbage collector (kube-controller-manager)")
    cluster = LwsCluster(api, namespace)
    cluster.create_lws(lws(replicas=2, size=2))
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 2)
        cluster.kube.delete(kube.LEADERWORKERSETS, namespace, "lws")

        def gone() -> bool:
            return not cluster.objects(kube.MODELSERVINGS) and not cluster.pods()

        cluster.wait(gone, "the ModelServing and its pods collected", 60)
        assert not cluster.objects(kube.SERVICES)


def test_an_unsupported_field_is_reported_with_an_event_and_a_condition(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = LwsCluster(api, namespace)
    doc = lws(replicas=1, size=2)
    doc["spec"]["startupPolicy"] = "LeaderReady"
    doc["spec"]["networkConfig"] = {"subdomainPolicy": "Shared"}
    cluster.create_lws(doc)
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 1)
        condition = cluster.wait(
            lambda: cluster.condition("lws", NOT_HONOURED), "the FieldsNotHonoured condition"
        )
        assert condition["status"] == "True"
        assert (
            "spec.startupPolicy=LeaderReady is not honoured; instead: LeaderCreated"
            in (condition["message"])
        )
        assert "spec.networkConfig.subdomainPolicy=Shared" in condition["message"]

        def event() -> dict[str, Any] | None:
            return next((e for e in cluster.events() if e["reason"] == NOT_HONOURED), None)

        found = cluster.wait(event, "the FieldsNotHonoured event")
        assert found["involvedObject"]["kind"] == naming.LWS_KIND
        assert found["type"] == "Warning"
        assert found["message"] == condition["message"]
        # Honoured once the field is cleared.
        cluster.patch_lws(
            "lws", {"spec": {"startupPolicy": "LeaderCreated", "networkConfig": None}}
        )
        cluster.wait(
            lambda: cluster.condition("lws", NOT_HONOURED)["status"] == "False",
            "the condition cleared",
        )


def test_the_bridge_starts_and_stops_with_the_lws_crd(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = LwsCluster(api, namespace)
    with running_bridge(control_plane, namespace) as bridge:
        cluster.wait(lambda: bridge.active, "the bridge active")
        crd = bridge.crds.get("", naming.LWS_CRD)
        assert crd is not None
        # The CRD going away, as the bridge's CRD informer would report it (deleting the real
        # CRD would take the other tests' LeaderWorkerSets with it).
        bridge.crds.apply_event("DELETED", crd)
        bridge._on_crd("DELETED", crd)
        assert not bridge.active
        cluster.create_lws(lws(replicas=1, size=1))
        with Kubelet(api, namespace), running_controller(control_plane, namespace):
            bridge.crds.apply_event("ADDED", crd)
            bridge._on_crd("ADDED", crd)
            assert bridge.active
            cluster.wait_lws_ready("lws", 1)


def test_msctl_run_serves_leaderworkersets_only_with_lws_bridge(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = LwsCluster(api, namespace)
    cluster.create_lws(lws(replicas=1, size=2))
    plain = Daemon(control_plane.kubeconfig, namespace, tmp_path / "plain.log").start()
    try:
        cluster.wait(lambda: "controller running" in plain.output(), "the daemon up")
        # Two seconds is many reconciles: without the flag, nothing serves the LWS.
        with pytest.raises(TimeoutError):
            cluster.wait(lambda: cluster.objects(kube.MODELSERVINGS), "a ModelServing", 2.0)
    finally:
        assert plain.stop() == 0, plain.output()
    bridged = Daemon(
        control_plane.kubeconfig, namespace, tmp_path / "bridged.log", "--lws-bridge"
    ).start()
    try:
        with Kubelet(api, namespace):
            cluster.wait_lws_ready("lws", 1)
        assert "LWS bridge started" in bridged.output()
    finally:
        assert bridged.stop() == 0, bridged.output()


def test_plan_and_diff_of_an_lws_document_preview_what_the_bridge_serves(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = LwsCluster(api, namespace)
    doc = lws(replicas=1, size=2)
    path = write(tmp_path, doc, namespace)
    plan = msctl("plan", "-f", str(path), "--kubeconfig", str(control_plane))
    assert plan.returncode == 0, plan.stderr
    assert f"ModelServing {namespace}/lws:" in plan.stdout
    assert "create Pod lws-0-default-0-1" in plan.stdout
    cluster.create_lws(doc)
    with serving(control_plane, api, namespace):
        cluster.wait_lws_ready("lws", 1)
    diff = msctl("diff", "-f", str(path), "--kubeconfig", str(control_plane))
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout == f"no differences: the cluster matches {namespace}/lws\n"


def logged_keys(daemon: Daemon, prefix: str) -> set[str]:
    """The keys of the daemon's JSON log lines whose message starts with `prefix`."""
    keys: set[str] = set()
    for line in daemon.output().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("msg", "").startswith(prefix) and "key" in doc:
                keys.add(doc["key"])
    return keys


def shard_holders(cluster: Cluster, shards: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for shard in range(shards):
        try:
            lease = cluster.kube.get(kube.LEASES, cluster.namespace, f"msctl-sync-shard-{shard}")
        except kube.NotFound:
            continue
        out[shard] = str(lease["spec"].get("holderIdentity") or "")
    return out


def test_sharded_daemons_bridge_each_leaderworkerset_on_the_holder_of_its_shard(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Three replicas, `--shards 3 --lws-bridge`: each LWS is bridged, and its ModelServing
    reconciled, by the replica holding the shard of its namespace/name, and by no other; an
    LWS changed while its shard has no holder is bridged by the replica that takes it over."""
    shards, replicas = 3, ("bridge-a", "bridge-b", "bridge-c")
    cluster = LwsCluster(api, namespace)
    options = ("--shards", str(shards), "--lws-bridge", "--lease-namespace", namespace)
    options += ("--lease-duration", "4", "--log-format", "json")
    daemons = {
        name: Daemon(control_plane.kubeconfig, namespace, tmp_path / f"{name}.log", *options,
                     "--identity", name)
        for name in replicas
    }  # fmt: skip
    keys: dict[str, int] = {}  # at least 9 LWS, and some on every shard
    for i in itertools.count():
        if len(keys) >= 9 and set(keys.values()) == set(range(shards)):
            break
        keys[f"{namespace}/lws-{i}"] = shard_of(f"{namespace}/lws-{i}", shards)
    names = [key.split("/", 1)[1] for key in keys]
    for daemon in daemons.values():
        daemon.start()
    try:
        cluster.wait(
            lambda: sorted(shard_holders(cluster, shards).values()) == sorted(replicas),
            "one shard per replica",
            60,
        )
        owner = shard_holders(cluster, shards)
        for name in names:
            cluster.create_lws(lws(name, replicas=1, size=2))
        with Kubelet(api, namespace):
            for name in names:
                cluster.wait_lws_ready(name, 1, 90)
            for what in ("bridged:", "reconciled:"):
                writers = {k: [n for n, d in daemons.items() if k in logged_keys(d, what)]
                           for k in keys}  # fmt: skip
                wrong = {k: w for k, w in writers.items() if w != [owner[keys[k]]]}
                assert not wrong, f"{what} not (only) by the shard's holder: {wrong}"
            created = sorted(
                (e["involvedObject"]["name"], e.get("reportingInstance"))
                for e in cluster.events()
                if e["reason"] == "ModelServingCreated"
            )
            assert created == sorted((n, owner[keys[f"{namespace}/{n}"]]) for n in names)

            # A replica dies; an LWS of its shard is scaled before the shard expires, so only
            # the resync of the replica taking the shard over brings the change in.
            dead = owner[0]
            moved = next(n for n in names if keys[f"{namespace}/{n}"] == 0)
            daemons[dead].kill()
            cluster.patch_lws(moved, {"spec": {"replicas": 2}}, sub="scale")
            assert shard_holders(cluster, shards)[0] == dead  # not yet expired
            started = time.monotonic()
            cluster.wait_lws_ready(moved, 2, 60)
            heir = shard_holders(cluster, shards)[0]
            assert heir not in ("", dead)
            print(f"LWS bridged by the new holder {time.monotonic() - started:.1f}s after the kill")
            key = f"{namespace}/{moved}"
            assert key in logged_keys(daemons[heir], "bridged:")
        for name in replicas:
            if name != dead:
                assert daemons[name].alive(), daemons[name].output()[-2000:]
    finally:
        codes = {name: daemon.stop() for name, daemon in daemons.items()}
    assert all(code == 0 for name, code in codes.items() if name != dead), codes
