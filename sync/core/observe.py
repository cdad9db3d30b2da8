"""Observe: the live objects of one ModelServing, sorted into groups, role instances and pods.

Pure: takes the cached objects, returns a value. Objects that carry the ModelServing's labels
but are not controlled by this ModelServing's UID are kept apart as `foreign` (never
touched, docs/behaviour.md#ownership). Nothing here knows the spec; `plan` compares the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generator import naming
from generator.kinds import Object


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences", ()):
        if ref.get("controller") and ref.get("kind") == naming.KIND:
            uid: str = ref.get("uid", "")
            return uid
    return None


def terminating(obj: Mapping[str, Any]) -> bool:
    return "deletionTimestamp" in obj.get("metadata", {})


def restarts(pod: Mapping[str, Any]) -> int:
    status = pod.get("status", {})
    return sum(
        int(c.get("restartCount", 0))
        for key in ("containerStatuses", "initContainerStatuses")
        for c in status.get(key, ())
    )


def ready(pod: Mapping[str, Any]) -> bool:
    """Phase Running and condition Ready=True (docs/behaviour.md#readiness)."""
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", ())
    )


def deletion_cost(pod: Mapping[str, Any]) -> int:
    raw = pod.get("metadata", {}).get("annotations", {}).get(naming.DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


class PodState:
    """One pod of a role instance; the fields a reconcile reads are read once, here."""

    __slots__ = (
        "deletion_cost",
        "failed",
        "group",
        "index",
        "instance",
        "labels",
        "name",
        "obj",
        "ready",
        "restarts",
        "revision",
        "role",
        "role_hash",
        "terminating",
        "uid",
    )

    def __init__(self, obj: Object, group: int, role: str, instance: int, index: int) -> None:
        meta = obj["metadata"]
        self.obj = obj
        self.group = group
        self.role = role
        self.instance = instance
        self.index = index
        self.name: str = meta["name"]
        self.uid: str = meta.get("uid", "")
        self.labels: Mapping[str, str] = meta.get("labels", {})
        self.revision: str = self.labels.get(naming.REVISION_LABEL, "")
        self.role_hash: str = self.labels.get(naming.ROLE_TEMPLATE_HASH_LABEL, "")
        self.terminating = "deletionTimestamp" in meta
        self.ready = ready(obj)
        self.failed = obj.get("status", {}).get("phase") == "Failed"
        self.restarts = restarts(obj)
        self.deletion_cost = deletion_cost(obj)


@dataclass(eq=False)
class InstanceState:
    """One role instance as it exists: its pods by index and its Service.

    Derived values are computed by `seal()` once the observation is complete."""

    role: str
    ordinal: int
    pods: dict[int, PodState] = field(default_factory=dict)
    service: Object | None = None
    terminating: bool = False
    revision: str = ""
    role_hash: str = ""
    deletion_cost: int = 0

    @property
    def role_id(self) -> str:
        return naming.role_id(self.role, self.ordinal)

    def seal(self) -> None:
        pods = self.pods.values()
        self.terminating = any(p.terminating for p in pods) or (
            self.service is not None and terminating(self.service)
        )
        self.revision = most_common([p.revision for p in pods])
        self.role_hash = most_common([p.role_hash for p in pods])
        self.deletion_cost = sum(p.deletion_cost for p in pods)

    def ready(self, size: int) -> bool:
        return len(self.pods) == size and all(
            p.ready and not p.terminating for p in self.pods.values()
        )


@dataclass(eq=False)
class GroupState:
    ordinal: int
    instances: dict[tuple[str, int], InstanceState] = field(default_factory=dict)
    podgroup: Object | None = None
    terminating: bool = False
    revision: str = ""  # the revision most of the group's pods carry
    deletion_cost: int = 0

    def seal(self) -> None:
        for instance in self.instances.values():
            instance.seal()
        self.terminating = _group_terminating(self.podgroup, self.instances.values())
        self.revision = most_common([p.revision for p in self.pods()])
        self.deletion_cost = sum(i.deletion_cost for i in self.instances.values())

    def pods(self) -> list[PodState]:
        return [p for i in self.instances.values() for p in i.pods.values()]

    def instances_of(self, role: str) -> dict[int, InstanceState]:
        return {o: i for (r, o), i in self.instances.items() if r == role}

    def instance(self, role: str, ordinal: int) -> InstanceState:
        found = self.instances.get((role, ordinal))
        if found is None:
            found = self.instances[(role, ordinal)] = InstanceState(role, ordinal)
        return found


def _group_terminating(podgroup: Object | None, instances: Iterable[InstanceState]) -> bool:
    """A group is being deleted when its PodGroup is, or (no PodGroup) when every instance it
    still has is: one terminating instance sets aside only itself, its ordinal reserved
    (docs/behaviour.md#scaling), and the rest of the group is kept as usual."""
    if podgroup is not None:
        return terminating(podgroup)
    states = list(instances)
    return bool(states) and all(i.terminating for i in states)


def most_common(values: list[str]) -> str:
    """The most common non-empty value; ties go to the smallest, for determinism."""
    present = [v for v in values if v]
    if not present:
        return ""
    first = present[0]
    if all(v == first for v in present):
        return first
    counts = Counter(present)
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)


