"""Rolling updates, budget by budget, in the simulator (docs/behaviour.md#rollout)."""

from __future__ import annotations

from typing import Any

import pytest

from generator import naming
from sync.core import rollout
from tests.unit import specs
from tests.unit.simulator import Simulator

NEW = "nginx:2"


def serving(
    replicas: int, max_unavailable: int | str = 1, partition: int | str | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {"maxUnavailable": max_unavailable}
    if partition is not None:
        config["partition"] = partition
    doc = specs.pd(replicas=replicas)
    doc["spec"]["rolloutStrategy"] = {
        "type": "ServingGroupRollingUpdate",
        "rollingUpdateConfiguration": config,
    }
    return doc


def image_change(sim: Simulator, image: str = NEW) -> None:
    for i in range(2):
        for kind in ("entryTemplate", "workerTemplate"):
            sim.edit(f"spec.template.roles.{i}.{kind}.spec.containers.0.image", image)


def started(replicas: int, **kw: Any) -> Simulator:
    sim = Simulator(serving(replicas, **kw))
    sim.settle()
    assert sim.status["availableReplicas"] == replicas
    return sim


def run_rollout(sim: Simulator, rounds: int = 200) -> tuple[list[list[int]], int]:
    """Reconcile until settled; return the groups deleted per reconcile and the most groups
    ever unavailable at once."""
    order: list[list[int]] = []
    worst = 0
    quiet = 0
    for _ in range(rounds):
        result = sim.step()
        deleted = sorted(
            {
                int(s.name.split("-")[1])
                for s in result.steps
                if s.verb == "delete" and s.kind == "PodGroup"
            },
            reverse=True,
        )
        if deleted:
            order.append(deleted)
        worst = max(worst, sim.unavailable_groups())
        quiet = quiet + 1 if not result.writes else 0
        if quiet > sim.ready_after + 2:
            break
        sim.advance(1)
    return order, worst


@pytest.mark.parametrize(
    ("replicas", "max_unavailable", "waves", "budget"),
    [
        (4, 1, [[3], [2], [1], [0]], 1),
        (4, 2, [[3, 2], [1, 0]], 2),
        (4, "50%", [[3, 2], [1, 0]], 2),
        (4, "30%", [[3], [2], [1], [0]], 1),
        (5, 2, [[4, 3], [2, 1], [0]], 2),
    ],
    ids=[
        "maxUnavailable 1",
        "maxUnavailable 2",
        "50% of 4",
        "30% of 4 rounds down",
        "5 groups by 2",
    ],
)
def test_groups_update_highest_first_within_the_budget(
    replicas: int, max_unavailable: int | str, waves: list[list[int]], budget: int
) -> None:
    sim = started(replicas, max_unavailable=max_unavailable)
    image_change(sim)
    order, worst = run_rollout(sim)
    assert order == waves
    assert worst <= budget
    assert set(sim.groups().values()) == {sim.ms().revision}
    assert sim.status["updatedReplicas"] == sim.status["availableReplicas"] == replicas
    assert sim.status["currentRevision"] == sim.status["updateRevision"]


def test_unhealthy_outdated_groups_go_first() -> None:
    sim = started(4)
    sim.set_pod_status("sample-1-decode-0-1", ready=False)
    image_change(sim)
    first = sim.step()
    assert sorted({s.name for s in first.steps if s.verb == "delete" and s.kind == "PodGroup"}) == [
        "sample-1"
    ]


def test_a_bad_image_replaces_exactly_the_budget_and_stops() -> None:
    sim = started(6, max_unavailable=2)
    sim.never_ready = lambda pod: pod["spec"]["containers"][0]["image"] == "bad:image"
    image_change(sim, "bad:image")
    order, worst = run_rollout(sim, rounds=60)
    assert order == [[5, 4]]
    assert worst == 2
    revisions = sim.groups()
    assert sum(1 for r in revisions.values() if r == sim.ms().revision) == 2
    conditions = {c["type"]: c for c in sim.status["conditions"]}
    assert conditions["UpdateInProgress"]["status"] == "True"
    assert (
        conditions["UpdateInProgress"]["message"]
        == "Some groups are progressing: [4 5], updated groups: [4 5]"
    )
    assert conditions["Available"]["status"] == "False"


def test_partition_keeps_lower_ordinals_on_the_old_revision() -> None:
    sim = started(5, partition=3)
    old = sim.ms().revision
    image_change(sim)
    order, _ = run_rollout(sim)
    assert order == [[4], [3]]
    new = sim.ms().revision
    assert sim.groups() == {0: old, 1: old, 2: old, 3: new, 4: new}
    assert (sim.status["currentRevision"], sim.status["updateRevision"]) == (old, new)
    assert (sim.status["currentReplicas"], sim.status["updatedReplicas"]) == (3, 2)
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in sim.pods()}
    assert images["sample-0-prefill-0-0"] == "nginx:1.27"
    assert images["sample-4-prefill-0-0"] == NEW


