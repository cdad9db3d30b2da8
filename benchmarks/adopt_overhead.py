"""What judging pods by content costs a no-op reconcile (docs/behaviour.md#adoption).

A simulated ModelServing of 100 ServingGroups (prefill + decode, 3 workers each: 800 pods),
settled; then the best of N no-op plans, with the content comparison as shipped (verdicts
reused through Recall) and, as the baseline in the same run, with the comparison replaced by
"always equal". Reported: both times and their ratio. No cluster needed.

Usage: python benchmarks/adopt_overhead.py [--groups N] [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.core import adopt  # noqa: E402
from sync.core import plan as planner  # noqa: E402
from tests.unit import specs  # noqa: E402
from tests.unit.simulator import Simulator  # noqa: E402


def best_noop(sim: Simulator, rounds: int) -> float:
    live = {**sim.doc, "status": sim.status}
    best = float("inf")
    for _ in range(rounds):
        inputs = sim.renderings().inputs(sim._observed(), live, sim.clock, sim.recall)
        start = time.perf_counter()
        result = planner.plan(inputs)
        best = min(best, time.perf_counter() - start)
        sim.recall = result.recall
        assert not result.writes, "not a no-op reconcile"
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    sim = Simulator(specs.pd(replicas=args.groups, workers=3))
    sim.settle(rounds=20)
    shipped = best_noop(sim, args.rounds)
    real = adopt.difference
    adopt.difference = lambda want, live: None  # the baseline: no comparison at all
    try:
        sim.recall = None  # nothing remembered from the shipped runs
        best_noop(sim, 1)
        baseline = best_noop(sim, args.rounds)
    finally:
        adopt.difference = real
    pods = len(sim.pods())
    print(f"{pods} pods, best of {args.rounds} no-op plans:")
    print(f"  content compared (verdicts reused): {shipped * 1000:7.1f} ms")
    print(f"  comparison stubbed out (baseline):  {baseline * 1000:7.1f} ms")
    print(f"  ratio: {shipped / baseline:.2f}")
    sim.recall = None
    first = best_noop(sim, 1)
    print(f"  a plan with nothing remembered (patches, verdicts): {first * 1000:.1f} ms")


if __name__ == "__main__":
    main()
