"""System widgets (seed §4.1 system_widgets): health checks, the error log, the alert
summary and the audit log.

The two logs are dash-ag-grid grids with a fixed height, so the grid renders only the rows
in view (row virtualisation, seed §7.2) however many rows it holds, and with `getRowId`
so a refresh updates rows in place instead of redrawing the grid.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components import theme
from components.common import NO_DATA, fmt_bytes, is_missing, mappings, placeholder, short_time, unwrap
from components.links import labels_links

HEALTH_STATUSES = ("healthy", "degraded", "unhealthy")


def _detail(key: str, value: Any) -> str:
    label = key.replace("_", " ")
    if is_missing(value):
        return f"{label}: {NO_DATA}"
    if key.endswith("_bytes"):
        return f"{label.removesuffix(' bytes')}: {fmt_bytes(value)}"
    if key.endswith("_s") and isinstance(value, (int, float)):
        return f"{label.removesuffix(' s')}: {value:,.1f} s"
    return f"{label}: {value}"


def _checks(health: Any) -> list[dict[str, Any]]:
    """[{name, status, ...}] from the /health answer, its checks, or the seed's list form."""
    if isinstance(health, Mapping):
        checks = health.get("checks") if "checks" in health else {
            k: v for k, v in health.items() if k not in ("status", "timestamp")}
        if isinstance(checks, Mapping):
            # {name: {status, ...}} or the shorthand {name: "healthy"}
            return [{"name": k, **(v if isinstance(v, Mapping) else {"status": v})} for k, v in checks.items()
                    if isinstance(v, (Mapping, str))]
        health = checks
    return [dict(c) for c in mappings(health)]


def system_health(health: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, *, mode: str = "light",
                  id: Any = None) -> Any:
    """The `/health` answer ({status, timestamp, checks: {name: {status, ...}}}), its `checks`
    alone, or the seed's list form [{name, status, details}], as one line per check."""
    checks = _checks(health)
    if not checks:
        return placeholder("system_health", id=id)
    overall = health.get("status") if isinstance(health, Mapping) and "checks" in health else None
    if overall is None:
        overall = "healthy" if all(c.get("status") == "healthy" for c in checks) else "degraded"
    items = []
    for c in checks:
        details = c.get("details")
        extra = ({k: v for k, v in c.items() if k not in ("name", "status", "details")}
                 | (details if isinstance(details, Mapping) else {}))
        text = " · ".join(_detail(k, v) for k, v in extra.items())
        if details is not None and not isinstance(details, Mapping):
            text = " · ".join(x for x in (text, str(details)) if x)
        items.append(dbc.ListGroupItem([
            html.Div([html.Span(str(c.get("name")), className="fw-semibold me-auto"),
                      dbc.Badge(c.get("status") or "unknown", color=theme.status_bs(c.get("status")),
                                className="health-status")], className="d-flex align-items-center"),
            html.Div(text, className="small text-body-secondary text-break") if text else None,
        ], className="health-check", id={"type": "health-check", "check": str(c.get("name"))}))
    stamp = health.get("timestamp") if isinstance(health, Mapping) else None
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([
        html.Div([dbc.Badge(overall, color=theme.status_bs(overall), className="me-2 health-overall fs-6"),
                  html.Span(f"checked {short_time(stamp)} UTC" if stamp else "",
                            className="small text-body-secondary")],
                 className="d-flex align-items-center mb-2"),
        dbc.ListGroup(items, flush=True),
    ], className="system-health", **{"data-widget": "system_health"}, **kw)


def _grid(widget: str, rows: list[dict[str, Any]], columns: list[dict[str, Any]], *, mode: str, id: Any,
          height: str) -> dag.AgGrid:
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return dag.AgGrid(
        rowData=rows, columnDefs=columns, getRowId="params.data.id",
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1, "minWidth": 100},
        # rowBuffer: rows drawn beyond the viewport; the rest are virtual.
        dashGridOptions={"rowBuffer": 20, "animateRows": False, "theme": theme.grid_theme(mode),
                         "suppressRowVirtualisation": False, "enableCellTextSelection": True},
        style={"height": height, "width": "100%"}, className=f"widget-grid widget-{widget}", **kw)


