"""Adoption by content (docs/behaviour.md#adoption): what counts as the same pod, and taking
over what the reference controller, an older msctl or an earlier revision left running."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from generator import naming
from sync.core import adopt
from sync.core.adopt import difference
from tests.unit import captured, specs
from tests.unit.simulator import Simulator

ENTRY = "sample-0-decode-0-0"
OURS = f"{ENTRY}.{ENTRY}.ns"


def rendered() -> dict[str, Any]:
    return {
        "spec": {
            "containers": [
                {
                    "name": "leader",
                    "image": "nginx",
                    "env": [
                        {"name": "GROUP_SIZE", "value": "2"},
                        {"name": naming.ENV_ENTRY_ADDRESS, "value": OURS},
                    ],
                    "resources": {"limits": {"nvidia.com/gpu": "8", "memory": "1Gi"}},
                }
            ],
            "hostname": ENTRY,
            "subdomain": ENTRY,
            "schedulerName": "volcano",
        }
    }


def as_stored(pod: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for `pod`: its defaults and admission's additions."""
    out = copy.deepcopy(pod)
    spec = out["spec"]
    spec.update(
        dnsPolicy="ClusterFirst",
        enableServiceLinks=True,
        preemptionPolicy="PreemptLowerPriority",
        priority=0,
        restartPolicy="Always",
        securityContext={},
        serviceAccount="default",
        serviceAccountName="default",
        terminationGracePeriodSeconds=30,
        nodeName="node-1",
        tolerations=[
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
        ],
        volumes=[{"name": "kube-api-access-x1", "projected": {"sources": []}}],
    )
    for c in spec["containers"]:
        c.update(
            imagePullPolicy="Always",
            terminationMessagePath="/dev/termination-log",
            terminationMessagePolicy="File",
            volumeMounts=[{"name": "kube-api-access-x1", "mountPath": naming_token()}],
        )
        c["resources"]["requests"] = dict(c["resources"]["limits"])
    return out


def naming_token() -> str:
    return "/var/run/secrets/kubernetes.io/serviceaccount"


def changed(edit: Any) -> dict[str, Any]:
    pod = as_stored(rendered())
    edit(pod["spec"])
    return pod


def reference_shape(spec: dict[str, Any]) -> None:
    del spec["hostname"], spec["subdomain"]
    spec["containers"][0]["env"][1]["value"] = f"{ENTRY}.ns"


EQUIVALENT = [
    pytest.param(lambda s: None, id="server defaults and admission additions are not differences"),
    pytest.param(reference_shape, id="the reference's ENTRY_ADDRESS and missing hostname are ours"),
    pytest.param(
        lambda s: s["containers"][0]["resources"]["limits"].update(memory="1024Mi"),
        id="quantities are compared by value",
    ),
]
DIFFERENT = [
    pytest.param(
        lambda s: s["containers"][0].update(image="nginx:1.27"), "image", id="another image"
    ),
    pytest.param(
        lambda s: s["containers"][0]["env"][1].update(value="other-0.ns"),
        "env[1]",
        id="an ENTRY_ADDRESS of another pod",
    ),
    pytest.param(
        lambda s: s["containers"][0].update(command=["sleep"]),
        "command",
        id="a field the spec no longer has",
    ),
    pytest.param(
        lambda s: s["volumes"].append({"name": "data", "emptyDir": {}}),
        "volumes",
        id="a volume the spec does not have",
    ),
    pytest.param(
        lambda s: s.update(hostname="elsewhere"), "hostname", id="a hostname other than ours"
    ),
    pytest.param(
        lambda s: s.update(nodeSelector={"gpu": "a100"}), "nodeSelector", id="a scheduling field"
    ),
    pytest.param(
        lambda s: s["containers"][0]["resources"]["requests"].update(cpu="2"),
        "requests",
        id="a request the spec does not make",
    ),
]


@pytest.mark.parametrize("edit", EQUIVALENT)
def test_equivalent_pods(edit: Any) -> None:
    assert difference(rendered(), changed(edit)) is None


