"""Inputs: everything one plan is computed from, as plain values.

The shell (`sync.rendering`) gathers them: the spec, its rendered desired objects, the
revision history, the observed objects, the ModelServing as stored, the time, and what the
previous plan of the same ModelServing handed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.model import ModelServing
from sync.core.desired import Desired
from sync.core.history import History
from sync.core.observe import Observed
from sync.core.steps import Recall


@dataclass(frozen=True)
class Inputs:
    ms: ModelServing
    desired: Desired
    history: History
    observed: Observed
    live: Mapping[str, Any] | None  # the ModelServing as stored; None: not created yet
    now: float
    recall: Recall | None = None  # from the previous plan of this key; None: first look

    @property
    def status(self) -> Mapping[str, Any]:
        found: Mapping[str, Any] = (self.live or {}).get("status", {})
        return found
