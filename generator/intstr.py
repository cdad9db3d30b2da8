"""Int-or-percent values (`maxUnavailable: 2` or `"25%"`), resolved like Kubernetes' intstr."""

from __future__ import annotations

import re

_PERCENT = re.compile(r"^([0-9]+)%$")


class IntOrPercentError(ValueError):
    """The value is neither a non-negative integer nor a percent between 0% and 100%."""


def check(value: int | str) -> None:
    if isinstance(value, bool):
        raise IntOrPercentError('must be an integer or a percent such as "25%"')
    if isinstance(value, int):
        if value < 0:
            raise IntOrPercentError(f"must not be negative, got {value}")
        return
    match = _PERCENT.match(value)
    if match is None:
        raise IntOrPercentError(f'"{value}" is neither an integer nor a percent such as "25%"')
    if int(match.group(1)) > 100:
        raise IntOrPercentError(f'"{value}" is more than 100%')


def scaled(value: int | str, total: int, *, round_up: bool) -> int:
    """An absolute value, or `total * percent / 100` rounded down (or up)."""
    check(value)
    if isinstance(value, int):
        return value
    scaled_up = total * int(value[:-1])
    return -(-scaled_up // 100) if round_up else scaled_up // 100
