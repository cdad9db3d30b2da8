"""The safety net against write loops: repeated writes back a ModelServing off, convergence
lets it go."""

from __future__ import annotations

import pytest

from sync.core import churn
from sync.core.churn import Churn, record
from sync.core.steps import Step, Wave


def create(name: str) -> Step:
    return Step("create", "Pod", name, "missing", Wave.ENTRY, obj={"metadata": {"name": name}})


def patch(name: str, version: str, value: str = "decode") -> Step:
    ops = (
        {"op": "test", "path": "/metadata/uid", "value": "u1"},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
        {"op": "replace", "path": "/metadata/labels/role", "value": value},
    )
    return Step("patch", "Pod", name, "labels differ", Wave.PATCH, ops=ops)


def test_writes_that_do_not_repeat_are_not_a_loop() -> None:
    state = Churn()
    for n in range(20):
        state = record(state, [create(f"pod-{n}")], float(n))
    assert not state.looping
    assert state.until == 0.0


def test_the_same_create_repeated_in_the_window_backs_off_and_names_the_object() -> None:
    state = Churn()
    for second in range(churn.REPEATS):
        assert not state.looping
        state = record(state, [create("sample-0-decode-0-0")], float(second))
    assert state.looping
    assert state.until == pytest.approx(churn.REPEATS - 1 + churn.BASE_DELAY)
    assert "create Pod sample-0-decode-0-0" in state.cause


def test_a_patch_undone_again_and_again_is_a_loop_though_its_resource_version_moves() -> None:
    state = Churn()
    for n in range(churn.REPEATS):
        state = record(state, [patch("p", str(100 + n))], float(n))
    assert state.looping


def test_each_further_loop_doubles_the_back_off_up_to_the_cap() -> None:
    state, delays = Churn(), []
    for second in range(0, 4000, 10):
        state = record(state, [create("p")] * churn.REPEATS, float(second))
        delays.append(state.delay())
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == churn.MAX_DELAY


def test_convergence_with_a_quiet_window_lets_go() -> None:
    state = Churn()
    for second in range(churn.REPEATS):
        state = record(state, [create("p")], float(second))
    assert record(state, [], 10.0).looping  # converged, but the repeats are recent
    cleared = record(state, [], churn.REPEATS + churn.WINDOW_SECONDS)
    assert cleared == Churn()


def test_events_and_status_writes_are_not_object_writes() -> None:
    status = Step("status", "ModelServing", "m", "x", Wave.STATUS, obj={})
    state = Churn()
    for second in range(5):
        state = record(state, [status], float(second))
    assert state == Churn()


def test_recreations_paced_by_the_recovery_backoff_are_not_a_loop() -> None:
    # The recovery backoff (2 s doubling, the integration test's settings) recreates a pod at
    # 0, 2, 6, 14 and 30 s: never REPEATS times in one window.
    state = Churn()
    for second in (0.0, 2.0, 6.0, 14.0, 30.0, 46.0, 62.0):
        state = record(state, [create("p")], second)
        assert not state.looping
