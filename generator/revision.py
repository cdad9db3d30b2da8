"""Revision and role-template hashes (docs/behaviour.md#revisions).

FNV-1 (not 1a), 32 bit, over the canonical JSON of the roles with the fields that must not
trigger a rollout removed; printed in decimal and mapped through Kubernetes' SafeEncodeString
alphabet. The same spec gives the same hash on every machine and Python version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# Role fields that scale or steer a rollout: changing them must not replace pods.
NON_REVISION_ROLE_FIELDS = ("replicas", "maxUnavailable", "partition")

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


def fnv1_32(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    return "".join(_ALPHABET[ord(ch) % len(_ALPHABET)] for ch in text)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def strip_role(role: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in role.items() if k not in NON_REVISION_ROLE_FIELDS}


def hash_value(value: Any) -> str:
    return safe_encode(str(fnv1_32(canonical_json(value))))


def revision_hash(roles: Iterable[Mapping[str, Any]]) -> str:
    """The ModelServing revision: hash of `spec.template.roles`, rollout-neutral fields removed."""
    return hash_value([strip_role(r) for r in roles])


def role_template_hash(role: Mapping[str, Any]) -> str:
    """The hash of one role, used by RoleRollingUpdate to find outdated role instances."""
    return hash_value(strip_role(role))
