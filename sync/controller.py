"""The controller: informers feed a queue of ModelServing keys; workers reconcile them.

`reconcile(key)` is level-based: read the ModelServing and its objects from the cache,
observe, render what the plan may want, plan (a pure function, `sync.core.plan`), and execute
the plan, status write and revision pruning included. The only state kept in memory is
derived and disposable: the cache, rendered objects per spec, the last observation, and the
plan's `Recall` (which role instances were last seen Running, for RoleRunning events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from generator import model, naming
from generator.expand import Settings
from generator.kinds import Object
from generator.structural import StructuralSchema
from generator.templating import TemplateError, TemplateSet
from sync import kube
from sync.apply import Applier, Outcome
from sync.cache import Informer, Store, owner_keys
from sync.core.inputs import Inputs
from sync.core.observe import Observed, observe
from sync.core.plan import plan
from sync.core.settle import stalled_steps
from sync.core.status import Problem
from sync.core.steps import Plan, Recall
from sync.events import SpamFilter
from sync.outcomes import ReconcileOutcome
from sync.queue import WorkQueue
from sync.rendering import Renderings
from sync.trim import trim

log = logging.getLogger("msctl.controller")
PODGROUP_CRD = "podgroups.scheduling.volcano.sh"
CHILD_KINDS = ("Pod", "Service", "PodGroup", "ControllerRevision")
RACE_RETRY = 1.0


class ReconcileError(Exception):
    """Some step failed; the key is retried with backoff."""


@dataclass(frozen=True)
class Reconciled:
    plan: Plan
    outcome: Outcome
    requeue_after: float | None


@dataclass(frozen=True)
class Options:
    namespace: str | None = None  # None: all namespaces
    workers: int = 4
    api_concurrency: int = 16
    identity: str = ""
    # With sharding: whether this replica reconciles a key now (docs/behaviour.md#sharding).
    owns: Callable[[str], bool] | None = None


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def podgroup_support(crd: Mapping[str, Any] | None) -> tuple[bool, bool]:
    """(PodGroups manageable, with subGroupPolicy) from the CRD (docs/behaviour.md#podgroups)."""
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
        # The cache keeps only what a reconcile reads (docs/behaviour.md#cache).
        self.stores: dict[str, Store] = {
            "ModelServing": Store(transform=trim),
            "CustomResourceDefinition": Store(),
        }
        self.stores.update({k: Store(naming.NAME_LABEL, transform=trim) for k in CHILD_KINDS})
        self.pool = ThreadPoolExecutor(options.api_concurrency, thread_name_prefix="api")
        self.spam = SpamFilter()
        self.applier = Applier(client, self.stores, self.pool, self.spam, options.identity)
        self._renderings: dict[str, tuple[tuple[Any, ...], Renderings]] = {}
        self._recall: dict[str, Recall] = {}
        self._observed: dict[str, Observed] = {}
        self._problems: dict[str, str] = {}  # key -> why it is stalled
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
                self._renderings.pop(key, None)
                self._recall.pop(key, None)
                self._observed.pop(key, None)
                self._problems.pop(key, None)
            return
        self.queue.add(key)

    def _on_child(self, kind: str, obj: Object) -> None:
        for namespace, owner in owner_keys(obj, naming.NAME_LABEL):
            self.queue.add(_key(namespace, owner))

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

    def set_templates(self, templates: TemplateSet) -> None:
        """Render with `templates` from now on: every ModelServing is planned anew."""
        with self._lock:
            self.templates = templates
            self._renderings.clear()
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
        # The PodGroup informer is added while the CRD informer syncs; wait for it too, or
        # the first reconciles see no PodGroups and try to create the existing ones.
        while pending := [i for i in list(self.informers.values()) if not i.synced.is_set()]:
            for informer in pending:
                if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                    plural = informer.resource.plural
                    raise TimeoutError(f"cache of {plural} did not sync in {wait}s")
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
                if result is not None and result.plan.steps:
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

    def renderings_for(self, key: str, obj: Object) -> Renderings:
        meta = obj["metadata"]
        settings = self.settings(meta["uid"])
        version = (
            meta["uid"],
            meta.get("generation"),
            tuple(sorted(meta.get("labels", {}).items())),
            tuple(sorted(meta.get("annotations", {}).items())),
            # A LeaderWorkerSet owner turns on the lws-standard-labels plugin.
            tuple((r.get("kind"), r.get("name")) for r in meta.get("ownerReferences") or ()),
            settings,
            self._crd_version(),
            id(self.templates),  # a new template set (folder changed) renders anew
        )
        with self._lock:
            found = self._renderings.get(key)
        if found is not None and found[0] == version:
            return found[1]
        templates = self.templates
        ms = model.load(obj, namespace=meta["namespace"], plugins=templates.plugins())
        made = Renderings(templates, ms, settings, self.podgroup_schema())
        with self._lock:
            self._renderings[key] = (version, made)
        return made

    def observe(self, ms: model.ModelServing, uid: str) -> Observed:
        def of(kind: str) -> list[Object]:
            return self.stores[kind].owned_by(ms.namespace, ms.name)

        with self._lock:
            previous = self._observed.get(ms.key)
        observed = observe(
            ms.name,
            uid,
            pods=of("Pod"),
            services=of("Service"),
            podgroups=of("PodGroup"),
            revisions=of("ControllerRevision"),
            previous=previous,
        )
        with self._lock:
            self._observed[ms.key] = observed
        return observed

    def inputs(self, key: str) -> tuple[Object, Inputs] | None:
        """What the planner needs for `key`, desired objects rendered; None: nothing to do."""
        namespace, name = key.split("/", 1)
        obj = self.stores["ModelServing"].get(namespace, name)
        if obj is None or "deletionTimestamp" in obj["metadata"]:
            return None  # owner references let the garbage collector remove the children
        renderings = self.renderings_for(key, obj)
        with self._lock:
            recall = self._recall.get(key)
        observed = self.observe(renderings.ms, obj["metadata"]["uid"])
        return obj, renderings.inputs(observed, obj, self.clock(), recall)

    def resync(self) -> None:
        """Queue every ModelServing (a shard was taken: its keys are ours now)."""
        for ms in self.stores["ModelServing"].all():
            self._on_ms("MODIFIED", ms)

    def busy_with(self, owned: Callable[[str], bool]) -> bool:
        """Whether a reconcile of such a key is in flight."""
        return any(owned(key) for key in self.queue.processing())

    def reconcile(self, key: str) -> Reconciled | None:
        if self.options.owns is not None and not self.options.owns(key):
            return None  # another shard's
        try:
            found = self.inputs(key)
        except model.InvalidSpec as err:
            message = "; ".join(str(v) for v in err.violations)[:1000]
            self._stall(key, Problem("InvalidSpec", message))
            return None  # nothing to retry: a new spec brings a new reconcile
        except TemplateError as err:
            self._stall(key, Problem("TemplateError", str(err)[:1000]))
            raise ReconcileError(f"template error: {err}") from None
        if found is None:
            return None
        obj, inputs = found
        steps = plan(inputs)
        outcome = self.applier.apply(obj, steps)
        churn = steps.recall.churn
        with self._lock:
            self._recall[key] = steps.recall
            if churn.looping:
                self._problems[key] = "RepeatedWrites"
            else:
                self._problems.pop(key, None)
        if churn.until > inputs.now:
            # The writes keep being undone: no reconcile of this key until the back-off
            # ends, whatever events arrive meanwhile.
            log.warning("%s; backing off %.0fs", churn.cause, churn.delay(), extra={"key": key})
            self.queue.hold(key, churn.until - inputs.now)
        requeue = steps.requeue_after
        if outcome.raced:
            requeue = RACE_RETRY if requeue is None else min(requeue, RACE_RETRY)
        if outcome.errors:
            raise ReconcileError("; ".join(outcome.errors[:5]))
        return Reconciled(steps, outcome, requeue)

    def _stall(self, key: str, problem: Problem) -> None:
        """Say why `key` cannot be reconciled (a Warning Event and `Stalled` in its status),
        and write nothing else."""
        namespace, name = key.split("/", 1)
        log.warning("not reconciled (%s): %s", problem.reason, problem.message, extra={"key": key})
        with self._lock:
            self._problems[key] = problem.reason
        obj = self.stores["ModelServing"].get(namespace, name)
        if obj is not None:
            steps = stalled_steps(obj, problem, self.clock())
            self.applier.apply(obj, Plan(tuple(steps), None))

    def stalled(self) -> dict[str, float]:
        """How many ModelServings are stalled, by reason (for metrics)."""
        with self._lock:
            return {r: float(n) for r, n in Counter(self._problems.values()).items()}
