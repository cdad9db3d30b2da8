"""Backoff, the restart budget, the evidence and the progress deadline, over the simulator
(docs/behaviour.md#backoff, #evidence, #role-status, #progress)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from generator import model, naming
from generator.settings import Settings
from sync.core import backoff, evidence
from sync.core.timestamps import parse_any_timestamp
from tests.unit import specs
from tests.unit.simulator import Simulator

CRASHING = "sample-0-prefill-0-0"


def settings_doc(**annotations: str) -> dict[str, Any]:
    doc = specs.pd()
    doc["metadata"]["annotations"] = {naming.SETTINGS_PREFIX + k: v for k, v in annotations.items()}
    return doc


def crash(pod: dict[str, Any]) -> None:
    """The container exits at start, as an image whose entrypoint fails would."""
    done = {"exitCode": 3, "reason": "Error", "message": "CUDA out of memory"}
    pod["status"] = {
        "phase": "Failed",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "main", "restartCount": 0, "ready": False, "state": {"terminated": done}}
        ],
    }


def crashing_sim(doc: dict[str, Any]) -> Simulator:
    sim = Simulator(doc, never_ready=lambda p: p["metadata"]["name"] == CRASHING)
    for _ in range(3):
        sim.step()
        sim.advance(sim.ready_after)
    return sim


def run(sim: Simulator, seconds: int) -> list[float]:
    """Let the crashing pod crash on every start for `seconds`; the times of recreations."""
    times = []
    for _ in range(seconds):
        for pod in sim.pods():
            if pod["metadata"]["name"] == CRASHING and pod["status"]["phase"] == "Pending":
                crash(pod)
        result = sim.step()
        if any(s.verb == "delete" and s.name == CRASHING for s in result.steps):
            times.append(sim.clock)
        sim.advance(1)
    return times


@pytest.mark.parametrize(
    ("done", "expected"),
    [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (6, 320.0), (7, 600.0), (60, 600.0)],
    ids=str,
)
def test_the_delay_doubles_from_the_base_up_to_the_cap(done: int, expected: float) -> None:
    assert backoff.delay(Settings(), done) == expected


def test_a_unit_failing_on_every_start_is_recreated_with_doubling_gaps() -> None:
    sim = crashing_sim(settings_doc(**{"backoff-base-seconds": "4", "backoff-max-seconds": "16"}))
    times = run(sim, 80)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [4, 8, 16, 16]
    notes = [n for p in sim.history for n in p.notes if "backing off" in n]
    assert notes and "exit code 3" in notes[0]  # what `msctl plan` prints while it waits
    unit = sim.status["recovery"]["units"][0]
    assert (unit["group"], unit["roleId"], unit["recreations"]) == (0, "prefill-0", len(times))


def test_the_budget_marks_the_unit_failed_and_keeps_the_pod_and_the_evidence() -> None:
    doc = settings_doc(
        **{"backoff-base-seconds": "2", "restart-limit": "3", "restart-window-seconds": "600"}
    )
    sim = crashing_sim(doc)
    times = run(sim, 60)
    assert len(times) == 3
    (unit,) = sim.status["recovery"]["units"]
    assert unit["state"] == "Failed"
    assert sim.pod(CRASHING)["status"]["phase"] == "Failed"  # left for people to inspect
    stalled = {c["type"]: c for c in sim.status["conditions"]}["Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "RestartBudgetExhausted")
    assert "msctl.dev/reset-failures" in stalled["message"]
    last = sim.status["recovery"]["lastFailures"][-1]
    assert last["containers"][0] == {
        "name": "main",
        "restartCount": 0,
        "reason": "Error",
        "exitCode": 3,
        "message": "CUDA out of memory",
    }
    events = [s.event for p in sim.history for s in p.steps if s.event is not None]
    exhausted = [e for e in events if e.reason == "RestartBudgetExhausted"]
    assert len(exhausted) == 1 and "exit code 3" in exhausted[0].message
    assert {"name": "prefill", "failed": 1}.items() <= sim.status["roles"][0].items()


def test_the_reset_annotation_releases_a_failed_unit() -> None:
    doc = settings_doc(**{"backoff-base-seconds": "0", "restart-limit": "1"})
    sim = crashing_sim(doc)
    assert len(run(sim, 10)) == 1
    sim.doc["metadata"]["annotations"][naming.RESET_FAILURES_ANNOTATION] = "1"
    assert len(run(sim, 3)) == 1  # one more recreation, then the budget of 1 is spent again
    assert sim.status["recovery"]["reset"] == "1"
    assert sim.status["recovery"]["units"][0]["state"] == "Failed"


def test_a_spec_change_releases_a_failed_unit() -> None:
    sim = crashing_sim(settings_doc(**{"backoff-base-seconds": "0", "restart-limit": "1"}))
    run(sim, 10)
    sim.edit("spec.template.restartGracePeriodSeconds", 0)  # a new generation
    assert len(run(sim, 3)) == 1


def test_a_unit_ready_for_the_reset_time_is_forgotten() -> None:
    sim = crashing_sim(settings_doc(**{"backoff-base-seconds": "5", "backoff-reset-seconds": "30"}))
    run(sim, 8)
    sim.never_ready = lambda p: False
    sim.advance(sim.ready_after)
    for _ in range(40):
        sim.step()
        sim.advance(1)
    assert "units" not in sim.status.get("recovery", {})


def test_evidence_reads_the_last_termination_of_a_restarting_container() -> None:
    pod = {
        "metadata": {"name": "p"},
        "status": {
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                },
                {"name": "side", "restartCount": 0, "state": {"running": {}}},
            ]
        },
    }
    rec = evidence.record(pod, 1, "decode", 0.0)
    assert rec["containers"] == [
        {
            "name": "main",
            "restartCount": 4,
            "reason": "OOMKilled",
            "exitCode": 137,
            "waiting": "CrashLoopBackOff",
        }
    ]
    assert evidence.describe(rec) == "container main, exit code 137, reason OOMKilled, 4 restarts"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("backoff-base-seconds", "ten", "not a whole number"),
        ("restart-limit", "0", "from 1"),
        ("progress-deadline-seconds", "-5", "not a whole number"),
        ("restart-budget", "3", "unknown msctl setting"),
    ],
    ids=["a word", "a zero limit", "a negative deadline", "an unknown key"],
)
def test_bad_settings_are_refused_with_their_path(key: str, value: str, problem: str) -> None:
    with pytest.raises(model.InvalidSpec) as raised:
        model.load(settings_doc(**{key: value}))
    (violation,) = raised.value.violations
    assert violation.path == f'metadata.annotations["msctl.dev/{key}"]'
    assert problem in violation.message


@pytest.mark.parametrize(
    ("annotations", "deadline"),
    [
        ({}, 0),
        ({"progress-deadline-seconds": "default"}, 600),
        ({"progress-deadline-seconds": "90"}, 90),
    ],
    ids=["off unless asked", "the default when asked for it", "a number of seconds"],
)
def test_the_progress_deadline_is_opt_in(annotations: dict[str, str], deadline: int) -> None:
    assert model.load(settings_doc(**annotations)).settings.progress_deadline == deadline


def test_a_cap_below_the_base_is_refused() -> None:
    with pytest.raises(model.InvalidSpec) as raised:
        model.load(settings_doc(**{"backoff-base-seconds": "60", "backoff-max-seconds": "30"}))
    assert "backoff-max-seconds" in str(raised.value.violations[0])


def test_a_rollout_without_progress_reports_the_deadline_and_the_stuck_groups() -> None:
    doc = specs.pd(replicas=3)
    doc["metadata"]["annotations"] = {naming.PROGRESS_DEADLINE_ANNOTATION: "60"}
    sim = Simulator(doc)
    sim.advance(sim.ready_after)
    sim.settle()
    bad = "registry.invalid/vllm:nope"
    sim.never_ready = lambda p: p["spec"]["containers"][0]["image"] == bad
    sim.edit("spec.template.roles.0.entryTemplate.spec.containers.0.image", bad)
    deadline_hit = None
    for second in range(120):
        plan = sim.step()
        by_type = {c["type"]: c for c in sim.status["conditions"]}
        if by_type.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded":
            deadline_hit = second
            break
        if plan.requeue_after is not None:
            assert plan.requeue_after <= 60
        sim.advance(1)
    assert deadline_hit is not None
    since = parse_any_timestamp(sim.status["progress"]["since"])
    assert since is not None and 60 <= sim.clock - since <= 61  # 60 s after the last change
    progressing = by_type["Progressing"]
    assert progressing["status"] == "False"
    assert "stuck groups: 2 (pod sample-2-prefill-0-0 Pending)" in progressing["message"]
    assert (by_type["Stalled"]["status"], by_type["Reconciling"]["status"]) == ("True", "False")
    roles = {r["name"]: r for r in sim.status["roles"]}
    assert roles["prefill"] == {
        "name": "prefill",
        "desired": 3,
        "current": 3,
        "ready": 2,
        "updated": 1,
        "failed": 0,
        "backingOff": 0,
    }
    before = json.dumps(sim.status, sort_keys=True)
    sim.step()
    assert json.dumps(sim.status, sort_keys=True) == before  # no write loop once stalled


def test_the_status_of_a_1000_group_modelserving_stays_small() -> None:
    """Printed sizes are quoted in docs/behaviour.md#role-status (run with -s to see them)."""
    roles = [specs.role("prefill", 1, 0), specs.role("decode", 1, 0)]
    sim = Simulator(specs.modelserving("sample", 1000, roles))
    sim.step()
    sim.advance(sim.ready_after)
    sim.step()
    healthy = len(json.dumps(sim.status))
    ours = len(json.dumps({k: sim.status[k] for k in ("roles", "progress") if k in sim.status}))
    # the worst case for the backoff record: every role instance of every group failed
    settings = Settings(restart_limit=1)  # a Failed entry's size does not depend on it
    ledger = backoff.Ledger({}, settings, 1, 1_000_000.0)
    for group in range(1000):
        for role in ("prefill", "decode"):
            for attempt in range(2):  # one recreation, then Failed
                ledger.now += 60.0
                ledger.decide((group, f"{role}-0"), f"sample-{group}-{role}-0-0", f"u{attempt}")
    assert len(ledger.failed()) == 2000
    failure = evidence.record(
        {
            "metadata": {"name": "sample-999-decode-0-0"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "main",
                        "restartCount": 9,
                        "lastState": {
                            "terminated": {"exitCode": 1, "reason": "Error", "message": "x" * 1000}
                        },
                    }
                ]
            },
        },
        999,
        "decode",
        0.0,
    )
    worst = len(json.dumps({**ledger.to_status(), "lastFailures": [failure] * evidence.KEEP}))
    print(
        f"\n1000 groups: status {healthy} bytes (roles+progress {ours}); "
        f"worst recovery record {worst} bytes"
    )
    assert ours < 1024
    assert worst < 1024 * 1024  # etcd's object limit is 1.5 MiB


