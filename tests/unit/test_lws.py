"""The LeaderWorkerSet mapping (generator.lws), offline render of LWS documents, and the LWS
bridge's pure decisions (sync.core.lws); docs/behaviour.md#leaderworkerset."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import pytest

from generator import lws, naming, pipeline
from generator.documents import Document
from generator.expand import Settings
from generator.templating import TemplateSet
from sync import kube
from sync.core import lws as core
from sync.lws_bridge import LwsBridge, lws_served

TEMPLATES = TemplateSet()
PLUGINS = TEMPLATES.plugins()


def doc(**spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": naming.LWS_API_VERSION,
        "kind": naming.LWS_KIND,
        "metadata": {"name": "x", "namespace": "ns", "uid": "lws-uid", "generation": 3},
        "spec": {
            "replicas": 2,
            "leaderWorkerTemplate": {
                "size": 3,
                "workerTemplate": {"spec": {"containers": [{"name": "w", "image": "w:1"}]}},
            },
        },
    }
    for path, value in spec.items():
        node = out["spec"]
        *parents, last = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return out


LEADER = {"metadata": {"labels": {"r": "l"}}, "spec": {"containers": [{"name": "l", "image": "l"}]}}


# --- the mapping


def test_the_mapping_follows_the_reference() -> None:
    mapped = lws.to_modelserving(doc(leaderWorkerTemplate__leaderTemplate=LEADER), "lws-uid")
    ms = mapped.modelserving
    assert ms["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "name": "x",
            "uid": "lws-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert ms["spec"]["replicas"] == 2
    assert ms["spec"]["plugins"] == [{"name": "lws-standard-labels"}]
    [role] = ms["spec"]["template"]["roles"]
    assert role["name"] == "default" and role["replicas"] == 1 and role["workerReplicas"] == 2
    assert role["entryTemplate"] == LEADER
    assert role["workerTemplate"]["spec"]["containers"][0]["image"] == "w:1"
    assert mapped.unsupported == ()


@pytest.mark.parametrize(
    ("spec", "field", "want"),
    [
        ({}, "replicas", 1),
        ({}, "recoveryPolicy", "ServingGroupRecreate"),
        ({"leaderWorkerTemplate__restartPolicy": "None"}, "recoveryPolicy", "None"),
        ({"leaderWorkerTemplate__restartPolicy": "Default"}, "recoveryPolicy", "None"),
        ({}, "schedulerName", "default-scheduler"),
        (
            {"rolloutStrategy__rollingUpdateConfiguration__partition": 1},
            "rolloutStrategy",
            {
                "type": "ServingGroupRollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "partition": 1},
            },
        ),
    ],
    ids=[
        "replicas default to 1",
        "RecreateGroupOnPodRestart recreates the group",
        "restartPolicy None recreates nothing",
        "the deprecated Default means None",
        "pods keep the default scheduler",
        "partition and maxUnavailable carry over",
    ],
)
def test_lws_fields_map_to_modelserving_fields(spec: dict[str, Any], field: str, want: Any) -> None:
    source = doc(**spec)
    if field == "replicas":
        del source["spec"]["replicas"]
    assert lws.to_modelserving(source).modelserving["spec"][field] == want


def test_without_a_leader_template_the_entry_runs_the_worker_template() -> None:
    [role] = lws.to_modelserving(doc()).modelserving["spec"]["template"]["roles"]
    assert role["entryTemplate"] == role["workerTemplate"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"startupPolicy": "LeaderReady"}, "spec.startupPolicy"),
        ({"networkConfig": {"subdomainPolicy": "Shared"}}, "spec.networkConfig.subdomainPolicy"),
        (
            {"rolloutStrategy__rollingUpdateConfiguration__maxSurge": 2},
            "spec.rolloutStrategy.rollingUpdateConfiguration.maxSurge",
        ),
        (
            {"rolloutStrategy__rollingUpdateConfiguration__maxUnavailable": 0},
            "spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable",
        ),
        (
            {"leaderWorkerTemplate__subGroupPolicy": {"subGroupSize": 2}},
            "spec.leaderWorkerTemplate.subGroupPolicy",
        ),
        (
            {
                "leaderWorkerTemplate__leaderTemplate": {
                    "spec": {"schedulerName": "volcano", "containers": [{"name": "l"}]}
                }
            },
            "spec.leaderWorkerTemplate.workerTemplate.spec.schedulerName",
        ),
    ],
    ids=[
        "LeaderReady startup",
        "a shared subdomain",
        "surge groups",
        "maxUnavailable 0",
        "sub-groups",
        "two schedulers",
    ],
)
def test_fields_without_an_equivalent_are_named_with_what_happens_instead(
    spec: dict[str, Any], field: str
) -> None:
    [found] = lws.to_modelserving(doc(**spec)).unsupported
    assert found.field == field
    assert "is not honoured; instead: " in str(found) and found.instead


def test_fields_set_to_what_the_mapping_does_are_not_reported() -> None:
    honoured = doc(
        startupPolicy="LeaderCreated",
        networkConfig={"subdomainPolicy": "UniquePerReplica"},
        rolloutStrategy__rollingUpdateConfiguration__maxSurge=0,
    )
    assert lws.to_modelserving(honoured).unsupported == ()


def test_lws_annotations_without_an_equivalent_are_reported() -> None:
    source = doc()
    source["metadata"]["annotations"] = {"leaderworkerset.sigs.k8s.io/exclusive-topology": "rack"}
    [found] = lws.to_modelserving(source).unsupported
    assert found.field == "metadata.annotations[leaderworkerset.sigs.k8s.io/exclusive-topology]"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"leaderWorkerTemplate__size": 0}, "spec.leaderWorkerTemplate.size: must be at least 1"),
        ({"startupPolicy": "Eager"}, "spec.startupPolicy: must be one of LeaderCreated"),
        ({"leaderWorkerTemplate__workerTemplate": {}}, "workerTemplate.spec: required"),
        ({"bogus": 1}, "spec.bogus: unknown field"),
        (
            {"leaderWorkerTemplate__workerTemplate__metadata": {"labels": [[]]}},
            "spec.leaderWorkerTemplate.workerTemplate.metadata.labels: must be a map of strings",
        ),
    ],
    ids=[
        "size 0",
        "an unknown startup policy",
        "no worker pod spec",
        "an unknown field",
        "labels that are a list (found by the CLI fuzz)",
    ],
)
def test_unmappable_documents_are_refused_with_the_field_path(
    spec: dict[str, Any], message: str
) -> None:
    problems = [str(v) for v in lws.violations(doc(**spec))]
    assert any(message in p for p in problems), problems


# --- offline: render and validate


def load(body: dict[str, Any]) -> list[pipeline.Item]:
    return pipeline.load([Document("f.yaml", 1, body)], TEMPLATES, "default")


def test_render_emits_the_modelserving_then_its_objects() -> None:
    [bundle] = pipeline.render(load(doc()), TEMPLATES, Settings()).bundles
    kinds = [o["kind"] for o in bundle.objects]
    assert kinds == ["ModelServing", "Service", "Service", "Pod", "Pod", "Pod", "Pod", "Pod", "Pod"]
    ms = bundle.objects[0]
    assert ms["metadata"]["ownerReferences"][0]["uid"] == "lws-uid"
    assert ms["spec"]["template"]["restartGracePeriodSeconds"] == 0  # defaulted
    pod = bundle.objects[-1]
    assert "ownerReferences" not in pod["metadata"]
    assert pod["metadata"]["labels"][naming.LWS_NAME_LABEL] == "x"
    assert pod["metadata"]["labels"][naming.LWS_WORKER_INDEX_LABEL] == "2"


def test_owner_uid_overrides_and_no_uid_means_no_owner_reference() -> None:
    source = doc()
    rendered = pipeline.render(load(source), TEMPLATES, Settings(owner_uid="given"))
    assert rendered.bundles[0].objects[0]["metadata"]["ownerReferences"][0]["uid"] == "given"
    del source["metadata"]["uid"]
    ms = pipeline.render(load(source), TEMPLATES, Settings()).bundles[0].objects[0]
    assert "ownerReferences" not in ms["metadata"]
    pod = pipeline.render(load(source), TEMPLATES, Settings()).bundles[0].objects[-1]
    assert pod["metadata"]["labels"][naming.LWS_NAME_LABEL] == "x"  # the plugin still applies


def test_pod_spec_errors_name_the_lws_template_they_came_from() -> None:
    source = doc()
    source["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"] = [
        {"image": "x"}
    ]
    with pytest.raises(pipeline.SpecErrors) as err:
        load(source)
    assert err.value.lines
    assert all("spec.leaderWorkerTemplate.workerTemplate.spec" in line for line in err.value.lines)


def test_an_item_warns_about_each_field_not_honoured() -> None:
    [item] = load(doc(startupPolicy="LeaderReady"))
    [warning] = item.warnings()
    assert warning.startswith("f.yaml:1: spec.startupPolicy=LeaderReady is not honoured")


# --- the bridge's decisions


def live_ms(desired: core.Desired, **spec: Any) -> dict[str, Any]:
    assert desired.modelserving is not None
    out = copy.deepcopy(desired.modelserving)
    out["metadata"].update(uid="ms-uid", resourceVersion="7")
    out["spec"].update(spec)
    out["status"] = {
        "replicas": 2,
        "availableReplicas": 1,
        "updatedReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "R", "message": "m"},
            {"type": "Other", "status": "True", "reason": "R", "message": "m"},
        ],
    }
    return out


def test_a_new_lws_gets_its_modelserving_created() -> None:
    source = doc()
    desired = core.desire(source, PLUGINS)
    plan = core.decide(source, None, desired, 0.0)
    assert plan.create == desired.modelserving
    assert [e.reason for e in plan.events] == ["ModelServingCreated"]
    assert plan.status is not None
    bridged = next(c for c in plan.status["conditions"] if c["type"] == core.BRIDGED)
    assert bridged["status"] == "True" and bridged["observedGeneration"] == 3


def test_an_edited_modelserving_spec_is_replaced_behind_a_uid_and_version_guard() -> None:
    source = doc()
    desired = core.desire(source, PLUGINS)
    plan = core.decide(source, live_ms(desired, replicas=9), desired, 0.0)
    assert plan.spec_patch[:2] == [
        {"op": "test", "path": "/metadata/uid", "value": "ms-uid"},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
    ]
    assert plan.spec_patch[2] == {
        "op": "replace",
        "path": "/spec",
        "value": desired.modelserving["spec"],
    }  # type: ignore[index]


def test_status_counts_and_mirrored_conditions_come_from_the_modelserving() -> None:
    source = doc()
    desired = core.desire(source, PLUGINS)
    status = core.decide(source, live_ms(desired), desired, 0.0).status
    assert status is not None
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 1, 2)
    assert status["hpaPodSelector"] == naming.lws_leader_selector("x")
    types = [c["type"] for c in status["conditions"]]
    assert "Available" in types and "Other" not in types


def test_an_unchanged_lws_needs_no_writes() -> None:
    source = doc()
    desired = core.desire(source, PLUGINS)
    ms = live_ms(desired)
    source["status"] = core.decide(source, ms, desired, 0.0).status
    assert core.decide(source, ms, desired, 5.0).empty


def test_a_modelserving_of_someone_else_is_left_alone_and_reported() -> None:
    source = doc()
    desired = core.desire(source, PLUGINS)
    foreign = live_ms(desired, replicas=9)
    foreign["metadata"]["ownerReferences"] = []
    plan = core.decide(source, foreign, desired, 0.0)
    assert plan.create is None and not plan.spec_patch
    assert [e.reason for e in plan.events] == ["ModelServingExists"]
    assert plan.status is not None and "replicas" not in plan.status


def test_unsupported_fields_are_reported_once_as_event_and_as_condition() -> None:
    source = doc(startupPolicy="LeaderReady")
    desired = core.desire(source, PLUGINS)
    plan = core.decide(source, None, desired, 0.0)
    event = next(e for e in plan.events if e.reason == core.NOT_HONOURED)
    assert event.type == "Warning" and "spec.startupPolicy=LeaderReady" in event.message
    assert plan.status is not None
    condition = next(c for c in plan.status["conditions"] if c["type"] == core.NOT_HONOURED)
    assert (condition["status"], condition["message"]) == ("True", event.message)
    source["status"] = plan.status
    again = core.decide(source, None, desired, 1.0)
    assert core.NOT_HONOURED not in [e.reason for e in again.events]


def test_an_invalid_mapping_is_reported_and_nothing_is_written_but_status() -> None:
    source = doc()
    source["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"] = [
        {"image": "x"}
    ]
    desired = core.desire(source, PLUGINS)
    assert desired.modelserving is None and desired.invalid
    assert "spec.leaderWorkerTemplate.workerTemplate.spec" in desired.invalid
    plan = core.decide(source, None, desired, 0.0)
    assert plan.create is None and [e.reason for e in plan.events] == ["InvalidMapping"]


@pytest.mark.parametrize(
    ("crd", "served"),
    [
        (None, False),
        ({"metadata": {}, "spec": {"versions": [{"name": "v1", "served": True}]}}, True),
        ({"metadata": {}, "spec": {"versions": [{"name": "v1", "served": False}]}}, False),
        (
            {
                "metadata": {"deletionTimestamp": "t"},
                "spec": {"versions": [{"name": "v1", "served": True}]},
            },
            False,
        ),
    ],
    ids=["no CRD", "v1 served", "v1 not served", "CRD being deleted"],
)
def test_the_bridge_runs_only_while_the_crd_serves_v1(crd: Any, served: bool) -> None:
    assert lws_served(crd) is served


def test_the_lws_examples_are_leaderworkersets() -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    import yaml  # noqa: PLC0415

    found = [
        p.name for p in sorted(root.glob("lws-*.yaml")) if lws.is_lws(yaml.safe_load(p.read_text()))
    ]
    assert found == ["lws-leader-worker.yaml", "lws-workers-only.yaml"]


class _NoCalls:
    """A Kube stand-in that fails the test on any call."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the bridge called {name}")


def test_a_sharded_bridge_leaves_the_leaderworkersets_of_other_shards_alone() -> None:
    """Ownership is decided before anything is read or written (behaviour.md#leaderworkerset)."""
    asked: list[str] = []

    def owns(key: str) -> bool:
        asked.append(key)
        return False

    bridge = LwsBridge(cast(kube.Kube, _NoCalls()), TemplateSet(), None, owns=owns)
    running = cast(Any, None)  # an owned key would need the caches; this one must not
    assert bridge.reconcile(running, "team/lws") is False
    assert asked == ["team/lws"]
    assert not bridge.busy_with(lambda _key: True)  # not running: nothing in flight
    bridge.resync()  # not running: nothing to queue
