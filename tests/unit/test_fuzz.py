"""A small CLI fuzz (benchmarks/fuzz_cli.py runs 10,000): mutated examples through msctl
in-process end with a typed exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.fuzzing import EXPECTED_CODES, fuzz

SEEDS = range(300)
RENDER_MAX_PODS = 200
# Far above what one input takes; catches the pathological (a hang, a billion-digit number),
# not the slow machine.
BUDGET_SECONDS = 10.0


def test_no_mutated_spec_makes_msctl_raise_or_hang(tmp_path: Path) -> None:
    failures = []
    codes = set()
    for seed in SEEDS:
        outcome = fuzz(seed, tmp_path, RENDER_MAX_PODS)
        for run in outcome.runs:
            codes.add(run.code)
            if not run.ok or run.seconds > BUDGET_SECONDS:
                failures.append(
                    f"{outcome.mutant}: exit {run.code} in {run.seconds:.1f} s\n{run.trace}"
                )
    assert not failures, "\n".join(failures[:5])
    assert {0, 2} <= codes <= EXPECTED_CODES  # some specs pass, some are refused
