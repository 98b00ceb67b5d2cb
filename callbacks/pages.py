"""The router and the dashboard refresh: thin adapters that check the permission (again,
after the request guard), call the KPI engine and hand the result to components."""
from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app, request

from auth.guard import AUTHENTICATED, Permissions, callback_input, secure_callback, secure_clientside
from auth.principal import Principal, audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from components.links import gate_href
from data.prefs import Prefs
from data.kpis import dashboard_of
from pages import alerts as alerts_page
from pages import audit as audit_page
from pages import dashboard
from callbacks import drilldown as drilldown_cb
from callbacks.inputs import (ClickData, Choice, Count, Ignored, Pathname, Search, Theme,
                              Version)
from callbacks.entity import page as entity_page
from callbacks import dashboard as dash_board
from callbacks.dashboards_list import page as dashboards_list_page
from callbacks.shell import notice
from data.backfill import backfill_status
from callbacks.integrations import page as integrations_page
from callbacks.reviewers import page as reviewers_page

NAV_LABELS = {"executive": "Executive", "operational": "Operations", "qa": "Quality", "developer": "My reviews"}


def allowed_dashboards(principal: Principal | None) -> list[str]:
    return [d for d, perm in DASHBOARD_PERMISSION.items() if authorize(principal, perm)]


def dashboard_for_path(path: str | None, principal: Principal | None) -> str | None:
    """'/' is the first role dashboard the user may open; '/dashboards/<id>' is that one."""
    path = (path or "/").rstrip("/") or "/"
    if path == "/":
        mine = allowed_dashboards(principal)
        return mine[0] if mine else None
    if path.startswith("/dashboards/"):
        return unquote(path[len("/dashboards/"):]) or None
    return None


def navigation(principal: Principal | None) -> list[Any]:
    """The links of what this user may open: their role dashboards, the dashboard list,
    alerts (with the firing count) and the audit log."""
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
    if authorize(principal, "view:team_metrics") or authorize(principal, "view:quality_metrics"):
        nav.append(dbc.NavItem(dbc.NavLink("Reviewers", href="/reviewers", id="nav-reviewers")))
    if authorize(principal, "manage:integrations"):
        nav.append(dbc.NavItem(dbc.NavLink("Integrations", href="/integrations", id="nav-integrations")))
    return nav


def _forbidden(path: str | None, permission: str) -> Any:
    audit("authz.denied", "denied", page=path, permission=permission)
    return dashboard.forbidden(permission)


def _alerts_page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    if not authorize(principal, "view:alerts") or "qms_alerts" not in current_app.extensions:
        return _forbidden(path, "view:alerts")
    audit("user.dashboard_accessed", dashboard="alerts")
    return alerts_page.layout(authorize(principal, "manage:alerts") or authorize(principal, "acknowledge:quality_alerts"),
                              current_app.extensions["qms"].settings.refresh_ms)


def _audit_page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    if not authorize(principal, "view:audit_logs"):
        return _forbidden(path, "view:audit_logs")
    audit("user.dashboard_accessed", dashboard="audit")
    return audit_page.layout()


def _list_page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    if not allowed_dashboards(principal):       # the list of every dashboard one may see
        return _forbidden(path, "a dashboard permission (view:*_dashboard)")
    return dashboards_list_page(search, principal)


def _events_page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    """/events/<kpi>: the events behind a KPI, under its dashboard's permission."""
    kpi = kpi_for_path(path)
    if kpi is None:
        return None
    permission = DASHBOARD_PERMISSION.get(dashboard_of(kpi) or "")
    if permission is None:
        return dashboard.not_found(path or "")
    if not authorize(principal, permission):
        return _forbidden(path, permission)
    audit("user.dashboard_accessed", dashboard="events", metric=kpi)
    view = view_of(search)
    back = f"/dashboards/{dashboard_of(kpi)}?" + urlencode({k: v for k, v in view.items()
                                                            if k in ("timeframe", "repository", "team")})
    return drilldown_cb.events_page(kpi, _timeframe(search), back, view, principal)


def _gate_page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    gate = gate_for_path(path)
    if gate is None:
        return None
    if not authorize(principal, "view:qa_dashboard"):
        return _forbidden(path, "view:qa_dashboard")
    audit("user.dashboard_accessed", dashboard="gate", gate=gate)
    return drilldown_cb.gate_page(gate, current_app.extensions["qms"].settings.refresh_ms, _timeframe(search),
                                  principal)


FIXED_PAGES = {"/alerts": _alerts_page, "/audit": _audit_page, "/dashboards": _list_page,
               "/integrations": integrations_page}


