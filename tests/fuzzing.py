"""Runs msctl in-process on fuzz mutants (tests/mutations.py) and judges each run: it must
end with an exit code of msctl's table (0-3 for these commands), never with an exception
escaping the CLI's error boundary (a traceback). Used by benchmarks/fuzz_cli.py (10,000
inputs, with timings) and tests/unit/test_fuzz.py (a few hundred).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sync.cli import main
from tests.mutations import Mutant, fuzz_mutant

EXPECTED_CODES = frozenset({0, 1, 2, 3})


@dataclass(frozen=True)
class Run:
    command: str
    code: int | None  # None: an exception escaped
    seconds: float
    trace: str = ""

    @property
    def ok(self) -> bool:
        return self.code in EXPECTED_CODES


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    pods: int
    runs: tuple[Run, ...]


def pods(doc: Any) -> int:
    """Pods the spec asks for, 0 if it is too broken to say."""
    try:
        spec = doc["spec"]
        per_group = sum(
            r["replicas"] * (1 + r["workerReplicas"]) for r in spec["template"]["roles"]
        )
        return int(spec["replicas"]) * int(per_group)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return 0


def text(mutant: Mutant) -> bytes:
    """The mutant as YAML, or JSON, or (1 in 20) YAML cut short or with stray bytes."""
    rng = random.Random(mutant.seed)
    roll = rng.random()
    if roll < 0.2:
        return json.dumps(mutant.doc, allow_nan=True).encode()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    data = yaml.dump(mutant.doc, Dumper=dumper, allow_unicode=rng.random() < 0.5).encode()
    if roll > 0.95:
        cut = rng.randrange(len(data) + 1)
        data = data[:cut] + rng.choice([b"", b"\xff\xfe", b"\x00", b": : [", b"\t- x"])
    return data


def run(args: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: int | None = main(args)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # any escape is what the fuzz looks for
        return Run(args[0], None, time.perf_counter() - started, traceback.format_exc())
    return Run(args[0], code, time.perf_counter() - started)


def fuzz(seed: int, folder: Path, render_max_pods: int) -> Outcome:
    """`msctl render -o json` on the mutant (which loads, validates and renders), or
    `msctl validate` when it asks for more than `render_max_pods` pods."""
    mutant = fuzz_mutant(seed)
    path = folder / "input.yaml"
    path.write_bytes(text(mutant))
    count = pods(mutant.doc)
    if count <= render_max_pods:
        return Outcome(mutant, count, (run(["render", "-f", str(path), "-o", "json"]),))
    return Outcome(mutant, count, (run(["validate", "-f", str(path)]),))
