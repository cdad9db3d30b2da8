"""Settings past the reference: recovery backoff, restart budget, progress deadline.

They are annotations on the ModelServing under `msctl.dev/` (docs/behaviour.md#settings): a
reference cluster keeps annotations it does not know and ignores them, so a manifest keeps
its meaning there, while a new spec field would be pruned by its schema without a word.
Parsed and checked here, like any field: a bad value is a violation at its annotation path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from generator import naming
from generator.structural import Violation

# The progress deadline is opt-in (docs/behaviour.md#progress); `"default"` asks for
# Deployment's progressDeadlineSeconds default: long enough for a large image pull and a model
# load on a warm node, short enough that a stalled rollout shows within minutes.
DEFAULT_PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class Settings:
    backoff_base: int = 10  # seconds before the second recreation of one unit; 0: no backoff
    backoff_max: int = 600  # the cap the doubling stops at
    backoff_reset: int = 600  # ready this long: the unit's recreations are forgotten
    restart_limit: int | None = None  # recreations within the window before Failed; None: no limit
    restart_window: int = 3600
    progress_deadline: int = 0  # 0 (the default): never report a stalled rollout
    reset_token: str = ""  # msctl.dev/reset-failures: a new value clears Failed units

    def describe(self) -> str:
        """One line for people (`msctl plan`)."""
        backoff = (
            f"backoff {self.backoff_base}s doubling to {self.backoff_max}s"
            if self.backoff_base
            else "no backoff"
        )
        limit = (
            f"restart limit {self.restart_limit} in {self.restart_window}s"
            if self.restart_limit is not None
            else "no restart limit"
        )
        deadline = (
            f"progress deadline {self.progress_deadline}s"
            if self.progress_deadline
            else "no progress deadline"
        )
        return f"{backoff}, reset after {self.backoff_reset}s ready; {limit}; {deadline}"

    def to_json(self) -> dict[str, Any]:
        return {
            "backoffBaseSeconds": self.backoff_base,
            "backoffMaxSeconds": self.backoff_max,
            "backoffResetSeconds": self.backoff_reset,
            "restartLimit": self.restart_limit,
            "restartWindowSeconds": self.restart_window,
            "progressDeadlineSeconds": self.progress_deadline,
        }


# annotation -> (attribute, smallest allowed value)
_INTEGERS: dict[str, tuple[str, int]] = {
    naming.BACKOFF_BASE_ANNOTATION: ("backoff_base", 0),
    naming.BACKOFF_MAX_ANNOTATION: ("backoff_max", 0),
    naming.BACKOFF_RESET_ANNOTATION: ("backoff_reset", 1),
    naming.RESTART_LIMIT_ANNOTATION: ("restart_limit", 1),
    naming.RESTART_WINDOW_ANNOTATION: ("restart_window", 1),
    naming.PROGRESS_DEADLINE_ANNOTATION: ("progress_deadline", 0),
}
KNOWN = frozenset({*_INTEGERS, naming.RESET_FAILURES_ANNOTATION})
_LIMIT = 10**9  # about 31 years: larger values are typos


def _path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def _values(annotations: Mapping[str, Any]) -> Iterator[tuple[str, int] | Violation]:
    for key, value in annotations.items():
        if not key.startswith(naming.SETTINGS_PREFIX):
            continue
        if key not in KNOWN:
            known = ", ".join(sorted(KNOWN))
            yield Violation(_path(key), f"unknown msctl setting; known: {known}")
            continue
        if key not in _INTEGERS:
            continue
        attribute, low = _INTEGERS[key]
        if not isinstance(value, str):
            yield Violation(_path(key), f'annotation values are strings: quote it ("{value}")')
            continue
        text = value.strip()
        if attribute == "progress_deadline" and text == "default":
            yield attribute, DEFAULT_PROGRESS_DEADLINE
            continue
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= _LIMIT:
            unit = "a count" if attribute == "restart_limit" else "seconds"
            yield Violation(
                _path(key), f"{value!r} is not a whole number from {low} to {_LIMIT} ({unit})"
            )
            continue
        yield attribute, int(text)


def violations(doc: Any) -> list[Violation]:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return []
    found = [v for v in _values(annotations) if isinstance(v, Violation)]
    parsed = dict(v for v in _values(annotations) if not isinstance(v, Violation))
    base = parsed.get("backoff_base", Settings.backoff_base)
    if not found and parsed.get("backoff_max", max(base, Settings.backoff_max)) < base:
        found.append(
            Violation(
                _path(naming.BACKOFF_MAX_ANNOTATION),
                f"must be at least {naming.BACKOFF_BASE_ANNOTATION} ({base})",
            )
        )
    return found


def parse(annotations: Mapping[str, Any]) -> Settings:
    """The settings of a document `violations` accepted."""
    parsed: dict[str, Any] = dict(v for v in _values(annotations) if not isinstance(v, Violation))
    if "backoff_max" not in parsed and "backoff_base" in parsed:
        parsed["backoff_max"] = max(parsed["backoff_base"], Settings.backoff_max)
    token = annotations.get(naming.RESET_FAILURES_ANNOTATION)
    return Settings(**parsed, reset_token=token if isinstance(token, str) else "")
