"""Churn: the safety net against reconcile loops that write without converging.

Pure. Whatever the cause (a bug, another controller or person reverting what the daemon
writes, an admission webhook that changes objects back), the symptom is the same: the same
write made again and again. Each plan's writes are remembered for a short window; when one
write (the same verb on the same object, with the same patch) comes back `REPEATS` times in
that window, the ModelServing is backed off exponentially, from `BASE_DELAY` to `MAX_DELAY`,
and its `Stalled` condition names the writes (docs/behaviour.md#churn). The back-off ends
once a plan makes no object writes and the window holds no repeated write.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # steps.py keeps a Churn in every plan's Recall
    from sync.core.steps import Step

WINDOW_SECONDS = 30.0
REPEATS = 5
BASE_DELAY = 1.0
MAX_DELAY = 300.0
OBJECT_VERBS = frozenset({"create", "patch", "delete"})


@dataclass(frozen=True)
class Churn:
    writes: tuple[tuple[float, str], ...] = ()  # (when, what) of recent object writes
    strikes: int = 0  # loops found in a row, without converging in between
    cause: str = ""  # the repeated writes, for the condition and the Event
    until: float = 0.0  # no reconcile before this time

    @property
    def looping(self) -> bool:
        return self.strikes > 0

    def delay(self) -> float:
        return min(BASE_DELAY * 2.0 ** max(self.strikes - 1, 0), MAX_DELAY)


def signature(step: Step) -> str:
    """What makes two writes the same write: verb, object and, for a patch, its changes
    (the guard ops name a resourceVersion, which differs every time)."""
    what = f"{step.verb} {step.kind} {step.name}"
    changes = [dict(op) for op in step.ops if op.get("op") != "test"]
    changes = [op for op in changes if op.get("path") != "/metadata/resourceVersion"]
    return what + (" " + json.dumps(changes, sort_keys=True) if changes else "")


def record(churn: Churn, steps: Sequence[Step], now: float) -> Churn:
    """`churn` after a plan with `steps` made at `now`."""
    made = [signature(s) for s in steps if s.verb in OBJECT_VERBS]
    recent = tuple(w for w in churn.writes if now - w[0] < WINDOW_SECONDS)
    writes = recent + tuple((now, sig) for sig in made)
    counts = Counter(sig for _, sig in writes)
    repeated = sorted(sig for sig, n in counts.items() if n >= REPEATS)
    if not made and not repeated:
        return Churn(writes)  # converged, and nothing repeats: the net lets go
    if not made or not repeated:
        # A plan between two undoings writes nothing: the writes stay remembered, so the
        # next undoing still counts.
        return Churn(writes, churn.strikes, churn.cause, churn.until)
    strikes = churn.strikes + 1
    objects = sorted({" ".join(sig.split(" ", 3)[:3]) for sig in repeated})
    shown = ", ".join(objects[:5]) + (f" and {len(objects) - 5} more" if len(objects) > 5 else "")
    cause = (
        f"the same writes keep coming back ({shown}: each {REPEATS} or more times in "
        f"{WINDOW_SECONDS:.0f}s); another writer may be undoing them"
    )
    looped = Churn(writes, strikes, cause, 0.0)
    return Churn(writes, strikes, cause, now + looped.delay())
