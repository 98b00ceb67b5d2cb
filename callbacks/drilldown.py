"""The events page (the rows behind a KPI) and the gate page (its KPIs, trend and failing
runs): thin adapters over data.drilldown. Each grid uses AG Grid's infinite row model; its
requests for rows [startRow, endRow) come here with the page's pinned query, and go out
sanitised like the REST twin `GET /api/metrics/{id}/events`."""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Callable
from urllib.parse import quote, urlencode

import orjson
import redis
from cachetools import LRUCache
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app

from api.drilldown import sanitised
from auth.guard import callback_input, secure_callback
from auth.principal import Principal, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from callbacks.dashboard import window_line
from callbacks.inputs import Count, EventsSpec, Pathname, RowsRequest, Theme, TimeframeValue
from components.charts import metric_trend
from components.drilldown import count_line, grid_columns, grid_row
from components.kpi import kpi_grid, title_of
from dashboards.computed import page_stale_ms
from data import drilldown
from data.drilldown import Ctx, Query
from data.engine import Engine, QueryError
from data.exports import drilldown_columns
from data.kpis import dashboard_of
from data.timeutil import fmt_ms, now_ms
from pages import dashboard

MAX_BLOCK = 1000
LEFT_OUT = {"role": "left out", "type": "another team's row", "id": "", "timestamp": None}
COUNT_TTL_S = 600         # how long a page's later blocks trust the row count of its first
PINNED_KEEP_MS = 60_000   # a pinned window's first block is reused at least this long (first_block)
ROLES = ("Roles: counted — counts in the number; numerator / denominator — a percentage's parts (each "
         "denominator row is marked whether it is in the numerator); averaged — an item of a mean, with its value; "
         "ranked — an item of a percentile; open_at_end / state_at_end — in that state at the window's end, shown "
         "by the event that put it there; excluded — agent time in neither part. Context: the other events a "
         "row's value needs.")


def _sanitizer(principal: Principal | None) -> Any:
    svc = current_app.extensions["qms"]
    return svc.sanitizer_for(principal.roles if principal else (), principal.name if principal else None)


def _query(spec: dict[str, Any], principal: Principal | None) -> tuple[Query, dict[str, str]]:
    """The drill-down a page's store describes, for this principal (developer KPIs: their own)."""
    kpi = spec["kpi"]
    scope = tuple(spec["scope"]) if spec.get("scope") and spec["scope"][0] in ("repository", "team") else None
    user = principal.name if principal and dashboard_of(kpi) == "developer" else None
    return drilldown.make_query(current_app.extensions["qms"].engine, kpi, spec.get("timeframe") or "24h",
                                spec.get("end"), user=user, scope=scope,  # type: ignore[arg-type]
                                gate=spec.get("gate"), agent=spec.get("agent"))


def _export_links(kpi: str, timeframe: str, q: Query, filters: dict[str, str]) -> dict[str, str]:
    base = {"timeframe": timeframe, "end": fmt_ms(q.end), **filters}
    path = f"/api/metrics/{quote(kpi, safe='')}/events?"
    return {fmt: path + urlencode({**base, "format": fmt}) for fmt in ("csv", "jsonl")}


def events_page(kpi: str, timeframe: str, back: str, view: dict[str, str], principal: Principal | None) -> Any:
    """The layout of /events/<kpi>: the window pinned now, so every page of rows the grid asks
    for, the count line and the exports describe the same window."""
    scope = next(((d, view[d]) for d in ("repository", "team") if view.get(d)), None)
    try:
        sp = drilldown.spec(kpi)
        q, filters = _query({"kpi": kpi, "timeframe": timeframe, "scope": list(scope) if scope else None,
                             "gate": view.get("gate"), "agent": view.get("agent")}, principal)
    except KeyError:
        return dashboard.not_found(f"/events/{kpi}")
    except QueryError as exc:
        return html.P(str(exc), className="py-4", id="events-error")
    settings = current_app.extensions["qms"].settings
    start, end = drilldown.window(q)
    if sp.kind in ("state", "level"):
        window = f"State at {fmt_ms(q.end)} (UTC)"
    else:
        window = f"Window {fmt_ms(start)} → {fmt_ms(end)} (UTC)"
    if filters:
        window += "; " + ", ".join(f"{k} {v}" for k, v in filters.items()) + " only"
    notes: list[Any] = [html.P(ROLES)]
    if sp.parts:
        query = urlencode({"timeframe": timeframe})
        notes.insert(0, html.P(["Its parts: "] + [x for part in sp.parts for x in (
            dcc.Link(title_of(part), href=f"/events/{quote(part, safe='')}?{query}", className="me-3"),)]))
    store = {"kpi": kpi, "timeframe": timeframe, "end": q.end, "scope": [*scope] if scope and scope[0] in filters
             else None, "gate": filters.get("gate"), "agent": filters.get("agent")}
    can_export = authorize(principal, "export:reports")
    return dashboard.events_layout(
        kpi, timeframe, back, scope, title=title_of(kpi), columns=grid_columns(sp, _sanitizer(principal).hidden_fields),
        query=store, exports=_export_links(kpi, timeframe, q, filters) if can_export else None,
        export_cap=settings.export_max_rows if can_export else 0, window=window, notes=notes)