def page_for(path: str | None, search: str | None, principal: Principal | None, theme: str | None = None) -> Any:
    """The page at `path` for this user: each page checks its own permission (and audits a
    refusal) before anything is built; a dashboard id is looked up last."""
    fixed = FIXED_PAGES.get((path or "").rstrip("/"))
    if fixed is not None:
        return fixed(path, search, principal)
    for pattern_page in (entity_page, _events_page, _gate_page, reviewers_page):     # /workflows/<id>, /agents/<id>, /events/<kpi>, /gates/<g>
        found = pattern_page(path, search, principal)
        if found is not None:
            return found
    return board_page(path, search, principal, theme)


def board_page(path: str | None, search: str | None, principal: Principal | None, theme: str | None = None) -> Any:
    """A dashboard definition the viewer may see (their personal copy first), drawn by the
    engine; one they may not see is 'no such page' (its existence is not told)."""
    dash_id = dashboard_for_path(path, principal)
    if dash_id is None:
        if (path or "/").rstrip("/") in ("", "/"):
            return html.P("Your role has no dashboards yet.", className="py-4")
        return dashboard.not_found(path or "")
    store = current_app.extensions["qms"].dashboards
    found = store.get(dash_id, principal)
    if found is None:
        audit("authz.denied", "denied", page=path, dashboard=dash_id)
        return dashboard.not_found(path or "")
    defn = found.dashboard
    audit("user.dashboard_accessed", dashboard=dash_id)
    view = view_of(search)
    if "timeframe" not in parse_qs((search or "").lstrip("?")):
        view["timeframe"] = defn.default_timeframe
    for key, value in defn.filters.active().items():
        view.setdefault(key, value)
    notices = [html.Div(["This dashboard's file was refused; the previous version is shown. ",
                         html.Pre(str(e.get("message")), className="mb-0 small")],
                        className="alert alert-warning small py-1 mb-2 provision-error")
               for e in store.provision_errors() if PurePath(str(e.get("file", ""))).stem == dash_id]
    kind = "personal" if found.personal_copy or found.kind == "personal" else found.kind
    return dash_board.layout(defn, principal, view["timeframe"], view, kind=kind, notices=notices, mode=theme)


def saved_theme(principal: Principal | None) -> str | None:
    """The theme a user saved (those with update:personal_settings), else None: the browser's."""
    if principal is None or not authorize(principal, "update:personal_settings"):
        return None
    svc = current_app.extensions["qms"]
    return Prefs(svc.redis, svc.keys).get(principal.name).get("theme")


def routed(path: str | None, search: str | None, theme: str | None) -> tuple[Any, ...]:
    """What the frame shows at `path` for the signed-in user: navigation, who they are, the
    page (drawn in their saved theme, else `theme`), the saved theme, and the notice."""
    principal = current_principal()
    who = f"{principal.name} ({', '.join(principal.roles)})" if principal else ""
    saved = saved_theme(principal)
    svc = current_app.extensions["qms"]
    return (navigation(principal), who, page_for(path, search, principal, saved or theme), saved,
            *notice(backfill_status(svc.redis, svc.keys)))


THEME_COOKIE = "qms-theme"       # the theme this browser shows (set by the theme step below)


def first_page() -> dict[str, Any] | None:
    """The page a browser is opening, for the layout it asks for (`GET /_dash-layout`, whose
    Referer is the page): drawn as the router would draw it, so the page arrives with its
    frame — one request and one render, not the layout and then the router. None when the
    layout is not asked for by a page of this site (then the router draws it)."""
    ref = request.referrer
    if not ref or current_principal() is None:
        return None
    u = urlsplit(ref)
    if u.netloc != request.host or not u.path:
        return None
    theme = request.cookies.get(THEME_COOKIE)
    nav, who, content, saved, text, hidden, poll_off = routed(u.path, f"?{u.query}" if u.query else "",
                                                            theme if theme in ("light", "dark") else None)
    return {"path": u.path, "nav": nav, "who": who, "page": content, "saved_theme": saved,
            "notice": (text, hidden, poll_off)}


THEME_JS = """function (theme, templates) {
  theme = theme || 'light';
  var root = document.documentElement, before = root.getAttribute('data-bs-theme') || 'light';
  root.setAttribute('data-bs-theme', theme);
  document.cookie = '%s=' + theme + '; path=/; max-age=31536000; SameSite=Lax';
  var t = templates && templates[theme];
  if (t && window.Plotly && theme !== before) {
    document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
      try { window.Plotly.relayout(gd, {template: t}); } catch (e) { console.debug(e); } });
  }
  return theme;
}""" % THEME_COOKIE