ERROR_COLUMNS: list[dict[str, Any]] = [
    {"field": "timestamp", "headerName": "When (UTC)", "sort": "desc", "minWidth": 170},
    {"field": "severity", "headerName": "Severity", "maxWidth": 120,
     "cellClassRules": {"text-danger fw-semibold": "params.value === 'critical'",
                        "text-warning": "params.value === 'warning'"}},
    {"field": "component", "headerName": "Component"},
    {"field": "error_type", "headerName": "Error"},
    {"field": "message", "headerName": "Message", "flex": 3, "tooltipField": "message"},
]


def error_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`system.error_occurred` events (bare or wrapped) as grid rows, newest first."""
    rows = []
    for e in (unwrap(x) for x in mappings(events)):
        d = e.get("data") or {}
        rows.append({"id": e.get("id"), "timestamp": short_time(e.get("timestamp")), "severity": d.get("severity"),
                     "component": d.get("component"), "error_type": d.get("error_type"), "message": d.get("message")})
    return sorted(rows, key=lambda r: r["timestamp"], reverse=True)


# The error log on a dashboard is the newest errors as a plain table, the rest one click away
# on the events page (a virtual-scrolling grid with sort, filter and CSV). AG Grid on the tile
# cost the browser ~250 ms of main thread to start (docs/PERFORMANCE.md, stop 18), and every
# table row is six components for dash-renderer: the tile keeps to what it shows. Without a
# page for the rest (no drill-down link) a long log stays a virtual grid on the tile.
PLAIN_ERROR_ROWS = 15
_SEVERITY_CLASS = {"critical": "text-danger fw-semibold", "warning": "text-warning-emphasis"}


def _error_table(rows: list[dict[str, Any]], total: int, more_href: str | None, *, id: Any,
                 height: str) -> html.Div:
    cols = [(c["field"], c["headerName"]) for c in ERROR_COLUMNS]
    body = [html.Tr([html.Td(r.get(k) if r.get(k) is not None else "",
                             className=f"col-{k} {_SEVERITY_CLASS.get(str(r.get(k)), '') if k == 'severity' else ''}".strip(),
                             **({"title": r.get(k) or ""} if k == "message" else {}))
                     for k, _ in cols], **{"data-id": str(r.get("id"))}) for r in rows]
    more = None
    if total > len(rows):
        label = f"newest {len(rows)} of {total} — all errors"
        more = (dcc.Link(label + " →", href=more_href, className="small error-log-more") if more_href
                else html.Div(label, className="small text-body-secondary error-log-more"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([html.Table([html.Thead(html.Tr([html.Th(label) for _, label in cols])), html.Tbody(body)],
                                className="table table-sm table-hover mb-1 error-log-table"), more],
                    className="widget-table-wrap widget-error-log", style={"maxHeight": height, "overflowY": "auto"},
                    **{"data-widget": "error_log_viewer", "data-rows": len(rows), "data-total": total}, **kw)


def error_log_viewer(events: Iterable[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                     height: str = "420px", more_href: str | None = None) -> Any:
    """Recent errors, newest first: a table of the newest PLAIN_ERROR_ROWS with a link to the
    rest (`more_href`, the events page); without a link, more rows than that are a
    virtual-scrolling grid."""
    rows = error_rows(events or [])
    if not rows:
        return placeholder("error_log_viewer", id=id)
    if len(rows) <= PLAIN_ERROR_ROWS or more_href:
        return _error_table(rows[:PLAIN_ERROR_ROWS], len(rows), more_href, id=id, height=height)
    return _grid("error_log_viewer", rows, ERROR_COLUMNS, mode=mode, id=id, height=height)


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
STATE_RANK = {"firing": 0, "pending": 1, "acknowledged": 2, "no_data": 3}


def _labels(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) if isinstance(labels, Mapping) else str(labels)


def alert_key(alert: Mapping[str, Any]) -> str:
    """An alert's identity: its id, else rule name and labels (one instance per entity, ALERTS.md)."""
    return str(alert.get("id") or f"{alert.get('name')}|{_labels(alert)}")


