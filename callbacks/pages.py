"""The router and the dashboard refresh: thin adapters that check the permission (again,
after the request guard), call the KPI engine and hand the result to components."""
from __future__ import annotations

import json
from typing import Any

from urllib.parse import parse_qs, unquote, urlencode

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app

from auth.guard import AUTHENTICATED, Permissions, callback_input, secure_callback, secure_clientside
from auth.principal import Principal, audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from components.kpi import kpi_grid
from components.links import gate_href
from components.panels import panels
from data.panels import panel_data
from data.prefs import Prefs
from data.widget_rows import WIDGETS
from data.kpis import dashboard_of
from pages import alerts as alerts_page
from pages import audit as audit_page
from pages import dashboard
from callbacks import drilldown as drilldown_cb
from callbacks.inputs import (ClickData, Choice, Count, Ignored, Pathname, Search, Theme, TimeframeValue,
                              Version)
from callbacks.entity import page as entity_page
from callbacks.dashboards_list import page as dashboards_list_page

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


def _widgets_permission(body: dict[str, Any]) -> Permissions:
    """Hiding a widget needs update:personal_settings and the widget's dashboard, like its
    REST twin PUT /api/widgets/{id}/config; showing all of them, the setting only."""
    for prop_id in body.get("changedPropIds") or []:
        cid = prop_id.rsplit(".", 1)[0]
        trigger = json.loads(cid) if cid.startswith("{") else {}     # the guard checked it is one of the inputs
        dash_name = WIDGETS.get(str(trigger.get("widget")), (None,))[0] if trigger.get("type") == "widget-hide" else None
        if dash_name:
            return ("update:personal_settings", DASHBOARD_PERMISSION[dash_name])
    return "update:personal_settings"


