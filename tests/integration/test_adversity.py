"""The daemon when the world misbehaves: edited labels, a writer that undoes its work, and a
broken user template. No hot loop, no silent failure (docs/behaviour.md#churn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client

from generator import naming
from sync import kube
from tests.integration.conftest import ControlPlane
from tests.integration.kubelet import Kubelet
from tests.integration.sync_helpers import Cluster, Daemon, running_controller
from tests.unit import specs

WRITES = ("create", "patch", "update", "delete")


def writes(counts: dict[str, int]) -> int:
    return sum(n for verb, n in counts.items() if verb in WRITES)


def stalled(cluster: Cluster) -> dict[str, Any] | None:
    conditions = cluster.ms("sample").get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Stalled"), None)


@contextmanager
def relabelling(cluster: Cluster, pod: str, every: float) -> Iterator[list[int]]:
    """A second writer that keeps setting the pod's role label to `x`; yields its count."""
    done, count = threading.Event(), [0]

    def run() -> None:
        while not done.wait(every):
            try:
                cluster.kube.merge_patch(
                    kube.PODS,
                    cluster.namespace,
                    pod,
                    {"metadata": {"labels": {naming.ROLE_LABEL: "x"}}},
                )
                count[0] += 1
            except kube.ApiError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        done.set()
        thread.join(5)


def test_an_edited_role_label_is_patched_back_on_the_same_pods(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace, workers=1) as controller:
        cluster.wait_available("sample", 1)
        uids = cluster.uids()
        cluster.wait(controller.queue.idle, "an idle queue")
        before = dict(controller.client.calls)
        cluster.kube.merge_patch(
            kube.PODS,
            namespace,
            "sample-0-decode-0-0",
            {"metadata": {"labels": {naming.ROLE_LABEL: "x"}}},
        )
        cluster.wait(
            lambda: (
                cluster.pods()["sample-0-decode-0-0"]["metadata"]["labels"][naming.ROLE_LABEL]
                == "decode"
            ),
            "the role label patched back",
        )
        time.sleep(3)  # long enough for a create/delete loop to show
        made = writes(dict(controller.client.calls)) - writes(before)
        assert cluster.uids() == uids  # no pod recreated
        assert made <= 3, f"{made} API writes for one edited label"
        assert stalled(cluster)["status"] == "False"


def test_a_writer_that_keeps_undoing_the_daemon_is_met_with_back_off(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str, kubelet: Kubelet
) -> None:
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    with running_controller(control_plane, namespace, workers=1) as controller:
        cluster.wait_available("sample", 1)
        cluster.wait(controller.queue.idle, "an idle queue")
        before, start = dict(controller.client.calls), time.monotonic()
        with relabelling(cluster, "sample-0-decode-0-0", every=0.2) as adversary:
            condition = cluster.wait(
                lambda: (c := stalled(cluster)) and c["status"] == "True" and c,
                "the Stalled condition",
            )
            time.sleep(20)
        minutes = (time.monotonic() - start) / 60
        per_minute = (writes(dict(controller.client.calls)) - writes(before)) / minutes
        print(
            f"adversary: {adversary[0] / minutes:.0f} writes/min; "
            f"daemon: {per_minute:.0f} API writes/min"
        )
        # Unchecked, the daemon answers every one of the adversary's ~300 writes a minute.
        assert per_minute < 60
        assert condition["reason"] == "RepeatedWrites"
        assert "patch Pod sample-0-decode-0-0" in condition["message"]
        warnings = [e for e in cluster.events() if e["reason"] == "RepeatedWrites"]
        assert warnings and warnings[0]["type"] == "Warning"
        cleared = cluster.wait(
            lambda: (c := stalled(cluster)) and c["status"] == "False" and c,
            "the Stalled condition to clear",
            timeout=120,
        )
        assert cleared["reason"] == "NotStalled"
        labels = cluster.pods()["sample-0-decode-0-0"]["metadata"]["labels"]
        assert labels[naming.ROLE_LABEL] == "decode"


BROKEN = '{% extends "pod.j2" %}{% block labels %}{{ no_such_variable.x }}{% endblock %}'
FIXED = (
    '{% extends "pod.j2" %}{% block labels %}'
    '{{ pod.labels | merge({"team": "llm"}) | tojson }}{% endblock %}'
)


def test_a_broken_template_is_reported_and_its_fix_picked_up_without_a_restart(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    kubelet: Kubelet,
    tmp_path: Path,
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "pod.j2").write_text(BROKEN)
    cluster = Cluster(api, namespace)
    cluster.apply(specs.pd())
    log = tmp_path / "daemon.log"
    daemon = Daemon(control_plane.kubeconfig, namespace, log, "--templates", str(templates))
    daemon.start()
    try:
        event = cluster.wait(
            lambda: next((e for e in cluster.events() if e["reason"] == "TemplateError"), None),
            "a TemplateError event",
        )
        assert event["type"] == "Warning"
        assert "pod.j2:1: " in event["message"]
        assert "no_such_variable" in event["message"]
        condition = cluster.wait(lambda: stalled(cluster), "the Stalled condition")
        assert (condition["status"], condition["reason"]) == ("True", "TemplateError")
        assert cluster.pods() == {}  # nothing written for a ModelServing that cannot render
        (templates / "pod.j2").write_text(FIXED)
        cluster.wait_available("sample", 1, timeout=60)
        assert {p["metadata"]["labels"]["team"] for p in cluster.pods().values()} == {"llm"}
        condition = cluster.wait(
            lambda: (c := stalled(cluster)) and c["status"] == "False" and c, "Stalled cleared"
        )
    finally:
        code = daemon.stop()
    assert code == 0, daemon.output()
