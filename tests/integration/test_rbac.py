"""deploy/rbac.yaml is enough: the controller and leader election run as its ServiceAccount.

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
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster
from tests.unit import specs

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, HOME = "msctl", "msctl-system"


def install_rbac(admin: kube.Kube) -> None:
    for doc in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()):
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
