"""The planner in the corners of issue 15, over the simulator: terminating instances and held
objects, partition-protected groups and instances and the revisions they need, and
ServingGroupRecreate for an instance that vanished whole."""

from __future__ import annotations

from typing import Any

from generator import naming
from sync.preview import Preview
from tests.unit import specs
from tests.unit.simulator import Obj, Simulator

NEW = "nginx:1.28"


def ready_all(sim: Simulator) -> None:
    sim.advance(sim.ready_after)
    sim.settle()


def names(sim: Simulator, kind: str = "Pod") -> list[str]:
    return sorted(o["metadata"]["name"] for o in sim.kind(kind))


def terminating(sim: Simulator, kind: str = "Pod") -> list[str]:
    return sorted(o["metadata"]["name"] for o in sim.kind(kind) if _gone(o))


def _gone(obj: Obj) -> bool:
    return "deletionTimestamp" in obj["metadata"]


def image(pod: Obj) -> str:
    found: str = pod["spec"]["containers"][0]["image"]
    return found


def set_image(sim: Simulator, role: int, value: str) -> None:
    roles = sim.doc["spec"]["template"]["roles"]
    for kind in ("entryTemplate", "workerTemplate"):
        if kind in roles[role]:
            roles[role][kind]["spec"]["containers"][0]["image"] = value
    sim.doc["metadata"]["generation"] += 1


def uids(sim: Simulator) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}


def one_pd(prefill: int = 2, decode: int = 1, **spec: Any) -> dict[str, Any]:
    roles = [specs.role("prefill", prefill, workers=0), specs.role("decode", decode, workers=0)]
    return specs.modelserving(roles=roles, **spec)


def counts(sim: Simulator) -> tuple[int, int, int]:
    s = sim.status
    return s["replicas"], s["updatedReplicas"], s["availableReplicas"]


def test_a_terminating_instance_sets_aside_only_itself_and_keeps_its_ordinal() -> None:
    sim = Simulator(one_pd(), held=lambda o: o["metadata"]["name"] == "sample-0-prefill-1-0")
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 1)
    sim.step()
    assert terminating(sim) == ["sample-0-prefill-1-0"]
    sim.edit("spec.template.roles.1.replicas", 2)
    sim.edit("spec.template.roles.0.replicas", 3)
    plan = sim.step()
    created = sorted(s.name for s in plan.steps if s.verb == "create")
    # the rest of the group scales at once; prefill-1's ordinal stays reserved
    assert created == ["sample-0-decode-1-0", "sample-0-prefill-2-0"]
    assert counts(sim) == (1, 1, 0)  # Scaling: still updated, not available
    ready_all(sim)
    assert counts(sim) == (1, 1, 0)  # not available while prefill-1 still exists
    sim.release("Pod", "sample-0-prefill-1-0")
    ready_all(sim)
    assert "sample-0-prefill-1-0" in names(sim)
    assert counts(sim) == (1, 1, 1)


def test_a_held_pod_counts_until_it_is_gone_even_in_the_plan_that_deletes_it() -> None:
    sim = Simulator(one_pd(), held=lambda o: o["metadata"]["name"] == "sample-0-prefill-1-0")
    ready_all(sim)
    held = uids(sim)["sample-0-prefill-1-0"]
    sim.edit("spec.template.roles.0.replicas", 1)
    sim.step()
    assert counts(sim) == (1, 1, 0)  # the status written with the delete already says so
    sim.edit("spec.template.roles.0.replicas", 2)
    ready_all(sim)  # nothing is created while prefill-1 is held: its ordinal is taken
    assert uids(sim)["sample-0-prefill-1-0"] == held
    assert counts(sim) == (1, 1, 0)
    sim.release("Pod", "sample-0-prefill-1-0")
    ready_all(sim)
    assert uids(sim)["sample-0-prefill-1-0"] != held
    assert counts(sim) == (1, 1, 1)


