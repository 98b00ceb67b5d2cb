"""The first page: the executive KPIs, refreshing (the role dashboards replace it later)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

TIMEFRAMES = ["1h", "4h", "24h", "7d", "30d"]


def layout(refresh_ms: int = 5000) -> html.Div:
    return html.Div([
        dbc.Navbar(dbc.Container([
            dbc.NavbarBrand("QMS Dashboard", className="fw-bold"),
            html.Span(id="home-freshness", className="navbar-text small"),
        ], fluid=True), color="primary", dark=True, className="mb-3"),
        dbc.Container([
            html.Div([
                html.H1("Executive overview", className="h4 mb-0 me-auto"),
                dbc.RadioItems(id="home-timeframe", options=[{"label": t, "value": t} for t in TIMEFRAMES],
                               value="24h", inline=True, className="btn-group", inputClassName="btn-check",
                               labelClassName="btn btn-outline-primary btn-sm", labelCheckedClassName="active"),
            ], className="d-flex align-items-center flex-wrap gap-2 mb-3"),
            html.Div(id="home-window", className="text-body-secondary small mb-2"),
            dcc.Loading(html.Div(id="home-kpis"), delay_show=500),
            dcc.Interval(id="home-refresh", interval=refresh_ms),
        ], fluid=True),
    ])
