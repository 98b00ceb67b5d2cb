"""The alerts page: active, pending, acknowledged and resolved alerts with filters;
acknowledge with a comment; the history of the selected alert's rule; the channels'
delivery status and the rules in force (and a refused rule file, if any)."""
from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.links import labels_column

COLUMNS = [
    {"field": "status", "headerName": "Status", "maxWidth": 140,
     "cellClassRules": {"text-danger fw-semibold": "params.value == 'firing'",
                        "text-warning": "params.value == 'pending'", "text-body-secondary": "params.value == 'resolved'"}},
    {"field": "severity", "headerName": "Severity", "maxWidth": 120},
    {"field": "rule", "headerName": "Rule", "minWidth": 180},
    labels_column("entity", "Entity"),
    {"field": "value", "headerName": "Value"},
    {"field": "condition", "headerName": "Condition", "minWidth": 160},
    {"field": "since_iso", "headerName": "Since (UTC)", "minWidth": 190, "sort": "desc"},
    {"field": "ack", "headerName": "Acknowledged", "minWidth": 200},
    {"field": "id", "hide": True},
]
HISTORY = [
    {"field": "at", "headerName": "When (UTC)", "minWidth": 190, "sort": "desc"},
    {"field": "change", "headerName": "Change"},
    {"field": "entity", "headerName": "Entity"},
    {"field": "value", "headerName": "Value"},
    {"field": "by", "headerName": "By / comment", "flex": 2},
]


def layout(can_ack: bool, refresh_ms: int = 5000) -> html.Div:
    return html.Div([
        html.Div([
            html.H1("Alerts", className="h4 mb-0 me-auto"),
            dcc.Dropdown(id="alerts-severity", options=["critical", "warning", "info"], placeholder="Any severity",
                         clearable=True, style={"minWidth": "10rem"}),
            dcc.Dropdown(id="alerts-status", options=["firing", "pending", "acknowledged", "resolved", "no_data"],
                         placeholder="Any status", clearable=True, style={"minWidth": "10rem"}),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.Div(id="alerts-banner"),
        # The grid from the md breakpoint up; on phones the same rows as cards (a tap selects).
        html.Div(dag.AgGrid(id="alerts-grid", columnDefs=COLUMNS, rowData=[], getRowId="params.data.id",
                            defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                            dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True,
                                                              "checkboxes": False}, "animateRows": False},
                            style={"height": "40vh"}), className="d-none d-md-block"),
        html.Div(id="alerts-cards", className="d-md-none"),
        html.Div([
            dbc.Input(id="alerts-comment", placeholder="comment (optional)", size="sm", maxLength=1000,
                      style={"maxWidth": "28rem"}),
            dbc.Button("Acknowledge selected", id="alerts-ack", size="sm", color="primary", disabled=True),
            html.Span(id="alerts-ack-result", className="small"),
        ], className="d-flex align-items-center flex-wrap gap-2 my-2" + ("" if can_ack else " d-none")),
        html.H2(id="alerts-history-title", children="History (select an alert)", className="h6 mt-3"),
        dag.AgGrid(id="alerts-history", columnDefs=HISTORY, rowData=[],
                   defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                   style={"height": "28vh"}),
        dbc.Row([dbc.Col([html.H2("Channels", className="h6 mt-3"), html.Div(id="alerts-channels")], md=6),
                 dbc.Col([html.H2("Rules", className="h6 mt-3"), html.Div(id="alerts-rules")], md=6)]),
        dcc.Interval(id="alerts-refresh", interval=refresh_ms),
        # Pushed alerts (assets/live.js) refresh the grid at once; the interval is the fallback.
        html.Div(id="live-config", hidden=True, **{"data-channels": "alerts", "data-ws": "/ws",
                                                   "data-sse": "/api/stream"}),
    ], **{"data-page": "alerts"})
