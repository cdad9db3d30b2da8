"""Properties over generated specs: render or a validation error, never a crash."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from generator import model, naming
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet

TEMPLATES = TemplateSet()
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ROLE_ROLLING = "RoleRollingUpdate"


class Values:
    """Field values: valid ones only, or valid ones mixed with every kind of mistake."""

    def __init__(self, mistakes: bool) -> None:
        self.mistakes = mistakes
        self.name = self.mostly(
            st.from_regex(r"[a-z][a-z0-9-]{0,14}[a-z0-9]", fullmatch=True), "", "A", "x" * 70, "9x"
        )
        self.count = self.mostly(st.integers(min_value=0, max_value=3), -1)
        self.quantity = self.mostly(st.sampled_from(["1", "500m", "1Gi", "1.5", 2]), "bad", 0.5)
        self.budget = self.mostly(st.integers(1, 4) | st.just("100%"), 0, -1, "0%", "150%", "x")

    def mostly(self, valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
        return valid | st.sampled_from(invalid) if self.mistakes else valid


@st.composite
def pod_templates(draw: st.DrawFn, v: Values) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": draw(st.sampled_from(["main", "c"])),
        "image": draw(v.mostly(st.just("img:1"), "a b", "")),
    }
    if draw(st.booleans()):
        env_name = draw(st.sampled_from(["WORKER_INDEX", "X", "GROUP_SIZE"]))
        container["env"] = [{"name": env_name, "value": draw(v.mostly(st.just("1"), 2))}]
    if draw(st.booleans()):
        container["resources"] = {"requests": {"cpu": draw(v.quantity), "memory": draw(v.quantity)}}
    spec: dict[str, Any] = {"containers": [container]}
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": "init", "image": "busybox"}]
    out: dict[str, Any] = {"spec": spec}
    if draw(st.booleans()):
        out["metadata"] = {"labels": {draw(v.mostly(st.just("team"), naming.ROLE_LABEL)): "x"}}
    return out


@st.composite
def roles(draw: st.DrawFn, v: Values, strategy: str | None) -> dict[str, Any]:
    role: dict[str, Any] = {
        "name": draw(
            v.mostly(st.sampled_from(["prefill", "decode", "engine", "x"]), "Bad", "a" * 13)
        ),
        "replicas": draw(v.count),
        "workerReplicas": draw(v.count),
        "entryTemplate": draw(pod_templates(v)),
    }
    if role["workerReplicas"] != 0 or draw(st.booleans()):
        role["workerTemplate"] = draw(pod_templates(v))
    if v.mistakes or (strategy == ROLE_ROLLING and role["replicas"] > 0):
        if draw(st.booleans()):
            role["maxUnavailable"] = draw(
                v.mostly(st.integers(1, max(1, role["replicas"])), 0, "x")
            )
        if draw(st.booleans()):
            role["partition"] = draw(v.budget)
    return role


@st.composite
def modelservings(draw: st.DrawFn, mistakes: bool = True) -> dict[str, Any]:
    v = Values(mistakes)
    strategy = draw(st.sampled_from([None, "ServingGroupRollingUpdate", ROLE_ROLLING]))
    unique = st.lists(roles(v, strategy), min_size=1, max_size=4, unique_by=lambda r: r["name"])
    role_list = draw(unique | st.lists(roles(v, strategy), max_size=5) if mistakes else unique)
    template: dict[str, Any] = {"roles": role_list}
    if draw(st.booleans()):
        first: dict[str, Any] = role_list[0] if role_list else {"name": "x", "replicas": 1}
        template["gangPolicy"] = {
            "minRoleReplicas": {first["name"]: draw(st.integers(0, max(0, first["replicas"])))}
        }
    if draw(st.booleans()):
        mode = draw(v.mostly(st.sampled_from(["hard", "soft"]), "x"))
        template["networkTopology"] = {
            "groupPolicy": {"mode": mode, "highestTierAllowed": draw(v.count)}
        }
    recovery = ["RoleRecreate", "None"] + (
        [] if strategy == ROLE_ROLLING and not mistakes else ["ServingGroupRecreate"]
    )
    spec: dict[str, Any] = {
        "replicas": draw(v.count),
        "template": template,
        "schedulerName": draw(st.sampled_from(["volcano", "default-scheduler"])),
        "recoveryPolicy": draw(v.mostly(st.sampled_from(recovery), "Other")),
    }
    if strategy:
        spec["rolloutStrategy"] = {"type": strategy}
        if (mistakes or strategy != ROLE_ROLLING) and draw(st.booleans()):
            spec["rolloutStrategy"]["rollingUpdateConfiguration"] = {
                "maxUnavailable": draw(v.mostly(st.integers(1, 4), 0, "x")),
                "partition": draw(v.budget),
            }
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {"name": draw(v.name), "namespace": "ns"},
        "spec": spec,
    }


def render(doc: dict[str, Any]) -> list[dict[str, Any]] | None:
    try:
        ms = model.load(doc, plugins=TEMPLATES.plugins())
    except model.InvalidSpec as err:
        assert err.violations, "InvalidSpec without violations"
        return None
    return render_modelserving(Renderer(TEMPLATES, ms, Settings(owner_uid="uid")))


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(modelservings())
def test_any_spec_renders_or_fails_validation_and_rendering_is_repeatable(
    doc: dict[str, Any],
) -> None:
    first = render(doc)
    assert render(doc) == first


@SETTINGS
@given(modelservings(mistakes=False))
def test_names_are_unique_and_dns_valid(doc: dict[str, Any]) -> None:
    objects = render(doc)
    assume(objects is not None)
    assert objects is not None
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))
    for kind, name in keys:
        assert len(name) <= 63 and DNS1123_LABEL.match(name), (kind, name)


@SETTINGS
@given(modelservings(mistakes=False))
def test_every_pod_belongs_to_exactly_one_role_instance(doc: dict[str, Any]) -> None:
    objects = render(doc)
    assume(objects is not None)
    assert objects is not None
    ms = model.load(doc, plugins=TEMPLATES.plugins())
    pods = [o for o in objects if o["kind"] == "Pod"]
    keys = (naming.NAME_LABEL, naming.GROUP_NAME_LABEL, naming.ROLE_ID_LABEL)
    instances = Counter(tuple(p["metadata"]["labels"].get(k) for k in keys) for p in pods)
    sizes = {r.name: r.size for r in ms.template.roles}
    for (_, _, role_id), count in instances.items():
        assert count == sizes[role_id.rsplit("-", 1)[0]]
    assert len(instances) == ms.replicas * sum(r.replicas for r in ms.template.roles)
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matched = [
            p for p in pods if all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        assert [p["metadata"]["name"] for p in matched] == [service["metadata"]["name"]]


def test_the_valid_strategy_mostly_produces_valid_specs() -> None:
    outcomes: list[bool] = []

    @settings(max_examples=100, deadline=None)
    @given(modelservings(mistakes=False))
    def sample(doc: dict[str, Any]) -> None:
        outcomes.append(render(doc) is not None)

    sample()
    assert sum(outcomes) >= 0.8 * len(outcomes), f"only {sum(outcomes)} of {len(outcomes)} valid"
