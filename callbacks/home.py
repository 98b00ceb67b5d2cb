"""Callbacks of the first page: thin adapters from inputs to the KPI engine to components."""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output
from flask import current_app

from components.kpi import kpi_grid


def register(app: Dash) -> None:
    @app.callback(
        Output("home-kpis", "children"), Output("home-window", "children"), Output("home-freshness", "children"),
        Input("home-refresh", "n_intervals"), Input("home-timeframe", "value"),
    )
    def refresh_home(_n: Any, timeframe: str) -> tuple[Any, str, str]:
        engine = current_app.extensions["qms"].engine
        out = engine.dashboard("executive", timeframe or "24h")
        data, meta = out["data"], out["metadata"]
        window = f"Window {data['window']['start']} → {data['window']['end']} (UTC), compared with the window before"
        fresh = meta["data_freshness"]
        freshness = "no data yet" if fresh is None else f"updated {fresh}s ago"
        return kpi_grid(data["widgets"]), window, freshness
