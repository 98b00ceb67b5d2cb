"""GET /api/alerts, GET /api/alerts/history, POST /api/alerts/{id}/acknowledge (API.md)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from alerts.service import AlertService
from api.routes import envelope, error
from auth.guard import require
from auth.principal import audit, authorize, current_principal

bp = Blueprint("alerts", __name__)
STATUSES = ("pending", "firing", "acknowledged", "resolved", "no_data")
SEVERITIES = ("info", "warning", "critical")


def service() -> AlertService:
    return current_app.extensions["qms_alerts"]


def ack_permission(alert_id: str) -> str:
    """Quality alerts (those that link to the QA dashboard) may be acknowledged with
    acknowledge:quality_alerts; every other alert needs manage:alerts."""
    rec = service().state().get(alert_id) or {}
    rule = service().rules.get(rec.get("rule", ""))
    if rule is not None and rule.dashboard == "qa" and authorize(current_principal(), "acknowledge:quality_alerts"):
        return "acknowledge:quality_alerts"
    return "manage:alerts"


@bp.get("/api/alerts")
@require("view:alerts")
def list_alerts() -> Response:
    severity, status = request.args.get("severity") or None, request.args.get("status") or None
    if severity and severity not in SEVERITIES:
        return error(400, "bad_request", f"severity must be one of {', '.join(SEVERITIES)}")
    if status and status not in STATUSES:
        return error(400, "bad_request", f"status must be one of {', '.join(STATUSES)}")
    alerts = service().alerts(severity, status)
    return envelope({"alerts": alerts, "count": len(alerts)})


@bp.get("/api/alerts/history")
@require("view:alerts")
def alert_history() -> Response:
    try:
        limit = max(1, min(int(request.args.get("limit", 200)), 2000))
    except ValueError:
        return error(400, "bad_request", "limit: must be an integer")
    return envelope({"history": service().history(request.args.get("rule") or None, limit)})


@bp.post("/api/alerts/<path:alert_id>/acknowledge")
@require(lambda kwargs: ack_permission(kwargs.get("alert_id", "")))
def acknowledge(alert_id: str) -> Response:
    body: Any = request.get_json(silent=True) or {}
    comment = body.get("comment") if isinstance(body, dict) else None
    if comment is not None and (not isinstance(comment, str) or len(comment) > 1000):
        return error(400, "bad_request", "comment: text of at most 1000 characters")
    principal = current_principal()
    try:
        rec = service().acknowledge(alert_id, principal.name if principal else "?", comment)
    except KeyError:
        return error(404, "not_found", f"no alert {alert_id!r}")
    except ValueError as exc:
        return error(409, "conflict", str(exc))
    audit("user.alert_acknowledged", alert=alert_id, rule=rec.get("rule"), comment=comment or "")
    return envelope({"alert": rec})
