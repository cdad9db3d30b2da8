"""The metrics registry and its text exposition format 0.0.4 (sync.metrics)."""

from __future__ import annotations

import re
import threading
from collections import Counter as CallCounter

import pytest

from sync import metrics
from sync.metrics import DaemonMetrics, Registry, Sample

# One sample line of the text format: name, optional {labels}, value.
SAMPLE_LINE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? '
    r"(NaN|[+-]Inf|-?[0-9.e+-]+)"
)


def assert_exposition_format(text: str) -> None:
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# "):
            assert re.fullmatch(r"# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*", line), line
        else:
            assert SAMPLE_LINE.fullmatch(line), line


def test_a_labelled_counter_renders_help_type_and_sorted_series() -> None:
    registry = Registry()
    calls = registry.counter("demo_calls_total", "Calls made.", ("verb",))
    calls.labels("list").inc()
    calls.labels(verb="get").inc(2)
    assert registry.render() == (
        "# HELP demo_calls_total Calls made.\n"
        "# TYPE demo_calls_total counter\n"
        'demo_calls_total{verb="get"} 2\n'
        'demo_calls_total{verb="list"} 1\n'
    )


def test_counters_only_go_up() -> None:
    counter = Registry().counter("demo_total", "x")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1)


def test_an_unlabelled_series_exists_at_zero_from_the_start() -> None:
    registry = Registry()
    registry.gauge("demo_depth", "Depth.")
    assert registry.render().splitlines()[-1] == "demo_depth 0"


def test_gauges_set_inc_and_dec() -> None:
    gauge = Registry().gauge("demo_depth", "Depth.")
    gauge.set(5)
    gauge.inc(2.5)
    gauge.dec()
    assert gauge.labels().get() == 6.5


def test_histogram_buckets_are_cumulative_inclusive_and_end_at_inf() -> None:
    registry = Registry()
    histogram = registry.histogram("demo_seconds", "Time.", buckets=(0.1, 1, 10))
    for value in (0.05, 0.1, 0.5, 20):
        histogram.observe(value)
    assert registry.render().splitlines()[2:] == [
        'demo_seconds_bucket{le="0.1"} 2',
        'demo_seconds_bucket{le="1"} 3',
        'demo_seconds_bucket{le="10"} 3',
        'demo_seconds_bucket{le="+Inf"} 4',
        "demo_seconds_sum 20.65",
        "demo_seconds_count 4",
    ]


def test_labelled_histograms_put_le_last() -> None:
    registry = Registry()
    histogram = registry.histogram("demo_seconds", "Time.", ("kind",), buckets=(1,))
    histogram.labels("pod").observe(0.5)
    assert 'demo_seconds_bucket{kind="pod",le="1"} 1' in registry.render().splitlines()


def test_histogram_time_observes_the_block() -> None:
    histogram = Registry().histogram("demo_seconds", "Time.", buckets=(60,))
    with histogram.time():
        pass
    assert [s.value for s in histogram.samples() if s.suffix == "_count"] == [1]


def test_label_values_and_help_are_escaped() -> None:
    registry = Registry()
    errors = registry.counter("demo_errors_total", 'Errors, "quoted" \\ and\nnewline.', ("kind",))
    errors.labels('a "b"\\c\nd').inc()
    lines = registry.render().splitlines()
    assert lines[0] == r'# HELP demo_errors_total Errors, "quoted" \\ and\nnewline.'
    assert lines[2] == r'demo_errors_total{kind="a \"b\"\\c\nd"} 1'
    assert_exposition_format(registry.render())


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.0, "3"), (0.25, "0.25"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (1e21, "1e+21")],
    ids=repr,
)
def test_values_are_written_as_go_parses_them(value: float, text: str) -> None:
    assert metrics.format_value(value) == text


def test_nan_is_written_as_nan() -> None:
    assert metrics.format_value(float("nan")) == "NaN"


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("1bad", ()),
        ("bad-name", ()),
        ("ok", ("bad-label",)),
        ("ok", ("__reserved",)),
        ("ok", ("a", "a")),
    ],
    ids=str,
)
def test_invalid_names_are_refused(name: str, labels: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"invalid|duplicate"):
        Registry().counter(name, "x", labels)


def test_histograms_may_not_use_the_le_label() -> None:
    with pytest.raises(ValueError, match="invalid label name 'le'"):
        Registry().histogram("demo_seconds", "x", ("le",))


def test_a_name_is_registered_once_including_histogram_suffixes() -> None:
    registry = Registry()
    registry.histogram("demo", "x")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("demo_count", "x")
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("demo", "x")


