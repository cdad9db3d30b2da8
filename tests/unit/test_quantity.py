import time

import pytest

from generator.quantity import MAX_NANOS, Format, Quantity, QuantityError, sum_requests


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1", "1"),
        ("0", "0"),
        ("0.5", "500m"),
        ("1.5", "1500m"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("1.5Gi", "1536Mi"),
        ("1024Mi", "1Gi"),
        ("1000Mi", "1000Mi"),
        ("1Ki", "1Ki"),
        ("512", "512"),
        ("1k", "1k"),
        ("1000", "1k"),
        ("12e6", "12e6"),
        ("1E3", "1e3"),
        ("0.0000000001", "1n"),
        ("-2", "-2"),
        ("+3", "3"),
        (".5", "500m"),
        (125, "125"),
    ],
    ids=str,
)
def test_quantities_print_in_kubernetes_canonical_form(text: str | int, canonical: str) -> None:
    assert str(Quantity.parse(text)) == canonical


def test_small_binary_values_print_as_decimal() -> None:
    assert str(Quantity.parse("0.5Ki")) == "512"


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "1Kb", "Gi", "--1"], ids=repr)
def test_malformed_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError, match="is not a quantity"):
        Quantity.parse(text)


def test_a_sum_keeps_the_format_of_its_first_non_zero_term() -> None:
    assert (Quantity.parse("1Gi") + Quantity.parse("1G")).format is Format.BINARY_SI
    assert (Quantity.parse("0") + Quantity.parse("1Gi")).format is Format.BINARY_SI
    assert str(Quantity.parse("1G") + Quantity.parse("1Gi")) == "2073741824"


def test_podgroup_sum_matches_the_reference_example() -> None:
    # prefill 2 x (1 entry @ 1cpu/2Gi + 3 workers @ 2cpu/4Gi), decode 1 x (1cpu/1Gi + 2 x 1cpu/2Gi)
    terms = [
        ({"cpu": "1", "memory": "2Gi"}, 2),
        ({"cpu": "2", "memory": "4Gi"}, 2 * 3),
        ({"cpu": "1", "memory": "1Gi"}, 1),
        ({"cpu": "1", "memory": "2Gi"}, 1 * 2),
    ]
    assert sum_requests(terms) == {"cpu": "17", "memory": "33Gi"}


def test_terms_taken_zero_times_add_nothing() -> None:
    assert sum_requests([({"cpu": "1"}, 0), ({"memory": "1Gi"}, 2)]) == {"memory": "2Gi"}


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        pytest.param("1e999999999", MAX_NANOS, id="a huge exponent is capped"),
        pytest.param("1e-999999999", 1, id="a tiny exponent rounds up to 1n"),
        pytest.param("0e999999999", 0, id="zero with a huge exponent is zero"),
    ],
)
def test_extreme_exponents_parse_at_once(text: str, nanos: int) -> None:
    started = time.perf_counter()
    assert Quantity.parse(text).nanos == nanos
    assert time.perf_counter() - started < 0.5
