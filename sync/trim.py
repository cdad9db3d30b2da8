"""What the watch cache keeps of an object: only the fields the daemon reads.

Part of the daemon's shell, applied by `sync.cache.Store` to every object as it enters (the
idea of client-go's transform functions), so the cache holds one small representation per
object and the full one is garbage as soon as it is decoded (docs/behaviour.md#cache).

What is read, and so kept (everything else is dropped):
* every kind: `apiVersion`, `kind`, and of `metadata` the identity (name, namespace, uid,
  resourceVersion, generation), labels, annotations, owner references, the deletion fields,
  and of `managedFields` only what `sync.core.diff.owned` reads: the label and annotation
  keys that the `msctl` field manager set (a compact entry, the same shape);
* Pods: the `spec` (adoption compares it with the rendered pod, docs/behaviour.md#adoption),
  and of the status the phase, reason and message, the conditions, and each container's
  name, restart count, readiness and states (readiness, failure, recovery and its evidence;
  docs/behaviour.md#readiness, #evidence); node, IPs, images and start times are dropped;
* Services and PodGroups: `spec` whole (the diff compares it with the rendered one);
* ControllerRevisions: `data` (the role templates of a revision) and `revision`;
* ModelServings: everything but managedFields (the spec is the input; the status is
  written back whole, and a write without managedFields leaves the server's untouched).
Other kinds are kept whole.

Strings that repeat across thousands of objects (keys, label keys and values, the owner's
UID) are interned so that every object shares one copy, and so are the parts of pod specs
(`SHARED`): the containers, resources, ports, arguments and volumes of ten thousand pods of a
few ModelServings are a handful of distinct values, each kept once, shared by the live pods
and the rendered ones. Cached objects are read, never changed, so sharing is safe. A pod's
spec cannot change, so a status update of a pod keeps the spec already cached.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable, Mapping
from typing import Any

from generator.kinds import Object
from generator.naming import FIELD_MANAGER

_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "creationTimestamp",
    "finalizers",
)
_OWNER_REF = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
_CONTAINER_STATUSES = ("containerStatuses", "initContainerStatuses")
_CONDITION = ("type", "status", "reason", "message", "lastTransitionTime")
_CONTAINER_STATUS = ("name", "restartCount", "ready", "state", "lastState")


def _intern(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


class Shared:
    """Hash-consing of JSON values: `shared(v)` is equal to `v`, and equal parts of every
    value it has seen are one object (strings interned, lists and dicts kept once).

    A value's parts are looked up bottom-up, by the identities of their own shared parts, so
    a lookup costs a walk of the value, not a comparison. Values nothing else holds any more
    are dropped from the table once it has doubled (`sweep`), on a thread of its own: the
    caller may hold a cache's lock, and a sweep of a large table takes a while."""

    def __init__(self, sweep_after: int = 20_000, *, background: bool = True) -> None:
        self._table: dict[tuple[Hashable, ...], Any] = {}
        self._sweep_after = sweep_after
        self._size_after_sweep = 0
        self._background = background
        self._sweeping = threading.Lock()

    def __len__(self) -> int:
        return len(self._table)

    def __call__(self, value: Any) -> Any:
        out = self._share(value)[0]
        # Only once the table has doubled since the last sweep (and grown by `sweep_after`):
        # a sweep reads the whole table, so sweeps cost a constant share of the additions.
        if len(self._table) > max(2 * self._size_after_sweep, self._sweep_after):
            if not self._background:
                self.sweep()
            elif self._sweeping.acquire(blocking=False):  # else one is under way
                threading.Thread(target=self._sweep_then_release, daemon=True).start()
        return out

    def _share(self, value: Any) -> tuple[Any, Hashable]:
        """(the shared value, what stands for it in its parent's key)."""
        if isinstance(value, str):
            text = sys.intern(value)
            return text, text
        if isinstance(value, dict):
            items: dict[str, Any] = {}
            key: list[Hashable] = ["{"]
            for k, v in value.items():
                name = sys.intern(k)
                items[name], part = self._share(v)
                key += (name, part)
            return self._canonical(tuple(key), items)
        if isinstance(value, list):
            values: list[Any] = []
            key = ["["]
            for v in value:
                item, part = self._share(v)
                values.append(item)
                key.append(part)
            return self._canonical(tuple(key), values)
        # numbers, booleans, null: by type too, since True == 1 == 1.0
        return value, (type(value), value)

    def _canonical(self, key: tuple[Hashable, ...], fresh: Any) -> tuple[Any, Hashable]:
        # setdefault: atomic, so concurrent threads agree on one value per key
        found = self._table.setdefault(key, fresh)
        return found, id(found)  # alive while in the table, and the key goes with it

    def _sweep_then_release(self) -> None:
        try:
            self._drop_unheld()
        finally:
            self._sweeping.release()

    def sweep(self) -> None:
        """Drop the values only the table holds (now, on the calling thread)."""
        with self._sweeping:
            self._drop_unheld()

    def _drop_unheld(self) -> None:
        # One read of the table finds the values nothing else holds; dropping one can leave
        # its parts held by nothing else, so those are looked at next, by their own keys
        # (a key holds the ids of parts only while the parent is in the table). A value
        # another thread takes meanwhile stays valid: it is only no longer shared.
        unheld = _unheld(self._table)
        dropped: list[Any] = [self._table.pop(k, None) for k in unheld]
        while dropped:
            value = dropped.pop()
            if value is None:
                continue
            parts = [p for p in _containers(value) if self._table.get(_key(p)) is p]
            del value  # freed now: its parts lose a holder
            dropped += [self._table.pop(_key(part), None) for part in _unheld_parts(parts)]
            del parts  # (no loop variable may outlive this: it would hold a part)
        self._size_after_sweep = len(self._table)


