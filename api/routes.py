"""The REST API of shared/spec/API.md as a Flask blueprint: thin adapters over data/.

Every endpoint declares its permission with `@require` (auth.guard); data that leaves
for a principal passes through that principal's sanitiser (auth.sanitize).
"""
from __future__ import annotations

from typing import Annotated, Any

import orjson
import redis
from flask import Blueprint, Response, current_app, request
from pydantic import Field, StringConstraints

from api.openapi import OPENAPI
from api.validation import Body, Format, IsoTime, LongText, Name, Query, ViewQuery, body, query
from auth.guard import AUTHENTICATED, require
from auth.principal import audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from auth.sanitize import Sanitizer
from data import rawstore, scopes
from data.engine import QueryError
from data.events import BodyError, TooLarge, parse_body
from data.health import health as check_health
from data.ingest import dead_letters
from data.kpis import dashboard_of
from data.services import Services
from data.timeutil import fmt_ms, now_ms, parse_iso

bp = Blueprint("api", __name__)


def services() -> Services:
    return current_app.extensions["qms"]


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), status=status, mimetype="application/json")


def envelope(data: Any, metadata: dict[str, Any] | None = None, status: int = 200) -> Response:
    body: dict[str, Any] = {"status": "success", "timestamp": fmt_ms(now_ms()), "data": data}
    if metadata is not None:
        body["metadata"] = metadata
    return _json({"response": body}, status)


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"status": "error", "timestamp": fmt_ms(now_ms()), "error": {"code": code, "message": message, **extra}}
    return _json({"response": body}, status)


def _end_param() -> int | None:
    raw = request.args.get("end")
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise QueryError("end: not ISO 8601 with a zone") from None


def _scope_param() -> str | None:
    """?repository=X or ?team=Y (one of them): the dashboard filtered to that scope."""
    given = [(dim, request.args[dim]) for dim in scopes.DIMENSIONS if request.args.get(dim)]
    if len(given) > 1:
        raise QueryError("filter by repository or by team, not both")
    return scopes.label(*given[0]) if given else None


class Forbidden(Exception):
    """A request for data the principal may not see (403)."""


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return error(403, "forbidden", str(exc))


@bp.app_errorhandler(QueryError)     # app-wide: a window the engine refuses is a 400 from any view
def _query_error(exc: QueryError) -> Response:
    return error(400, "bad_request", str(exc))


@bp.errorhandler(redis.RedisError)
def _redis_error(exc: redis.RedisError) -> Response:
    current_app.logger.error("redis error: %s", exc)
    return error(503, "unavailable", "the data store is unavailable; retry shortly")


# --- ingest ----------------------------------------------------------------------------

def _dashboard_permission(kwargs: dict[str, Any]) -> str:
    # Unknown names still need a signed-in caller; the view then answers 400.
    return DASHBOARD_PERMISSION.get(kwargs.get("name", ""), AUTHENTICATED)


def _metric_permission(kwargs: dict[str, Any]) -> str:
    return DASHBOARD_PERMISSION.get(dashboard_of(kwargs.get("kpi_id", "")) or "", AUTHENTICATED)


def _state_permission(kwargs: dict[str, Any]) -> str:
    return {"defects": "view:qa_dashboard", "violations": "view:compliance_status",
            "reviews": "view:all_metrics"}.get(kwargs.get("kind", ""), "view:operational_dashboard")


def _user_param() -> str | None:
    """Whose developer metrics: one's own; anyone's only with view:all_metrics (team
    metrics are aggregates and do not open another person's individual numbers)."""
    principal = current_principal()
    asked = request.args.get("user")
    if principal is None:
        return asked
    if asked and asked != principal.name and not authorize(principal, "view:all_metrics"):
        audit("authz.denied", "denied", path=request.path, asked_user=asked)
        raise Forbidden("you may only see your own developer metrics")
    return asked or principal.name


def sanitizer() -> Sanitizer:
    """The principal's sanitiser for this request: hidden fields, pseudonyms and team scope
    (`.events()`/`.rows()` look the rows' teams up in one batch; `.scope_info()` says what
    was scoped, for the response)."""
    principal = current_principal()
    svc = services()
    return svc.sanitizer_for(principal.roles if principal else (), principal.name if principal else None)


