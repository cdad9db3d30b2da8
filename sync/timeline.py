"""Timeline: a simulated rollout drawn as SVG (`msctl plan --from OLD --timeline FILE.svg`).

Part of the offline preview (docs/behaviour.md#offline-preview); reads only the
`sync.core.replacements.Rollout` value. Hand-written SVG, no dependency: a row per ServingGroup
(per role instance under RoleRollingUpdate), time across, each row's old, replacing and new
spans, a marker per wave, and below, for each budget, how many units were unavailable over time
against the `maxUnavailable` line. Same rollout, same bytes. Every shape carries its times in
seconds (`data-start`, `data-end`) so tests and tools can read the picture back.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from sync.core.replacements import Budget, Rollout, Span
from sync.core.timestamps import duration

WIDTH = 960
LEFT = 200  # the label column
RIGHT = 30
ROW = 24
BAR = 16
TOP = 84  # title, legend, summary and wave labels
CHART = 64  # the height of one budget chart
MAX_TICKS = 12

STYLE = """
text { font-family: sans-serif; font-size: 12px; fill: #1f2933; }
.title { font-size: 14px; font-weight: bold; }
.old { fill: #9aa5b1; }
.replacing { fill: #f0a030; }
.new { fill: #3c9d5d; }
.unchanged { fill: #d5dde5; }
.wave { stroke: #52606d; stroke-dasharray: 4 3; }
.tick { stroke: #cbd2d9; }
.frame { fill: none; stroke: #9aa5b1; }
.unavailable { fill: #f0a030; fill-opacity: 0.3; stroke: #f0a030; stroke-width: 2; }
.budget { stroke: #c0392b; stroke-dasharray: 6 3; stroke-width: 1.5; }
"""


def _num(value: float) -> str:
    """Coordinates and times with at most one decimal, and no `-0`."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Canvas:
    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.t0 = rollout.start
        last = max(rollout.end, rollout.start + rollout.ready_after)
        self.t1 = last + rollout.ready_after / 2  # room to show the new spans
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def rect(self, state: str, start: float, end: float, y: float) -> None:
        self.add(
            f'<rect class="{state}" x="{_num(self.x(start))}" y="{_num(y)}" '
            f'width="{_num(self.x(end) - self.x(start))}" height="{BAR}" '
            f'data-start="{_num(start - self.t0)}" data-end="{_num(end - self.t0)}">'
            f"<title>{escape(state)} {duration(start - self.t0)}-{duration(end - self.t0)}"
            "</title></rect>"
        )

    def text(self, x: float, y: float, body: str, extra: str = "") -> None:
        self.add(f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(body)}</text>')


def _spans(span: Span, t0: float, t1: float) -> list[tuple[str, float, float]]:
    """(state, start, end) pieces of one row."""
    start = span.start if span.start is not None else t0
    ready = span.ready if span.ready is not None else t1
    if span.state == "replaced":
        return [("old", t0, start), ("replacing", start, ready), ("new", ready, t1)]
    if span.state == "added":
        return [("replacing", start, ready), ("new", ready, t1)]
    if span.state == "removed":
        return [("old", t0, start)]
    return [("old" if span.outdated else "unchanged", t0, t1)]


def _legend(canvas: _Canvas) -> None:
    x = LEFT
    for state, words in (
        ("old", "old template"),
        ("replacing", "replacing (not ready)"),
        ("new", "new template, ready"),
        ("unchanged", "unchanged"),
    ):
        canvas.add(f'<rect class="{state}" x="{x}" y="34" width="14" height="12"/>')
        canvas.text(x + 20, 44, words)
        x += 170


def _ticks(canvas: _Canvas, top: float, bottom: float) -> None:
    step = canvas.rollout.ready_after
    step *= max(1, math.ceil((canvas.t1 - canvas.t0) / step / MAX_TICKS))
    canvas.add('<g class="axis">')
    t = canvas.t0
    while t <= canvas.t1 + 1e-9:
        x = canvas.x(t)
        canvas.add(
            f'<line class="tick" x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" '
            f'y2="{_num(bottom)}" data-at="{_num(t - canvas.t0)}"/>'
        )
        canvas.text(x, bottom + 14, duration(t - canvas.t0), ' text-anchor="middle"')
        t += step
    canvas.add("</g>")


def _chart(canvas: _Canvas, budget: Budget, top: float) -> None:
    high = max(budget.limit or 0, budget.peak, 1)

    def y(n: float) -> float:
        return top + CHART - n / high * (CHART - 8)

    canvas.add(f'<g class="budget-chart" data-budget={quoteattr(budget.label)}>')
    canvas.text(8, top + CHART / 2, f"{budget.label} unavailable")
    canvas.add(
        f'<rect class="frame" x="{LEFT}" y="{_num(top)}" '
        f'width="{WIDTH - LEFT - RIGHT}" height="{CHART}"/>'
    )
    canvas.text(LEFT - 6, y(0), "0", ' text-anchor="end"')
    canvas.text(LEFT - 6, y(high) + 8, str(high), ' text-anchor="end"')
    points = [f"{_num(canvas.x(canvas.t0))},{_num(y(0))}"]
    last = 0
    for t, n in budget.points:
        points += [f"{_num(canvas.x(t))},{_num(y(last))}", f"{_num(canvas.x(t))},{_num(y(n))}"]
        last = n
    points += [
        f"{_num(canvas.x(canvas.t1))},{_num(y(last))}",
        f"{_num(canvas.x(canvas.t1))},{_num(y(0))}",
    ]
    data = ";".join(f"{_num(t - canvas.t0)}:{n}" for t, n in budget.points)
    canvas.add(f'<polyline class="unavailable" points="{" ".join(points)}" data-points="{data}"/>')
    if budget.limit is not None:
        canvas.add(
            f'<line class="budget" x1="{LEFT}" y1="{_num(y(budget.limit))}" '
            f'x2="{WIDTH - RIGHT}" y2="{_num(y(budget.limit))}" data-limit="{budget.limit}"/>'
        )
        canvas.text(
            WIDTH - RIGHT - 4,
            y(budget.limit) - 4,
            f"budget: maxUnavailable {budget.limit}",
            ' text-anchor="end"',
        )
    else:
        canvas.text(WIDTH - RIGHT - 4, top + 14, "no maxUnavailable", ' text-anchor="end"')
    canvas.add("</g>")


def draw(rollout: Rollout, title: str) -> str:
    """The rollout as an SVG document."""
    canvas = _Canvas(rollout)
    rows_top = TOP + 8
    rows_bottom = rows_top + ROW * len(rollout.spans)
    charts_top = rows_bottom + 32
    height = charts_top + (CHART + 24) * len(rollout.budgets) + 8
    canvas.add(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" data-ready-after="{_num(rollout.ready_after)}" '
        f'data-strategy="{rollout.strategy}">'
    )
    canvas.add(f"<style>{STYLE}</style>")
    canvas.add('<rect width="100%" height="100%" fill="#ffffff"/>')
    canvas.text(8, 20, title, ' class="title"')
    canvas.text(
        8,
        44 + 16,
        f"{rollout.summary()}; every pod ready {duration(rollout.ready_after)} after creation",
    )
    _legend(canvas)
    _ticks(canvas, rows_top, rows_bottom)
    for number, span in enumerate(rollout.spans):
        y = rows_top + number * ROW + (ROW - BAR) / 2
        canvas.add(f'<g class="row" data-unit={quoteattr(span.label)} data-state="{span.state}">')
        canvas.text(8, y + BAR - 3, span.label)
        for state, start, end in _spans(span, canvas.t0, canvas.t1):
            if end > start:
                canvas.rect(state, start, end, y)
        canvas.add("</g>")
    for wave in rollout.waves:
        x = canvas.x(wave.start)
        canvas.add(
            f'<line class="wave" x1="{_num(x)}" y1="{_num(rows_top - 4)}" x2="{_num(x)}" '
            f'y2="{_num(rows_bottom)}" data-wave="{wave.number}" '
            f'data-at="{_num(wave.start - canvas.t0)}"/>'
        )
        canvas.text(x + 3, rows_top - 6, f"wave {wave.number}")
    for number, budget in enumerate(rollout.budgets):
        _chart(canvas, budget, charts_top + number * (CHART + 24))
    canvas.add("</svg>")
    return "\n".join(canvas.parts) + "\n"
