"""`msctl run --shards 3`, three replicas: every ModelServing reconciled by one shard only,
and a dead replica's shards taken over within the lease time (docs/behaviour.md#sharding)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client

from sync import kube
from sync.shards import shard_of
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, Daemon
from tests.unit import specs

SHARDS = 3
COUNT = 300
LEASE_SECONDS = 5
REPLICAS = ("replica-a", "replica-b", "replica-c")


def small(name: str) -> dict[str, object]:
    """One pod: one role, one instance, no workers."""
    return specs.modelserving(name, replicas=1, roles=[specs.role("engine", 1, 0)])


def holders(cluster: Cluster, namespace: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for shard in range(SHARDS):
        try:
            lease = cluster.kube.get(kube.LEASES, namespace, f"msctl-sync-shard-{shard}")
        except kube.NotFound:
            continue
        out[shard] = str(lease["spec"].get("holderIdentity") or "")
    return out


def reconciled(daemon: Daemon) -> set[str]:
    """The ModelServing keys this daemon made writes for (its JSON log)."""
    keys: set[str] = set()
    for line in daemon.output().splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("msg", "").startswith("reconciled:") and "key" in doc:
                keys.add(doc["key"])
    return keys


def available(cluster: Cluster, names: set[str], replicas: int) -> bool:
    done = {
        ms["metadata"]["name"]
        for ms in cluster.objects(kube.MODELSERVINGS)
        if ms.get("status", {}).get("availableReplicas") == replicas
        and ms["spec"]["replicas"] == replicas
        and ms.get("status", {}).get("observedGeneration") == ms["metadata"]["generation"]
    }
    return names <= done


def test_three_sharded_replicas_split_the_work_and_take_over_a_dead_ones_share(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    options = ("--shards", str(SHARDS), "--lease-namespace", namespace, "--log-format", "json")
    options += ("--lease-duration", str(LEASE_SECONDS))
    daemons = {
        name: Daemon(
            control_plane.kubeconfig,
            namespace,
            tmp_path / f"{name}.log",
            *options,
            "--identity",
            name,
        )
        for name in REPLICAS
    }
    for daemon in daemons.values():
        daemon.start()
    try:
        # One shard each: every replica has joined and the first comers gave their surplus up.
        cluster.wait(
            lambda: sorted(holders(cluster, namespace).values()) == sorted(REPLICAS),
            "one shard per replica",
            60,
        )
        names = {f"ms-{i}" for i in range(COUNT)}
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: cluster.apply(small(n)), sorted(names)))
        with Kubelet(api, namespace):
            cluster.wait(lambda: available(cluster, names, 1), f"{COUNT} available", 300)
            owner = holders(cluster, namespace)
            writers: dict[str, list[str]] = defaultdict(list)
            for name, daemon in daemons.items():
                for key in reconciled(daemon):
                    writers[key].append(name)
            keys = {f"{namespace}/{n}" for n in names}
            assert set(writers) == keys
            wrong = {k: w for k, w in writers.items() if w != [owner[shard_of(k, SHARDS)]]}
            assert not wrong, f"reconciled by another shard or by two: {list(wrong.items())[:5]}"

            dead = "replica-a"
            orphaned = {s for s, h in owner.items() if h == dead}
            daemons[dead].kill()
            killed = time.monotonic()
            cluster.wait(
                lambda: all(holders(cluster, namespace)[s] not in ("", dead) for s in orphaned),
                "the dead replica's shards taken over",
                30,
            )
            took = time.monotonic() - killed
            print(f"shard failover: {took:.1f}s for a {LEASE_SECONDS}s lease")  # pytest -s
            # The lease duration and a retry period after the last renewal; the rest is slack
            # for a loaded 2-core machine.
            assert took < LEASE_SECONDS + 4, (
                f"took {took:.1f}s to take over a {LEASE_SECONDS}s lease"
            )
            moved = {n for n in names if shard_of(f"{namespace}/{n}", SHARDS) in orphaned}
            assert moved
            for name in sorted(moved):
                cluster.patch_ms(name, {"spec": {"replicas": 2}})
            cluster.wait(lambda: available(cluster, moved, 2), "the moved ones scaled", 180)
        for name in ("replica-b", "replica-c"):
            assert daemons[name].alive(), daemons[name].output()[-2000:]
    finally:
        codes = {name: daemon.stop() for name, daemon in daemons.items()}
    assert codes["replica-b"] == codes["replica-c"] == 0
    assert set(holders(cluster, namespace).values()) <= {"", "replica-a"}  # released on SIGTERM
