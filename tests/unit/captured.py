"""The objects the reference controller wrote for the published examples (tests/data/
kthena-objects, see its README), as documents tests can load into a cluster or a simulator."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "kthena-objects"
OWNER_UID = "OWNER-UID"
CAPTURES = (
    "sample.initial",
    "gangpolicy.initial",
    "multi-node.initial",
    "data-parallel-deployment.initial",
    "rollingupdate.initial",
    "rollingupdate.after-image-change",
)


@dataclass(frozen=True)
class Capture:
    name: str
    ms: dict[str, Any]  # the ModelServing without its status
    status: dict[str, Any]  # the status the reference wrote
    children: tuple[dict[str, Any], ...]  # pods, Services, PodGroups, ControllerRevisions

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self.children if o["kind"] == kind]

    def owned_by(self, uid: str, namespace: str) -> list[dict[str, Any]]:
        """Every child, its owner reference pointing at `uid`, moved to `namespace`."""
        out = []
        old = "." + self.ms["metadata"]["namespace"]
        for obj in copy.deepcopy(list(self.children)):
            obj["metadata"]["namespace"] = namespace
            spec = obj.get("spec", {}) if obj["kind"] == "Pod" else {}
            for container in (*spec.get("containers", ()), *spec.get("initContainers", ())):
                for env in container.get("env", ()):
                    # ENTRY_ADDRESS names the namespace the pod lived in
                    if env.get("value", "").endswith(old):
                        env["value"] = env["value"][: -len(old)] + "." + namespace
            for ref in obj["metadata"].get("ownerReferences", ()):
                if ref["uid"] == OWNER_UID:
                    ref["uid"] = uid
            out.append(obj)
        return out


def load(name: str) -> Capture:
    docs = list(yaml.safe_load_all((DATA / f"{name}.yaml").read_text()))
    ms = docs[0]
    assert ms["kind"] == "ModelServing", name
    status = ms.pop("status")
    return Capture(name, ms, status, tuple(docs[1:]))
