"""`GET /api/metrics/{id}/events`: the events behind a KPI (data.drilldown) as a JSON page
with counts that reproduce the value and a cursor for the next page, or the whole window
streamed as CSV or JSON Lines (`format=csv|jsonl`, with export:reports).

Every row, and every event of its context, passes the principal's sanitiser on its way out.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import orjson
import redis
from flask import Blueprint, Response, current_app, request

from api.routes import (Forbidden, _end_param, _forbidden, _metric_permission, _query_error, _redis_error, _user_param,
                        envelope, error, sanitizer)
from auth.guard import require
from auth.principal import audit, authorize, current_principal
from data import drilldown, exports, scopes
from data.drilldown import Ctx, Query, Row
from data.engine import QueryError
from data.kpis import dashboard_of
from data.rawstore import Ref
from data.timeutil import fmt_ms

bp = Blueprint("drilldown", __name__)
bp.register_error_handler(QueryError, _query_error)
bp.register_error_handler(Forbidden, _forbidden)
bp.register_error_handler(redis.RedisError, _redis_error)
FORMATS = {"json", "csv", "jsonl"}
MAX_LIMIT = 10_000
STATE_KINDS = {"state", "level"}


def encode_cursor(key: Ref) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([key[0], key[1]])).decode().rstrip("=")


def decode_cursor(text: str) -> Ref:
    try:
        ts, ident = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise QueryError("cursor: not a cursor this API returned") from None
    if type(ts) is not int or not isinstance(ident, str):
        raise QueryError("cursor: not a cursor this API returned")
    return ts, ident


def _int(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name}: an integer from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise QueryError(f"{name}: an integer from {lo} to {hi}")
    return value


def _scope() -> tuple[str, str] | None:
    given = [(dim, request.args[dim]) for dim in scopes.DIMENSIONS if request.args.get(dim)]
    if len(given) > 1:
        raise QueryError("filter by repository or by team, not both")
    return given[0] if given else None


Clean = tuple[Row, dict[str, Any], list[dict[str, Any]]]


def sanitised(clean: Any, rows: list[Row]) -> list[Clean | None]:
    """Each row's event and context as this principal may see them (the teams of a page
    looked up in one batch); None for a row whose event the sanitiser leaves out."""
    clean.prepare([e for row in rows for e in (row.event, *row.context)])
    out: list[Clean | None] = []
    for row in rows:
        kept = clean.events([row.event])
        out.append((row, kept[0], clean.events(row.context) if row.context else []) if kept else None)
    return out


def clean_rows(clean: Any, rows: list[Row]) -> list[Clean]:
    """The rows as this principal may see them, without those left out."""
    return [c for c in sanitised(clean, rows) if c is not None]


def cleaned(ctx: Ctx, clean: Any, rows: Iterator[Row]) -> Iterator[Clean]:
    """A stream of rows with their context, sanitised, a chunk at a time."""
    for chunk in drilldown.resolved(ctx, rows):
        yield from clean_rows(clean, chunk)


def part_href(kpi: str, filters: dict[str, str], query: dict[str, str]) -> str:
    return f"/api/metrics/{quote(kpi, safe='')}/events?" + urlencode({**query, **filters})


@bp.get("/api/metrics/<kpi_id>/events")
@require(_metric_permission)
def metric_events(kpi_id: str) -> Response:
    dash = dashboard_of(kpi_id)
    try:
        drilldown.spec(kpi_id)
    except KeyError:
        dash = None
    if dash is None:
        return error(404, "not_found", f"unknown metric {kpi_id!r}")
    fmt = request.args.get("format") or "json"
    if fmt not in FORMATS:
        raise QueryError("format: json, csv or jsonl")
    if fmt != "json" and not authorize(current_principal(), "export:reports"):
        audit("authz.denied", "denied", path=request.path, permission="export:reports")
        return error(403, "forbidden", "exporting needs the permission export:reports")
    limit = _int("limit", 100, 1, MAX_LIMIT)
    offset = _int("offset", 0, 0, 10_000_000)
    cursor = decode_cursor(request.args["cursor"]) if request.args.get("cursor") else None
    svc = current_app.extensions["qms"]
    timeframe = request.args.get("timeframe") or "24h"
    q, filters = drilldown.make_query(svc.engine, kpi_id, timeframe, _end_param(),
                                      user=_user_param() if dash == "developer" else None, scope=_scope(),
                                      gate=request.args.get("gate") or None, agent=request.args.get("agent") or None)
    ctx = Ctx(svc.redis, svc.keys)
    clean = sanitizer()
    if fmt != "json":
        return export(ctx, q, dash, timeframe, filters, fmt, clean)
    got = drilldown.page(ctx, q, limit, cursor, offset)
    sp = drilldown.spec(kpi_id)
    rows = clean_rows(clean, got.rows)
    start, end = drilldown.window(q)
    query = {"timeframe": timeframe, "end": fmt_ms(q.end)}
    data: dict[str, Any] = {
        "metric": kpi_id, "dashboard": dash, "unit": sp.unit, "kind": sp.kind,
        "window": {"start": fmt_ms(start), "end": fmt_ms(end)}, "filters": filters,
        "filtered": any(k in filters for k in scopes.DIMENSIONS),
        "counts": got.counts, "value": got.value, "total": got.total, "count": len(rows),
        "withheld": len(got.rows) - len(rows), "events": [exports.as_json(*c) for c in rows],
        "next_cursor": encode_cursor(got.next) if got.next else None,
    }
    base = drilldown.basis(ctx, q)
    if base:
        data["basis"] = clean.events(base)
    data["scope"] = clean.scope_info()
    if sp.kind in STATE_KINDS:
        data["at"] = fmt_ms(q.end)
    if sp.value_unit:
        data["value_unit"] = sp.value_unit
    if got.parts:
        data["parts"] = [{**p, "href": part_href(p["metric"], filters, query)} for p in got.parts]
    return envelope(data)


def export(ctx: Ctx, q: Query, dash: str, timeframe: str, filters: dict[str, str], fmt: str, clean: Any,
           what: str | None = None) -> Response:
    """The whole drill-down, streamed: rows are read from Redis a chunk at a time while the
    response is written, so neither side holds the window. `what` names the file (a
    widget exporting its KPI's rows) when it is not the KPI."""
    sp = drilldown.spec(q.kpi)
    cap = int(current_app.extensions["qms"].settings.export_max_rows or 0)
    audit("user.export_requested", metric=q.kpi, format=fmt, timeframe=timeframe, cap=cap, **filters)
    rows = cleaned(ctx, clean, drilldown.rows(ctx, q))
    start, end = drilldown.window(q)
    name = exports.filename(dash, what or q.kpi, timeframe, start, end, filters, fmt)
    if fmt == "csv":
        body: Iterator[Any] = exports.drilldown_csv(sp, rows, cap, lambda: clean.scope_info().get("note"),
                                                    hidden=getattr(clean, "hidden_fields", frozenset()))
        mimetype = "text/csv"
    else:
        body = exports.drilldown_jsonl(rows, cap, lambda: clean.scope_info().get("note"))
        mimetype = "application/x-ndjson"
    # Not stream_with_context: the body needs nothing of the request (the sanitiser and the
    # Redis client are already in hand), and a held request context breaks interleaved responses.
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    # Known before the first row; how many rows of other teams were scoped is only known
    # after the last, so the file ends with that note.
    resp.headers["X-Scope"] = str(clean.scope_info()["teams"])
    if cap:
        resp.headers["X-Export-Cap"] = str(cap)
    return resp
