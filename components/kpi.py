"""KPI card widgets: plain KPI data (the API's widget `data`) in, Dash components out."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import dcc, html

TITLES = {
    "overall_quality_score": "Overall quality score", "defect_detection_rate": "Defect detection rate",
    "false_positive_rate": "False positive rate", "compliance_adherence": "Compliance adherence",
    "gate_pass_rate": "Gate pass rate", "average_review_cycle_time": "Average review cycle time",
    "workflow_completion_rate": "Workflow completion rate", "agent_utilization_rate": "Agent utilization",
    "sla_adherence": "SLA adherence", "cost_per_review": "Cost per review", "time_to_merge": "Time to merge",
    "developer_satisfaction": "Developer satisfaction", "process_adoption_rate": "Process adoption rate",
}
ARROWS = {"up": "▲", "down": "▼", "flat": "▬"}


def title_of(kpi_id: str) -> str:
    return TITLES.get(kpi_id) or kpi_id.replace("_", " ").replace(".", " · ").capitalize()


def format_value(value: Any, unit: str | None) -> str:
    """A KPI value as people read it; None is 'no data', never 0."""
    if value is None:
        return "no data"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if unit == "percentage":
        return f"{value:.1f}%"
    if unit == "hours":
        return f"{value:.1f} h" if value >= 1 or value == 0 else f"{value * 60:.0f} min"
    if unit == "minutes":
        return f"{value:.1f} min"
    if unit == "usd":
        return f"${value:,.2f}"
    if unit == "score":
        return f"{value:.1f} / 5"
    if unit == "per_hour":
        return f"{value:.2f} /h"
    if unit == "per_7d":
        return f"{value:.1f} / 7d"
    if unit == "points":
        return f"{value:+.1f} pts"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def kpi_card(kpi_id: str, data: dict[str, Any], href: str | None = None, unfiltered: bool = False) -> html.Div:
    """One KPI. `unfiltered`: the page is filtered but this KPI cannot be split that way, so
    the card says it counts everything (a number must never pass for what it is not)."""
    unit = data.get("unit")
    trend = data.get("trend")
    prev = data.get("previous_value")
    footer = []
    if trend and prev is not None:
        footer.append(html.Span(ARROWS[trend], className=f"kpi-trend kpi-trend-{trend} me-1"))
    footer.append(html.Span(f"previous: {format_value(prev, unit)}", className="text-body-secondary"))
    # dbc.Card takes no data-* attributes: the html.Div around it carries data-kpi.
    card = dbc.Card(dbc.CardBody([
        html.Div([title_of(kpi_id)] + ([html.Span("all", className="badge text-bg-secondary ms-2 kpi-unfiltered",
                                                  title="Not split by the filter: counts every repository and team")]
                                       if unfiltered else []), className="kpi-title text-body-secondary small"),
        html.Div(format_value(data.get("current_value"), unit), className="kpi-value fs-3 fw-semibold",
                 id={"type": "kpi-value", "kpi": kpi_id}),
        html.Div(footer, className="kpi-footer small"),
    ]), className="kpi-card h-100")
    if href:   # the events behind the number, one click away
        card = dcc.Link(card, href=href, className="text-reset text-decoration-none kpi-link")
    return html.Div(card, className="h-100", **{"data-kpi": kpi_id})


def kpi_grid(widgets: list[dict[str, Any]], timeframe: str | None = None, scope_query: str = "") -> dbc.Row:
    """Cards in the seed's responsive grid: 4 per row on wide screens, 2 on tablets, 1 on
    phones. With a timeframe, each card links to the events behind it in that window (and,
    for a KPI filtered by repository/team, `scope_query` keeps the filter)."""
    def href(w: dict[str, Any]) -> str | None:
        if not timeframe:
            return None
        extra = f"&{scope_query}" if scope_query and w.get("filtered") else ""
        return f"/events/{quote(w['id'], safe='')}?timeframe={timeframe}{extra}"
    return dbc.Row([dbc.Col(kpi_card(w["id"], w["data"], href(w), w.get("filtered") is False),
                            xs=12, md=6, xl=3, className="mb-3")
                    for w in widgets], className="kpi-grid")
