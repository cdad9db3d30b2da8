"""Sharding's pure parts (sync/shards.py): the consistent hash and each replica's share."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sync.leader import LeaseRecord
from sync.shards import alive, fair_share, group_value, shard_of

KEYS = [f"ns-{i % 7}/ms-{i}" for i in range(3000)]


def test_a_key_always_lands_on_the_same_shard_whatever_else_exists() -> None:
    first = {k: shard_of(k, 5) for k in KEYS}
    assert {k: shard_of(k, 5) for k in reversed(KEYS)} == first
    assert set(first.values()) == set(range(5))


@pytest.mark.parametrize("shards", [1, 2, 3, 8, 16])
def test_keys_spread_evenly_over_the_shards(shards: int) -> None:
    counts = Counter(shard_of(k, shards) for k in KEYS)
    assert set(counts) == set(range(shards))
    even = len(KEYS) / shards
    assert all(abs(n - even) < 0.15 * even + 10 for n in counts.values()), counts


def test_one_more_shard_moves_only_the_keys_it_takes() -> None:
    """Consistent: going from 4 to 5 shards moves about a fifth of the keys, all to shard 4."""
    moved = [k for k in KEYS if shard_of(k, 4) != shard_of(k, 5)]
    assert all(shard_of(k, 5) == 4 for k in moved)
    assert 0.15 < len(moved) / len(KEYS) < 0.25


@pytest.mark.parametrize(
    ("shards", "members", "share"),
    [(3, 1, 3), (3, 2, 2), (3, 3, 1), (3, 4, 1), (10, 3, 4), (1, 0, 1)],
)
def test_each_replica_holds_at_most_its_share(shards: int, members: int, share: int) -> None:
    assert fair_share(shards, members) == share


@pytest.mark.parametrize(
    ("record", "now", "expected"),
    [
        (LeaseRecord("a", 5, 100.0, 100.0), 104.0, True),
        (LeaseRecord("a", 5, 100.0, 100.0), 105.0, False),
        (LeaseRecord("", 5, 100.0, 100.0), 101.0, False),
        (LeaseRecord("a", 5, None, None), 100.0, False),
    ],
    ids=["renewed within its duration", "expired", "released", "never renewed"],
)
def test_a_member_is_alive_while_its_lease_is_renewed(
    record: LeaseRecord, now: float, expected: bool
) -> None:
    assert alive(record, now) is expected


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "name",
    ["msctl-sync", "a" * 63, "msctl-sync-" + "t" * 52 + "-", "msctl-sync-" + "n" * 63, "x" * 253],
)
def test_the_group_label_value_is_a_valid_label_value_for_any_lease_name(name: str) -> None:
    value = group_value(name)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert (value == name) == (len(name) <= 63)


def test_long_lease_names_that_share_a_start_label_different_groups() -> None:
    a, b = "msctl-sync-" + "n" * 60 + "-a", "msctl-sync-" + "n" * 60 + "-b"
    assert group_value(a) != group_value(b)
