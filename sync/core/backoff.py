"""Backoff and the restart budget: when a failed unit may be recreated again (pure).

docs/behaviour.md#backoff. A unit is what `spec.recoveryPolicy` recreates: a ServingGroup
(ServingGroupRecreate) or a role instance (RoleRecreate, and None, whose pod replacements
count against their instance). Its recreations are kept in `status.recovery.units` of the
ModelServing: a recreated pod is a new object and carries nothing over, while the status is
read back by the next plan, whichever daemon makes it. An entry exists only for a unit that
failed recently; it goes once the unit has stayed ready for the reset time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from generator.settings import Settings
from sync.core.timestamps import micro_timestamp, parse_any_timestamp, timestamp

UnitKey = tuple[int, str]  # (group ordinal, role id; "" for a whole group)
Action = Literal["recreate", "wait", "failed", "exhausted"]
BACKING_OFF, RECOVERING, FAILED = "BackingOff", "Recovering", "Failed"


def delay(settings: Settings, recreations: int) -> float:
    """Seconds between recreation number `recreations` and the next one: none before the
    first, then base, doubling, up to the cap."""
    if recreations <= 0 or settings.backoff_base <= 0:
        return 0.0
    return float(min(settings.backoff_max, settings.backoff_base * 2 ** min(recreations - 1, 40)))


def _time(entry: Mapping[str, Any], key: str) -> float | None:
    raw = entry.get(key)
    return parse_any_timestamp(raw) if isinstance(raw, str) else None


@dataclass(frozen=True)
class Decision:
    action: Action
    wait: float = 0.0
    recreations: int = 0  # of the unit, this one included ("recreate")
    new: bool = False  # a failure not recorded before: say so (Event, evidence)


class Ledger:
    """The units of one ModelServing that failed recently, as read from its status and
    changed by one plan. `entries()` is what the status write carries."""

    def __init__(
        self,
        previous: Mapping[str, Any],
        settings: Settings,
        generation: int,
        now: float,
    ) -> None:
        self.settings = settings
        self.generation = generation
        self.now = now
        recovery = previous.get("recovery") or {}
        self.reset = str(recovery.get("reset") or "")
        self.units: dict[UnitKey, dict[str, Any]] = {}
        self.cleared: list[UnitKey] = []  # Failed units the spec change or the reset released
        resetting = bool(settings.reset_token) and settings.reset_token != self.reset
        if resetting:
            self.reset = settings.reset_token
        for raw in recovery.get("units", ()):
            entry = dict(raw)
            key = (int(entry.get("group", 0)), str(entry.get("roleId", "")))
            stale = entry.get("generation") != generation
            if entry.get("state") == FAILED and (resetting or stale):
                self.cleared.append(key)
                continue  # released: the unit starts a new record
            self.units[key] = entry

    # --- the decision on a failed unit

    def _recent(self, entry: Mapping[str, Any]) -> list[str]:
        if self.settings.restart_limit is None:
            return []
        since = self.now - self.settings.restart_window
        times = [t for t in entry.get("recent", ()) if (parse_any_timestamp(t) or 0) > since]
        return times[-self.settings.restart_limit :]

    def decide(self, key: UnitKey, pod: str, uid: str, created: float | None = None) -> Decision:
        """What to do about unit `key`, whose pod `pod` (UID `uid`, created at `created`) is
        past its grace."""
        entry = self.units.get(key)
        if entry is not None and entry.get("state") == FAILED:
            return Decision("failed")
        if entry is not None and entry.get("state") == BACKING_OFF:
            due = _time(entry, "nextRecreation") or self.now
            if due > self.now:
                return Decision("wait", due - self.now)
            return self._recreate(key, entry, pod, uid, new=entry.get("podUID") != uid)
        done = int(entry.get("recreations", 0)) if entry is not None else 0
        if entry is not None and (entry.get("podUID") == uid or self._older(entry, created)):
            # recreated already (a cache behind the deletion): delete again, count nothing
            return Decision("recreate", recreations=done)
        entry = dict(entry or {"group": key[0]})
        if key[1]:
            entry["roleId"] = key[1]
        entry.update(pod=pod, podUID=uid, generation=self.generation)
        entry.pop("readySince", None)
        limit = self.settings.restart_limit
        if limit is not None and len(self._recent(entry)) >= limit:
            entry.update(state=FAILED, failedAt=timestamp(self.now))
            for spent in ("nextRecreation", "recent", "podUID", "readySince", "lastRecreation"):
                entry.pop(spent, None)  # a Failed unit waits for people: keep it short
            self.units[key] = entry
            return Decision("exhausted", recreations=done, new=True)
        last = _time(entry, "lastRecreation")
        due = self.now if last is None else max(self.now, last + delay(self.settings, done))
        if due > self.now:
            entry.update(state=BACKING_OFF, nextRecreation=micro_timestamp(due))
            self.units[key] = entry
            return Decision("wait", due - self.now, recreations=done, new=True)
        return self._recreate(key, entry, pod, uid, new=True)

    @staticmethod
    def _older(entry: Mapping[str, Any], created: float | None) -> bool:
        """A pod made a second or more before the unit's last recreation belongs to the
        incarnation that recreation removed (creation times are whole seconds)."""
        last = _time(entry, "lastRecreation")
        return created is not None and last is not None and created + 1 <= last

    def _recreate(
        self, key: UnitKey, entry: dict[str, Any], pod: str, uid: str, *, new: bool
    ) -> Decision:
        done = int(entry.get("recreations", 0)) + 1
        entry = {**entry, "pod": pod, "podUID": uid, "state": RECOVERING, "recreations": done}
        entry["lastRecreation"] = micro_timestamp(self.now)
        entry.pop("nextRecreation", None)
        if self.settings.restart_limit is not None:
            entry["recent"] = [*self._recent(entry), micro_timestamp(self.now)][
                -self.settings.restart_limit :
            ]
        self.units[key] = entry
        return Decision("recreate", recreations=done, new=new)

    # --- forgetting

    def observe(
        self, ready: Mapping[UnitKey, bool], wanted: Callable[[UnitKey], bool]
    ) -> float | None:
        """Track how long each recovering unit has been ready and forget those ready for the
        reset time, or no longer in the spec (scaled away); returns the seconds until the
        next one is due, if any."""
        wait: float | None = None
        for key in list(self.units):
            entry = self.units[key]
            if not wanted(key):
                del self.units[key]
                continue
            if entry.get("state") == BACKING_OFF and ready.get(key, False):
                # recovered by itself while waiting (a crash loop that ended): nothing to redo
                entry["state"] = RECOVERING
                entry.pop("nextRecreation", None)
            if entry.get("state") != RECOVERING:
                continue
            if not ready.get(key, False):
                entry.pop("readySince", None)
                continue
            since = _time(entry, "readySince")
            if since is None:
                since = self.now
                entry["readySince"] = timestamp(self.now)
            left = since + self.settings.backoff_reset - self.now
            if left <= 0:
                del self.units[key]
            else:
                wait = left if wait is None else min(wait, left)
        return wait

    # --- reading

    def state(self, key: UnitKey) -> str:
        return str(self.units.get(key, {}).get("state", ""))

    def failed(self) -> list[dict[str, Any]]:
        return [self.units[k] for k in sorted(self.units) if self.units[k].get("state") == FAILED]

    def entries(self) -> list[dict[str, Any]]:
        return [self.units[k] for k in sorted(self.units)]

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.units:
            out["units"] = self.entries()
        if self.reset:
            out["reset"] = self.reset
        return out


def describe(entry: Mapping[str, Any]) -> str:
    if entry.get("roleId"):
        return f"role instance {entry['roleId']} of ServingGroup {entry['group']}"
    return f"ServingGroup {entry['group']}"
