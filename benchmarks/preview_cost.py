"""Offline preview benchmark: `msctl plan --from` (the whole rollout simulated with the daemon's
planner) against one `msctl render` of the same NEW spec, in the same run.

The rollout is an image change of a ModelServing of G groups x 2 roles x 2 instances x (1 entry
+ 3 workers), replaced 25% at a time (4 waves). The preview renders OLD once, plans every
reconcile of the rollout and renders each pod it creates, so its cost is a few renders plus
planning; `msctl watch` pays it after each save that changes pods. Reported as the ratio to
the plain render, best of several runs.

Usage: python benchmarks/preview_cost.py [--runs N] [--groups G ...]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

from generator import model
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.sources import ServingSource
from generator.templating import TemplateSet
from sync.offline import play

TEMPLATES = TemplateSet()


def spec(groups: int, image: str) -> dict[str, Any]:
    def pod(name: str) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": name, "image": image}]}}

    roles = [
        {
            "name": name,
            "replicas": 2,
            "workerReplicas": 3,
            "entryTemplate": pod("engine"),
            "workerTemplate": pod("engine"),
        }
        for name in ("prefill", "decode")
    ]
    return {
        "apiVersion": "workload.serving.volcano.sh/v1alpha1",
        "kind": "ModelServing",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": groups,
            "rolloutStrategy": {
                "type": "ServingGroupRollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": "25%"},
            },
            "template": {"roles": roles},
        },
    }


def best(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--groups", type=int, nargs="+", default=[4, 16, 64])
    args = parser.parse_args()
    print(f"{'groups':>6} {'pods':>6} {'render':>9} {'preview':>9} {'ratio':>6}  rollout")
    for groups in args.groups:
        old_doc, new_doc = spec(groups, "vllm:1"), spec(groups, "vllm:2")
        old = ServingSource(model.load(copy.deepcopy(old_doc)), TEMPLATES, Settings())
        new = ServingSource(model.load(copy.deepcopy(new_doc)), TEMPLATES, Settings())

        def render(ms: model.ModelServing = new.ms) -> object:
            return render_modelserving(Renderer(TEMPLATES, ms, Settings()))

        def preview(old: ServingSource = old, new: ServingSource = new) -> object:
            return play(old, new)

        base = best(args.runs, render)
        cost = best(args.runs, preview)
        summary = play(old, new)[2].summary()
        pods = groups * 2 * 2 * 4
        print(
            f"{groups:>6} {pods:>6} {base * 1000:>7.0f}ms {cost * 1000:>7.0f}ms "
            f"{cost / base:>5.1f}x  {summary}"
        )


if __name__ == "__main__":
    main()
