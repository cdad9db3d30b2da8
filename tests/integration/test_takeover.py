"""Taking over ModelServings from the reference controller (docs/behaviour.md#adoption).

Every captured example is loaded as the reference left it (tests/data/kthena-objects: the
ModelServing with its status, its pods Ready, Services, PodGroups, ControllerRevisions, owner
references rewritten to the new ModelServing's UID); `msctl plan` is shown before the switch;
then the daemon starts and must neither create nor delete a pod, relabel every pod as ours,
and keep the status Available at our revision; an image change afterwards rolls as usual.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from generator import model, naming
from generator.templating import TemplateSet
from sync import kube
from sync.preview import preview
from tests.integration import kubelet as kl
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, running_controller
from tests.integration.test_rollout import NEW_IMAGE, Sampler, set_image
from tests.unit import captured, specs

TEMPLATES = TemplateSet()


class Recording(kube.Kube):
    """The daemon's client, recording every request as (verb, path)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[str, str]] = []

    def _send(self, verb: str, method: str, path: str, **kwargs: Any) -> Any:
        self.requests.append((verb, path))
        return super()._send(verb, method, path, **kwargs)

    def writes(self, start: int = 0) -> Counter[str]:
        """Writes since request number `start`, as 'verb resource' counts."""
        out: Counter[str] = Counter()
        for verb, path in self.requests[start:]:
            if verb in ("create", "patch", "update", "delete"):
                parts = path.split("/")
                resource = parts[parts.index("namespaces") + 2] if "namespaces" in parts else path
                out[f"{verb} {resource}{'/status' if path.endswith('/status') else ''}"] += 1
        return out


def load(
    cluster: Cluster,
    api: client.ApiClient,
    capture: captured.Capture,
    edit_pod: Callable[[dict[str, Any]], None] = lambda pod: None,
) -> dict[str, Any]:
    """The capture in the test namespace as the reference left it (a Kubelet must run);
    returns the ModelServing."""
    ms = cluster.apply(capture.ms)
    status = copy.deepcopy(capture.status)
    status["observedGeneration"] = ms["metadata"]["generation"]
    ms = cluster.kube.replace(
        kube.MODELSERVINGS, cluster.namespace, {**ms, "status": status}, sub="status"
    )
    for obj in capture.owned_by(ms["metadata"]["uid"], cluster.namespace):
        obj.pop("status", None)
        if obj["kind"] == "Pod":
            edit_pod(obj)
        cluster.kube.create(kube.BY_KIND[obj["kind"]], cluster.namespace, obj)
    names = [p["metadata"]["name"] for p in capture.of("Pod")]
    # The running test kubelet marks them Ready, as the capture had them.
    cluster.wait(lambda: kl.pods_ready(api, cluster.namespace, names), "pods Ready", 30)
    return cluster.ms(ms["metadata"]["name"])


def plan_text(control_plane: ControlPlane, cluster: Cluster, capture: captured.Capture) -> str:
    reader = kube.Kube.connect(str(control_plane))
    try:
        doc = copy.deepcopy(capture.ms)
        doc["metadata"]["namespace"] = cluster.namespace
        return preview(reader, TEMPLATES, doc, cluster.namespace).text()
    finally:
        reader.close()


def ours(pod: dict[str, Any], ms: model.ModelServing) -> bool:
    labels = pod["metadata"]["labels"]
    role = next(r for r in ms.template.roles if r.name == labels[naming.ROLE_LABEL])
    return (
        labels[naming.REVISION_LABEL] == ms.revision
        and labels[naming.ROLE_TEMPLATE_HASH_LABEL] == role.template_hash
    )


def taken_over(cluster: Cluster, spec: model.ModelServing) -> bool:
    status = cluster.ms(spec.name).get("status", {})
    return status.get("currentRevision") == spec.revision and all(
        ours(p, spec) for p in cluster.pods().values()
    )


