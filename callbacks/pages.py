"""The router and the dashboard refresh: thin adapters that check the permission (again,
after the request guard), call the KPI engine and hand the result to components."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from flask import current_app

from auth.guard import AUTHENTICATED, callback_input, secure_callback
from auth.principal import Principal, audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from components.kpi import kpi_grid
from pages import audit as audit_page
from pages import dashboard

NAV_LABELS = {"executive": "Executive", "operational": "Operations", "qa": "Quality", "developer": "My reviews"}


def allowed_dashboards(principal: Principal | None) -> list[str]:
    return [d for d, perm in DASHBOARD_PERMISSION.items() if authorize(principal, perm)]


def dashboard_for_path(path: str | None, principal: Principal | None) -> str | None:
    """'/' is the first dashboard the user may open; '/dashboards/<name>' is that one."""
    path = (path or "/").rstrip("/") or "/"
    if path == "/":
        mine = allowed_dashboards(principal)
        return mine[0] if mine else None
    if path.startswith("/dashboards/"):
        name = path[len("/dashboards/"):]
        return name if name in DASHBOARD_PERMISSION else None
    return None


def _refresh_permission(body: dict[str, Any]) -> str | None:
    name = dashboard_for_path(callback_input(body, "url", "pathname"), current_principal())
    return DASHBOARD_PERMISSION.get(name or "")


def register(app: Dash) -> None:
    @secure_callback(app, AUTHENTICATED,
                     Output("nav-links", "children"), Output("nav-user", "children"), Output("page", "children"),
                     Input("url", "pathname"))
    def route(path: str | None) -> tuple[Any, str, Any]:
        principal = current_principal()
        mine = allowed_dashboards(principal)
        nav = [dbc.NavItem(dbc.NavLink(NAV_LABELS[d], href=f"/dashboards/{d}", id=f"nav-{d}")) for d in mine]
        if authorize(principal, "view:audit_logs"):
            nav.append(dbc.NavItem(dbc.NavLink("Audit", href="/audit", id="nav-audit")))
        who = f"{principal.name} ({', '.join(principal.roles)})" if principal else ""
        if (path or "").rstrip("/") == "/audit":
            if not authorize(principal, "view:audit_logs"):
                audit("authz.denied", "denied", page=path, permission="view:audit_logs")
                return nav, who, dashboard.forbidden("view:audit_logs")
            audit("user.dashboard_accessed", dashboard="audit")
            return nav, who, audit_page.layout()
        name = dashboard_for_path(path, principal)
        refresh = current_app.extensions["qms"].settings.refresh_ms
        if name is None:
            if (path or "/").rstrip("/") in ("", "/"):
                return nav, who, html.P("Your role has no dashboards yet.", className="py-4")
            return nav, who, dashboard.not_found(path or "")
        permission = DASHBOARD_PERMISSION[name]
        if not authorize(principal, permission):
            audit("authz.denied", "denied", page=path, permission=permission)
            return nav, who, dashboard.forbidden(permission)
        audit("user.dashboard_accessed", dashboard=name)
        return nav, who, dashboard.layout(name, refresh)

    @secure_callback(app, _refresh_permission,
                     Output("dash-kpis", "children"), Output("dash-window", "children"),
                     Output("dash-freshness", "children"),
                     Input("dash-refresh", "n_intervals"), Input("dash-timeframe", "value"), State("url", "pathname"))
    def refresh(_n: Any, timeframe: str, path: str | None) -> tuple[Any, str, str]:
        principal = current_principal()
        name = dashboard_for_path(path, principal)
        if name is None or not authorize(principal, DASHBOARD_PERMISSION[name]):
            raise PreventUpdate          # unreachable past the guard; kept as a second lock
        if ctx.triggered_id == "dash-timeframe":
            audit("user.filter_applied", dashboard=name, timeframe=timeframe)
        user = principal.name if name == "developer" and principal else None
        out = current_app.extensions["qms"].engine.dashboard(name, timeframe or "24h", user=user)
        data, meta = out["data"], out["metadata"]
        window = f"Window {data['window']['start']} → {data['window']['end']} (UTC), compared with the window before"
        fresh = meta["data_freshness"]
        freshness = "no data yet" if fresh is None else f"updated {fresh}s ago"
        return kpi_grid(data["widgets"]), window, freshness

    @secure_callback(app, "view:audit_logs", Output("audit-grid", "rowData"), Output("audit-csv", "href"),
                     Input("audit-refresh", "n_intervals"), Input("audit-user", "value"), Input("audit-action", "value"))
    def audit_rows(_n: Any, user: str | None, action: str | None) -> tuple[list[dict[str, Any]], str]:
        entries = current_app.extensions["qms"].audit.query(user=user or None, action_prefix=action or None, limit=2000)
        rows = [{"timestamp": e["timestamp"], "type": e["type"], "user": e["data"].get("user"),
                 "ip": e["data"].get("ip"), "outcome": e["data"].get("outcome"),
                 "details": ", ".join(f"{k}={v}" for k, v in e["data"].items() if k not in ("user", "ip", "outcome"))}
                for e in entries]
        query = urlencode({k: v for k, v in (("format", "csv"), ("user", user), ("action", action)) if v})
        return rows, f"/api/audit?{query}"
