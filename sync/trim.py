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
UID) are interned so that every object shares one copy.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
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


def _strings(values: Mapping[str, Any]) -> dict[str, Any]:
    return {sys.intern(k): _intern(v) for k, v in values.items()}


def interned(value: Any) -> Any:
    """A copy of a JSON value whose strings (keys included) are the interned ones: the
    daemon keeps each rendered pod for as long as its spec, and thousands of them repeat the
    same keys, names, images and arguments."""
    if isinstance(value, dict):
        return {sys.intern(k): interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interned(v) for v in value]
    return _intern(value)


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


def _metadata(meta: Mapping[str, Any]) -> Object:
    out: Object = {k: _intern(meta[k]) for k in _META if k in meta}
    for part in ("labels", "annotations"):
        if part in meta:
            out[part] = _strings(meta[part])
    if "ownerReferences" in meta:
        out["ownerReferences"] = [
            {k: _intern(ref[k]) for k in _OWNER_REF if k in ref} for ref in meta["ownerReferences"]
        ]
    owned = owned_fields(meta.get("managedFields"))
    if owned:
        out["managedFields"] = owned
    return out


def _pod_status(status: Mapping[str, Any]) -> Object:
    out: Object = {k: _intern(status[k]) for k in ("phase", "reason", "message") if k in status}
    if "conditions" in status:
        out["conditions"] = [
            {k: _intern(c[k]) for k in _CONDITION if k in c} for c in status["conditions"]
        ]
    for key in _CONTAINER_STATUSES:
        if key in status:
            out[key] = [
                {k: interned(c[k]) for k in _CONTAINER_STATUS if k in c} for c in status[key]
            ]
    return out


def trim(obj: Object) -> Object:
    """The cached form of `obj` (a new dict; `obj` is not changed)."""
    kind = obj.get("kind")
    if kind == "ModelServing":
        meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
        return {**obj, "metadata": meta}
    if kind not in ("Pod", "Service", "PodGroup", "ControllerRevision"):
        return obj
    out: Object = {k: _intern(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    out["metadata"] = _metadata(obj.get("metadata", {}))
    if kind == "Pod":
        # The spec is what adoption compares with the rendered pod (docs/behaviour.md#adoption);
        # the container states and messages are the evidence of a failure (#evidence).
        if "spec" in obj:
            out["spec"] = interned(obj["spec"])
        if "status" in obj:
            out["status"] = _pod_status(obj["status"])
    elif kind == "ControllerRevision":
        for key in ("data", "revision"):
            if key in obj:
                out[key] = obj[key]
    elif "spec" in obj:
        out["spec"] = obj["spec"]
    return out
