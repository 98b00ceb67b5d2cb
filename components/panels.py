"""The widgets each role dashboard shows under its KPI cards (data from data.panels)."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.charts import comparison_chart, metric_trend
from components.kpi import format_value
from components.links import cell
from data.contrib import MICRO
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


def _panel(widget_id: str, title: str, body: Any, width: int, ui: dict[str, Any]) -> dbc.Col | None:
    """One widget in a card; its header links the widget's rows as CSV (analysts) and can
    hide it (personal settings). Hidden widgets are left out."""
    if widget_id in ui.get("hidden", ()):
        return None
    tools: list[Any] = []
    if ui.get("export"):
        tools.append(html.A("CSV", href=f"/api/widgets/{widget_id}/data?format=csv&{ui.get('query', '')}",
                            className="small ms-2 widget-csv", title="The rows of this widget as CSV"))
    if ui.get("configure"):
        tools.append(html.Button("Hide", id={"type": "widget-hide", "widget": widget_id},
                                 className="btn btn-link btn-sm p-0 ms-2 small widget-hide",
                                 title="Hide this widget (Show all brings it back)"))
    header = dbc.CardHeader(html.Div([html.Span(title, className="me-auto"), *tools], className="d-flex"),
                            className="small fw-semibold")
    # dbc.Card takes no data-* attributes: the html.Div around it carries data-widget.
    return dbc.Col(html.Div(dbc.Card([header, dbc.CardBody(body)], className="h-100 widget"), className="h-100",
                            **{"data-widget": widget_id}), xs=12, lg=width, className="mb-3")


def panels(name: str, data: dict[str, Any], mode: str = "light") -> dbc.Row:
    kpis = data["kpis"]
    ui = data.get("ui") or {}

    def panel(widget_id: str, title: str, body: Any, width: int = 6) -> dbc.Col | None:
        # Team scope (config/rbac.yaml other_teams): say how many rows lost their names.
        note = ((data.get("scope") or {}).get(widget_id) or {}).get("note")
        if note:
            body = html.Div([body, html.Div(note, className="small text-body-secondary mt-1 scope-note")])
        return _panel(widget_id, title, body, width, ui)
    cols: list[Any] = []
    view = data.get("view") or {}
    # Panels that cannot be split by repository/team say so while such a filter is on.
    every = " (all repositories and teams)" if view.get("repository") or view.get("team") else ""
    if name == "executive":
        cols = [panel("exec-trends", "Quality trends", metric_trend(data["trends"], mode=mode, id="exec-trends"), 8),
                panel("exec-cost", "Cost per review", metric_trend(data["cost"], mode=mode, id="exec-cost"), 4),
                panel("exec-cost-split", "Review cost by team (USD in the window)", comparison_chart(
                    {t: v["cost"] / MICRO for t, v in sorted(data["cost_split"]["team"].items())} or None,
                    mode=mode, id="exec-cost-split", unit="usd"), 6),
                panel("exec-teams", "Team performance: merged pull requests", comparison_chart(
                    dict(sorted(data["teams"].items())) or None, mode=mode, id="exec-teams", unit="count"), 6),
                panel("exec-roi", "Return on investment" + every, roi_card(data["roi"]), 6),
                panel("exec-risks", "Risk assessment", risk_matrix(data["risks"], mode=mode, id="exec-risks", height=320), 12)]
    elif name == "operational":
        steps = {k: kpis.get(k) for k in ("pending_dor_validations", "in_progress_reviews",
                                          "awaiting_dod_validation", "final_approvals_needed")}
        cols = [panel("ops-pipeline", "Workflow pipeline", pipeline_visualizer(steps, mode=mode, id="ops-pipeline")),
                panel("ops-queues", "Queue monitor" + every, queue_monitor(data["queues"], mode=mode, id="ops-queues")),
                panel("ops-agents", "Agents" + every, agent_status_grid(data["agents"], mode=mode, id="ops-agents"), 8),
                panel("ops-health", "System health", system_health(data["health"], mode=mode, id="ops-health"), 4),
                panel("ops-errors", "Errors per hour" + every, metric_trend(data["errors"], mode=mode, id="ops-errors"), 4),
                panel("ops-error-log", "Recent errors" + every, error_log_viewer(data["error_log"] or None, mode=mode, id="ops-error-log"), 8)]
    elif name == "qa":
        cols = [panel("qa-gates", "Quality gate performance (click a gate for details)" + every,
                       gate_performance(gates_from_kpis(kpis), mode=mode, id="qa-gates", height=380), 7),
                panel("qa-compliance", "Compliance" + (" (open violations: all repositories and teams)" if every else ""), compliance_status({**kpis, "violations": data["violations"]}, mode=mode,
                                                       id="qa-compliance"), 5),
                panel("qa-defects", "Defects found over time", metric_trend(data["defects"], mode=mode, id="qa-defects"), 6),
                panel("qa-defect-mix", _stage_title(data["defect_breakdown"]["stage"]) + every,
                       defect_distribution({k: v for k, v in data["defect_breakdown"].items() if k != "stage"},
                                           mode=mode, id="qa-defect-mix"), 6),
                panel("qa-risks", "Risk matrix (likelihood from this window's KPIs)",
                       risk_matrix(data["risks"], mode=mode, id="qa-risks"), 12)]
    elif name == "developer":
        cols = [panel("dev-queue", "My review queue", _table(data.get("my_reviews"), [("workflow_id", "Workflow"),
                                                                          ("since", "Started (UTC)")], "dev-queue",
                                                 "No review waiting for you"), 6),
                panel("dev-suggested", "Suggested reviews (waiting longest, nobody reviewing)",
                       _table(data.get("suggested"), [("workflow_id", "Workflow"), ("repository", "Repository"),
                                                      ("author", "Author"), ("step_since", "In review since (UTC)")],
                              "dev-suggested", "Nothing is waiting for a reviewer"), 6),
                panel("dev-kanban", "My open pull requests", kanban_board(data.get("my_prs"), mode=mode, id="dev-kanban"), 12)]
    shown = [c for c in cols if c is not None]
    hidden = len(cols) - len(shown)
    if hidden:
        label = f"Show {hidden} hidden widget{'s' if hidden > 1 else ''}"
        shown.append(dbc.Col(html.Button(label, id={"type": "widgets-show-all", "n": 0},
                                         className="btn btn-outline-secondary btn-sm"), xs=12, className="mb-3"))
    return dbc.Row(shown, className="panels")


def _table(rows: list[dict[str, Any]] | None, columns: list[tuple[str, str]], id: str, empty: str) -> Any:
    """A small table; an empty list says so in words (an empty queue is a fact, not missing data)."""
    if rows is None:
        return html.Div("no data", className="widget-no-data text-body-secondary", id=id)
    if not rows:
        return html.Div(empty, className="text-body-secondary small", id=id)
    return dbc.Table([html.Thead(html.Tr([html.Th(label) for _, label in columns])),
                      html.Tbody([html.Tr([html.Td(cell(key, r.get(key))) for key, _ in columns]) for r in rows])],
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
