"""deploy/ and the Dockerfile: least-privilege RBAC, each grant justified, a hardened pod."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from generator.naming import LWS_CRD
from sync import kube
from sync.controller import PODGROUP_CRD
from sync.leader import DEFAULT_LEASE_NAME
from sync.shards import Sharder

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE, ACCOUNT = "msctl-system", "msctl"
OWNED = {"list", "watch", "create", "patch", "delete"}

# Everything the daemon calls, and nothing else: a new API call needs a row here and a
# justified rule in deploy/rbac.yaml. The daemon reads through its watch cache (list,
# watch), never with single gets; ControllerRevisions are immutable (no patch).
CLUSTER_GRANTS: dict[tuple[str, str], set[str]] = {
    ("workload.serving.volcano.sh", "modelservings"): {"list", "watch", "create", "patch"},
    ("workload.serving.volcano.sh", "modelservings/status"): {"update"},
    ("", "pods"): OWNED,
    ("", "services"): OWNED,
    ("apps", "controllerrevisions"): {"list", "watch", "create", "delete"},
    ("scheduling.volcano.sh", "podgroups"): OWNED,
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "events"): {"create"},
    ("leaderworkerset.x-k8s.io", "leaderworkersets"): {"list", "watch"},
    ("leaderworkerset.x-k8s.io", "leaderworkersets/status"): {"update"},
}
NAMESPACE_GRANTS: dict[tuple[str, str], set[str]] = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}
# What a sharded daemon (`msctl run --shards`) calls on Leases instead: no single gets, and
# names not known in advance (deploy/sharding/rbac.yaml).
SHARDING_GRANTS: dict[tuple[str, str], set[str]] = {
    ("coordination.k8s.io", "leases"): {"list", "create", "update", "delete"},
}
# A comment justifies verbs by naming them before a colon: "# get, list, watch: why".
JUSTIFIED = re.compile(r"([a-z]+(?:,\s*[a-z]+)*):")


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def one(name: str, kind: str) -> dict[str, Any]:
    [doc] = [d for d in documents(name) if d["kind"] == kind]
    return doc


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted[group, resource] |= set(rule["verbs"])
    return dict(granted)


def _last_line(node: yaml.Node) -> int:
    # A block collection's end mark lies at the next token, past the comments that follow
    # it, so the end of its last scalar is where the rule's own text ends.
    if isinstance(node, yaml.ScalarNode):
        return int(node.end_mark.line)
    children: list[yaml.Node] = []
    for child in node.value:
        children.extend(child if isinstance(child, tuple) else (child,))
    return max(_last_line(c) for c in children)


def rules_with_comments(name: str, kind: str) -> list[tuple[dict[str, Any], list[str]]]:
    """Each rule of the `kind` document, with the comments above and inside it."""
    text = (DEPLOY / name).read_text()
    lines = text.splitlines()
    out = []
    for doc_node, doc in zip(yaml.compose_all(text), yaml.safe_load_all(text), strict=True):
        if not doc or doc["kind"] != kind:
            continue
        rules_key, rules_node = next((k, v) for k, v in doc_node.value if k.value == "rules")
        previous_end = rules_key.end_mark.line
        for rule, rule_node in zip(doc["rules"], rules_node.value, strict=True):
            end = _last_line(rule_node)
            comments = [
                line.split("#", 1)[1].strip()
                for line in lines[previous_end + 1 : end + 1]
                if "#" in line
            ]
            out.append((rule, comments))
            previous_end = end
    return out


def rule_id(rule: dict[str, Any]) -> str:
    return ",".join(rule["resources"])


ROLES = [("rbac.yaml", "ClusterRole"), ("rbac.yaml", "Role"), ("sharding/rbac.yaml", "Role")]


@pytest.mark.parametrize(("name", "kind"), ROLES, ids=str)
def test_every_verb_of_every_rule_is_justified_by_a_comment(name: str, kind: str) -> None:
    rules = rules_with_comments(name, kind)
    assert rules
    for rule, comments in rules:
        named = {
            verb.strip()
            for comment in comments
            for subject in JUSTIFIED.findall(comment)
            for verb in subject.split(",")
        }
        missing = set(rule["verbs"]) - named
        assert not missing, f"{kind} rule for {rule_id(rule)}: no comment justifies {missing}"


@pytest.mark.parametrize(("name", "kind"), ROLES, ids=str)
def test_no_rule_uses_wildcards(name: str, kind: str) -> None:
    for rule in one(name, kind)["rules"]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in value for value in rule.get(field, ())), (rule_id(rule), field)
        assert "nonResourceURLs" not in rule


def test_the_cluster_role_grants_exactly_what_the_daemon_calls() -> None:
    assert grants(one("rbac.yaml", "ClusterRole")) == CLUSTER_GRANTS


def test_the_namespaced_role_grants_exactly_the_lease_verbs() -> None:
    role = one("rbac.yaml", "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert grants(role) == NAMESPACE_GRANTS


def test_reading_and_writing_leases_is_limited_to_the_daemons_lease() -> None:
    for rule in one("rbac.yaml", "Role")["rules"]:
        # RBAC cannot limit create by name: the name is only in the request body.
        if rule["verbs"] != ["create"]:
            assert rule.get("resourceNames") == [DEFAULT_LEASE_NAME], rule


class LeaseRecorder:
    """Leases in memory, for a Sharder: records the verbs it calls; any other call fails."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.verbs: set[str] = set()
        self.version = 0

    def _stored(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        self.leases[body["metadata"]["name"]] = stored
        return stored

    def list(self, _resource: object, _namespace: str, *, selector: str) -> tuple[list[Any], str]:
        self.verbs.add("list")
        key, value = selector.split("=")
        found = [o for o in self.leases.values() if o["metadata"]["labels"].get(key) == value]
        return found, str(self.version)

    def create(self, _resource: object, _namespace: str, body: Any, **_: Any) -> Any:
        self.verbs.add("create")
        assert body["metadata"]["name"] not in self.leases
        return self._stored(body)

    def replace(self, _resource: object, _namespace: str, body: Any, **_: Any) -> Any:
        self.verbs.add("update")
        current = self.leases[body["metadata"]["name"]]["metadata"]["resourceVersion"]
        assert body["metadata"]["resourceVersion"] == current
        return self._stored(body)

    def delete(self, _resource: object, _namespace: str, name: str, **_: Any) -> Any:
        self.verbs.add("delete")
        return self.leases.pop(name)


def test_the_sharding_role_grants_exactly_the_lease_verbs_a_sharded_daemon_calls() -> None:
    recorder = LeaseRecorder()
    sharder = Sharder(cast(kube.Kube, recorder), NAMESPACE, DEFAULT_LEASE_NAME, "pod-a", 3)
    sharder.tick()  # joins and takes every shard
    sharder.tick()  # renews them
    assert sharder.owned == {0, 1, 2}
    stopped = threading.Event()
    stopped.set()
    sharder.run(stopped)  # releases the shards, deletes its member Lease
    assert sorted(recorder.leases) == [f"{DEFAULT_LEASE_NAME}-shard-{i}" for i in range(3)]
    role = one("sharding/rbac.yaml", "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert grants(role) == SHARDING_GRANTS
    assert {("coordination.k8s.io", "leases"): recorder.verbs} == SHARDING_GRANTS


def test_the_sharding_component_swaps_leader_election_for_shards() -> None:
    component = yaml.safe_load((DEPLOY / "sharding" / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == ["rbac.yaml"]
    binding = one("sharding/rbac.yaml", "RoleBinding")
    assert binding["roleRef"]["name"] == one("sharding/rbac.yaml", "Role")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}
    ]


def test_reading_crds_is_limited_to_the_podgroup_and_leaderworkerset_crds() -> None:
    [rule] = [
        r
        for r in one("rbac.yaml", "ClusterRole")["rules"]
        if "customresourcedefinitions" in r["resources"]
    ]
    assert rule["resourceNames"] == [PODGROUP_CRD, LWS_CRD]


@pytest.mark.parametrize(
    ("kind", "role_kind"), [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")]
)
def test_the_bindings_give_the_roles_to_the_daemons_service_account(
    kind: str, role_kind: str
) -> None:
    binding = one("rbac.yaml", kind)
    role = one("rbac.yaml", role_kind)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role_kind,
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}
    ]
    account = one("rbac.yaml", "ServiceAccount")["metadata"]
    assert (account["name"], account["namespace"]) == (ACCOUNT, NAMESPACE)


@pytest.fixture
def pod() -> dict[str, Any]:
    deployment = one("deployment.yaml", "Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture
def container(pod: dict[str, Any]) -> dict[str, Any]:
    [only] = pod["containers"]
    return dict(only)


def test_the_deployment_runs_two_leader_elected_replicas_as_the_service_account(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    deployment = one("deployment.yaml", "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == ACCOUNT
    assert "command" not in container  # the image's ENTRYPOINT is msctl
    assert container["args"][:2] == ["run", "--leader-elect"]
    assert "--log-format=json" in container["args"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_container_is_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    context = {**pod["securityContext"], **container["securityContext"]}
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_the_probes_hit_the_health_endpoints_on_the_named_port(container: dict[str, Any]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == 8080


def test_the_container_has_requests_and_limits(container: dict[str, Any]) -> None:
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) >= {"cpu", "memory"}, bound


def test_the_pod_learns_its_name_and_namespace_from_the_downward_api(
    container: dict[str, Any],
) -> None:
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert fields["POD_NAME"] == "metadata.name"
    assert fields["POD_NAMESPACE"] == "metadata.namespace"


def test_every_namespaced_object_lives_in_the_daemons_namespace() -> None:
    for name in ("rbac.yaml", "deployment.yaml", "service.yaml", "sharding/rbac.yaml"):
        for doc in documents(name):
            if doc["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
                assert doc["metadata"]["namespace"] == NAMESPACE, (name, doc["kind"])


def test_the_kustomization_lists_the_daemon_files() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == ["deployment.yaml", "rbac.yaml", "service.yaml"]
    for resource in kustomization["resources"]:
        assert (DEPLOY / resource).is_file(), resource


def test_the_dockerfile_builds_a_wheel_and_runs_msctl_as_nonroot() -> None:
    instructions = [
        line
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert len(stages) == 2
    assert stages[-1] == "python:3.11-slim"
    assert any("pip wheel" in line for line in instructions)
    final = instructions[[i for i, s in enumerate(instructions) if s.startswith("FROM ")][-1] :]
    directives = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in final}
    assert directives["USER"].split(":")[0] == "65532"
    assert json.loads(directives["ENTRYPOINT"]) == ["msctl"]
    assert json.loads(directives["CMD"]) == ["run", "--leader-elect"]
