"""KPI card widgets: plain KPI data (the API's widget `data`) in, Dash components out.

A card says what its number means: the change against the previous window with its sign
coloured good or bad by the metric's direction (a rising cycle time is bad), no arrow when
the change rounds to nothing at the precision shown, the sample size when it is small
("n = 7"), a sparkline, and the alert threshold the value has reached.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
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
# Below this many events behind a value, a card shows its sample size ("n = 7").
SMALL_SAMPLE = 30
# Threshold level → Bootstrap contextual name (borders, badges, progress bars).
LEVEL_BS = {"ok": "success", "warning": "warning", "critical": "danger"}


def title_of(kpi_id: str) -> str:
    return TITLES.get(kpi_id) or kpi_id.replace("_", " ").replace(".", " · ").capitalize()


def format_value(value: Any, unit: str | None, *, round_money: bool = False) -> str:
    """A KPI value as people read it; None is 'no data', never 0. `round_money` (executive
    views): whole dollars, cents only below $10."""
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
        return _whole_dollars(value) if round_money and abs(value) >= 10 else f"${value:,.2f}"
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


def _whole_dollars(value: float) -> str:
    return f"${Decimal(str(value)).quantize(Decimal(1), ROUND_HALF_UP):,}"     # half a dollar rounds up


def format_delta(delta: float, unit: str | None, *, round_money: bool = False,
                 whole_dollars: bool = False) -> str | None:
    """A change as people read it, signed and with its unit ("+2.0 pp" for percentages, "-30 min",
    "+$1.20"; `whole_dollars`: "+$35"); None when it rounds to nothing at the precision shown."""
    size = abs(delta)
    if unit == "percentage":
        text = f"{size:.1f} pp"
    elif unit == "score":
        text = f"{size:.1f}"
    elif unit == "points":
        text = f"{size:.1f} pts"
    elif unit == "usd" and whole_dollars:
        text = _whole_dollars(size)
    else:
        text = format_value(size, unit, round_money=round_money)
    if not re.search(r"[1-9]", text):
        return None
    return ("+" if delta > 0 else "-") + text


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, (bool, list, dict, str)) or v != v:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def change(current: Any, previous: Any, unit: str | None, direction: str | None = None, *,
           round_money: bool = False) -> dict[str, Any] | None:
    """The change from `previous` to `current`: {"text", "arrow", "good"} — `text` None and no
    arrow when it rounds to nothing (both values read the same as shown); `good` True/False by the metric's direction
    ("higher_is_better" | "lower_is_better"), None without one. None when either is missing."""
    cur, prev = _number(current), _number(previous)
    if cur is None or prev is None:
        return None
    delta = cur - prev
    money = {"round_money": round_money}
    # The values as shown: when they read the same, the change is nothing at that precision.
    same = format_value(cur, unit, **money) == format_value(prev, unit, **money)
    whole = round_money and unit == "usd" and min(abs(cur), abs(prev)) >= 10
    text = None if same else format_delta(delta, unit, round_money=round_money, whole_dollars=whole)
    if text is None:
        return {"text": None, "arrow": None, "good": None}
    good = None
    if direction in ("higher_is_better", "lower_is_better"):
        good = (delta > 0) == (direction == "higher_is_better")
    return {"text": text, "arrow": ARROWS["up" if delta > 0 else "down"], "good": good}


def _delta(ch: dict[str, Any] | None) -> html.Span | None:
    if ch is None:
        return None
    if ch["text"] is None:
        return html.Span("no change", className="kpi-delta kpi-delta-none text-body-secondary me-2",
                         title="The change rounds to nothing at the precision shown")
    if ch["good"] is None:
        cls, say = "kpi-delta-neutral text-body-secondary", "change against the previous window"
    elif ch["good"]:
        cls, say = "kpi-delta-good text-success-emphasis", "better than the previous window"
    else:
        cls, say = "kpi-delta-bad text-danger-emphasis", "worse than the previous window"
    return html.Span([html.Span(ch["arrow"], className="kpi-arrow me-1"), ch["text"]],
                     className=f"kpi-delta {cls} fw-semibold me-2", title=say)


def kpi_card(kpi_id: str, data: dict[str, Any], href: str | None = None, unfiltered: bool = False, *,
             direction: str | None = None, sample: Any = None, spark: Any = None, level: str | None = None,
             round_money: bool = False, title: str | None = None, value_id: Any = None) -> html.Div:
    """One KPI ({"current_value", "previous_value", "trend", "unit"}). `unfiltered`: the page is
    filtered but this KPI cannot be split that way, so the card says it counts everything (a
    number must never pass for what it is not). `direction` colours the change good or bad,
    `sample` below SMALL_SAMPLE is shown as "n = 7", `spark` (a component) sits under the value,
    `level` ("ok" | "warning" | "critical", from alert thresholds) colours the card's edge."""
    unit = data.get("unit")
    prev = data.get("previous_value")
    footer: list[Any] = [_delta(change(data.get("current_value"), prev, unit, direction, round_money=round_money))]
    footer.append(html.Span(f"previous: {format_value(prev, unit, round_money=round_money)}",
                            className="text-body-secondary"))
    n = _number(sample)
    if n is not None and n < SMALL_SAMPLE:
        footer.append(html.Span(f"n = {n:.0f}", className="kpi-sample badge text-bg-light border ms-2",
                                title=f"Only {n:.0f} events behind this value: it can swing a lot"))
    head: list[Any] = [title or title_of(kpi_id)]
    if unfiltered:
        head.append(html.Span("all", className="badge text-bg-secondary ms-2 kpi-unfiltered",
                              title="Not split by the filter: counts every repository and team"))
    if level in ("warning", "critical"):
        head.append(html.Span(level, className=f"badge text-bg-{LEVEL_BS[level]} ms-2 kpi-level-badge",
                              title=f"At or past the {level} threshold"))
    edge = f" kpi-level-{level} border-start border-4 border-{LEVEL_BS[level]}" if level in LEVEL_BS else ""
    # dbc.Card takes no data-* attributes: the html.Div around it carries data-kpi.
    card = dbc.Card(dbc.CardBody([
        html.Div(head, className="kpi-title text-body-secondary small"),
        html.Div(format_value(data.get("current_value"), unit, round_money=round_money),
                 className="kpi-value fs-3 fw-semibold",
                 id=value_id if value_id is not None else {"type": "kpi-value", "kpi": kpi_id}),
        spark,
        html.Div([f for f in footer if f is not None], className="kpi-footer small"),
    ]), className="kpi-card h-100" + edge)
    if href:   # the events behind the number, one click away
        card = dcc.Link(card, href=href, className="text-reset text-decoration-none kpi-link")
    return html.Div(card, className="h-100", **{"data-kpi": kpi_id})


def events_href(kpi_id: str, timeframe: str | None, scope_query: str = "", filtered: Any = None) -> str | None:
    """The events page behind a KPI in `timeframe` (None without one); a KPI filtered by
    repository/team keeps the filter (`scope_query`)."""
    if not timeframe:
        return None
    extra = f"&{scope_query}" if scope_query and filtered else ""
    return f"/events/{quote(kpi_id, safe='')}?timeframe={timeframe}{extra}"


def kpi_grid(widgets: list[dict[str, Any]], timeframe: str | None = None, scope_query: str = "") -> dbc.Row:
    """Cards in the seed's responsive grid: 4 per row on wide screens, 2 on tablets, 1 on
    phones. With a timeframe, each card links to the events behind it in that window (and,
    for a KPI filtered by repository/team, `scope_query` keeps the filter)."""
    return dbc.Row([dbc.Col(kpi_card(w["id"], w["data"], events_href(w["id"], timeframe, scope_query, w.get("filtered")),
                                     w.get("filtered") is False),
                            xs=12, md=6, xl=3, className="mb-3")
                    for w in widgets], className="kpi-grid")