ROUTE_JS = """function (path, drawn) {
  var nu = window.dash_clientside.no_update;
  if (drawn && drawn === path) { return [nu, null]; }
  return [path, drawn ? null : nu];
}"""

SAVED_THEME_JS = """function (saved, theme) {
  return saved && saved !== theme ? saved : window.dash_clientside.no_update;
}"""


def register(app: Dash) -> None:
    @secure_callback(app, AUTHENTICATED, Output("theme", "data"),
                     Input("theme-toggle", "n_clicks"), State("theme", "data"), prevent_initial_call=True,
                     inputs={"theme-toggle.n_clicks": Count, "theme.data": Theme})
    def theme(clicks: int | None, current: str | None) -> Any:
        """Anyone may switch the theme of their own browser (the store lives in its local
        storage); it is saved with the user's settings, and follows them to other browsers,
        only for those with update:personal_settings — as PUT /api/widgets/{id}/config.
        (A page load takes the saved one from the router: saved_theme.)"""
        if not clicks:
            raise PreventUpdate
        principal = current_principal()
        may_store = authorize(principal, "update:personal_settings")
        svc = current_app.extensions["qms"]
        prefs = Prefs(svc.redis, svc.keys)
        new = "dark" if (current or "light") == "light" else "light"
        if may_store and principal:
            prefs.set_theme(principal.name, new)
            audit("user.widget_configured", setting="theme", value=new)
        return new

    # Runs in the browser only: a POST of it to the server is refused for everyone. The charts
    # are re-themed only when the theme changes (a page comes drawn in the theme its layout was
    # asked with: the cookie says which, first_page).
    secure_clientside(app, lambda body: None, THEME_JS,
                      Output("theme-applied", "children"), Input("theme", "data"), State("plot-templates", "data"))

    # A page opened in the browser comes drawn with the layout (first_page); `page-drawn` names
    # it, and the router is asked only for another page. This step (no request) decides.
    secure_clientside(app, lambda body: None, ROUTE_JS, Output("route-path", "data"), Output("page-drawn", "data"),
                      Input("url", "pathname"), State("page-drawn", "data"))
    # A saved theme (a user's setting, on any browser) over this browser's stored one.
    secure_clientside(app, lambda body: None, SAVED_THEME_JS, Output("theme", "data", allow_duplicate=True),
                      Input("theme-saved", "data"), State("theme", "data"), prevent_initial_call="initial_duplicate")

    # The router also brings what the frame needs when a page opens — the user's saved theme
    # and the "history still loading" notice — so a page load is one request, not three
    # competing for the server's interpreter.
    @secure_callback(app, AUTHENTICATED,
                     Output("nav-links", "children"), Output("nav-user", "children"), Output("page", "children"),
                     Output("theme", "data", allow_duplicate=True),
                     Output("backfill-notice", "children", allow_duplicate=True),
                     Output("backfill-notice", "hidden", allow_duplicate=True),
                     Output("backfill-poll", "disabled", allow_duplicate=True),
                     Input("route-path", "data"), State("url", "search"), State("theme", "data"),
                     prevent_initial_call=True,
                     inputs={"route-path.data": Pathname, "url.search": Search, "theme.data": Theme})
    def route(path: str | None, search: str | None, theme: str | None) -> tuple[Any, ...]:
        nav, who, content, saved, *rest = routed(path, search, theme)
        return (nav, who, content, saved if saved and saved != theme else no_update, *rest)

    @secure_callback(app, "view:qa_dashboard", Output("nav", "href"),
                     # The view's timeframe from the URL (the refresh writes it there): a State
                     # of the page's own picker would be missing on every other page, and Dash
                     # fires this callback when the charts leave (a console error each time).
                     Input({"type": "w-gates", "w": ALL}, "clickData"),
                     State("url", "search"), prevent_initial_call=True,
                     inputs={"w-gates.clickData": ClickData | None, "url.search": Search})
    def open_gate(clicks: list[dict[str, Any] | None], search: str | None) -> str:
        """A click on a bar of any gate performance chart opens that gate's page."""
        click = next((t["value"] for t in ctx.triggered if t.get("value")), None)
        points = (click or {}).get("points") or []
        gate = points[0].get("customdata") if points else None
        if isinstance(gate, list):
            gate = gate[0] if gate else None
        if not gate:
            raise PreventUpdate
        return f"{gate_href(str(gate))}?timeframe={view_of(search)['timeframe']}"

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
