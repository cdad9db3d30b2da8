"""Apply: carry out a plan's steps against the API, wave by wave, and record the results.

Steps of one wave (Events too) run concurrently, the first on the reconciling thread and the
rest on a shared thread pool (the API server is the bottleneck, not this process); the next
wave starts when the previous one is done, and not at all after a wave with a failure: the
next reconcile plans again from what exists. Every result is written through to the cache.
Races with other writers are not errors: an object that already exists, is already gone, or
changed under a guarded patch just means "look again", and the reconcile is requeued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, TypeVar

from sync import kube
from sync.cache import Store
from sync.core.events import Event
from sync.core.steps import Plan, Step
from sync.events import SpamFilter, event_object

log = logging.getLogger("msctl.apply")
T = TypeVar("T")


@dataclass
class Outcome:
    done: int = 0
    raced: list[str] = field(default_factory=list)  # benign races: look again soon
    errors: list[str] = field(default_factory=list)  # real failures: retry with backoff


class Applier:
    def __init__(
        self,
        client: kube.Kube,
        stores: Mapping[str, Store],
        pool: ThreadPoolExecutor,
        spam: SpamFilter,
        identity: str = "",
    ) -> None:
        self.client = client
        self.stores = stores
        self.pool = pool
        self.spam = spam
        self.identity = identity

    def apply(self, ms: Mapping[str, Any], plan: Plan) -> Outcome:
        outcome = Outcome()
        namespace = ms["metadata"]["namespace"]
        for wave, steps in groupby(plan.steps, key=lambda s: s.wave):
            batch = list(steps)
            if batch[0].verb == "event":
                self._each(lambda s: self.record(ms, s.event) if s.event else None, batch)
                continue
            results = self._each(lambda s: self._run(namespace, s), batch)
            for step, result in zip(batch, results, strict=True):
                if result is None:
                    outcome.done += 1
                elif _benign(step, result):
                    outcome.raced.append(f"{step.describe()}: {result}")
                else:
                    outcome.errors.append(f"{step.describe()}: {result}")
            if outcome.errors:
                log.warning("stopping after wave %d: %s", wave, "; ".join(outcome.errors[:3]))
                break
        return outcome

    def _each(self, run: Callable[[Step], T], steps: list[Step]) -> list[T]:
        """`run` over the steps concurrently: the first on this thread, the rest on the pool.

        Most waves hold one or two steps; handing every step to a pool thread and waiting
        for it cost more CPU than anything else per created object (Future and Condition
        hand-offs between threads, see benchmarks/scale_bench.py --profile)."""
        futures = [self.pool.submit(run, step) for step in steps[1:]]
        first = run(steps[0])
        return [first, *(f.result() for f in futures)]

    def _run(self, namespace: str, step: Step) -> kube.ApiError | None:
        resource = kube.BY_KIND[step.kind]
        store = self.stores.get(step.kind)
        try:
            if step.verb == "create":
                assert step.obj is not None
                created = self.client.create(resource, namespace, step.obj)
                if store is not None:
                    store.upsert(created)
            elif step.verb == "patch":
                assert step.obj is not None
                patched = self.client.patch(resource, namespace, step.name, step.ops)
                if store is not None:
                    store.upsert(patched)
            elif step.verb == "status":
                assert step.obj is not None
                stored = self.client.replace(resource, namespace, step.obj, sub="status")
                if store is not None:
                    store.upsert(stored)
            elif step.verb == "delete":
                assert step.obj is not None
                uid = step.obj["metadata"].get("uid")
                answer = self.client.delete(resource, namespace, step.name, uid=uid)
                _record_delete(store, step.obj, answer)
            return None
        except kube.ApiError as err:
            if step.verb == "delete" and isinstance(err, kube.NotFound) and store is not None:
                assert step.obj is not None
                store.forget(dict(step.obj))
            return err

    def record(self, ms: Mapping[str, Any], event: Event) -> None:
        """Write an Event about `ms` unless the spam filter holds it back; best effort."""
        key = f"{ms['metadata']['namespace']}/{ms['metadata']['name']}"
        if not self.spam.allow(key, event):
            return
        body = event_object(ms, event, time.time(), self.identity)
        try:
            self.client.post(kube.EVENTS, ms["metadata"]["namespace"], body)
        except kube.ApiError as err:
            log.info("event %s not recorded: %s", event.reason, err)


def _benign(step: Step, err: kube.ApiError) -> bool:
    """Races that mean "the world moved; plan again", not failures."""
    if isinstance(err, kube.Conflict):
        return True  # exists already, or a precondition (UID, resourceVersion) no longer holds
    if isinstance(err, kube.NotFound):
        return step.verb in ("delete", "patch")
    # A guarded patch whose `test` op failed answers 422 on some servers.
    return isinstance(err, kube.Invalid) and step.verb == "patch" and "test" in err.message


def _record_delete(store: Store | None, live: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    # An object exists until the API server says it is gone. A DELETE answers with the
    # object, a deletionTimestamp set, in three cases: a graceful deletion (grace period > 0:
    # the kubelet still has to stop it), a finalizer holding it (any grace period), or the
    # last look at an object removed at once (grace 0, no finalizer). The first two still
    # hold their name and ordinal; only the third, or an answer without the object, means
    # gone, and then a tombstone stops late events.
    if store is None:
        return
    meta = answer.get("metadata", {}) if answer.get("kind") == live.get("kind") else {}
    held = meta.get("deletionGracePeriodSeconds", 0) > 0 or bool(meta.get("finalizers"))
    if meta.get("deletionTimestamp") and held:
        store.upsert(dict(answer))  # terminating: it still holds its name
    else:
        store.forget(dict(live))