def test_a_held_service_keeps_its_instance_terminating_and_its_ordinal_reserved() -> None:
    doc = specs.modelserving(roles=[specs.role("prefill", 2, workers=1)])
    sim = Simulator(doc, held=lambda o: o["kind"] == "Service")
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 1)
    sim.step()
    assert terminating(sim, "Service") == ["sample-0-prefill-1-0"]
    assert names(sim) == ["sample-0-prefill-0-0", "sample-0-prefill-0-1"]
    sim.edit("spec.template.roles.0.replicas", 2)
    ready_all(sim)
    assert names(sim) == ["sample-0-prefill-0-0", "sample-0-prefill-0-1"]
    assert counts(sim) == (1, 1, 0)
    sim.release("Service", "sample-0-prefill-1-0")
    ready_all(sim)
    assert counts(sim) == (1, 1, 1)
    assert "sample-0-prefill-1-1" in names(sim)


def test_a_held_podgroup_keeps_its_group_deleting_and_counted() -> None:
    sim = Simulator(one_pd(replicas=2), held=lambda o: o["kind"] == "PodGroup")
    ready_all(sim)
    sim.edit("spec.replicas", 1)
    ready_all(sim)
    assert terminating(sim, "PodGroup") == ["sample-1"]
    assert list(sim.groups()) == [0]
    # the group still exists (its PodGroup does), being deleted: counted, not updated
    assert counts(sim) == (2, 1, 1)
    sim.edit("spec.replicas", 2)
    ready_all(sim)
    assert list(sim.groups()) == [0]  # its ordinal is not reused while it goes
    text = Preview(sim.ms(), True, sim.step()).text()
    assert (
        "note: ServingGroup sample-1 is terminating: counted and its ordinal reserved until it"
        " is gone"
    ) in text.splitlines()
    sim.release("PodGroup", "sample-1")
    ready_all(sim)
    assert list(sim.groups()) == [0, 1]
    assert counts(sim) == (2, 2, 2)


def test_a_protected_group_keeps_the_role_counts_of_its_revision() -> None:
    doc = one_pd(
        prefill=1,
        replicas=2,
        rolloutStrategy={
            "type": "ServingGroupRollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "partition": 1},
        },
    )
    sim = Simulator(doc)
    ready_all(sim)
    old = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 2)
    ready_all(sim)
    assert [n for n in names(sim) if "prefill" in n] == [
        "sample-0-prefill-0-0",
        "sample-1-prefill-0-0",
        "sample-1-prefill-1-0",
    ]
    assert sim.groups() == {0: old, 1: sim.ms().revision}
    assert counts(sim) == (2, 1, 2)


def test_servinggrouprecreate_recreates_the_group_of_an_instance_that_vanished() -> None:
    doc = specs.modelserving(
        roles=[specs.role("prefill", 1, workers=1), specs.role("decode", 1, workers=0)],
        recoveryPolicy="ServingGroupRecreate",
    )
    sim = Simulator(doc)
    ready_all(sim)
    before = uids(sim)
    sim.remove("Pod", "sample-0-decode-0-0")
    sim.recall = None  # the same when it vanished while the daemon was down
    plan = sim.step()
    deleted = sorted(s.name for s in plan.steps if s.verb == "delete" and s.kind == "Pod")
    assert deleted == ["sample-0-prefill-0-0", "sample-0-prefill-0-1"]
    ready_all(sim)
    after = uids(sim)
    assert sorted(after) == sorted(before)
    assert not set(after.values()) & set(before.values())


def test_servinggrouprecreate_still_scales_a_role_up_without_recreating() -> None:
    doc = one_pd(prefill=1, recoveryPolicy="ServingGroupRecreate")
    sim = Simulator(doc)
    ready_all(sim)
    before = uids(sim)
    sim.edit("spec.template.roles.1.replicas", 2)
    ready_all(sim)
    after = uids(sim)
    assert {n: after[n] for n in before} == before
    assert "sample-0-decode-1-0" in after


def role_partition() -> Simulator:
    doc = one_pd(prefill=3, rolloutStrategy={"type": "RoleRollingUpdate"})
    doc["spec"]["template"]["roles"][0]["partition"] = 1
    sim = Simulator(doc)
    ready_all(sim)
    return sim


def test_a_role_partition_keeps_the_group_revision_and_its_controllerrevision() -> None:
    sim = role_partition()
    old = sim.ms().revision
    set_image(sim, 0, NEW)
    new = sim.ms().revision
    ready_all(sim)
    images = {p["metadata"]["name"]: image(p) for p in sim.pods()}
    assert images["sample-0-prefill-0-0"] != NEW
    assert images["sample-0-prefill-1-0"] == images["sample-0-prefill-2-0"] == NEW
    assert (sim.status["currentRevision"], sim.status["updateRevision"]) == (old, new)
    assert counts(sim) == (1, 0, 1)
    assert names(sim, "ControllerRevision") == [f"sample-{new}", f"sample-{old}"]


