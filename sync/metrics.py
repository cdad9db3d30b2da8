"""Prometheus metrics for the sync daemon: a small thread-safe registry, and the daemon's own.

Part of the daemon shell: the controller's workers count and time reconciles, `health` serves
`render()` at /metrics in the text exposition format 0.0.4. Values that other components keep
anyway (`Kube.calls`, the cache's object counts) are not copied on every change: a
`CallbackMetric` reads them when Prometheus scrapes, and any object with the `Collector` shape
can be registered the same way. No client library, to keep the daemon's dependencies to the
ones the renderer already has.
"""

from __future__ import annotations

import math
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Prometheus client defaults, stretched to a minute: a reconcile that rolls out many pods
# makes many API calls.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[tuple[str, str], ...]
Source = Callable[[], Mapping[str, float] | Mapping[tuple[str, ...], float]]
ReconcileResult = Literal["success", "error", "requeue"]
RECONCILE_RESULTS: tuple[ReconcileResult, ...] = ("success", "error", "requeue")


@dataclass(frozen=True)
class Sample:
    """One line of a metric family: `suffix` is "" or "_bucket", "_sum", "_count"."""

    suffix: str
    labels: Labels
    value: float


class Collector(Protocol):
    """Anything the registry renders: a named family that produces its samples on demand."""

    @property
    def name(self) -> str: ...

    @property
    def documentation(self) -> str: ...

    @property
    def type(self) -> str: ...

    def samples(self) -> list[Sample]: ...


def format_value(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels) + "}"


def _check_names(name: str, labelnames: Sequence[str], reserved: Sequence[str] = ()) -> None:
    if not NAME.fullmatch(name):
        raise ValueError(f"invalid metric name {name!r}")
    for label in labelnames:
        if not LABEL.fullmatch(label) or label.startswith("__") or label in reserved:
            raise ValueError(f"invalid label name {label!r} for {name}")
    if len(set(labelnames)) != len(labelnames):
        raise ValueError(f"duplicate label names for {name}: {labelnames}")


class _CounterChild:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self._value += amount

    def get(self) -> float:
        with self._lock:
            return self._value


class _GaugeChild:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._value = 0.0

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    def get(self) -> float:
        with self._lock:
            return self._value


class _HistogramChild:
    def __init__(self, lock: threading.Lock, buckets: tuple[float, ...]) -> None:
        self._lock = lock
        self._buckets = buckets
        # Per bucket, not cumulative, so observe() touches one slot; render() sums them up.
        self._counts = [0] * len(buckets)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        index = bisect_left(self._buckets, value)
        with self._lock:
            if index < len(self._counts):
                self._counts[index] += 1
            self._sum += value
            self._count += 1

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe how long the block takes, in seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start)

    def snapshot(self) -> tuple[list[int], float, int]:
        with self._lock:
            return list(self._counts), self._sum, self._count


Child = TypeVar("Child", _CounterChild, _GaugeChild, _HistogramChild)


class _Family(Generic[Child]):
    """A metric family: one child (value) per combination of label values."""

    type: ClassVar[str]
    reserved_labels: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        _check_names(name, labelnames, self.reserved_labels)
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], Child] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> Child:
        raise NotImplementedError

    def labels(self, *values: str, **named: str) -> Child:
        """The child for these label values (positional in label order, or by name);
        created at zero on first use, so calling it once makes a series visible."""
        if values and named:
            raise ValueError("pass label values either by position or by name")
        if named:
            if set(named) != set(self.labelnames):
                raise ValueError(f"{self.name} has labels {self.labelnames}, got {sorted(named)}")
            values = tuple(named[label] for label in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} has labels {self.labelnames}, got {len(values)} values")
        key = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._new_child()
            return child

    def _unlabelled(self) -> Child:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use .labels(...)")
        return self._children[()]

    def _items(self) -> list[tuple[Labels, Child]]:
        with self._lock:
            items = sorted(self._children.items())
        return [(tuple(zip(self.labelnames, key, strict=True)), child) for key, child in items]


class Counter(_Family[_CounterChild]):
    type = "counter"

    def _new_child(self) -> _CounterChild:
        return _CounterChild(self._lock)

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)

    def samples(self) -> list[Sample]:
        return [Sample("", labels, child.get()) for labels, child in self._items()]


class Gauge(_Family[_GaugeChild]):
    type = "gauge"

    def _new_child(self) -> _GaugeChild:
        return _GaugeChild(self._lock)

    def set(self, value: float) -> None:
        self._unlabelled().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._unlabelled().dec(amount)

    def samples(self) -> list[Sample]:
        return [Sample("", labels, child.get()) for labels, child in self._items()]


