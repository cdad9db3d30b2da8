"""Kubernetes time formats: RFC 3339 in UTC, to the second (`Time`) or microsecond (`MicroTime`).

Condition transition times, Event timestamps and the recovery mark on a failing pod are
`Time`; Lease renew and acquire times are `MicroTime`. Durations for people (`1m30s`), as
`msctl plan --ready-after` reads them and the offline preview prints them, are here too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def timestamp(now: float) -> str:
    """`now` (seconds since the epoch) as a Kubernetes `Time`."""
    return datetime.fromtimestamp(now, UTC).strftime(TIME_FORMAT)


def micro_timestamp(now: float) -> str:
    """`now` as a Kubernetes `MicroTime`."""
    return datetime.fromtimestamp(now, UTC).strftime(MICRO_TIME_FORMAT)


def parse_timestamp(text: str) -> float | None:
    """A `Time` back to seconds since the epoch; None when it is not one."""
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """`90s`, `2m`, `1m30s`, `1h` or plain seconds (`90`) as seconds; None when it is none."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def duration(seconds: float) -> str:
    """Seconds for people: `0s`, `45s`, `1m30s`, `3m`, `1h5m` (whole seconds, rounded)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def parse_any_timestamp(text: str) -> float | None:
    """A `Time` or a `MicroTime` back to seconds since the epoch; None when it is neither."""
    found = parse_timestamp(text)
    if found is not None:
        return found
    try:
        return datetime.strptime(text, MICRO_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
