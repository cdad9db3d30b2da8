"""The Helm chart (deploy/chart/msctl) offline: helm lint, helm template with every value set
of ci/, the schema refusing bad values, and the kustomize folder deploy/ holding the same
objects as the chart with its defaults. helm comes from tests/controlplane/build-tools.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tools
from tests.tools import CHART, REPO
from tests.unit.test_deploy import CLUSTER_GRANTS, NAMESPACE_GRANTS, SHARDING_GRANTS, grants

VALUE_SETS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
# Labels Helm adds for its release bookkeeping; deploy/ has no release to name.
HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
}
KUSTOMIZE_VALUES = ["--set", "fullnameOverride=msctl", "--set", "namespace.create=true"]


def template(*args: str, release: str = "msctl", namespace: str = "msctl-system") -> list[Any]:
    done = tools.run_helm("template", release, str(CHART), "--namespace", namespace, *args)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def without_helm_labels(value: Any) -> Any:
    """`value` with Helm's release labels left out wherever labels are (selectors too)."""
    if isinstance(value, dict):
        return {
            k: without_helm_labels(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k in HELM_LABELS)
        }
    if isinstance(value, list):
        return [without_helm_labels(v) for v in value]
    return value


@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint_passes_strictly_with_every_value_set(values: str) -> None:
    done = tools.run_helm("lint", "--strict", str(CHART), "-f", str(CHART / "ci" / values))
    assert "0 chart(s) failed" in done.stdout, done.stdout


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_rendered_object_names_its_namespace_and_carries_the_release_labels(
    values: str,
) -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for doc in template("-f", str(CHART / "ci" / values)):
        meta = doc["metadata"]
        assert ("namespace" in meta) == (doc["kind"] not in cluster_scoped), doc["kind"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]


def kustomize(folder: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    built = subprocess.run(
        [tools.kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return by_key([d for d in yaml.safe_load_all(built.stdout) if d])


def test_deploy_folder_holds_the_objects_the_chart_renders_with_its_defaults() -> None:
    chart = by_key([without_helm_labels(d) for d in template(*KUSTOMIZE_VALUES)])
    folder = kustomize(REPO / "deploy")
    assert sorted(chart) == sorted(folder)
    for key, doc in folder.items():
        assert chart[key] == doc, f"{key}: the chart and deploy/ differ"


def test_deploy_with_the_sharding_component_holds_what_the_chart_renders_sharded(
    tmp_path: Path,
) -> None:
    """deploy/ plus deploy/sharding/ (as a user turns it on: `components: [sharding]`)."""
    base = Path(os.path.relpath(REPO / "deploy", tmp_path))  # kustomize wants relative paths
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [str(base)], "components": [str(base / "sharding")]})
    )
    chart = by_key(
        [without_helm_labels(d) for d in template(*KUSTOMIZE_VALUES, "--set", "sharding.shards=4")]
    )
    folder = kustomize(tmp_path)
    assert sorted(chart) == sorted(folder)
    for key, doc in folder.items():
        assert chart[key] == doc, f"{key}: the chart and deploy/ + deploy/sharding/ differ"
    role = folder["Role", "msctl-system", "msctl-sharding"]
    assert grants(role) == SHARDING_GRANTS
    assert ("Role", "msctl-system", "msctl-leader-election") not in folder


def test_the_crd_is_installed_from_the_chart_and_equals_the_repository_crd() -> None:
    crd = REPO / "crds" / "workload.serving.volcano.sh_modelservings.yaml"
    assert (CHART / "crds" / crd.name).read_bytes() == crd.read_bytes()
    [rendered] = [d for d in template("--include-crds") if d["kind"] == "CustomResourceDefinition"]
    assert rendered == yaml.safe_load(crd.read_text())


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def test_watched_namespaces_get_a_daemon_and_a_role_each_and_no_cluster_wide_writes() -> None:
    docs = template("-f", str(CHART / "ci" / "namespaced-values.yaml"))
    found = deployments(docs)
    assert sorted(found) == ["msctl-team-a", "msctl-team-b"]
    for ns in ("team-a", "team-b"):
        args = found[f"msctl-{ns}"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--namespace={ns}" in args
        assert f"--lease-name=msctl-sync-{ns}" in args
        assert "--templates=/etc/msctl/templates" in args
    roles = by_key(docs)
    assert {k[1] for k in roles if k[0] == "Role" and k[2] == "msctl"} == {"team-a", "team-b"}
    cluster_role = roles["ClusterRole", "", "msctl"]
    assert [r["resources"] for r in cluster_role["rules"]] == [["customresourcedefinitions"]]
    lease = roles["Role", "msctl-system", "msctl-leader-election"]
    assert lease["rules"][1]["resourceNames"] == ["msctl-sync-team-a", "msctl-sync-team-b"]
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "PodDisruptionBudget", "ConfigMap", "Namespace"} <= kinds