def scope_headers(info: dict[str, Any]) -> dict[str, str]:
    """A CSV's team scope (the JSON's `scope`) as response headers: X-Scope (all|own), and for
    a scoped viewer the rows of other teams shown without names / left out, and the note."""
    out = {"X-Scope": str(info["teams"])}
    if info["teams"] == "own":
        out.update({"X-Scope-Shown-Without-Names": str(info["shown_without_names"]),
                    "X-Scope-Left-Out": str(info["left_out"]), "X-Scope-Note": info["note"] or ""})
    return out


def limited_body(limit: int) -> bytes | Response:
    """The request body, or a 413 answer past `limit` bytes (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return error(413, "payload_too_large", f"request body larger than {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return error(413, "payload_too_large", f"request body larger than {limit} bytes")
    return body


@bp.post("/api/events")
@require("ingest:events")
def post_events() -> Response:
    svc = services()
    body = limited_body(svc.settings.max_body_bytes)
    if isinstance(body, Response):
        return body
    try:
        items = parse_body(body, svc.settings.max_batch_events, svc.settings.max_event_bytes)
    except TooLarge as exc:
        return error(413, "payload_too_large", str(exc))
    except BodyError as exc:
        svc.ingestor.dead_letter_body(body, str(exc))
        return _json({"accepted": 0, "duplicates": 0, "rejected": 1,
                      "errors": [{"index": 0, "id": None, "errors": [str(exc)]}]}, 400)
    result = svc.ingestor.ingest(items, origin="api")
    status = 202 if result.accepted + result.duplicates > 0 else 400
    return _json(result.as_dict(), status)


@bp.get("/api/deadletter")
@require("view:deadletter")
def get_deadletter() -> Response:
    svc = services()
    try:
        count = int(request.args.get("count", 100))
    except ValueError:
        count = 0
    if not 1 <= count <= 1000:
        raise QueryError("count: an integer from 1 to 1000")
    return envelope({"events": dead_letters(svc.redis, svc.keys, count)})


# --- KPIs ------------------------------------------------------------------------------

class KpiQuery(ViewQuery):
    """The window and filters of a KPI request (`/api/dashboard/*`, `/api/metrics/*/series`)."""
    end: IsoTime | None = None
    user: Name | None = None


class DashboardQuery(KpiQuery):
    metrics: LongText | None = None                   # comma-separated KPI ids


class SeriesQuery(KpiQuery):
    points: Annotated[int, Field(ge=1)] | None = None   # the engine caps it at series_points


@bp.get("/api/dashboard/<name>")
@require(_dashboard_permission)
def get_dashboard(name: str) -> Response:
    svc = services()
    q = query(DashboardQuery)
    only = {m.strip() for m in (q.metrics or "").split(",") if m.strip()} or None
    out = svc.engine.dashboard(name, q.timeframe, q.end, user=_user_param() if name == "developer" else None,
                               only=only, scope=_scope_param())
    return envelope(out["data"], out["metadata"])


@bp.get("/api/metrics/<kpi_id>/series")
@require(_metric_permission)
def get_series(kpi_id: str) -> Response:
    svc = services()
    q = query(SeriesQuery)
    data = svc.engine.series(kpi_id, q.timeframe, q.end, q.points or svc.settings.series_points,
                             user=_user_param() if dashboard_of(kpi_id) == "developer" else None,
                             scope=_scope_param())
    return envelope(data)


@bp.get("/api/state/<kind>")
@require(_state_permission)
def get_state(kind: str) -> Response:
    """Current state lists: agents, queues, active workflows, open defects, open violations."""
    if kind not in ("agents", "queues", "active", "defects", "violations", "reviews"):
        return error(404, "not_found", f"unknown state {kind!r}")
    svc = services()
    clean = sanitizer()
    rows = [clean.row(orjson.loads(v)) for v in svc.redis.hvals(svc.keys.state(kind))]
    return envelope({"kind": kind, "items": rows})


# --- operations ------------------------------------------------------------------------

@bp.get("/api/export/<name>.csv")
@require("export:reports")
def export_dashboard(name: str) -> Response:
    """A dashboard's KPIs as CSV: one row per KPI with its window (analysts' export)."""
    if not authorize(current_principal(), DASHBOARD_PERMISSION.get(name, "")):
        audit("authz.denied", "denied", path=request.path, permission=DASHBOARD_PERMISSION.get(name))
        return error(403, "forbidden", f"exporting needs the permission {DASHBOARD_PERMISSION.get(name, 'view:?')}")
    svc = services()
    timeframe = request.args.get("timeframe", "24h")
    scope = _scope_param()
    out = svc.engine.dashboard(name, timeframe, _end_param(), user=_user_param() if name == "developer" else None,
                               scope=scope)
    data = out["data"]
    rows = [["kpi", "unit", "current_value", "previous_value", "trend", "window_start", "window_end", "timeframe",
             "filter"]]
    for w in data["widgets"]:
        d = w["data"]
        rows.append([w["id"], d["unit"], _cell(d["current_value"]), _cell(d["previous_value"]), d["trend"],
                     data["window"]["start"], data["window"]["end"], timeframe,
                     scope if w.get("filtered") else ""])
    audit("user.export_requested", export=name, rows=len(rows) - 1, format="csv", timeframe=timeframe,
          filter=scope or "")
    resp = Response(rawstore.rows_csv(rows), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}-{timeframe}.csv"'
    return resp


def _cell(value: Any) -> Any:
    return ";".join(value) if isinstance(value, list) else value


# --- audit and API tokens ----------------------------------------------------------------

class AuditQuery(Query):
    start: IsoTime | None = None
    end: IsoTime | None = None
    user: Name | None = None
    action: Name | None = None                          # an action prefix, e.g. "auth."
    limit: Annotated[int, Field(ge=1, le=10_000)] = 500
    format: Format = "json"


@bp.get("/api/audit")
@require("view:audit_logs")
def get_audit() -> Response:
    svc = services()
    q = query(AuditQuery)
    entries = svc.audit.query(q.start, q.end, user=q.user or None, action_prefix=q.action or None, limit=q.limit)
    if q.format == "csv":
        audit("user.export_requested", export="audit", rows=len(entries), format="csv")
        resp = Response(svc.audit.to_csv(entries), mimetype="text/csv")
        resp.headers["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return resp
    return envelope({"count": len(entries), "entries": entries})


@bp.get("/api/tokens")
@require("manage:users")
def list_tokens() -> Response:
    return envelope({"tokens": [_token_row(t) for t in services().tokens.list()]})


class TokenSpec(Body):
    """`POST /api/tokens`'s body: a label and the roles the token acts with."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    roles: Annotated[list[Name], Field(min_length=1, max_length=20)]


