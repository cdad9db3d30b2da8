"""Kubernetes time formats: RFC 3339 in UTC, to the second (`Time`) or microsecond (`MicroTime`).

Condition transition times, Event timestamps and the recovery mark on a failing pod are
`Time`; Lease renew and acquire times are `MicroTime`.
"""

from __future__ import annotations

from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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


def parse_any_timestamp(text: str) -> float | None:
    """A `Time` or a `MicroTime` back to seconds since the epoch; None when it is neither."""
    found = parse_timestamp(text)
    if found is not None:
        return found
    try:
        return datetime.strptime(text, MICRO_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
