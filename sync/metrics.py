"""The sync daemon's Prometheus metrics, on a registry of their own.

Part of the daemon shell: the controller's workers count and time reconciles, `health` serves
`render()` at /metrics. Values that other components keep anyway (`Kube.calls`, the cache's
object counts) are not copied on every change: a `Callback` reads them when Prometheus scrapes.
A registry per `DaemonMetrics`, not prometheus_client's global one, so that one process (a test)
can hold several daemons.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sync.core.status import AVAILABLE, PROGRESSING, UPDATING
from sync.outcomes import RECONCILE_OUTCOMES, ReconcileOutcome

# What generate_latest writes; the library's CONTENT_TYPE_LATEST names text format 1.0.0 in
# recent releases, and no scraper should be told that.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Prometheus client defaults, stretched to a minute: a reconcile that rolls out many pods
# makes many API calls.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Source = Callable[[], Mapping[str, float]]
# The condition types the daemon writes (docs/behaviour.md#conditions): their series exist
# from the start, at 0, so a dashboard shows 0 rather than "no data".
CONDITION_TYPES = (AVAILABLE, PROGRESSING, UPDATING)
CONDITION_STATUSES = ("True", "False", "Unknown")


def condition_counts(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """ModelServings by (condition type, status), from their status.conditions."""
    counts = Tally({(kind, status): 0 for kind in CONDITION_TYPES for status in CONDITION_STATUSES})
    for obj in objects:
        for condition in (obj.get("status") or {}).get("conditions") or []:
            counts[str(condition.get("type")), str(condition.get("status"))] += 1
    return dict(counts)


class ByCondition(Collector):
    """`msctl_modelservings{condition, status}`: counted from the watch cache when scraped."""

    def __init__(self) -> None:
        self._source: Callable[[], Iterable[Mapping[str, Any]]] | None = None

    def set_source(self, source: Callable[[], Iterable[Mapping[str, Any]]] | None) -> None:
        """Where the ModelServings come from (None: only the zero series)."""
        self._source = source

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "msctl_modelservings",
            "ModelServings in the watch cache, by status condition and its status.",
            labels=["condition", "status"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        objects = self._source() if self._source is not None else []
        for (kind, status), n in sorted(condition_counts(objects).items()):
            family.add_metric([kind, status], float(n))
        yield family


class Callback(Collector):
    """A counter or gauge with one label, whose values `source` gives ({label value: value}).

    `source` runs on the scraping thread, so it must be safe to call from there (copying a
    dict that another thread updates is: CPython copies it atomically).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        family: type[CounterMetricFamily | GaugeMetricFamily],
        label: str,
    ) -> None:
        self._args = (name, documentation)
        self._type = family
        self._label = label
        self._source: Source | None = None

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        return self._type(*self._args, labels=[self._label])

    def set_source(self, source: Source | None) -> None:
        """Set or replace where the values come from (None: no samples)."""
        self._source = source

    def describe(self) -> Iterator[Metric]:
        # The registry checks names from this, without calling a source that may not be ready.
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        if self._source is not None:
            for key, value in sorted(dict(self._source()).items()):
                family.add_metric([key], float(value))
        yield family


class _Registry(CollectorRegistry):
    """A registry without the `_created` series that prometheus_client adds to counters and
    histograms: they were never exported, and in the 0.0.4 format each becomes a gauge family
    of its own. `disable_created_metrics()` would do the same by flipping a module global, for
    every registry in the process; this stays with ours."""

    def collect(self) -> Iterator[Metric]:
        for metric in super().collect():  # fresh Metric objects on every collect
            created = metric.name + "_created"
            metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


class DaemonMetrics:
    """The sync daemon's metrics, declared once so every series exists from the start.

    Wiring: `metrics.api_calls.set_source(<verb -> count>)`,
    `metrics.cached_objects.set_source(<kind -> count>)`,
    `metrics.modelservings.set_source(<the cached ModelServings>)`, and `metrics.leader.set(1)` /
    `set(0)` from the leader election callbacks. Counter names leave out the `_total` that
    prometheus_client appends.
    """

    content_type = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = r = _Registry()
        self.reconciles = Counter(
            "msctl_reconciles", "ModelServing reconciles, by result.", ["result"], registry=r
        )
        for outcome in RECONCILE_OUTCOMES:
            self.reconciles.labels(outcome)
        self.reconcile_duration = Histogram(
            "msctl_reconcile_duration_seconds",
            "Time one ModelServing reconcile took.",
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "msctl_queue_depth", "ModelServing keys waiting in the work queue.", registry=r
        )
        self.api_calls = Callback(
            "msctl_api_calls",
            "Requests sent to the Kubernetes API, by verb.",
            CounterMetricFamily,
            "verb",
        )
        r.register(self.api_calls)
        self.errors = Counter(
            "msctl_errors",
            "Errors, by kind (a small fixed set, such as the API error class).",
            ["kind"],
            registry=r,
        )
        self.leader = Gauge(
            "msctl_leader", "1 while this replica holds the leader lease.", registry=r
        )
        self.cached_objects = Callback(
            "msctl_cached_objects",
            "Objects in the watch cache, by kind.",
            GaugeMetricFamily,
            "kind",
        )
        r.register(self.cached_objects)
        self.stalled = Callback(
            "msctl_stalled_modelservings",
            "ModelServings the daemon cannot make progress on, by reason (TemplateError, "
            "InvalidSpec, RepeatedWrites).",
            GaugeMetricFamily,
            "reason",
        )
        r.register(self.stalled)
        self.modelservings = ByCondition()
        r.register(self.modelservings)

    def reconciled(self, outcome: ReconcileOutcome, seconds: float) -> None:
        self.reconciles.labels(outcome).inc()
        self.reconcile_duration.observe(seconds)

    def render(self) -> str:
        """The text exposition format 0.0.4 (`content_type`)."""
        return generate_latest(self.registry).decode()
