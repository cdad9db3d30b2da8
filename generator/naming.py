"""Names, ordinals and the label/annotation/env keys of ModelServing (docs/behaviour.md#names).

Every generated name is derived here and nowhere else, so the renderer, the sync daemon and the
tests agree on them.
"""

from __future__ import annotations

import re

API_GROUP = "workload.serving.volcano.sh"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "ModelServing"
PLURAL = "modelservings"

LABEL_PREFIX = "modelserving.volcano.sh/"
NAME_LABEL = LABEL_PREFIX + "name"
GROUP_NAME_LABEL = LABEL_PREFIX + "group-name"
ROLE_LABEL = LABEL_PREFIX + "role"
ROLE_ID_LABEL = LABEL_PREFIX + "role-id"
REVISION_LABEL = LABEL_PREFIX + "revision"
ROLE_TEMPLATE_HASH_LABEL = LABEL_PREFIX + "role-template-hash"
ENTRY_LABEL = LABEL_PREFIX + "entry"

# State the daemon keeps on a failing pod (recovery grace period), never rendered.
FAILED_SINCE_ANNOTATION = LABEL_PREFIX + "failed-since"
RESTARTS_SEEN_ANNOTATION = LABEL_PREFIX + "restarts-seen"
STATE_ANNOTATIONS = frozenset({FAILED_SINCE_ANNOTATION, RESTARTS_SEEN_ANNOTATION})

# Settings past the reference (docs/behaviour.md#settings): annotations under one prefix of our
# own, so a reference cluster keeps them and ignores them instead of reinterpreting them.
SETTINGS_PREFIX = "msctl.dev/"
BACKOFF_BASE_ANNOTATION = SETTINGS_PREFIX + "backoff-base-seconds"
BACKOFF_MAX_ANNOTATION = SETTINGS_PREFIX + "backoff-max-seconds"
BACKOFF_RESET_ANNOTATION = SETTINGS_PREFIX + "backoff-reset-seconds"
RESTART_LIMIT_ANNOTATION = SETTINGS_PREFIX + "restart-limit"
RESTART_WINDOW_ANNOTATION = SETTINGS_PREFIX + "restart-window-seconds"
PROGRESS_DEADLINE_ANNOTATION = SETTINGS_PREFIX + "progress-deadline-seconds"
RESET_FAILURES_ANNOTATION = SETTINGS_PREFIX + "reset-failures"

# The field manager of every write the daemon makes; a diff removes only what it set.
FIELD_MANAGER = "msctl"

PODGROUP_ANNOTATION = "scheduling.k8s.io/group-name"
TASK_SPEC_ANNOTATION = "volcano.sh/task-spec"
QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

ENV_GROUP_SIZE = "GROUP_SIZE"
ENV_ENTRY_ADDRESS = "ENTRY_ADDRESS"
ENV_WORKER_INDEX = "WORKER_INDEX"
INJECTED_ENV = (ENV_GROUP_SIZE, ENV_ENTRY_ADDRESS, ENV_WORKER_INDEX)

VOLCANO_SCHEDULER = "volcano"

DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def namespace_problem(namespace: str) -> str | None:
    """Why `namespace` cannot name a namespace (a DNS-1123 label), or None if it can."""
    if len(namespace) <= 63 and DNS1123_LABEL.match(namespace):
        return None
    return (
        f"{namespace!r} is not a valid namespace name: at most 63 lowercase letters, digits "
        "and '-', starting and ending with a letter or digit"
    )


def group_name(ms: str, group: int) -> str:
    return f"{ms}-{group}"


def role_id(role: str, instance: int) -> str:
    return f"{role}-{instance}"


def pod_name(ms: str, group: int, role: str, instance: int, index: int) -> str:
    """Entry pod has index 0, worker k has index k (1..workerReplicas)."""
    return f"{ms}-{group}-{role}-{instance}-{index}"


def entry_pod_name(ms: str, group: int, role: str, instance: int) -> str:
    return pod_name(ms, group, role, instance, 0)


def service_name(ms: str, group: int, role: str, instance: int) -> str:
    """The headless Service is named like the entry pod it resolves."""
    return entry_pod_name(ms, group, role, instance)


