"""The app's frame: navigation (only what the signed-in user may open) and the page slot
a router callback fills. No data here: pages are built by callbacks that check permissions."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.theme import plotly_template


def layout() -> html.Div:
    return html.Div([
        dcc.Location(id="url"),
        dcc.Location(id="url-sync", refresh="callback-nav"),   # writes ?timeframe= without a reload
        dcc.Location(id="nav", refresh=True),
        dbc.Navbar(dbc.Container([
            dbc.NavbarBrand("QMS Dashboard", href="/", className="fw-bold"),
            dbc.Nav(id="nav-links", className="me-auto", navbar=True),
            html.Span("◌ connecting…", id="live-status", className="live-status navbar-text small me-3",
                      title="Live updates: live (pushed), reconnecting, or polling"),
            html.Span(id="nav-user", className="navbar-text small me-3"),
            dbc.Button("◐ Theme", id="theme-toggle", size="sm", color="light", outline=True, className="me-2",
                       title="Switch between light and dark"),
            # Sign-out is a POST with the CSRF token (assets/signout.js adds it as the form is
            # sent; without it the server answers with a one-click confirm form).
            html.Form(html.Button("Sign out", type="submit", className="btn btn-sm btn-outline-light",
                                  id="sign-out"),
                      method="post", action="/logout", id="sign-out-form", className="d-inline m-0"),
        ], fluid=True), color="primary", dark=True, className="mb-3"),
        dcc.Store(id="theme", data="light", storage_type="local"),   # this browser's, for roles that cannot save it
        dcc.Store(id="live-alert"),
        # Both Plotly templates, so a theme switch re-themes the charts on screen at once.
        dcc.Store(id="plot-templates", data={m: plotly_template(m).to_plotly_json() for m in ("light", "dark")}),
        html.Div(id="theme-applied", hidden=True),
        dbc.Container(id="page", fluid=True),
    ])
