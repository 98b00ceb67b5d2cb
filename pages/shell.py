"""The app's frame: navigation (only what the signed-in user may open) and the page slot
a router callback fills. No data here: pages are built by callbacks that check permissions.

Below the md breakpoint (phones) the navigation folds behind a toggler (callbacks/shell.py
opens it, and closes it on navigation); the brand, the live status and the "history still
loading" notice stay visible in the bar."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.theme import template_json

# Both Plotly templates as JSON, the charts' own (each page's layout carried them, rebuilt).
THEME_TEMPLATES = {m: template_json(m) for m in ("light", "dark")}

BACKFILL_POLL_MS = 5000      # the notice's own light poll; stopped once no backfill runs


def layout(first: dict[str, Any] | None = None) -> html.Div:
    """The frame; with `first` (callbacks/pages.py first_page) the page being opened is drawn
    in it — navigation, user, notice and page — and `page-drawn` names it for the router."""
    first = first or {}
    text, hidden, poll_off = first.get("notice") or ("", True, False)
    return html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="page-drawn", data=first.get("path")),   # the path the page came drawn for
        dcc.Store(id="route-path"),                          # the path the router is asked to draw
        dcc.Store(id="theme-saved", data=first.get("saved_theme")),
        dcc.Location(id="url-sync", refresh="callback-nav"),   # writes ?timeframe= without a reload
        dcc.Location(id="nav", refresh=True),
        dbc.Navbar(dbc.Container([
            dbc.NavbarBrand("QMS Dashboard", href="/", className="fw-bold"),
            html.Span(text, id="backfill-notice", hidden=hidden, role="status",
                      className="backfill-notice badge text-bg-warning me-2",
                      title="The demo is still simulating its history: older windows fill in as it loads"),
            html.Span("◌ connecting…", id="live-status", className="live-status navbar-text small me-2 ms-auto ms-md-0",
                      title="Live updates: live (pushed), reconnecting, or polling"),
            dbc.NavbarToggler(id="nav-toggler", n_clicks=0, className="ms-1"),
            dbc.Collapse([
                dbc.Nav(first.get("nav"), id="nav-links", className="me-auto", navbar=True),
                html.Div([
                    html.Span(first.get("who"), id="nav-user", className="navbar-text small me-md-3"),
                    dbc.Button("◐ Theme", id="theme-toggle", size="sm", color="light", outline=True,
                               title="Switch between light and dark"),
                    # Sign-out is a POST with the CSRF token (assets/signout.js adds it as the form is
                    # sent; without it the server answers with a one-click confirm form).
                    html.Form(html.Button("Sign out", type="submit", className="btn btn-sm btn-outline-light",
                                          id="sign-out"),
                              method="post", action="/logout", id="sign-out-form", className="d-inline m-0"),
                ], className="nav-tools d-flex flex-wrap align-items-center gap-2 py-2 py-md-0"),
            ], id="nav-collapse", is_open=False, navbar=True),
        ], fluid=True), color="primary", dark=True, expand="md", className="mb-3"),
        dcc.Interval(id="backfill-poll", interval=BACKFILL_POLL_MS, disabled=poll_off),
        dcc.Store(id="theme", data="light", storage_type="local"),   # this browser's, for roles that cannot save it
        dcc.Store(id="live-alert"),
        # Both Plotly templates, so a theme switch re-themes the charts on screen at once.
        dcc.Store(id="plot-templates", data=THEME_TEMPLATES),
        html.Div(id="theme-applied", hidden=True),
        dbc.Container(first.get("page"), id="page", fluid=True),
    ])
