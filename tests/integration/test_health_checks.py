"""Health where operators look, on real status objects: the Argo CD check
(deploy/argocd/health.lua) and `kubectl wait --for=condition=Available` (docs/operations.md)
through a ModelServing's life: created, starting, available, a stuck rollout, a spec change
not yet observed.

With MSCTL_RECORD_STATUS=1 the objects are written to tests/data/modelserving-status/, where
tests/unit/test_argocd_health.py reads them (the recorded files are committed).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client

from tests import tools
from tests.argocd import health
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, running_controller
from tests.integration.test_rollout import BAD_IMAGE, not_bad, rolling, set_image

DATA = Path(__file__).resolve().parents[1] / "data" / "modelserving-status"
RECORD = os.environ.get("MSCTL_RECORD_STATUS") == "1"
# Server-assigned fields that differ on every run and mean nothing to a health check.
VOLATILE = ("managedFields", "uid", "resourceVersion")


def recorded(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in VOLATILE}
    return {**obj, "metadata": {**meta, "namespace": "default"}}


def check(name: str, obj: dict[str, Any], expected: str) -> None:
    status, message = health(obj)
    assert status == expected, f"{name}: {status} ({message}), want {expected}: {obj['status']}"
    if RECORD:
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA / f"{name}.json").write_text(json.dumps(recorded(obj), indent=2) + "\n")


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def kubectl_wait(kubeconfig: Path, namespace: str, timeout: str) -> list[str]:
    """The line of docs/operations.md, for this test's namespace and control plane."""
    return [
        tools.kubectl(),
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        "wait",
        "--for=condition=Available",
        "modelserving/sample",
        f"--timeout={timeout}",
    ]


def test_health_checks_follow_a_modelserving_from_creation_through_a_stuck_rollout(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(rolling(2, 1))
    check("created", cluster.ms("sample"), "Progressing")
    waiter = subprocess.Popen(
        kubectl_wait(control_plane.kubeconfig, namespace, "90s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with running_controller(control_plane, namespace):
            starting = cluster.wait(
                lambda: ms if condition(ms := cluster.ms("sample"), "Progressing") else None,
                "the first status",
            )
            check("starting", starting, "Progressing")
            assert waiter.poll() is None, "kubectl wait returned before the groups were ready"
            with Kubelet(api, namespace, select=not_bad):
                check("available", cluster.wait_available("sample", 2), "Healthy")
                out, err = waiter.communicate(timeout=60)
                assert waiter.returncode == 0, err
                assert (
                    out.strip() == "modelserving.workload.serving.volcano.sh/sample condition met"
                )

                set_image(cluster, "sample", BAD_IMAGE)
                rolling_out = cluster.wait(
                    lambda: (
                        ms
                        if condition(ms := cluster.ms("sample"), "UpdateInProgress") == "True"
                        and ms["status"].get("updatedReplicas") == 1
                        and ms["status"]["observedGeneration"] == ms["metadata"]["generation"]
                        else None
                    ),
                    "one group replaced by the bad image",
                )
                check("rolling-update-stuck", rolling_out, "Progressing")
                stuck = subprocess.run(
                    kubectl_wait(control_plane.kubeconfig, namespace, "2s"),
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert stuck.returncode != 0, "kubectl wait said Available during a rollout"
                assert "timed out" in stuck.stderr, stuck.stderr
        # No controller now: the next generation stays unobserved.
        check("unobserved", cluster.patch_ms("sample", {"spec": {"replicas": 3}}), "Progressing")
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
