"""CLI fuzz: mutated examples through msctl in-process, judged for tracebacks and time.

Each seed makes one mutant of a bundled example (tests/mutations.py: pod-template changes,
fields set to odd values or deleted, list entries repeated, counts scaled up to 10,000 pods),
written as YAML or JSON (1 in 20 cut short or with stray bytes). Specs of at most
--render-max-pods pods go through `msctl render -o json` (load, validate, render, serialise);
bigger ones through `msctl validate` (load and every rule, all pods counted). Every run must
end with exit code 0-3 and no exception escaping the CLI (a traceback), within --budget
seconds. Reports exit codes, the slowest inputs and the figures; exits 1 on any failure.

Usage: python benchmarks/fuzz_cli.py [--count 10000] [--start 0] [--budget 2.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fuzzing

from tests.fuzzing import Outcome, fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per input")
    parser.add_argument("--render-max-pods", type=int, default=200)
    args = parser.parse_args()

    codes: Counter[tuple[str, int | None]] = Counter()
    failures: list[str] = []
    slowest: list[tuple[float, int, int, str]] = []
    largest = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.start, args.start + args.count):
            outcome: Outcome = fuzz(seed, Path(folder), args.render_max_pods)
            if all(run.code == 0 for run in outcome.runs):
                largest = max(largest, outcome.pods)
            for run in outcome.runs:
                codes[(run.command, run.code)] += 1
                slowest.append((run.seconds, seed, outcome.pods, run.command))
                if not run.ok:
                    failures.append(f"{outcome.mutant}: {run.command} exit {run.code}\n{run.trace}")
                elif run.seconds > args.budget:
                    failures.append(
                        f"{outcome.mutant}: {run.command} took {run.seconds:.2f} s "
                        f"({outcome.pods} pods)"
                    )
            slowest = sorted(slowest, reverse=True)[:5]
    elapsed = time.perf_counter() - started

    print(
        f"{args.count} inputs (seeds {args.start}-{args.start + args.count - 1}) in {elapsed:.0f} s"
    )
    for (command, code), n in sorted(codes.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  msctl {command}: exit {code if code is not None else 'TRACEBACK'}  x{n}")
    tracebacks = sum(n for (_, code), n in codes.items() if code is None)
    print(f"tracebacks: {tracebacks}; largest spec accepted: {largest} pods")
    print("slowest inputs:")
    for seconds, seed, count, command in slowest:
        print(f"  {seconds:.3f} s  seed {seed}  {count} pods  msctl {command}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for failure in failures[:20]:
        print("FAIL", failure)
    print(f"failures: {len(failures)} (budget {args.budget} s per input)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