def max_unavailable(spec: model.ModelServing) -> int:
    value = spec.rollout.max_unavailable
    return value if isinstance(value, int) else max(1, spec.replicas * int(value[:-1]) // 100)


@pytest.mark.parametrize("name", captured.CAPTURES)
def test_the_daemon_takes_over_without_restarting_a_pod(
    name: str, control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    capture = captured.load(name)
    cluster = Cluster(api, namespace)
    with Kubelet(api, namespace):
        before = load(cluster, api, capture)
        spec = model.load({**before, "status": {}}, plugins=TEMPLATES.plugins())
        uids = cluster.uids()
        text = plan_text(control_plane, cluster, capture)
        print(f"\n--- msctl plan before the switch ({name}):\n{text}")
        assert f"takeover: adopt {len(uids)} pods in place, roll 0" in text
        with running_controller(control_plane, namespace, client_class=Recording) as controller:
            recorder = controller.client
            assert isinstance(recorder, Recording)
            cluster.wait(lambda: taken_over(cluster, spec), "every pod relabelled", 30)
            cluster.wait(controller.queue.idle, "an idle queue")
            takeover = recorder.writes()
            every = Counter(verb for verb, _ in recorder.requests)
            print(f"--- API writes of the takeover ({name}): {dict(sorted(takeover.items()))}")
            print(f"--- every request of the daemon until idle: {dict(sorted(every.items()))}")
            # Exactly: our ControllerRevision, a label patch per pod, the status, the pruning
            # of the reference's ControllerRevision. No pod created or deleted.
            assert takeover == {
                "create controllerrevisions": 1,
                "patch pods": len(uids),
                "update modelservings/status": 1,
                "delete controllerrevisions": 1,
            }
            assert cluster.uids() == uids
            after = cluster.ms(spec.name)["status"]
            old = before["status"]
            assert after["currentRevision"] == after["updateRevision"] == spec.revision
            for key in ("replicas", "availableReplicas", "updatedReplicas", "labelSelector"):
                assert after[key] == old[key], key
            # The reference's conditions stay as they were, transition times included; the
            # kstatus Reconciling and Stalled are ours, on top.
            ours = {"Reconciling", "Stalled"}
            assert [c for c in after["conditions"] if c["type"] not in ours] == old["conditions"]
            assert cluster.names(kube.REVISIONS) == [naming.revision_name(spec.name, spec.revision)]

            # An image change afterwards rolls as usual, within maxUnavailable.
            size = sum(r.replicas * r.size for r in spec.template.roles)
            start = len(recorder.requests)
            with Sampler(cluster, spec.name, spec.replicas, size).running() as sampler:
                set_image(
                    cluster, spec.name, NEW_IMAGE, roles=tuple(range(len(spec.template.roles)))
                )
                cluster.wait(
                    lambda: (
                        all(
                            c["image"] == NEW_IMAGE
                            for p in cluster.pods().values()
                            for c in p["spec"]["containers"]
                        )
                        and cluster.ms(spec.name)["status"].get("availableReplicas")
                        == spec.replicas
                        and len(cluster.live_pod_names()) == len(uids)
                    ),
                    "the image rolled out",
                    90,
                )
            assert sampler.worst <= max_unavailable(spec)
            assert not set(cluster.uids().values()) & set(uids.values())
            assert recorder.writes(start)["delete pods"] == len(uids)


def test_a_pod_running_another_image_is_rolled_not_adopted(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    capture = captured.load("rollingupdate.initial")
    cluster = Cluster(api, namespace)

    def older(pod: dict[str, Any]) -> None:
        if pod["metadata"]["labels"][naming.GROUP_NAME_LABEL] in ("sample-2", "sample-3"):
            for container in pod["spec"]["containers"]:
                container["image"] = "nginx:1.25"

    with Kubelet(api, namespace):
        before = load(cluster, api, capture, older)
        spec = model.load({**before, "status": {}}, plugins=TEMPLATES.plugins())
        uids = cluster.uids()
        text = plan_text(control_plane, cluster, capture)
        print(f"\n--- msctl plan before the switch (two groups on another image):\n{text}")
        assert "takeover: adopt 8 pods in place, roll 8" in text
        with (
            Sampler(cluster, spec.name, 4, 4).running() as sampler,
            running_controller(control_plane, namespace, client_class=Recording),
        ):
            cluster.wait(lambda: taken_over(cluster, spec), "every pod ours", 60)
            cluster.wait_available(spec.name, 4, 60)
        assert sampler.worst <= 2
        now = cluster.uids()
        kept = {n for n in uids if n.startswith(("sample-0-", "sample-1-"))}
        assert {n: now[n] for n in kept} == {n: uids[n] for n in kept}
        assert all(now[n] != uids[n] for n in uids if n not in kept)
        assert all(
            c["image"] == "nginx" for p in cluster.pods().values() for c in p["spec"]["containers"]
        )


def test_an_upgrade_of_msctl_restarts_no_pod_that_runs_the_same(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd(replicas=2))
    with Kubelet(api, namespace):
        with running_controller(control_plane, namespace):
            ms = cluster.wait_available("sample", 2)
        revision = ms["status"]["updateRevision"]
        uids = cluster.uids()
        # "The previous version" labelled its pods with another revision hash and a label
        # this version no longer renders, as the daemon's own field manager.
        previous = kube.Kube(api, field_manager=naming.FIELD_MANAGER)
        for name in uids:
            labels = {
                naming.REVISION_LABEL: "previous1",
                naming.ROLE_TEMPLATE_HASH_LABEL: "previous2",
                "msctl.example/previous-version": "yes",
            }
            previous.merge_patch(kube.PODS, namespace, name, {"metadata": {"labels": labels}})
        spec = model.load(cluster.ms("sample"), plugins=TEMPLATES.plugins())
        with running_controller(control_plane, namespace, client_class=Recording) as controller:
            cluster.wait(lambda: taken_over(cluster, spec), "every pod relabelled", 30)
            cluster.wait(controller.queue.idle, "an idle queue")
            recorder = controller.client
            assert isinstance(recorder, Recording)
            assert recorder.writes() == {"patch pods": len(uids)}
        assert cluster.uids() == uids
        assert not any(
            "msctl.example/previous-version" in p["metadata"]["labels"]
            for p in cluster.pods().values()
        )
        assert cluster.ms("sample")["status"]["currentRevision"] == revision