@pytest.mark.parametrize(("edit", "where"), DIFFERENT)
def test_different_pods(edit: Any, where: str) -> None:
    found = difference(rendered(), changed(edit))
    assert found is not None and where in found


# --- taking over a cluster run by the reference


def reference_cluster(name: str) -> tuple[Simulator, captured.Capture]:
    capture = captured.load(name)
    sim = Simulator(capture.ms)
    sim.status = copy.deepcopy(capture.status)
    for obj in capture.owned_by("ms-uid", capture.ms["metadata"]["namespace"]):
        stored = sim.add(obj)
        if obj["kind"] == "Pod":
            stored["status"] = obj["status"]
    return sim, capture


def uids(sim: Simulator) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}


@pytest.mark.parametrize("name", captured.CAPTURES)
def test_a_takeover_restarts_no_pod_and_keeps_the_status(name: str) -> None:
    sim, capture = reference_cluster(name)
    before = uids(sim)
    plan = sim.step()
    pods = len(before)
    assert f"takeover: adopt {pods} pods in place, roll 0" in plan.notes[0]
    assert not [s for s in plan.steps if s.kind == "Pod" and s.verb != "patch"]
    assert uids(sim) == before
    revision = sim.ms().revision
    for pod in sim.pods():
        labels = pod["metadata"]["labels"]
        assert labels[naming.REVISION_LABEL] == revision
        role = next(r for r in sim.ms().template.roles if r.name == labels[naming.ROLE_LABEL])
        assert labels[naming.ROLE_TEMPLATE_HASH_LABEL] == role.template_hash
    status, old = sim.status, capture.status
    assert status["currentRevision"] == status["updateRevision"] == revision
    for key in ("replicas", "availableReplicas", "updatedReplicas", "currentReplicas"):
        assert status[key] == old[key], key
    assert status["labelSelector"] == old["labelSelector"]
    # No blip in the reference's conditions, not even a transition time (ours, the kstatus
    # Reconciling and Stalled, come on top).
    ours = {"Reconciling", "Stalled"}
    assert [c for c in status["conditions"] if c["type"] not in ours] == old["conditions"]
    assert [c["metadata"]["name"] for c in sim.kind("ControllerRevision")] == [
        naming.revision_name(sim.doc["metadata"]["name"], revision)
    ]
    assert sim.step().writes == 0


def test_pods_running_another_image_are_rolled_under_the_budget() -> None:
    sim, _ = reference_cluster("rollingupdate.initial")
    for pod in sim.pods():
        if pod["metadata"]["labels"][naming.GROUP_NAME_LABEL] != "sample-0":
            pod["spec"]["containers"][0]["image"] = "nginx:1.25"
    before = uids(sim)
    plan = sim.step()
    assert "takeover: adopt 4 pods in place, roll 12" in plan.notes[-1]
    deleted = {
        s.name.rsplit("-", 3)[0] for s in plan.steps if s.verb == "delete" and s.kind == "Pod"
    }
    assert deleted == {"sample-3", "sample-2"}  # maxUnavailable 2, highest ordinals first
    assert sim.status["updatedReplicas"] == 1
    sim.advance(sim.ready_after)
    sim.settle()
    after = uids(sim)
    kept = {n for n in before if n.startswith("sample-0-")}
    assert {n: after[n] for n in kept} == {n: before[n] for n in kept}
    assert all(after[n] != before[n] for n in before if n not in kept)
    assert sim.unavailable_groups() == 0


# --- upgrades of msctl and metadata-only changes


