"""CPU per API request of the daemon's client: `sync.transport` against the generated client's
urllib3 pool, in the same run, on the real control plane.

Both send the same creates (a small ConfigMap each) one after the other from one thread, and
the figure is this process's CPU time per request (`time.process_time`), which is what the
daemon pays per write whatever the API server's latency. The urllib3 path is the same `Kube`
client with its transport turned off, as for a proxied connection.

Usage: python benchmarks/client_bench.py [--requests 1000] [--kubeconfig FILE]
Without --kubeconfig a control plane is started with tests/controlplane/up and stopped after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sync_bench import NAMESPACES, control_plane  # noqa: E402
from sync import kube  # noqa: E402

CONFIGMAPS = kube.Resource("", "v1", "configmaps", "ConfigMap")


def cpu_ms_per_create(client: kube.Kube, namespace: str, prefix: str, n: int) -> float:
    body = {"data": {"key": "x" * 200}}
    for i in range(20):  # connections opened, code paths warm
        client.create(CONFIGMAPS, namespace, {**body, "metadata": {"name": f"{prefix}-w{i}"}})
    started = time.process_time()
    for i in range(n):
        client.create(CONFIGMAPS, namespace, {**body, "metadata": {"name": f"{prefix}-{i}"}})
    return (time.process_time() - started) * 1000 / n


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("MSCTL_TEST_KUBECONFIG"))
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with control_plane(args.kubeconfig) as kubeconfig:
        lean = kube.Kube.connect(kubeconfig)
        pooled = kube.Kube.connect(kubeconfig)
        pooled._transport = None  # the urllib3 path, as for a proxied connection
        namespace = f"client-bench-{int(time.time())}"
        lean.create(NAMESPACES, None, {"metadata": {"name": namespace}})
        try:
            baseline = cpu_ms_per_create(pooled, namespace, "urllib3", args.requests)
            transport = cpu_ms_per_create(lean, namespace, "transport", args.requests)
        finally:
            lean.delete(NAMESPACES, None, namespace)
            lean.close()
            pooled.close()
    print(f"CPU per create, {args.requests} requests, {os.cpu_count()} cores")
    print(f"  urllib3 (baseline)  {baseline:6.3f} ms")
    print(f"  sync.transport      {transport:6.3f} ms   {transport / baseline:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
