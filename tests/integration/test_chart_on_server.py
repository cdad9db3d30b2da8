"""The Helm chart on the real API server: every object of every value set passes a server-side
dry run, the README's `helm install` works, and the daemon converges a ModelServing with
exactly the chart's ServiceAccount (its token, its args, its template overlay)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from sync import kube
from tests import tools
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.manifests import create_all, delete_all, resource
from tests.integration.sync_helpers import Cluster, Daemon
from tests.tools import CHART, REPO
from tests.unit import specs

VALUE_SETS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
SERVICEMONITOR_CRD = REPO / "tests" / "data" / "servicemonitor-crd.yaml"


def release_name() -> str:
    return f"t{secrets.token_hex(3)}"


def render(release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    done = tools.run_helm("template", release, str(CHART), "--namespace", namespace, *args)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def servicemonitor_crd(api: client.ApiClient) -> Iterator[None]:
    admin = kube.Kube(api)
    doc = yaml.safe_load(SERVICEMONITOR_CRD.read_text())
    with contextlib.suppress(kube.Conflict):
        admin.create(resource(doc), None, doc)
    Cluster(api, "default").wait(
        lambda: any(
            c["type"] == "Established" and c["status"] == "True"
            # A CRD just created may say `conditions: null` for a moment.
            for c in (
                admin.get(resource(doc), None, doc["metadata"]["name"])
                .get("status", {})
                .get("conditions")
                or []
            )
        ),
        "the ServiceMonitor CRD established",
    )
    yield


@pytest.mark.usefixtures("servicemonitor_crd")
@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_rendered_object_passes_a_server_side_dry_run(
    api: client.ApiClient, namespace: str, values: str
) -> None:
    admin = kube.Kube(api)
    release = release_name()
    # A release namespace of its own when the chart creates it; watched namespaces that exist.
    home = f"{namespace}-home"
    watched = ["--set", f"watchNamespaces={{{namespace}}}"] if "namespaced" in values else []
    docs = render(release, home, "-f", str(CHART / "ci" / values), *watched)
    made = []
    try:
        made = create_all(admin, [d for d in docs if d["kind"] == "Namespace"])
        if not made:
            made = create_all(admin, [{"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": home}}])  # fmt: skip
        for doc in docs:
            if doc["kind"] != "Namespace":
                answer = admin.dry_run_create(resource(doc), doc["metadata"].get("namespace"), doc)
                assert answer["metadata"]["name"] == doc["metadata"]["name"]
    finally:
        delete_all(admin, made)


def readme_install_command() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Install with Helm", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "no command block in the README's Install with Helm section"
    joined = block[1].replace("\\\n", " ")
    [line] = [li for li in joined.splitlines() if li.startswith("helm install")]
    return shlex.split(line.split("#", 1)[0])


def test_helm_install_from_the_readme_creates_the_daemon_and_its_permissions(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    command = readme_install_command()
    assert command[:4] == ["helm", "install", "msctl", "deploy/chart/msctl"]
    release = release_name()
    # The README's command, in this test's namespace and under a release name of its own
    # (the cluster-wide objects are named after the release).
    args = [release if a == "msctl" and i == 2 else a for i, a in enumerate(command)]
    args = [namespace if a == "msctl-system" else a for a in args]
    args[3] = str(REPO / args[3])
    kubeconfig = ["--kubeconfig", str(control_plane.kubeconfig)]
    tools.run_helm(*args[1:], *kubeconfig)
    admin = kube.Kube(api)
    try:
        listed = tools.run_helm("list", "-n", namespace, "-o", "json", *kubeconfig).stdout
        assert f'"name":"{release}"' in listed and '"status":"deployed"' in listed
        full = f"{release}-msctl"
        deployment = admin.get(resource({"kind": "Deployment", "apiVersion": "apps/v1"}),
                               namespace, full)  # fmt: skip
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == full
        [container] = pod["containers"]
        assert container["image"].startswith("registry.example.com/msctl:")
        assert container["args"][:2] == ["run", "--leader-elect"]
        binding = admin.get(
            resource({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1"}),
            None,
            full,
        )
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": full, "namespace": namespace}
        ]
        service = admin.get(kube.SERVICES, namespace, f"{full}-metrics")
        assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"
    finally:
        tools.run_helm("uninstall", release, "-n", namespace, *kubeconfig)
    with pytest.raises(kube.NotFound):
        admin.get(
            resource({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1"}),
            None,
            f"{release}-msctl",
        )


def token_kubeconfig(api: client.ApiClient, admin_kubeconfig: Path, namespace: str,
                     account: str, path: Path) -> Path:  # fmt: skip
    """A kubeconfig that authenticates as `account` with a fresh token."""
    request: Any = {"spec": {"expirationSeconds": 3600}}
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, request
    )
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    [cluster] = admin["clusters"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": answer.status.token}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("shards", [1, 2], ids=["leader-elected", "sharded"])
def test_the_daemon_converges_a_modelserving_as_the_charts_service_account(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, tmp_path: Path, shards: int
) -> None:
    """With sharding.shards=2, two replicas (pods) of the Deployment, each holding a shard."""
    release = release_name()
    docs = render(
        release,
        namespace,
        "-f",
        str(CHART / "ci" / "namespaced-values.yaml"),
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        f"namespace.create=false,leaderElection.leaseDuration=4,sharding.shards={shards}",
    )
    admin = kube.Kube(api)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [overlay] = [d for d in docs if d["kind"] == "ConfigMap"]
    installed = [
        d for d in docs if d["kind"] not in {"Deployment", "ServiceMonitor", "PodDisruptionBudget"}
    ]
    made = create_all(admin, installed)
    daemons: list[Daemon] = []
    try:
        config = token_kubeconfig(
            api, control_plane.kubeconfig, namespace, pod["serviceAccountName"],
            tmp_path / "sa.kubeconfig",
        )  # fmt: skip
        # The ConfigMap as the kubelet would mount it.
        templates = tmp_path / "templates"
        templates.mkdir()
        for name, text in overlay["data"].items():
            (templates / name).write_text(text)
        args = [
            a.replace("/etc/msctl/templates", str(templates))
            for a in container["args"][1:]
            if not a.startswith("--health-port=")
        ]
        # What the Deployment's downward API gives each pod: the namespace and its own name.
        os.environ["POD_NAMESPACE"] = namespace
        try:
            for pod_name in ("msctl-pod-a", "msctl-pod-b")[:shards]:
                os.environ["POD_NAME"] = pod_name
                log = tmp_path / f"{pod_name}.log"
                daemons.append(Daemon(config, namespace, log, *args).start())
        finally:
            del os.environ["POD_NAMESPACE"]
            os.environ.pop("POD_NAME", None)
        cluster = Cluster(api, namespace)
        doc = specs.pd(replicas=2)
        doc["spec"]["template"]["restartGracePeriodSeconds"] = 0
        cluster.apply(doc)
        with Kubelet(api, namespace):
            cluster.wait_available("sample", 2, 60)
        for live in cluster.pods().values():
            assert live["metadata"]["annotations"]["example.com/overlay"] == "chart"
        if shards == 1:
            lease = admin.get(kube.LEASES, namespace, f"msctl-sync-{namespace}")
            assert lease["spec"]["holderIdentity"] == "msctl-pod-a"
        else:
            names = [f"msctl-sync-{namespace}-shard-{i}" for i in range(shards)]
            cluster.wait(
                lambda: (
                    sorted(
                        admin.get(kube.LEASES, namespace, n)["spec"]["holderIdentity"]
                        for n in names
                    )
                    == ["msctl-pod-a", "msctl-pod-b"]
                ),
                "one shard per pod",
            )
        for daemon in daemons:
            assert daemon.alive(), daemon.output()
            # A denied call says "... is forbidden: User ... cannot ..." (403 Forbidden).
            assert "forbidden" not in daemon.output().lower(), daemon.output()[-2000:]
    finally:
        for daemon in daemons:
            daemon.stop()
        delete_all(admin, made)