def test_an_upgrade_of_msctl_restarts_no_pod_that_runs_the_same() -> None:
    sim = Simulator(specs.pd(replicas=2))
    sim.settle()
    before = uids(sim)
    for pod in sim.pods():  # as "the previous version" wrote them
        labels = pod["metadata"]["labels"]
        labels[naming.REVISION_LABEL] = "previous1"
        labels[naming.ROLE_TEMPLATE_HASH_LABEL] = "previous2"
        labels["msctl.example/from-the-previous-version"] = "yes"
        pod["metadata"]["resourceVersion"] += "0"
    plan = sim.step()
    assert "takeover: adopt 8 pods in place, roll 0" in plan.notes[0]
    sim.settle()
    assert uids(sim) == before
    assert set(sim.groups().values()) == {sim.ms().revision}


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param({"type": "ServingGroupRollingUpdate"}, id="group rolling update"),
        pytest.param({"type": "RoleRollingUpdate"}, id="role rolling update"),
    ],
)
def test_a_change_of_pod_metadata_alone_patches_pods_in_place(strategy: dict[str, Any]) -> None:
    doc = specs.pd(replicas=2)
    doc["spec"]["rolloutStrategy"] = strategy
    sim = Simulator(doc)
    sim.settle()
    old = sim.ms().revision
    before = uids(sim)
    sim.edit("spec.template.roles.0.entryTemplate.metadata", {"labels": {"team": "serving"}})
    new = sim.ms().revision
    assert new != old
    plan = sim.step()
    assert "metadata-only change: 8 pods patched in place, none restarted" in plan.notes
    assert not [s for s in plan.steps if s.kind == "Pod" and s.verb != "patch"]
    sim.settle()
    assert uids(sim) == before
    entries = [p for p in sim.pods() if p["metadata"]["name"].endswith("prefill-0-0")]
    assert all(p["metadata"]["labels"]["team"] == "serving" for p in entries)
    status = sim.status
    assert status["updateRevision"] == status["currentRevision"] == new
    assert status["updatedReplicas"] == 2
    assert [c["metadata"]["name"] for c in sim.kind("ControllerRevision")] == [f"sample-{new}"]


def test_relabelled_pods_of_an_unchanged_role_do_not_move_current_revision_early() -> None:
    # Two prefill instances, one replaced at a time: the group stays outdated meanwhile.
    doc = specs.modelserving(
        replicas=2, roles=[specs.role("prefill", 2), specs.role("decode", 1, 3)]
    )
    doc["spec"]["rolloutStrategy"] = {"type": "RoleRollingUpdate"}
    sim = Simulator(doc)
    sim.settle()
    old = sim.ms().revision
    decode = {n: u for n, u in uids(sim).items() if "decode" in n}
    sim.edit("spec.template.roles.0.entryTemplate.spec.containers.0.image", "nginx:1.28")
    plan = sim.step()
    relabelled = [s.name for s in plan.steps if s.verb == "patch" and s.kind == "Pod"]
    assert sorted(relabelled) == sorted(decode)  # decode runs the same: relabelled in place
    sim.step()  # sees the relabelled pods: most of each group's pods now say the new revision
    assert sim.status["currentRevision"] == old  # prefill is still rolling
    assert sim.status["updateRevision"] == sim.ms().revision != old
    sim.advance(sim.ready_after)
    sim.settle()
    assert sim.status["currentRevision"] == sim.ms().revision
    assert {n: u for n, u in uids(sim).items() if "decode" in n} == decode


def test_a_pod_is_judged_again_only_when_its_spec_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, _ = reference_cluster("rollingupdate.initial")
    sim.settle()  # the takeover's label patches are new pod objects, and new specs
    judged: list[str] = []

    def counted(want: dict[str, Any], live: dict[str, Any]) -> str | None:
        judged.append(live["metadata"]["name"])
        return difference(want, live)

    monkeypatch.setattr(adopt, "difference", counted)
    for pod in sim.pods():  # status updates: the cache keeps each spec object
        sim.set_pod_status(pod["metadata"]["name"], ready=False, phase="Pending")
        pod["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 1)
    sim.step()
    assert judged == []
    pod = sim.pods()[0]
    pod["spec"] = copy.deepcopy(pod["spec"])  # a new spec object: judged again
    sim.step()
    assert judged == [pod["metadata"]["name"]]
