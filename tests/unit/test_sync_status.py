"""Status computation: counts, revisions and conditions (docs/behaviour.md#status, #conditions)."""

from __future__ import annotations

from generator import model
from sync.core import status
from sync.core.assess import GroupView
from tests.unit import specs

MS = model.load(specs.pd(replicas=3), plugins=frozenset())
NEW = MS.revision


def view(
    ordinal: int,
    *,
    running: bool = True,
    updated: bool = True,
    deleting: bool = False,
    revision: str = NEW,
) -> GroupView:
    return GroupView(ordinal, MS.template.roles, NEW, revision, False, running, updated, deleting)


def test_counts_and_revisions_when_everything_is_ready() -> None:
    out = status.compute(MS, [view(0), view(1), view(2)], {}, 100.0)
    assert {
        k: out[k] for k in ("replicas", "currentReplicas", "updatedReplicas", "availableReplicas")
    } == {
        "replicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "availableReplicas": 3,
    }
    assert out["currentRevision"] == out["updateRevision"] == NEW
    assert out["observedGeneration"] == 0


def test_current_revision_is_the_most_common_old_one_ties_to_the_lowest_ordinal() -> None:
    views = [view(0, updated=False, revision="b"), view(1, updated=False, revision="a"), view(2)]
    assert status.current_revision(MS, views) == "b"
    views.append(view(3, updated=False, revision="a"))
    assert status.current_revision(MS, views) == "a"


def test_deleting_groups_count_in_replicas_only() -> None:
    out = status.compute(MS, [view(0), view(1), view(2, deleting=True, running=False)], {}, 1.0)
    assert (out["replicas"], out["updatedReplicas"], out["availableReplicas"]) == (3, 2, 2)


def test_conditions_name_ordinals_and_move_their_time_only_on_flips() -> None:
    first = status.compute(MS, [view(0), view(1, running=False), view(2)], {}, 100.0)
    (progressing,) = first["conditions"]
    assert (progressing["type"], progressing["status"], progressing["message"]) == (
        "Progressing",
        "True",
        "Some groups are progressing: [1]",
    )
    second = status.compute(
        MS, [view(0, running=False), view(1, running=False), view(2)], first, 200.0
    )
    (progressing,) = second["conditions"]
    assert progressing["message"] == "Some groups are progressing: [0 1]"  # refreshed
    assert progressing["lastTransitionTime"] == "1970-01-01T00:01:40Z"  # no flip, same time
    ready = status.compute(MS, [view(0), view(1), view(2)], second, 300.0)
    conditions = {c["type"]: c for c in ready["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Progressing"]["lastTransitionTime"] == "1970-01-01T00:05:00Z"


def test_an_update_in_progress_is_told_apart_from_plain_progress() -> None:
    views = [view(0, updated=False, revision="old"), view(1, running=False), view(2)]
    out = status.compute(MS, views, {}, 1.0)
    (condition,) = out["conditions"]
    assert (condition["type"], condition["reason"]) == ("UpdateInProgress", "GroupsUpdating")
    assert condition["message"] == "Some groups are progressing: [1], updated groups: [1 2]"


def test_label_selector_targets_one_pod_per_group() -> None:
    assert status.label_selector(MS) == (
        "modelserving.volcano.sh/entry=true,modelserving.volcano.sh/name=sample,"
        "modelserving.volcano.sh/role-id=prefill-0,modelserving.volcano.sh/role=prefill"
    )


def test_stalled_names_its_problem_and_reconciling_says_so_too() -> None:
    problem = status.Problem("TemplateError", "pod.j2:3: 'x' is undefined")
    assert status.stalled([], problem, 100.0) == [
        {
            "type": "Stalled",
            "status": "True",
            "reason": "TemplateError",
            "message": "pod.j2:3: 'x' is undefined",
            "lastTransitionTime": "1970-01-01T00:01:40Z",
        },
        {
            "type": "Reconciling",
            "status": "False",
            "reason": "TemplateError",
            "message": "stalled: see Stalled",
            "lastTransitionTime": "1970-01-01T00:01:40Z",
        },
    ]
