"""deploy/rbac.yaml is enough: the controller and leader election run as its ServiceAccount;
with deploy/sharding/rbac.yaml, so do sharded daemons (`msctl run --shards`).

Every API call the daemon makes in a create / scale / repair / rollout cycle goes through
RBAC with the ServiceAccount's token; a missing verb fails the reconcile (and this test).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from generator.templating import TemplateSet
from sync import kube
from sync.controller import Controller, Options
from sync.leader import DEFAULT_LEASE_NAME, LeaderElector
from sync.shards import GROUP_LABEL, group_value
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.manifests import delete_all
from tests.integration.sync_helpers import Cluster, Daemon
from tests.integration.test_chart_on_server import token_kubeconfig
from tests.integration.test_shards import small
from tests.unit import specs

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, HOME = "msctl", "msctl-system"


def install_rbac(admin: kube.Kube, manifest: str = "rbac.yaml") -> None:
    for doc in yaml.safe_load_all((ROOT / "deploy" / manifest).read_text()):
        resource = {
            "Namespace": kube.Resource("", "v1", "namespaces", "Namespace", False),
            "ServiceAccount": kube.Resource("", "v1", "serviceaccounts", "ServiceAccount"),
            "ClusterRole": kube.Resource(
                "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False
            ),
            "ClusterRoleBinding": kube.Resource(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                False,
            ),
            "Role": kube.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
            "RoleBinding": kube.Resource(
                "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"
            ),
        }[doc["kind"]]
        try:
            admin.create(resource, doc["metadata"].get("namespace"), doc)
        except kube.Conflict:
            current = admin.get(resource, doc["metadata"].get("namespace"), doc["metadata"]["name"])
            admin.replace(
                resource, doc["metadata"].get("namespace"), {**doc, "metadata": current["metadata"]}
            )


def service_account_client(api: client.ApiClient, kubeconfig: Path) -> kube.Kube:
    request: Any = {"spec": {"expirationSeconds": 3600}}
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(ACCOUNT, HOME, request)
    token = answer.status.token
    base = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=base)  # type: ignore[no-untyped-call]
    restricted = client.Configuration()
    restricted.host = base.host
    restricted.ssl_ca_cert = base.ssl_ca_cert
    restricted.api_key = {"authorization": token}
    restricted.api_key_prefix = {"authorization": "Bearer"}
    restricted.connection_pool_maxsize = 24
    return kube.Kube(client.ApiClient(restricted))


def test_the_daemon_runs_on_exactly_the_granted_permissions(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    install_rbac(cluster.kube)
    restricted = service_account_client(api, control_plane.kubeconfig)
    with pytest.raises(kube.ApiError) as denied:
        restricted.list(kube.Resource("", "v1", "secrets", "Secret"), namespace)
    assert denied.value.status == 403

    stop = threading.Event()
    elector = LeaderElector(
        restricted,
        HOME,
        DEFAULT_LEASE_NAME,
        f"rbac-test-{namespace}",
        lease_seconds=3,
        renew_seconds=2,
        retry_seconds=0.3,
    )
    leading = threading.Event()
    thread = threading.Thread(
        target=elector.run, args=(stop, leading.set, lambda: None), daemon=True
    )
    thread.start()
    errors: list[str] = []
    controller = Controller(
        restricted,
        TemplateSet(),
        Options(namespace=namespace, workers=2),
        on_reconciled=lambda result, _s: errors.append(result) if result == "error" else None,
    )
    doc: dict[str, Any] = specs.pd()
    doc["spec"]["template"]["restartGracePeriodSeconds"] = 0
    cluster.apply(doc)
    try:
        assert leading.wait(20), "leader election failed with the Role's permissions"
        controller.start()
        with Kubelet(api, namespace):
            cluster.wait_available("sample", 1)
            cluster.patch_ms("sample", {"spec": {"replicas": 2}})
            cluster.wait_available("sample", 2)
            cluster.kube.delete(kube.PODS, namespace, "sample-1-decode-0-1")
            cluster.wait(lambda: len(cluster.live_pod_names()) == 8, "the role instance recreated")
            roles = cluster.ms("sample")["spec"]["template"]["roles"]
            for role in roles:
                for kind in ("entryTemplate", "workerTemplate"):
                    role[kind]["spec"]["containers"][0]["image"] = "nginx:1.28"
            cluster.patch_ms("sample", {"spec": {"template": {"roles": roles}, "replicas": 1}})
            cluster.wait_available("sample", 1, 60)
        assert any(e["reason"] == "RoleCreating" for e in cluster.events())
        assert errors == [], "some reconciles failed; the daemon's log says which call was denied"
    finally:
        controller.stop()
        stop.set()
        thread.join(10)
        restricted.close()


def lease_holders(admin: kube.Kube, lease: str) -> dict[str, str]:
    """Lease name -> holder of the group's Leases (shards and members) in the home namespace."""
    items, _ = admin.list(kube.LEASES, HOME, selector=f"{GROUP_LABEL}={group_value(lease)}")
    return {o["metadata"]["name"]: o["spec"].get("holderIdentity") or "" for o in items}