@bp.post("/api/tokens")
@require("manage:users")
def create_token() -> Response:
    svc = services()
    asked = body(TokenSpec)
    name, roles = asked.name, asked.roles
    if any(r not in svc.rbac.roles for r in roles):
        return error(400, "bad_request", f"roles: unknown role; roles from {sorted(svc.rbac.roles)}")
    principal = current_principal()
    token_id, secret = svc.tokens.create(name, roles, principal.name if principal else "api")
    audit("admin.token_created", key_id=token_id, label=name, roles=roles)
    return envelope({"id": token_id, "name": name, "roles": roles, "secret": secret,
                     "note": "shown once: store it now"}, status=201)


@bp.delete("/api/tokens/<token_id>")
@require("manage:users")
def revoke_token(token_id: str) -> Response:
    svc = services()
    if svc.tokens.get(token_id) is None:
        return error(404, "not_found", "no such token")
    svc.tokens.revoke(token_id)
    audit("admin.token_revoked", key_id=token_id)
    return envelope({"id": token_id, "revoked": True})


def _token_row(t: Any) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "roles": list(t.roles), "created": fmt_ms(t.created),
            "created_by": t.created_by, "revoked": fmt_ms(t.revoked) if t.revoked else None,
            "last_used": fmt_ms(t.last_used) if t.last_used else None}


@bp.get("/health")
def health() -> Response:
    svc = services()
    report = check_health(svc.redis, svc.keys)
    return _json(report, 200 if report["status"] == "healthy" else 503)


@bp.get("/api/openapi.json")
def openapi() -> Response:
    return _json(OPENAPI)
