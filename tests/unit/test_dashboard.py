"""deploy/grafana/msctl-dashboard.json queries only metrics the daemon exports, and every
family the daemon exports has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sync.metrics import DaemonMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "msctl-dashboard.json"
# PromQL words that look like names: aggregations, functions, modifiers.
PROMQL = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
}  # fmt: skip
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\$\w+", "", expr)  # dashboard variables
    expr = re.sub(r"\b\d+(\.\d+)?\b", "", expr)  # numbers
    return {n for n in IDENTIFIER.findall(expr) if n not in PROMQL}


def queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    found = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    found += [
        (f"variable {v['name']}", v["definition"])
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return found


def exported() -> set[str]:
    """Sample names of a daemon's /metrics, every source set so every family has samples."""
    metrics = DaemonMetrics()
    metrics.api_calls.set_source(lambda: {"list": 1})
    metrics.cached_objects.set_source(lambda: {"Pod": 1})
    metrics.stalled.set_source(lambda: {"TemplateError": 1})
    metrics.errors.labels("reconcile").inc()
    metrics.reconciled("success", 0.1)
    return {line.split("{")[0].split(" ")[0] for line in metrics.render().splitlines()} - {"#"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (verb) (rate(msctl_api_calls_total{pod=~"a"}[5m]))', {"msctl_api_calls_total"}),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("sum(a * on (pod) group_left b)", {"a", "b"}),
        ('label_values(msctl_leader{namespace="$namespace"}, pod)',
         {"label_values", "msctl_leader", "pod"}),
    ],
    ids=["a labelled rate", "a quantile", "a join", "a variable query names its function too"],
)  # fmt: skip
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(("title", "expr"), queries(), ids=[t for t, _ in queries()])
def test_every_query_reads_only_exported_metrics(title: str, expr: str) -> None:
    names = metric_names(expr)
    if title.startswith("variable "):
        names -= {"label_values", "namespace", "pod"}
    assert names, f"{title}: no metric in {expr}"
    assert names <= exported(), f"{title}: {sorted(names - exported())} not exported"


def test_every_exported_family_has_a_panel() -> None:
    used = set().union(*(metric_names(e) for _, e in queries()))
    families = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in exported()}
    covered = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
    assert families <= covered, sorted(families - covered)
