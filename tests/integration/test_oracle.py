"""The API server is the oracle of msctl's offline validation (docs/behaviour.md#pod-validation).

Seeded mutations of the examples' pod templates (tests/mutations.py) go through `model.load`,
as every front end does. Every spec it accepts is rendered, and every object is dry-run
created on the test control plane: the server must accept them all. Every spec it refuses for
a pod-level reason (a violation under a pod template, or a generated name) has the pod of
each template named built without validation, and the server must refuse each of them, naming
the same field of the pod (up to its first list index, `spec.containers[1]`).
Reproduce one mutant with `tests.mutations.oracle_mutant(seed)`.
"""

from __future__ import annotations

import copy
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from generator import model
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet
from sync import kube
from tests.mutations import Expect, Mutant, oracle_mutant, template_pod

MUTANTS = 600
WORKERS = 8
TEMPLATE_PATH = re.compile(r"^spec\.template\.roles\[(\d+)\]\.(entryTemplate|workerTemplate)\.")
GENERATED_NAMES = "metadata.name"


@dataclass(frozen=True)
class Case:
    mutant: Mutant
    accepted: bool  # by msctl
    objects: tuple[dict[str, Any], ...]  # to dry-run create
    why: str  # msctl's violations, when it refused
    fields: tuple[str, ...] = ()  # where in each pod the server must find fault


def _pod_field(path: str) -> str:
    """The field of the pod a ModelServing path points into, as the server names it, up to
    the first list index (`spec.containers[1]`) or map (`metadata.labels`): the server may word
    the rest differently."""
    if path == GENERATED_NAMES:
        return "spec.hostname"  # a pod name is its host name, at most 63 characters
    inside = TEMPLATE_PATH.sub("", path)
    bracket = inside.find("[")
    if bracket < 0:
        return ".".join(inside.split(".")[:2])
    if inside.startswith('["', bracket):
        return inside[:bracket]  # a map key: the server names the map
    return inside[: inside.index("]", bracket) + 1]


def _case(mutant: Mutant, templates: TemplateSet, namespace: str) -> Case | None:
    """None when msctl refuses for no pod-level reason (the server has nothing to judge)."""
    doc = mutant.doc
    doc["metadata"]["namespace"] = namespace
    try:
        ms = model.load(copy.deepcopy(doc), plugins=templates.plugins())
    except model.InvalidSpec as err:
        named: dict[tuple[int, str], str] = {}  # template -> a field the server must name
        for violation in err.violations:
            found = TEMPLATE_PATH.match(violation.path)
            if found:
                named.setdefault((int(found[1]), found[2]), _pod_field(violation.path))
            elif violation.path == GENERATED_NAMES:
                named.setdefault((0, "entryTemplate"), _pod_field(violation.path))
        if not named:
            return None
        pods = tuple(template_pod(doc, i, key, namespace) for i, key in sorted(named))
        why = "; ".join(str(v) for v in err.violations)
        return Case(mutant, False, pods, why, tuple(named[k] for k in sorted(named)))
    objects = render_modelserving(Renderer(templates, ms, Settings()))
    return Case(mutant, True, tuple(objects), "")


def _verdict(server: kube.Kube, namespace: str, obj: dict[str, Any]) -> str | None:
    """None if the server accepts `obj`, else its message."""
    try:
        server.dry_run_create(kube.BY_KIND[obj["kind"]], namespace, obj)
    except kube.Invalid as refused:
        return refused.message
    return None


def test_render_accepts_and_refuses_exactly_what_the_api_server_does(
    api: client.ApiClient, namespace: str
) -> None:
    started = time.monotonic()
    templates = TemplateSet()
    mutants = [oracle_mutant(seed) for seed in range(MUTANTS)]
    cases = [c for m in mutants if (c := _case(m, templates, namespace)) is not None]
    server = kube.Kube(api)
    jobs = [(case, obj) for case in cases for obj in case.objects]
    with ThreadPoolExecutor(WORKERS) as pool:
        verdicts = list(pool.map(lambda job: _verdict(server, namespace, job[1]), jobs))

    refusals: dict[int, list[str | None]] = {}
    for (case, _), verdict in zip(jobs, verdicts, strict=True):
        refusals.setdefault(case.mutant.seed, []).append(verdict)
    counts: Counter[str] = Counter()
    disagreements = []
    for case in cases:
        server_said = refusals[case.mutant.seed]
        if case.accepted:
            agree = all(v is None for v in server_said)
            counts["accepted by both" if agree else "accepted by msctl only"] += 1
            if not agree:
                refused = "; ".join(v for v in server_said if v)
                disagreements.append(f"{case.mutant}: msctl accepted, server refused: {refused}")
        else:
            agree = all(v is not None for v in server_said)
            counts["refused by both" if agree else "refused by msctl only"] += 1
            if not agree:
                disagreements.append(f"{case.mutant}: msctl refused ({case.why}), server accepted")
            elif not all(f in v for f, v in zip(case.fields, server_said, strict=True) if v):
                disagreements.append(
                    f"{case.mutant}: msctl refused ({case.why}), the server for another field "
                    f"({'; '.join(v for v in server_said if v)})"
                )
        if case.mutant.expect is not (Expect.ACCEPTED if case.accepted else Expect.REFUSED):
            counts["not as the mutation meant"] += 1
    counts["refused by msctl for another reason"] = len(mutants) - len(cases)
    elapsed = time.monotonic() - started
    print(
        f"\noracle: {len(mutants)} mutants, {len(jobs)} dry-run creates in {elapsed:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    assert not disagreements, "\n".join(disagreements[:30])
    assert counts["accepted by both"] >= MUTANTS // 5 and counts["refused by both"] >= MUTANTS // 5
