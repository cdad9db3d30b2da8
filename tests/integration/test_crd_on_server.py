"""The CRD, the examples and everything msctl renders, as judged by the real API server."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from generator import model, naming, output
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet
from sync import kube
from tests.unit import specs

ROOT = Path(__file__).resolve().parents[2]
# The ModelServing examples; LeaderWorkerSet ones are tried in test_lws_bridge.py.
EXAMPLES = sorted(
    path
    for path in (ROOT / "examples").glob("*.yaml")
    if f"kind: {naming.KIND}\n" in path.read_text()
)
TEMPLATES = TemplateSet()
GROUP, VERSION, PLURAL = naming.API_GROUP, "v1alpha1", naming.PLURAL


def load_example(path: Path, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def create(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, doc
    )
    return created


def rejection(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as err:
        create(api, namespace, doc)
    assert err.value.status == 422, err.value.body
    message: str = json.loads(err.value.body)["message"]
    return message


def test_the_crd_is_established_with_status_and_scale(api: client.ApiClient) -> None:
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
    version = crd.spec.versions[0]
    assert version.subresources.scale.label_selector_path == ".status.labelSelector"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_accepted_and_defaulted_exactly_like_msctl_does(
    api: client.ApiClient, namespace: str, example: Path
) -> None:
    doc = load_example(example, namespace)
    stored = create(api, namespace, copy.deepcopy(doc))
    ours = model.load(doc, plugins=TEMPLATES.plugins())
    # The revision hash is computed over the defaulted roles, so the defaults must agree.
    assert stored["spec"] == ours.raw["spec"]
    assert model.load(stored, plugins=TEMPLATES.plugins()).revision == ours.revision


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_everything_rendered_passes_a_server_side_dry_run(
    api: client.ApiClient, namespace: str, example: Path
) -> None:
    stored = create(api, namespace, load_example(example, namespace))
    ms = model.load(stored, plugins=TEMPLATES.plugins())
    objects = render_modelserving(Renderer(TEMPLATES, ms, Settings()))
    server = kube.Kube(api)
    for obj in objects:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]
        created = server.dry_run_create(kube.BY_KIND[obj["kind"]], namespace, obj)
        assert created["metadata"]["name"] == obj["metadata"]["name"]


CEL_REJECTIONS = [
    (
        "generated names too long",
        specs.modelserving("m" * 52),
        "generated names must be no more than 63 characters",
    ),
    ("name not a DNS-1035 label", specs.modelserving("9lives"), "must be a DNS-1035 label"),
    (
        "workers without workerTemplate",
        specs.modelserving(
            roles=[{"name": "a", "workerReplicas": 1, "entryTemplate": specs.pod_template()}]
        ),
        "workerTemplate is required when workerReplicas is greater than 0",
    ),
    (
        "duplicate role names",
        specs.modelserving(roles=[specs.role("a"), specs.role("a")]),
        "roles name must be unique",
    ),
    (
        "minRoleReplicas naming no role",
        specs.edit(specs.pd(), "spec.template.gangPolicy", {"minRoleReplicas": {"x": 1}}),
        "gangPolicy.minRoleReplicas keys must be role names",
    ),
    (
        "partition not a percent",
        specs.modelserving(rolloutStrategy={"rollingUpdateConfiguration": {"partition": "1"}}),
        "must be an integer >= 0 or a percent",
    ),
    (
        "group rolling config under RoleRollingUpdate",
        specs.modelserving(
            rolloutStrategy={"type": "RoleRollingUpdate", "rollingUpdateConfiguration": {}}
        ),
        "rollingUpdateConfiguration is not allowed when type is RoleRollingUpdate",
    ),
    (
        "ServingGroupRecreate with RoleRollingUpdate",
        specs.modelserving(
            recoveryPolicy="ServingGroupRecreate", rolloutStrategy={"type": "RoleRollingUpdate"}
        ),
        # The server names the rollout type, as the offline rule does.
        "spec.rolloutStrategy.type: Invalid value",
    ),
    (
        "role partition without RoleRollingUpdate",
        specs.modelserving(roles=[specs.role(partition=1)]),
        "partition is only valid when rolloutStrategy.type is RoleRollingUpdate",
    ),
    (
        "role name too long (schema)",
        specs.edit(specs.pd(), "spec.template.roles.0.name", "abcdefghijklm"),
        "Too long: may not be more than 12",
    ),
    (
        "recovery policy enum (schema)",
        specs.edit(specs.pd(), "spec.recoveryPolicy", "Never"),
        'Unsupported value: "Never"',
    ),
]


@pytest.mark.parametrize(
    ("doc", "message"), [c[1:] for c in CEL_REJECTIONS], ids=[c[0] for c in CEL_REJECTIONS]
)
def test_the_api_server_rejects_what_the_rules_forbid(
    api: client.ApiClient, namespace: str, doc: dict[str, Any], message: str
) -> None:
    doc["metadata"]["namespace"] = namespace
    with pytest.raises(model.InvalidSpec):
        model.load(copy.deepcopy(doc), plugins=TEMPLATES.plugins())
    assert message in rejection(api, namespace, doc)


def test_update_only_rules_protect_gang_policy(api: client.ApiClient, namespace: str) -> None:
    doc = specs.edit(specs.pd(), "spec.template.gangPolicy", {"minRoleReplicas": {"prefill": 1}})
    doc["metadata"]["namespace"] = namespace
    create(api, namespace, doc)
    server = kube.Kube(api)
    change = [
        {"op": "replace", "path": "/spec/template/gangPolicy/minRoleReplicas/prefill", "value": 0}
    ]
    with pytest.raises(kube.Invalid, match="minRoleReplicas is immutable"):
        server.patch(kube.MODELSERVINGS, namespace, "sample", change)
    removal = [{"op": "remove", "path": "/spec/template/gangPolicy"}]
    with pytest.raises(kube.Invalid, match="gangPolicy is required once set"):
        server.patch(kube.MODELSERVINGS, namespace, "sample", removal)


def test_the_scale_subresource_drives_replicas(api: client.ApiClient, namespace: str) -> None:
    doc = specs.pd()
    doc["metadata"]["namespace"] = namespace
    create(api, namespace, doc)
    custom = client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, "sample", {"spec": {"replicas": 3}}
    )
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "sample")
    assert stored["spec"]["replicas"] == 3
    scale = custom.get_namespaced_custom_object_scale(GROUP, VERSION, namespace, PLURAL, "sample")
    assert scale["spec"]["replicas"] == 3


def test_the_crd_file_applies_as_committed(api: client.ApiClient) -> None:
    committed = yaml.safe_load(
        (ROOT / "crds" / "workload.serving.volcano.sh_modelservings.yaml").read_text()
    )
    served = kube.Kube(api).get(kube.CRDS, None, committed["metadata"]["name"])
    schema = served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema == committed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert output.to_yaml([committed]).startswith("---\napiVersion: apiextensions.k8s.io/v1\n")


def test_kubectl_scale_goes_through_the_scale_subresource(
    api: client.ApiClient, namespace: str, control_plane: Any
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the scale subresource itself is tested above")
    doc = specs.pd()
    doc["metadata"]["namespace"] = namespace
    create(api, namespace, doc)
    done = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(control_plane),
            "-n",
            namespace,
            "scale",
            "modelserving/sample",
            "--replicas=4",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "sample"
    )
    assert stored["spec"]["replicas"] == 4
