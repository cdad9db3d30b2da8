"""What the sync daemon exports at /metrics (sync.metrics): names, types, labels, and values
read from their sources at scrape time."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sync.metrics import RECONCILE_BUCKETS, DaemonMetrics
from sync.outcomes import RECONCILE_OUTCOMES

# The names, types and label names dashboards and alerts depend on.
EXPORTED = {
    "msctl_reconciles_total": ("counter", {"result"}),
    "msctl_reconcile_duration_seconds": ("histogram", set()),
    "msctl_queue_depth": ("gauge", set()),
    "msctl_api_calls_total": ("counter", {"verb"}),
    "msctl_errors_total": ("counter", {"kind"}),
    "msctl_leader": ("gauge", set()),
    "msctl_cached_objects": ("gauge", {"kind"}),
    "msctl_stalled_modelservings": ("gauge", {"reason"}),
    "msctl_modelservings": ("gauge", {"condition", "status"}),
}
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)")


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of every sample line."""
    found = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            match = SAMPLE.fullmatch(line)
            assert match, line
            found[match[1] + (match[2] or "")] = float(match[3])
    return found


def test_every_family_is_exported_with_its_type_and_no_other() -> None:
    text = DaemonMetrics().render()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    assert types == {name: kind for name, (kind, _) in EXPORTED.items()}
    assert "_created" not in text


def test_label_names_are_the_documented_ones() -> None:
    metrics = DaemonMetrics()
    metrics.api_calls.set_source(lambda: {"get": 1})
    metrics.cached_objects.set_source(lambda: {"Pod": 1})
    metrics.stalled.set_source(lambda: {"TemplateError": 1})
    metrics.errors.labels("reconcile").inc()
    for series in samples(metrics.render()):
        name, _, labels = series.partition("{")
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        expected = EXPORTED[family][1] | ({"le"} if name.endswith("_bucket") else set())
        assert set(re.findall(r'(\w+)="', labels)) == expected, series


def test_the_series_that_never_wait_for_a_first_event_start_at_zero() -> None:
    found = samples(DaemonMetrics().render())
    for outcome in RECONCILE_OUTCOMES:
        assert found[f'msctl_reconciles_total{{result="{outcome}"}}'] == 0
    assert found["msctl_reconcile_duration_seconds_count"] == 0
    assert found["msctl_queue_depth"] == 0
    assert found["msctl_leader"] == 0


def test_a_reconcile_counts_its_outcome_and_its_time_in_the_buckets() -> None:
    metrics = DaemonMetrics()
    metrics.reconciled("requeue", 0.3)
    metrics.reconciled("requeue", 45)
    found = samples(metrics.render())
    assert found['msctl_reconciles_total{result="requeue"}'] == 2
    assert found['msctl_reconciles_total{result="success"}'] == 0
    buckets = {
        float(le): n
        for series, n in found.items()
        for le in re.findall(r'^msctl_reconcile_duration_seconds_bucket\{le="(.*)"\}$', series)
    }
    assert list(buckets) == [*RECONCILE_BUCKETS, float("inf")]
    assert (buckets[0.25], buckets[0.5], buckets[30], buckets[60]) == (0, 1, 1, 2)
    assert found["msctl_reconcile_duration_seconds_sum"] == pytest.approx(45.3)


def test_callback_families_read_their_source_at_every_scrape() -> None:
    metrics = DaemonMetrics()
    calls: Counter[str] = Counter(watch=1)
    metrics.api_calls.set_source(lambda: calls)
    first = samples(metrics.render())
    calls["get"] += 3
    second = samples(metrics.render())
    assert 'msctl_api_calls_total{verb="get"}' not in first
    assert first['msctl_api_calls_total{verb="watch"}'] == 1
    assert second['msctl_api_calls_total{verb="watch"}'] == 1
    assert second['msctl_api_calls_total{verb="get"}'] == 3


def test_a_callback_without_a_source_exports_no_series() -> None:
    metrics = DaemonMetrics()
    text = metrics.render()
    assert "# TYPE msctl_cached_objects gauge" in text
    assert not [s for s in samples(text) if s.startswith("msctl_cached_objects")]
    metrics.cached_objects.set_source(lambda: {"Service": 2, "Pod": 7})
    found = samples(metrics.render())
    assert found['msctl_cached_objects{kind="Pod"}'] == 7
    assert found['msctl_cached_objects{kind="Service"}'] == 2


def test_a_source_that_fails_fails_the_scrape() -> None:
    metrics = DaemonMetrics()

    def lost() -> dict[str, float]:
        raise RuntimeError("cache gone")

    metrics.cached_objects.set_source(lost)
    with pytest.raises(RuntimeError, match="cache gone"):
        metrics.render()


def test_two_daemons_in_one_process_keep_their_own_values() -> None:
    first, second = DaemonMetrics(), DaemonMetrics()
    first.leader.set(1)
    first.errors.labels("Conflict").inc()
    assert samples(first.render())["msctl_leader"] == 1
    assert samples(second.render())["msctl_leader"] == 0
    assert 'msctl_errors_total{kind="Conflict"}' not in samples(second.render())


def _ms(*conditions: tuple[str, str]) -> dict[str, object]:
    return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([], {}),
        ([{"metadata": {}}], {}),
        ([_ms(("Available", "True"))], {("Available", "True"): 1}),
        (
            [
                _ms(("Available", "True"), ("Progressing", "False")),
                _ms(("Available", "False"), ("UpdateInProgress", "True")),
                _ms(("Available", "True")),
            ],
            {
                ("Available", "True"): 2,
                ("Available", "False"): 1,
                ("Progressing", "False"): 1,
                ("UpdateInProgress", "True"): 1,
            },
        ),
    ],
    ids=[
        "no ModelServing: every known series at zero",
        "a ModelServing without status counts nowhere",
        "one available ModelServing",
        "each condition of each ModelServing counts once",
    ],
)
def test_modelservings_are_counted_by_condition_when_scraped(
    objects: list[dict[str, object]], expected: dict[tuple[str, str], int]
) -> None:
    metrics = DaemonMetrics()
    metrics.modelservings.set_source(lambda: objects)
    found = samples(metrics.render())
    series = {k: v for k, v in found.items() if k.startswith("msctl_modelservings{")}
    assert len(series) >= 9  # 3 condition types x True/False/Unknown, from the start
    for (condition, status), n in expected.items():
        assert series[f'msctl_modelservings{{condition="{condition}",status="{status}"}}'] == n
    assert sum(series.values()) == sum(expected.values())
