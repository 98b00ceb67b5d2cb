"""The integrations page: per source (GitHub, GitLab, SonarQube) whether its receiver is
configured, its delivery counters, last delivery and last failure; the stored deliveries of
one source in a grid; Replay of the selected one; the mapping file's state."""
from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

SOURCES = ["github", "gitlab", "sonarqube"]
STATUSES = ["mapped", "unknown", "ignored", "invalid", "duplicate"]
COLUMNS = [
    {"field": "received_at", "headerName": "Received (UTC)", "minWidth": 190, "sort": "desc"},
    {"field": "event", "headerName": "Event", "minWidth": 160},
    {"field": "status", "headerName": "Status", "maxWidth": 130,
     "cellClassRules": {"text-danger fw-semibold": "params.value == 'invalid'",
                        "text-body-secondary": "params.value == 'duplicate' || params.value == 'ignored'"}},
    {"field": "events", "headerName": "Events", "maxWidth": 100},
    {"field": "error", "headerName": "Error", "flex": 2},
    {"field": "id", "headerName": "Delivery", "minWidth": 200},
    {"field": "bytes", "headerName": "Bytes", "maxWidth": 110},
    {"field": "replay", "headerName": "Replay", "maxWidth": 100},
    {"field": "entry", "hide": True},
]


def layout(refresh_ms: int = 5000) -> html.Div:
    return html.Div([
        html.H1("Integrations", className="h4 mb-2"),
        html.Div(id="int-mapping", className="small mb-2"),
        dbc.Row(id="int-sources", className="g-2 mb-3"),
        html.Div([
            html.H2("Deliveries", className="h6 mb-0 me-auto"),
            dcc.Dropdown(id="int-source", options=SOURCES, value="github", clearable=False,
                         style={"minWidth": "10rem"}),
            dcc.Dropdown(id="int-status", options=STATUSES, placeholder="Any status", clearable=True,
                         style={"minWidth": "10rem"}),
            dbc.Button("Replay selected", id="int-replay", size="sm", color="primary"),
            html.Span(id="int-replay-result", className="small"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        dag.AgGrid(id="int-grid", columnDefs=COLUMNS, rowData=[], getRowId="params.data.entry",
                   defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                   dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True,
                                                     "checkboxes": False}, "animateRows": False},
                   style={"height": "55vh"}),
        dcc.Interval(id="int-refresh", interval=max(refresh_ms, 5000)),
    ], **{"data-page": "integrations"})