def test_label_values_must_match_the_label_names() -> None:
    counter = Registry().counter("demo_total", "x", ("verb",))
    with pytest.raises(ValueError, match="has labels"):
        counter.labels("get", "list")
    with pytest.raises(ValueError, match="has labels"):
        counter.labels(kind="get")
    with pytest.raises(ValueError, match=r"use \.labels"):
        counter.inc()


def test_callback_metrics_read_their_source_at_scrape_time() -> None:
    registry = Registry()
    calls: CallCounter[str] = CallCounter()
    registry.callback("demo_api_calls_total", "Calls.", "counter", ("verb",), lambda: calls)
    calls["watch"] += 1
    first = registry.render()
    calls["get"] += 3
    second = registry.render()
    assert 'demo_api_calls_total{verb="watch"} 1' in first
    assert 'demo_api_calls_total{verb="get"}' not in first
    assert second.splitlines()[2:] == [
        'demo_api_calls_total{verb="get"} 3',
        'demo_api_calls_total{verb="watch"} 1',
    ]


def test_callback_sources_with_several_labels_give_tuples() -> None:
    registry = Registry()
    registry.callback(
        "demo_objects", "Objects.", "gauge", ("kind", "ns"), lambda: {("Pod", "a"): 2}
    )
    assert registry.render().splitlines()[-1] == 'demo_objects{kind="Pod",ns="a"} 2'


def test_a_callback_without_source_renders_only_help_and_type() -> None:
    registry = Registry()
    metric = registry.callback("demo_objects", "Objects.", "gauge", ("kind",))
    assert len(registry.render().splitlines()) == 2
    metric.set_source(lambda: {"Pod": 1})
    assert registry.render().splitlines()[-1] == 'demo_objects{kind="Pod"} 1'


def test_a_source_giving_the_wrong_number_of_label_values_fails_the_render() -> None:
    registry = Registry()
    registry.callback("demo_objects", "x", "gauge", ("kind", "ns"), lambda: {"Pod": 1})
    with pytest.raises(ValueError, match="source gave"):
        registry.render()


class Uptime:
    """A collector of its own, registered through the hook."""

    name = "demo_uptime_seconds"
    documentation = "Seconds since start."
    type = "gauge"

    def samples(self) -> list[Sample]:
        return [Sample("", (), 12.5)]


def test_any_collector_can_be_registered() -> None:
    registry = Registry()
    registry.register(Uptime())
    assert registry.render().splitlines()[-1] == "demo_uptime_seconds 12.5"


def test_concurrent_updates_are_not_lost() -> None:
    registry = Registry()
    counter = registry.counter("demo_total", "x", ("worker",))
    histogram = registry.histogram("demo_seconds", "x")

    def work(name: str) -> None:
        for _ in range(2000):
            counter.labels("all").inc()
            counter.labels(name).inc()
            histogram.observe(0.01)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.labels("all").get() == 16000
    assert [s.value for s in histogram.samples() if s.suffix == "_count"] == [16000]


def test_the_daemon_metrics_are_all_declared_up_front() -> None:
    text = DaemonMetrics().render()
    assert_exposition_format(text)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    assert types == {
        "msctl_reconciles_total": "counter",
        "msctl_reconcile_duration_seconds": "histogram",
        "msctl_queue_depth": "gauge",
        "msctl_api_calls_total": "counter",
        "msctl_errors_total": "counter",
        "msctl_leader": "gauge",
        "msctl_cached_objects": "gauge",
    }
    for result in ("success", "error", "requeue"):
        assert f'msctl_reconciles_total{{result="{result}"}} 0' in text
    assert "msctl_leader 0" in text


def test_the_daemon_metrics_feed_from_their_sources() -> None:
    daemon = DaemonMetrics()
    calls: CallCounter[str] = CallCounter({"get": 2, "list": 1})
    daemon.api_calls.set_source(lambda: calls)
    daemon.cached_objects.set_source(lambda: {"Pod": 7, "Service": 2})
    daemon.reconciled("requeue", 0.3)
    daemon.errors.labels(kind="Conflict").inc()
    daemon.queue_depth.set(4)
    daemon.leader.set(1)
    text = daemon.render()
    assert_exposition_format(text)
    for line in (
        'msctl_api_calls_total{verb="get"} 2',
        'msctl_cached_objects{kind="Pod"} 7',
        'msctl_reconciles_total{result="requeue"} 1',
        'msctl_reconcile_duration_seconds_bucket{le="0.5"} 1',
        "msctl_reconcile_duration_seconds_count 1",
        'msctl_errors_total{kind="Conflict"} 1',
        "msctl_queue_depth 4",
        "msctl_leader 1",
    ):
        assert line in text.splitlines()
