"""A deterministic simulator for the pure planner: objects in memory, a fake clock, a scripted
kubelet. Not an API server (the integration tests use the real one); it holds the objects a
plan creates, applies its steps the way the API would, and lets a test decide when pods
become ready or fail, so update order and budgets can be checked step by step.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from generator import model, naming
from generator.expand import Settings
from generator.templating import TemplateSet
from sync.core.observe import observe
from sync.core.plan import plan
from sync.core.steps import Plan, Recall
from sync.rendering import Renderings

TEMPLATES = TemplateSet()
Obj = dict[str, Any]


@dataclass
class Simulator:
    doc: Obj
    clock: float = 1_000_000.0
    ready_after: float = 5.0  # seconds from creation until the scripted kubelet marks a pod Ready
    never_ready: Callable[[Obj], bool] = lambda pod: False
    # objects a deletion leaves terminating (a kubelet still stopping them, a finalizer):
    # they stay, with a deletionTimestamp, until `release`
    held: Callable[[Obj], bool] = lambda obj: False
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)
    status: Obj = field(default_factory=dict)
    recall: Recall | None = None
    history: list[Plan] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # names, in deletion order
    _uids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.doc = copy.deepcopy(self.doc)
        self.doc["metadata"].setdefault("uid", "ms-uid")
        self.doc["metadata"].setdefault("generation", 1)
        self._renderings: tuple[Any, Renderings] | None = None

    # --- the spec

    def ms(self) -> model.ModelServing:
        return model.load(self.doc, plugins=TEMPLATES.plugins())

    def renderings(self) -> Renderings:
        key = repr((self.doc["spec"], self.doc["metadata"].get("annotations")))
        if self._renderings is None or self._renderings[0] != key:
            ms = self.ms()
            self._renderings = (key, Renderings(TEMPLATES, ms, Settings(owner_uid="ms-uid")))
        return self._renderings[1]

    def edit(self, path: str, value: Any) -> None:
        *parents, last = path.split(".")
        node: Any = self.doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        self.doc["metadata"]["generation"] += 1

    # --- objects

    def kind(self, kind: str) -> list[Obj]:
        return [o for (k, _), o in sorted(self.objects.items()) if k == kind]

    def pods(self) -> list[Obj]:
        return self.kind("Pod")

    def pod(self, name: str) -> Obj:
        return self.objects[("Pod", name)]

    def add(self, obj: Obj) -> Obj:
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        meta["uid"] = f"uid-{next(self._uids)}"
        meta["resourceVersion"] = "1"
        if stored["kind"] == "Pod":
            stored["status"] = {"phase": "Pending"}
            self.created_at[meta["uid"]] = self.clock
        self.objects[(stored["kind"], meta["name"])] = stored
        return stored

    def remove(self, kind: str, name: str) -> None:
        self.objects.pop((kind, name), None)
        self.deleted.append(name)

    def release(self, kind: str, name: str) -> None:
        """A held object finally goes (the kubelet finished, the finalizer was removed)."""
        assert "deletionTimestamp" in self.objects[(kind, name)]["metadata"]
        self.remove(kind, name)

    def set_pod_status(
        self, name: str, *, ready: bool, phase: str = "Running", restarts: int = 0
    ) -> None:
        pod = self.pod(name)
        pod["status"] = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "main", "restartCount": restarts, "ready": ready}],
        }

    # --- time and the kubelet

    def advance(self, seconds: float) -> None:
        self.clock += seconds
        for pod in self.pods():
            uid = pod["metadata"]["uid"]
            if pod["status"].get("phase") != "Pending" or self.never_ready(pod):
                continue
            if self.clock - self.created_at[uid] >= self.ready_after:
                self.set_pod_status(pod["metadata"]["name"], ready=True)

    # --- the loop

    def step(self) -> Plan:
        """One reconcile: observe, plan, apply every step (the status write included)."""
        live = {**self.doc, "status": self.status}
        inputs = self.renderings().inputs(self._observed(), live, self.clock, self.recall)
        result = plan(inputs)
        self.recall = result.recall
        for s in result.steps:
            if s.verb == "create":
                assert s.obj is not None
                self.add(s.obj)
            elif s.verb == "delete":
                found = self.objects.get((s.kind, s.name))
                if found is not None and self.held(found):
                    found["metadata"].setdefault("deletionTimestamp", "2026-01-01T00:00:00Z")
                else:
                    self.remove(s.kind, s.name)
            elif s.verb == "patch":
                live = self.objects[(s.kind, s.name)]
                patched = jsonpatch.apply_patch(live, [dict(op) for op in s.ops])
                patched["metadata"]["resourceVersion"] = str(
                    int(live["metadata"]["resourceVersion"]) + 1
                )
                self.objects[(s.kind, s.name)] = patched
            elif s.verb == "status":
                assert s.obj is not None
                self.status = s.obj["status"]
        self.history.append(result)
        return result

    def settle(self, *, rounds: int = 100, tick: float = 1.0) -> None:
        """Reconcile and advance the clock until neither objects nor status change for longer
        than a pod takes to become ready."""
        quiet = 0
        for _ in range(rounds):
            before = copy.deepcopy(self.status)
            result = self.step()
            quiet = quiet + 1 if not result.writes and self.status == before else 0
            # A look far beyond this settling (a progress deadline) is no pending work.
            later = result.requeue_after is None or result.requeue_after > rounds * tick
            if quiet * tick > self.ready_after + 1 and later:
                return
            self.advance(tick)
        raise AssertionError(f"no steady state after {rounds} rounds")

    def _observed(self) -> Any:
        name = self.doc["metadata"]["name"]
        return observe(
            name,
            "ms-uid",
            pods=self.pods(),
            services=self.kind("Service"),
            podgroups=self.kind("PodGroup"),
            revisions=self.kind("ControllerRevision"),
        )

    # --- questions tests ask

    def groups(self) -> dict[int, str]:
        """Ordinal -> revision of every ServingGroup's pods ("mixed" if they disagree)."""
        out: dict[int, set[str]] = {}
        for pod in self.pods():
            labels = pod["metadata"]["labels"]
            ordinal = int(labels[naming.GROUP_NAME_LABEL].rsplit("-", 1)[1])
            out.setdefault(ordinal, set()).add(labels[naming.REVISION_LABEL])
        return {o: (r.pop() if len(r) == 1 else "mixed") for o, r in sorted(out.items())}

    def unavailable_groups(self) -> int:
        ms = self.ms()
        ready_pods: dict[int, int] = {}
        for pod in self.pods():
            ordinal = int(pod["metadata"]["labels"][naming.GROUP_NAME_LABEL].rsplit("-", 1)[1])
            ok = pod["status"].get("phase") == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod["status"].get("conditions", [])
            )
            ready_pods[ordinal] = ready_pods.get(ordinal, 0) + int(ok)
        size = sum(r.replicas * r.size for r in ms.template.roles)
        return sum(1 for g in range(ms.replicas) if ready_pods.get(g, 0) != size)
