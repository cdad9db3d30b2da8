"""The reference admission webhook's rules (docs/behaviour.md#validation), run before rendering.

Input is the document after the schema pass (defaults applied). Fields the schema already
rejected may still be of the wrong type here, so every rule reads through `field`, which
yields None for anything missing or mistyped: a broken field is reported once, by the schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import intstr, naming
from generator.structural import Violation, written

MAX_NAME = 63


def field(node: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    """node[key] if node is a dict and the value is of `kind` (a bool is no int), else None."""
    if not isinstance(node, dict):
        return None
    value = node.get(key)
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


def role_items(spec: Any) -> list[tuple[int, dict[str, Any]]]:
    roles = field(field(spec, "template", dict), "roles", list) or []
    return [(i, r) for i, r in enumerate(roles) if isinstance(r, dict)]


def webhook_violations(doc: Any, plugins: frozenset[str]) -> list[Violation]:
    if not isinstance(doc, dict):
        return []
    spec = field(doc, "spec", dict)
    if spec is None:
        return []
    rules = (
        _namespace(doc),
        _generated_names(doc, spec),
        _images(spec),
        _reserved_labels(spec),
        _unique_roles(spec),
        _group_rollout(spec),
        _role_rollout(spec),
        _gang_policy(spec),
        _workers(spec),
        _recovery_pair(spec),
        _plugins(spec, plugins),
    )
    return [v for rule in rules for v in rule]


def _namespace(doc: dict[str, Any]) -> Iterator[Violation]:
    namespace = field(field(doc, "metadata", dict), "namespace", str)
    problem = naming.namespace_problem(namespace) if namespace else None
    if problem:
        yield Violation("metadata.namespace", problem)


def _generated_names(doc: dict[str, Any], spec: dict[str, Any]) -> Iterator[Violation]:
    name = field(field(doc, "metadata", dict), "name", str)
    if name is None:
        yield Violation("metadata.name", "is required")
        return
    replicas = field(spec, "replicas", int)
    for i, role in role_items(spec):
        parts = (
            replicas,
            field(role, "name", str),
            field(role, "replicas", int),
            field(role, "workerReplicas", int),
        )
        if any(p is None for p in parts):
            continue
        generated = "-".join(str(p) for p in (name, *parts))
        if len(generated) > MAX_NAME:
            yield Violation(
                "metadata.name",
                f'invalid name: generated names such as "{generated}" (role '
                f"spec.template.roles[{i}]) must be no more than {MAX_NAME} characters, got "
                f"{len(generated)}; shorten the ModelServing or role name",
            )
        elif not naming.DNS1035_LABEL.match(generated):
            yield Violation(
                "metadata.name",
                f'invalid name: generated names such as "{generated}" must be DNS-1035 labels '
                "(lowercase letters, digits and '-', starting with a letter)",
            )


def pod_templates(role: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("entryTemplate", "workerTemplate"):
        template = field(role, key, dict)
        if template is not None:
            yield key, template


def _images(spec: dict[str, Any]) -> Iterator[Violation]:
    for i, role in role_items(spec):
        for key, template in pod_templates(role):
            containers = field(field(template, "spec", dict), "containers", list) or []
            for c, container in enumerate(containers):
                if not isinstance(container, dict):
                    continue
                path = f"spec.template.roles[{i}].{key}.spec.containers[{c}].image"
                image = container.get("image")
                if image is None or (isinstance(image, str) and not image.strip()):
                    yield Violation(path, "is required: every container needs an image")
                elif isinstance(image, str) and any(ch.isspace() for ch in image):
                    yield Violation(path, f"must not contain spaces, got {written(image)}")


def _reserved_labels(spec: dict[str, Any]) -> Iterator[Violation]:
    # The reference lets template labels override the controller's; for these keys that
    # silently detaches pods from their role instance (Services stop selecting them, the
    # controller recreates "missing" pods forever), so they are refused up front.
    for i, role in role_items(spec):
        for key, template in pod_templates(role):
            labels = field(field(template, "metadata", dict), "labels", dict) or {}
            for label in labels:
                if isinstance(label, str) and label.startswith(naming.LABEL_PREFIX):
                    yield Violation(
                        f'spec.template.roles[{i}].{key}.metadata.labels["{label}"]',
                        f"labels under {naming.LABEL_PREFIX} are set by the controller to tie "
                        "pods to their role instance and cannot be set in a template",
                    )


def _unique_roles(spec: dict[str, Any]) -> Iterator[Violation]:
    seen: dict[str, int] = {}
    for i, role in role_items(spec):
        name = field(role, "name", str)
        if name is None:
            continue
        if name in seen:
            yield Violation(
                f"spec.template.roles[{i}].name",
                f'roles name must be unique: "{name}" is also spec.template.roles[{seen[name]}]',
            )
        else:
            seen[name] = i


def _strategy(spec: dict[str, Any]) -> str:
    return field(field(spec, "rolloutStrategy", dict), "type", str) or "ServingGroupRollingUpdate"


def _int_or_percent(value: Any, path: str) -> Iterator[Violation]:
    try:
        intstr.check(value)
    except intstr.IntOrPercentError as err:
        yield Violation(path, str(err))


def _group_rollout(spec: dict[str, Any]) -> Iterator[Violation]:
    strategy = field(spec, "rolloutStrategy", dict)
    config = field(strategy, "rollingUpdateConfiguration", dict)
    if config is None:
        return
    path = "spec.rolloutStrategy.rollingUpdateConfiguration"
    if _strategy(spec) == "RoleRollingUpdate":
        yield Violation(
            path,
            "is not allowed when rolloutStrategy.type is RoleRollingUpdate"
            " (set maxUnavailable/partition on each role instead)",
        )
        return
    replicas = field(spec, "replicas", int)
    max_unavailable = config.get("maxUnavailable")
    if isinstance(max_unavailable, int | str):
        problems = list(_int_or_percent(max_unavailable, f"{path}.maxUnavailable"))
        yield from problems
        if not problems and replicas is not None:
            resolved = intstr.scaled(max_unavailable, replicas, round_up=False)
            if resolved == 0 and (replicas > 0 or isinstance(max_unavailable, int)):
                yield Violation(
                    f"{path}.maxUnavailable",
                    f"maxUnavailable cannot be 0 (got {written(max_unavailable)} of "
                    f"{replicas} replicas); use at least 1",
                )
    partition = config.get("partition")
    if isinstance(partition, int | str):
        yield from _int_or_percent(partition, f"{path}.partition")


def _role_rollout(spec: dict[str, Any]) -> Iterator[Violation]:
    role_rolling = _strategy(spec) == "RoleRollingUpdate"
    for i, role in role_items(spec):
        path = f"spec.template.roles[{i}]"
        partition = role.get("partition")
        if partition is not None and not isinstance(partition, bool):
            if not role_rolling:
                yield Violation(
                    f"{path}.partition",
                    "partition is only valid when rolloutStrategy.type is RoleRollingUpdate",
                )
            elif isinstance(partition, int | str):
                yield from _int_or_percent(partition, f"{path}.partition")
        max_unavailable = role.get("maxUnavailable")
        replicas = field(role, "replicas", int)
        if not role_rolling or not isinstance(max_unavailable, int | str) or replicas is None:
            continue  # only RoleRollingUpdate reads the role budget
        problems = list(_int_or_percent(max_unavailable, f"{path}.maxUnavailable"))
        yield from problems
        if problems or replicas == 0:
            continue
        resolved = intstr.scaled(max_unavailable, replicas, round_up=False)
        if resolved == 0:
            yield Violation(
                f"{path}.maxUnavailable",
                f"maxUnavailable cannot be 0 (got {written(max_unavailable)} of {replicas} "
                "replicas); use at least 1",
            )
        elif resolved > replicas:
            yield Violation(
                f"{path}.maxUnavailable",
                f"must not be greater than the role's replicas ({replicas}), got {resolved}",
            )


def _gang_policy(spec: dict[str, Any]) -> Iterator[Violation]:
    template = field(spec, "template", dict)
    minimums = field(field(template, "gangPolicy", dict), "minRoleReplicas", dict)
    if not minimums:
        return
    roles = {field(r, "name", str): r for _, r in role_items(spec)}
    path = "spec.template.gangPolicy.minRoleReplicas"
    for name, value in minimums.items():
        if name not in roles:
            known = ", ".join(sorted(n for n in roles if n)) or "none"
            yield Violation(
                f'{path}["{name}"]', f"is not a role of this ModelServing (roles: {known})"
            )
            continue
        replicas = field(roles[name], "replicas", int)
        if isinstance(value, int) and replicas is not None and value > replicas:
            yield Violation(
                f'{path}["{name}"]',
                f"must not be greater than the role's replicas ({replicas}), got {value}",
            )


def _workers(spec: dict[str, Any]) -> Iterator[Violation]:
    for i, role in role_items(spec):
        workers = field(role, "workerReplicas", int)
        if workers and workers > 0 and field(role, "workerTemplate", dict) is None:
            yield Violation(
                f"spec.template.roles[{i}].workerTemplate",
                "workerTemplate is required when workerReplicas is greater than 0",
            )


def _recovery_pair(spec: dict[str, Any]) -> Iterator[Violation]:
    if field(spec, "recoveryPolicy", str) == "ServingGroupRecreate" and (
        _strategy(spec) == "RoleRollingUpdate"
    ):
        # The rollout type is named, as the reference does: it is what has to change.
        yield Violation(
            "spec.rolloutStrategy.type",
            "recoveryPolicy ServingGroupRecreate cannot be combined with rolloutStrategy "
            "RoleRollingUpdate; valid pairs: (ServingGroupRecreate, ServingGroupRollingUpdate) "
            "or (RoleRecreate, RoleRollingUpdate)",
        )


def _plugins(spec: dict[str, Any], available: frozenset[str]) -> Iterator[Violation]:
    roles = {field(r, "name", str) for _, r in role_items(spec)}
    for i, plugin in enumerate(field(spec, "plugins", list) or []):
        name = field(plugin, "name", str)
        if name is not None and name not in available:
            known = ", ".join(sorted(available)) or "none"
            yield Violation(
                f"spec.plugins[{i}].name",
                f'unknown plugin "{name}"; available plugins: {known}',
            )
        scope = field(plugin, "scope", dict)
        for j, role in enumerate(field(scope, "roles", list) or []):
            if isinstance(role, str) and role not in roles:
                yield Violation(
                    f"spec.plugins[{i}].scope.roles[{j}]",
                    f'"{role}" is not a role of this ModelServing',
                )