def test_a_protected_instance_is_rebuilt_from_the_old_controllerrevision() -> None:
    sim = role_partition()
    old = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    first = sim.pod("sample-0-prefill-0-0")
    sim.remove("Pod", "sample-0-prefill-0-0")
    sim.recall = None  # a daemon restart changes nothing: nothing is remembered
    ready_all(sim)
    again = sim.pod("sample-0-prefill-0-0")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert image(again) == image(first)
    assert again["metadata"]["labels"][naming.REVISION_LABEL] == old
    assert sim.status["currentRevision"] == old
    assert f"sample-{old}" in names(sim, "ControllerRevision")


def test_a_protected_group_keeps_its_controllerrevision_when_current_revision_moves_on() -> None:
    doc = one_pd(
        prefill=1,
        replicas=3,
        rolloutStrategy={
            "type": "ServingGroupRollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "partition": 1},
        },
    )
    sim = Simulator(doc)
    ready_all(sim)
    first = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    second = sim.ms().revision
    sim.edit("spec.rolloutStrategy.rollingUpdateConfiguration.partition", 3)
    set_image(sim, 0, "nginx:1.29")
    ready_all(sim)
    # groups 1 and 2 hold the second revision, so it is currentRevision; group 0 still
    # runs the first, whose record is kept to rebuild it
    assert sim.groups() == {0: first, 1: second, 2: second}
    assert sim.status["currentRevision"] == second
    assert f"sample-{first}" in names(sim, "ControllerRevision")
    sim.remove("Pod", "sample-0-prefill-0-0")
    ready_all(sim)
    assert sim.groups() == {0: first, 1: second, 2: second}


def test_msctl_plan_shows_terminating_and_protected_instances_for_what_they_are() -> None:
    sim = role_partition()
    sim.held = lambda o: o["metadata"]["name"] == "sample-0-prefill-2-0"
    old = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    sim.edit("spec.template.roles.0.replicas", 2)
    sim.step()
    text = Preview(sim.ms(), True, sim.step()).text()
    notes = [line for line in text.splitlines() if line.startswith("note: ")]
    kept = sim.pod("sample-0-prefill-0-0")["metadata"]["labels"][naming.ROLE_TEMPLATE_HASH_LABEL]
    assert notes == [
        f"note: prefill-0 in ServingGroup sample-0 is protected by role prefill's partition:"
        f" kept at revision {old} (template {kept})",
        "note: prefill-2 in ServingGroup sample-0 is terminating: set aside, its ordinal"
        " reserved, the group Scaling until it is gone",
    ]


def test_msctl_plan_shows_a_protected_group_for_what_it_is() -> None:
    doc = one_pd(
        prefill=1,
        replicas=2,
        rolloutStrategy={
            "type": "ServingGroupRollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "partition": 1},
        },
    )
    sim = Simulator(doc)
    ready_all(sim)
    old = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    text = Preview(sim.ms(), True, sim.step()).text()
    assert (
        f"note: ServingGroup sample-0 is protected by the partition: kept at revision {old}"
        " (roles and counts from its ControllerRevision)"
    ) in text.splitlines()


def test_a_second_rollout_keeps_the_protected_instance_at_its_first_revision() -> None:
    sim = role_partition()
    first = sim.ms().revision
    set_image(sim, 0, NEW)
    ready_all(sim)
    set_image(sim, 0, "nginx:1.29")
    sim.step()  # mid-rollout: prefill-1 and prefill-2 still outdated at the second revision
    assert sim.status["currentRevision"] == first
    sim.remove("Pod", "sample-0-prefill-0-0")
    ready_all(sim)
    again = sim.pod("sample-0-prefill-0-0")
    assert again["metadata"]["labels"][naming.REVISION_LABEL] == first
    assert image(again) == "nginx:1.27"
    assert sim.status["currentRevision"] == first
    assert f"sample-{first}" in names(sim, "ControllerRevision")