def gate_page(gate: str, refresh_ms: int, timeframe: str, principal: Principal | None) -> Any:
    """The layout of /gates/<gate>: its failing runs are the gates_failed drill-down of the gate."""
    q, filters = _query({"kpi": "gates_failed", "timeframe": timeframe, "gate": gate}, principal)
    can_export = authorize(principal, "export:reports")
    return dashboard.gate_layout(
        gate, refresh_ms, timeframe, failing={"kpi": "gates_failed", "timeframe": timeframe, "end": q.end,
                                              "gate": gate},
        columns=grid_columns(drilldown.spec("gates_failed"), _sanitizer(principal).hidden_fields),
        csv_href=_export_links("gates_failed", timeframe, q, filters)["csv"] if can_export else None,
        export_cap=current_app.extensions["qms"].settings.export_max_rows if can_export else 0)


def _store_permission(store: str) -> Callable[[dict[str, Any]], str | None]:
    def permission(body: dict[str, Any]) -> str | None:
        spec = callback_input(body, store, "data")
        kpi = spec.get("kpi") if isinstance(spec, dict) else None
        return DASHBOARD_PERMISSION.get(dashboard_of(kpi or "") or "")
    return permission


def grid_rows(spec: dict[str, Any], request: dict[str, Any], principal: Principal | None) -> tuple[dict[str, Any], Any,
                                                                                                   Any]:
    """One block of rows for the grid, the count line and the team-scope note. The first
    block counts the whole window and keeps the row count for the page's later blocks
    (a few minutes in Redis), which then read no further than their rows."""
    svc = current_app.extensions["qms"]
    q, _filters = _query(spec, principal)
    sp = drilldown.spec(q.kpi)
    first = int(request.get("startRow") or 0)
    limit = max(1, min(int(request.get("endRow") or first + 100) - first, MAX_BLOCK))
    # The query without its horizon (now + skew, different on every call) names the window's count.
    key = svc.keys.cache("drill:" + hashlib.sha1(repr(dataclasses.replace(q, horizon=0)).encode()).hexdigest())
    known = svc.redis.get(key) if first else None
    if first:
        got = drilldown.page(Ctx(svc.redis, svc.keys), q, limit, None, first, count=known is None)
    else:
        got = first_block(svc, key, q, limit, spec.get("timeframe"))
    total = got.total if got.total is not None else int(known or 0)
    if got.total is not None:
        svc.redis.set(key, got.total, ex=COUNT_TTL_S)
    clean = _sanitizer(principal)
    fields = [k[5:] for k in drilldown_columns(sp, clean.hidden_fields)[0] if k.startswith("data.") and k != "data.other"]
    # A row left out keeps its place, so the grid's row numbers stay those of the count.
    rows = [grid_row(*c, fields) if c else dict(LEFT_OUT) for c in sanitised(clean, got.rows)]
    if got.total is None:               # a later block: the count line stands as the first block wrote it
        return {"rowData": rows, "rowCount": total}, no_update, no_update
    at = fmt_ms(q.end) if sp.kind in ("state", "level") else None
    line = count_line(q.kpi, sp, got.counts, got.value, at)
    return {"rowData": rows, "rowCount": total}, line, clean.scope_info().get("note") or ""


def first_block(svc: Any, key: str, q: Query, limit: int, timeframe: str | None) -> drilldown.Page:
    """The first block of a pinned window with its counts: counting reads every event of the
    window (a 24 h drill-down of a busy organisation: tens of thousands), so it is kept for the
    page staleness of its timeframe (dashboards.computed.page_stale_ms), at least a minute
    (PINNED_KEEP_MS; none with QMS_BODY_CACHE_S=0) — in this process and,
    for the other web processes, in Redis — and every viewer of that window in that time gets
    it (sanitised per viewer after). Under the
    500-user load test, drill-downs that counted their window anew took half the web
    workers' CPU. REST reads and exports count afresh."""
    blocks = current_app.extensions.setdefault("qms_drill_blocks", LRUCache(maxsize=256))
    # At least a minute: the window is pinned (its end a whole minute, the key's), so only late
    # events change it, and every viewer opening that minute's page shares one count.
    stale = max(page_stale_ms(svc.settings, timeframe), PINNED_KEEP_MS) if svc.settings.body_cache_s else 0.0
    now = now_ms()
    found = blocks.get((key, limit))
    if found is not None and 0 <= now - found[0] < stale:
        return found[1]
    shared = f"{key}:first:{limit}"          # what another web process counted, in Redis
    if stale > 0:
        try:
            raw = svc.redis.get(shared)
        except redis.RedisError:
            raw = None
        if raw is not None:
            at, got = _block_from_json(raw)
            if 0 <= now - at < stale:
                blocks[(key, limit)] = (at, got)
                return got
    got = drilldown.page(Ctx(svc.redis, svc.keys), q, limit, None, 0, count=True)
    if stale > 0:
        blocks[(key, limit)] = (now, got)
        try:
            svc.redis.set(shared, _block_json(now, got), ex=int(stale / 1000) + 1)
        except (redis.RedisError, TypeError):
            pass                           # kept in this process
    return got