def _containers(value: Any) -> list[Any]:
    children = value.values() if isinstance(value, dict) else value
    return [c for c in children if isinstance(c, (dict, list))]


def _part(value: Any) -> Hashable:
    """What stands for a shared value in its parent's key (as `Shared._share` builds it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return id(value)
    return (type(value), value)


def _key(value: Any) -> tuple[Hashable, ...]:
    """The table key of a shared dict or list, from its parts."""
    if isinstance(value, dict):
        key: list[Hashable] = ["{"]
        for k, v in value.items():
            key += (k, _part(v))
        return tuple(key)
    return ("[", *(_part(v) for v in value))


def _refcounts(table: dict[tuple[Hashable, ...], Any]) -> list[tuple[tuple[Hashable, ...], int]]:
    # Read from a copy: other threads add to the table meanwhile, and copying a dict is one
    # step they cannot interleave with.
    snapshot = table.copy()
    return [(k, sys.getrefcount(v)) for k, v in snapshot.items()]


def _part_refcounts(parts: list[Any]) -> list[int]:
    return [sys.getrefcount(p) for p in parts]


def _unheld(table: dict[tuple[Hashable, ...], Any]) -> list[tuple[Hashable, ...]]:
    """Keys of the values only `table` holds."""
    return [k for k, n in _refcounts(table) if n <= _ALONE]


def _unheld_parts(parts: list[Any]) -> list[Any]:
    """The parts (each in the table) that nothing but the table and `parts` holds."""
    return [p for p, n in zip(parts, _part_refcounts(parts), strict=True) if n <= _ALONE_IN_PARTS]


def _baselines() -> tuple[int, int]:
    """The counts `_refcounts` and `_part_refcounts` give for a value that only the table
    (and `parts`) holds: measured the same way, since what a reading adds varies between
    interpreter versions."""
    table: dict[tuple[Hashable, ...], Any] = {("[",): []}
    alone = _refcounts(table)[0][1]
    parts = [table[("[",)]]
    return alone, _part_refcounts(parts)[0]


_ALONE, _ALONE_IN_PARTS = _baselines()
SHARED = Shared()


def owned_fields(entries: Any) -> list[Object]:
    """The managedFields entries of the msctl manager, reduced to their label and
    annotation keys (the shape `sync.core.diff.owned` reads)."""
    out: list[Object] = []
    for entry in entries or ():
        if entry.get("manager") != FIELD_MANAGER or entry.get("subresource"):
            continue
        meta = entry.get("fieldsV1", {}).get("f:metadata", {})
        kept: dict[str, dict[str, Any]] = {
            sys.intern(f"f:{part}"): {
                sys.intern(k): {} for k in meta.get(f"f:{part}", {}) if k.startswith("f:")
            }
            for part in ("labels", "annotations")
            if f"f:{part}" in meta
        }
        if kept:
            out.append({"manager": FIELD_MANAGER, "fieldsV1": {"f:metadata": kept}})
    return out


def _kept(value: Any, before: Any) -> Any:
    """`value` shared, or the cached value before it when equal: comparing costs less than
    sharing, and most updates change a few fields of an object only."""
    return before if before is not None and before == value else SHARED(value)


def _metadata(meta: Mapping[str, Any], before: Mapping[str, Any]) -> Object:
    out: Object = {k: _intern(meta[k]) for k in _META if k in meta}
    for part in ("labels", "annotations"):
        if part in meta:
            out[part] = _kept(meta[part], before.get(part))
    if "ownerReferences" in meta:
        refs = [{k: ref[k] for k in _OWNER_REF if k in ref} for ref in meta["ownerReferences"]]
        out["ownerReferences"] = _kept(refs, before.get("ownerReferences"))
    owned = owned_fields(meta.get("managedFields"))
    if owned:
        out["managedFields"] = _kept(owned, before.get("managedFields"))
    return out


def _pod_status(status: Mapping[str, Any], before: Mapping[str, Any]) -> Object:
    out: Object = {k: _intern(status[k]) for k in ("phase", "reason", "message") if k in status}
    if "conditions" in status:
        conditions = [{k: c[k] for k in _CONDITION if k in c} for c in status["conditions"]]
        out["conditions"] = _kept(conditions, before.get("conditions"))
    for key in _CONTAINER_STATUSES:
        if key in status:
            kept = [{k: c[k] for k in _CONTAINER_STATUS if k in c} for c in status[key]]
            out[key] = _kept(kept, before.get(key))
    return out


def trim(obj: Object, previous: Object | None = None) -> Object:
    """The cached form of `obj` (a new dict; `obj` is not changed); `previous`: the cached
    form of the object before it, whose parts are reused when unchanged."""
    kind = obj.get("kind")
    if kind == "ModelServing":
        meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
        return {**obj, "metadata": meta}
    if kind not in ("Pod", "Service", "PodGroup", "ControllerRevision"):
        return obj
    out: Object = {k: _intern(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    before = previous or {}
    out["metadata"] = _metadata(obj.get("metadata", {}), before.get("metadata", {}))
    if kind == "Pod":
        # The spec is what adoption compares with the rendered pod (docs/behaviour.md#adoption);
        # the container states and messages are the evidence of a failure (#evidence).
        if "spec" in obj:
            out["spec"] = _pod_spec(obj, previous)
        if "status" in obj:
            out["status"] = _pod_status(obj["status"], before.get("status", {}))
    elif kind == "ControllerRevision":
        if "data" in obj:
            out["data"] = SHARED(obj["data"])
        if "revision" in obj:
            out["revision"] = obj["revision"]
    elif "spec" in obj:
        out["spec"] = SHARED(obj["spec"])
    return out


def _pod_spec(obj: Object, previous: Object | None) -> Any:
    # Kept as the same object while unchanged: sync.core.adopt keys its verdicts by it.
    return _kept(obj["spec"], (previous or {}).get("spec"))