def refused(restricted: kube.Kube, lease: str) -> bool:
    """Whether the ServiceAccount may not list the group's Leases, as every round of
    sharding does first (sync.shards.Sharder.tick)."""
    try:
        restricted.list(kube.LEASES, HOME, selector=f"{GROUP_LABEL}={group_value(lease)}")
    except kube.ApiError as err:
        return err.status == 403
    return False


def test_sharded_daemons_run_on_exactly_the_sharding_role(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster(api, namespace)
    admin = cluster.kube
    install_rbac(admin)
    sharding = [
        d for d in yaml.safe_load_all((ROOT / "deploy" / "sharding" / "rbac.yaml").read_text()) if d
    ]
    delete_all(admin, sharding)  # left by an earlier run on a reused control plane
    restricted = service_account_client(api, control_plane.kubeconfig)
    # The sharding Role names no Lease, so a name of this test's own keeps runs apart.
    lease = f"rbac-{namespace}"[:40]
    config = token_kubeconfig(
        api, control_plane.kubeconfig, HOME, ACCOUNT, tmp_path / "sa.kubeconfig"
    )
    options = ("--shards", "2", "--lease-namespace", HOME, "--lease-name", lease)
    options += ("--lease-duration", "3", "--log-format", "json")
    daemons = {
        name: Daemon(config, namespace, tmp_path / f"{name}.log", *options, "--identity", name)
        for name in ("rbac-a", "rbac-b")
    }
    try:
        # Leader election's Role alone does not let a replica list Leases.
        cluster.wait(lambda: refused(restricted, lease), "sharding refused without its Role")
        install_rbac(admin, "sharding/rbac.yaml")
        cluster.wait(lambda: not refused(restricted, lease), "sharding allowed by its Role")
        for daemon in daemons.values():
            daemon.start()
        shards = {f"{lease}-shard-0", f"{lease}-shard-1"}

        def split() -> bool:
            held = lease_holders(admin, lease)
            return sorted(held[s] for s in shards if s in held) == ["rbac-a", "rbac-b"]

        cluster.wait(split, "one shard per daemon", 30)
        names = [f"ms-{i}" for i in range(4)]
        for name in names:
            doc = small(name)
            doc["spec"]["template"]["restartGracePeriodSeconds"] = 0
            cluster.apply(doc)
        with Kubelet(api, namespace):
            for name in names:
                cluster.wait_available(name, 1, 60)
            # SIGTERM: a's shard is released (update) and its member Lease deleted (delete);
            # b takes the shard over (update of a Lease it did not create).
            assert daemons["rbac-a"].stop() == 0, daemons["rbac-a"].output()[-2000:]
            cluster.wait(
                lambda: set(lease_holders(admin, lease).values()) == {"rbac-b"},
                "b holding both shards, a's member Lease gone",
                15,
            )
            for name in names:
                cluster.patch_ms(name, {"spec": {"replicas": 2}})
            for name in names:
                cluster.wait_available(name, 2, 60)
        assert daemons["rbac-b"].stop() == 0, daemons["rbac-b"].output()[-2000:]
        assert lease_holders(admin, lease) == dict.fromkeys(shards, "")  # released, member gone
        for daemon in daemons.values():
            # A denied call says "... is forbidden: User ... cannot ..." (403 Forbidden).
            assert "forbidden" not in daemon.output().lower(), daemon.output()[-2000:]
    finally:
        for daemon in daemons.values():
            daemon.stop()
        restricted.close()
        for name in lease_holders(admin, lease):
            admin.delete(kube.LEASES, HOME, name)
        # Back to leader election's permissions alone, which the test above runs on.
        delete_all(admin, sharding)
