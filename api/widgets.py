"""A widget's rows over HTTP: `GET /api/dashboards/{id}/widgets/{widget_id}/data` (JSON, or
the whole table as CSV / JSON Lines) — the same frames the page draws, from the widget's
data sources, under each source's permission (dashboards.sources.allowed), for the view
asked (timeframe, repository or team, gate, agent).

`GET /api/widgets/{widget_id}/data` is the same for the widgets of the four role dashboards
by their widget id alone (exec-trends, qa-gates, ...), the caller's personal copy first.
`PUT /api/widgets/{widget_id}/config` keeps the older per-user settings (hidden).
"""
from __future__ import annotations

from typing import Literal

import pandas as pd
from flask import Blueprint, Response, current_app, request

from api.drilldown import export
from api.routes import envelope, error, scope_headers
from api.validation import Format, Name, ViewQuery, json_body, query
from auth.guard import AUTHENTICATED, require
from auth.principal import Principal, audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from dashboards import sources
from dashboards.schema import Dashboard, Widget
from data import drilldown, exports
from data.drilldown import Ctx
from data.engine import QueryError
from data.prefs import Prefs, PrefsError
from data.timeutil import parse_iso

bp = Blueprint("widgets", __name__)
VIEW_ARGS = ("repository", "team", "gate", "agent")


class WidgetQuery(ViewQuery):
    """The view a widget's rows are for, and the format."""
    gate: Name | None = None
    agent: Name | None = None
    format: Format | Literal["jsonl"] = "json"


def _role_widget(widget_id: str, principal: Principal | None) -> tuple[Dashboard, Widget] | None:
    store = current_app.extensions["qms"].dashboards
    for dash_id in DASHBOARD_PERMISSION:          # the four role dashboards
        found = store.get(dash_id, principal)
        widget = found.dashboard.widget(widget_id) if found else None
        if widget is not None:
            return found.dashboard, widget
    return None


def _find(dash_id: str | None, widget_id: str) -> tuple[Dashboard, Widget] | Response:
    principal = current_principal()
    if dash_id is None:
        hit = _role_widget(widget_id, principal)
    else:
        found = current_app.extensions["qms"].dashboards.get(dash_id, principal)
        widget = found.dashboard.widget(widget_id) if found else None
        hit = (found.dashboard, widget) if widget is not None else None
    if hit is None:
        return error(404, "not_found", f"no widget {widget_id!r} on a dashboard you may see")
    return hit


def _frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The widget's table: its one frame, or its frames one under the other (columns united;
    frames carry DataFrames in attrs, which concat would compare, so they are dropped)."""
    frames = [f for f in frames if f is not None]
    if len(frames) == 1:
        return frames[0]
    plain = []
    for f in frames:
        g = f.copy()
        g.attrs = {}
        plain.append(g)
    return pd.concat(plain, ignore_index=True, sort=False) if plain else pd.DataFrame()


def widget_rows(dash_id: str | None, widget_id: str) -> Response:
    svc = current_app.extensions["qms"]
    principal = current_principal()
    hit = _find(dash_id, widget_id)
    if isinstance(hit, Response):
        return hit
    defn, widget = hit
    for ds in widget.data_sources:
        if not sources.allowed(ds, principal):
            audit("authz.denied", "denied", path=request.path, permission=sources.permission(ds))
            return error(403, "forbidden", f"this widget needs the permission {sources.permission(ds)}")
    q = query(WidgetQuery)
    as_file = q.format != "json"
    if as_file and not authorize(principal, "export:reports"):
        audit("authz.denied", "denied", path=request.path, permission="export:reports")
        return error(403, "forbidden", "exporting needs the permission export:reports")
    if q.repository and q.team:
        return error(400, "bad_request", "filter by repository or by team, not both")
    view = {"timeframe": q.timeframe, **{k: getattr(q, k) for k in VIEW_ARGS if getattr(q, k)}}
    filters = {**defn.filters.active(), **{k: v for k, v in view.items() if k != "timeframe"}}
    ctx = sources.SourceContext.for_request(svc, principal, q.timeframe, filters)
    clean = ctx.sanitizer
    drills = [ds for ds in widget.data_sources if ds.source == "drilldown"]
    if as_file and len(drills) == 1 and len(widget.data_sources) == 1:
        # The widget shows the newest rows; the file holds the whole window's drill-down.
        dq, dfilters = drilldown.make_query(svc.engine, drills[0].metric or "", drills[0].timeframe or q.timeframe)
        return export(Ctx(svc.redis, svc.keys), dq, defn.id, q.timeframe, dfilters, q.format, clean, what=widget.id)
    try:
        frame = _frame(sources.fetch_all(widget, ctx))
    except QueryError as exc:
        return error(400, "bad_request", str(exc))
    columns, rows = sources.frames_to_rows(frame)
    scope = frame.attrs.get("scope") or clean.scope_info()
    window = frame.attrs.get("window") or {}
    if as_file:
        cap = int(svc.settings.export_max_rows or 0)
        audit("user.export_requested", export=f"widget:{defn.id}/{widget.id}", rows=len(rows), format=q.format,
              cap=cap, **view)
        body = exports.widget_csv(columns, rows, cap) if q.format == "csv" else exports.widget_jsonl(columns, rows, cap)
        resp = Response(body, mimetype="text/csv" if q.format == "csv" else "application/x-ndjson")
        start, end = (parse_iso(window[k]) if isinstance(window.get(k), str) else 0 for k in ("start", "end"))
        fname = exports.filename(defn.id, widget.id, q.timeframe, start, end,
                                 {k: v for k, v in view.items() if k != "timeframe"}, q.format)
        resp.headers["Content-Disposition"] = f'attachment; filename="{fname}"'
        resp.headers.update(scope_headers(scope))
        return resp
    config = ((Prefs(svc.redis, svc.keys).get(principal.name).get("widgets") or {}).get(widget.id, {})
              if principal else {})
    return envelope({"widget_id": widget.id, "dashboard": defn.id, "title": widget.title, "type": widget.type,
                     "view": view, "window": window, "columns": columns, "rows": rows, "config": config,
                     "scope": scope})


@bp.get("/api/dashboards/<dash_id>/widgets/<widget_id>/data")
@require(AUTHENTICATED)
def dashboard_widget_data(dash_id: str, widget_id: str) -> Response:
    return widget_rows(dash_id, widget_id)


@bp.get("/api/widgets/<widget_id>/data")
@require(AUTHENTICATED)
def widget_data(widget_id: str) -> Response:
    return widget_rows(None, widget_id)


@bp.put("/api/widgets/<widget_id>/config")
@require("update:personal_settings")
def widget_config(widget_id: str) -> Response:
    principal = current_principal()
    hit = _role_widget(widget_id, principal)
    if hit is None:
        return error(404, "not_found", f"no widget {widget_id!r}")
    svc = current_app.extensions["qms"]
    try:
        config = Prefs(svc.redis, svc.keys).configure_widget(principal.name, widget_id, json_body())
    except PrefsError as exc:
        return error(400, "bad_request", str(exc))
    audit("user.widget_configured", widget=widget_id, **config)
    return envelope({"widget_id": widget_id, "config": config})
