"""deploy/argocd/health.lua, run in Lua 5.1 on ModelServing objects recorded from the daemon
(tests/data/modelserving-status/, written by tests/integration/test_health_checks.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.argocd import epoch, health

DATA = Path(__file__).resolve().parents[1] / "data" / "modelserving-status"
DEADLINE = 600  # PROGRESS_DEADLINE_SECONDS of the script


def load(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return obj


def since(obj: dict[str, Any], *kinds: str) -> int:
    """When the first of `kinds` that is True became True."""
    for kind in kinds:
        for c in obj["status"]["conditions"]:
            if c["type"] == kind and c["status"] == "True":
                return epoch(c["lastTransitionTime"])
    raise AssertionError(f"none of {kinds} is True")


def test_every_recorded_object_has_a_case_below() -> None:
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted({c[0] for c in CASES})


# (recorded object, seconds after its progress began, expected status, words of the message)
CASES: list[tuple[str, int | None, str, str]] = [
    ("created", None, "Progressing", "Waiting for msctl to reconcile"),
    ("starting", 5, "Progressing", "Some groups are progressing"),
    ("starting", DEADLINE + 1, "Degraded", "No progress for 601 s"),
    ("available", None, "Healthy", "All Serving groups are ready"),
    ("available", 10 * DEADLINE, "Healthy", "All Serving groups are ready"),
    ("rolling-update-stuck", 30, "Progressing", "updated groups"),
    ("rolling-update-stuck", 2 * DEADLINE, "Degraded", "No progress for 1200 s"),
    ("unobserved", None, "Progressing", "Waiting for msctl to observe generation"),
    ("unobserved", 10 * DEADLINE, "Progressing", "Waiting for msctl to observe generation"),
]


@pytest.mark.parametrize(
    ("name", "after", "expected", "words"),
    CASES,
    ids=[
        "a ModelServing without status is progressing",
        "groups starting is progressing",
        "groups not ready past the deadline is degraded",
        "all groups ready and updated is healthy",
        "healthy stays healthy however long ago it became available",
        "a rollout under way is progressing",
        "a rollout stuck past the deadline is degraded",
        "a generation not yet observed is progressing",
        "an unobserved generation has no deadline (the daemon may be down, not the workload)",
    ],
)
def test_health_of_recorded_objects(
    name: str, after: int | None, expected: str, words: str
) -> None:
    obj = load(name)
    now = None
    if after is not None:
        now = since(obj, "UpdateInProgress", "Progressing", "Available") + after
    status, message = health(obj, now)
    assert (status, words in message) == (expected, True), message


def test_available_but_not_all_updated_is_not_healthy() -> None:
    obj = copy.deepcopy(load("available"))
    obj["status"]["updatedReplicas"] -= 1
    assert health(obj, since(obj, "Available") + 1)[0] == "Progressing"


def test_available_with_fewer_groups_than_the_spec_is_not_healthy() -> None:
    obj = copy.deepcopy(load("available"))
    obj["spec"]["replicas"] += 1
    assert health(obj, since(obj, "Available") + 1)[0] == "Progressing"


def test_a_failed_condition_is_degraded_at_once() -> None:
    obj = copy.deepcopy(load("starting"))
    obj["status"]["conditions"].append(
        {"type": "Failed", "status": "True", "reason": "X", "message": "image pull failed"}
    )
    assert health(obj, since(obj, "Progressing") + 1) == ("Degraded", "image pull failed")
