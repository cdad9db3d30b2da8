"""The API server's pod rules, checked offline: one failing pod template per rule, with the
field path in the ModelServing and the message; and templates the server accepts pass."""

from __future__ import annotations

from typing import Any

import pytest

from generator import model
from tests.unit import specs

PLUGINS = frozenset({"lws-standard-labels", "demo-pod-tweaks"})
ENTRY = "spec.template.roles.0.entryTemplate"
WORKER = "spec.template.roles.0.workerTemplate"
C0 = f"{ENTRY}.spec.containers.0"
P = "spec.template.roles[0].entryTemplate.spec"
W = "spec.template.roles[0].workerTemplate.spec"


def violations(doc: Any) -> list[str]:
    with pytest.raises(model.InvalidSpec) as err:
        model.load(doc, plugins=PLUGINS)
    return [str(v) for v in err.value.violations]


def with_container(**fields: Any) -> dict[str, Any]:
    return specs.edit(specs.pd(), C0, {"name": "main", "image": "nginx:1.27", **fields})


def resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return with_container(resources={"requests": requests, "limits": limits})


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "a pod needs a container",
        specs.edit(specs.pd(), f"{WORKER}.spec.containers", []),
        f"{W}.containers: is required",
    ),
    (
        "container names are DNS-1123 labels",
        specs.edit(specs.pd(), f"{C0}.name", "0.5"),
        f"{P}.containers[0].name: must be a DNS-1123 label: lowercase letters, digits and"
        " '-', starting and ending with a letter or digit, got \"0.5\"",
    ),
    (
        "container names are at most 63 characters",
        specs.edit(specs.pd(), f"{C0}.name", "c" * 64),
        f"{P}.containers[0].name: must be no more than 63 characters",
    ),
    (
        "init container names do not repeat container names",
        specs.edit(specs.pd(), f"{ENTRY}.spec.initContainers", [{"name": "main", "image": "x"}]),
        f'{P}.initContainers[0].name: duplicate container name "main"; see {P}.containers[0].name',
    ),
    (
        "init containers need an image",
        specs.edit(specs.pd(), f"{ENTRY}.spec.initContainers", [{"name": "init"}]),
        f"{P}.initContainers[0].image: is required",
    ),
    (
        "container ports are at most 65535",
        with_container(ports=[{"containerPort": 99999}]),
        f"{P}.containers[0].ports[0].containerPort: must be between 1 and 65535, got 99999",
    ),
    (
        "container ports are at least 1",
        with_container(ports=[{"containerPort": 0}]),
        f"{P}.containers[0].ports[0].containerPort: must be between 1 and 65535, got 0",
    ),
    (
        "host ports are in range",
        with_container(ports=[{"containerPort": 80, "hostPort": 70000}]),
        f"{P}.containers[0].ports[0].hostPort: must be between 1 and 65535, got 70000",
    ),
    (
        "port names are unique",
        with_container(
            ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]
        ),
        f'{P}.containers[0].ports[1].name: duplicate port name "http"',
    ),
    (
        "port names are IANA service names",
        with_container(ports=[{"containerPort": 80, "name": "HTTP"}]),
        f"{P}.containers[0].ports[0].name: must contain only lowercase letters",
    ),
    (
        "port names are at most 15 characters",
        with_container(ports=[{"containerPort": 80, "name": "a" * 16}]),
        f"{P}.containers[0].ports[0].name: must be no more than 15 characters",
    ),
    (
        "port names have a letter",
        with_container(ports=[{"containerPort": 80, "name": "8080"}]),
        f"{P}.containers[0].ports[0].name: must contain at least one letter",
    ),
    (
        "port protocols are TCP, UDP or SCTP",
        with_container(ports=[{"containerPort": 80, "protocol": "HTTP"}]),
        f"{P}.containers[0].ports[0].protocol: must be one of SCTP, TCP, UDP",
    ),
    (
        "env var names have no '='",
        with_container(env=[{"name": "A=B", "value": "1"}]),
        f"{P}.containers[0].env[0].name: must consist only of printable ASCII characters",
    ),
    (
        "env var names are not empty",
        with_container(env=[{"name": "", "value": "1"}]),
        f"{P}.containers[0].env[0].name: must not be empty",
    ),
    (
        "envFrom names exactly one source",
        with_container(envFrom=[{"prefix": "X_"}]),
        f"{P}.containers[0].envFrom[0]: must specify exactly one of configMapRef or secretRef",
    ),
    (
        "volume names are DNS-1123 labels",
        specs.edit(specs.pd(), f"{ENTRY}.spec.volumes", [{"name": "Data", "emptyDir": {}}]),
        f"{P}.volumes[0].name: must be a DNS-1123 label",
    ),
    (
        "a volume has one type",
        specs.edit(
            specs.pd(), f"{ENTRY}.spec.volumes", [{"name": "d", "emptyDir": {}, "secret": {}}]
        ),
        f"{P}.volumes[0]: may not specify more than 1 volume type, got emptyDir, secret",
    ),
    (
        "a mount names a volume of the pod",
        with_container(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        f'{P}.containers[0].volumeMounts[0].name: "data" is not a volume of this pod template',
    ),
    (
        "a mount's subPath stays inside the volume",
        specs.edit(
            with_container(volumeMounts=[{"name": "d", "mountPath": "/d", "subPath": "../x"}]),
            f"{ENTRY}.spec.volumes",
            [{"name": "d", "emptyDir": {}}],
        ),
        f"{P}.containers[0].volumeMounts[0].subPath: must not contain '..'",
    ),
    (
        "requests are not above limits",
        resources({"cpu": "2"}, {"cpu": "1"}),
        f'{P}.containers[0].resources.requests["cpu"]: must be less than or equal to the cpu'
        " limit of 1",
    ),
    (
        "extended resources are not overcommitted",
        resources({"nvidia.com/gpu": 1}, {"nvidia.com/gpu": 2}),
        f'{P}.containers[0].resources.requests["nvidia.com/gpu"]: must be equal to the'
        " nvidia.com/gpu limit of 2",
    ),
    (
        "an extended resource request needs a limit",
        resources({"nvidia.com/gpu": 1}, {}),
        f'{P}.containers[0].resources.requests["nvidia.com/gpu"]: nvidia.com/gpu cannot be'
        " overcommitted",
    ),
    (
        "extended resources are whole numbers",
        resources({}, {"nvidia.com/gpu": "500m"}),
        f'{P}.containers[0].resources.limits["nvidia.com/gpu"]: must be an integer',
    ),
    (
        "quantities are not negative",
        resources({"memory": "-1Gi"}, {}),
        f'{P}.containers[0].resources.requests["memory"]: must be greater than or equal to 0',
    ),
    (
        "unprefixed resource names are standard ones",
        resources({"gpu": 1}, {}),
        f'{P}.containers[0].resources.requests["gpu"]: invalid resource name: must be a'
        " standard resource for containers",
    ),
    (
        "probe ports are valid",
        with_container(readinessProbe={"tcpSocket": {"port": 0}}),
        f"{P}.containers[0].readinessProbe.tcpSocket.port: must be between 1 and 65535",
    ),
    (
        "a probe has a handler",
        with_container(livenessProbe={"periodSeconds": 5}),
        f"{P}.containers[0].livenessProbe: must specify a handler type",
    ),
    (
        "liveness probes succeed once",
        with_container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}),
        f"{P}.containers[0].livenessProbe.successThreshold: must be 1, got 2",
    ),
    (
        "pull policies are an enum",
        with_container(imagePullPolicy="Sometimes"),
        f"{P}.containers[0].imagePullPolicy: must be one of Always, IfNotPresent, Never",
    ),
    (
        "restart policies are an enum",
        specs.edit(specs.pd(), f"{ENTRY}.spec.restartPolicy", "Sometimes"),
        f"{P}.restartPolicy: must be one of Always, OnFailure, Never",
    ),
    (
        "worker hostnames are DNS-1123 labels",
        specs.edit(specs.pd(), f"{WORKER}.spec.hostname", "Worker_1"),
        f"{W}.hostname: must be a DNS-1123 label",
    ),
    (
        "service accounts are DNS-1123 subdomains",
        specs.edit(specs.pd(), f"{ENTRY}.spec.serviceAccountName", "My Account"),
        f"{P}.serviceAccountName: must be a DNS-1123 subdomain",
    ),
    (
        "active deadlines are positive",
        specs.edit(specs.pd(), f"{ENTRY}.spec.activeDeadlineSeconds", 0),
        f"{P}.activeDeadlineSeconds: must be between 1 and 2147483647, got 0",
    ),
    (
        "template label keys are qualified names",
        specs.edit(specs.pd(), f"{ENTRY}.metadata", {"labels": {"a b": "x"}}),
        'spec.template.roles[0].entryTemplate.metadata.labels["a b"]: invalid label key',
    ),
    (
        "template label values are label values",
        specs.edit(specs.pd(), f"{ENTRY}.metadata", {"labels": {"team": "x" * 64}}),
        'spec.template.roles[0].entryTemplate.metadata.labels["team"]: invalid label value',
    ),
    (
        "the ModelServing's annotations are a map",
        specs.edit(specs.pd(), "metadata.annotations", [None]),
        "metadata.annotations: must be a map of strings, got a list",
    ),
    (
        "the ModelServing's labels are strings",
        specs.edit(specs.pd(), "metadata.labels", {"team": 1}),
        'metadata.labels["team"]: must be a string, got integer 1',
    ),
    (
        "the ModelServing's label keys are qualified names",
        specs.edit(specs.pd(), "metadata.labels", {"a b": "x"}),
        'metadata.labels["a b"]: invalid label key',
    ),
    (
        "node selectors are labels",
        specs.edit(specs.pd(), f"{ENTRY}.spec.nodeSelector", {"zone": "a b"}),
        f'{P}.nodeSelector["zone"]: invalid label value',
    ),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_pod_rule_reports_its_field_path_and_message(
    doc: dict[str, Any], expected: str
) -> None:
    found = violations(doc)
    assert any(v.startswith(expected) for v in found), found


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("an env var name with a dot and a dash", with_container(env=[{"name": "my.var-1"}])),
    (
        "a request equal to its limit",
        resources({"cpu": "1000m", "nvidia.com/gpu": 1}, {"cpu": 1, "nvidia.com/gpu": "1"}),
    ),
    ("an extended limit alone (the request defaults to it)", resources({}, {"example.com/x": 2})),
    (
        "a volume of no type (the server makes it an emptyDir)",
        specs.edit(specs.pd(), f"{ENTRY}.spec.volumes", [{"name": "data"}]),
    ),
    (
        "a mount of a defined volume",
        specs.edit(
            with_container(volumeMounts=[{"name": "d", "mountPath": "/d", "subPath": "a/b"}]),
            f"{ENTRY}.spec.volumes",
            [{"name": "d", "emptyDir": {}}],
        ),
    ),
    (
        "a named port and a probe on it",
        with_container(
            ports=[{"containerPort": 80, "name": "http"}],
            readinessProbe={"httpGet": {"port": "http"}},
        ),
    ),
    (
        "an entry template's own hostname (the renderer replaces it)",
        specs.edit(specs.pd(), f"{ENTRY}.spec.hostname", "Not_A_Label"),
    ),
]


@pytest.mark.parametrize("doc", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_what_the_api_server_accepts_passes(doc: dict[str, Any]) -> None:
    assert model.load(doc, plugins=PLUGINS).name == "sample"


def test_every_pod_problem_is_reported_at_once() -> None:
    doc = specs.edit(specs.pd(), f"{C0}.name", "0.5")
    doc = specs.edit(doc, f"{WORKER}.spec.containers", [])
    doc = specs.edit(
        doc,
        "spec.template.roles.1.entryTemplate.spec.volumes",
        [{"name": "v", "emptyDir": {}, "secret": {}}],
    )
    assert [v.split(":")[0] for v in violations(doc)] == [
        f"{P}.containers[0].name",
        f"{W}.containers",
        "spec.template.roles[1].entryTemplate.spec.volumes[0]",
    ]
