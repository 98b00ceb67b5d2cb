"""Entity pages: a workflow (pull request) at /workflows/<id> and an agent at /agents/<id>.
Layouts only; callbacks/entity.py checks the permission and fills them from data/entities.py."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from pages.dashboard import TIMEFRAMES


def _refresh(button_id: str) -> dbc.Button:
    return dbc.Button("↻ Refresh", id=button_id, size="sm", color="secondary", outline=True, className="ms-auto")


def workflow_layout(workflow_id: str) -> html.Div:
    return html.Div([
        html.Div([dcc.Link("← Dashboards", href="/", className="small", id="entity-back"), _refresh("workflow-refresh")],
                 className="d-flex align-items-center mb-2"),
        dcc.Store(id="workflow-spec", data={"id": workflow_id}),
        dcc.Loading(html.Div(id="workflow-body"), delay_show=300),
    ], **{"data-page": "workflow"})


def agent_layout(agent_id: str, timeframe: str = "24h") -> html.Div:
    return html.Div([
        html.Div([dcc.Link("← Dashboards", href="/", className="small me-auto", id="entity-back"),
                  dbc.RadioItems(id="agent-timeframe", options=[{"label": t, "value": t} for t in TIMEFRAMES],
                                 value=timeframe if timeframe in TIMEFRAMES else "24h", inline=True,
                                 className="btn-group", inputClassName="btn-check",
                                 labelClassName="btn btn-outline-primary btn-sm", labelCheckedClassName="active"),
                  _refresh("agent-refresh")], className="d-flex align-items-center gap-2 mb-2"),
        dcc.Store(id="agent-spec", data={"id": agent_id}),
        dcc.Loading(html.Div(id="agent-body"), delay_show=300),
    ], **{"data-page": "agent"})
