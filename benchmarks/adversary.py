"""API writes per minute of `msctl run` while a second writer keeps undoing its work.

Starts its own control plane (or uses --kubeconfig), a kubelet stand-in, the sample 1P1D
ModelServing and `msctl run` (the one next to this Python, or --msctl: point it at another
checkout's msctl to measure an older version). Once the ModelServing is available, an
adversary sets the role label of one pod to `x` every 0.2 s for --seconds; the daemon's own
writes are read from its /metrics before and after.

    python benchmarks/adversary.py --seconds 60
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sync_bench import NAMESPACES, control_plane  # noqa: E402
from generator import naming  # noqa: E402
from sync import kube  # noqa: E402
from tests.integration.conftest import new_client  # noqa: E402
from tests.integration.kubelet import Kubelet  # noqa: E402
from tests.unit import specs  # noqa: E402

WRITE = re.compile(r'^msctl_api_calls_total\{verb="(create|patch|update|delete)"\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_writes(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    return sum(float(n) for _, n in WRITE.findall(text.decode()))


def available(client: kube.Kube, ns: str) -> bool:
    try:
        status = client.get(kube.MODELSERVINGS, ns, "sample").get("status", {})
    except kube.NotFound:
        return False
    return any(
        c["type"] == "Available" and c["status"] == "True" for c in status.get("conditions", ())
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig")
    parser.add_argument("--msctl", default=str(Path(sys.executable).parent / "msctl"))
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with control_plane(args.kubeconfig) as kubeconfig:
        client = kube.Kube.connect(kubeconfig)
        ns = f"adversary-{int(time.time())}"
        client.create(NAMESPACES, None, {"metadata": {"name": ns}})
        doc = specs.pd()
        doc["metadata"]["namespace"] = ns
        client.create(kube.MODELSERVINGS, ns, doc)
        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="msctl-adversary-")) / "daemon.log"
        command = [args.msctl, "run", "--kubeconfig", kubeconfig, "-n", ns]
        with (
            Kubelet(new_client(Path(kubeconfig)), ns),
            log.open("wb") as out,
            subprocess.Popen(
                [*command, "--health-port", str(port)], stdout=out, stderr=subprocess.STDOUT
            ) as daemon,
        ):
            try:
                deadline = time.monotonic() + 60
                while not available(client, ns):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"not available after 60s; see {log}")
                    time.sleep(0.2)
                time.sleep(2)
                before, start, attacks = daemon_writes(port), time.monotonic(), 0
                while time.monotonic() - start < args.seconds:
                    patch = {"metadata": {"labels": {naming.ROLE_LABEL: "x"}}}
                    try:
                        client.merge_patch(kube.PODS, ns, "sample-0-decode-0-0", patch)
                        attacks += 1
                    except kube.ApiError:
                        pass
                    time.sleep(0.2)
                minutes = (time.monotonic() - start) / 60
                made = daemon_writes(port) - before
            finally:
                daemon.terminate()
                daemon.wait(30)
        client.close()
    print(f"adversary: {attacks / minutes:.0f} writes/min for {minutes * 60:.0f}s")
    print(f"daemon:    {made / minutes:.0f} API writes/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
