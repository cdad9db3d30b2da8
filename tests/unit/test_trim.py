"""The trimmed cache (sync/trim.py): the same plans from trimmed objects as from full ones.

The objects are what a real kube-apiserver stored for converged ModelServings
(tests/data/live/, written by tools/capture_live.py): managedFields, server defaults and a
kubelet's status included. Each scenario changes them the way the cluster could (a pod not
ready, failed, restarted, terminating or missing; drifted labels, Services and PodGroups; a
new spec), then plans once from the full objects and once from their trimmed form.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import model, naming
from generator.expand import Settings
from generator.templating import TemplateSet
from sync.cache import Store
from sync.controller import podgroup_spec_schema, podgroup_support
from sync.core.diff import owned
from sync.core.observe import observe
from sync.core.plan import plan
from sync.rendering import Renderings
from sync.trim import Shared, trim

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "tests" / "data" / "live").glob("*.json"))
PODGROUP_CRD = yaml.safe_load((ROOT / "tests/controlplane/volcano-podgroups-crd.yaml").read_text())
TEMPLATES = TemplateSet()
NOW = 2_000_000_000.0

Obj = dict[str, Any]
Live = tuple[Obj, list[Obj]]  # (the ModelServing, the objects it owns)


def captured(path: Path) -> Live:
    data = json.loads(path.read_text())
    return data["modelserving"], data["objects"]


def planned(ms_obj: Obj, objects: list[Obj]) -> list[Any]:
    """The plan for these objects, in a form that compares what the steps do to what."""
    meta = ms_obj["metadata"]
    ms = model.load(ms_obj, namespace=meta["namespace"], plugins=TEMPLATES.plugins())
    supported, subgroups = podgroup_support(PODGROUP_CRD)
    settings = Settings(podgroups=supported, subgroup_policy=subgroups, owner_uid=meta["uid"])
    renderings = Renderings(TEMPLATES, ms, settings, podgroup_spec_schema(PODGROUP_CRD))

    def of(kind: str) -> list[Obj]:
        return [o for o in objects if o["kind"] == kind]

    observed = observe(
        ms.name,
        meta["uid"],
        pods=of("Pod"),
        services=of("Service"),
        podgroups=of("PodGroup"),
        revisions=of("ControllerRevision"),
    )
    result = plan(renderings.inputs(observed, ms_obj, NOW))
    targets = [
        (s.verb, s.obj["metadata"].get("uid"), s.obj["metadata"].get("resourceVersion"))
        for s in result.steps
        if s.verb in ("patch", "delete") and s.obj is not None
    ]
    return [result.to_json(), targets]


# --- scenarios: what the cluster or the user may have changed


def pods(live: Live) -> list[Obj]:
    return [o for o in live[1] if o["kind"] == "Pod"]


def first(live: Live, kind: str) -> Obj:
    return next(o for o in live[1] if o["kind"] == kind)


def not_ready(live: Live) -> None:
    for condition in pods(live)[0]["status"]["conditions"]:
        if condition["type"] in ("Ready", "ContainersReady"):
            condition["status"] = "False"


def failed(live: Live) -> None:
    pod = pods(live)[-1]
    pod["status"]["phase"] = "Failed"
    for status in pod["status"]["containerStatuses"]:
        status["restartCount"] = 3
        status["state"] = {"terminated": {"exitCode": 1, "reason": "Error"}}


def restarted(live: Live) -> None:
    pods(live)[0]["status"]["containerStatuses"][0]["restartCount"] = 2


def terminating(live: Live) -> None:
    pod = pods(live)[0]
    pod["metadata"]["deletionTimestamp"] = "2026-11-29T12:30:00Z"
    pod["metadata"]["deletionGracePeriodSeconds"] = 30


def missing(live: Live) -> None:
    live[1].remove(pods(live)[-1])


def stale_owned_label(live: Live) -> None:
    """A label msctl set earlier that the spec no longer renders: removed."""
    pod = pods(live)[0]
    pod["metadata"]["labels"]["team"] = "serving"
    entry = next(e for e in pod["metadata"]["managedFields"] if e["manager"] == "msctl")
    entry["fieldsV1"]["f:metadata"]["f:labels"]["f:team"] = {}


def foreign_label(live: Live) -> None:
    """A label another manager set: kept."""
    pod = pods(live)[0]
    pod["metadata"]["labels"]["team"] = "serving"
    pod["metadata"]["managedFields"].append(
        {
            "manager": "kubectl-label",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
        }
    )


def stale_owned_annotation(live: Live) -> None:
    pod = pods(live)[-1]
    pod["metadata"].setdefault("annotations", {})["example.com/note"] = "x"
    entry = next(e for e in pod["metadata"]["managedFields"] if e["manager"] == "msctl")
    entry["fieldsV1"]["f:metadata"].setdefault("f:annotations", {})["f:example.com/note"] = {}


def label_drift(live: Live) -> None:
    pods(live)[0]["metadata"]["labels"][naming.ENTRY_LABEL] = "no"


def service_drift(live: Live) -> None:
    first(live, "Service")["spec"]["publishNotReadyAddresses"] = False


def podgroup_drift(live: Live) -> None:
    first(live, "PodGroup")["spec"]["minMember"] = 99


def foreign_owner(live: Live) -> None:
    pods(live)[0]["metadata"]["ownerReferences"][0]["uid"] = "someone-else"


def new_image(live: Live) -> None:
    ms = live[0]
    ms["spec"]["template"]["roles"][0]["entryTemplate"]["spec"]["containers"][0]["image"] = "x:2"
    ms["metadata"]["generation"] += 1


def scaled_up(live: Live) -> None:
    live[0]["spec"]["replicas"] += 1
    live[0]["metadata"]["generation"] += 1


def scaled_down(live: Live) -> None:
    live[0]["spec"]["replicas"] = 0
    live[0]["metadata"]["generation"] += 1


def status_lost(live: Live) -> None:
    live[0]["status"] = {}


def revision_gone(live: Live) -> None:
    live[1].remove(first(live, "ControllerRevision"))


SCENARIOS: dict[str, Callable[[Live], None]] = {
    "as stored, converged": lambda live: None,
    "a pod is not ready": not_ready,
    "a pod failed after restarts": failed,
    "a container restarted": restarted,
    "a pod is terminating": terminating,
    "a pod is missing": missing,
    "a label msctl set is no longer rendered": stale_owned_label,
    "a label another manager set is not rendered": foreign_label,
    "an annotation msctl set is no longer rendered": stale_owned_annotation,
    "a rendered label was changed": label_drift,
    "a Service spec drifted": service_drift,
    "a PodGroup spec drifted": podgroup_drift,
    "a pod is controlled by another owner": foreign_owner,
    "the image changed (rolling update)": new_image,
    "scaled up": scaled_up,
    "scaled down to zero": scaled_down,
    "the status was lost": status_lost,
    "the ControllerRevision is missing": revision_gone,
}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_trimmed_objects_plan_exactly_what_full_objects_plan(capture: Path, scenario: str) -> None:
    live = captured(capture)
    SCENARIOS[scenario](live)
    full = copy.deepcopy(live)
    trimmed = (trim(live[0]), [trim(o) for o in live[1]])
    assert planned(*trimmed) == planned(*full)


def test_the_captures_are_there_and_converged() -> None:
    assert len(CAPTURES) >= 3
    for path in CAPTURES:
        assert planned(*captured(path))[0]["steps"] == [], path.stem


def all_objects() -> list[Obj]:
    return [o for path in CAPTURES for o in (captured(path)[0], *captured(path)[1])]


def test_trimming_keeps_the_keys_msctl_owns_and_is_idempotent() -> None:
    for obj in all_objects():
        once = trim(obj)
        # A ModelServing is never diffed: it drops its managedFields whole.
        assert obj["kind"] == "ModelServing" or owned(once) == owned(obj)
        assert trim(once) == once
        assert once["metadata"].get("labels") == obj["metadata"].get("labels")
        assert once["metadata"].get("annotations") == obj["metadata"].get("annotations")


@pytest.mark.parametrize(
    ("kind", "dropped", "kept"),
    [
        ("Pod", set(), {"apiVersion", "kind", "metadata", "spec", "status"}),
        ("Service", {"status"}, {"apiVersion", "kind", "metadata", "spec"}),
        ("PodGroup", {"status"}, {"apiVersion", "kind", "metadata", "spec"}),
        ("ControllerRevision", set(), {"apiVersion", "kind", "metadata", "data", "revision"}),
        ("ModelServing", set(), {"apiVersion", "kind", "metadata", "spec", "status"}),
    ],
    ids=str,
)
def test_each_kind_keeps_what_the_daemon_reads(
    kind: str, dropped: set[str], kept: set[str]
) -> None:
    obj = next(o for o in all_objects() if o["kind"] == kind)
    out = trim(obj)
    assert kept <= set(out) and not dropped & set(out)
    assert "selfLink" not in out["metadata"] and "generateName" not in out["metadata"]
    for entry in out["metadata"].get("managedFields", ()):
        assert entry["manager"] == naming.FIELD_MANAGER and "subresource" not in entry


def test_a_trimmed_pod_keeps_its_spec_readiness_restarts_and_failure_evidence_only() -> None:
    pod = next(o for o in all_objects() if o["kind"] == "Pod")
    trimmed = trim(pod)
    status = trimmed["status"]
    assert trimmed["spec"] == pod["spec"]  # adoption compares it with the rendered pod
    allowed = {"phase", "reason", "message", "conditions", "containerStatuses"}
    assert set(status) <= allowed | {"initContainerStatuses"}
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    kept = {"name", "restartCount", "ready", "state", "lastState"}
    assert all(set(c) <= kept for c in status["containerStatuses"])
    assert "managedFields" not in pod["metadata"] or len(json.dumps(trimmed)) < len(json.dumps(pod))


def test_the_store_keeps_the_trimmed_form_of_what_enters_it() -> None:
    pod = next(o for o in all_objects() if o["kind"] == "Pod")
    meta = pod["metadata"]
    store = Store(naming.NAME_LABEL, transform=trim)
    store.upsert(pod)
    kept = store.get(meta["namespace"], meta["name"])
    assert kept == trim(pod) and kept is not pod
    assert store.owned_by(meta["namespace"], meta["labels"][naming.NAME_LABEL]) == [kept]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_every_scenario_but_the_quiet_ones_makes_the_planner_write(capture: Path) -> None:
    quiet = {"as stored, converged", "a label another manager set is not rendered"}
    for scenario, change in SCENARIOS.items():
        live = captured(capture)
        change(live)
        steps = [s for s in planned(*live)[0]["steps"] if s["verb"] != "event"]
        assert bool(steps) == (scenario not in quiet), scenario


def test_shared_values_are_equal_and_their_equal_parts_one_object() -> None:
    table = Shared()
    pods = [o for o in all_objects() if o["kind"] == "Pod"]
    copies = [table(copy.deepcopy(p["spec"])) for p in pods]
    assert copies == [p["spec"] for p in pods]
    env = [e for spec in copies for c in spec["containers"] for e in c.get("env", ())]
    tolerations = {id(spec.get("tolerations")) for spec in copies}
    # the pods' environment variables are a few distinct ones; the default tolerations one list
    assert len({id(e) for e in env}) <= len(env) / 2 and len(tolerations) <= 2
    again = table(copy.deepcopy(pods[0]["spec"]))
    assert again is copies[0]


def test_sharing_tells_numbers_booleans_and_strings_apart() -> None:
    table = Shared()
    values = [{"a": 1}, {"a": True}, {"a": 1.0}, {"a": "1"}, {"a": None}, {"a": [1]}, {"a": {}}]
    shared = [table(v) for v in values]
    assert shared == values
    assert [type(s["a"]) for s in shared] == [type(v["a"]) for v in values]
    assert len({id(s) for s in shared}) == len(values)
    assert table(["{"]) == ["{"] and table({"{": 1}) == {"{": 1}


def test_a_sweep_drops_only_what_nothing_else_holds() -> None:
    table = Shared()
    kept = table({"x": [1, 2, {"q": True}], "y": "z"})
    gone = table({"w": [3], "v": {"u": [4]}})
    size = len(table)
    del gone
    table.sweep()
    assert len(table) == size - 4  # the dict, its list and its dict with its own list
    assert table({"x": [1, 2, {"q": True}], "y": "z"}) is kept
    del kept
    table.sweep()
    assert len(table) == 0


def test_a_status_update_of_a_pod_keeps_the_cached_spec() -> None:
    pod = next(o for o in all_objects() if o["kind"] == "Pod")
    cached = trim(pod)
    later = copy.deepcopy(pod)
    later["status"]["phase"] = "Failed"
    updated = trim(later, cached)
    assert updated["spec"] is cached["spec"] and updated["status"]["phase"] == "Failed"
    later["spec"]["containers"][0]["image"] = "other:1"  # an image update in place
    changed = trim(later, cached)
    assert changed["spec"] == later["spec"] and changed["spec"] is not cached["spec"]


@pytest.mark.parametrize("background", [False, True], ids=["in line", "on a thread"])
def test_the_table_sweeps_itself_once_it_has_doubled(background: bool) -> None:
    table = Shared(sweep_after=100, background=background)
    held = [table({"held": [i]}) for i in range(40)]  # 80 entries: a dict and a list each
    for i in range(1_000):
        table({"dropped": [i]})  # nothing holds these
    deadline = time.monotonic() + 10
    while background and len(table) > 200 and time.monotonic() < deadline:
        time.sleep(0.01)  # the last sweep may still be under way
    table.sweep()  # waits for a sweep under way; afterwards only the held ones are left
    assert len(table) == 80 and all(table({"held": [i]}) is held[i] for i in range(40))


def test_a_sweep_drops_deep_values_in_one_go_and_keeps_parts_held_elsewhere() -> None:
    table = Shared()
    deep = table({"a": {"b": {"c": {"d": [{"e": [1]}]}}}})
    part = deep["a"]["b"]["c"]  # held by the test: it and its parts stay
    del deep
    table.sweep()
    assert len(table) == 4 and table({"d": [{"e": [1]}]}) is part
    del part
    table.sweep()
    assert len(table) == 0
