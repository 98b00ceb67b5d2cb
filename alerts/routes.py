"""GET /api/alerts, GET /api/alerts/history, POST /api/alerts/{id}/acknowledge (API.md)."""
from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, Response, current_app
from pydantic import Field

from alerts.service import AlertService
from api.routes import envelope, error
from api.validation import Body, Name, Query, Text, body, query
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


class AlertsQuery(Query):
    severity: Literal[SEVERITIES] | Literal[""] | None = None      # type: ignore[valid-type]
    status: Literal[STATUSES] | Literal[""] | None = None          # type: ignore[valid-type]


class HistoryQuery(Query):
    rule: Name | None = None
    limit: Annotated[int, Field(ge=1, le=2000)] = 200


Comment = Text(1000)


class AckBody(Body):
    comment: Comment | None = None


@bp.get("/api/alerts")
@require("view:alerts")
def list_alerts() -> Response:
    q = query(AlertsQuery)
    alerts = service().alerts(q.severity or None, q.status or None)
    return envelope({"alerts": alerts, "count": len(alerts)})


@bp.get("/api/alerts/history")
@require("view:alerts")
def alert_history() -> Response:
    q = query(HistoryQuery)
    return envelope({"history": service().history(q.rule or None, q.limit)})


@bp.post("/api/alerts/<path:alert_id>/acknowledge")
@require(lambda kwargs: ack_permission(kwargs.get("alert_id", "")))
def acknowledge(alert_id: str) -> Response:
    comment = body(AckBody, empty={}).comment
    principal = current_principal()
    try:
        rec = service().acknowledge(alert_id, principal.name if principal else "?", comment)
    except KeyError:
        return error(404, "not_found", f"no alert {alert_id!r}")
    except ValueError as exc:
        return error(409, "conflict", str(exc))
    audit("user.alert_acknowledged", alert=alert_id, rule=rec.get("rule"), comment=comment or "")
    return envelope({"alert": rec})
