"""Save-to-output latency of `msctl watch` for the 1P1D example (examples/prefill-decode.yaml).

A real `msctl watch -f <copy of the example> --output-dir <tmp>` subprocess; each save edits
the decode worker pod's image in the copy (in place, or as an editor's write-temp-then-rename),
and the latency is the time from just before the save to the moment the watch prints the change
line, which it does only after the output folder is written (the benchmark also checks the file
holds the new image). Saves are spaced apart so each is its own re-render.

  target: median <= 150 ms, p95 <= 300 ms over 50 saves

Usage: python benchmarks/watch_latency.py [--saves 50] [--save write|rename]
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "prefill-decode.yaml"
IMAGE = "vllm/vllm-openai:v0.13.0"
DECODE_POD = Path("default") / "qwen-pd" / "30-pod-qwen-pd-0-decode-0-1.yaml"
TIMEOUT_S = 10.0
GAP_S = 0.2  # between saves: well past watch's coalescing window


class Lines:
    """The subprocess's output, line by line, with a deadline on each wait."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.stream = proc.stdout
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.stream, selectors.EVENT_READ)
        self.buffer = b""

    def wait_for(self, pattern: str, timeout: float = TIMEOUT_S) -> str:
        deadline = time.perf_counter() + timeout
        regex = re.compile(pattern)
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                line = raw.decode()
                if regex.search(line):
                    return line
            left = deadline - time.perf_counter()
            if left <= 0 or not self.selector.select(left):
                raise TimeoutError(f"no line matching {pattern!r} within {timeout} s")
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                raise RuntimeError("msctl watch exited")
            self.buffer += chunk


def save(path: Path, text: str, mode: str) -> None:
    if mode == "write":
        path.write_text(text)
        return
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--save", choices=("write", "rename"), default="write")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="msctl-watch-bench-"))
    spec, out = work / "prefill-decode.yaml", work / "out"
    original = EXAMPLE.read_text()
    spec.write_text(original)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync", "watch", "-f", str(spec), "--output-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    latencies: list[float] = []
    reported: list[float] = []
    try:
        lines = Lines(proc)
        lines.wait_for(r"watching ")
        for n in range(1, options.saves + 1):
            image = f"vllm/vllm-openai:bench-{n}"
            # Only the decode worker pod's image: the last occurrence in the file.
            head, _, tail = original.rpartition(IMAGE)
            text = head + image + tail
            time.sleep(GAP_S)
            started = time.perf_counter()
            save(spec, text, options.save)
            line = lines.wait_for(r"qwen-pd: \d+ changed")
            latencies.append((time.perf_counter() - started) * 1000)
            took = re.search(r"\((\d+) ms\)$", line)
            reported.append(float(took.group(1)) if took else float("nan"))
            if image not in (out / DECODE_POD).read_text():
                raise RuntimeError(f"save {n}: the output does not hold {image}")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=TIMEOUT_S)
        shutil.rmtree(work, ignore_errors=True)

    median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(f"msctl watch, {EXAMPLE.relative_to(ROOT)}, {len(latencies)} saves ({options.save}):")
    print(
        f"  save-to-output latency: median {median:.0f} ms, p95 {p95:.0f} ms, "
        f"min {min(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )
    print(
        "  of which render + write (as watch reports it): "
        f"median {statistics.median(reported):.0f} ms"
    )
    print(
        f"  target: median <= 150 ms, p95 <= 300 ms -> "
        f"{'met' if median <= 150 and p95 <= 300 else 'NOT met'}; watch exit code {code}"
    )
    return 0 if median <= 150 and p95 <= 300 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
