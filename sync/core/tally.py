"""Tally: the record of a simulated rollout sorted into units, waves and budgets (pure).

Reads a `sync.core.simulate.Record` and the NEW spec, and returns the
`sync.core.replacements.Rollout` people and pictures read (docs/behaviour.md#offline-preview):
each unit (a ServingGroup under ServingGroupRollingUpdate, a role instance under
RoleRollingUpdate) with its template before and after and the times it went down and was
ready again; the waves, by the time their old pods were deleted; and for each budget how many
units were down over time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from generator import intstr, naming
from generator.model import ModelServing
from sync.core.replacements import Budget, Rollout, RolloutWave, Span, State, UnitKey
from sync.core.rollout import group_partition, role_partition
from sync.core.simulate import PodChange, Record


class _Reader:
    """Sorts pod labels into units and templates for one ModelServing and strategy."""

    def __init__(self, ms: ModelServing) -> None:
        self.ms = ms
        self.role_rolling = ms.rollout.role_rolling
        self.roles = {r.name: r for r in ms.template.roles}

    def key(self, labels: Mapping[str, str]) -> UnitKey | None:
        group = naming.parse_ordinal(labels.get(naming.GROUP_NAME_LABEL, ""))
        if group is None:
            return None
        if not self.role_rolling:
            return UnitKey(group[1])
        role_id = naming.parse_ordinal(labels.get(naming.ROLE_ID_LABEL, ""))
        return UnitKey(group[1], labels.get(naming.ROLE_LABEL, ""), role_id[1] if role_id else -1)

    def template(self, labels: Mapping[str, str]) -> str:
        label = naming.ROLE_TEMPLATE_HASH_LABEL if self.role_rolling else naming.REVISION_LABEL
        return labels.get(label, "")

    def templates(self, pods: Iterable[Mapping[str, str]]) -> dict[UnitKey, str]:
        seen: dict[UnitKey, Counter[str]] = {}
        for labels in pods:
            key = self.key(labels)
            if key is not None:
                seen.setdefault(key, Counter())[self.template(labels)] += 1
        return {k: min(c, key=lambda t: (-c[t], t)) for k, c in seen.items()}

    def target(self, key: UnitKey) -> str:
        if not self.role_rolling:
            return self.ms.revision
        role = self.roles.get(key.role)
        return role.template_hash if role is not None else ""

    def protected(self, key: UnitKey) -> bool:
        if not self.role_rolling:
            return key.group < group_partition(self.ms)
        role = self.roles.get(key.role)
        return role is not None and key.instance < role_partition(role)


def _times(changes: Sequence[PodChange], reader: _Reader, what: str) -> dict[UnitKey, list[float]]:
    out: dict[UnitKey, list[float]] = {}
    for change in changes:
        key = reader.key(change.labels)
        if change.what == what and key is not None:
            out.setdefault(key, []).append(change.at)
    return out


def tell(ms: ModelServing, record: Record, ready_after: float) -> Rollout:
    """The rollout `record` simulated for `ms` (the NEW spec), told unit by unit."""
    reader = _Reader(ms)
    before, after = reader.templates(record.initial), reader.templates(record.final)
    deleted = _times(record.changes, reader, "deleted")
    created = _times(record.changes, reader, "created")
    ready = _times(record.changes, reader, "ready")
    spans: list[Span] = []
    order = {r.name: n for n, r in enumerate(ms.template.roles)}
    keys = sorted(set(before) | set(after), key=lambda k: (k.group, order.get(k.role, -1), k))
    for key in keys:
        old, new = before.get(key, ""), after.get(key, "")
        state: State = "kept"
        start: float | None = None
        if not new:
            state, start = "removed", min(deleted.get(key, [record.end]))
        elif not old:
            state, start = "added", min(created.get(key, [record.start]))
        elif key in deleted:
            state, start = "replaced", min(deleted[key])
        done = [t for t in ready.get(key, ()) if start is not None and t >= start]
        spans.append(
            Span(
                key,
                key.label(ms.name),
                state,
                old,
                new,
                start,
                max(done) if done and state in ("replaced", "added") else None,
                outdated=state == "kept" and new != reader.target(key),
                protected=reader.protected(key),
            )
        )
    waves = _waves(spans, record.changes, reader)
    patched = {
        s.name for r in record.rounds for s in r.plan.steps if s.verb == "patch" and s.kind == "Pod"
    }
    return Rollout(
        ms=ms.name,
        strategy=ms.rollout.type,
        role_rolling=reader.role_rolling,
        ready_after=ready_after,
        start=record.start,
        end=record.end,
        spans=tuple(spans),
        waves=waves,
        budgets=_budgets(ms, spans, record.start),
        reconciles=record.reconciles,
        writes=record.writes,
        patched_pods=len(patched),
    )


def _waves(
    spans: Sequence[Span], changes: Sequence[PodChange], reader: _Reader
) -> tuple[RolloutWave, ...]:
    starts = sorted({s.start for s in spans if s.state == "replaced" and s.start is not None})
    waves: list[RolloutWave] = []
    for number, start in enumerate(starts, 1):
        members = [s for s in spans if s.state == "replaced" and s.start == start]
        keys = {s.key for s in members}
        reasons: list[str] = []
        for change in changes:
            ours = change.what == "deleted" and reader.key(change.labels) in keys
            if ours and change.at == start and change.reason not in reasons:
                reasons.append(change.reason)
        # Highest ordinal first, the order the planner picks them in.
        ordered = sorted(members, key=lambda s: s.key, reverse=True)
        waves.append(
            RolloutWave(
                number,
                start,
                max((s.ready or start) for s in members),
                tuple(s.label for s in ordered),
                tuple(reasons),
            )
        )
    return tuple(waves)


def _unavailable(spans: Sequence[Span], at: float) -> Counter[tuple[str, int]]:
    """Units down at `at`, by (role, group)."""
    down: Counter[tuple[str, int]] = Counter()
    for s in spans:
        begun = s.state in ("replaced", "added") and s.start is not None and s.start <= at
        if begun and (s.ready is None or at < s.ready):
            down[(s.key.role, s.key.group)] += 1
    return down


def _budgets(ms: ModelServing, spans: Sequence[Span], start: float) -> tuple[Budget, ...]:
    times = sorted(
        {start} | {t for s in spans for t in (s.start, s.ready) if t is not None and t >= start}
    )
    if not ms.rollout.role_rolling:
        limit = intstr.scaled(ms.rollout.max_unavailable, ms.replicas, round_up=False)
        points = tuple((t, sum(_unavailable(spans, t).values())) for t in times)
        return (Budget("groups", limit, points),)
    budgets: list[Budget] = []
    for role in ms.template.roles:
        role_limit = (
            None
            if role.max_unavailable is None
            else intstr.scaled(role.max_unavailable, role.replicas, round_up=False)
        )
        points = tuple(
            (
                t,
                max(
                    (n for (r, _), n in _unavailable(spans, t).items() if r == role.name), default=0
                ),
            )
            for t in times
        )
        label = f"{role.name} instances" + (" (per group)" if ms.replicas > 1 else "")
        budgets.append(Budget(label, role_limit, points))
    return tuple(budgets)
