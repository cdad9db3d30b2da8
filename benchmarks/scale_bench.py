"""Scale benchmark on the real control plane: `msctl run` against a raw floor, N ModelServings.

Each of N ModelServings is one role of 2 instances x (1 entry + 4 workers) = 10 pods, 2
Services, 1 PodGroup and 1 ControllerRevision. Two processes do the same work in turn, each
in a fresh namespace, while a fast stand-in kubelet (one pod watch, a pool of status
patchers) marks every new pod Running and Ready:
  floor   a plain client (this script with --floor) that creates exactly the objects the
          daemon would (rendered by the same renderer, in the same waves) with the same
          number of concurrent writers, and writes each ModelServing's status once, when its
          pods are ready;
  daemon  `msctl run --namespace NS` as a subprocess, started and synced before the
          ModelServings are created.
Both clocks start when the benchmark starts creating the ModelServings and stop when every
ModelServing reports `availableReplicas == replicas`. For each: CPU seconds and peak RSS of
the process (from /proc at that moment), RSS per cached pod ((RSS at the end - RSS once its
caches had synced, empty) / pods), and API calls by verb (the daemon's from its /metrics,
`msctl_api_calls_total`; the floor counts its own). The kubelet's calls are common to both
and left out.

Targets: time <= 1.5x the floor; API calls <= 1.1x the floor's; RSS per cached pod <= 25 KB.

Usage: python benchmarks/scale_bench.py [--sizes 100,500,1000] [--kubeconfig FILE]
       [--profile DIR]  (py-spy samples the daemon; `python benchmarks/top_stacks.py` reads it)
Without --kubeconfig a control plane is started with tests/controlplane/up and stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sync_bench import NAMESPACES, control_plane  # noqa: E402
from generator import model  # noqa: E402
from generator.expand import Settings  # noqa: E402
from generator.render import Renderer, render_modelserving  # noqa: E402
from generator.templating import TemplateSet  # noqa: E402
from sync import kube  # noqa: E402
from tests.unit import specs  # noqa: E402

PODS_PER_MS = 10
TICKS = os.sysconf("SC_CLK_TCK")


def spec(name: str, namespace: str) -> dict[str, Any]:
    role = specs.role("server", replicas=2, workers=4)
    for kind in ("entryTemplate", "workerTemplate"):
        container = role[kind]["spec"]["containers"][0]
        container["resources"] = {"requests": {"cpu": "4", "memory": "16Gi"}}
        container["args"] = ["--model", "Qwen/Qwen3-8B", "--tensor-parallel-size", "1"]
        container["ports"] = [{"containerPort": 8000, "name": "http"}]
    doc = specs.modelserving(name, replicas=1, roles=[role])
    doc["metadata"]["namespace"] = namespace
    return doc


# --- the stand-in kubelet


class Kubelet:
    """Marks every new pod of a namespace Running and Ready: one watch, a pool of patchers."""

    def __init__(self, client: kube.Kube, namespace: str, patchers: int = 16) -> None:
        self.client = client
        self.namespace = namespace
        self.pool = ThreadPoolExecutor(patchers, thread_name_prefix="kubelet")
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        version = ""
        while not self.stop.is_set():
            try:
                if not version:
                    items, version = self.client.list(kube.PODS, self.namespace)
                    for pod in items:
                        self._saw(pod)
                stream = self.client.watch(kube.PODS, self.namespace, resource_version=version)
                for kind, pod in stream:
                    if self.stop.is_set():
                        stream.close()
                        return
                    version = pod.get("metadata", {}).get("resourceVersion", version)
                    if kind == "ADDED":
                        self._saw(pod)
            except kube.Gone:
                version = ""
            except kube.ApiError as err:
                self.errors.append(str(err))
                time.sleep(0.2)

    def _saw(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.seen or pod.get("status", {}).get("phase") not in (None, "Pending"):
            return
        self.seen.add(uid)
        self.pool.submit(self._start, pod)

    def _start(self, pod: dict[str, Any]) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        containers = pod["spec"]["containers"]
        status = {
            "phase": "Running",
            "podIP": "10.88.0.1",
            "podIPs": [{"ip": "10.88.0.1"}],
            "hostIP": "10.0.0.1",
            "startTime": now,
            "qosClass": "Burstable",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "containerID": f"containerd://{pod['metadata']['uid']}-{c['name']}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ],
        }
        try:
            self.client.merge_patch(
                kube.PODS, self.namespace, pod["metadata"]["name"], {"status": status}, sub="status"
            )
        except kube.ApiError as err:
            self.errors.append(str(err))

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


# --- measuring a process


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def memory_kb(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {
        k: int(v.split()[0])
        for k, v in (line.split(":", 1) for line in text.splitlines())
        if k in ("VmRSS", "VmHWM")
    }


def daemon_calls(port: int) -> tuple[Counter[str], int]:
    """API calls by verb and reconciles, from the daemon's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    calls: Counter[str] = Counter()
    for match in re.finditer(r'^msctl_api_calls_total\{verb="(\w+)"\} ([0-9.e+]+)$', text, re.M):
        calls[match.group(1)] = int(float(match.group(2)))
    reconciles = re.findall(r'^msctl_reconciles_total\{result="\w+"\} ([0-9.e+]+)$', text, re.M)
    return calls, sum(int(float(n)) for n in reconciles)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Result:
    seconds: float = 0.0
    cpu: float = 0.0
    peak_kb: int = 0
    per_pod_kb: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    reconciles: int = 0
    events: int = 0  # Events the daemon created (the floor creates none)


