"""Leader election (sync.leader) against the real API server: acquire, renew, fail over."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from sync import kube
from sync.leader import LeaderElector

LEASE = "msctl-sync"
# Short timings keep the tests quick; lease > renew > retry as in production.
TIMING: dict[str, Any] = {"lease_seconds": 2, "renew_seconds": 1.5, "retry_seconds": 0.3}
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
# Allowance for API round trips and thread scheduling on a busy 2-core machine.
SLACK = 1.0


class Candidate:
    """One replica: an elector on its own thread, recording its callbacks."""

    def __init__(self, kube_client: kube.Kube, namespace: str, identity: str, **options: Any):
        self.elector = LeaderElector(
            kube_client, namespace, LEASE, identity, **{**TIMING, **options}
        )
        self.stop = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.calls: list[str] = []
        self.thread = threading.Thread(target=self._run, name=identity, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.elector.run(self.stop, self._on_started, self._on_stopped)

    def _on_started(self) -> None:
        self.calls.append("started")
        self.started.set()

    def _on_stopped(self) -> None:
        self.calls.append("stopped")
        self.stopped.set()

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), f"{self.elector.identity} did not stop"


class TimedKube(kube.Kube):
    """The real client, noting the timeout each request was sent with."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.timeouts: list[tuple[str, float | None]] = []

    def _send(self, verb: str, method: str, path: str, **kwargs: Any) -> Any:
        self.timeouts.append((verb, kwargs.get("timeout")))
        return super()._send(verb, method, path, **kwargs)


@pytest.fixture
def kube_client(api: client.ApiClient) -> TimedKube:
    return TimedKube(api)


@pytest.fixture
def candidates(kube_client: kube.Kube, namespace: str) -> Iterator[Callable[..., Candidate]]:
    started: list[Candidate] = []

    def start(identity: str, **options: Any) -> Candidate:
        candidate = Candidate(kube_client, namespace, identity, **options)
        started.append(candidate)
        return candidate

    yield start
    for candidate in started:
        candidate.halt()


def lease_spec(kube_client: kube.Kube, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = kube_client.get(kube.LEASES, namespace, LEASE)["spec"]
    return spec


def test_an_elector_creates_the_lease_and_renews_it(
    candidates: Callable[..., Candidate], kube_client: kube.Kube, namespace: str
) -> None:
    a = candidates("replica-a")
    assert a.started.wait(5)
    assert a.elector.is_leader
    first = lease_spec(kube_client, namespace)
    assert first["holderIdentity"] == "replica-a"
    assert first["leaseDurationSeconds"] == 2
    assert first["leaseTransitions"] == 0
    assert MICRO_TIME.fullmatch(first["renewTime"])
    assert MICRO_TIME.fullmatch(first["acquireTime"])
    time.sleep(1.0)
    later = lease_spec(kube_client, namespace)
    assert later["renewTime"] > first["renewTime"]
    assert later["acquireTime"] == first["acquireTime"]
    assert later["leaseTransitions"] == 0
    assert a.calls == ["started"]


def test_a_second_elector_follows_while_the_leader_renews(
    candidates: Callable[..., Candidate], kube_client: kube.Kube, namespace: str
) -> None:
    a = candidates("replica-a")
    assert a.started.wait(5)
    b = candidates("replica-b")
    # Three lease durations: b would have taken over by now if a's renewals did not count.
    deadline = time.monotonic() + 3 * TIMING["lease_seconds"]
    while time.monotonic() < deadline:
        assert not b.elector.is_leader
        assert a.elector.is_leader
        time.sleep(0.1)
    assert b.calls == []
    assert b.elector.holder == "replica-a"
    assert lease_spec(kube_client, namespace)["holderIdentity"] == "replica-a"


def test_a_follower_takes_over_when_the_leader_dies(
    candidates: Callable[..., Candidate], kube_client: kube.Kube, namespace: str
) -> None:
    a = candidates("replica-a", release_on_stop=False)
    assert a.started.wait(5)
    b = candidates("replica-b")
    time.sleep(1.0)  # b has seen a renew
    died = time.monotonic()
    a.halt()  # no release: the lease is left to expire, as when a pod is killed
    assert a.calls == ["started", "stopped"]
    assert lease_spec(kube_client, namespace)["holderIdentity"] == "replica-a"
    assert b.started.wait(TIMING["lease_seconds"] + TIMING["retry_seconds"] + SLACK)
    took = time.monotonic() - died
    assert took >= TIMING["lease_seconds"] - TIMING["retry_seconds"], "taken before expiry"
    spec = lease_spec(kube_client, namespace)
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 1


def test_releasing_on_stop_hands_over_at_once(
    candidates: Callable[..., Candidate], kube_client: kube.Kube, namespace: str
) -> None:
    # A long lease, so that waiting for it to expire would show.
    long = {"lease_seconds": 30, "renew_seconds": 20}
    a = candidates("replica-a", **long)
    assert a.started.wait(5)
    b = candidates("replica-b", **long)
    time.sleep(0.5)
    released = time.monotonic()
    a.halt()
    assert b.started.wait(TIMING["retry_seconds"] + SLACK)
    assert time.monotonic() - released < 5
    spec = lease_spec(kube_client, namespace)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("replica-b", 1)
    assert a.calls == ["started", "stopped"]


def test_of_simultaneous_candidates_exactly_one_leads(
    candidates: Callable[..., Candidate],
) -> None:
    replicas = [candidates(f"replica-{i}") for i in range(3)]
    deadline = time.monotonic() + 3.0
    leaders: set[str] = set()
    while time.monotonic() < deadline:
        now_leading = [r.elector.identity for r in replicas if r.elector.is_leader]
        assert len(now_leading) <= 1, now_leading
        leaders.update(now_leading)
        time.sleep(0.05)
    assert len(leaders) == 1


def test_a_leader_whose_lease_is_taken_stops_leading_and_returns(
    candidates: Callable[..., Candidate], kube_client: kube.Kube, namespace: str
) -> None:
    a = candidates("replica-a")
    assert a.started.wait(5)
    lease = kube_client.get(kube.LEASES, namespace, LEASE)
    now = time.time()
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["renewTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now + 5))
    kube_client.replace(kube.LEASES, namespace, lease)
    assert a.stopped.wait(TIMING["retry_seconds"] + SLACK)
    a.thread.join(timeout=5)
    assert not a.thread.is_alive()
    assert not a.elector.is_leader
    assert a.calls == ["started", "stopped"]
    # It was not ours any more, so it stays the intruder's.
    assert lease_spec(kube_client, namespace)["holderIdentity"] == "intruder"


def test_a_renewal_may_take_what_is_left_of_the_renew_deadline(
    candidates: Callable[..., Candidate], kube_client: TimedKube
) -> None:
    a = candidates("replica-a")
    assert a.started.wait(5)
    kube_client.timeouts.clear()
    time.sleep(1.0)
    renewals = [t for verb, t in kube_client.timeouts if verb == "update"]
    assert len(renewals) >= 2, kube_client.timeouts
    # Sent a retry period after the previous renewal began: what is left of the deadline is
    # renew - retry less the round trip, neither a fixed short timeout nor the client default.
    renew, retry = TIMING["renew_seconds"], TIMING["retry_seconds"]
    assert all(t is not None and 0 < t <= renew - retry for t in renewals), renewals
    assert max(t or 0 for t in renewals) > renew - retry - SLACK / 2, renewals
