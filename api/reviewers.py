"""The reviewer ledger as JSON: `GET /api/reviewers` (every reviewer, per kind, first reviews,
gates) and `GET /api/reviewers/{id}` (one reviewer, with the events behind each number).

Permission: `view:team_metrics` or `view:quality_metrics` (any of them). Cost figures need
`view:cost_analysis` as everywhere (null otherwise, `cost_hidden: true`). People's rows leave
through the caller's sanitiser (data.ledger.visible: pseudonymised for roles that pseudonymise,
other teams' per the team scope); agents, bots and gates are not people and stay named. A
person the caller would see only under a pseudonym cannot be asked for by name (403).
Bad parameters → 400 naming the field; Redis unavailable → 503 JSON.
"""
from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, request

from api.entities import any_of
from api.routes import _end_param, _query_error, _redis_error, _scope_param, envelope, error, sanitizer, services
from auth.guard import require
from auth.principal import audit, authorize, current_principal
from data import ledger, ledger_detail
from data.engine import QueryError
from data.events import MAX_NAME

bp = Blueprint("reviewers", __name__)
bp.register_error_handler(QueryError, _query_error)
bp.register_error_handler(redis.RedisError, _redis_error)

VIEWS = ("view:team_metrics", "view:quality_metrics")
permission = any_of(VIEWS)


def _timeframe() -> str:
    return request.args.get("timeframe") or "24h"


def _see_cost() -> bool:
    return authorize(current_principal(), "view:cost_analysis")


def reviewers_data(timeframe: str, end: int | None, scope: str | None) -> dict[str, Any]:
    """The ledger for the current principal (sanitised): also the Reviewers page's data."""
    svc = services()
    doc = ledger.figures(svc.redis, svc.keys, timeframe, end, scope, svc.settings.max_future_skew_s * 1000)
    teams = ledger.reviewer_teams(svc.redis, svc.keys, [row["reviewer"] for row in doc["rows"]])
    return ledger.sanitize(doc, sanitizer(), teams, _see_cost())


def reviewer_data(reviewer: str, timeframe: str, end: int | None, scope: str | None) -> dict[str, Any] | None:
    """One reviewer for the current principal, or None if unknown. Raises PermissionError when
    the caller may see this person only under a pseudonym."""
    svc = services()
    doc = ledger_detail.read(svc.redis, svc.keys, reviewer, timeframe, end, scope,
                             svc.settings.raw_retention_days * 86_400_000, svc.settings.max_future_skew_s * 1000)
    if doc is None:
        return None
    san = sanitizer()
    team = ledger.reviewer_teams(svc.redis, svc.keys, [reviewer]).get(reviewer)
    if ledger.visible(san, doc["kind"] or "human", reviewer, team) != "named":
        raise PermissionError(reviewer)
    see_cost = _see_cost()
    if not see_cost:
        doc["figures"].update({k: None for k in ledger.COST_FIGURES})
        doc["counts"]["review_cost_usd"] = None
    if not san.is_noop:
        for name, rows in doc["rows"].items():
            clean = san.events([r["event"] for r in rows])      # team scope may leave some out
            kept = {ev["id"]: ev for ev in clean}
            doc["rows"][name] = [{**r, "event": kept[r["event"]["id"]], "context": san.events(r.get("context", []))}
                                 for r in rows if r["event"]["id"] in kept]
        doc["scope"] = san.scope_info()
    else:
        doc["scope"] = {"teams": "all"}
    doc["cost_hidden"] = not see_cost
    return doc


@bp.get("/api/reviewers")
@require(permission)
def reviewers() -> Response:
    return envelope(reviewers_data(_timeframe(), _end_param(), _scope_param()))


@bp.get("/api/reviewers/<path:reviewer>")
@require(permission)
def reviewer(reviewer: str) -> Response:
    if len(reviewer) > MAX_NAME:
        return error(400, "bad_request", f"reviewer: at most {MAX_NAME} characters")
    try:
        doc = reviewer_data(reviewer, _timeframe(), _end_param(), _scope_param())
    except PermissionError:
        audit("authz.denied", "denied", path=request.path, asked_reviewer=reviewer)
        return error(403, "forbidden", "your role sees this reviewer's figures only without their name")
    if doc is None:
        return error(404, "not_found", "no reviewer with this id")
    return envelope(doc)
