import pytest

from sync.core.scaling import Candidate, missing_ordinals, removal_order, to_remove


@pytest.mark.parametrize(
    ("existing", "desired", "created"),
    [
        ((), 2, [0, 1]),
        ((0,), 3, [1, 2]),
        ((0, 5), 4, [1, 2]),
        ((10,), 3, [0, 1]),
        ((0, 1, 2), 2, []),
        ((1,), 1, []),
    ],
    ids=[
        "from nothing",
        "contiguous",
        "gap filling keeps 5",
        "only a high index",
        "enough",
        "one is one",
    ],
)
def test_scale_up_fills_the_lowest_missing_ordinals(
    existing: tuple[int, ...], desired: int, created: list[int]
) -> None:
    assert missing_ordinals(existing, desired) == created


def test_default_scale_down_takes_the_highest_ordinals() -> None:
    assert to_remove([Candidate(o, True, 0) for o in range(4)], 2) == [3, 2]


def test_not_ready_goes_before_ready_and_cheap_before_dear() -> None:
    candidates = [
        Candidate(0, True, 0),
        Candidate(1, True, 5),
        Candidate(2, True, -3),
        Candidate(3, True, 9),
        Candidate(4, False, 100),
    ]
    assert removal_order(candidates) == [4, 2, 0, 1, 3]


def test_costs_without_partition_keep_the_dearest() -> None:
    # costs {0: none (counts as 0), 1: medium, 2: low, 3: high}, 4 -> 2 keeps 0 and 3
    candidates = [
        Candidate(0, True, 0),
        Candidate(1, True, -1),
        Candidate(2, True, -5),
        Candidate(3, True, 10),
    ]
    assert sorted(to_remove(candidates, 2)) == [1, 2]


def test_partition_protected_ordinals_go_last() -> None:
    # P=3 of 5: 3 and 4 go first even when 0-2 are cheaper or not ready
    candidates = [Candidate(o, o != 1, -10 if o < 3 else 0, o < 3) for o in range(5)]
    assert to_remove(candidates, 3) == [4, 3]
    # below the partition: unprotected first, then the cheapest protected
    assert to_remove(candidates, 2) == [4, 3, 1]
