"""Capture what the API server stores for converged ModelServings, for tests/data/live/.

For each example: a fresh namespace, the controller (in this process) reconciling it, the
integration tests' stand-in kubelet marking every pod Running and Ready; once the
ModelServing is available, it and every object it owns are written as they are stored
(managedFields, server defaults and kubelet status included) to
tests/data/live/<example>.json. The unit tests plan from these offline (tests/unit/test_trim.py).

Usage: python tools/capture_live.py --kubeconfig FILE [examples/x.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import naming  # noqa: E402
from generator.templating import TemplateSet  # noqa: E402
from sync import kube  # noqa: E402
from sync.controller import Controller, Options  # noqa: E402
from tests.integration.conftest import new_client  # noqa: E402
from tests.integration.kubelet import Kubelet  # noqa: E402

NAMESPACES = kube.Resource("", "v1", "namespaces", "Namespace", False)
DEFAULT = ("prefill-decode", "tensor-parallel-gang", "network-topology")


def capture(client: kube.Kube, kubeconfig: str, example: Path) -> dict[str, object]:
    doc = yaml.safe_load(example.read_text())
    ns = f"capture-{example.stem}-{int(time.time())}"
    client.create(NAMESPACES, None, {"metadata": {"name": ns}})
    doc["metadata"]["namespace"] = ns
    controller = Controller(client, TemplateSet(), Options(namespace=ns))
    controller.start()
    api = new_client(Path(kubeconfig))
    try:
        with Kubelet(api, ns):
            client.create(kube.MODELSERVINGS, ns, doc)
            name = doc["metadata"]["name"]
            for _ in range(600):
                ms = client.get(kube.MODELSERVINGS, ns, name)
                status = ms.get("status", {})
                if status.get("availableReplicas") == ms["spec"]["replicas"] and all(
                    c["status"] == "True" for c in status["conditions"] if c["type"] == "Available"
                ):
                    break
                time.sleep(0.1)
            time.sleep(1.0)  # the last status write and events
            ms = client.get(kube.MODELSERVINGS, ns, name)
            objects = []
            for kind in ("ControllerRevision", "PodGroup", "Service", "Pod"):
                items, _ = client.list(kube.BY_KIND[kind], ns, selector=naming.NAME_LABEL)
                objects += sorted(items, key=lambda o: o["metadata"]["name"])
    finally:
        controller.stop()
        client.delete(NAMESPACES, None, ns)
    return {"modelserving": ms, "objects": objects}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("examples", nargs="*", type=Path)
    args = parser.parse_args()
    examples = args.examples or [ROOT / "examples" / f"{n}.yaml" for n in DEFAULT]
    client = kube.Kube.connect(args.kubeconfig)
    out = ROOT / "tests" / "data" / "live"
    out.mkdir(parents=True, exist_ok=True)
    for example in examples:
        captured = capture(client, args.kubeconfig, example)
        path = out / f"{example.stem}.json"
        path.write_text(json.dumps(captured, indent=1, sort_keys=True) + "\n")
        print(f"{path}: {len(captured['objects'])} objects")  # type: ignore[arg-type]
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
