"""Shared pieces of the sync integration tests: a controller in this process, a daemon in
another, and short ways to read the cluster."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from generator import naming
from generator.templating import TemplateSet
from sync import kube
from sync.controller import Controller, Options
from tests.integration.kubelet import wait_for

ROOT = Path(__file__).resolve().parents[2]


def example(name: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


class Cluster:
    """Reads and writes of one test namespace, through the project's JSON client."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        # Not the daemon's field manager: the daemon removes what "msctl" set and stopped rendering.
        self.kube = kube.Kube(api, field_manager="msctl-tests")
        self.namespace = namespace

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(doc)
        body["metadata"]["namespace"] = self.namespace
        return self.kube.create(kube.MODELSERVINGS, self.namespace, body)

    def patch_ms(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.kube.merge_patch(kube.MODELSERVINGS, self.namespace, name, patch)

    def ms(self, name: str) -> dict[str, Any]:
        return self.kube.get(kube.MODELSERVINGS, self.namespace, name)

    def objects(self, resource: kube.Resource) -> list[dict[str, Any]]:
        return self.kube.list(resource, self.namespace)[0]

    def pods(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in self.objects(kube.PODS)}

    def names(self, resource: kube.Resource) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.objects(resource))

    def uids(self) -> dict[str, str]:
        return {n: p["metadata"]["uid"] for n, p in self.pods().items()}

    def live_pod_names(self) -> list[str]:
        return sorted(n for n, p in self.pods().items() if "deletionTimestamp" not in p["metadata"])

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        return wait_for(check, timeout=timeout, interval=0.1, what=what)

    def wait_available(self, name: str, replicas: int, timeout: float = 30.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def done() -> dict[str, Any] | None:
            ms = self.ms(name)
            status = ms.get("status", {})
            seen.update(generation=ms["metadata"]["generation"], status=status)
            ok = (
                status.get("observedGeneration") == ms["metadata"]["generation"]
                and status.get("replicas") == status.get("availableReplicas") == replicas
                and status.get("updatedReplicas") == replicas
            )
            return ms if ok else None

        try:
            result: dict[str, Any] = self.wait(
                done, f"{name} available with {replicas} groups", timeout
            )
        except TimeoutError as err:
            phases = {n: p.get("status", {}).get("phase") for n, p in self.pods().items()}
            raise TimeoutError(f"{err}; last seen {seen}; pods {phases}") from None
        return result

    def groups_unavailable(self, name: str, replicas: int, size: int) -> int:
        """Groups (0..replicas-1) without all `size` pods Running and Ready, from raw pods."""
        ready: dict[str, int] = {}
        for pod in self.pods().values():
            labels = pod["metadata"].get("labels", {})
            if labels.get(naming.NAME_LABEL) != name or "deletionTimestamp" in pod["metadata"]:
                continue
            status = pod.get("status", {})
            ok = status.get("phase") == "Running" and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions", ())
            )
            group = labels[naming.GROUP_NAME_LABEL]
            ready[group] = ready.get(group, 0) + int(ok)
        return sum(1 for g in range(replicas) if ready.get(f"{name}-{g}", 0) != size)

    def events(self) -> list[dict[str, Any]]:
        return self.objects(kube.EVENTS)


@contextmanager
def running_controller(
    kubeconfig: Any, namespace: str, *, client_class: type[kube.Kube] = kube.Kube, **options: Any
) -> Iterator[Controller]:
    """A controller for one namespace in this process, with its own connection pool."""
    settings = Options(namespace=namespace, **options)
    client_ = client_class.connect(os.fspath(kubeconfig), pool=settings.api_concurrency + 8)
    controller = Controller(client_, TemplateSet(), settings)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
        client_.close()


class Daemon:
    """`msctl run` in its own process, to be killed and restarted like the real thing."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path, *extra: str) -> None:
        self.args = [
            str(Path(sys.executable).parent / "msctl"),
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--namespace",
            namespace,
            "--health-port",
            "0",
            *extra,
        ]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def until(deadline: float) -> Iterator[float]:
    """Seconds left, every 50 ms, until `deadline` (time.monotonic)."""
    while (left := deadline - time.monotonic()) > 0:
        yield left
        time.sleep(0.05)