def podgroup_name(ms: str, group: int) -> str:
    return group_name(ms, group)


def revision_name(ms: str, revision: str) -> str:
    return f"{ms}-{revision}"


def entry_address(ms: str, group: int, role: str, instance: int, namespace: str) -> str:
    """`<entry-pod>.<headless-service>.<namespace>` (docs/behaviour.md#environment)."""
    entry = entry_pod_name(ms, group, role, instance)
    return f"{entry}.{service_name(ms, group, role, instance)}.{namespace}"


def parse_ordinal(name: str) -> tuple[str, int] | None:
    """Split `prefix-N` into (prefix, N); None when the name has no numeric suffix."""
    prefix, dash, number = name.rpartition("-")
    if not dash or not number.isascii() or not number.isdigit():
        return None
    return prefix, int(number)


def parse_group_name(ms: str, name: str) -> int | None:
    """The group ordinal of `<ms>-<group>` (a PodGroup's name), or None."""
    prefix, dash, number = name.rpartition("-")
    if prefix != ms or not dash or not number.isascii() or not number.isdigit():
        return None
    return int(number)


def parse_pod_name(ms: str, name: str) -> tuple[int, str, int, int] | None:
    """(group, role, instance, index) of `<ms>-<group>-<role>-<instance>-<index>`, or None.

    The daemon knows its objects by name, never by labels anyone may edit: the group comes
    right after the ModelServing's name, the instance and index are the last two numbers, and
    the role is what lies between (role names may themselves contain dashes and digits)."""
    if not name.startswith(ms + "-"):
        return None
    group_text, dash, rest = name[len(ms) + 1 :].partition("-")
    head, _, index_text = rest.rpartition("-")
    role, _, instance_text = head.rpartition("-")
    numbers = (group_text, instance_text, index_text)
    if not dash or not role or not all(n.isascii() and n.isdigit() for n in numbers):
        return None
    group, instance, index = (int(n) for n in numbers)
    if pod_name(ms, group, role, instance, index) != name:
        return None  # leading zeros and the like: not a name the renderer makes
    return group, role, instance, index


def parse_revision_name(ms: str, name: str) -> str | None:
    """The revision of a ControllerRevision named `<ms>-<revision>`, or None."""
    prefix = ms + "-"
    if not name.startswith(prefix) or name == prefix:
        return None
    return name[len(prefix) :]


def label_selector(labels: dict[str, str]) -> str:
    """`k=v` pairs joined by commas, sorted as whole strings the way the reference writes
    `status.labelSelector` (so `role-id=prefill-0` comes before `role=prefill`, since `-`
    sorts before `=`); the selector means the same in any order."""
    return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))


# LeaderWorkerSet (kubernetes-sigs/lws), served through a ModelServing
# (docs/behaviour.md#leaderworkerset).
LWS_API_GROUP = "leaderworkerset.x-k8s.io"
LWS_API_VERSION = f"{LWS_API_GROUP}/v1"
LWS_KIND = "LeaderWorkerSet"
LWS_PLURAL = "leaderworkersets"
LWS_CRD = f"{LWS_PLURAL}.{LWS_API_GROUP}"
LWS_PLUGIN = "lws-standard-labels"
LWS_LABEL_PREFIX = "leaderworkerset.sigs.k8s.io/"
LWS_NAME_LABEL = LWS_LABEL_PREFIX + "name"
LWS_GROUP_INDEX_LABEL = LWS_LABEL_PREFIX + "group-index"
LWS_WORKER_INDEX_LABEL = LWS_LABEL_PREFIX + "worker-index"
LWS_GROUP_KEY_LABEL = LWS_LABEL_PREFIX + "group-key"
# The one role of a bridged ModelServing.
LWS_ROLE = "default"


def lws_leader_selector(lws: str) -> str:
    """`status.hpaPodSelector` of a bridged LeaderWorkerSet: its leader (entry) pods."""
    return label_selector({LWS_NAME_LABEL: lws, LWS_WORKER_INDEX_LABEL: "0"})
