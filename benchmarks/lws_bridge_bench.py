"""The LWS bridge's cost on the real control plane: apply-to-available of a LeaderWorkerSet
against the same workload written as a ModelServing.

Workload: 4 groups of 1 leader + 3 workers (16 pods), pods marked Ready at once by the
stand-in kubelet of the integration tests. Both ways run in the same process against the same
control plane, with the same ModelServing controller (all namespaces) and the LWS bridge
running throughout, alternating for --rounds rounds, each in a fresh namespace:
  modelserving  create the ModelServing the LWS maps to (no owner), time until its status says
                4 groups available and updated;
  lws           create the LeaderWorkerSet, time until its status says readyReplicas 4 (the
                bridge has created the ModelServing, the controller its pods, and the bridge
                has copied the status back).
A first warm-up round of each is run and not counted (cold caches, first namespaces).
Reported: the median and best of each, and the ratio of the medians.

Usage: python benchmarks/lws_bridge_bench.py [--kubeconfig FILE] [--rounds N]
Without --kubeconfig a control plane is started with tests/controlplane/up and stopped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sync_bench import NAMESPACES, control_plane  # noqa: E402
from generator import lws, naming  # noqa: E402
from generator.templating import TemplateSet  # noqa: E402
from sync import kube  # noqa: E402
from sync.controller import Controller, Options  # noqa: E402
from sync.lws_bridge import LwsBridge  # noqa: E402
from tests.integration.conftest import new_client  # noqa: E402
from tests.integration.kubelet import Kubelet  # noqa: E402

GROUPS, SIZE = 4, 4


def leaderworkerset(ns: str) -> dict[str, Any]:
    def template(image: str) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": "main", "image": image}]}}

    return {
        "apiVersion": naming.LWS_API_VERSION,
        "kind": naming.LWS_KIND,
        "metadata": {"name": "bench", "namespace": ns},
        "spec": {
            "replicas": GROUPS,
            "leaderWorkerTemplate": {
                "size": SIZE,
                "leaderTemplate": template("nginx:1.27-leader"),
                "workerTemplate": template("nginx:1.27"),
            },
        },
    }


def wait(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the workload to become available")
        time.sleep(0.02)


def as_modelserving(client: kube.Kube, ns: str) -> float:
    ms = lws.emitted(lws.to_modelserving(leaderworkerset(ns)).modelserving)
    start = time.perf_counter()
    client.create(kube.MODELSERVINGS, ns, ms)

    def available() -> bool:
        status = client.get(kube.MODELSERVINGS, ns, "bench").get("status", {})
        return status.get("availableReplicas") == status.get("updatedReplicas") == GROUPS

    wait(available)
    return time.perf_counter() - start


def as_lws(client: kube.Kube, ns: str) -> float:
    start = time.perf_counter()
    client.create(kube.LEADERWORKERSETS, ns, leaderworkerset(ns))

    def ready() -> bool:
        status = client.get(kube.LEADERWORKERSETS, ns, "bench").get("status", {})
        return status.get("readyReplicas") == GROUPS

    wait(ready)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with control_plane(args.kubeconfig) as kubeconfig:
        client = kube.Kube.connect(kubeconfig, pool=24)
        api = new_client(Path(kubeconfig))
        controller = Controller(client, TemplateSet(), Options())
        controller.start()
        bridge = LwsBridge(client, TemplateSet(), None)
        bridge.start()
        wait(lambda: bridge.active, 30)
        times: dict[str, list[float]] = {"modelserving": [], "lws": []}
        stamp = int(time.time())
        made: list[str] = []
        try:
            for n in range(-1, args.rounds):
                for way, run in (("modelserving", as_modelserving), ("lws", as_lws)):
                    ns = f"lws-bench-{stamp}-{n + 1}-{way}"
                    client.create(NAMESPACES, None, {"metadata": {"name": ns}})
                    made.append(ns)
                    with Kubelet(api, ns):
                        took = run(client, ns)
                    if n >= 0:
                        times[way].append(took)
                if n < 0:
                    continue
                print(
                    f"round {n + 1}: modelserving {times['modelserving'][-1]:.3f}s, "
                    f"lws {times['lws'][-1]:.3f}s",
                    flush=True,
                )
        finally:
            # Namespaces go only at the end: a terminating one keeps the controller busy.
            bridge.stop()
            controller.stop()
            for ns in made:
                client.delete(NAMESPACES, None, ns)
            client.close()
        ms, lw = (statistics.median(times[k]) for k in ("modelserving", "lws"))
        print(
            f"{GROUPS} groups x {SIZE} pods, {args.rounds} rounds: "
            f"modelserving median {ms:.3f}s (best {min(times['modelserving']):.3f}s), "
            f"lws median {lw:.3f}s (best {min(times['lws']):.3f}s), ratio {lw / ms:.2f}x"
        )


if __name__ == "__main__":
    main()