def register(app: Dash) -> None:
    @secure_callback(app, AUTHENTICATED, Output("theme", "data"),
                     Input("theme-toggle", "n_clicks"), State("theme", "data"),
                     inputs={"theme-toggle.n_clicks": Count, "theme.data": Theme})
    def theme(clicks: int | None, current: str | None) -> Any:
        """Anyone may switch the theme of their own browser (the store lives in its local
        storage); it is saved with the user's settings, and follows them to other browsers,
        only for those with update:personal_settings — as PUT /api/widgets/{id}/config."""
        principal = current_principal()
        may_store = authorize(principal, "update:personal_settings")
        svc = current_app.extensions["qms"]
        prefs = Prefs(svc.redis, svc.keys)
        if not clicks:     # page load: the saved theme, else this browser's (re-sent, so the page applies it)
            return prefs.get(principal.name).get("theme", "light") if may_store and principal else current or "light"
        new = "dark" if (current or "light") == "light" else "light"
        if may_store and principal:
            prefs.set_theme(principal.name, new)
            audit("user.widget_configured", setting="theme", value=new)
        return new

    # Runs in the browser only: a POST of it to the server is refused for everyone.
    secure_clientside(app, lambda body: None,
                      "function(theme, templates) { theme = theme || 'light';"
                      " document.documentElement.setAttribute('data-bs-theme', theme);"
                      " var t = templates && templates[theme];"
                      " if (t && window.Plotly) { document.querySelectorAll('.js-plotly-plot').forEach(function(gd) {"
                      "   try { window.Plotly.relayout(gd, {template: t}); } catch (e) { console.debug(e); } }); }"
                      " return theme; }",
                      Output("theme-applied", "children"), Input("theme", "data"), State("plot-templates", "data"))

    @secure_callback(app, AUTHENTICATED,
                     Output("nav-links", "children"), Output("nav-user", "children"), Output("page", "children"),
                     Input("url", "pathname"), State("url", "search"),
                     inputs={"url.pathname": Pathname, "url.search": Search})
    def route(path: str | None, search: str | None) -> tuple[Any, str, Any]:
        principal = current_principal()
        mine = allowed_dashboards(principal)
        nav = [dbc.NavItem(dbc.NavLink(NAV_LABELS[d], href=f"/dashboards/{d}", id=f"nav-{d}")) for d in mine]
        if mine:       # every dashboard one may see, their own and shared ones (callbacks/dashboards_list.py)
            nav.append(dbc.NavItem(dbc.NavLink("Dashboards", href="/dashboards", id="nav-dashboards")))
        if authorize(principal, "view:alerts") and "qms_alerts" in current_app.extensions:
            firing = sum(1 for a in current_app.extensions["qms_alerts"].alerts(status="firing"))
            nav.append(dbc.NavItem(dbc.NavLink(["Alerts ", dbc.Badge(str(firing), id="nav-alert-count", pill=True,
                                                                    color="danger" if firing else "secondary")],
                                               href="/alerts", id="nav-alerts")))
        if authorize(principal, "view:audit_logs"):
            nav.append(dbc.NavItem(dbc.NavLink("Audit", href="/audit", id="nav-audit")))
        who = f"{principal.name} ({', '.join(principal.roles)})" if principal else ""
        if (path or "").rstrip("/") == "/alerts":
            if not authorize(principal, "view:alerts") or "qms_alerts" not in current_app.extensions:
                audit("authz.denied", "denied", page=path, permission="view:alerts")
                return nav, who, dashboard.forbidden("view:alerts")
            audit("user.dashboard_accessed", dashboard="alerts")
            return nav, who, alerts_page.layout(authorize(principal, "manage:alerts")
                                                or authorize(principal, "acknowledge:quality_alerts"),
                                                current_app.extensions["qms"].settings.refresh_ms)
        if (path or "").rstrip("/") == "/audit":
            if not authorize(principal, "view:audit_logs"):
                audit("authz.denied", "denied", page=path, permission="view:audit_logs")
                return nav, who, dashboard.forbidden("view:audit_logs")
            audit("user.dashboard_accessed", dashboard="audit")
            return nav, who, audit_page.layout()
        entity = entity_page(path, search, principal)        # /workflows/<id>, /agents/<id>
        if entity is not None:
            return nav, who, entity
        refresh = current_app.extensions["qms"].settings.refresh_ms
        timeframe = _timeframe(search)
        kpi = kpi_for_path(path)
        if kpi is not None:
            permission = DASHBOARD_PERMISSION.get(dashboard_of(kpi) or "")
            if permission is None:
                return nav, who, dashboard.not_found(path or "")
            if not authorize(principal, permission):
                audit("authz.denied", "denied", page=path, permission=permission)
                return nav, who, dashboard.forbidden(permission)
            audit("user.dashboard_accessed", dashboard="events", metric=kpi)
            view = view_of(search)
            back = f"/dashboards/{dashboard_of(kpi)}?" + urlencode({k: v for k, v in view.items()
                                                                    if k in ("timeframe", "repository", "team")})
            return nav, who, drilldown_cb.events_page(kpi, timeframe, back, view, principal)
        gate = gate_for_path(path)
        if gate is not None:
            if not authorize(principal, "view:qa_dashboard"):
                audit("authz.denied", "denied", page=path, permission="view:qa_dashboard")
                return nav, who, dashboard.forbidden("view:qa_dashboard")
            audit("user.dashboard_accessed", dashboard="gate", gate=gate)
            return nav, who, drilldown_cb.gate_page(gate, refresh, timeframe, principal)
        if (path or "").rstrip("/") == "/dashboards":     # the list of every dashboard one may see
            if not mine:
                audit("authz.denied", "denied", page=path, permission="view:*_dashboard")
                return nav, who, dashboard.forbidden("a dashboard permission (view:*_dashboard)")
            return nav, who, dashboards_list_page(search, principal)
        name = dashboard_for_path(path, principal)
        if name is None:
            if (path or "/").rstrip("/") in ("", "/"):
                return nav, who, html.P("Your role has no dashboards yet.", className="py-4")
            return nav, who, dashboard.not_found(path or "")
        permission = DASHBOARD_PERMISSION[name]
        if not authorize(principal, permission):
            audit("authz.denied", "denied", page=path, permission=permission)
            return nav, who, dashboard.forbidden(permission)
        audit("user.dashboard_accessed", dashboard=name)
        names = current_app.extensions["qms"].engine.names()
        return nav, who, dashboard.layout(name, refresh, timeframe, authorize(principal, "export:reports"),
                                          view_of(search), names)

    @secure_callback(app, _refresh_permission,
                     Output("dash-kpis", "children"), Output("dash-panels", "children"), Output("dash-window", "children"),
                     Output("dash-freshness", "children"), Output("url-sync", "search"), Output("dash-export", "href"),
                     Input("dash-refresh", "n_intervals"), Input("dash-timeframe", "value"),
                     Input("dash-scope", "value"), Input("dash-gate", "value"), Input("dash-agent", "value"),
                     Input("live-tick", "data"), Input("widget-config", "data"), State("theme", "data"),
                     State("url", "pathname"),
                     inputs={"dash-refresh.n_intervals": Count, "dash-timeframe.value": TimeframeValue,
                             "dash-scope.value": Choice, "dash-gate.value": Choice, "dash-agent.value": Choice,
                             "live-tick.data": Ignored, "widget-config.data": Version, "theme.data": Theme,
                             "url.pathname": Pathname},
                     twin="GET /api/dashboard/<name>")
    def refresh(_n: Any, timeframe: str, scope: str | None, gate: str | None, agent: str | None, _live: Any,
                _config: Any, mode: str | None, path: str | None) -> tuple[Any, Any, str, str, Any, str]:
        principal = current_principal()
        name = dashboard_for_path(path, principal)
        if name is None or not authorize(principal, DASHBOARD_PERMISSION[name]):
            raise PreventUpdate          # unreachable past the guard; kept as a second lock
        timeframe = timeframe or "24h"
        view = view_of("?" + "&".join(x for x in (f"timeframe={timeframe}", scope or "") if x))
        for key, value in (("gate", gate), ("agent", agent)):
            if value and key in dashboard.FILTERABLE.get(name, ()):
                view[key] = str(value)
        if name not in dashboard.FILTERABLE:
            view = {"timeframe": timeframe}
        if ctx.triggered_id in ("dash-timeframe", "dash-scope", "dash-gate", "dash-agent"):
            audit("user.filter_applied", dashboard=name, **view)
        user = principal.name if name == "developer" and principal else None
        svc = current_app.extensions["qms"]
        clean = svc.sanitizer_for(principal.roles if principal else (), principal.name if principal else None)
        found = panel_data(svc.engine, name, timeframe, user, clean, svc.settings.extra.get("roi"), view)
        data, meta = found["dashboard"]["data"], found["dashboard"]["metadata"]
        found["ui"] = {"export": authorize(principal, "export:reports"),
                       "configure": authorize(principal, "update:personal_settings"),
                       "query": urlencode(view), "hidden": Prefs(svc.redis, svc.keys).hidden(principal.name)
                       if principal else set()}
        # The view goes into the URL (so a link reproduces it) only when the user changes it.
        query = urlencode(view)
        search = f"?{query}" if ctx.triggered_id not in (None, "dash-refresh", "live-tick", "widget-config") else no_update
        export = urlencode({k: v for k, v in view.items() if k in ("timeframe", "repository", "team")})
        scope_query = urlencode({k: v for k, v in view.items() if k in ("repository", "team")})
        return (kpi_grid(data["widgets"], timeframe, scope_query), panels(name, found, mode or "light"),
                _window(data, view), _freshness(meta), search, f"/api/export/{name}.csv?{export}")

    @secure_callback(app, _widgets_permission, Output("widget-config", "data"),
                     Input({"type": "widget-hide", "widget": ALL}, "n_clicks"),
                     Input({"type": "widgets-show-all", "n": ALL}, "n_clicks"), State("widget-config", "data"),
                     prevent_initial_call=True,
                     inputs={"widget-hide.n_clicks": Count, "widgets-show-all.n_clicks": Count,
                             "widget-config.data": Version},
                     twin="PUT /api/widgets/<widget_id>/config")
    def configure_widgets(_hides: list[Any], _show: list[Any], version: int | None) -> int:
        """Hide one widget, or show every hidden one (personal settings, audited)."""
        trigger = ctx.triggered_id
        principal = current_principal()
        if not principal or not isinstance(trigger, dict) or not any(t["value"] for t in ctx.triggered):
            raise PreventUpdate
        svc = current_app.extensions["qms"]
        prefs = Prefs(svc.redis, svc.keys)
        if trigger.get("type") == "widget-hide" and trigger.get("widget") in WIDGETS:
            prefs.configure_widget(principal.name, trigger["widget"], {"hidden": True})
            audit("user.widget_configured", widget=trigger["widget"], hidden=True)
        elif trigger.get("type") == "widgets-show-all":
            prefs.show_all(principal.name)
            audit("user.widget_configured", widget="*", hidden=False)
        else:
            raise PreventUpdate
        return (version or 0) + 1

    @secure_callback(app, "view:qa_dashboard", Output("nav", "href"), Input("qa-gates", "clickData"),
                     State("dash-timeframe", "value"), prevent_initial_call=True,
                     inputs={"qa-gates.clickData": ClickData | None, "dash-timeframe.value": TimeframeValue})
    def open_gate(click: dict[str, Any] | None, timeframe: str | None) -> str:
        points = (click or {}).get("points") or []
        gate = points[0].get("customdata") if points else None
        if isinstance(gate, list):
            gate = gate[0] if gate else None
        if not gate:
            raise PreventUpdate
        return f"{gate_href(str(gate))}?timeframe={timeframe or '24h'}"

    @secure_callback(app, "view:audit_logs", Output("audit-grid", "rowData"), Output("audit-csv", "href"),
                     Input("audit-refresh", "n_intervals"), Input("audit-user", "value"), Input("audit-action", "value"),
                     inputs={"audit-refresh.n_intervals": Count, "audit-user.value": Choice, "audit-action.value": Choice},
                     twin="GET /api/audit")
    def audit_rows(_n: Any, user: str | None, action: str | None) -> tuple[list[dict[str, Any]], str]:
        entries = current_app.extensions["qms"].audit.query(user=user or None, action_prefix=action or None, limit=2000)
        rows = [{"timestamp": e["timestamp"], "type": e["type"], "user": e["data"].get("user"),
                 "ip": e["data"].get("ip"), "outcome": e["data"].get("outcome"),
                 "details": ", ".join(f"{k}={v}" for k, v in e["data"].items() if k not in ("user", "ip", "outcome"))}
                for e in entries]
        query = urlencode({k: v for k, v in (("format", "csv"), ("user", user), ("action", action)) if v})
        return rows, f"/api/audit?{query}"