def create_modelservings(client: kube.Kube, ns: str, n: int, concurrency: int) -> None:
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(lambda i: client.create(kube.MODELSERVINGS, ns, spec(f"ms-{i}", ns)), range(n))
        )


def wait_available(client: kube.Kube, ns: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items, _ = client.list(kube.MODELSERVINGS, ns)
        done = sum(
            1
            for ms in items
            if ms.get("status", {}).get("availableReplicas") == ms["spec"]["replicas"]
        )
        if done == n:
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out: not all {n} ModelServings available in {ns}")


def profile(pid: int, n: int, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the daemon (every thread, without pausing it) until interrupted;
    collapsed stacks in FOLDER/daemon-N.txt (`py-spy` from PyPI must be on PATH or beside
    the interpreter)."""
    folder.mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).parent / "py-spy"
    command = [str(beside) if beside.exists() else "py-spy", "record", "--pid", str(pid)]
    command += ["--nonblocking", "--rate", "200", "--format", "raw"]
    command += ["--output", str(folder / f"daemon-{n}.txt")]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_daemon(kubeconfig: str, client: kube.Kube, ns: str, n: int, args: Any) -> Result:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync",
            "run",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            ns,
            "--health-port",
            str(port),
            "--api-concurrency",
            str(args.concurrency),
            "--workers",
            str(args.workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "controller running" in line:
                break
        threading.Thread(target=process.stderr.read, daemon=True).start()  # keep it drained
        time.sleep(1.0)
        empty = memory_kb(process.pid)["VmRSS"]
        kubelet = Kubelet(client, ns, args.concurrency)
        profiler = profile(process.pid, n, args.profile) if args.profile else None
        start = time.perf_counter()
        create_modelservings(client, ns, n, args.concurrency)
        wait_available(client, ns, n, args.timeout)
        result = Result(seconds=time.perf_counter() - start, cpu=cpu_seconds(process.pid))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(120)
        memory = memory_kb(process.pid)
        result.peak_kb = memory["VmHWM"]
        result.per_pod_kb = (memory["VmRSS"] - empty) / (n * PODS_PER_MS)
        result.calls, result.reconciles = daemon_calls(port)
        result.events = len(client.list(kube.EVENTS, ns)[0])  # only the daemon writes Events here
        kubelet.close()
        return result
    finally:
        process.terminate()
        process.wait(60)


def run_floor(kubeconfig: str, client: kube.Kube, ns: str, n: int, args: Any) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--floor", ns, "--kubeconfig", kubeconfig]
    command += ["--sizes", str(n), "--concurrency", str(args.concurrency)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdin is not None and process.stdout is not None
    ready = process.stdout.readline()
    assert ready.strip() == "synced", ready
    empty = memory_kb(process.pid)["VmRSS"]
    kubelet = Kubelet(client, ns, args.concurrency)
    start = time.perf_counter()
    create_modelservings(client, ns, n, args.concurrency)
    process.stdin.write("go\n")
    process.stdin.flush()
    wait_available(client, ns, n, args.timeout)
    result = Result(seconds=time.perf_counter() - start, cpu=cpu_seconds(process.pid))
    memory = memory_kb(process.pid)
    result.peak_kb = memory["VmHWM"]
    result.per_pod_kb = (memory["VmRSS"] - empty) / (n * PODS_PER_MS)
    process.stdin.write("report\n")
    process.stdin.flush()
    result.calls = Counter(json.loads(process.stdout.readline()))
    process.wait(60)
    kubelet.close()
    return result


# --- the floor process


def floor_main(kubeconfig: str, ns: str, n: int, concurrency: int) -> int:
    """Create what the daemon would for N ModelServings, and one status write each."""
    client = kube.Kube.connect(kubeconfig, pool=concurrency + 8)
    templates = TemplateSet()
    print("synced", flush=True)
    sys.stdin.readline()
    names = {f"ms-{i}" for i in range(n)}
    owners: dict[str, dict[str, Any]] = {}
    while len(owners) < n:  # the ModelServings the benchmark creates
        items, _ = client.list(kube.MODELSERVINGS, ns)
        owners = {o["metadata"]["name"]: o for o in items if o["metadata"]["name"] in names}
        if len(owners) < n:
            time.sleep(0.2)
    waves: list[list[dict[str, Any]]] = [[], [], [], [], []]
    for _name, owner in owners.items():
        ms = model.load(owner, namespace=ns, plugins=templates.plugins())
        renderer = Renderer(templates, ms, Settings(owner_uid=owner["metadata"]["uid"]))
        objects = render_modelserving(renderer)
        waves[0].append(
            renderer.controller_revision(ms.revision, ms.raw["spec"]["template"]["roles"])
        )
        waves[1] += [o for o in objects if o["kind"] == "PodGroup"]
        pods = [o for o in objects if o["kind"] == "Pod"]
        waves[2] += [o for o in pods if o["metadata"]["name"].endswith("-0")]
        waves[3] += [o for o in pods if not o["metadata"]["name"].endswith("-0")]
        waves[4] += [o for o in objects if o["kind"] == "Service"]
    ready: Counter[str] = Counter()
    done = threading.Event()
    pool = ThreadPoolExecutor(concurrency)

    def write_status(name: str) -> None:
        owner = owners[name]
        body = {**owner, "status": {"replicas": 1, "availableReplicas": 1, "updatedReplicas": 1}}
        client.replace(kube.MODELSERVINGS, ns, body, sub="status")

    seen: set[str] = set()

    def saw(pod: dict[str, Any]) -> None:
        meta = pod.get("metadata", {})
        conditions = pod.get("status", {}).get("conditions", ())
        if meta.get("uid") in seen or not any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        ):
            return
        seen.add(meta["uid"])
        owner = meta.get("labels", {}).get("modelserving.volcano.sh/name", "")
        ready[owner] += 1
        if ready[owner] == PODS_PER_MS:
            pool.submit(write_status, owner)
        if len(seen) == n * PODS_PER_MS:
            done.set()

    def watch() -> None:
        items, version = client.list(kube.PODS, ns)
        for pod in items:
            saw(pod)
        while not done.is_set():  # the server ends a watch after its timeout: watch again
            stream = client.watch(kube.PODS, ns, resource_version=version)
            for _kind, pod in stream:
                version = pod.get("metadata", {}).get("resourceVersion", version)
                saw(pod)
                if done.is_set():
                    stream.close()
                    return

    threading.Thread(target=watch, daemon=True).start()
    for wave in waves:
        list(pool.map(lambda o: client.create(kube.BY_KIND[o["kind"]], ns, o), wave))
    done.wait()
    sys.stdin.readline()
    pool.shutdown(wait=True)
    print(json.dumps(dict(client.call_counts())), flush=True)
    return 0


# --- the report


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(n: int, floor: Result, daemon: Result) -> list[str]:
    fcalls, dcalls = sum(floor.calls.values()), sum(daemon.calls.values())
    verbs = sorted(set(floor.calls) | set(daemon.calls))
    lines = [
        f"N={n} ModelServings, {n * PODS_PER_MS} pods, {os.cpu_count()} cores",
        f"  {'':24}{'floor':>12}{'msctl run':>12}{'ratio':>8}  target",
        f"  {'time to all available':24}{floor.seconds:11.1f}s{daemon.seconds:11.1f}s"
        f"{ratio(daemon.seconds, floor.seconds):>8}  <= 1.5x",
        f"  {'CPU seconds':24}{floor.cpu:11.1f}s{daemon.cpu:11.1f}s"
        f"{ratio(daemon.cpu, floor.cpu):>8}",
        f"  {'CPU ms per pod':24}{floor.cpu * 1000 / (n * PODS_PER_MS):12.2f}"
        f"{daemon.cpu * 1000 / (n * PODS_PER_MS):12.2f}",
        f"  {'peak RSS MB':24}{floor.peak_kb / 1024:12.0f}{daemon.peak_kb / 1024:12.0f}"
        f"{ratio(daemon.peak_kb, floor.peak_kb):>8}",
        f"  {'RSS per cached pod KB':24}{floor.per_pod_kb:12.1f}{daemon.per_pod_kb:12.1f}"
        f"{'':8}  <= 25 KB",
        f"  {'API calls':24}{fcalls:12}{dcalls:12}{ratio(dcalls, fcalls):>8}  <= 1.1x",
    ]
    lines += [f"    {v:22}{floor.calls[v]:12}{daemon.calls[v]:12}" for v in verbs]
    objects = dcalls - daemon.events
    lines.append(
        f"  {'API calls but Events':24}{fcalls:12}{objects:12}{ratio(objects, fcalls):>8}"
        f"  ({daemon.events} Events: RoleCreating/RoleRunning, as the reference)"
    )
    lines.append(f"  {'reconciles per MS':24}{'':12}{daemon.reconciles / n:12.1f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("MSCTL_TEST_KUBECONFIG"))
    parser.add_argument("--sizes", default="100,500,1000", help="values of N, comma-separated")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--workers", type=int, default=4, help="the daemon's (default 4)")
    parser.add_argument(
        "--profile", metavar="DIR", type=Path, help="sample the daemon with py-spy into DIR"
    )
    parser.add_argument("--floor", metavar="NS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.floor:
        return floor_main(args.kubeconfig, args.floor, sizes[0], args.concurrency)
    out: list[str] = []
    with control_plane(args.kubeconfig) as kubeconfig:
        client = kube.Kube.connect(kubeconfig, pool=args.concurrency * 2 + 8)
        suffix = str(int(time.time()))
        used: list[str] = []  # deleted at the end: a deletion would load the next run
        for n in sizes:
            results = {}
            for who, run in (("floor", run_floor), ("daemon", run_daemon)):
                ns = f"scale-{who}-{n}-{suffix}"
                client.create(NAMESPACES, None, {"metadata": {"name": ns}})
                results[who] = run(kubeconfig, client, ns, n, args)
                used.append(ns)
            lines = report(n, results["floor"], results["daemon"])
            print("\n".join(lines), flush=True)
            out += lines
        for ns in used:
            client.delete(NAMESPACES, None, ns)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
