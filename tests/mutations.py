"""Seeded mutations of the bundled examples: pod-template changes the API server accepts or
refuses (for the oracle test, tests/integration/test_oracle.py) and anything-goes changes of
any field (for the CLI fuzz, benchmarks/fuzz_cli.py and tests/unit/test_fuzz.py).

Every mutant is a pure function of its seed, so a failure names a seed that reproduces it.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from generator import naming

REPO = Path(__file__).resolve().parents[1]
# ModelServing examples only (LeaderWorkerSets map to one: docs/behaviour.md#leaderworkerset).
EXAMPLES = sorted(
    path
    for path in (REPO / "examples").glob("*.yaml")
    if "\nkind: ModelServing\n" in path.read_text()
)
MAX_PODS = 10_000

Doc = dict[str, Any]
Template = dict[str, Any]


class Expect(Enum):
    """What the API server should make of the pods of a mutant."""

    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True)
class Mutant:
    seed: int
    source: str
    doc: Doc
    changes: tuple[str, ...]
    expect: Expect | None = None  # None: the fuzz makes no promise

    def __str__(self) -> str:
        return f"seed {self.seed} ({self.source}: {', '.join(self.changes)})"


@cache
def _examples() -> tuple[tuple[str, Doc], ...]:
    return tuple((p.name, yaml.safe_load(p.read_text())) for p in EXAMPLES)


def _example(rng: random.Random) -> tuple[str, Doc]:
    name, doc = rng.choice(_examples())
    return name, copy.deepcopy(doc)


def templates(doc: Doc) -> list[tuple[int, str, Template]]:
    """(role index, entryTemplate/workerTemplate, template) of every pod template."""
    return [
        (i, key, role[key])
        for i, role in enumerate(doc["spec"]["template"]["roles"])
        for key in ("entryTemplate", "workerTemplate")
        if isinstance(role.get(key), dict)
    ]


def _container(rng: random.Random, spec: dict[str, Any]) -> dict[str, Any]:
    containers = spec.setdefault("containers", [])
    if not containers:
        containers.append({"name": "main", "image": "busybox:1.36"})
    chosen: dict[str, Any] = rng.choice(containers)
    return chosen


def _free_port(container: dict[str, Any], rng: random.Random) -> int:
    used = {p.get("containerPort") for p in container.get("ports", ())}
    return next(p for p in (rng.randrange(1024, 60000) for _ in range(100)) if p not in used)


def _unique(names: list[str], base: str) -> str:
    candidates = (f"{base}{k or ''}" for k in range(len(names) + 1))
    return next(c for c in candidates if c not in names)


def _env(c: dict[str, Any], name: str) -> None:
    env = c.setdefault("env", [])
    if name not in {e.get("name") for e in env}:
        env.append({"name": name, "value": "x"})


def _port(rng: random.Random, c: dict[str, Any], **fields: Any) -> None:
    c.setdefault("ports", []).append({"containerPort": _free_port(c, rng), **fields})


def _mount(spec: dict[str, Any], c: dict[str, Any], name: str, **fields: Any) -> None:
    mounts = c.setdefault("volumeMounts", [])
    path = _unique([m.get("mountPath", "") for m in mounts], f"/mnt/{name}")
    mounts.append({"name": name, "mountPath": path, **fields})


def _volume(spec: dict[str, Any], volume: dict[str, Any]) -> None:
    volumes = spec.setdefault("volumes", [])
    if volume["name"] not in {v.get("name") for v in volumes}:
        volumes.append(volume)


# A mutation changes one pod template; `rng` picks the details. Each list: (name, change).
Mutation = Callable[[random.Random, Template, bool], None]


def _c(change: Callable[[random.Random, dict[str, Any], dict[str, Any]], None]) -> Mutation:
    """A mutation of one container (with its pod spec at hand)."""

    def mutate(rng: random.Random, template: Template, entry: bool) -> None:
        spec = template["spec"]
        change(rng, spec, _container(rng, spec))

    return mutate


def _s(change: Callable[[random.Random, dict[str, Any], bool], None]) -> Mutation:
    """A mutation of the pod spec."""

    def mutate(rng: random.Random, template: Template, entry: bool) -> None:
        change(rng, template["spec"], entry)

    return mutate


def _resources(requests: dict[str, Any], limits: dict[str, Any]) -> Mutation:
    def change(rng: random.Random, spec: dict[str, Any], c: dict[str, Any]) -> None:
        c["resources"] = {"requests": dict(requests), "limits": dict(limits)}

    return _c(change)


def _labels(labels: dict[str, str]) -> Mutation:
    def mutate(rng: random.Random, template: Template, entry: bool) -> None:
        template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)

    return mutate


def _choice(values: list[Any]) -> Callable[[random.Random], Any]:
    return lambda rng: rng.choice(values)


def _bad_port_number(rng: random.Random, spec: dict[str, Any], c: dict[str, Any]) -> None:
    _port(rng, c)
    c["ports"][-1]["containerPort"] = BAD_PORT_NUMBERS(rng)


def _duplicate_port_names(rng: random.Random, spec: dict[str, Any], c: dict[str, Any]) -> None:
    _port(rng, c, name="dup")
    _port(rng, c, name="dup")


def _escaping_mount(rng: random.Random, spec: dict[str, Any], c: dict[str, Any]) -> None:
    _volume(spec, {"name": "scratch", "emptyDir": {}})
    _mount(spec, c, "scratch", subPath=rng.choice(["../x", "/abs", "a/../../b"]))


def _cache_mount(rng: random.Random, spec: dict[str, Any], c: dict[str, Any]) -> None:
    _volume(spec, {"name": "cache", "emptyDir": {}})
    _mount(spec, c, "cache", subPath=rng.choice(["", "a/b", "x"]))


BAD_CONTAINER_NAMES = _choice(["0.5", "Main", "a_b", "c" * 64, "-a", "a.b", ""])
BAD_PORT_NUMBERS = _choice([0, 65536, 99999, -1, 2**31 - 1])
BAD_PORT_NAMES = _choice(["HTTP", "a" * 16, "8080", "a--b", "-ab", "a_b", "ab-"])
BAD_ENV_NAMES = _choice(["A=B", "", "tab\there", "caf\u00e9", "line\nbreak"])
BAD_VOLUME_NAMES = _choice(["Data", "a_b", "v" * 64, "-v", "a.b"])
GOOD_ENV_NAMES = _choice(["MY_VAR", "my.var-1", "1ABC", "with space", "_x", "a:b"])

REFUSED: list[tuple[str, Mutation]] = [
    ("no containers", _s(lambda rng, spec, entry: spec.update(containers=[]))),
    ("odd container name", _c(lambda rng, spec, c: c.update(name=BAD_CONTAINER_NAMES(rng)))),
    ("bad containerPort", _c(_bad_port_number)),
    ("bad hostPort", _c(lambda rng, spec, c: _port(rng, c, hostPort=70000))),
    ("bad port name", _c(lambda rng, spec, c: _port(rng, c, name=BAD_PORT_NAMES(rng)))),
    ("duplicate port names", _c(_duplicate_port_names)),
    ("bad protocol", _c(lambda rng, spec, c: _port(rng, c, protocol="HTTP"))),
    ("bad env name", _c(lambda rng, spec, c: _env(c, BAD_ENV_NAMES(rng)))),
    (
        "bad volume name",
        _s(lambda rng, spec, entry: _volume(spec, {"name": BAD_VOLUME_NAMES(rng), "emptyDir": {}})),
    ),
    (
        "volume with two types",
        _s(
            lambda rng, spec, entry: _volume(
                spec, {"name": "twice", "emptyDir": {}, "configMap": {"name": "cm"}}
            )
        ),
    ),
    ("mount of no volume", _c(lambda rng, spec, c: _mount(spec, c, "missing"))),
    ("mount subPath escapes", _c(_escaping_mount)),
    ("request above limit", _resources({"cpu": "2"}, {"cpu": "1"})),
    ("memory request above limit", _resources({"memory": "2Gi"}, {"memory": "1Gi"})),
    ("gpu request unequal to limit", _resources({"nvidia.com/gpu": 1}, {"nvidia.com/gpu": 2})),
    ("gpu request without limit", _resources({"nvidia.com/gpu": 1}, {})),
    ("fractional gpu", _resources({}, {"nvidia.com/gpu": "500m"})),
    ("negative memory", _resources({"memory": "-1Gi"}, {})),
    ("unqualified resource name", _resources({"gpu": 1}, {})),
    (
        "bad probe port",
        _c(
            lambda rng, spec, c: c.update(
                readinessProbe={"tcpSocket": {"port": rng.choice([0, 70000, "HTTP"])}}
            )
        ),
    ),
    (
        "probe without handler",
        _c(lambda rng, spec, c: c.update(livenessProbe={"periodSeconds": 5})),
    ),
    (
        "liveness successThreshold 2",
        _c(
            lambda rng, spec, c: c.update(
                livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}
            )
        ),
    ),
    ("bad pull policy", _c(lambda rng, spec, c: c.update(imagePullPolicy="Sometimes"))),
    ("bad restartPolicy", _s(lambda rng, spec, entry: spec.update(restartPolicy="Sometimes"))),
    ("bad dnsPolicy", _s(lambda rng, spec, entry: spec.update(dnsPolicy="Google"))),
    (
        "bad serviceAccountName",
        _s(lambda rng, spec, entry: spec.update(serviceAccountName="My Account")),
    ),
    (
        "zero activeDeadlineSeconds",
        _s(lambda rng, spec, entry: spec.update(activeDeadlineSeconds=0)),
    ),
    ("bad label key", _labels({"a b": "x"})),
    ("bad label value", _labels({"team": "x" * 64})),
    ("bad nodeSelector", _s(lambda rng, spec, entry: spec.update(nodeSelector={"zone": "a b"}))),
    (
        "init container named like a container",
        _s(
            lambda rng, spec, entry: spec.update(
                initContainers=[{"name": _container(rng, spec)["name"], "image": "busybox:1.36"}]
            )
        ),
    ),
    (
        "init container without image",
        _s(lambda rng, spec, entry: spec.update(initContainers=[{"name": "init"}])),
    ),
]

ACCEPTED: list[tuple[str, Mutation]] = [
    ("volume without type", _s(lambda rng, spec, entry: _volume(spec, {"name": "typeless"}))),
    ("env var", _c(lambda rng, spec, c: _env(c, GOOD_ENV_NAMES(rng)))),
    (
        "named port",
        _c(
            lambda rng, spec, c: _port(
                rng, c, name=_unique([p.get("name", "") for p in c.get("ports", ())], "metrics")
            )
        ),
    ),
    ("host port", _c(lambda rng, spec, c: _port(rng, c, hostPort=rng.randrange(30000, 32000)))),
    ("udp port", _c(lambda rng, spec, c: _port(rng, c, protocol="UDP"))),
    ("volume and mount", _c(_cache_mount)),
    (
        "requests within limits",
        _resources({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}),
    ),
    ("gpu request equal to limit", _resources({"nvidia.com/gpu": 2}, {"nvidia.com/gpu": "2"})),
    ("gpu limit alone", _resources({}, {"nvidia.com/gpu": 1})),
    (
        "init container",
        _s(
            lambda rng, spec, entry: spec.update(
                initContainers=[{"name": "prepare", "image": "busybox:1.36", "command": ["true"]}]
            )
        ),
    ),
    ("label", _labels({"example.com/team": "serving", "tier": "a.b_c-d"})),
    ("tcp probe", _c(lambda rng, spec, c: c.update(readinessProbe={"tcpSocket": {"port": 8000}}))),
    (
        "liveness probe",
        _c(
            lambda rng, spec, c: c.update(
                livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 1}
            )
        ),
    ),
    ("nodeSelector", _s(lambda rng, spec, entry: spec.update(nodeSelector={"disktype": "ssd"}))),
    ("pull policy", _c(lambda rng, spec, c: c.update(imagePullPolicy="IfNotPresent"))),
    (
        "second container",
        _s(
            lambda rng, spec, entry: spec["containers"].append(
                {
                    "name": _unique([c.get("name", "") for c in spec["containers"]], "sidecar"),
                    "image": "busybox:1.36",
                }
            )
        ),
    ),
    ("restartPolicy", _s(lambda rng, spec, entry: spec.update(restartPolicy="Always"))),
    ("long but fitting container name", _c(lambda rng, spec, c: c.update(name="c" * 63))),
]


def oracle_mutant(seed: int) -> Mutant:
    """1-3 pod-template mutations of an example, the last one of a refused kind for about two
    thirds of the mutants (which the server must refuse), all of accepted kinds otherwise."""
    rng = random.Random(seed)
    source, doc = _example(rng)
    refuse = rng.random() < 0.65
    changes = []
    count = rng.choice((1, 1, 2, 3))
    for k in range(count):
        # A refused change comes last, so that no accepted change undoes it.
        name, mutation = rng.choice(REFUSED if refuse and k == count - 1 else ACCEPTED)
        role, key, template = rng.choice(templates(doc))
        mutation(rng, template, key == "entryTemplate")
        changes.append(f"roles[{role}].{key}: {name}")
    if refuse and rng.random() < 0.05:
        doc["metadata"]["name"] = "m" * 60
        changes.append("long name")
    return Mutant(seed, source, doc, tuple(changes), Expect.REFUSED if refuse else Expect.ACCEPTED)


def template_pod(doc: Doc, role_index: int, key: str, namespace: str) -> dict[str, Any]:
    """The pod of `key` of role `role_index` with the highest ordinals, as msctl would name it,
    built without any validation (for the server to judge what msctl refused)."""
    name = doc["metadata"]["name"]
    spec = doc["spec"]
    role = spec["template"]["roles"][role_index]
    group = max(spec.get("replicas", 1) - 1, 0)
    instance = max(role.get("replicas", 1) - 1, 0)
    entry = key == "entryTemplate"
    index = 0 if entry else role.get("workerReplicas", 1)
    template = role[key]
    pod_spec = copy.deepcopy(template.get("spec", {}))
    pod_name = naming.pod_name(name, group, role["name"], instance, index)
    if entry:
        pod_spec["hostname"] = pod_name
        pod_spec["subdomain"] = naming.service_name(name, group, role["name"], instance)
    meta = copy.deepcopy(template.get("metadata", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**meta, "name": pod_name, "namespace": namespace},
        "spec": pod_spec,
    }


# --- the fuzz: anything goes, anywhere

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**63) - 1,
    1.5,
    float("inf"),
    "",
    " ",
    "x",
    "1e999999999",
    "1e-999999999",
    "99999999999999999999Ei",
    "-0",
    "0.5",
    "\u0000",
    "\U0001f600",
    "a" * 300,
    [],
    [None],
    {},
    {"": None},
    {"name": "x"},
    [[[]]],
    "${x}",
    "{{ x }}",
    "{% raise %}",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return doc
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _scale(rng: random.Random, doc: Doc) -> str:
    """Counts raised to up to MAX_PODS pods in all."""
    spec = doc["spec"]
    roles = spec["template"]["roles"]
    per_group = sum(r["replicas"] * (1 + r["workerReplicas"]) for r in roles)
    spec["replicas"] = max(1, rng.randrange(1, MAX_PODS // max(per_group, 1) + 1))
    return f"replicas={spec['replicas']} ({spec['replicas'] * per_group} pods)"


def fuzz_mutant(seed: int) -> Mutant:
    """Any example with 1-4 random changes: a pod mutation, a field set to an odd value, a
    field deleted, a list entry repeated, or (1 in 100 changes) the counts scaled up to
    10,000 pods."""
    rng = random.Random(seed)
    source, doc = _example(rng)
    changes = []
    for _ in range(rng.randrange(1, 5)):
        roll = rng.random()
        try:
            if roll < 0.35:
                name, mutation = rng.choice(REFUSED + ACCEPTED)
                role, key, template = rng.choice(templates(doc))
                mutation(rng, template, key == "entryTemplate")
                changes.append(f"roles[{role}].{key}: {name}")
            elif roll < 0.65:
                path = rng.choice(_paths(doc))
                value = copy.deepcopy(rng.choice(ODD_VALUES))
                doc = _set(doc, path, value)
                changes.append(f"{'.'.join(map(str, path))} = {value!r:.40}")
            elif roll < 0.8:
                path = rng.choice(_paths(doc)[1:])
                doc = _delete(doc, path)
                changes.append(f"del {'.'.join(map(str, path))}")
            elif roll < 0.99:
                path = rng.choice([p for p in _paths(doc) if p] or [()])
                parent = doc
                for key in path[:-1]:
                    parent = parent[key]
                if isinstance(parent, list):
                    parent.append(copy.deepcopy(parent[path[-1]]))
                    changes.append(f"repeat {'.'.join(map(str, path))}")
            else:
                changes.append(_scale(rng, doc))
        except (KeyError, TypeError, IndexError, ValueError, AttributeError, OverflowError):
            changes.append("(change did not apply)")
    return Mutant(seed, source, doc, tuple(changes))