def test_a_unit_that_recovers_while_backing_off_is_not_recreated() -> None:
    sim = crashing_sim(settings_doc(**{"backoff-base-seconds": "30"}))
    assert len(run(sim, 5)) == 1  # the first recreation, then a backoff of 30 s
    assert sim.status["recovery"]["units"][0]["state"] == "BackingOff"
    sim.set_pod_status(CRASHING, ready=True)  # a restart that came back
    sim.advance(sim.ready_after)  # its worker too
    sim.step()
    assert sim.status["recovery"]["units"][0]["state"] == "Recovering"
    assert sim.status["roles"][0]["backingOff"] == 0
    sim.advance(60)
    assert not [s for s in sim.step().steps if s.verb == "delete"]


def test_under_servinggrouprecreate_the_group_is_the_unit() -> None:
    doc = settings_doc(**{"backoff-base-seconds": "4"})
    doc["spec"]["recoveryPolicy"] = "ServingGroupRecreate"
    sim = crashing_sim(doc)
    times = run(sim, 20)
    assert [b - a for a, b in itertools.pairwise(times)][:2] == [4, 8]
    (unit,) = sim.status["recovery"]["units"]
    assert "roleId" not in unit and unit["group"] == 0
    assert "sample-0-decode-0-0" in sim.deleted  # the whole group went each time


def test_a_sibling_of_the_removed_incarnation_is_not_counted_again() -> None:
    """Under ServingGroupRecreate a cache behind the deletion may still show another failed
    pod of the old group: it belongs to the recreation already made."""
    ledger = backoff.Ledger({}, Settings(backoff_base=10), 1, 1_000_000.0)
    first = ledger.decide((0, ""), "sample-0-a-0-0", "uid-a", created=999_000.0)
    assert (first.action, first.recreations) == ("recreate", 1)
    ledger.now += 0.5
    sibling = ledger.decide((0, ""), "sample-0-b-0-0", "uid-b", created=999_000.0)
    assert (sibling.action, sibling.recreations) == ("recreate", 1)
    ledger.now += 5
    fresh = ledger.decide((0, ""), "sample-0-a-0-0", "uid-c", created=ledger.now - 2)
    assert (fresh.action, fresh.wait) == ("wait", pytest.approx(4.5))  # new: it backs off
