"""Kubernetes resource quantities: parse, add, and print in canonical form.

Ported behaviour of `k8s.io/apimachinery/pkg/api/resource.Quantity`, enough for summing pod
requests into a PodGroup's `minResources` exactly as the API server would print them:
values are exact (integer nano-units, rounded up below 1n), a sum keeps the format (binary SI,
decimal SI, decimal exponent) of its first non-zero term, and printing picks the largest suffix
that loses no precision ("1.5Gi" -> "1536Mi", "0.1" -> "100m").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

NANO = 10**9
MAX_NANOS = (2**63 - 1) * NANO
_MAX_POWER = 40  # 10**40 nanos is far above MAX_NANOS


class Format(Enum):
    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}
_SYNTAX = re.compile(
    r"^(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


@dataclass(frozen=True)
class Quantity:
    nanos: int
    format: Format

    @classmethod
    def parse(cls, value: str | int) -> Quantity:
        if isinstance(value, bool):
            raise QuantityError(f"quantities must be numbers or strings, not {value!r}")
        if isinstance(value, int):
            return cls(value * NANO, Format.DECIMAL_SI)
        match = _SYNTAX.match(value.strip())
        if match is None or not (match["int"] or match["frac"]):
            raise QuantityError(
                f"{value!r} is not a quantity (expected a number with an optional suffix "
                "such as 500m, 2, 1.5Gi, 1e3)"
            )
        digits = (match["int"] or "") + (match["frac"] or "")
        scale = -len(match["frac"] or "")
        suffix = match["suffix"] or ""
        mantissa = int(digits or "0")
        if suffix in _BINARY:
            fmt = Format.BINARY_SI
            numerator, denominator = mantissa * 1024 ** _BINARY[suffix] * NANO, 10**-scale
        else:
            if suffix[:1] in ("e", "E") and len(suffix) > 1:
                fmt, exponent = Format.DECIMAL_EXPONENT, int(suffix[1:])
            else:
                fmt, exponent = Format.DECIMAL_SI, _DECIMAL[suffix]
            power = scale + exponent + 9
            if not mantissa:
                numerator, denominator = 0, 1
            elif power > _MAX_POWER:
                # Far beyond 2^63-1, where the API server caps quantities: capped here too,
                # which keeps "1e999999999" from building a billion-digit number.
                numerator, denominator = MAX_NANOS, 1
            elif power < -(len(digits) + _MAX_POWER):
                numerator, denominator = 1, 1  # below 1n: rounds up to 1n, as the API does
            elif power >= 0:
                numerator, denominator = mantissa * 10**power, 1
            else:
                numerator, denominator = mantissa, 10**-power
        nanos = -(-numerator // denominator)  # precision below 1n rounds up, as the API does
        if match["sign"] == "-":
            nanos = -nanos
        return cls(nanos, fmt)

    def __add__(self, other: Quantity) -> Quantity:
        fmt = other.format if self.nanos == 0 else self.format
        return Quantity(self.nanos + other.nanos, fmt)

    def __mul__(self, times: int) -> Quantity:
        return Quantity(self.nanos * times, self.format)

    def __str__(self) -> str:
        if self.nanos == 0:
            return "0"
        fmt = self.format
        if fmt is Format.BINARY_SI and (abs(self.nanos) < 1024 * NANO or self.nanos % NANO != 0):
            fmt = Format.DECIMAL_SI
        if fmt is Format.BINARY_SI:
            value, exponent = self.nanos // NANO, 0
            while value % 1024 == 0 and exponent < 6:
                value //= 1024
                exponent += 1
            return f"{value}{_BINARY_BY_EXP.get(exponent, '')}"
        mantissa, exponent = self.nanos, -9
        while mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        shift = exponent % 3
        mantissa *= 10**shift
        exponent -= shift
        if fmt is Format.DECIMAL_EXPONENT:
            return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
        while exponent > 18:
            mantissa *= 1000
            exponent -= 3
        return f"{mantissa}{_DECIMAL_BY_EXP[exponent]}"


def sum_requests(terms: Sequence[tuple[Mapping[str, str | int], int]]) -> dict[str, str]:
    """Sum `resources.requests` maps, each taken `times` times, in order; canonical strings out."""
    totals: dict[str, Quantity] = {}
    for requests, times in terms:
        if times == 0:
            continue
        for name, raw in requests.items():
            amount = Quantity.parse(raw) * times
            totals[name] = totals[name] + amount if name in totals else amount
    return {name: str(q) for name, q in totals.items()}
