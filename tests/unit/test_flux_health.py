"""The Flux healthCheckExprs of docs/operations.md, evaluated with a CEL implementation on the
ModelServing objects recorded from the daemon (tests/data/modelserving-status/), in the order
Flux applies them: inProgress, then failed, then current; none true means InProgress."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "modelserving-status"


def expressions() -> dict[str, str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(
        r"```yaml\n(apiVersion: kustomize\.toolkit\.fluxcd\.io/v1\n.*?)```", text, re.S
    )
    assert block, "no Flux Kustomization in docs/operations.md"
    [check] = yaml.safe_load(block[1])["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == (
        "workload.serving.volcano.sh/v1alpha1",
        "ModelServing",
    )
    return {k: check[k] for k in ("inProgress", "failed", "current")}


def kstatus(obj: dict[str, Any]) -> str:
    # A ModelServing not yet reconciled has no status; it is given as an empty map.
    variables = {"metadata": obj["metadata"], "spec": obj["spec"], "status": obj.get("status", {})}
    for key, verdict in (
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ):
        if cel.evaluate(expressions()[key], variables) is True:
            return verdict
    return "InProgress"


def load(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return obj


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("created", "InProgress"),
        ("starting", "InProgress"),
        ("available", "Current"),
        ("rolling-update-stuck", "InProgress"),
        ("unobserved", "InProgress"),
    ],
    ids=[
        "no status yet is in progress",
        "groups starting is in progress",
        "all groups ready and updated is current",
        "a rollout under way is in progress (Flux's timeout fails a stuck one)",
        "an unobserved generation is in progress",
    ],
)
def test_flux_reads_recorded_objects(name: str, expected: str) -> None:
    assert kstatus(load(name)) == expected


def test_a_failed_condition_fails() -> None:
    obj = copy.deepcopy(load("starting"))
    obj["status"]["conditions"].append({"type": "Failed", "status": "True", "reason": "X"})
    assert kstatus(obj) == "Failed"


def test_available_but_not_all_updated_is_not_current() -> None:
    obj = copy.deepcopy(load("available"))
    obj["status"]["updatedReplicas"] -= 1
    assert kstatus(obj) == "InProgress"