def _window(data: dict[str, Any], view: dict[str, str] | None = None) -> str:
    text = f"Window {data['window']['start']} → {data['window']['end']} (UTC), compared with the window before"
    shown = [f"{k} {v}" for k, v in (view or {}).items() if k != "timeframe"]
    if shown:
        text += "; filtered to " + ", ".join(shown) + " (cards marked “all” are not split that way)"
    return text


VIEW_KEYS = ("timeframe", "repository", "team", "gate", "agent")


def view_of(search: str | None) -> dict[str, str]:
    """The view a URL's query string asks for: timeframe (valid or 24h), and at most one of
    repository/team, a gate and an agent. Unknown keys and over-long values are dropped."""
    query = parse_qs((search or "").lstrip("?"))
    view = {"timeframe": _timeframe(search)}
    for key in VIEW_KEYS[1:]:
        value = (query.get(key) or [""])[0]
        if value and len(value) <= 200:
            view[key] = value
    if "repository" in view:
        view.pop("team", None)
    return view


def _freshness(meta: dict[str, Any]) -> str:
    fresh = meta["data_freshness"]
    return "no data yet" if fresh is None else f"updated {fresh}s ago"


def _timeframe(search: str | None) -> str:
    tf = parse_qs((search or "").lstrip("?")).get("timeframe", ["24h"])[0]
    return tf if tf in dashboard.TIMEFRAMES else "24h"


def gate_for_path(path: str | None) -> str | None:
    if path and path.startswith("/gates/") and len(path) > len("/gates/"):
        return unquote(path[len("/gates/"):].rstrip("/"))
    return None


def kpi_for_path(path: str | None) -> str | None:
    if path and path.startswith("/events/") and len(path) > len("/events/"):
        return unquote(path[len("/events/"):].rstrip("/"))
    return None
