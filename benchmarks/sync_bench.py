"""Sync benchmark on the real control plane: the daemon against a plain create loop.

A ModelServing of 16 groups x 2 roles x 4 instances x (1 entry + 7 workers) = 1,024 pods
(plus 128 Services, 16 PodGroups and a ControllerRevision) goes from nothing to every object
created, both ways in the same run, alternating for --rounds rounds (best of each kept: on a
2-core machine one baseline run can take twice as long as the next):
  baseline  the same rendered objects created in the same order (PodGroups, entry pods,
            workers, Services) with the same client and the same number of threads;
  daemon    the controller, started and synced first, reconciling the new ModelServing.
Then a no-op reconcile of the converged ModelServing (API calls made, milliseconds), and the
memory of a real `msctl run` process holding those objects in its cache.

Targets: time <= 1.3x the baseline; API writes per created object <= 1.05; no-op reconcile
0 API calls and <= 20 ms.

Usage: python benchmarks/sync_bench.py [--kubeconfig FILE] [--concurrency N]
Without --kubeconfig a control plane is started with tests/controlplane/up and stopped after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import model  # noqa: E402
from generator.expand import Settings  # noqa: E402
from generator.render import Renderer, render_modelserving  # noqa: E402
from generator.templating import TemplateSet  # noqa: E402
from sync import kube  # noqa: E402
from sync.controller import Controller, Options  # noqa: E402
from tests.unit import specs  # noqa: E402

NAMESPACES = kube.Resource("", "v1", "namespaces", "Namespace", False)
WRITES = ("create", "patch", "update", "delete")


def spec() -> dict[str, Any]:
    roles = []
    for name in ("prefill", "decode"):
        role = specs.role(name, replicas=4, workers=7)
        for kind in ("entryTemplate", "workerTemplate"):
            role[kind]["spec"]["containers"][0]["resources"] = {
                "requests": {"cpu": "4", "memory": "16Gi"}
            }
        roles.append(role)
    return specs.modelserving("bench", replicas=16, roles=roles)


@contextmanager
def control_plane(kubeconfig: str | None) -> Any:
    if kubeconfig:
        yield kubeconfig
        return
    work = Path(tempfile.mkdtemp(prefix="msctl-bench-"))
    up = subprocess.run(
        [str(ROOT / "tests/controlplane/up"), str(work / "cp")],
        capture_output=True,
        text=True,
        check=False,
    )
    if up.returncode != 0:
        raise SystemExit(f"could not start the control plane:\n{up.stdout}{up.stderr}")
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(
            [str(ROOT / "tests/controlplane/down"), str(work / "cp")],
            capture_output=True,
            check=False,
        )


def namespace(client: kube.Kube, name: str) -> str:
    client.create(NAMESPACES, None, {"metadata": {"name": name}})
    return name


def writes(client: kube.Kube) -> int:
    return sum(client.calls[v] for v in WRITES)


def baseline(client: kube.Kube, ns: str, concurrency: int) -> tuple[float, int]:
    """Create the rendered objects with the same client and threads, in the same waves."""
    templates = TemplateSet()
    doc = spec()
    doc["metadata"]["namespace"] = ns
    owner = client.create(kube.MODELSERVINGS, ns, doc)
    ms = model.load(owner, namespace=ns, plugins=templates.plugins())
    renderer = Renderer(templates, ms, Settings(owner_uid=owner["metadata"]["uid"]))
    revision = renderer.controller_revision(ms.revision, ms.raw["spec"]["template"]["roles"])
    start = time.perf_counter()
    objects = render_modelserving(renderer)
    waves = [
        [revision],
        [o for o in objects if o["kind"] == "PodGroup"],
        [o for o in objects if o["kind"] == "Pod" and o["metadata"]["name"].endswith("-0")],
        [o for o in objects if o["kind"] == "Pod" and not o["metadata"]["name"].endswith("-0")],
        [o for o in objects if o["kind"] == "Service"],
    ]
    with ThreadPoolExecutor(concurrency) as pool:
        for wave in waves:
            list(pool.map(lambda o: client.create(kube.BY_KIND[o["kind"]], ns, o), wave))
    return time.perf_counter() - start, sum(len(w) for w in waves)


def daemon(client: kube.Kube, ns: str, concurrency: int) -> tuple[float, int, Controller]:
    controller = Controller(
        client, TemplateSet(), Options(namespace=ns, api_concurrency=concurrency)
    )
    controller.start()
    doc = spec()
    doc["metadata"]["namespace"] = ns
    before = writes(client)
    start = time.perf_counter()
    client.create(kube.MODELSERVINGS, ns, doc)
    want = {"Pod": 1024, "Service": 128, "PodGroup": 16, "ControllerRevision": 1}
    while any(len(controller.stores[k].owned_by(ns, "bench")) < n for k, n in want.items()):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    while not controller.queue.idle():
        time.sleep(0.05)
    time.sleep(1.0)
    while not controller.queue.idle():
        time.sleep(0.05)
    return elapsed, writes(client) - before - 1, controller  # minus the ModelServing itself


def noop(controller: Controller, ns: str, runs: int = 20) -> tuple[float, float, int]:
    """Median wall and CPU seconds of a no-op reconcile, and the API calls all runs made.

    The CPU time of this thread shows what the reconcile itself costs when the wall time is
    inflated by the control plane's own work (garbage collection after a mass creation) on
    the same cores."""
    key = f"{ns}/bench"
    calls = sum(controller.client.calls.values())
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = controller.reconcile(key)
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        assert result is not None and not result.plan.steps, "not a no-op"
    calls = sum(controller.client.calls.values()) - calls
    return statistics.median(times), statistics.median(cpu), calls


def daemon_memory(kubeconfig: str, ns: str) -> float:
    """RSS in MB of a real `msctl run` once its caches hold the namespace's objects."""
    msctl = Path(sys.executable).parent / "msctl"
    process = subprocess.Popen(
        [str(msctl), "run", "--kubeconfig", kubeconfig, "--namespace", ns, "--health-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "controller running" in line:
                break
        time.sleep(3)  # the first reconcile of the cached objects
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return rss / 1024
    finally:
        process.terminate()
        process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("MSCTL_TEST_KUBECONFIG"))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating runs of each (best kept)"
    )
    args = parser.parse_args()
    with control_plane(args.kubeconfig) as kubeconfig:
        suffix = str(int(time.time()))
        client = kube.Kube.connect(kubeconfig, pool=args.concurrency + 8)
        base_times, ours_times, used = [], [], []
        for n in range(args.rounds):
            base_ns = namespace(client, f"bench-base-{suffix}-{n}")
            ours_ns = namespace(client, f"bench-daemon-{suffix}-{n}")
            base_time, created = baseline(client, base_ns, args.concurrency)
            ours_time, ours_writes, controller = daemon(client, ours_ns, args.concurrency)
            base_times.append(base_time)
            ours_times.append(ours_time)
            used.append(ours_ns)
            if n < args.rounds - 1:
                controller.stop()
        noop_time, noop_cpu, noop_calls = noop(controller, ours_ns)
        controller.stop()
        memory = daemon_memory(kubeconfig, ours_ns)
        for n in range(args.rounds):
            for ns in (f"bench-base-{suffix}-{n}", f"bench-daemon-{suffix}-{n}"):
                client.delete(NAMESPACES, None, ns)
        client.close()
    base_time, ours_time = min(base_times), min(ours_times)
    ratio = ours_time / base_time
    per_object = ours_writes / created
    checks = [
        (
            f"time          {ours_time:6.2f}s vs baseline {base_time:6.2f}s = {ratio:.2f}x",
            ratio <= 1.3,
            "<= 1.3x",
        ),
        (
            f"writes/object {ours_writes} writes for {created} objects = {per_object:.3f}",
            per_object <= 1.05,
            "<= 1.05",
        ),
        (
            f"no-op         {noop_calls} API calls, {noop_time * 1000:.1f} ms "
            f"({noop_cpu * 1000:.1f} ms CPU; median of 20)",
            noop_calls == 0 and noop_time <= 0.02,
            "0 calls, <= 20 ms",
        ),
    ]
    print(
        f"1,024 pods, {created} objects, {args.concurrency} concurrent writers,"
        f" best of {args.rounds}"
    )
    print("  baseline runs: " + ", ".join(f"{t:.2f}s" for t in base_times))
    print("  daemon runs:   " + ", ".join(f"{t:.2f}s" for t in ours_times))
    for text, ok, target in checks:
        print(f"{text:70} target {target:18} {'ok' if ok else 'MISSED'}")
    print(f"memory        msctl run with these objects cached: {memory:.0f} MB RSS")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
