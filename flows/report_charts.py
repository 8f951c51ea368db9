"""The report's charts: Vega-Lite specs built with Vega-Altair, rendered to static SVG.

vl-convert renders each spec at generation time with the Vega engine it embeds, so the report
carries plain inline SVG: no JavaScript, no CDN, nothing to fetch, small at any portfolio size
(the charts plot aggregates, never items). Each chart reads only rows of the report's tables.
A chart without data is not drawn; the report says so instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert

from mapping.model import LEVEL_NAMES, STATUS_CATEGORY_NAMES
from warehouse.predictability import HEALTHY
from warehouse.report_data import ReportData

STATUS_COLORS = {"todo": "#9aa5b1", "doing": "#2f6fb3", "done": "#2e8b57", "removed": "#c7c7c7"}
CATEGORY_COLORS = {"business": "#2f6fb3", "enabler": "#e0a526", "maintenance": "#8c6bb1"}
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
NO_ART = "(no ART)"
FLOW_LEVELS = ("epic", "feature", "story")
"""SAFe measures flow for portfolio epics, ART features and team stories; the full table has all."""


@dataclass(frozen=True)
class Chart:
    """One figure of the report: its id in the page, title, caption and SVG (None: no data)."""

    id: str
    title: str
    caption: str
    svg: str | None


def build_charts(data: ReportData) -> dict[str, Chart]:
    """Every chart of the report, by id, in page order."""
    pi_order = _pi_order(data)
    builders: list[tuple[str, str, str, Callable[[], alt.TopLevelMixin | None]]] = [
        (
            "chart-status",
            "Items by level and status",
            "Live items (not deleted) of every source.",
            lambda: _status(data),
        ),
        (
            "chart-guardrails",
            "Guardrails: capacity allocation vs target",
            "Share of the leaf work planned in each PI per investment category (bars, outlined "
            "in red where the guardrail is breached) against its target (black tick).",
            lambda: _guardrails(data, pi_order),
        ),
        (
            "chart-burnup",
            _burnup_title(data),
            "Cumulative scope and done work of each ART's leaves planned in the PI, day by day.",
            lambda: _burnup(data),
        ),
        (
            "chart-flow-velocity",
            "Flow velocity",
            "Items completed per PI, stacked by ART: epics, features, stories.",
            lambda: _flow(data, pi_order, "completed_items", "Completed items", bars=True),
        ),
        (
            "chart-flow-time",
            "Flow time (median)",
            "Days from the first start to completion, median over the PI's completed items.",
            lambda: _flow(data, pi_order, "flow_time_p50", "Days (median)"),
        ),
        (
            "chart-flow-load",
            "Flow load (WIP)",
            "Items in progress at the end of each PI (now, for the running PI), stacked by ART.",
            lambda: _flow(data, pi_order, "wip", "Items in progress", bars=True),
        ),
        (
            "chart-flow-efficiency",
            "Flow efficiency",
            "Active time / (active + waiting time) of the completed items.",
            lambda: _flow(data, pi_order, "efficiency", "Efficiency", percent=True),
        ),
        (
            "chart-flow-distribution",
            "Flow distribution",
            "Completed items by investment category, per PI (all ARTs).",
            lambda: _distribution(data, pi_order),
        ),
        (
            "chart-flow-predictability",
            "Flow predictability (ART predictability)",
            "Actual / planned business value of PI objectives; the band is the healthy 80-100%.",
            lambda: _predictability(data, pi_order),
        ),
    ]
    charts = {}
    for chart_id, title, caption, build in builders:
        spec = build()
        svg = None if spec is None else render_svg(spec)
        charts[chart_id] = Chart(chart_id, title, caption, svg)
    return charts


def render_svg(chart: alt.TopLevelMixin) -> str:
    svg: str = vl_convert.vegalite_to_svg(chart.to_dict())
    return svg


def _config(chart: Any) -> Any:
    return (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=11)
        .configure_legend(labelFontSize=11, titleFontSize=11, labelLimit=220)
    )


def _pi_order(data: ReportData) -> list[str]:
    """Configured PIs first (in order), then any other PI named in the results."""
    named = [row.increment for row in data.guardrails]
    named += [row.increment for row in data.flow_metrics]
    named += [row.increment for row in data.predictability if row.increment is not None]
    order: list[str] = []
    for name in named:
        if name not in order:
            order.append(name)
    return order


def _status(data: ReportData) -> alt.TopLevelMixin | None:
    values = [
        {"level": row.level, "status": status, "items": getattr(row, status)}
        for row in data.levels
        for status in STATUS_CATEGORY_NAMES
        if getattr(row, status)
    ]
    if not values:
        return None
    levels = [name for name in LEVEL_NAMES if any(v["level"] == name for v in values)]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            y=alt.Y("level:N", sort=levels, title=None),
            x=alt.X("sum(items):Q", title="Items"),
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
            ),
            order=alt.Order("status_order:Q"),
            tooltip=["level:N", "status:N", "items:Q"],
        )
        .transform_calculate(
            status_order="indexof(['todo', 'doing', 'done', 'removed'], datum.status)"
        )
        .properties(width=520, height=28 * len(levels))
    )
    return _config(chart)


def _guardrails(data: ReportData, pi_order: Sequence[str]) -> alt.TopLevelMixin | None:
    values = [
        {
            "increment": row.increment,
            "category": row.category,
            "share": row.share,
            "target": row.target_share,
            "guardrail": "breached" if row.breach else "kept",
        }
        for row in data.guardrails
        if row.share is not None
    ]
    if not values:
        return None
    categories = list(CATEGORY_COLORS)
    x = alt.X("increment:N", sort=list(pi_order), title=None, axis=alt.Axis(labelAngle=0))
    offset = alt.XOffset("category:N", sort=categories)
    bars = (
        alt.Chart()
        .mark_bar(strokeWidth=2.5)
        .encode(
            x=x,
            xOffset=offset,
            y=alt.Y("share:Q", title="Share of planned work", axis=alt.Axis(format="%")),
            color=alt.Color(
                "category:N",
                title="Category",
                scale=alt.Scale(domain=categories, range=list(CATEGORY_COLORS.values())),
            ),
            stroke=alt.Stroke(
                "guardrail:N",
                title="Guardrail",
                scale=alt.Scale(domain=["kept", "breached"], range=["transparent", "#c0392b"]),
            ),
            tooltip=[
                "increment:N",
                "category:N",
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("target:Q", format=".0%"),
            ],
        )
    )
    ticks = (
        alt.Chart()
        .mark_tick(color="black", thickness=2, size=18)
        .encode(x=x, xOffset=offset, y="target:Q")
    )
    chart = alt.layer(bars, ticks, data=alt.Data(values=values)).properties(
        width=max(320, 110 * len(pi_order)), height=200
    )
    return _config(chart)


def _burnup_basis(data: ReportData) -> str:
    return "estimate" if any(row.scope_estimate > 0 for row in data.burnup) else "items"


def _burnup_title(data: ReportData) -> str:
    pi = data.increment.name if data.increment else "no PI configured"
    unit = "story points" if _burnup_basis(data) == "estimate" else "items"
    return f"PI burn-up per ART: {pi} ({unit})"


def _burnup(data: ReportData) -> alt.TopLevelMixin | None:
    if not data.burnup:
        return None
    suffix = "estimate" if _burnup_basis(data) == "estimate" else "items"
    values = [
        {
            "art": row.art or NO_ART,
            "day": row.day.isoformat(),
            "series": series,
            "value": getattr(row, f"{series}_{suffix}"),
        }
        for row in data.burnup
        for series in ("scope", "done")
    ]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b", labelAngle=0)),
            y=alt.Y("value:Q", title="Story points" if suffix == "estimate" else "Items"),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(domain=["scope", "done"], range=["#9aa5b1", "#2e8b57"]),
            ),
        )
        .properties(width=230, height=140)
        .facet(facet=alt.Facet("art:N", title=None), columns=3)
    )
    return _config(chart)


def _flow_values(data: ReportData, metric: str) -> list[dict[str, Any]]:
    return [
        {
            "increment": row.increment,
            "art": row.art or NO_ART,
            "level": row.level,
            "value": getattr(row, metric),
        }
        for row in data.flow_metrics
        if row.level in FLOW_LEVELS and getattr(row, metric) is not None
    ]


def _flow(
    data: ReportData,
    pi_order: Sequence[str],
    metric: str,
    title: str,
    *,
    bars: bool = False,
    percent: bool = False,
) -> alt.TopLevelMixin | None:
    values = _flow_values(data, metric)
    if not any(value["value"] for value in values):
        return None
    levels = [name for name in FLOW_LEVELS if any(v["level"] == name for v in values)]
    axis = alt.Axis(format="%") if percent else alt.Axis()
    x = alt.X("increment:N", sort=list(pi_order), title=None, axis=alt.Axis(labelAngle=0))
    color = alt.Color("art:N", title="ART")
    tooltip = ["increment:N", "art:N", alt.Tooltip("value:Q", format=".2f")]
    base = alt.Chart(alt.Data(values=values))
    if bars:
        y = alt.Y("sum(value):Q", title=title, axis=axis)
        mark = base.mark_bar().encode(x=x, y=y, color=color, tooltip=tooltip)
    else:
        y = alt.Y("value:Q", title=title, axis=axis)
        mark = base.mark_line(point=True).encode(x=x, y=y, color=color, tooltip=tooltip)
    chart = (
        mark.properties(width=240, height=150)
        .facet(column=alt.Column("level:N", sort=levels, title=None))
        .resolve_scale(y="independent")
    )
    return _config(chart)


def _distribution(data: ReportData, pi_order: Sequence[str]) -> alt.TopLevelMixin | None:
    values = [
        {"increment": row.increment, "level": row.level, "category": row.value, "items": row.items}
        for row in data.flow_distribution
        if row.dimension == "category" and row.items and row.level in FLOW_LEVELS
    ]
    if not values:
        return None
    levels = [name for name in FLOW_LEVELS if any(v["level"] == name for v in values)]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            x=alt.X("increment:N", sort=list(pi_order), title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(items):Q", stack="normalize", title="Share", axis=alt.Axis(format="%")),
            color=alt.Color(
                "category:N",
                title="Category",
                scale=alt.Scale(domain=list(CATEGORY_COLORS), range=list(CATEGORY_COLORS.values())),
            ),
            tooltip=["increment:N", "category:N", "sum(items):Q"],
        )
        .properties(width=240, height=150)
        .facet(column=alt.Column("level:N", sort=levels, title=None))
    )
    return _config(chart)


def _predictability(data: ReportData, pi_order: Sequence[str]) -> alt.TopLevelMixin | None:
    values = [
        {
            "increment": row.increment or "(no PI)",
            "art": row.art or NO_ART,
            "predictability": row.predictability,
        }
        for row in data.predictability
        if row.predictability is not None
    ]
    if not values:
        return None
    order = [*pi_order, "(no PI)"]
    x = alt.X("increment:N", sort=order, title=None, axis=alt.Axis(labelAngle=0))
    band = (
        alt.Chart(alt.Data(values=[{"low": HEALTHY[0], "high": HEALTHY[1]}]))
        .mark_rect(color="#2e8b57", opacity=0.12)
        .encode(y="low:Q", y2="high:Q")
    )
    lines = (
        alt.Chart(alt.Data(values=values))
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("predictability:Q", title="Predictability", axis=alt.Axis(format="%")),
            color=alt.Color("art:N", title="ART"),
            tooltip=["increment:N", "art:N", alt.Tooltip("predictability:Q", format=".0%")],
        )
    )
    return _config(alt.layer(band, lines).properties(width=420, height=180))