def test_minimal_values_render_one_plain_replica_without_rbac_or_service() -> None:
    docs = template("-f", str(CHART / "ci" / "minimal-values.yaml"))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Deployment"]
    pod = docs[0]["spec"]["template"]["spec"]
    assert docs[0]["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == "msctl-existing"
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/msctl:0.1.0-test"
    assert "--leader-elect" not in container["args"]
    assert container["args"][-1] == "--api-qps=20"
    assert "podAntiAffinity" not in pod["affinity"]


def test_sharding_passes_shards_instead_of_leader_election_and_grants_only_its_verbs() -> None:
    docs = template("-f", str(CHART / "ci" / "sharded-values.yaml"))
    [deployment] = deployments(docs).values()
    assert deployment["spec"]["replicas"] == 3
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["run", "--shards=6", "--lease-name=msctl-sync", "--lease-duration=10"]
    assert "--leader-elect" not in args
    roles = {k: d for k, d in by_key(docs).items() if k[0] == "Role"}
    assert list(roles) == [("Role", "msctl-system", "msctl-sharding")]
    assert grants(roles["Role", "msctl-system", "msctl-sharding"]) == SHARDING_GRANTS
    binding = by_key(docs)["RoleBinding", "msctl-system", "msctl-sharding"]
    assert binding["roleRef"]["name"] == "msctl-sharding"


def test_sharding_off_keeps_leader_election_and_its_name_bound_role() -> None:
    docs = by_key(template("--set", "sharding.shards=1"))
    assert ("Role", "msctl-system", "msctl-sharding") not in docs
    assert grants(docs["Role", "msctl-system", "msctl-leader-election"]) == NAMESPACE_GRANTS
    [deployment] = [d for k, d in docs.items() if k[0] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["run", "--leader-elect"]
    assert not any(a.startswith("--shards") for a in args)


# (values, what the schema's message must name): each is refused before rendering.
BAD_VALUES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no replicas", {"replicaCount": 0}, ["/replicaCount", "minimum: got 0, want 1"]),
    (
        "an unknown log format",
        {"logFormat": "xml"},
        ["/logFormat", "must be one of 'json', 'text'"],
    ),
    ("a misspelt key", {"replicas": 2}, ["additional properties 'replicas' not allowed"]),
    (
        "two replicas without leader election",
        {"replicaCount": 2, "leaderElection": {"enabled": False}},
        ["/replicaCount", "maximum: got 2, want 1"],
    ),
    (
        "a namespace that is no DNS label",
        {"watchNamespaces": ["Team_A"]},
        ["/watchNamespaces/0", "Team_A"],
    ),
    (
        "a CPU limit that is no quantity",
        {"resources": {"limits": {"cpu": "lots"}}},
        ["/resources/limits/cpu", "lots"],
    ),
    ("no shards", {"sharding": {"shards": 0}}, ["/sharding/shards", "minimum: got 0, want 1"]),
    (
        "two replicas neither leader-elected nor sharded",
        {"replicaCount": 2, "leaderElection": {"enabled": False}, "sharding": {"shards": 1}},
        ["/replicaCount", "maximum: got 2, want 1"],
    ),
    ("an unknown pull policy", {"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy"]),
    ("a port out of range", {"metrics": {"port": 70000}}, ["/metrics/port", "maximum"]),
    (
        "a template name with a slash",
        {"templates": {"plugins/x.j2": ""}},
        ["/templates", "plugins/x.j2"],
    ),
]


@pytest.mark.parametrize(
    ("values", "names"), [(v, n) for _, v, n in BAD_VALUES], ids=[i for i, _, _ in BAD_VALUES]
)
@pytest.mark.parametrize("command", ["lint", "template"])
def test_the_schema_refuses_bad_values_and_names_them(
    tmp_path: Path, command: str, values: dict[str, Any], names: list[str]
) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(json.dumps(values))
    args = [command, *(["msctl"] if command == "template" else []), str(CHART), "-f", str(file)]
    done = tools.run_helm(*args, check=False)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "values don't meet the specifications of the schema" in said, said
    for name in names:
        assert name in said, said


def test_namespaced_rbac_grants_exactly_what_the_daemon_calls_and_only_there() -> None:
    docs = by_key(template("-f", str(CHART / "ci" / "namespaced-values.yaml")))
    crds = ("apiextensions.k8s.io", "customresourcedefinitions")
    in_namespace = {k: v for k, v in CLUSTER_GRANTS.items() if k != crds}
    for ns in ("team-a", "team-b"):
        assert grants(docs["Role", ns, "msctl"]) == in_namespace, ns
        binding = docs["RoleBinding", ns, "msctl"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "msctl", "namespace": "msctl-system"}
        ]
    assert grants(docs["ClusterRole", "", "msctl"]) == {crds: CLUSTER_GRANTS[crds]}
    assert grants(docs["Role", "msctl-system", "msctl-leader-election"]) == NAMESPACE_GRANTS
