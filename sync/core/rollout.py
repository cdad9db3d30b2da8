"""Rolling-update arithmetic (docs/behaviour.md#rollout): which outdated units to replace now.

Pure functions over small views of the observed state. ServingGroupRollingUpdate replaces
whole groups under a group budget; RoleRollingUpdate replaces role instances whose template
hash changed, under a per-role budget. Partitions protect by ordinal (`ordinal < P`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from generator import intstr
from generator.model import ModelServing, Role


@dataclass(frozen=True)
class Unit:
    """A ServingGroup or a role instance, as the rollout sees it."""

    ordinal: int
    updated: bool
    running: bool
    deleting: bool = False


@dataclass(frozen=True)
class Decision:
    delete: tuple[int, ...]  # ordinals to delete now (not already deleting)
    budget: int  # how many may be down for the update at this moment
    why: str


def partition_of(value: int | str | None, total: int) -> int:
    """How many of the lowest ordinals a partition protects (a percentage rounds up)."""
    return intstr.scaled(value, total, round_up=True) if value is not None else 0


def group_partition(ms: ModelServing) -> int:
    """Groups protected by `rolloutStrategy.rollingUpdateConfiguration.partition`."""
    return 0 if ms.rollout.role_rolling else partition_of(ms.rollout.partition, ms.replicas)


def role_partition(role: Role) -> int:
    """Instances of a role protected by its own partition (RoleRollingUpdate)."""
    return partition_of(role.partition, role.replicas)


def group_rollout(
    units: Sequence[Unit], replicas: int, max_unavailable: int | str, partition: int | str | None
) -> Decision:
    """ServingGroupRollingUpdate: unhealthy outdated groups first, then the highest ordinals."""
    protect = partition_of(partition, replicas)
    considered = [u for u in units if u.ordinal >= protect]
    outdated = [u for u in considered if not u.updated]
    if not outdated:
        return Decision((), 0, "no outdated group outside the partition")
    unavailable_new = sum(1 for u in considered if u.updated and not u.running)
    allowed = intstr.scaled(max_unavailable, replicas, round_up=False)
    budget = len(units) - (replicas - allowed) - unavailable_new
    why = (
        f"{len(units)} groups, at least {replicas - allowed} must stay available "
        f"(maxUnavailable {allowed}), {unavailable_new} updated group(s) not ready yet"
    )
    if budget <= 0:
        return Decision((), 0, why + ": waiting")
    order = sorted(outdated, key=lambda u: (not u.running, u.deleting, u.ordinal), reverse=True)
    # Already-deleting outdated groups are re-selected: they use the budget up, which is
    # what throttles the rollout while their replacements come up.
    order = [u for u in order if u.deleting] + [u for u in order if not u.deleting]
    chosen = order[:budget]
    return Decision(tuple(u.ordinal for u in chosen if not u.deleting), budget, why)


@dataclass(frozen=True)
class RoleBudget:
    replicas: int
    max_unavailable: int | str | None
    partition: int | str | None


def role_rollout(units: Sequence[Unit], budget: RoleBudget) -> Decision:
    """RoleRollingUpdate for one role of one group: not-running outdated first, then highest."""
    protect = partition_of(budget.partition, budget.replicas)
    outdated = [u for u in units if not u.updated and not u.deleting and u.ordinal >= protect]
    if not outdated:
        return Decision((), 0, "no outdated instance outside the partition")
    unavailable = sum(1 for u in units if u.deleting or (u.updated and not u.running))
    if budget.max_unavailable is None:
        allowed = len(outdated)
        why = "no maxUnavailable: every outdated instance at once"
    else:
        limit = intstr.scaled(budget.max_unavailable, budget.replicas, round_up=False)
        allowed = max(0, len(units) - max(0, budget.replicas - limit) - unavailable)
        why = (
            f"{len(units)} instances, at least {max(0, budget.replicas - limit)} must stay "
            f"available, {unavailable} unavailable for the update"
        )
    order = sorted(outdated, key=lambda u: (u.running, -u.ordinal))
    return Decision(tuple(u.ordinal for u in order[:allowed]), allowed, why)


def waves(
    units: Sequence[Unit], replicas: int, max_unavailable: int | str, partition: int | str | None
) -> list[tuple[Decision, tuple[int, ...]]]:
    """The whole group rollout as waves, assuming each wave's replacements become ready."""
    state = {u.ordinal: u for u in units}
    out: list[tuple[Decision, tuple[int, ...]]] = []
    while True:
        decision = group_rollout(list(state.values()), replicas, max_unavailable, partition)
        deleting = tuple(u.ordinal for u in state.values() if u.deleting and not u.updated)
        wave = tuple(sorted(set(decision.delete) | set(deleting), reverse=True))
        if not wave:
            return out
        out.append((decision, wave))
        for ordinal in wave:
            state[ordinal] = Unit(ordinal, updated=True, running=True)
