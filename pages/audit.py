"""The audit log page: who did what, filterable, exportable as CSV."""
from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

COLUMNS = [
    {"field": "timestamp", "headerName": "When (UTC)", "sort": "desc", "minWidth": 190},
    {"field": "type", "headerName": "Action", "minWidth": 190},
    {"field": "user", "headerName": "User"},
    {"field": "ip", "headerName": "Address"},
    {"field": "outcome", "headerName": "Outcome"},
    {"field": "details", "headerName": "Details", "flex": 2},
]


def layout() -> html.Div:
    return html.Div([
        html.Div([
            html.H1("Audit log", className="h4 mb-0 me-auto"),
            dbc.Input(id="audit-user", placeholder="user", size="sm", debounce=True, style={"maxWidth": "12rem"}),
            dbc.Input(id="audit-action", placeholder="action prefix, e.g. auth.", size="sm", debounce=True,
                      style={"maxWidth": "14rem"}),
            html.A("Export CSV", id="audit-csv", href="/api/audit?format=csv", className="btn btn-sm btn-outline-primary"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-3"),
        dag.AgGrid(id="audit-grid", columnDefs=COLUMNS, rowData=[],
                   defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                   dashGridOptions={"rowBuffer": 20, "animateRows": False}, style={"height": "70vh"}),
        dcc.Interval(id="audit-refresh", interval=10_000),
    ])
