"""The controller: informers feed a queue of ModelServing keys; workers reconcile them.

`reconcile(key)` is level-based: read the ModelServing and its objects from the cache,
observe, plan, apply, then write status if it changed and prune old ControllerRevisions.
The only state kept in memory is derived and disposable: the cache, rendered objects per
spec, and which role instances were last seen Running (for RoleRunning events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from generator import model, naming
from generator.expand import Settings
from generator.structural import StructuralSchema
from generator.templating import TemplateSet
from sync import kube, status
from sync.apply import Applier, Outcome
from sync.assess import Assessor, GroupView
from sync.cache import Informer, Store
from sync.desired import Desired
from sync.events import Event, SpamFilter
from sync.observe import Observed, PodMemo, observe
from sync.outcomes import ReconcileOutcome
from sync.plan import Inputs, Plan, plan
from sync.queue import WorkQueue

log = logging.getLogger("msctl.controller")
Object = dict[str, Any]
PODGROUP_CRD = "podgroups.scheduling.volcano.sh"
CHILD_KINDS = ("Pod", "Service", "PodGroup", "ControllerRevision")
RACE_RETRY = 1.0


class ReconcileError(Exception):
    """Some step failed; the key is retried with backoff."""


@dataclass(frozen=True)
class Result:
    plan: Plan
    outcome: Outcome
    status_written: bool
    requeue_after: float | None


@dataclass(frozen=True)
class Options:
    namespace: str | None = None  # None: all namespaces
    workers: int = 4
    api_concurrency: int = 16
    identity: str = ""


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def podgroup_support(crd: Mapping[str, Any] | None) -> tuple[bool, bool]:
    """(PodGroups can be managed, their spec has subGroupPolicy) from the CRD (Part A10)."""
    if crd is None or "deletionTimestamp" in crd.get("metadata", {}):
        return False, False
    for version in crd.get("spec", {}).get("versions", ()):
        if version.get("name") == "v1beta1" and version.get("served"):
            spec = (
                version.get("schema", {})
                .get("openAPIV3Schema", {})
                .get("properties", {})
                .get("spec", {})
            )
            return True, "subGroupPolicy" in spec.get("properties", {})
    return False, False


def podgroup_spec_schema(crd: Mapping[str, Any] | None) -> StructuralSchema | None:
    """The `spec` schema of the served PodGroup version, to apply its defaults."""
    for version in (crd or {}).get("spec", {}).get("versions", ()):
        if version.get("name") == "v1beta1":
            root = version.get("schema", {}).get("openAPIV3Schema", {})
            spec = root.get("properties", {}).get("spec")
            if isinstance(spec, dict):
                return StructuralSchema(spec, {})
    return None


class Controller:
    def __init__(
        self,
        client: kube.Kube,
        templates: TemplateSet,
        options: Options,
        *,
        clock: Callable[[], float] = time.time,
        on_reconciled: Callable[[ReconcileOutcome, float], None] | None = None,
    ) -> None:
        """`on_reconciled(result, seconds)` hears of every reconcile (result: success,
        requeue or error), for metrics."""
        self.client = client
        self.on_reconciled = on_reconciled
        self.templates = templates
        self.options = options
        self.clock = clock
        self.queue = WorkQueue()
        self.stores: dict[str, Store] = {
            "ModelServing": Store(),
            "CustomResourceDefinition": Store(),
        }
        self.stores.update({k: Store(naming.NAME_LABEL) for k in CHILD_KINDS})
        self.pool = ThreadPoolExecutor(options.api_concurrency, thread_name_prefix="api")
        self.spam = SpamFilter()
        self.applier = Applier(client, self.stores, self.pool, self.spam, options.identity)
        self._desired: dict[str, tuple[tuple[Any, ...], model.ModelServing, Desired]] = {}
        self._running: dict[str, frozenset[tuple[int, str, int]]] = {}
        self._memos: dict[str, PodMemo] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.informers = self._informers()

    # --- wiring

    def _informers(self) -> dict[str, Informer]:
        ns = self.options.namespace
        made = {
            "ModelServing": Informer(
                self.client,
                kube.MODELSERVINGS,
                self.stores["ModelServing"],
                self._on_ms,
                namespace=ns,
            ),
            "CustomResourceDefinition": Informer(
                self.client,
                kube.CRDS,
                self.stores["CustomResourceDefinition"],
                self._on_crd,
                field_selector=f"metadata.name={PODGROUP_CRD}",
            ),
        }
        for kind in ("Pod", "Service", "ControllerRevision"):
            made[kind] = self._child_informer(kind)
        return made

    def _child_informer(self, kind: str) -> Informer:
        """Objects carrying the ModelServing name label; PodGroups only once their CRD exists."""
        return Informer(
            self.client,
            kube.BY_KIND[kind],
            self.stores[kind],
            self._on_child,
            namespace=self.options.namespace,
            selector=naming.NAME_LABEL,
        )

    def _on_ms(self, kind: str, obj: Object) -> None:
        meta = obj["metadata"]
        key = _key(meta.get("namespace", ""), meta["name"])
        if kind == "DELETED":
            with self._lock:
                self._desired.pop(key, None)
                self._running.pop(key, None)
                self._memos.pop(key, None)
            return
        self.queue.add(key)

    def _on_child(self, kind: str, obj: Object) -> None:
        meta = obj.get("metadata", {})
        owner = meta.get("labels", {}).get(naming.NAME_LABEL)
        if owner:
            self.queue.add(_key(meta.get("namespace", ""), owner))

    def _on_crd(self, kind: str, obj: Object) -> None:
        supported, _ = self.podgroups()
        informer = self.informers.get("PodGroup")
        if supported and informer is None:
            informer = self.informers["PodGroup"] = self._child_informer("PodGroup")
            informer.start()
        elif not supported and informer is not None:
            informer.stop()
            del self.informers["PodGroup"]
            self.stores["PodGroup"].replace([])
        for ms in self.stores["ModelServing"].all():
            self._on_ms("MODIFIED", ms)

    def podgroups(self) -> tuple[bool, bool]:
        return podgroup_support(self.stores["CustomResourceDefinition"].get("", PODGROUP_CRD))

    def _crd_version(self) -> str:
        crd = self.stores["CustomResourceDefinition"].get("", PODGROUP_CRD)
        return str(crd["metadata"].get("resourceVersion", "")) if crd else ""

    def podgroup_schema(self) -> StructuralSchema | None:
        crd = self.stores["CustomResourceDefinition"].get("", PODGROUP_CRD)
        return podgroup_spec_schema(crd)

    # --- lifecycle

    def start(self, *, wait: float = 60.0) -> None:
        for informer in list(self.informers.values()):
            informer.start()
        deadline = time.monotonic() + wait
        for informer in list(self.informers.values()):
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"cache of {informer.resource.plural} did not sync in {wait}s")
        for n in range(self.options.workers):
            worker = threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers.values())

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.queue.close()
        for informer in self.informers.values():
            informer.stop()
        for worker in self._workers:
            worker.join(timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get()
            if key is None:
                return
            started = time.monotonic()
            outcome: ReconcileOutcome = "success"
            try:
                result = self.reconcile(key)
            except ReconcileError as err:
                outcome = "error"
                delay = self.queue.retry(key)
                log.warning(
                    "reconcile failed, retrying in %.2fs: %s", delay, err, extra={"key": key}
                )
            except Exception:  # a bug must not kill the worker: log it and retry the key
                outcome = "error"
                delay = self.queue.retry(key)
                log.exception("reconcile crashed, retrying in %.2fs", delay, extra={"key": key})
            else:
                self.queue.forget(key)
                if result is not None and result.requeue_after is not None:
                    outcome = "requeue"
                    self.queue.add_after(key, result.requeue_after)
                if result is not None and (result.plan.steps or result.status_written):
                    log.info(
                        "reconciled: %d step(s), %d done",
                        len(result.plan.steps),
                        result.outcome.done,
                        extra={
                            "key": key,
                            "duration_ms": round((time.monotonic() - started) * 1000),
                        },
                    )
            finally:
                self.queue.done(key)
                if self.on_reconciled is not None:
                    self.on_reconciled(outcome, time.monotonic() - started)

    # --- reconcile

    def settings(self, uid: str) -> Settings:
        supported, subgroups = self.podgroups()
        return Settings(podgroups=supported, subgroup_policy=subgroups, owner_uid=uid)

    def desired_for(self, key: str, obj: Object) -> tuple[model.ModelServing, Desired]:
        meta = obj["metadata"]
        settings = self.settings(meta["uid"])
        version = (
            meta["uid"],
            meta.get("generation"),
            tuple(sorted(meta.get("labels", {}).items())),
            tuple(sorted(meta.get("annotations", {}).items())),
            settings,
            self._crd_version(),
        )
        with self._lock:
            found = self._desired.get(key)
        if found is not None and found[0] == version:
            return found[1], found[2]
        ms = model.load(obj, namespace=meta["namespace"], plugins=self.templates.plugins())
        desired = Desired(self.templates, ms, settings, self.podgroup_schema())
        with self._lock:
            self._desired[key] = (version, ms, desired)
        return ms, desired

    def observe(self, ms: model.ModelServing, uid: str) -> Observed:
        def of(kind: str) -> list[Object]:
            return self.stores[kind].owned_by(ms.namespace, ms.name)

        with self._lock:
            memo = self._memos.setdefault(ms.key, {})
        return observe(
            ms.name,
            uid,
            pods=of("Pod"),
            services=of("Service"),
            podgroups=of("PodGroup"),
            revisions=of("ControllerRevision"),
            memo=memo,
        )

    def inputs(self, key: str) -> tuple[Object, Inputs] | None:
        namespace, name = key.split("/", 1)
        obj = self.stores["ModelServing"].get(namespace, name)
        if obj is None or "deletionTimestamp" in obj["metadata"]:
            return None  # owner references let the garbage collector remove the children
        ms, desired = self.desired_for(key, obj)
        with self._lock:
            before = self._running.get(key)
        return obj, Inputs(
            ms=ms,
            desired=desired,
            observed=self.observe(ms, obj["metadata"]["uid"]),
            status=obj.get("status", {}),
            now=self.clock(),
            running_before=before,
        )

    def reconcile(self, key: str) -> Result | None:
        try:
            found = self.inputs(key)
        except model.InvalidSpec as err:
            self._invalid(key, err)
            return None
        if found is None:
            return None
        obj, inputs = found
        steps = plan(inputs)
        outcome = self.applier.apply(obj, steps)
        with self._lock:
            self._running[key] = steps.running
        # Nothing written means nothing to see anew: the plan's own assessment still holds.
        if steps.writes:
            observed = self.observe(inputs.ms, obj["metadata"]["uid"])
            views = Assessor(inputs.ms, inputs.desired, observed, inputs.status).views()
        else:
            observed, views = inputs.observed, list(steps.groups)
        written = self._write_status(obj, inputs, observed, views)
        requeue = steps.requeue_after
        if outcome.raced:
            requeue = RACE_RETRY if requeue is None else min(requeue, RACE_RETRY)
        if outcome.errors:
            raise ReconcileError("; ".join(outcome.errors[:5]))
        return Result(steps, outcome, written, requeue)

    def _write_status(
        self, obj: Object, inputs: Inputs, observed: Observed, views: list[GroupView]
    ) -> bool:
        ms = inputs.ms
        new = status.compute(ms, views, inputs.status, inputs.now)
        written = False
        if new != obj.get("status"):
            body = {**obj, "status": new}
            try:
                stored = self.client.replace(kube.MODELSERVINGS, ms.namespace, body, sub="status")
            except (kube.Conflict, kube.NotFound) as err:
                log.info("status not written, will retry: %s", err, extra={"key": ms.key})
                self.queue.add_after(ms.key, RACE_RETRY)
            else:
                self.stores["ModelServing"].upsert(stored)
                written = True
        keep = {new["currentRevision"], new["updateRevision"]}
        for revision, cr in observed.revisions.items():
            if revision not in keep:
                try:
                    self.client.delete(
                        kube.REVISIONS,
                        ms.namespace,
                        cr["metadata"]["name"],
                        uid=cr["metadata"]["uid"],
                    )
                    self.stores["ControllerRevision"].forget(cr)
                except (kube.NotFound, kube.Conflict):
                    self.stores["ControllerRevision"].forget(cr)
        return written

    def _invalid(self, key: str, err: model.InvalidSpec) -> None:
        namespace, name = key.split("/", 1)
        obj = self.stores["ModelServing"].get(namespace, name)
        message = "; ".join(str(v) for v in err.violations)[:1000]
        log.warning("invalid ModelServing, not reconciled: %s", message, extra={"key": key})
        if obj is not None:
            self.applier.record(obj, Event("InvalidSpec", message, "Warning"))
