"""`GET /api/widgets/{id}/data` (JSON or CSV: every dashboard widget exports the rows it
shows) and `PUT /api/widgets/{id}/config` (personal widget settings), seed §9.1."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, current_app, request

from api.routes import envelope, error, scope_headers
from api.validation import Format, Name, ViewQuery, json_body, query
from auth.guard import require
from auth.principal import audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from api.drilldown import export
from data import drilldown, exports
from data.drilldown import Ctx
from data.panels import panel_data
from data.prefs import Prefs, PrefsError
from data.timeutil import parse_iso
from data.widget_rows import DRILLDOWN_EXPORTS, WIDGETS, dashboard_of_widget, widget_table

bp = Blueprint("widgets", __name__)
VIEW_ARGS = ("repository", "team", "gate", "agent")


class WidgetQuery(ViewQuery):
    """The view a widget's rows are for, and the format."""
    gate: Name | None = None
    agent: Name | None = None
    format: Format | Literal["jsonl"] = "json"


def _view_permission(kwargs: dict[str, Any]) -> str:
    # An unknown widget needs a permission nobody has: 403 for all, nothing learnt.
    return DASHBOARD_PERMISSION.get(dashboard_of_widget(kwargs.get("widget_id", "")) or "", "view:no_such_widget")


@bp.get("/api/widgets/<widget_id>/data")
@require(_view_permission)
def widget_data(widget_id: str) -> Response:
    svc = current_app.extensions["qms"]
    principal = current_principal()
    name = WIDGETS[widget_id][0]
    q = query(WidgetQuery)
    as_file = q.format != "json"
    if as_file and not authorize(principal, "export:reports"):
        audit("authz.denied", "denied", path=request.path, permission="export:reports")
        return error(403, "forbidden", "exporting needs the permission export:reports")
    timeframe = q.timeframe
    view = {"timeframe": timeframe, **{k: getattr(q, k) for k in VIEW_ARGS if getattr(q, k)}}
    if view.get("repository") and view.get("team"):
        return error(400, "bad_request", "filter by repository or by team, not both")
    clean = svc.sanitizer_for(principal.roles if principal else (), principal.name if principal else None)
    if as_file and widget_id in DRILLDOWN_EXPORTS:     # the widget shows the newest; the file holds the window
        kpi = DRILLDOWN_EXPORTS[widget_id]
        dq, filters = drilldown.make_query(svc.engine, kpi, timeframe)
        return export(Ctx(svc.redis, svc.keys), dq, name, timeframe, filters, q.format, clean, what=widget_id)
    user = principal.name if name == "developer" and principal else None
    # panel_data sanitises every row list once (people, hidden fields, team scope); the
    # table is built from those rows, so it is not sanitised again here.
    found = panel_data(svc.engine, name, timeframe, user, clean, svc.settings.extra.get("roi"), view)
    columns, rows = widget_table(widget_id, found)
    scope = found["scope"].get(widget_id) or clean.scope_info()
    if as_file:
        cap = int(svc.settings.export_max_rows or 0)
        audit("user.export_requested", export=f"widget:{widget_id}", rows=len(rows), format=q.format, cap=cap, **view)
        window = found["dashboard"]["data"]["window"]
        body = exports.widget_csv(columns, rows, cap) if q.format == "csv" else exports.widget_jsonl(columns, rows, cap)
        resp = Response(body, mimetype="text/csv" if q.format == "csv" else "application/x-ndjson")
        fname = exports.filename(name, widget_id, timeframe, parse_iso(window["start"]), parse_iso(window["end"]),
                                 {k: v for k, v in view.items() if k != "timeframe"}, q.format)
        resp.headers["Content-Disposition"] = f'attachment; filename="{fname}"'
        resp.headers.update(scope_headers(scope))
        return resp
    config = (Prefs(svc.redis, svc.keys).get(principal.name).get("widgets") or {}).get(widget_id, {}) if principal else {}
    return envelope({"widget_id": widget_id, "dashboard": name, "title": WIDGETS[widget_id][1], "view": view,
                     "window": found["dashboard"]["data"]["window"], "columns": columns, "rows": rows,
                     "config": config, "scope": scope})


@bp.put("/api/widgets/<widget_id>/config")
@require("update:personal_settings")
def widget_config(widget_id: str) -> Response:
    principal = current_principal()
    name = dashboard_of_widget(widget_id)
    if name is None:
        return error(404, "not_found", f"no widget {widget_id!r}")
    if not authorize(principal, DASHBOARD_PERMISSION[name]):
        audit("authz.denied", "denied", path=request.path, permission=DASHBOARD_PERMISSION[name])
        return error(403, "forbidden", f"this widget needs the permission {DASHBOARD_PERMISSION[name]}")
    svc = current_app.extensions["qms"]
    try:
        config = Prefs(svc.redis, svc.keys).configure_widget(principal.name, widget_id, json_body())
    except PrefsError as exc:
        return error(400, "bad_request", str(exc))
    audit("user.widget_configured", widget=widget_id, **config)
    return envelope({"widget_id": widget_id, "config": config})
