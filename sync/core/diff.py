"""JSON patches (RFC 6902) that bring a live object to its rendered form, owned fields only.

Owned fields are the labels and annotations the renderer produces, and the `spec` fields of
Services and PodGroups (pod specs are immutable). Values the API server fills in never cause
a patch:
* PodGroup specs are compared with the rendered spec after the PodGroup CRD's own defaults
  are applied to it (the caller passes that server view), so `queue: default` or a defaulted
  `highestTierAllowed` match; its known fields that are no longer rendered are removed.
* Service specs are compared by containment (the server adds type, clusterIPs, ...) and
  nothing is removed: built-in defaults are not in any schema the daemon could consult.
* A label or annotation that the `msctl` field manager set earlier (per managedFields) and
  the renderer no longer produces is removed; the server never defaults those.
Every patch starts with a `test` of the object's UID and pins its resourceVersion, so it
fails with a conflict instead of overwriting a concurrent change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from generator.naming import FIELD_MANAGER, STATE_ANNOTATIONS

Op = dict[str, Any]


def pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def contains(live: Any, want: Any) -> bool:
    """`want` is `live` up to fields the server added (dict keys; list items compared pairwise)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(
            k in live and contains(live[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(live, list)
            and len(live) == len(want)
            and all(contains(a, b) for a, b in zip(live, want, strict=True))
        )
    return bool(live == want) and type(live) is type(want)


# The PodGroup spec fields the daemon manages (docs/behaviour.md#podgroups).
PODGROUP_FIELDS = frozenset(
    {"minMember", "minResources", "queue", "networkTopology", "subGroupPolicy"}
)


def owned(live: Mapping[str, Any]) -> dict[str, set[str]]:
    """Label and annotation keys the msctl field manager has set."""
    out: dict[str, set[str]] = {"labels": set(), "annotations": set()}
    for entry in live.get("metadata", {}).get("managedFields", ()):
        if entry.get("manager") != FIELD_MANAGER or entry.get("subresource"):
            continue
        meta = entry.get("fieldsV1", {}).get("f:metadata", {})
        for part in ("labels", "annotations"):
            out[part] |= {k[2:] for k in meta.get(f"f:{part}", {}) if k.startswith("f:")}
    return out


def _map_ops(
    part: str, want: Mapping[str, str], live: Mapping[str, str], previously: set[str]
) -> list[Op]:
    ops: list[Op] = []
    if want and not live:
        return [{"op": "add", "path": pointer("metadata", part), "value": dict(want)}]
    for key in sorted(want):
        if key not in live:
            ops.append({"op": "add", "path": pointer("metadata", part, key), "value": want[key]})
        elif live[key] != want[key]:
            ops.append(
                {"op": "replace", "path": pointer("metadata", part, key), "value": want[key]}
            )
    stale = sorted(k for k in previously if k in live and k not in want)
    if part == "annotations":
        stale = [k for k in stale if k not in STATE_ANNOTATIONS]
    ops.extend({"op": "remove", "path": pointer("metadata", part, k)} for k in stale)
    return ops


def metadata_ops(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Op]:
    want, have = desired["metadata"], live["metadata"]
    if want.get("labels", {}) == have.get("labels", {}) and want.get("annotations", {}) == have.get(
        "annotations", {}
    ):
        return []  # the common case, and nothing stale can hide in equal maps
    mine = owned(live)
    return [
        *_map_ops("labels", want.get("labels", {}), have.get("labels", {}), mine["labels"]),
        *_map_ops(
            "annotations",
            want.get("annotations", {}),
            have.get("annotations", {}),
            mine["annotations"],
        ),
    ]


def spec_ops(
    want: Mapping[str, Any],
    have: Mapping[str, Any],
    *,
    exact: bool,
    removable: frozenset[str] = frozenset(),
) -> list[Op]:
    ops: list[Op] = []
    for key in sorted(want):
        if key not in have:
            ops.append({"op": "add", "path": pointer("spec", key), "value": want[key]})
        elif not (have[key] == want[key] if exact else contains(have[key], want[key])):
            ops.append({"op": "replace", "path": pointer("spec", key), "value": want[key]})
    stale = sorted(k for k in removable if k in have and k not in want)
    ops.extend({"op": "remove", "path": pointer("spec", k)} for k in stale)
    return ops


def guarded(live: Mapping[str, Any], ops: list[Op]) -> list[Op]:
    """The ops behind a UID test and a resourceVersion pin (optimistic concurrency)."""
    if not ops:
        return []
    meta = live["metadata"]
    return [
        {"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        *ops,
    ]


def object_patch(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    server_spec: Mapping[str, Any] | None = None,
) -> list[Op]:
    """The guarded patch for one object; `server_spec`: a PodGroup's spec as the server
    would store it (the rendered spec with the CRD's defaults applied)."""
    ops = metadata_ops(desired, live)
    kind, have = desired.get("kind"), live.get("spec", {})
    if kind == "PodGroup":
        want = server_spec if server_spec is not None else desired.get("spec", {})
        ops += spec_ops(want, have, exact=True, removable=PODGROUP_FIELDS)
    elif kind != "Pod":
        ops += spec_ops(desired.get("spec", {}), have, exact=False)
    return guarded(live, ops)


# (desired, server spec, live UID, live resourceVersion, ops) of one earlier answer
PatchAnswer = tuple[Any, Any, Any, Any, tuple[Op, ...]]


def remembered_patch(
    earlier: Mapping[int, PatchAnswer],
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    server_spec: Mapping[str, Any] | None = None,
) -> PatchAnswer:
    """`object_patch`, or its earlier answer while neither side changed.

    A no-op reconcile of a large ModelServing compares every live object with its desired
    one, and the answer can only change when one of them does. Both are known by identity:
    the daemon keeps desired objects (and PodGroup server specs) for as long as their spec,
    and a live object stays the same while its UID and resourceVersion do. `earlier` is keyed
    by id(desired); each answer holds its desired object, so that id cannot be reused by
    another object while the answer is kept.
    """
    meta = live["metadata"]
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    found = earlier.get(id(desired))
    if (
        found is not None
        and version
        and found[0] is desired
        and found[1] is server_spec
        and found[2:4] == (uid, version)
    ):
        return found
    ops = tuple(object_patch(desired, live, server_spec=server_spec))
    return (desired, server_spec, uid, version, ops)


def annotation_patch(live: Mapping[str, Any], changes: Mapping[str, str | None]) -> list[Op]:
    """Set (or with None remove) annotations the daemon keeps as state on a pod."""
    have = live["metadata"].get("annotations", {})
    ops: list[Op] = []
    if not have and any(v is not None for v in changes.values()):
        initial = {k: v for k, v in changes.items() if v is not None}
        return guarded(live, [{"op": "add", "path": "/metadata/annotations", "value": initial}])
    for key, value in sorted(changes.items()):
        path = pointer("metadata", "annotations", key)
        if value is None:
            if key in have:
                ops.append({"op": "remove", "path": path})
        elif have.get(key) != value:
            ops.append(
                {"op": "add" if key not in have else "replace", "path": path, "value": value}
            )
    return guarded(live, ops)


def describe_ops(ops: list[Op]) -> str:
    """One line per op for people, without the guard ops."""
    return "; ".join(
        f"{op['op']} {op['path']}" + (f" = {json.dumps(op['value'])}" if "value" in op else "")
        for op in ops
        if op["op"] != "test" and op["path"] != "/metadata/resourceVersion"
    )
