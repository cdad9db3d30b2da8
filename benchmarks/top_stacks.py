"""The top functions of a py-spy profile (collapsed stacks, `py-spy record --format raw`).

Leaves that wait for I/O, a lock or a queue are left out: what remains is where the
daemon spends CPU. Prints, as a share of those samples, the functions where time is spent
themselves (self) and the functions under which it is spent (inclusive, each function
counted once per sample). Written by `scale_bench.py --profile DIR`.

Usage: python benchmarks/top_stacks.py DIR/daemon-500.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# Leaves where a thread waits (GIL released): not CPU. py-spy's own idle detection misses
# these when it samples without pausing the process (--nonblocking).
WAITING = re.compile(
    r"^(SSLSocket\.(read|recv_into|send|sendall|do_handshake)|Condition\.wait|_worker|"
    r"poll_wait_for_socket|_PollLikeSelector\.select|Event\.wait|Thread\.join|sleep|"
    r"socket\.|create_connection|.*\.acquire) "
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame(text: str) -> str:
    """`func (path/to/file.py:12)` as `func (file.py)`: one entry per function."""
    found = FRAME.match(text.strip())
    if found is None:
        return text.strip()
    return f"{found['func']} ({'/'.join(Path(found['file']).parts[-2:])})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        if WAITING.match(frames[-1]) or frames[-1].startswith("poll_wait_for_socket"):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            under[name] += n
    print(f"{total} samples")
    for title, counts in (("self", own), ("inclusive", under)):
        print(f"\ntop {args.top} by {title} time:")
        for name, n in counts.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