def _block_json(at: int, got: drilldown.Page) -> bytes:
    return orjson.dumps({"at": at, "rows": [[r.ts, r.id, r.role, r.event, r.value, r.context, r.window]
                                            for r in got.rows],
                         "counts": got.counts, "value": got.value, "total": got.total,
                         "next": got.next, "parts": got.parts})


def _block_from_json(raw: bytes) -> tuple[int, drilldown.Page]:
    d = orjson.loads(raw)
    rows = [drilldown.Row(ts, ident, role, event, value, context, window)
            for ts, ident, role, event, value, context, window in d["rows"]]
    nxt = tuple(d["next"]) if d["next"] is not None else None
    return int(d["at"]), drilldown.Page(rows, d["counts"], d["value"], d["total"], nxt, d["parts"])  # type: ignore[arg-type]


def register(app: Dash) -> None:
    for grid, store, count, note in (("events-grid", "events-kpi", "events-count", "events-note"),
                                     ("gate-failures", "gate-failures-query", "gate-failures-count", None)):
        _register_grid(app, grid, store, count, note)

    @secure_callback(app, "view:qa_dashboard",
                     Output("gate-kpis", "children"), Output("gate-trend", "children"), Output("gate-window", "children"),
                     Input("gate-refresh", "n_intervals"), State("gate-timeframe", "data"), State("url", "pathname"),
                     State("theme", "data"),
                     inputs={"gate-refresh.n_intervals": Count, "gate-timeframe.data": TimeframeValue,
                             "url.pathname": Pathname, "theme.data": Theme},
                     twin="GET /api/metrics/<kpi_id>/series")
    def gate_refresh(_n: Any, timeframe: str | None, path: str | None, mode: str | None) -> tuple[Any, Any, str]:
        from callbacks.pages import gate_for_path
        gate = gate_for_path(path)
        if gate is None:
            raise PreventUpdate
        found = gate_data(current_app.extensions["qms"].engine, gate, timeframe or "24h")
        data = found["dashboard"]["data"]
        window = window_line(data["window"]["start"], data["window"]["end"])
        return (kpi_grid(data["widgets"]), metric_trend(found["series"], mode=mode or "light", id="gate-pass-trend"),
                window)


GATE_POINTS = 48        # the gate page's pass rate over time


def gate_data(engine: Engine, gate: str, timeframe: str) -> dict[str, Any]:
    """The gate page's data: the gate's KPIs and its pass rate over time."""
    prefix = f"gate.{gate}."
    out = engine.dashboard("qa", timeframe, only={prefix + m for m in ("pass_rate", "executions", "p95_time")})
    return {"dashboard": out, "kpis": {w["id"]: w["data"] for w in out["data"]["widgets"]},
            "series": engine.series(prefix + "pass_rate", timeframe, points=GATE_POINTS, shared=True)}


def _register_grid(app: Dash, grid: str, store: str, count: str, note: str | None) -> None:
    outputs = [Output(grid, "getRowsResponse"), Output(count, "children")] + ([Output(note, "children")] if note else [])

    @secure_callback(app, _store_permission(store), *outputs, Input(grid, "getRowsRequest"), State(store, "data"),
                     inputs={f"{grid}.getRowsRequest": RowsRequest | None, f"{store}.data": EventsSpec | None},
                     twin="GET /api/metrics/<kpi_id>/events", prevent_initial_call=True)
    def rows(request: dict[str, Any] | None, spec: dict[str, Any] | None) -> tuple[Any, ...]:
        principal = current_principal()
        kpi = (spec or {}).get("kpi")
        dash_name = dashboard_of(kpi or "")
        if not request or not kpi or dash_name is None or not authorize(principal, DASHBOARD_PERMISSION[dash_name]):
            raise PreventUpdate          # unreachable past the guard; kept as a second lock
        try:
            response, line, scoped = grid_rows(spec or {}, request, principal)
        except (KeyError, QueryError) as exc:
            response, line, scoped = {"rowData": [], "rowCount": 0}, f"No rows: {exc}", ""
        return (response, line, scoped) if note else (response, line)
