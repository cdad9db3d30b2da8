"""How one reconcile ended, shared by the controller (which decides it) and the metrics (which
count it) without either importing the other."""

from __future__ import annotations

from typing import Literal, get_args

ReconcileOutcome = Literal["success", "requeue", "error"]
RECONCILE_OUTCOMES: tuple[ReconcileOutcome, ...] = get_args(ReconcileOutcome)
