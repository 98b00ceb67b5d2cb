"""Entity pages as JSON: `GET /api/entities/workflow/<id>` and `GET /api/entities/agent/<id>`.

Permission: the data shown. A workflow is shown by the dashboards that list workflows
(operations' kanban, QA's failing gate runs, developers' review queues); an agent by those
that list agents (operations' agent grid, QA's gate runs). Every row leaves through the
principal's sanitiser, as the other endpoints' rows do. Redis unavailable: the app-wide
JSON 503 (factory.py).
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, request

from api.routes import envelope, error, sanitizer, services
from auth.guard import require
from auth.principal import authorize, current_principal
from data import entities, entity_reader
from data.timeutil import TIMEFRAMES, now_ms, parse_iso

bp = Blueprint("entities", __name__)

WORKFLOW_VIEWS = ("view:operational_dashboard", "view:qa_dashboard", "view:developer_dashboard")
AGENT_VIEWS = ("view:operational_dashboard", "view:qa_dashboard")
MAX_LIMIT = 5000


def any_of(permissions: tuple[str, ...]) -> Callable[[dict[str, Any]], str]:
    """A permission spec met by any one of `permissions` (the first one the caller holds;
    the first of the list names what is missing in a 403)."""
    def spec(_args: dict[str, Any]) -> str:
        principal = current_principal()
        return next((p for p in permissions if authorize(principal, p)), permissions[0])
    return spec


workflow_permission = any_of(WORKFLOW_VIEWS)
agent_permission = any_of(AGENT_VIEWS)


class BadParam(ValueError):
    """A query parameter that cannot be used (400)."""


@bp.errorhandler(BadParam)
def _bad(exc: BadParam) -> Response:
    return error(400, "bad_request", str(exc))


def agent_window(timeframe: str | None, end: str | None, now: int) -> tuple[int, int]:
    """[start, end) of an agent page: a timeframe (default 24h) ending at `end` (default now)."""
    tf = timeframe or "24h"
    if tf not in TIMEFRAMES:
        raise BadParam("timeframe: one of " + ", ".join(TIMEFRAMES))
    stop = now
    if end:
        try:
            stop = parse_iso(end)
        except ValueError:
            raise BadParam("end: not ISO 8601 with a zone") from None
    return stop - TIMEFRAMES[tf], stop


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 500
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadParam(f"limit: an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def workflow_data(workflow_id: str) -> dict[str, Any] | None:
    """The workflow page for the current principal (sanitised), or None if unknown."""
    svc = services()
    doc = entity_reader.read_workflow(svc.redis, svc.keys, workflow_id, now_ms(), int(svc.settings.sla_hours * 3_600_000))
    return None if doc is None else entities.sanitize_workflow(doc, sanitizer())


def agent_data(agent_id: str, start: int, end: int, limit: int = 500) -> dict[str, Any] | None:
    """The agent page for the current principal (sanitised), or None if unknown."""
    svc = services()
    doc = entity_reader.read_agent(svc.redis, svc.keys, agent_id, start, end, now_ms(), limit)
    return None if doc is None else entities.sanitize_agent(doc, sanitizer())


@bp.get("/api/entities/workflow/<path:workflow_id>")
@require(workflow_permission)
def workflow(workflow_id: str) -> Response:
    doc = workflow_data(workflow_id)
    if doc is None:
        return error(404, "not_found", "no workflow with this id (or its events are past retention)")
    return envelope(doc)


@bp.get("/api/entities/agent/<path:agent_id>")
@require(agent_permission)
def agent(agent_id: str) -> Response:
    start, end = agent_window(request.args.get("timeframe"), request.args.get("end"), now_ms())
    doc = agent_data(agent_id, start, end, _limit(request.args.get("limit")))
    if doc is None:
        return error(404, "not_found", "no agent with this id")
    return envelope(doc)
