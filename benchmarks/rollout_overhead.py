"""Rollout overhead on the real control plane: the controller's own share of a rollout.

Four ServingGroups (1 prefill + 1 decode, each an entry and a worker: 16 pods) roll out an
image change with maxUnavailable 2, so two waves. A kubelet stand-in makes every new pod Ready
exactly READY_AFTER seconds after it appears. Reported:
  wall time from the spec change to every group updated and available,
  minus the time pods spent becoming ready (waves x READY_AFTER) = the controller's overhead,
  and API calls per replaced pod.

Usage: python benchmarks/rollout_overhead.py [--kubeconfig FILE] [--ready-after SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import config  # noqa: E402

from benchmarks.sync_bench import NAMESPACES, control_plane  # noqa: E402
from tests.integration.kubelet import Kubelet  # noqa: E402
from tests.integration.sync_helpers import Cluster, running_controller  # noqa: E402
from tests.integration.test_rollout import NEW_IMAGE, rolled_out, rolling, set_image  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("MSCTL_TEST_KUBECONFIG"))
    parser.add_argument("--ready-after", type=float, default=2.0)
    args = parser.parse_args()
    with control_plane(args.kubeconfig) as kubeconfig:
        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        ns = f"rollout-{int(time.time())}"
        cluster = Cluster(api, ns)
        cluster.kube.create(NAMESPACES, None, {"metadata": {"name": ns}})
        cluster.apply(rolling(4, 2))
        with (
            Kubelet(api, ns, ready_after=args.ready_after),
            running_controller(kubeconfig, ns) as controller,
        ):
            cluster.wait_available("sample", 4, 60)
            while not controller.queue.idle():
                time.sleep(0.05)
            calls = sum(controller.client.calls.values())
            start = time.perf_counter()
            set_image(cluster, "sample", NEW_IMAGE)
            while not rolled_out(cluster, "sample", 4):
                time.sleep(0.02)
            total = time.perf_counter() - start
            used = sum(controller.client.calls.values()) - calls
        cluster.kube.delete(NAMESPACES, None, ns)
    waves = 2
    readiness = waves * args.ready_after
    print(
        f"4 groups, maxUnavailable 2 ({waves} waves),"
        f" pods ready {args.ready_after:.1f}s after creation"
    )
    print(f"spec change to all groups updated: {total:.2f}s")
    print(f"time pods spent becoming ready:    {readiness:.2f}s")
    overhead = total - readiness
    print(f"controller overhead:               {overhead:.2f}s ({overhead / waves:.2f}s per wave)")
    print(f"API calls: {used} for 16 replaced pods = {used / 16:.2f} per pod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
