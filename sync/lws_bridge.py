"""The LWS bridge (`msctl run --lws-bridge`): serves each LeaderWorkerSet through a ModelServing
of the same name (docs/behaviour.md#leaderworkerset).

A small controller loop of its own beside the ModelServing controller, not a second kind inside
it: it writes only ModelServings (which the ModelServing controller then serves like any other)
and LWS status and Events, so the two share nothing but the API server. It watches the
LeaderWorkerSet CRD and runs only while that CRD is served: its LWS and ModelServing informers,
queue and worker start when the CRD appears and stop when it goes. Decisions are pure
(`sync.core.lws`); this module reads the caches and executes them.

Sharded (`--shards`), a replica bridges only the LeaderWorkerSets of the shards it holds:
`owns` is the ModelServing controller's test, on the same `namespace/name` key, since an LWS
maps to the ModelServing of its own name. So one replica both writes an LWS's ModelServing
and reconciles it, and two replicas never bridge the same LWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from generator import naming
from generator.kinds import Object
from generator.templating import TemplateSet
from sync import kube
from sync.cache import Informer, Store
from sync.core import lws as core
from sync.core.events import Event
from sync.events import SpamFilter, event_object
from sync.queue import WorkQueue

log = logging.getLogger("msctl.lws")
RACE_RETRY = 0.5


def lws_served(crd: Mapping[str, Any] | None) -> bool:
    """The LeaderWorkerSet CRD exists, is not being deleted, and serves v1."""
    if crd is None or "deletionTimestamp" in crd.get("metadata", {}):
        return False
    versions = crd.get("spec", {}).get("versions", ())
    return any(v.get("name") == "v1" and v.get("served") for v in versions)


def _lws_controlled(ms: Mapping[str, Any]) -> bool:
    refs = ms.get("metadata", {}).get("ownerReferences") or ()
    return any(r.get("controller") and r.get("kind") == naming.LWS_KIND for r in refs)


class _Running:
    """The informers, queue and worker of one period in which the CRD is served."""

    def __init__(self, bridge: LwsBridge) -> None:
        ns = bridge.namespace
        self.queue = WorkQueue()
        self.lws = Store()
        self.ms = Store()
        self.informers = [
            Informer(bridge.client, kube.LEADERWORKERSETS, self.lws, self._on_lws, namespace=ns),
            Informer(bridge.client, kube.MODELSERVINGS, self.ms, self._on_ms, namespace=ns),
        ]
        self.worker = threading.Thread(
            target=bridge.work, args=(self,), name="lws-bridge", daemon=True
        )

    def _on_lws(self, kind: str, obj: Object) -> None:
        meta = obj["metadata"]
        self.queue.add(f"{meta.get('namespace', '')}/{meta['name']}")

    def _on_ms(self, kind: str, obj: Object) -> None:
        if _lws_controlled(obj):
            self._on_lws(kind, obj)

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self.worker.start()

    def stop(self) -> None:
        self.queue.close()
        for informer in self.informers:
            informer.stop()


class LwsBridge:
    def __init__(
        self,
        client: kube.Kube,
        templates: TemplateSet,
        namespace: str | None,
        *,
        identity: str = "",
        owns: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.templates = templates
        self.namespace = namespace
        self.identity = identity
        self.owns = owns  # None: every LWS (not sharded)
        self.clock = clock
        self.spam = SpamFilter()
        self.crds = Store()
        self.crd_informer = Informer(
            client,
            kube.CRDS,
            self.crds,
            self._on_crd,
            field_selector=f"metadata.name={naming.LWS_CRD}",
        )
        self._lock = threading.Lock()
        self._running: _Running | None = None

    # --- lifecycle

    def start(self) -> None:
        self.crd_informer.start()

    @property
    def active(self) -> bool:
        return self._running is not None

    def stop(self) -> None:
        self.crd_informer.stop()
        with self._lock:
            running, self._running = self._running, None
        if running is not None:
            running.stop()

    def resync(self) -> None:
        """Queue every LeaderWorkerSet (a shard was taken: its keys are ours now)."""
        running = self._running
        if running is not None:
            for lws in running.lws.all():
                meta = lws["metadata"]
                running.queue.add(f"{meta.get('namespace', '')}/{meta['name']}")

    def busy_with(self, owned: Callable[[str], bool]) -> bool:
        """Whether a reconcile of such a key is in flight."""
        running = self._running
        return running is not None and any(owned(k) for k in running.queue.processing())

    def _on_crd(self, kind: str, obj: Object) -> None:
        served = lws_served(self.crds.get("", naming.LWS_CRD))
        with self._lock:
            if served and self._running is None:
                self._running = _Running(self)
                self._running.start()
                log.info("LeaderWorkerSet CRD found: LWS bridge started")
            elif not served and self._running is not None:
                self._running.stop()
                self._running = None
                log.info("LeaderWorkerSet CRD gone: LWS bridge stopped")

    def work(self, running: _Running) -> None:
        while True:
            key = running.queue.get()
            if key is None:
                return
            try:
                again = self.reconcile(running, key)
            except kube.ApiError as err:
                delay = running.queue.retry(key)
                log.warning("LWS bridge reconcile failed, retrying in %.2fs: %s", delay, err,
                            extra={"key": key})  # fmt: skip
            except Exception:  # a bug must not kill the worker: log it and retry the key
                delay = running.queue.retry(key)
                log.exception("LWS bridge reconcile crashed, retrying in %.2fs", delay,
                              extra={"key": key})  # fmt: skip
            else:
                running.queue.forget(key)
                if again:
                    running.queue.add_after(key, RACE_RETRY)
            finally:
                running.queue.done(key)

    # --- reconcile

    def reconcile(self, running: _Running, key: str) -> bool:
        """One LWS; True when something raced and the key should be looked at again."""
        if self.owns is not None and not self.owns(key):
            return False  # another shard's; taking the shard queues it again (resync)
        namespace, name = key.split("/", 1)
        lws = running.lws.get(namespace, name)
        if lws is None or "deletionTimestamp" in lws["metadata"]:
            return False  # the garbage collector removes the ModelServing it controls
        desired = core.desire(lws, self.templates.plugins())
        live = running.ms.get(namespace, name)
        plan = core.decide(lws, live, desired, self.clock())
        step = "create"
        try:
            if plan.create is not None:
                running.ms.upsert(self.client.create(kube.MODELSERVINGS, namespace, plan.create))
            step = "patch"
            if plan.spec_patch:
                running.ms.upsert(
                    self.client.patch(kube.MODELSERVINGS, namespace, name, plan.spec_patch)
                )
            step = "status"
            if plan.status is not None:
                body = {**lws, "status": plan.status}
                running.lws.upsert(
                    self.client.replace(kube.LEADERWORKERSETS, namespace, body, sub="status")
                )
        except kube.Invalid as err:
            if step == "patch":  # a guarded patch whose test failed: the object moved on
                return True
            # The API server refused what the mapping made (its own checks go further than
            # ours): say so on the LWS; a change of the LWS brings it back here.
            log.warning("LWS bridge: %s refused: %s", step, err, extra={"key": key})
            self._record(lws, Event("InvalidMapping", f"{step} refused: {err}"[:1000], "Warning"))
            return False
        except (kube.Conflict, kube.NotFound) as err:
            log.info("LWS bridge raced, looking again: %s", err, extra={"key": key})
            return True  # nothing said: the next look decides again
        written = [
            what
            for what, done in (
                ("ModelServing created", plan.create is not None),
                ("ModelServing spec restored", bool(plan.spec_patch)),
                ("LWS status", plan.status is not None),
            )
            if done
        ]
        if written:
            # Which replica wrote what, as the controller's "reconciled:" line says for
            # ModelServings: with --shards, only the holder of the key's shard.
            log.info("bridged: %s", ", ".join(written), extra={"key": key})
        for event in plan.events:
            self._record(lws, event)
        return False

    def _record(self, lws: Mapping[str, Any], event: Event) -> None:
        key = f"{lws['metadata']['namespace']}/{lws['metadata']['name']}"
        if not self.spam.allow(key, event):
            return
        try:
            body = event_object(lws, event, time.time(), self.identity)
            self.client.create(kube.EVENTS, lws["metadata"]["namespace"], body)
        except kube.ApiError as err:
            log.info("event %s not recorded: %s", event.reason, err)
