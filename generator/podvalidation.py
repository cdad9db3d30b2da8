"""What the API server refuses in the pods a ModelServing produces, checked offline.

Runs from `model.load` after the schema and webhook rules (docs/behaviour.md#pod-validation),
so render, validate, watch and the daemon all refuse a spec whose pods could never be created,
and every problem is reported at once with its path in the ModelServing
(`spec.template.roles[0].entryTemplate.spec.containers[1].ports[0].containerPort`).

Each rule names the Kubernetes function it follows (k8s.io/kubernetes
pkg/apis/core/validation/validation.go unless said otherwise). Only semantic rules live here:
types, required fields and list-map duplicates are the schema's (`structural`). The generated
names (pods, Services, PodGroups) are checked with the webhook rules (`validation`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import k8sformats as fmt
from generator.k8sresources import resource_violations
from generator.structural import Violation, written
from generator.validation import field, pod_templates, role_items

INT32_MAX = 2**31 - 1
# Fields of a pod spec the renderer sets itself on entry pods, whatever the template says.
ENTRY_OWNED = frozenset({"hostname", "subdomain"})
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
ENV_FROM_SOURCES = ("configMapRef", "secretRef")
# Every key of a Volume but `name` is a volume source (validateVolumeSource counts them).
NOT_A_VOLUME_SOURCE = frozenset({"name"})
SUBDOMAIN_NAMES = ("serviceAccountName", "priorityClassName", "runtimeClassName", "nodeName")


def pod_violations(doc: Any) -> list[Violation]:
    """Every pod-level problem of every pod template of `doc` (the defaulted document), and
    of the ModelServing's own labels and annotations, which templates read."""
    spec = field(doc, "spec", dict)
    found = list(_object_meta(field(doc, "metadata", dict)))
    for i, role in role_items(spec):
        for key, template in pod_templates(role):
            path = f"spec.template.roles[{i}].{key}"
            found += _metadata(field(template, "metadata", dict), f"{path}.metadata")
            pod = field(template, "spec", dict)
            if pod is not None:
                found += _pod_spec(pod, f"{path}.spec", entry=key == "entryTemplate")
    return found


