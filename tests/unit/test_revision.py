import copy

import pytest

from generator.revision import (
    fnv1_32,
    revision_hash,
    role_template_hash,
    safe_encode,
)
from tests.unit import specs


@pytest.mark.parametrize(
    ("data", "value"),
    [(b"", 0x811C9DC5), (b"a", 0x050C5D7E), (b"foobar", 0x31F0B262)],
    ids=repr,
)
def test_fnv1_32_matches_the_published_test_vectors(data: bytes, value: int) -> None:
    assert fnv1_32(data) == value


def test_safe_encode_maps_digits_like_kubernetes() -> None:
    assert safe_encode("0123456789") == "456789bcdf"


def test_revision_hash_has_stable_golden_values() -> None:
    # FNV-1/32 of '[{"name":"a"}]' is 603132183, of '{"name":"a"}' 3868783339.
    assert revision_hash([{"name": "a", "replicas": 3}]) == "b475765d7"
    assert role_template_hash({"name": "a", "partition": 1}) == "7dbdcd777f"


@pytest.mark.parametrize("field", ["replicas", "maxUnavailable", "partition"])
def test_rollout_neutral_role_fields_do_not_change_the_hash(field: str) -> None:
    roles = specs.pd()["spec"]["template"]["roles"]
    changed = copy.deepcopy(roles)
    changed[0][field] = 7
    assert revision_hash(changed) == revision_hash(roles)
    assert role_template_hash(changed[0]) == role_template_hash(roles[0])


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("0.entryTemplate.spec.containers.0.image", "nginx:2"),
        ("0.workerReplicas", 2),
        ("0.name", "prefill2"),
        ("0.entryTemplate.metadata", {"labels": {"a": "b"}}),
    ],
)
def test_template_changes_change_the_hash(path: str, value: object) -> None:
    roles = specs.pd()["spec"]["template"]["roles"]
    changed = specs.edit({"r": roles}, "r." + path, value)["r"]
    assert revision_hash(changed) != revision_hash(roles)


def test_key_order_does_not_matter_and_input_is_not_mutated() -> None:
    roles = specs.pd()["spec"]["template"]["roles"]
    reordered = [dict(reversed(list(r.items()))) for r in roles]
    before = copy.deepcopy(roles)
    assert revision_hash(reordered) == revision_hash(roles)
    assert roles == before
