"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Part of the daemon shell, next to `health` and `metrics`: the daemon runs two replicas and
only the one holding the Lease may run the controller, so two replicas never write the same
objects at once. The decisions (may I take the lease? is it due to be renewed? have I missed
my renew deadline?) are pure functions of the lease record and the time below, tested without a
cluster; `LeaderElector` adds the API calls and the loop around them.

Timing follows client-go (`LeaseDuration > RenewDeadline > RetryPeriod`): a leader renews
every `retry_seconds` and gives up once it has not renewed for `renew_seconds`, which is before
the lease (`lease_seconds`) expires for the others. Every write carries the resourceVersion
that was read, so of two contenders exactly one wins and the other gets a Conflict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sync import kube
from sync.core.timestamps import micro_timestamp

log = logging.getLogger("msctl.leader")

# deploy/rbac.yaml grants get/update on this name only, so a daemon started with another
# lease name needs its Role changed too.
DEFAULT_LEASE_NAME = "msctl-sync"


@dataclass(frozen=True)
class LeaseRecord:
    """A Lease's spec as the election sees it; times are seconds since the epoch."""

    holder: str = ""
    duration_seconds: int = 0
    acquire_time: float | None = None
    renew_time: float | None = None
    transitions: int = 0


# A MicroTime as the API server writes it: RFC 3339, UTC, always six fraction digits.
format_time = micro_timestamp


def parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def read_record(lease: Mapping[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=parse_time(spec.get("acquireTime")),
        renew_time=parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def lease_spec(record: LeaseRecord) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = format_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = format_time(record.renew_time)
    return spec


def with_record(lease: Mapping[str, Any], record: LeaseRecord) -> dict[str, Any]:
    """The lease with the record written into it; other spec fields (newer API versions add
    some, such as `strategy`) and the resourceVersion precondition are kept."""
    return {**lease, "spec": {**(lease.get("spec") or {}), **lease_spec(record)}}


def expires_at(record: LeaseRecord, observed_at: float) -> float:
    """When the others may take the lease over.

    Counted from the later of the holder's renewTime and `observed_at`, the local time this
    elector first saw the record as it is now. client-go trusts only the latter, so that a
    holder whose clock runs behind does not look expired while it still renews; renewTime
    keeps a holder whose clock runs ahead safe as well.
    """
    renewed = max(record.renew_time if record.renew_time is not None else observed_at, observed_at)
    return renewed + record.duration_seconds


def may_acquire(record: LeaseRecord | None, identity: str, now: float, observed_at: float) -> bool:
    """Whether `identity` may write itself into the lease (None: no Lease exists yet)."""
    if record is None or not record.holder or record.holder == identity:
        return True
    return now >= expires_at(record, observed_at)


def next_record(
    record: LeaseRecord | None, identity: str, now: float, lease_seconds: int
) -> LeaseRecord:
    """The record that takes the lease for `identity`, or renews it when it is already ours."""
    if record is not None and record.holder == identity:
        return replace(
            record,
            duration_seconds=lease_seconds,
            acquire_time=record.acquire_time if record.acquire_time is not None else now,
            renew_time=now,
        )
    transitions = 0 if record is None else record.transitions + 1
    return LeaseRecord(identity, lease_seconds, now, now, transitions)


def released_record(record: LeaseRecord, now: float) -> LeaseRecord:
    """client-go's release: no holder, so the next contender takes the lease at once."""
    return LeaseRecord("", 1, now, now, record.transitions)


def renew_overdue(last_renewed_at: float, now: float, renew_seconds: float) -> bool:
    return now - last_renewed_at >= renew_seconds


def check_timing(lease_seconds: int, renew_seconds: float, retry_seconds: float) -> None:
    # A leader must give up before the others may take over, and must get several tries at
    # renewing before it gives up; otherwise two leaders overlap or one flaps.
    if not 0 < retry_seconds < renew_seconds < lease_seconds:
        raise ValueError(
            "leader election needs 0 < retry_seconds < renew_seconds < lease_seconds, got "
            f"retry {retry_seconds}, renew {renew_seconds}, lease {lease_seconds}"
        )


class LeaderElector:
    """Campaigns for a Lease and keeps it; `run` blocks, so give it a thread of its own.

    Each request of a campaign or renewal is given at most what is left of `renew_seconds`,
    as client-go's renew deadline does: a slow API server gets the whole window, and a request
    that hangs still ends before the lease can expire for the others, so this replica never
    believes it leads while another does. `release_on_stop=False` leaves the lease to expire
    when `run` ends, as after a crash.
    """

    def __init__(
        self,
        kube_client: kube.Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: int = 15,
        renew_seconds: float = 10,
        retry_seconds: float = 2,
        clock: Callable[[], float] = time.time,
        release_on_stop: bool = True,
    ) -> None:
        check_timing(lease_seconds, renew_seconds, retry_seconds)
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        self._kube = kube_client
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._lease_seconds = lease_seconds
        self._renew_seconds = renew_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._release_on_stop = release_on_stop
        self._leading = False
        # The last lease read or written: its resourceVersion guards the next write.
        self._lease: dict[str, Any] | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._log_extra = {"lease": f"{namespace}/{name}", "identity": identity}

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def holder(self) -> str:
        """The holder in the lease as last seen ("" when free or not read yet)."""
        return self._observed.holder if self._observed is not None else ""

    def run(
        self,
        stop: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        """Campaign until elected, lead until `stop` is set or the lease is lost, then return.

        `on_started_leading` runs on this thread and must return promptly (start workers on
        threads of their own): renewals wait for it. `on_stopped_leading` is called once,
        after leading, and before the lease is released, so if it waits for the workers to
        finish, no other replica starts leading while they still write. A replica that lost
        its lease does not campaign again: its workers may have acted on stale state, so the
        daemon should exit and restart, as controller-runtime does.
        """
        log.info("campaigning for leadership", extra=self._log_extra)
        if not self._campaign(stop):
            return
        if stop.is_set():
            if self._release_on_stop:
                self._release()
            return
        self._leading = True
        log.info("started leading", extra=self._log_extra)
        reason = "on_started_leading raised"
        try:
            on_started_leading()
            reason = "renewing raised"
            reason = self._lead(stop)
        finally:
            self._leading = False
            log.info("stopped leading", extra={**self._log_extra, "reason": reason})
            try:
                on_stopped_leading()
            finally:
                if self._release_on_stop:
                    self._release()

    def _campaign(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            started = self._clock()
            if self._try_acquire_or_renew(started + self._renew_seconds):
                self._renewed_at = started
                return True
            stop.wait(self._retry_seconds)
        return False

    def _lead(self, stop: threading.Event) -> str:
        """Renew until stopped or lost; the reason leading ended."""
        while not stop.wait(self._retry_seconds):
            # Counted from when the last successful write was sent, not answered: the others
            # may have seen it already, so the deadline errs on the early side.
            started, deadline = self._clock(), self._renewed_at + self._renew_seconds
            if started < deadline and self._try_acquire_or_renew(deadline):
                self._renewed_at = started
                continue
            if self.holder != self.identity:
                return f"lease taken over by {self.holder or '(nobody)'}"
            if renew_overdue(self._renewed_at, self._clock(), self._renew_seconds):
                return f"could not renew the lease for {self._renew_seconds:g}s"
        return "stop requested"

    def _left(self, deadline: float) -> float:
        """Seconds a request may wait for its answer; a request is never sent with none."""
        return max(deadline - self._clock(), 0.001)

    def _try_acquire_or_renew(self, deadline: float) -> bool:
        now = self._clock()
        if self._leading and self._lease is not None and self._observed is not None:
            # client-go's fast path: renew from the lease we wrote last, which saves the read;
            # a Conflict means someone else wrote it since, and the slow path looks at why.
            try:
                self._write(self._lease, self._next(self._observed, now), now, deadline)
                return True
            except kube.ApiError as err:
                log.debug("optimistic renew failed: %s", err, extra=self._log_extra)
        try:
            lease = self._kube.get(
                kube.LEASES, self._namespace, self._name, timeout=self._left(deadline)
            )
        except kube.NotFound:
            return self._create(now, deadline)
        except kube.ApiError as err:
            log.warning("cannot read the lease: %s", err, extra=self._log_extra)
            return False
        record = read_record(lease)
        self._observe(lease, record, now)
        if not may_acquire(record, self.identity, now, self._observed_at):
            return False
        try:
            self._write(lease, self._next(record, now), now, deadline)
        except kube.Conflict:
            log.debug("another replica wrote the lease first", extra=self._log_extra)
            return False
        except kube.ApiError as err:
            log.warning("cannot write the lease: %s", err, extra=self._log_extra)
            return False
        return True

    def _next(self, record: LeaseRecord | None, now: float) -> LeaseRecord:
        return next_record(record, self.identity, now, self._lease_seconds)

    def _create(self, now: float, deadline: float) -> bool:
        record = self._next(None, now)
        body = {
            "apiVersion": kube.LEASES.api_version,
            "kind": kube.LEASES.kind,
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": lease_spec(record),
        }
        try:
            created = self._kube.create(
                kube.LEASES, self._namespace, body, timeout=self._left(deadline)
            )
        except kube.Conflict:
            log.debug("another replica created the lease first", extra=self._log_extra)
            return False
        except kube.ApiError as err:
            log.warning("cannot create the lease: %s", err, extra=self._log_extra)
            return False
        self._observe(created, read_record(created), now)
        return True

    def _write(
        self, lease: Mapping[str, Any], record: LeaseRecord, now: float, deadline: float
    ) -> None:
        written = self._kube.replace(
            kube.LEASES, self._namespace, with_record(lease, record), timeout=self._left(deadline)
        )
        self._observe(written, read_record(written), now)

    def _observe(self, lease: dict[str, Any], record: LeaseRecord, now: float) -> None:
        self._lease = lease
        if record == self._observed:
            return
        if record.holder != self.holder and record.holder not in ("", self.identity):
            log.info("lease held by %s", record.holder, extra=self._log_extra)
        self._observed, self._observed_at = record, now

    def _release(self) -> None:
        """Hand the lease over at once instead of letting the others wait for it to expire."""
        if self._lease is None or self._observed is None or self.holder != self.identity:
            return
        now = self._clock()
        try:
            self._write(
                self._lease, released_record(self._observed, now), now, now + self._renew_seconds
            )
        except kube.ApiError as err:
            log.warning(
                "cannot release the lease; it expires in %ss: %s",
                self._lease_seconds,
                err,
                extra=self._log_extra,
            )
            return
        log.info("released the lease", extra=self._log_extra)
