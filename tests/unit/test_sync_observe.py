"""Observe: live objects sorted into groups, role instances and pods; foreign ones apart."""

from __future__ import annotations

from typing import Any

from generator import naming
from sync.core.observe import observe

UID = "ms-uid"


def obj(
    kind: str, name: str, labels: dict[str, str], owner: str | None = UID, **extra: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {naming.NAME_LABEL: "sample", **labels}}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "ModelServing", "uid": owner, "controller": True}]
    meta.update(extra)
    return {"kind": kind, "metadata": meta}


def pod(group: int, role: str, instance: int, index: int, **extra: Any) -> dict[str, Any]:
    labels = {
        naming.GROUP_NAME_LABEL: f"sample-{group}",
        naming.ROLE_LABEL: role,
        naming.ROLE_ID_LABEL: f"{role}-{instance}",
        naming.REVISION_LABEL: extra.pop("revision", "r1"),
    }
    return obj("Pod", f"sample-{group}-{role}-{instance}-{index}", labels, **extra)


def test_pods_services_and_podgroups_land_in_their_group_and_instance() -> None:
    seen = observe(
        "sample",
        UID,
        pods=[pod(0, "prefill", 0, 0), pod(0, "prefill", 0, 1), pod(1, "decode", 2, 0)],
        services=[
            obj(
                "Service",
                "sample-0-prefill-0-0",
                {
                    naming.GROUP_NAME_LABEL: "sample-0",
                    naming.ROLE_LABEL: "prefill",
                    naming.ROLE_ID_LABEL: "prefill-0",
                },
            )
        ],
        podgroups=[obj("PodGroup", "sample-1", {naming.GROUP_NAME_LABEL: "sample-1"})],
        revisions=[obj("ControllerRevision", "sample-r1", {naming.REVISION_LABEL: "r1"})],
    )
    assert sorted(seen.groups) == [0, 1]
    instance = seen.groups[0].instances[("prefill", 0)]
    assert sorted(instance.pods) == [0, 1]
    assert instance.service is not None
    assert seen.groups[1].podgroup is not None
    assert list(seen.groups[1].instances) == [("decode", 2)]
    assert list(seen.revisions) == ["r1"]
    assert seen.pod_count() == 3


def test_objects_of_another_owner_are_foreign_and_misnamed_ones_stray() -> None:
    seen = observe(
        "sample",
        UID,
        pods=[
            pod(0, "prefill", 0, 0, owner="other"),
            pod(0, "prefill", 0, 0, owner=None),
            obj(
                "Pod",
                "random",
                {
                    naming.GROUP_NAME_LABEL: "sample-0",
                    naming.ROLE_LABEL: "prefill",
                    naming.ROLE_ID_LABEL: "prefill-0",
                },
            ),
        ],
    )
    assert len(seen.foreign) == 2
    assert [o["metadata"]["name"] for o in seen.stray] == ["random"]
    assert seen.groups == {}


def test_derived_values_of_instances_and_groups() -> None:
    seen = observe(
        "sample",
        UID,
        pods=[
            pod(0, "prefill", 0, 0, revision="b"),
            pod(0, "prefill", 0, 1, revision="a", deletionTimestamp="2026-01-01T00:00:00Z"),
            pod(0, "decode", 0, 0, revision="a"),
        ],
    )
    group = seen.groups[0]
    # One terminating instance sets aside only itself: the group is not being deleted.
    assert not group.terminating
    assert group.instances[("prefill", 0)].terminating
    assert not group.instances[("decode", 0)].terminating
    assert group.revision == "a"  # two pods say a


def test_a_group_is_terminating_when_its_podgroup_or_every_instance_is() -> None:
    gone = {"deletionTimestamp": "2026-01-01T00:00:00Z"}
    every = observe(
        "sample",
        UID,
        pods=[pod(0, "prefill", 0, 0, **gone), pod(0, "decode", 0, 0, **gone)],
    )
    assert every.groups[0].terminating
    one = observe("sample", UID, pods=[pod(0, "prefill", 0, 0, **gone), pod(0, "decode", 0, 0)])
    assert not one.groups[0].terminating


def test_the_memo_reuses_unchanged_pods_and_forgets_gone_ones() -> None:
    first = [pod(0, "prefill", 0, 0), pod(0, "prefill", 0, 1)]
    a = observe("sample", UID, pods=first)
    assert len(a.pod_states) == 2
    b = observe("sample", UID, pods=first[:1], previous=a)
    assert (
        b.groups[0].instances[("prefill", 0)].pods[0]
        is a.groups[0].instances[("prefill", 0)].pods[0]
    )
    assert len(b.pod_states) == 1


def test_a_pod_whose_identity_labels_were_edited_stays_in_its_slot() -> None:
    edited = pod(0, "decode", 0, 0)
    edited["metadata"]["labels"].update(
        {naming.ROLE_LABEL: "x", naming.ROLE_ID_LABEL: "y-7", naming.GROUP_NAME_LABEL: "z"}
    )
    seen = observe("sample", UID, pods=[edited, pod(0, "decode", 0, 1)])
    assert seen.stray == []
    assert sorted(seen.groups[0].instances[("decode", 0)].pods) == [0, 1]


def test_role_names_with_dashes_and_digits_are_read_from_the_name() -> None:
    seen = observe("ms-1", UID, pods=[obj("Pod", "ms-1-3-pre-fill-2-5-1", {})])
    assert list(seen.groups) == [3]
    assert list(seen.groups[3].instances) == [("pre-fill-2", 5)]
    assert list(seen.groups[3].instances[("pre-fill-2", 5)].pods) == [1]


def test_podgroups_services_and_revisions_are_known_by_name_not_labels() -> None:
    seen = observe(
        "sample",
        UID,
        services=[obj("Service", "sample-0-prefill-0-0", {}), obj("Service", "sample-0-x-0-1", {})],
        podgroups=[obj("PodGroup", "sample-1", {naming.GROUP_NAME_LABEL: "sample-9"})],
        revisions=[obj("ControllerRevision", "sample-r1", {naming.REVISION_LABEL: "edited"})],
    )
    assert seen.groups[0].instances[("prefill", 0)].service is not None
    assert seen.groups[1].podgroup is not None
    assert list(seen.revisions) == ["r1"]
    assert [o["metadata"]["name"] for o in seen.stray] == ["sample-0-x-0-1"]
