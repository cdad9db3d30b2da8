"""Leader election decisions (sync.leader's pure functions), on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sync import leader
from sync.leader import LeaseRecord

T0 = 1_795_860_000.0  # 2026-11-28T10:00:00Z


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def held(by: str, renewed: float, *, duration: int = 15, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(by, duration, T0 - 100, renewed, transitions)


def test_times_are_written_like_the_api_server_writes_micro_times() -> None:
    assert leader.format_time(T0) == "2026-11-28T10:00:00.000000Z"
    assert leader.format_time(T0 + 1.25) == "2026-11-28T10:00:01.250000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T10:00:00.000000Z", T0),
        ("2026-11-28T10:00:01.500000Z", T0 + 1.5),
        ("2026-11-28T10:00:00Z", T0),
        ("2026-11-28T11:00:00+01:00", T0),
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
    ids=repr,
)
def test_times_are_read_from_any_rfc3339_form(text: object, expected: float | None) -> None:
    assert leader.parse_time(text) == expected


def test_a_lease_is_read_into_a_record() -> None:
    lease = {
        "metadata": {"name": "msctl-sync", "resourceVersion": "7"},
        "spec": {
            "holderIdentity": "pod-a",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-28T09:58:20.000000Z",
            "renewTime": "2026-11-28T10:00:00.000000Z",
            "leaseTransitions": 3,
        },
    }
    assert leader.read_record(lease) == LeaseRecord("pod-a", 15, T0 - 100, T0, 3)


def test_a_lease_without_spec_is_free() -> None:
    assert leader.read_record({"metadata": {"name": "x"}}) == LeaseRecord()


def test_writing_a_record_keeps_the_resource_version_and_unknown_spec_fields() -> None:
    lease = {
        "metadata": {"name": "x", "resourceVersion": "42"},
        "spec": {"holderIdentity": "old", "strategy": "OldestEmulationVersion"},
    }
    written = leader.with_record(lease, LeaseRecord("pod-a", 15, T0, T0, 1))
    assert written["metadata"]["resourceVersion"] == "42"
    assert written["spec"] == {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-28T10:00:00.000000Z",
        "renewTime": "2026-11-28T10:00:00.000000Z",
        "leaseTransitions": 1,
        "strategy": "OldestEmulationVersion",
    }
    assert lease["spec"]["holderIdentity"] == "old"


@pytest.mark.parametrize(
    ("record", "now", "observed_at", "expected"),
    [
        pytest.param(None, T0, T0, True, id="no lease yet: create it"),
        pytest.param(LeaseRecord(), T0, T0, True, id="a released lease is free at once"),
        pytest.param(held("me", T0), T0 + 1, T0, True, id="our own lease is always ours"),
        pytest.param(held("other", T0), T0 + 14.9, T0, False, id="a fresh lease is held"),
        pytest.param(
            held("other", T0), T0 + 15, T0, True, id="expired when renewTime plus duration passed"
        ),
        pytest.param(
            held("other", T0 - 3600),
            T0,
            T0,
            False,
            id="an old renewTime seen only now is still held: the holder's clock may lag",
        ),
        pytest.param(
            held("other", T0 - 3600),
            T0 + 15,
            T0,
            True,
            id="an old renewTime is taken a lease duration after it was first seen",
        ),
        pytest.param(
            held("other", T0 + 60),
            T0 + 30,
            T0,
            False,
            id="a renewTime ahead of our clock is honoured",
        ),
        pytest.param(
            held("other", T0, duration=2), T0 + 2, T0, True, id="the holder's duration counts"
        ),
    ],
)
def test_may_acquire(
    record: LeaseRecord | None, now: float, observed_at: float, expected: bool
) -> None:
    assert leader.may_acquire(record, "me", now, observed_at) is expected


def test_creating_the_lease_starts_at_zero_transitions() -> None:
    assert leader.next_record(None, "me", T0, 15) == LeaseRecord("me", 15, T0, T0, 0)


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    record = held("me", T0, transitions=4)
    assert leader.next_record(record, "me", T0 + 2, 15) == LeaseRecord(
        "me", 15, T0 - 100, T0 + 2, 4
    )


def test_taking_over_bumps_transitions_and_restarts_acquire_time() -> None:
    record = held("other", T0, transitions=4)
    assert leader.next_record(record, "me", T0 + 20, 10) == LeaseRecord(
        "me", 10, T0 + 20, T0 + 20, 5
    )


def test_taking_a_released_lease_is_a_transition_too() -> None:
    released = leader.released_record(held("other", T0, transitions=2), T0 + 1)
    assert released == LeaseRecord("", 1, T0 + 1, T0 + 1, 2)
    assert leader.next_record(released, "me", T0 + 1, 15).transitions == 3


@pytest.mark.parametrize(
    ("since_renewal", "overdue"),
    [(0.0, False), (9.99, False), (10.0, True), (30.0, True)],
    ids=lambda v: f"{v}",
)
def test_a_leader_gives_up_once_renew_seconds_passed(since_renewal: float, overdue: bool) -> None:
    assert leader.renew_overdue(T0, T0 + since_renewal, 10) is overdue


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [(15, 15, 2), (15, 10, 10), (15, 20, 2), (15, 10, 0), (2, 1.5, 2)],
    ids=str,
)
def test_timings_that_would_overlap_leaders_are_refused(
    lease: int, renew: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="retry_seconds < renew_seconds < lease_seconds"):
        leader.check_timing(lease, renew, retry)


def test_a_follower_takes_over_one_lease_duration_after_the_last_renewal() -> None:
    """Two replicas on a shared fake clock, each deciding with the pure functions only."""
    clock = FakeClock()
    lease_seconds, retry = 2, 0.5
    record = leader.next_record(None, "a", clock(), lease_seconds)
    seen, seen_at = record, clock()
    # While "a" renews every retry period, "b" (which sees every new record) never may.
    for _ in range(10):
        clock.advance(retry)
        record = leader.next_record(record, "a", clock(), lease_seconds)
        assert not leader.may_acquire(record, "b", clock(), seen_at)
        seen, seen_at = record, clock()
    died_at = clock()
    # "a" dies; "b" polls every retry period and sees the same record each time.
    while not leader.may_acquire(seen, "b", clock(), seen_at):
        clock.advance(retry)
    assert lease_seconds <= clock() - died_at < lease_seconds + retry
    taken = leader.next_record(seen, "b", clock(), lease_seconds)
    assert (taken.holder, taken.transitions, taken.acquire_time) == ("b", 1, clock())
