"""The planner over a simulated cluster: creation, scaling, ordinals, recovery, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from generator import naming
from generator.naming import FAILED_SINCE_ANNOTATION as FAILED_SINCE
from sync.core import recovery
from tests.unit import specs
from tests.unit.simulator import Simulator


def pod_names(sim: Simulator) -> list[str]:
    return sorted(p["metadata"]["name"] for p in sim.pods())


def ready_all(sim: Simulator) -> None:
    sim.advance(sim.ready_after)
    sim.settle()


def test_a_new_modelserving_gets_every_object_in_dependency_order() -> None:
    sim = Simulator(specs.pd())
    plan = sim.step()
    kinds = [(s.verb, s.kind) for s in plan.steps if s.verb != "event"]
    assert kinds == [
        ("create", "ControllerRevision"),
        ("create", "PodGroup"),
        ("create", "Service"),
        ("create", "Service"),
        ("create", "Pod"),
        ("create", "Pod"),
        ("create", "Pod"),
        ("create", "Pod"),
        ("status", "ModelServing"),
    ]
    entries = [s.name for s in plan.steps if s.kind == "Pod"][:2]
    assert entries == ["sample-0-prefill-0-0", "sample-0-decode-0-0"]
    events = [s.event.message for s in plan.steps if s.event is not None]
    assert events == [
        "Role prefill/prefill-0 in ServingGroup sample-0 is now Creating",
        "Role decode/decode-0 in ServingGroup sample-0 is now Creating",
    ]


def test_a_second_reconcile_with_nothing_new_does_nothing() -> None:
    sim = Simulator(specs.pd())
    sim.step()
    again = sim.step()
    assert again.steps == ()
    ready_all(sim)
    assert sim.step().steps == ()


def test_status_converges_to_available() -> None:
    sim = Simulator(specs.pd(replicas=2))
    sim.step()
    assert sim.status["availableReplicas"] == 0
    assert sim.status["conditions"][0]["type"] == "Progressing"
    assert sim.status["conditions"][0]["message"] == "Some groups are progressing: [0 1]"
    ready_all(sim)
    status = sim.status
    assert (status["replicas"], status["availableReplicas"], status["updatedReplicas"]) == (2, 2, 2)
    assert status["currentReplicas"] == 2
    assert status["currentRevision"] == status["updateRevision"] == sim.ms().revision
    available = {c["type"]: c["status"] for c in status["conditions"]}
    assert available == {
        "Progressing": "False",
        "Available": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert status["labelSelector"] == (
        "modelserving.volcano.sh/entry=true,modelserving.volcano.sh/name=sample,"
        "modelserving.volcano.sh/role-id=prefill-0,modelserving.volcano.sh/role=prefill"
    )


def test_running_events_are_sent_once_per_instance() -> None:
    sim = Simulator(specs.pd())
    sim.step()
    ready_all(sim)
    messages = [
        s.event.message
        for p in sim.history
        for s in p.steps
        if s.event and s.event.reason == "RoleRunning"
    ]
    assert sorted(messages) == [
        "Role decode/decode-0 in ServingGroup sample-0 is now Running",
        "Role prefill/prefill-0 in ServingGroup sample-0 is now Running",
    ]


def test_group_scale_up_and_down_keeps_the_lowest_ordinals() -> None:
    sim = Simulator(specs.pd())
    ready_all(sim)
    sim.edit("spec.replicas", 3)
    ready_all(sim)
    assert list(sim.groups()) == [0, 1, 2]
    sim.edit("spec.replicas", 1)
    sim.step()
    assert list(sim.groups()) == [0]
    assert [p["metadata"]["name"] for p in sim.kind("PodGroup")] == ["sample-0"]
    assert [s["metadata"]["name"] for s in sim.kind("Service")] == [
        "sample-0-decode-0-0",
        "sample-0-prefill-0-0",
    ]
    # Deleted groups count until the API says they are gone: the deletion's own reconcile
    # still reports them, the next one (their deletion events) no longer.
    assert sim.status["replicas"] == 3
    sim.step()
    assert sim.status["replicas"] == 1


def test_scale_down_removes_not_ready_then_cheapest_then_highest() -> None:
    sim = Simulator(specs.pd(replicas=4))
    ready_all(sim)
    sim.set_pod_status("sample-1-prefill-0-0", ready=False)
    for pod in sim.pods():
        if pod["metadata"]["name"].startswith("sample-3-"):
            pod["metadata"].setdefault("annotations", {})[naming.DELETION_COST_ANNOTATION] = "-5"
    sim.edit("spec.replicas", 2)
    sim.step()
    assert list(sim.groups()) == [0, 2]


def test_scale_up_fills_gaps_and_keeps_existing_ordinals() -> None:
    sim = Simulator(specs.pd(replicas=3))
    ready_all(sim)
    for pod in list(sim.pods()):
        if pod["metadata"]["name"].startswith("sample-1-"):
            sim.remove("Pod", pod["metadata"]["name"])
    sim.remove("PodGroup", "sample-1")
    for svc in list(sim.kind("Service")):
        if svc["metadata"]["name"].startswith("sample-1-"):
            sim.remove("Service", svc["metadata"]["name"])
    sim.edit("spec.replicas", 2)
    sim.step()
    assert list(sim.groups()) == [0, 2]  # an existing out-of-range ordinal counts and stays
    sim.edit("spec.replicas", 3)
    sim.step()
    assert list(sim.groups()) == [0, 1, 2]


def test_role_scale_up_and_down() -> None:
    sim = Simulator(specs.pd())
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 3)
    sim.step()
    assert [n for n in pod_names(sim) if "prefill" in n] == [
        f"sample-0-prefill-{r}-{k}" for r in range(3) for k in range(2)
    ]
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 1)
    sim.step()
    assert [n for n in pod_names(sim) if "prefill" in n] == [
        "sample-0-prefill-0-0",
        "sample-0-prefill-0-1",
    ]
    assert sim.status["availableReplicas"] == 0  # scaling until the deleted ones are gone
    sim.step()
    assert sim.status["availableReplicas"] == 1


@pytest.mark.parametrize(
    ("policy", "survivors"),
    [
        ("RoleRecreate", {"sample-0-decode-0-0", "sample-0-decode-0-1"}),
        ("ServingGroupRecreate", set()),
        ("None", {"sample-0-decode-0-0", "sample-0-decode-0-1", "sample-0-prefill-0-0"}),
    ],
)
def test_a_deleted_pod_is_recovered_by_policy(policy: str, survivors: set[str]) -> None:
    sim = Simulator(
        specs.pd(),
    )
    sim.doc["spec"]["recoveryPolicy"] = policy
    ready_all(sim)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}
    sim.remove("Pod", "sample-0-prefill-0-1")
    sim.step()
    sim.step()
    now = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}
    assert set(now) == set(uids)
    kept = {n for n in now if now[n] == uids[n]}
    assert kept == survivors


def fail(sim: Simulator, name: str) -> None:
    sim.set_pod_status(name, ready=False, phase="Failed")


def test_a_failed_pod_waits_out_the_grace_period_then_is_recovered() -> None:
    doc = specs.edit(specs.pd(), "spec.template.restartGracePeriodSeconds", 30)
    sim = Simulator(doc)
    ready_all(sim)
    fail(sim, "sample-0-prefill-0-1")
    first = sim.step()
    stamp = recovery.timestamp(sim.clock)
    assert [s.describe() for s in first.steps] == [
        "patch Pod sample-0-prefill-0-1: pod sample-0-prefill-0-1 failed"
        f' [add /metadata/annotations/modelserving.volcano.sh~1failed-since = "{stamp}"]',
        "write status of ModelServing sample: availableReplicas 1 -> 0, currentReplicas 1 -> 0,"
        " progress changed, roles changed, Progressing=True (GroupProgressing),"
        " Reconciling=True (GroupProgressing), Available=False (AllGroupsReady)",
    ]
    assert first.requeue_after == 30
    sim.advance(20)
    waiting = sim.step()
    assert not [s for s in waiting.steps if s.verb == "delete"]
    assert waiting.requeue_after == pytest.approx(10)
    sim.advance(10)
    replaced = sim.step()
    assert sorted(s.name for s in replaced.steps if s.verb == "delete") == [
        "sample-0-prefill-0-0",
        "sample-0-prefill-0-0",
        "sample-0-prefill-0-1",
    ]


def test_a_pod_that_recovers_inside_the_window_is_left_alone_and_unmarked() -> None:
    doc = specs.edit(specs.pd(), "spec.template.restartGracePeriodSeconds", 30)
    sim = Simulator(doc)
    ready_all(sim)
    uid = sim.pod("sample-0-prefill-0-1")["metadata"]["uid"]
    sim.set_pod_status("sample-0-prefill-0-1", ready=False, restarts=1)
    sim.step()
    assert FAILED_SINCE in sim.pod("sample-0-prefill-0-1")["metadata"]["annotations"]
    sim.advance(10)
    sim.set_pod_status("sample-0-prefill-0-1", ready=True, restarts=1)
    sim.step()
    pod = sim.pod("sample-0-prefill-0-1")
    assert pod["metadata"]["uid"] == uid
    assert FAILED_SINCE not in pod["metadata"]["annotations"]
    sim.advance(60)
    assert not [s for s in sim.step().steps if s.verb == "delete"]


def test_without_grace_a_failed_pod_is_replaced_at_once() -> None:
    sim = Simulator(specs.pd())
    sim.doc["spec"]["recoveryPolicy"] = "None"
    ready_all(sim)
    fail(sim, "sample-0-decode-0-0")
    deletes = [s for s in sim.step().steps if s.verb == "delete"]
    assert [s.name for s in deletes] == ["sample-0-decode-0-0"]
    recreated = sim.step()
    assert [s.name for s in recreated.steps if s.verb == "create"] == ["sample-0-decode-0-0"]


def test_objects_of_another_owner_are_never_touched() -> None:
    sim = Simulator(specs.pd())
    foreign: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sample-0-prefill-0-1",
            "namespace": "default",
            "labels": {naming.NAME_LABEL: "sample", naming.GROUP_NAME_LABEL: "sample-0"},
            "ownerReferences": [
                {
                    "kind": "ModelServing",
                    "uid": "someone-else",
                    "controller": True,
                    "name": "sample",
                }
            ],
        },
        "spec": {},
    }
    sim.add(foreign)
    plan = sim.step()
    touched = {s.name for s in plan.steps if s.kind == "Pod"}
    assert "sample-0-prefill-0-1" not in touched
    assert plan.requeue_after == 1.0
    assert any(s.event and s.event.reason == "ForeignObject" for s in plan.steps)
    assert (
        sim.pod("sample-0-prefill-0-1")["metadata"]["ownerReferences"][0]["uid"] == "someone-else"
    )


def test_label_drift_is_patched_with_a_guarded_json_patch() -> None:
    sim = Simulator(specs.pd())
    ready_all(sim)
    sim.doc = specs.lws_owned(sim.doc)
    sim.doc["spec"]["plugins"] = [{"name": "lws-standard-labels"}]
    sim.doc["metadata"]["generation"] += 1
    plan = sim.step()
    patches = [s for s in plan.steps if s.verb == "patch"]
    assert len(patches) == 4
    ops = patches[0].ops
    assert ops[0] == {
        "op": "test",
        "path": "/metadata/uid",
        "value": sim.pod(patches[0].name)["metadata"]["uid"],
    }
    assert ops[1]["path"] == "/metadata/resourceVersion"
    assert {op["path"] for op in ops[2:]} >= {"/metadata/labels/leaderworkerset.sigs.k8s.io~1name"}
    assert sim.step().steps == ()


def test_replicas_zero_still_gets_a_status() -> None:
    sim = Simulator(specs.pd(replicas=0))
    sim.step()
    assert sim.pods() == []
    assert sim.status["replicas"] == 0
    assert sim.status["conditions"][0]["type"] == "Available"


def test_an_edited_identity_label_is_patched_back_on_the_same_pod() -> None:
    sim = Simulator(specs.pd())
    ready_all(sim)
    pod = sim.pod("sample-0-decode-0-0")
    uid = pod["metadata"]["uid"]
    pod["metadata"]["labels"][naming.ROLE_LABEL] = "x"
    pod["metadata"]["resourceVersion"] = "99"  # as the API server does on any write
    plan = sim.step()
    assert [(s.verb, s.name) for s in plan.steps if s.verb != "event"] == [
        ("patch", "sample-0-decode-0-0")
    ]
    assert sim.pod("sample-0-decode-0-0")["metadata"]["uid"] == uid
    assert sim.pod("sample-0-decode-0-0")["metadata"]["labels"][naming.ROLE_LABEL] == "decode"
    assert sim.step().steps == ()


def test_an_owned_object_that_stands_for_nothing_is_deleted_once() -> None:
    sim = Simulator(specs.pd())
    ready_all(sim)
    extra = {
        **sim.pod("sample-0-decode-0-0"),
        "metadata": {**sim.pod("sample-0-decode-0-0")["metadata"]},
    }
    extra["metadata"]["name"] = "sample-0-decode-helper"
    sim.objects[("Pod", "sample-0-decode-helper")] = extra
    first = sim.step()
    assert [(s.verb, s.name) for s in first.steps if s.verb != "event"] == [
        ("delete", "sample-0-decode-helper")
    ]
    assert sim.step().steps == ()
