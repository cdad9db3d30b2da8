"""Container resource requirements as the API server checks them (validateResourceRequirements
in k8s.io/kubernetes pkg/apis/core/validation/validation.go, names from pkg/apis/core/helper).

The API server defaults a missing request to its limit before validating, so only a request
that is given is compared with its limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import k8sformats as fmt
from generator.quantity import NANO, Quantity, QuantityError
from generator.structural import Violation

STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
HUGEPAGES_PREFIX = "hugepages-"
NATIVE_NAMESPACE = "kubernetes.io/"
QUOTA_PREFIX = "requests."


def _native(name: str) -> bool:
    """IsNativeResource: unprefixed, or in the *kubernetes.io/ namespace."""
    return "/" not in name or NATIVE_NAMESPACE in name


def _extended(name: str) -> bool:
    """IsExtendedResourceName."""
    if _native(name) or name.startswith(QUOTA_PREFIX):
        return False
    return fmt.qualified_name(QUOTA_PREFIX + name) is None


def _overcommit_allowed(name: str) -> bool:
    """IsOvercommitAllowed: native and not hugepages."""
    return _native(name) and not name.startswith(HUGEPAGES_PREFIX)


def name_problem(name: str) -> str | None:
    """validateContainerResourceName (with validateResourceName)."""
    problem = fmt.qualified_name(name)
    if problem:
        return problem
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith(HUGEPAGES_PREFIX):
            return (
                "must be a standard resource for containers (cpu, memory, ephemeral-storage, "
                "hugepages-<size>) or a fully qualified extended resource"
            )
    elif not _native(name) and not _extended(name):
        return "doesn't follow extended resource name standard"
    return None


def _amounts(
    requirements: dict[str, Any], key: str, path: str
) -> Iterator[Violation | tuple[str, Quantity]]:
    amounts = requirements.get(key)
    if not isinstance(amounts, dict):
        return
    for name, raw in amounts.items():
        if not isinstance(name, str) or isinstance(raw, bool) or not isinstance(raw, int | str):
            continue
        where = f'{path}.{key}["{name}"]'
        problem = name_problem(name)
        if problem:
            yield Violation(where, f"invalid resource name: {problem}")
            continue
        try:
            amount = Quantity.parse(raw)
        except QuantityError:
            continue  # the schema reports it
        if amount.nanos < 0:
            # ValidateNonnegativeQuantity
            yield Violation(where, f"must be greater than or equal to 0, got {raw}")
        elif _extended(name) and amount.nanos % NANO:
            # ValidateResourceQuantityValue: extended resources are whole numbers.
            yield Violation(where, f"must be an integer, got {raw}")
        else:
            yield name, amount


def resource_violations(requirements: dict[str, Any] | None, path: str) -> Iterator[Violation]:
    """validateResourceRequirements: names, quantities, and requests against limits."""
    if requirements is None:
        return
    limits: dict[str, Quantity] = {}
    for item in _amounts(requirements, "limits", path):
        if isinstance(item, Violation):
            yield item
        else:
            limits[item[0]] = item[1]
    requests: dict[str, Quantity] = {}
    for item in _amounts(requirements, "requests", path):
        if isinstance(item, Violation):
            yield item
            continue
        name, amount = item
        requests[name] = amount
        limit = limits.get(name)
        where = f'{path}.requests["{name}"]'
        if limit is None:
            if not _overcommit_allowed(name) and name not in _raw_names(requirements, "limits"):
                yield Violation(
                    where, f"{name} cannot be overcommitted: set limits[{name!r}] equal to it"
                )
        elif not _overcommit_allowed(name) and amount.nanos != limit.nanos:
            yield Violation(where, f"must be equal to the {name} limit of {limit}")
        elif amount.nanos > limit.nanos:
            yield Violation(where, f"must be less than or equal to the {name} limit of {limit}")
    names = set(limits) | set(requests)
    if any(n.startswith(HUGEPAGES_PREFIX) for n in names) and not names & {"cpu", "memory"}:
        yield Violation(path, "hugepages require a cpu or memory request or limit")


def _raw_names(requirements: dict[str, Any], key: str) -> set[str]:
    amounts = requirements.get(key)
    return set(amounts) if isinstance(amounts, dict) else set()
