"""Render benchmark: msctl's template pipeline against hand-built dicts, in the same run.

A ModelServing of 64 groups x 2 roles x 4 instances x (1 entry + 7 workers) = 4096 pods
(plus 512 Services and 64 PodGroups) is rendered by msctl and, as the baseline, by straight
Python code that builds the very same dicts (checked equal) without templates. Reported as
ratios to the baseline, best of several runs:

  objects  render to Python objects           target <= 5x
  json     objects + `-o json` serialisation  target <= 3x
  yaml     objects + YAML stream (libyaml)    target <= 1.5x
  startup  `msctl render` of a small example  target <= 300 ms, no kubernetes import

Usage: python benchmarks/render_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generator import model, naming, output
from generator.expand import Settings
from generator.quantity import sum_requests
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateSet

ROOT = Path(__file__).resolve().parents[1]
Obj = dict[str, Any]


def big_spec() -> Obj:
    def template(image: str, cpu: str) -> Obj:
        return {
            "metadata": {"labels": {"app": "llm"}},
            "spec": {
                "containers": [
                    {
                        "name": "engine",
                        "image": image,
                        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                        "args": [
                            "--model",
                            "meta-llama/Llama-3.1-405B",
                            "--tensor-parallel-size",
                            "8",
                        ],
                        "env": [{"name": "HF_HOME", "value": "/cache"}],
                        "ports": [{"containerPort": 8000}],
                        "resources": {
                            "requests": {"cpu": cpu, "memory": "512Gi", "nvidia.com/gpu": "8"},
                            "limits": {"nvidia.com/gpu": "8"},
                        },
                        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                    }
                ],
                "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
            },
        }

    roles = [
        {
            "name": name,
            "replicas": 4,
            "workerReplicas": 7,
            "entryTemplate": template("vllm/vllm-openai:v0.13.0", "32"),
            "workerTemplate": template("vllm/vllm-openai:v0.13.0", "32"),
        }
        for name in ("prefill", "decode")
    ]
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {"name": "bench", "namespace": "default", "uid": "0000-bench"},
        "spec": {"replicas": 64, "template": {"roles": roles}},
    }


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def hand_built(ms: model.ModelServing) -> list[Obj]:
    """The same objects, written out by hand: no templates, no layers, no parsing."""
    owner = {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "name": ms.name,
        "uid": ms.uid,
        "controller": True,
    }
    blocking = [{**owner, "blockOwnerDeletion": True}]
    podgroups, services, pods = [], [], []
    template = ms.template
    for g in range(ms.replicas):
        group = f"{ms.name}-{g}"
        terms: list[Any] = []
        subgroups = []
        min_member = 0
        for role in template.roles:
            min_member += role.size * role.replicas
            terms += [
                (c.get("resources", {}).get("requests", {}), role.replicas)
                for c in role.entry.spec["containers"]
            ]
            if role.worker is not None:
                terms += [
                    (
                        c.get("resources", {}).get("requests", {}),
                        role.replicas * role.worker_replicas,
                    )
                    for c in role.worker.spec["containers"]
                ]
            subgroups.append(
                {
                    "name": role.name,
                    "labelSelector": {
                        "matchLabels": {naming.NAME_LABEL: ms.name, naming.ROLE_LABEL: role.name}
                    },
                    "matchLabelKeys": [naming.ROLE_ID_LABEL],
                    "subGroupSize": role.size,
                    "minSubGroups": role.replicas,
                }
            )
        podgroups.append(
            {
                "apiVersion": "scheduling.volcano.sh/v1beta1",
                "kind": "PodGroup",
                "metadata": {
                    "name": group,
                    "namespace": ms.namespace,
                    "labels": {naming.NAME_LABEL: ms.name, naming.GROUP_NAME_LABEL: group},
                    "annotations": {naming.PODGROUP_ANNOTATION: group},
                    "ownerReferences": [dict(owner)],
                },
                "spec": {
                    "minMember": min_member,
                    "minResources": sum_requests(terms),
                    "subGroupPolicy": subgroups,
                },
            }
        )
        for role in template.roles:
            for r in range(role.replicas):
                role_id = f"{role.name}-{r}"
                entry_name = f"{group}-{role.name}-{r}-0"
                services.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {
                            "name": entry_name,
                            "namespace": ms.namespace,
                            "labels": {
                                naming.NAME_LABEL: ms.name,
                                naming.GROUP_NAME_LABEL: group,
                                naming.ROLE_LABEL: role.name,
                                naming.ROLE_ID_LABEL: role_id,
                            },
                            "ownerReferences": _copy(blocking),
                        },
                        "spec": {
                            "clusterIP": "None",
                            "publishNotReadyAddresses": True,
                            "selector": {
                                naming.GROUP_NAME_LABEL: group,
                                naming.ROLE_LABEL: role.name,
                                naming.ROLE_ID_LABEL: role_id,
                                naming.ENTRY_LABEL: "true",
                            },
                        },
                    }
                )
                for k in range(role.size):
                    pod_template = role.entry if k == 0 else role.worker
                    assert pod_template is not None
                    spec = _copy(pod_template.spec)
                    injected = [
                        {"name": "GROUP_SIZE", "value": str(role.size)},
                        {
                            "name": "ENTRY_ADDRESS",
                            "value": f"{entry_name}.{entry_name}.{ms.namespace}",
                        },
                        {"name": "WORKER_INDEX", "value": str(k)},
                    ]
                    for c in spec["containers"]:
                        c["env"] = [
                            e for e in c.get("env", []) if e["name"] not in naming.INJECTED_ENV
                        ] + _copy(injected)
                    spec["schedulerName"] = ms.scheduler_name
                    labels = {
                        naming.NAME_LABEL: ms.name,
                        naming.GROUP_NAME_LABEL: group,
                        naming.ROLE_LABEL: role.name,
                        naming.ROLE_ID_LABEL: role_id,
                        naming.REVISION_LABEL: ms.revision,
                        naming.ROLE_TEMPLATE_HASH_LABEL: role.template_hash,
                    }
                    if k == 0:
                        labels[naming.ENTRY_LABEL] = "true"
                        spec["hostname"] = entry_name
                        spec["subdomain"] = entry_name
                    labels.update(pod_template.labels)
                    pods.append(
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "metadata": {
                                "name": f"{group}-{role.name}-{r}-{k}",
                                "namespace": ms.namespace,
                                "labels": labels,
                                "annotations": {
                                    naming.PODGROUP_ANNOTATION: group,
                                    naming.TASK_SPEC_ANNOTATION: role_id,
                                },
                                "ownerReferences": _copy(blocking),
                            },
                            "spec": spec,
                        }
                    )
    return podgroups + services + pods


def best(runs: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def startup(runs: int) -> tuple[float, bool]:
    example = ROOT / "examples" / "prefill-decode.yaml"
    probe = (
        "import sys; from sync import cli; cli.main(['render', '-f', sys.argv[1]]);"
        " sys.stderr.write(str('kubernetes' in sys.modules))"
    )
    times, imported = [], False
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", probe, str(example)], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - start)
        imported = imported or done.stderr.strip() == "True"
    msctl = Path(sys.executable).parent / "msctl"
    if msctl.exists():
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                [str(msctl), "render", "-f", str(example)], capture_output=True, check=True
            )
            times.append(time.perf_counter() - start)
    return statistics.median(times), imported


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    templates = TemplateSet()
    start = time.perf_counter()
    ms = model.load(big_spec(), plugins=templates.plugins())
    load_time = time.perf_counter() - start
    renderer = Renderer(templates, ms, Settings())
    ours = render_modelserving(renderer)
    theirs = hand_built(ms)
    if ours != theirs:
        raise SystemExit("baseline and msctl disagree: the comparison would be meaningless")
    pods = sum(1 for o in ours if o["kind"] == "Pod")

    render_ours = best(args.runs, lambda: render_modelserving(renderer))
    render_base = best(args.runs, lambda: hand_built(ms))
    json_ours = best(args.runs, lambda: output.to_json(render_modelserving(renderer)))
    json_base = best(args.runs, lambda: output.to_json(hand_built(ms)))
    yaml_ours = best(max(2, args.runs // 2), lambda: output.to_yaml(render_modelserving(renderer)))
    yaml_base = best(max(2, args.runs // 2), lambda: output.to_yaml(hand_built(ms)))
    start_time, imported = startup(max(5, args.runs))
    deepcopy = best(args.runs, lambda: copy.deepcopy(theirs))

    rows = [
        ("objects", render_ours, render_base, 5.0),
        ("json", json_ours, json_base, 3.0),
        ("yaml", yaml_ours, yaml_base, 1.5),
    ]
    print(
        f"{pods} pods, {len(ours)} objects; load+validate {load_time * 1000:.0f} ms; "
        f"copy.deepcopy of all objects {deepcopy * 1000:.0f} ms (for scale)"
    )
    print(f"{'measure':8} {'msctl':>9} {'baseline':>9} {'ratio':>6} {'target':>7}")
    failed = False
    for name, ours_t, base_t, target in rows:
        ratio = ours_t / base_t
        failed |= ratio > target
        mark = "ok" if ratio <= target else "MISSED"
        times = f"{ours_t * 1000:7.0f}ms {base_t * 1000:7.0f}ms"
        print(f"{name:8} {times} {ratio:6.2f} {target:6.1f}x {mark}")
    ok = start_time <= 0.3 and not imported
    failed |= not ok
    print(
        f"startup  {start_time * 1000:7.0f}ms (median), kubernetes imported: {imported}; "
        f"target 300 ms {'ok' if ok else 'MISSED'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