def test_a_protected_group_that_loses_pods_is_rebuilt_from_its_old_template() -> None:
    sim = started(5, partition=3)
    old = sim.ms().revision
    image_change(sim)
    run_rollout(sim)
    sim.doc["spec"]["recoveryPolicy"] = "ServingGroupRecreate"
    sim.remove("Pod", "sample-1-prefill-0-1")
    sim.settle()
    assert sim.groups()[1] == old
    assert sim.pod("sample-1-prefill-0-1")["spec"]["containers"][0]["image"] == "nginx:1.27"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.replicas", 2),
        ("spec.template.roles.0.replicas", 1),
        ("spec.template.restartGracePeriodSeconds", 99),
        ("spec.template.gangPolicy", {"minRoleReplicas": {"prefill": 1}}),
        ("spec.template.networkTopology", {"groupPolicy": {"highestTierAllowed": 1}}),
        ("spec.recoveryPolicy", "None"),
        (
            "spec.rolloutStrategy",
            {
                "type": "ServingGroupRollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 2},
            },
        ),
    ],
    ids=lambda v: str(v)[:30],
)
def test_rollout_neutral_changes_replace_no_pod(path: str, value: Any) -> None:
    sim = started(2)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}
    sim.edit(path, value)
    sim.settle()
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()} == uids


def role_rolling(
    prefill: int = 3, max_unavailable: int | str = 1, partition: int | None = None
) -> dict[str, Any]:
    doc = specs.modelserving(
        roles=[
            specs.role("prefill", prefill, 1, maxUnavailable=max_unavailable),
            specs.role("decode", 1, 1),
        ]
    )
    doc["spec"]["rolloutStrategy"] = {"type": "RoleRollingUpdate"}
    if partition is not None:
        doc["spec"]["template"]["roles"][0]["partition"] = partition
    return doc


def test_role_rolling_update_replaces_only_the_changed_role_one_at_a_time() -> None:
    sim = Simulator(role_rolling())
    sim.settle()
    decode = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in sim.pods()
        if "decode" in p["metadata"]["name"]
    }
    sim.edit("spec.template.roles.0.entryTemplate.spec.containers.0.image", NEW)
    order: list[list[str]] = []
    for _ in range(60):
        result = sim.step()
        gone = sorted(
            {
                s.name.rsplit("-", 1)[0]
                for s in result.steps
                if s.verb == "delete" and s.kind == "Pod"
            }
        )
        if gone:
            order.append(gone)
        sim.advance(1)
    assert order == [["sample-0-prefill-2"], ["sample-0-prefill-1"], ["sample-0-prefill-0"]]
    assert {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in sim.pods()
        if "decode" in p["metadata"]["name"]
    } == decode
    prefill = [p for p in sim.pods() if "prefill" in p["metadata"]["name"]]
    assert {p["metadata"]["labels"][naming.ROLE_TEMPLATE_HASH_LABEL] for p in prefill} == {
        sim.ms().template.roles[0].template_hash
    }
    assert sim.status["updatedReplicas"] == 1


def test_role_partition_protects_low_ordinals() -> None:
    sim = Simulator(role_rolling(partition=2))
    sim.settle()
    old_hash = sim.ms().template.roles[0].template_hash
    sim.edit("spec.template.roles.0.entryTemplate.spec.containers.0.image", NEW)
    sim.settle()
    hashes = {
        p["metadata"]["name"]: p["metadata"]["labels"][naming.ROLE_TEMPLATE_HASH_LABEL]
        for p in sim.pods()
        if "prefill" in p["metadata"]["name"]
    }
    assert hashes["sample-0-prefill-0-0"] == hashes["sample-0-prefill-1-0"] == old_hash
    assert hashes["sample-0-prefill-2-0"] != old_hash


def test_a_removed_role_is_deleted_under_role_rolling_update() -> None:
    sim = Simulator(role_rolling())
    sim.settle()
    sim.doc["spec"]["template"]["roles"].pop()
    sim.doc["metadata"]["generation"] += 1
    sim.settle()
    assert not [p for p in sim.pods() if "decode" in p["metadata"]["name"]]


def test_waves_explain_a_pending_rollout() -> None:
    units = [rollout.Unit(o, updated=False, running=True) for o in range(4)]
    waves = rollout.waves(units, 4, 2, None)
    assert [w for _, w in waves] == [(3, 2), (1, 0)]
    assert waves[0][0].why == (
        "4 groups, at least 2 must stay available (maxUnavailable 2),"
        " 0 updated group(s) not ready yet"
    )


def test_role_budget_counts_unavailable_and_deleting_instances() -> None:
    budget = rollout.RoleBudget(replicas=4, max_unavailable=2, partition=None)
    units = [
        rollout.Unit(0, updated=False, running=True),
        rollout.Unit(1, updated=False, running=False),
        rollout.Unit(2, updated=True, running=False),
        rollout.Unit(3, updated=False, running=True),
    ]
    decision = rollout.role_rollout(units, budget)
    assert decision.delete == (
        1,
    )  # one unavailable for the update already; not-running outdated first
    assert rollout.role_rollout(units, rollout.RoleBudget(4, None, None)).delete == (1, 3, 0)
