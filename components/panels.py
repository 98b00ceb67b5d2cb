"""The widgets each role dashboard shows under its KPI cards (data from data.panels)."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.charts import comparison_chart, metric_trend
from components.kpi import format_value
from components.ops import (
    agent_status_grid,
    kanban_board,
    pipeline_visualizer,
    queue_monitor,
)
from components.quality import (
    compliance_status,
    defect_distribution,
    gate_performance,
    gates_from_kpis,
    risk_matrix,
)
from components.system import error_log_viewer, system_health


def _panel(title: str, body: Any, width: int = 6) -> dbc.Col:
    return dbc.Col(dbc.Card([dbc.CardHeader(title, className="small fw-semibold"), dbc.CardBody(body)],
                            className="h-100 widget"), xs=12, lg=width, className="mb-3")


def panels(name: str, data: dict[str, Any], mode: str = "light") -> dbc.Row:
    kpis = data["kpis"]
    cols: list[Any] = []
    view = data.get("view") or {}
    # Panels that cannot be split by repository/team say so while such a filter is on.
    every = " (all repositories and teams)" if view.get("repository") or view.get("team") else ""
    if name == "executive":
        cols = [_panel("Quality trends", metric_trend(data["trends"], mode=mode, id="exec-trends"), 8),
                _panel("Cost per review" + every, metric_trend(data["cost"], mode=mode, id="exec-cost"), 4),
                _panel("Team performance: merged pull requests", comparison_chart(
                    dict(sorted(data["teams"].items())) or None, mode=mode, id="exec-teams", unit="count"), 6),
                _panel("Return on investment" + every, roi_card(data["roi"]), 6),
                _panel("Risk assessment", risk_matrix(data["risks"], mode=mode, id="exec-risks", height=320), 12)]
    elif name == "operational":
        steps = {k: kpis.get(k) for k in ("pending_dor_validations", "in_progress_reviews",
                                          "awaiting_dod_validation", "final_approvals_needed")}
        cols = [_panel("Workflow pipeline", pipeline_visualizer(steps, mode=mode, id="ops-pipeline")),
                _panel("Queue monitor" + every, queue_monitor(data["queues"], mode=mode, id="ops-queues")),
                _panel("Agents" + every, agent_status_grid(data["agents"], mode=mode, id="ops-agents"), 8),
                _panel("System health", system_health(data["health"], mode=mode, id="ops-health"), 4),
                _panel("Errors per hour" + every, metric_trend(data["errors"], mode=mode, id="ops-errors"), 4),
                _panel("Recent errors" + every, error_log_viewer(data["error_log"] or None, mode=mode, id="ops-error-log"), 8)]
    elif name == "qa":
        cols = [_panel("Quality gate performance (click a gate for details)" + every,
                       gate_performance(gates_from_kpis(kpis), mode=mode, id="qa-gates", height=380), 7),
                _panel("Compliance" + (" (open violations: all repositories and teams)" if every else ""), compliance_status({**kpis, "violations": data["violations"]}, mode=mode,
                                                       id="qa-compliance"), 5),
                _panel("Defects found over time", metric_trend(data["defects"], mode=mode, id="qa-defects"), 6),
                _panel(_stage_title(data["defect_breakdown"]["stage"]) + every,
                       defect_distribution({k: v for k, v in data["defect_breakdown"].items() if k != "stage"},
                                           mode=mode, id="qa-defect-mix"), 6),
                _panel("Risk matrix (likelihood from this window's KPIs)",
                       risk_matrix(data["risks"], mode=mode, id="qa-risks"), 12)]
    elif name == "developer":
        cols = [_panel("My review queue", _table(data.get("my_reviews"), [("workflow_id", "Workflow"),
                                                                          ("since", "Started (UTC)")], "dev-queue",
                                                 "No review waiting for you"), 6),
                _panel("Suggested reviews (waiting longest, nobody reviewing)",
                       _table(data.get("suggested"), [("workflow_id", "Workflow"), ("repository", "Repository"),
                                                      ("author", "Author"), ("step_since", "In review since (UTC)")],
                              "dev-suggested", "Nothing is waiting for a reviewer"), 6),
                _panel("My open pull requests", kanban_board(data.get("my_prs"), mode=mode, id="dev-kanban"), 12)]
    return dbc.Row(cols, className="panels")


def _table(rows: list[dict[str, Any]] | None, columns: list[tuple[str, str]], id: str, empty: str) -> Any:
    """A small table; an empty list says so in words (an empty queue is a fact, not missing data)."""
    if rows is None:
        return html.Div("no data", className="widget-no-data text-body-secondary", id=id)
    if not rows:
        return html.Div(empty, className="text-body-secondary small", id=id)
    return dbc.Table([html.Thead(html.Tr([html.Th(label) for _, label in columns])),
                      html.Tbody([html.Tr([html.Td(r.get(key)) for key, _ in columns]) for r in rows])],
                     size="sm", hover=True, responsive=True, className="mb-0", id=id)


def roi_card(roi: dict[str, Any]) -> Any:
    """Review cost against the engineering time it saves, with the assumptions in view."""
    a = roi["assumptions"]
    assumptions = html.P([
        "Assumes each review saves ", html.B(f"{a['hours_saved_per_review']:g} h"), " of engineering time at ",
        html.B(f"${a['engineer_hourly_cost_usd']:,.0f}/h"), " (settings: roi)."], className="small text-body-secondary")
    if roi["saved_usd"] is None:
        return html.Div([html.Div("no data", className="widget-no-data text-body-secondary"), assumptions], id="exec-roi")
    cells = [("Reviews", format_value(roi["reviews"], "count")), ("Review cost", format_value(roi["cost_usd"], "usd")),
             ("Time saved", format_value(roi["saved_usd"], "usd")), ("ROI", format_value(roi["roi_pct"], "percentage"))]
    return html.Div([dbc.Row([dbc.Col([html.Div(k, className="small text-body-secondary"),
                                       html.Div(v, className="fs-5 fw-semibold")], xs=6, md=3) for k, v in cells],
                             className="g-2 mb-2"), assumptions], id="exec-roi")


def _stage_title(stages: dict[str, int]) -> str:
    """The panel title carries where defects were found (review vs escaped to production)."""
    if not stages:
        return "Defects by severity and category"
    parts = ", ".join(f"{n:,} in {stage}" for stage, n in sorted(stages.items()))
    return f"Defects by severity and category ({parts})"