def _summary_line(a: Mapping[str, Any]) -> list[Any]:
    """Labels (agent, gate and workflow ids linked to their pages), since, acknowledged by."""
    labels = a.get("labels")
    parts: list[Any] = [labels_links(labels) if isinstance(labels, Mapping) else _labels(a)]
    if a.get("since") or a.get("active_at"):
        parts.append(f"since {short_time(a.get('since') or a.get('active_at'))}")
    if a.get("acknowledged_by"):
        parts.append(f"acknowledged by {a['acknowledged_by']}")
    out: list[Any] = []
    for p in parts:
        if p:
            out += ([" · "] if out else []) + (p if isinstance(p, list) else [p])
    return out


def alert_summary(alerts: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                  max_items: int = 20, empty: str = NO_DATA) -> Any:
    """Counts by state and the alerts that are not resolved, worst first: severity, then
    firing before pending, then oldest. Alerts: {name, severity, state, labels, since, id?}."""
    rows = [a for a in mappings(alerts) if a.get("name") or a.get("id")]
    if not rows:
        return placeholder("alert_summary", id=id, message=empty)
    states = Counter(str(a.get("state") or "unknown") for a in rows)
    badges = [dbc.Badge(f"{s} {states[s]}", color=theme.status_bs(s), className=f"me-1 alert-count alert-count-{s}")
              for s in sorted(states, key=lambda s: (STATE_RANK.get(s, 9), s))]
    open_ = [a for a in rows if a.get("state") in STATE_RANK]
    open_.sort(key=lambda a: (SEVERITY_RANK.get(str(a.get("severity")), 9), STATE_RANK[a["state"]],
                              str(a.get("since") or a.get("active_at") or "")))
    items = [dbc.ListGroupItem([
        html.Div([dbc.Badge(a.get("severity") or "?", color=theme.status_bs(a.get("severity")), className="me-2"),
                  html.Span(str(a.get("name")), className="fw-semibold me-auto"),
                  dbc.Badge(a["state"], color=theme.status_bs(a["state"]), className="alert-state")],
                 className="d-flex align-items-center"),
        html.Div(_summary_line(a), className="small text-body-secondary"),
    ], className=f"alert-item alert-{a['state']}", id={"type": "alert-item", "alert": alert_key(a)})
        for a in open_[:max_items]]
    if len(open_) > max_items:
        items.append(dbc.ListGroupItem(f"+{len(open_) - max_items} more", className="small text-body-secondary"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([
        html.Div(badges, className="mb-2"),
        dbc.ListGroup(items, flush=True) if items else html.Div("none active", className="small text-success"),
    ], className="alert-summary", **{"data-widget": "alert_summary"}, **kw)


AUDIT_COLUMNS: list[dict[str, Any]] = [
    {"field": "timestamp", "headerName": "When (UTC)", "sort": "desc", "minWidth": 190},
    {"field": "type", "headerName": "Action", "minWidth": 190},
    {"field": "user", "headerName": "User"},
    {"field": "ip", "headerName": "Address"},
    {"field": "outcome", "headerName": "Outcome", "maxWidth": 130,
     "cellClassRules": {"text-danger fw-semibold": "params.value && params.value !== 'ok'"}},
    {"field": "details", "headerName": "Details", "flex": 2, "tooltipField": "details"},
]


def audit_rows(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries (data.audit: event-shaped, who/where/outcome in `data`) as grid rows;
    the remaining data fields become one compact JSON `details` cell."""
    rows = []
    for e in (unwrap(x) for x in mappings(entries)):
        d = dict(e.get("data") or {})
        who = {k: d.pop(k, None) for k in ("user", "ip", "outcome")}
        rows.append({"id": e.get("id"), "timestamp": e.get("timestamp"), "type": e.get("type"), **who,
                     "details": json.dumps(d, sort_keys=True, default=str, separators=(", ", ": ")) if d else ""})
    return rows


def audit_log(entries: Iterable[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
              height: str = "70vh") -> Any:
    """The audit log in a virtual-scrolling grid (the columns of the audit page)."""
    rows = audit_rows(entries or [])
    if not rows:
        return placeholder("audit_log", id=id)
    return _grid("audit_log", rows, AUDIT_COLUMNS, mode=mode, id=id, height=height)
