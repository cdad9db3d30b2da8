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


def label_selector(labels: dict[str, str]) -> str:
    """Kubernetes `labels.Set.String()`: sorted `k=v` pairs joined by commas."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