@dataclass
class Observed:
    groups: dict[int, GroupState] = field(default_factory=dict)
    revisions: dict[str, Object] = field(default_factory=dict)  # revision hash -> CR
    foreign: list[Object] = field(default_factory=list)  # our labels, another controller
    stray: list[Object] = field(default_factory=list)  # ours, but not named like our objects
    # id(pod object) -> its state, so the next observation can reuse what did not change
    pod_states: dict[int, PodState] = field(default_factory=dict, repr=False)

    def group(self, ordinal: int) -> GroupState:
        found = self.groups.get(ordinal)
        if found is None:
            found = self.groups[ordinal] = GroupState(ordinal)
        return found

    def objects(self) -> list[Object]:
        """Every object sorted into a group or revision (foreign and stray ones left out)."""
        out: list[Object] = list(self.revisions.values())
        for group in self.groups.values():
            if group.podgroup is not None:
                out.append(group.podgroup)
            for instance in group.instances.values():
                out.extend(p.obj for p in instance.pods.values())
                if instance.service is not None:
                    out.append(instance.service)
        return out

    def pod_count(self) -> int:
        return sum(len(i.pods) for g in self.groups.values() for i in g.instances.values())


def _pod(ms_name: str, uid: str, obj: Object, out: Observed) -> PodState | None:
    # Which group, role and instance a pod belongs to comes from its name and its controller
    # reference, which nobody can edit; labels are owned fields that a patch puts back
    # (docs/behaviour.md#ownership).
    if controller_uid(obj) != uid:
        out.foreign.append(obj)
        return None
    parsed = naming.parse_pod_name(ms_name, obj["metadata"]["name"])
    if parsed is None:
        out.stray.append(obj)
        return None
    group, role, ordinal, index = parsed
    state = PodState(obj, group, role, ordinal, index)
    out.group(group).instance(role, ordinal).pods[index] = state
    return state


def observe(
    ms_name: str,
    uid: str,
    *,
    pods: Iterable[Object] = (),
    services: Iterable[Object] = (),
    podgroups: Iterable[Object] = (),
    revisions: Iterable[Object] = (),
    previous: Observed | None = None,
) -> Observed:
    """Sort the objects. Pods that are the very objects of the `previous` observation
    (unchanged in the cache since) keep their state instead of being read again."""
    out = Observed()
    earlier = previous.pod_states if previous is not None else {}
    for obj in pods:
        known = earlier.get(id(obj))
        if known is not None and known.obj is obj:
            out.group(known.group).instance(known.role, known.instance).pods[known.index] = known
            out.pod_states[id(obj)] = known
            continue
        state = _pod(ms_name, uid, obj, out)
        if state is not None:
            out.pod_states[id(obj)] = state
    for obj in (*services, *podgroups, *revisions):
        if controller_uid(obj) != uid:
            out.foreign.append(obj)
            continue
        kind, name = obj.get("kind"), obj["metadata"]["name"]
        if kind == "ControllerRevision":
            revision = naming.parse_revision_name(ms_name, name)
            if revision is None:
                out.stray.append(obj)
            else:
                out.revisions[revision] = obj
        elif kind == "PodGroup":
            group = naming.parse_group_name(ms_name, name)
            if group is None:
                out.stray.append(obj)
            else:
                out.group(group).podgroup = obj
        elif kind == "Service":
            # A headless Service is named like its entry pod (index 0).
            parsed = naming.parse_pod_name(ms_name, name)
            if parsed is None or parsed[3] != 0:
                out.stray.append(obj)
            else:
                group, role, ordinal, _ = parsed
                out.group(group).instance(role, ordinal).service = obj
        else:
            out.stray.append(obj)  # a kind this observation does not expect
    for group_state in out.groups.values():
        group_state.seal()
    return out
