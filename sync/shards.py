"""Sharding (`msctl run --shards N`): ModelServings split over N shards, one Lease per shard.

Part of the daemon shell, beside `leader`. A ModelServing belongs to the shard a consistent
hash of `namespace/name` names (jump consistent hash: a key's shard depends only on the key
and N, so the split stays put as ModelServings come and go). Each shard is a Lease
`<lease-name>-shard-<i>`, taken, renewed and released with `leader`'s rules, so a shard has
one holder at a time; only the holder reconciles that shard's ModelServings (and, with the
LWS bridge, bridges its LeaderWorkerSets, which map to ModelServings of the same key).

Replicas share the shards out: each keeps a member Lease `<lease-name>-member-<identity>`
renewed, and holds at most ceil(N / live members) shards, releasing the surplus (after its
in-flight reconciles of the shard are done) and taking free or expired shards up to that
share. A replica that dies stops renewing; its shards expire after the lease duration and
the others take them (docs/behaviour.md#sharding). A holder that could not renew a shard for
the renew deadline stops reconciling it, before the lease can expire for the others.
The Lease verbs this calls (list, create, update, delete; never get) are granted by
deploy/sharding/rbac.yaml and the chart's sharding.shards; tests/unit/test_deploy.py checks.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sync import kube
from sync.leader import (
    LeaseRecord,
    lease_spec,
    may_acquire,
    next_record,
    read_record,
    released_record,
    renew_overdue,
    with_record,
)

log = logging.getLogger("msctl.shards")
GROUP_LABEL = "msctl.volcano.sh/shard-group"
LABEL_VALUE_MAX = 63


def group_value(name: str) -> str:
    """The GROUP_LABEL value of the Leases of `<name>-shard-*` and `<name>-member-*`.

    The lease name itself when it fits a label value (63 characters); a longer one (a Lease
    name may have 253, and the chart's are `<leaseName>-<namespace>`) keeps its start and
    ends with a hash of the whole, so two long names still label two groups."""
    if len(name) <= LABEL_VALUE_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: LABEL_VALUE_MAX - 11].rstrip('-.')}-{digest}"


def shard_of(key: str, shards: int) -> int:
    """The shard of a ModelServing key `namespace/name` (Lamping and Veach's jump hash)."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    shard, candidate = -1, 0
    while candidate < shards:
        shard = candidate
        h = (h * 2862933555777941757 + 1) % 2**64
        candidate = int((shard + 1) * (2**31 / ((h >> 33) + 1)))
    return shard


def fair_share(shards: int, members: int) -> int:
    return math.ceil(shards / max(members, 1))


def alive(record: LeaseRecord, now: float) -> bool:
    renewed = record.renew_time if record.renew_time is not None else 0.0
    return bool(record.holder) and now < renewed + record.duration_seconds


class Sharder:
    """Holds this replica's share of the shard Leases; `run` blocks, give it a thread.

    `on_acquired(i)` is called after shard i was taken (enqueue its ModelServings);
    `on_released(i)` after this replica stopped reconciling it and before its Lease is
    released, and must return once no reconcile of the shard is in flight."""

    def __init__(
        self,
        client: kube.Kube,
        namespace: str,
        name: str,
        identity: str,
        shards: int,
        *,
        lease_seconds: int = 15,
        renew_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        on_acquired: Callable[[int], None] = lambda _: None,
        on_released: Callable[[int], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.shards = shards
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.retry_seconds = retry_seconds
        self.on_acquired = on_acquired
        self.on_released = on_released
        self.clock = clock
        self._owned: frozenset[int] = frozenset()
        self._renewed: dict[int, float] = {}
        self._leases: dict[int, dict[str, Any]] = {}  # the last written, for its version
        self._seen: dict[str, tuple[LeaseRecord, float]] = {}  # name -> (record, observed at)
        self._lock = threading.Lock()

    def owns(self, key: str) -> bool:
        return shard_of(key, self.shards) in self._owned

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    def lease_name(self, shard: int) -> str:
        return f"{self.name}-shard-{shard}"

    @property
    def member_name(self) -> str:
        return f"{self.name}-member-{self.identity}".lower()[:253]

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except kube.ApiError as err:
                    log.warning("shard leases: %s", err)
                    self._drop_overdue()
                stop.wait(self.retry_seconds)
        finally:
            for shard in sorted(self._owned):
                self._let_go(shard, release=True)
            self._leave()

    # --- one round

    def tick(self) -> None:
        now = self.clock()
        items, _ = self.client.list(
            kube.LEASES, self.namespace, selector=f"{GROUP_LABEL}={group_value(self.name)}"
        )
        leases = {o["metadata"]["name"]: o for o in items}
        self._observe(leases, now)
        self._join(leases.get(self.member_name), now)
        others = sum(
            1
            for name, (record, _) in self._seen.items()
            if name.startswith(f"{self.name}-member-")
            and name != self.member_name
            and alive(record, now)
        )
        share = fair_share(self.shards, others + 1)
        for shard in sorted(self._owned):
            self._renew(shard, leases.get(self.lease_name(shard)), now)
        for shard in sorted(self._owned, reverse=True)[: max(len(self._owned) - share, 0)]:
            self._let_go(shard, release=True)
        for shard in range(self.shards):
            if len(self._owned) >= share:
                break
            if shard not in self._owned:
                self._take(shard, leases.get(self.lease_name(shard)), now)

    def _observe(self, leases: Mapping[str, dict[str, Any]], now: float) -> None:
        seen: dict[str, tuple[LeaseRecord, float]] = {}
        for name, lease in leases.items():
            record = read_record(lease)
            earlier = self._seen.get(name)
            seen[name] = earlier if earlier is not None and earlier[0] == record else (record, now)
        self._seen = seen

    def _body(self, name: str, record: LeaseRecord) -> dict[str, Any]:
        return {
            "apiVersion": kube.LEASES.api_version,
            "kind": kube.LEASES.kind,
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {GROUP_LABEL: group_value(self.name)},
            },
            "spec": lease_spec(record),
        }

    def _write(
        self, name: str, lease: dict[str, Any] | None, record: LeaseRecord
    ) -> dict[str, Any]:
        timeout = self.renew_seconds
        if lease is None:
            return self.client.create(
                kube.LEASES, self.namespace, self._body(name, record), timeout=timeout
            )
        return self.client.replace(
            kube.LEASES, self.namespace, with_record(lease, record), timeout=timeout
        )

    def _join(self, lease: dict[str, Any] | None, now: float) -> None:
        record = read_record(lease) if lease is not None else None
        try:
            self._write(
                self.member_name, lease, next_record(record, self.identity, now, self.lease_seconds)
            )
        except kube.ApiError as err:
            log.warning("cannot renew the member lease: %s", err)

    def _leave(self) -> None:
        try:
            self.client.delete(kube.LEASES, self.namespace, self.member_name)
        except kube.ApiError as err:
            log.info("member lease not deleted: %s", err)

    def _take(self, shard: int, lease: dict[str, Any] | None, now: float) -> None:
        name = self.lease_name(shard)
        record = read_record(lease) if lease is not None else None
        observed_at = self._seen.get(name, (None, now))[1]
        if not may_acquire(record, self.identity, now, observed_at):
            return
        try:
            written = self._write(
                name, lease, next_record(record, self.identity, now, self.lease_seconds)
            )
        except kube.ApiError as err:  # another replica was faster: a Conflict
            log.debug("shard %d not taken: %s", shard, err)
            return
        with self._lock:
            self._leases[shard] = written
            self._renewed[shard] = now
            self._owned = self._owned | {shard}
        log.info("took shard %d of %d", shard, self.shards, extra={"lease": name})
        self.on_acquired(shard)

    def _renew(self, shard: int, lease: dict[str, Any] | None, now: float) -> None:
        record = read_record(lease) if lease is not None else None
        if record is None or record.holder != self.identity:
            log.warning("shard %d taken over by %s", shard, record.holder if record else "-")
            self._let_go(shard, release=False)
            return
        try:
            written = self._write(
                self.lease_name(shard),
                lease,
                next_record(record, self.identity, now, self.lease_seconds),
            )
        except kube.ApiError as err:
            log.warning("shard %d not renewed: %s", shard, err)
            if renew_overdue(self._renewed.get(shard, 0.0), self.clock(), self.renew_seconds):
                self._let_go(shard, release=False)
            return
        self._leases[shard] = written
        self._renewed[shard] = now

    def _drop_overdue(self) -> None:
        now = self.clock()
        for shard in sorted(self._owned):
            if renew_overdue(self._renewed.get(shard, 0.0), now, self.renew_seconds):
                self._let_go(shard, release=False)

    def _let_go(self, shard: int, *, release: bool) -> None:
        with self._lock:
            self._owned = self._owned - {shard}
        self.on_released(shard)
        lease = self._leases.pop(shard, None)
        self._renewed.pop(shard, None)
        log.info("gave up shard %d", shard, extra={"lease": self.lease_name(shard)})
        if release and lease is not None:
            now = self.clock()
            try:
                self._write(self.lease_name(shard), lease, released_record(read_record(lease), now))
            except kube.ApiError as err:
                log.warning("shard %d not released; it expires: %s", shard, err)
