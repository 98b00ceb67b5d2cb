"""The Reviewers page (/reviewers) and one reviewer's page (/reviewers/<id>): layouts only;
callbacks/reviewers.py checks the permission and fills them from api/reviewers.py's data."""
from __future__ import annotations

from typing import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from pages.dashboard import TIMEFRAMES


def _timeframes(component_id: str, value: str) -> dbc.RadioItems:
    return dbc.RadioItems(id=component_id, options=[{"label": t, "value": t} for t in TIMEFRAMES],
                          value=value if value in TIMEFRAMES else "24h", inline=True, className="btn-group",
                          inputClassName="btn-check", labelClassName="btn btn-outline-primary btn-sm",
                          labelCheckedClassName="active")


def _refresh(button_id: str) -> dbc.Button:
    return dbc.Button("↻ Refresh", id=button_id, size="sm", color="secondary", outline=True)


def layout(timeframe: str = "24h", teams: Sequence[str] = (), repositories: Sequence[str] = (),
           team: str | None = None, repository: str | None = None) -> html.Div:
    return html.Div([
        html.Div([html.H1("Reviewers", className="h4 mb-0 me-auto"),
                  dcc.Dropdown(id="reviewers-team", options=list(teams), value=team, placeholder="Any team",
                               clearable=True, style={"minWidth": "10rem"}),
                  dcc.Dropdown(id="reviewers-repository", options=list(repositories), value=repository,
                               placeholder="Any repository", clearable=True, style={"minWidth": "12rem"}),
                  _timeframes("reviewers-timeframe", timeframe), _refresh("reviewers-refresh")],
                 className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.P("People, AI agents and bots measured by what happened after they reviewed: findings accepted or "
               "dismissed, defects that escaped to production, time to first review. docs/METRICS.md, "
               "\"The reviewer ledger\".", className="small text-body-secondary mb-2"),
        dcc.Loading(html.Div(id="reviewers-body"), delay_show=300),
    ], **{"data-page": "reviewers"})


def reviewer_layout(reviewer: str, timeframe: str = "24h") -> html.Div:
    return html.Div([
        html.Div([dcc.Link("← Reviewers", href="/reviewers", className="small me-auto", id="reviewer-back"),
                  _timeframes("reviewer-timeframe", timeframe), _refresh("reviewer-refresh")],
                 className="d-flex align-items-center gap-2 mb-2"),
        dcc.Store(id="reviewer-spec", data={"id": reviewer}),
        dcc.Loading(html.Div(id="reviewer-body"), delay_show=300),
    ], **{"data-page": "reviewer"})
