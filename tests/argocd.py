"""Runs deploy/argocd/health.lua the way Argo CD does: the object as the global `obj`, in
Lua 5.1 (Argo CD's gopher-lua speaks 5.1), the result a table {status, message}."""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from typing import Any

import lupa.lua51 as lua

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "argocd" / "health.lua"
# Makes os.date("!*t") (the script's clock) read NOW instead of the wall clock.
CLOCK = """
local real_date = os.date
os.date = function(format, t)
  if t == nil and NOW ~= nil then return real_date(format, NOW) end
  return real_date(format, t)
end
"""


def epoch(rfc3339: str) -> int:
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def health(obj: dict[str, Any], now: int | None = None) -> tuple[str, str]:
    """(status, message) of the health check for `obj`, at `now` (default: the wall clock)."""
    runtime = lua.LuaRuntime(unpack_returned_tuples=True)
    runtime.execute(CLOCK)
    runtime.globals().NOW = now
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT.read_text())
    return str(result["status"]), str(result["message"])
