"""Replacements: a simulated rollout as people read it (pure values, their text and JSON).

Built by `sync.core.tally` from a `sync.core.simulate.Record`: which units (ServingGroups under
ServingGroupRollingUpdate, role instances under RoleRollingUpdate) were replaced, in which
waves, when each was ready again, and how many were unavailable at once against the budget
(docs/behaviour.md#offline-preview). The text and JSON of `msctl plan --from`, the line of
`msctl watch` and the timeline drawing all read this one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from generator import naming
from sync.core.timestamps import duration

State = Literal["replaced", "kept", "added", "removed"]


@dataclass(frozen=True, order=True)
class UnitKey:
    group: int
    role: str = ""  # "" and -1: the whole group (ServingGroupRollingUpdate)
    instance: int = -1

    def label(self, ms: str) -> str:
        group = naming.group_name(ms, self.group)
        return group if not self.role else f"{group}/{naming.role_id(self.role, self.instance)}"


@dataclass(frozen=True)
class Span:
    """One unit through the rollout: old until `start`, replacing until `ready`, then new."""

    key: UnitKey
    label: str
    state: State
    before: str  # its template (revision, or role template hash) before; "" when added
    after: str  # and after; "" when removed
    start: float | None  # replaced or removed: its old pods deleted; added: created
    ready: float | None  # replaced or added: every new pod ready
    outdated: bool  # kept at a template other than the spec's
    protected: bool  # below a partition


@dataclass(frozen=True)
class RolloutWave:
    number: int
    start: float
    ready: float
    units: tuple[str, ...]
    reasons: tuple[str, ...]  # the planner's reasons for the deletions


@dataclass(frozen=True)
class Budget:
    """How many units of one budget were down over time, and the most allowed."""

    label: str  # "groups", or "role prefill (per group)"
    limit: int | None  # None: no maxUnavailable, every outdated instance at once
    points: tuple[tuple[float, int], ...]  # (from this time, this many unavailable)

    @property
    def peak(self) -> int:
        return max((n for _, n in self.points), default=0)


@dataclass(frozen=True)
class Rollout:
    ms: str
    strategy: str
    role_rolling: bool
    ready_after: float
    start: float
    end: float
    spans: tuple[Span, ...]
    waves: tuple[RolloutWave, ...]
    budgets: tuple[Budget, ...]
    reconciles: int
    writes: int
    patched_pods: int

    @property
    def noun(self) -> str:
        return "role instance" if self.role_rolling else "group"

    def of(self, state: State) -> list[Span]:
        return [s for s in self.spans if s.state == state]

    def text(self) -> list[str]:
        """The simulated rollout, for the end of `msctl plan --from`."""
        lines = [
            f"simulated rollout ({self.strategy}), every pod ready "
            f"{duration(self.ready_after)} after it is created:"
        ]
        for wave in self.waves:
            lines.append(
                f"  wave {wave.number} at {duration(wave.start - self.start)}: replace "
                f"{', '.join(wave.units)}; ready at {duration(wave.ready - self.start)}"
            )
            lines.extend(f"      {reason}" for reason in wave.reasons)
        for spans, words in ((self.of("added"), "created"), (self.of("removed"), "removed")):
            if spans:
                lines.append(f"  {words}: {', '.join(s.label for s in spans)}")
        kept = [s for s in self.of("kept") if s.outdated]
        for protected, words in ((True, "kept by the partition"), (False, "stalled, not replaced")):
            left = [s.label for s in kept if s.protected == protected]
            if left:
                lines.append(f"  {words}: {', '.join(left)}")
        if self.waves:
            lines.extend(
                f"  budget: {b.label} unavailable at once: at most {b.peak}"
                + (
                    f" (maxUnavailable {b.limit})"
                    if b.limit is not None
                    else " (no maxUnavailable)"
                )
                for b in self.budgets
            )
        lines.append(
            f"  done at {duration(self.end - self.start)}: {self.summary()}; "
            f"{_count(self.reconciles, 'reconcile')}, {_count(self.writes, 'write')}"
        )
        return lines

    def summary(self) -> str:
        """One line: `rolls 4 groups in 2 waves`, or what happens instead."""
        replaced = self.of("replaced")
        parts: list[str] = []
        if replaced:
            groups = len({s.key.group for s in replaced})
            where = f" of {_count(groups, 'group')}" if self.role_rolling else ""
            parts.append(
                f"rolls {_count(len(replaced), self.noun)}{where} in "
                f"{_count(len(self.waves), 'wave')} (about {duration(self.end - self.start)} "
                f"at {duration(self.ready_after)} per pod)"
            )
        elif self.patched_pods:
            parts.append(
                f"no rollout: {_count(self.patched_pods, 'pod')} patched in place (labels and "
                "annotations only; pod spec changes reach pods only when they are replaced)"
            )
        else:
            parts.append("no rollout")
        for spans, verb in ((self.of("added"), "creates"), (self.of("removed"), "removes")):
            if spans:
                parts.append(f"{verb} {_count(len(spans), self.noun)}")
        kept = [s for s in self.of("kept") if s.outdated]
        if any(s.protected for s in kept):
            parts.append(f"{sum(s.protected for s in kept)} kept by the partition")
        if any(not s.protected for s in kept):
            parts.append(f"{sum(not s.protected for s in kept)} stalled (no budget)")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "unit": self.noun,
            "readyAfterSeconds": self.ready_after,
            "durationSeconds": self.end - self.start,
            "summary": self.summary(),
            "waves": [
                {
                    "wave": w.number,
                    "startSeconds": w.start - self.start,
                    "readySeconds": w.ready - self.start,
                    "replaced": list(w.units),
                    "reasons": list(w.reasons),
                }
                for w in self.waves
            ],
            "units": [
                {
                    "unit": s.label,
                    "state": s.state,
                    "before": s.before,
                    "after": s.after,
                    "startSeconds": None if s.start is None else s.start - self.start,
                    "readySeconds": None if s.ready is None else s.ready - self.start,
                    "outdated": s.outdated,
                    "protected": s.protected,
                }
                for s in self.spans
            ],
            "budgets": [
                {
                    "budget": b.label,
                    "maxUnavailable": b.limit,
                    "peak": b.peak,
                    "unavailable": [[t - self.start, n] for t, n in b.points],
                }
                for b in self.budgets
            ],
            "reconciles": self.reconciles,
            "writes": self.writes,
        }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