class Histogram(_Family[_HistogramChild]):
    type = "histogram"
    reserved_labels = ("le",)

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be increasing and not empty, got {buckets}")
        self.buckets = bounds
        super().__init__(name, documentation, labelnames)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self._lock, self.buckets)

    def observe(self, value: float) -> None:
        self._unlabelled().observe(value)

    def time(self) -> AbstractContextManager[None]:
        return self._unlabelled().time()

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        for labels, child in self._items():
            counts, total, count = child.snapshot()
            cumulative = 0
            for bound, n in zip(self.buckets, counts, strict=True):
                cumulative += n
                le = (*labels, ("le", format_value(bound)))
                out.append(Sample("_bucket", le, cumulative))
            out.append(Sample("_bucket", (*labels, ("le", "+Inf")), count))
            out.append(Sample("_sum", labels, total))
            out.append(Sample("_count", labels, count))
        return out


class CallbackMetric:
    """A counter or gauge whose values come from `source` at scrape time.

    `source` returns {label value(s): value}: plain strings for a family with one label,
    tuples in label order otherwise. It runs on the scraping thread, so it must be safe to
    call from there (copying a dict another thread updates is: CPython copies it atomically).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        type: Literal["counter", "gauge"],
        labelnames: Sequence[str] = (),
        source: Source | None = None,
    ) -> None:
        _check_names(name, labelnames)
        self.name = name
        self.documentation = documentation
        self.type = type
        self.labelnames = tuple(labelnames)
        self._source = source

    def set_source(self, source: Source | None) -> None:
        """Set or replace where the values come from (None: render no samples)."""
        self._source = source

    def samples(self) -> list[Sample]:
        if self._source is None:
            return []
        out = []
        for key, value in dict(self._source()).items():
            values = (key,) if isinstance(key, str) else tuple(key)
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: source gave {values!r} for {self.labelnames}")
            out.append(Sample("", tuple(zip(self.labelnames, values, strict=True)), float(value)))
        return sorted(out, key=lambda s: s.labels)


class Registry:
    """The metric families of one process, rendered in the order they were registered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collectors: dict[str, Collector] = {}

    def register(self, collector: Collector) -> None:
        """Add any collector: the hook for values that live elsewhere."""
        names = self._names_of(collector)
        with self._lock:
            taken = {n for c in self._collectors.values() for n in self._names_of(c)}
            if names & taken:
                raise ValueError(f"metric {collector.name} is already registered")
            self._collectors[collector.name] = collector

    @staticmethod
    def _names_of(collector: Collector) -> set[str]:
        if collector.type == "histogram":
            return {collector.name + s for s in ("", "_bucket", "_sum", "_count")}
        return {collector.name}

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, documentation, labelnames)
        self.register(metric)
        return metric

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        metric = Gauge(name, documentation, labelnames)
        self.register(metric)
        return metric

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, documentation, labelnames, buckets)
        self.register(metric)
        return metric

    def callback(
        self,
        name: str,
        documentation: str,
        type: Literal["counter", "gauge"],
        labelnames: Sequence[str] = (),
        source: Source | None = None,
    ) -> CallbackMetric:
        metric = CallbackMetric(name, documentation, type, labelnames, source)
        self.register(metric)
        return metric

    def render(self) -> str:
        """The text exposition format 0.0.4."""
        with self._lock:
            collectors = list(self._collectors.values())
        lines: list[str] = []
        for c in collectors:
            lines.append(f"# HELP {c.name} {escape_help(c.documentation)}")
            lines.append(f"# TYPE {c.name} {c.type}")
            lines.extend(
                f"{c.name}{s.suffix}{format_labels(s.labels)} {format_value(s.value)}"
                for s in c.samples()
            )
        return "".join(line + "\n" for line in lines)


class DaemonMetrics:
    """The sync daemon's metrics, declared once so every series exists from the start.

    Wiring: `metrics.api_calls.set_source(lambda: kube.calls)` (add the Counters of several
    clients with `+`), `metrics.cached_objects.set_source(<kind -> count>)`, and
    `metrics.leader.set(1)` / `set(0)` from the leader election callbacks.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        r = self.registry
        self.reconciles = r.counter(
            "msctl_reconciles_total", "ModelServing reconciles, by result.", ("result",)
        )
        for result in RECONCILE_RESULTS:
            self.reconciles.labels(result)
        self.reconcile_duration = r.histogram(
            "msctl_reconcile_duration_seconds", "Time one ModelServing reconcile took."
        )
        self.queue_depth = r.gauge(
            "msctl_queue_depth", "ModelServing keys waiting in the work queue."
        )
        self.api_calls = r.callback(
            "msctl_api_calls_total",
            "Requests sent to the Kubernetes API, by verb.",
            "counter",
            ("verb",),
        )
        self.errors = r.counter(
            "msctl_errors_total",
            "Errors, by kind (a small fixed set, such as the API error class).",
            ("kind",),
        )
        self.leader = r.gauge("msctl_leader", "1 while this replica holds the leader lease.")
        self.cached_objects = r.callback(
            "msctl_cached_objects", "Objects in the watch cache, by kind.", "gauge", ("kind",)
        )

    def reconciled(self, result: ReconcileResult, seconds: float) -> None:
        self.reconciles.labels(result).inc()
        self.reconcile_duration.observe(seconds)

    def render(self) -> str:
        return self.registry.render()
