"""The Share dialog of a dashboard: roles, teams and users who may open it (callbacks/share.py
saves it as the shared definition)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboards.schema import Dashboard


def share_dialog(defn: Dashboard, roles: list[str], teams: list[str]) -> html.Div:
    """The Share button and its dialog (for those who may share: callbacks/share.py)."""
    v = defn.visibility
    return html.Div([
        dbc.Button("Share", id="dash-share-open", size="sm", color="secondary", outline=True, n_clicks=0),
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle(f"Share “{defn.title}”")),
            dbc.ModalBody([
                html.P("Who may open this dashboard besides its owner. Each widget still shows only the "
                       "data its viewer may read.", className="small text-body-secondary"),
                dbc.Label("Roles", html_for="dash-share-roles", className="small"),
                dcc.Dropdown(id="dash-share-roles", options=roles, value=list(v.roles), multi=True,
                             placeholder="No role"),
                dbc.Label("Teams", html_for="dash-share-teams", className="small mt-2"),
                dcc.Dropdown(id="dash-share-teams", options=teams, value=list(v.teams), multi=True,
                             placeholder="No team"),
                dbc.Label("Users (names, comma separated)", html_for="dash-share-users", className="small mt-2"),
                dbc.Input(id="dash-share-users", value=", ".join(v.users), size="sm"),
                html.Div(id="dash-share-status", className="small mt-2", role="status"),
            ]),
            dbc.ModalFooter([dbc.Button("Share", id="dash-share-save", color="primary", size="sm", n_clicks=0)]),
        ], id="dash-share-modal", is_open=False),
    ], className="d-inline")
