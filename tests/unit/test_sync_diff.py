"""JSON patches over owned fields: server defaults never patch, stale owned fields go."""

from __future__ import annotations

from typing import Any

from generator.naming import FIELD_MANAGER
from generator.structural import StructuralSchema
from sync.core import diff


def live(
    kind: str,
    labels: dict[str, str],
    spec: dict[str, Any],
    owned_labels: list[str] = (),
    **meta: Any,
) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "kind": kind,
        "metadata": {
            "name": "x",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": labels,
            "managedFields": [
                {
                    "manager": FIELD_MANAGER,
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:labels": {f"f:{k}": {} for k in owned_labels}}},
                },
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
                },
            ],
            **meta,
        },
        "spec": spec,
    }


def want(kind: str, labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", "labels": labels}, "spec": spec}


def test_equal_objects_need_no_patch() -> None:
    obj = live("Pod", {"a": "1"}, {"containers": []})
    assert (
        diff.object_patch(want("Pod", {"a": "1"}, {"containers": ["ignored for pods"]}), obj) == []
    )


def test_changed_and_new_labels_are_patched_behind_a_guard() -> None:
    ops = diff.object_patch(want("Pod", {"a": "2", "b/c": "3"}, {}), live("Pod", {"a": "1"}, {}))
    assert ops == [
        {"op": "test", "path": "/metadata/uid", "value": "u1"},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "add", "path": "/metadata/labels/b~1c", "value": "3"},
    ]


def test_labels_we_set_and_no_longer_render_are_removed_but_others_stay() -> None:
    obj = live("Pod", {"a": "1", "old": "x", "team": "blue"}, {}, owned_labels=["a", "old"])
    ops = diff.object_patch(want("Pod", {"a": "1"}, {}), obj)
    assert ops[2:] == [{"op": "remove", "path": "/metadata/labels/old"}]


def test_service_specs_match_by_containment() -> None:
    server = {
        "clusterIP": "None",
        "clusterIPs": ["None"],
        "type": "ClusterIP",
        "selector": {"a": "1"},
    }
    assert (
        diff.object_patch(
            want("Service", {}, {"clusterIP": "None", "selector": {"a": "1"}}),
            live("Service", {}, server),
        )
        == []
    )
    ops = diff.object_patch(
        want("Service", {}, {"selector": {"a": "2"}}), live("Service", {}, server)
    )
    assert ops[2:] == [{"op": "replace", "path": "/spec/selector", "value": {"a": "2"}}]


PODGROUP_SCHEMA = StructuralSchema(
    {
        "type": "object",
        "properties": {
            "minMember": {"type": "integer"},
            "queue": {"type": "string", "default": "default"},
            "networkTopology": {
                "type": "object",
                "properties": {
                    "mode": {"type": "string", "default": "hard"},
                    "highestTierAllowed": {"type": "integer", "default": 1},
                },
            },
        },
    },
    {},
)


def test_podgroup_defaults_from_the_crd_do_not_cause_patches() -> None:
    rendered = {"minMember": 4, "networkTopology": {"mode": "soft"}}
    on_server, _ = PODGROUP_SCHEMA.apply(rendered)
    stored = {
        "minMember": 4,
        "queue": "default",
        "networkTopology": {"mode": "soft", "highestTierAllowed": 1},
    }
    assert (
        diff.object_patch(
            want("PodGroup", {}, rendered), live("PodGroup", {}, stored), server_spec=on_server
        )
        == []
    )


def test_podgroup_fields_no_longer_rendered_are_removed_and_nested_changes_replaced() -> None:
    rendered = {"minMember": 4}
    on_server, _ = PODGROUP_SCHEMA.apply(rendered)
    stored = {
        "minMember": 4,
        "queue": "default",
        "networkTopology": {"mode": "hard", "highestTierAllowed": 1},
    }
    ops = diff.object_patch(
        want("PodGroup", {}, rendered), live("PodGroup", {}, stored), server_spec=on_server
    )
    assert ops[2:] == [{"op": "remove", "path": "/spec/networkTopology"}]
    stored = {
        "minMember": 4,
        "queue": "default",
        "networkTopology": {"mode": "hard", "highestTierAllowed": 2},
    }
    rendered = {"minMember": 4, "networkTopology": {"mode": "hard"}}
    on_server, _ = PODGROUP_SCHEMA.apply(rendered)
    ops = diff.object_patch(
        want("PodGroup", {}, rendered), live("PodGroup", {}, stored), server_spec=on_server
    )
    assert ops[2:] == [
        {
            "op": "replace",
            "path": "/spec/networkTopology",
            "value": {"mode": "hard", "highestTierAllowed": 1},
        }
    ]


def test_state_annotations_survive_a_diff() -> None:
    obj = live("Pod", {}, {})
    obj["metadata"]["annotations"] = {
        "modelserving.volcano.sh/failed-since": "2026-01-01T00:00:00Z"
    }
    obj["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:annotations"] = {
        "f:modelserving.volcano.sh/failed-since": {}
    }
    assert diff.object_patch(want("Pod", {}, {}), obj) == []


def test_annotation_patches_set_and_remove() -> None:
    obj = live("Pod", {}, {})
    assert diff.annotation_patch(obj, {"k": "v"})[2:] == [
        {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}
    ]
    obj["metadata"]["annotations"] = {"k": "v", "n": "1"}
    assert diff.annotation_patch(obj, {"k": None, "n": "2"})[2:] == [
        {"op": "remove", "path": "/metadata/annotations/k"},
        {"op": "replace", "path": "/metadata/annotations/n", "value": "2"},
    ]
    assert diff.annotation_patch(obj, {"n": "1"}) == []


def test_containment() -> None:
    assert diff.contains({"a": 1, "b": 2}, {"a": 1})
    assert not diff.contains({"a": 1}, {"a": 1, "b": 2})
    assert diff.contains([{"a": 1, "x": 0}], [{"a": 1}])
    assert not diff.contains([{"a": 1}, {"a": 2}], [{"a": 1}])
    assert not diff.contains(1, True)


def test_a_patch_is_remembered_until_the_live_object_or_the_desired_one_changes() -> None:
    # What the planner does: each plan hands its answers to the next one.
    answers: dict[int, diff.PatchAnswer] = {}

    def patch(desired: dict[str, Any], obj: dict[str, Any]) -> tuple[Any, ...]:
        answer = answers[id(desired)] = diff.remembered_patch(dict(answers), desired, obj)
        return answer[4]

    desired = want("Pod", {"a": "2"}, {})
    first = live("Pod", {"a": "1"}, {})
    ops = patch(desired, first)
    assert ops == tuple(diff.object_patch(desired, first))
    assert ops and patch(desired, first) is ops
    # Same resourceVersion: the same object as far as the API server is concerned.
    assert patch(desired, live("Pod", {"a": "1"}, {})) is ops
    updated = live("Pod", {"a": "2"}, {}, resourceVersion="8")
    assert patch(desired, updated) == ()
    recreated = live("Pod", {"a": "1"}, {}, uid="u2", resourceVersion="8")
    assert patch(desired, recreated) == tuple(diff.object_patch(desired, recreated))
    other = want("Pod", {"a": "1"}, {})  # another desired object: compared afresh
    assert patch(other, updated) == tuple(diff.object_patch(other, updated))