def _objects(node: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    """The (index, entry) pairs of the list node[key] whose entries are objects."""
    return [(i, v) for i, v in enumerate(field(node, key, list) or []) if isinstance(v, dict)]


def _object_meta(meta: dict[str, Any] | None) -> Iterator[Violation]:
    """ValidateObjectMeta: labels and annotations are maps of strings (the offline schema
    leaves metadata to this rule)."""
    broken = False
    for key in ("labels", "annotations"):
        value = meta.get(key) if meta is not None else None
        if value is None:
            continue
        if not isinstance(value, dict):
            broken = True
            yield Violation(f"metadata.{key}", f"must be a map of strings, got {written(value)}")
            continue
        for name, item in value.items():
            if not isinstance(name, str) or not isinstance(item, str):
                broken = True
                yield Violation(
                    f'metadata.{key}["{name}"]', f"must be a string, got {written(item)}"
                )
    if not broken:
        yield from _metadata(meta, "metadata")


def _labels(labels: dict[str, Any] | None, path: str) -> Iterator[Violation]:
    """metav1validation.ValidateLabels: qualified keys, label values."""
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        problem = fmt.qualified_name(key)
        if problem:
            yield Violation(f'{path}["{key}"]', f"invalid label key: {problem}")
        problem = fmt.label_value(value)
        if problem:
            yield Violation(f'{path}["{key}"]', f"invalid label value {written(value)}: {problem}")


def _metadata(meta: dict[str, Any] | None, path: str) -> Iterator[Violation]:
    # ValidateTemplateObjectMeta: labels, and apimachinery ValidateAnnotations.
    yield from _labels(field(meta, "labels", dict), f"{path}.labels")
    annotations = field(meta, "annotations", dict) or {}
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        size += len(key.encode()) + len(value.encode())
        problem = fmt.qualified_name(key.lower())
        if problem:
            yield Violation(f'{path}.annotations["{key}"]', f"invalid annotation key: {problem}")
    if size > fmt.ANNOTATIONS_MAX_BYTES:
        yield Violation(
            f"{path}.annotations",
            f"may not be more than {fmt.ANNOTATIONS_MAX_BYTES} bytes in total, got {size}",
        )


def _pod_spec(pod: dict[str, Any], path: str, *, entry: bool) -> Iterator[Violation]:
    yield from _volumes(pod, path)
    volumes = {n for _, v in _objects(pod, "volumes") if (n := field(v, "name", str))}
    containers = _objects(pod, "containers")
    if not field(pod, "containers", list):
        # validateContainers: a pod needs at least one container.
        yield Violation(f"{path}.containers", "is required: a pod needs at least one container")
    first: dict[str, tuple[str, str]] = {}  # container name -> (list, path of its name)
    for kind in ("containers", "initContainers"):
        for c, container in _objects(pod, kind):
            where = f"{path}.{kind}[{c}]"
            yield from _container(container, where, volumes, init=kind == "initContainers")
            name = field(container, "name", str)
            if name is None or fmt.dns1123_label(name):
                continue
            if name not in first:
                first[name] = (kind, f"{where}.name")
            elif first[name][0] != kind:
                # validateInitContainers: names are unique across both lists (a repeat within
                # one list is the schema's list-map duplicate).
                yield Violation(
                    f"{where}.name", f'duplicate container name "{name}"; see {first[name][1]}'
                )
    yield from _host_ports(containers, path)
    yield from _enum(pod, "restartPolicy", RESTART_POLICIES, path)  # validateRestartPolicy
    yield from _enum(pod, "dnsPolicy", DNS_POLICIES, path)  # validateDNSPolicy
    yield from _labels(field(pod, "nodeSelector", dict), f"{path}.nodeSelector")  # ValidatePodSpec
    for key in SUBDOMAIN_NAMES:
        # ValidateServiceAccountName, ValidatePriorityClassName, ValidateRuntimeClassName,
        # ValidateNodeName: all NameIsDNSSubdomain.
        value = field(pod, key, str)
        problem = fmt.dns1123_subdomain(value) if value else None
        if problem:
            yield Violation(f"{path}.{key}", f"{problem}, got {written(value)}")
    deadline = field(pod, "activeDeadlineSeconds", int)
    if deadline is not None and not 1 <= deadline <= INT32_MAX:
        # ValidatePodSpec: activeDeadlineSeconds in [1, MaxInt32].
        yield Violation(
            f"{path}.activeDeadlineSeconds", f"must be between 1 and {INT32_MAX}, got {deadline}"
        )
    for key in ("hostname", "subdomain"):
        value = field(pod, key, str)
        if entry and key in ENTRY_OWNED:
            continue  # the renderer names entry pods itself (docs/behaviour.md#hostname)
        problem = fmt.dns1123_label(value) if value else None
        if problem:
            # ValidatePodSpec: hostname and subdomain are DNS-1123 labels.
            yield Violation(f"{path}.{key}", f"{problem}, got {written(value)}")


def _enum(node: Any, key: str, allowed: tuple[str, ...], path: str) -> Iterator[Violation]:
    value = field(node, key, str)
    if value is not None and value not in allowed:
        yield Violation(
            f"{path}.{key}", f"must be one of {', '.join(allowed)}; got {written(value)}"
        )


def _volumes(pod: dict[str, Any], path: str) -> Iterator[Violation]:
    """ValidateVolumes and validateVolumeSource."""
    # A repeated name is the schema's list-map duplicate.
    for v, volume in _objects(pod, "volumes"):
        where = f"{path}.volumes[{v}]"
        name = field(volume, "name", str)
        problem = fmt.dns1123_label(name) if name else "is required"
        if name and problem:
            problem = f"{problem}, got {written(name)}"
        if problem:
            yield Violation(f"{where}.name", problem)
        sources = sorted(k for k in volume if k not in NOT_A_VOLUME_SOURCE)
        # A volume of no type is not refused: the API server defaults it to an emptyDir.
        if len(sources) > 1:
            yield Violation(
                where, f"may not specify more than 1 volume type, got {', '.join(sources)}"
            )


def _container(
    container: dict[str, Any], path: str, volumes: set[str], *, init: bool
) -> Iterator[Violation]:
    # validateContainerCommon
    name = field(container, "name", str)
    problem = fmt.dns1123_label(name) if name else "is required"
    if name and problem:
        problem = f"{problem}, got {written(name)}"
    if problem:
        yield Violation(f"{path}.name", problem)
    if init and not field(container, "image", str):
        yield Violation(f"{path}.image", "is required: every container needs an image")
    yield from _enum(container, "imagePullPolicy", PULL_POLICIES, path)  # validatePullPolicy
    yield from _enum(
        container, "terminationMessagePolicy", TERMINATION_MESSAGE_POLICIES, path
    )  # validateContainerCommon
    yield from _ports(container, f"{path}.ports")
    yield from _env(container, path)
    yield from _mounts(container, f"{path}.volumeMounts", volumes)
    yield from resource_violations(field(container, "resources", dict), f"{path}.resources")
    if not init:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            yield from _probe(container, probe, f"{path}.{probe}")


def _ports(container: dict[str, Any], path: str) -> Iterator[Violation]:
    """validateContainerPorts."""
    names: dict[str, int] = {}
    for p, port in _objects(container, "ports"):
        name = field(port, "name", str)
        if name:
            problem = fmt.port_name(name)
            if problem:
                yield Violation(f"{path}[{p}].name", f"{problem}, got {written(name)}")
            elif name in names:
                yield Violation(
                    f"{path}[{p}].name", f'duplicate port name "{name}"; see {path}[{names[name]}]'
                )
            else:
                names[name] = p
        for key in ("containerPort", "hostPort"):
            number = field(port, key, int)
            if number is None or (key == "hostPort" and number == 0):
                continue
            problem = fmt.port_number(number)
            if problem:
                yield Violation(f"{path}[{p}].{key}", problem)
        yield from _enum(port, "protocol", PORT_PROTOCOLS, f"{path}[{p}]")


def _host_ports(containers: list[tuple[int, dict[str, Any]]], path: str) -> Iterator[Violation]:
    """checkHostPortConflicts / AccumulateUniqueHostPorts: a host port once per protocol."""
    seen: dict[str, str] = {}
    for c, container in containers:
        for p, port in _objects(container, "ports"):
            host = field(port, "hostPort", int)
            if not host:
                continue
            key = f"{field(port, 'hostIP', str) or ''}/{host}/{field(port, 'protocol', str)}"
            where = f"{path}.containers[{c}].ports[{p}].hostPort"
            if key in seen:
                yield Violation(where, f"host port {host} is already used by {seen[key]}")
            else:
                seen[key] = where


def _env(container: dict[str, Any], path: str) -> Iterator[Violation]:
    for e, var in _objects(container, "env"):
        # ValidateEnv (relaxed names, see k8sformats.env_var_name)
        name = field(var, "name", str)
        problem = fmt.env_var_name(name) if name is not None else None
        if problem:
            yield Violation(f"{path}.env[{e}].name", f"{problem}, got {written(name)}")
    for e, source in _objects(container, "envFrom"):
        # ValidateEnvFrom
        prefix = field(source, "prefix", str)
        problem = fmt.env_var_name(prefix) if prefix else None
        if problem:
            yield Violation(f"{path}.envFrom[{e}].prefix", f"{problem}, got {written(prefix)}")
        count = sum(1 for key in ENV_FROM_SOURCES if key in source)
        if count != 1:
            yield Violation(
                f"{path}.envFrom[{e}]", "must specify exactly one of configMapRef or secretRef"
            )


def _mounts(container: dict[str, Any], path: str, volumes: set[str]) -> Iterator[Violation]:
    """ValidateVolumeMounts."""
    for m, mount in _objects(container, "volumeMounts"):
        name = field(mount, "name", str)
        if not name:
            yield Violation(f"{path}[{m}].name", "is required")
        elif name not in volumes:
            known = ", ".join(sorted(volumes)) or "none"
            yield Violation(
                f"{path}[{m}].name",
                f'"{name}" is not a volume of this pod template (volumes: {known})',
            )
        if not field(mount, "mountPath", str):
            yield Violation(f"{path}[{m}].mountPath", "is required")
        sub_path = field(mount, "subPath", str)
        expression = field(mount, "subPathExpr", str)
        for key, value in (("subPath", sub_path), ("subPathExpr", expression)):
            problem = fmt.local_descending_path(value) if value else None
            if problem:
                yield Violation(f"{path}[{m}].{key}", f"{problem}, got {written(value)}")
        if sub_path and expression:
            yield Violation(
                f"{path}[{m}].subPathExpr", "subPathExpr and subPath are mutually exclusive"
            )


def _probe(container: dict[str, Any], key: str, path: str) -> Iterator[Violation]:
    """validateProbe, validateHandler, validateLivenessProbe / validateStartupProbe."""
    probe = field(container, key, dict)
    if probe is None:
        return
    handlers = [h for h in PROBE_HANDLERS if h in probe]
    if not handlers:
        yield Violation(path, f"must specify a handler type ({', '.join(PROBE_HANDLERS)})")
    elif len(handlers) > 1:
        yield Violation(
            path, f"may not specify more than 1 handler type, got {', '.join(handlers)}"
        )
    for handler in ("httpGet", "tcpSocket", "grpc"):
        port = field(field(probe, handler, dict), "port", (int, str))
        if isinstance(port, int):
            problem = fmt.port_number(port)
        elif isinstance(port, str):
            problem = fmt.port_name(port)
        else:
            continue
        if problem:
            yield Violation(f"{path}.{handler}.port", problem)
    for number in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "failureThreshold"):
        value = field(probe, number, int)
        if value is not None and value < 0:
            yield Violation(f"{path}.{number}", f"must be greater than or equal to 0, got {value}")
    success = field(probe, "successThreshold", int)
    # 0 is defaulted to 1 by the API server before validation.
    if success is not None and success not in (0, 1) and key != "readinessProbe":
        yield Violation(f"{path}.successThreshold", f"must be 1, got {success}")
    elif success is not None and success < 0:
        yield Violation(
            f"{path}.successThreshold", f"must be greater than or equal to 0, got {success}"
        )
