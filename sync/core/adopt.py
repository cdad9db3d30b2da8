"""Adopt: does a live pod run what the spec renders? (docs/behaviour.md#adoption)

Pure. A pod's content is its `spec`: no controller may change it, so a pod whose spec
differs from the rendered one must be replaced, while its labels and annotations can be
patched in place. The rollout decides "outdated" by this content, not by revision labels: a
pod written by the reference controller, by an older msctl, or by us for a revision whose
pod metadata alone changed keeps running, and only its metadata is patched.

A live spec also holds what the API server and its admission plugins filled in; those values
are tolerated (listed below). Below the pod and container level only containment is checked,
since every field the server adds there is a default. Two shapes of the reference's pods are
accepted as equal to ours: `ENTRY_ADDRESS` `<entry-pod>.<namespace>`, and an entry pod with
neither `hostname` nor `subdomain`. Anything else that differs means "not equivalent".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator import naming
from generator.kinds import Object
from generator.model import ModelServing
from generator.quantity import Quantity
from sync.core.desired import Desired, pod_key
from sync.core.observe import Observed

ANY = object()  # any value the server chose
# field -> the value the server fills in when the rendered pod leaves the field out
SERVER_POD_FIELDS: Mapping[str, Any] = {
    "dnsPolicy": "ClusterFirst",
    "enableServiceLinks": True,
    "nodeName": ANY,  # the scheduler's binding
    "preemptionPolicy": "PreemptLowerPriority",
    "priority": ANY,  # from priorityClassName, 0 without
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "serviceAccount": "default",
    "serviceAccountName": "default",
    "terminationGracePeriodSeconds": 30,
}
SERVER_CONTAINER_FIELDS: Mapping[str, Any] = {
    "imagePullPolicy": ANY,  # from the image tag
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
# List items admission appends: the not-ready/unreachable tolerations (DefaultTolerationSeconds)
# and the service-account token volume with its mounts (ServiceAccount).
DEFAULT_TOLERATIONS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
TOKEN_VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def _server_added(key: str, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if key == "tolerations":
        return item.get("key") in DEFAULT_TOLERATIONS
    if key == "volumes":
        return str(item.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)
    if key == "volumeMounts":
        return item.get("mountPath") == TOKEN_MOUNT_PATH
    return False


def reference_entry_address(ours: str) -> str:
    """Our `<entry>.<service>.<namespace>` as the reference writes it, `<entry>.<namespace>`."""
    parts = ours.split(".")
    return f"{parts[0]}.{parts[-1]}" if len(parts) == 3 else ours


def _same_entry_address(want: Any, live: Any) -> bool:
    if not (isinstance(want, dict) and isinstance(live, dict)):
        return False
    if want.get("name") != naming.ENV_ENTRY_ADDRESS or set(want) != {"name", "value"}:
        return False
    value = str(want.get("value"))
    return set(live) == set(want) and live.get("value") == reference_entry_address(value)


def _quantity(value: Any) -> Any:
    try:
        return str(Quantity.parse(value))
    except ValueError:
        return value


def _extras(defaults: Mapping[str, Any], want: Mapping[str, Any]) -> Mapping[str, Any]:
    return {k: v for k, v in defaults.items() if k not in want}


def _obj(
    want: Mapping[str, Any], live: Any, path: str, extras: Mapping[str, Any] | None
) -> str | None:
    """`extras`: fields the live object may have beyond `want` (None: any field)."""
    if not isinstance(live, dict):
        return f"{path}: not an object"
    for key in sorted(want):
        if key not in live:
            return f"{path}.{key}: missing"
        found = _field(key, want[key], live[key], f"{path}.{key}")
        if found:
            return found
    if extras is None:
        return None
    for key in sorted(set(live) - set(want)):
        if key in ("tolerations", "volumes", "volumeMounts") and all(
            _server_added(key, x) for x in live[key] or ()
        ):
            continue
        if key not in extras or (extras[key] is not ANY and extras[key] != live[key]):
            return f"{path}.{key}: {live[key]!r}, not in the spec"
    return None


def _field(key: str, want: Any, live: Any, path: str) -> str | None:
    if isinstance(want, list):
        return _list(key, want, live, path)
    if isinstance(want, dict):
        if key == "resources" and isinstance(live, dict):
            return _resources(want, live, path)
        return _obj(want, live, path, None)
    if want != live or type(want) is not type(live):
        return f"{path}: {live!r}, the spec says {want!r}"
    return None


def _resources(want: Mapping[str, Any], live: Mapping[str, Any], path: str) -> str | None:
    """Quantities compared by value; a request the server copied from a limit is tolerated."""
    limits = {k: _quantity(v) for k, v in live.get("limits", {}).items()}
    for part in ("limits", "requests"):
        mine = {k: _quantity(v) for k, v in want.get(part, {}).items()}
        have = {k: _quantity(v) for k, v in live.get(part, {}).items()}
        if part == "requests":
            have = {k: v for k, v in have.items() if k in mine or limits.get(k) != v}
        if mine != have:
            return f"{path}.{part}: {live.get(part)!r}, the spec says {want.get(part)!r}"
    rest = {k: v for k, v in want.items() if k not in ("limits", "requests")}
    return _obj(rest, {k: v for k, v in live.items() if k in rest}, path, None)


def _list(key: str, want: list[Any], live: Any, path: str) -> str | None:
    if not isinstance(live, list):
        return f"{path}: not a list"
    kept = [x for x in live if x in want or not _server_added(key, x)]
    if len(kept) != len(want):
        return f"{path}: {len(kept)} items, the spec has {len(want)}"
    for number, (w, x) in enumerate(zip(want, kept, strict=True)):
        where = f"{path}[{number}]"
        if key == "env" and _same_entry_address(w, x):
            continue
        if key in CONTAINER_LISTS and isinstance(w, dict):
            found = _obj(w, x, where, _extras(SERVER_CONTAINER_FIELDS, w))
        else:
            found = _field(key, w, x, where)
        if found:
            return found
    return None


def difference(want: Object, live: Object) -> str | None:
    """What the live pod runs that the rendered one does not (None: equivalent content)."""
    spec = dict(want.get("spec", {}))
    have = live.get("spec", {})
    if "hostname" not in have and "subdomain" not in have:
        spec.pop("hostname", None)  # the reference's entry pods set neither
        spec.pop("subdomain", None)
    return _obj(spec, have, "spec", _extras(SERVER_POD_FIELDS, spec))


# (id(rendered pod), id(live spec)) -> (rendered pod, live spec, difference)
Answers = Mapping[tuple[int, int], tuple[Object, Any, str | None]]


@dataclass(frozen=True)
class Content:
    """Live pods judged against the current revision's rendering of their slot: `same` holds
    the UIDs of those that run it; `why` says what differs for the others; `answers` are
    handed to the next plan, which reuses them while neither pod changed."""

    same: frozenset[str]
    why: Mapping[str, str]
    answers: Answers


def judge(
    ms: ModelServing, observed: Observed, desired: Desired, earlier: Answers | None = None
) -> Content:
    """Every live pod of a role the spec still has, against the pod the current revision
    renders for its slot (`desired.wanted()` lists that slot for every live instance).

    A no-op reconcile must stay cheap: the daemon keeps rendered pods for as long as their
    spec, and a cached pod keeps its spec object for as long as the spec is unchanged (a
    status update does not replace it), so an earlier answer for the same pair of objects is
    reused (kept with both, so their ids stay taken)."""
    roles = {r.name: r for r in ms.template.roles}
    same: set[str] = set()
    why: dict[str, str] = {}
    answers: dict[tuple[int, int], tuple[Object, Any, str | None]] = {}
    earlier = earlier or {}
    for group in observed.groups.values():
        for pod in group.pods():
            role = roles.get(pod.role)
            if role is None or not pod.uid:
                continue
            want = desired.pods.get(pod_key(role, pod.group, pod.instance, pod.index, ms.revision))
            if want is None:  # an index beyond the role's size
                why[pod.uid] = f"index {pod.index} is not in role {role.name} any more"
                continue
            spec = pod.obj.get("spec")
            key = (id(want), id(spec))
            known = earlier.get(key)
            if known is not None and known[0] is want and known[1] is spec:
                found = known[2]
            else:
                found = difference(want, pod.obj)
            answers[key] = (want, spec, found)
            if found is None:
                same.add(pod.uid)
            else:
                why[pod.uid] = found
    return Content(frozenset(same), why, answers)
