"""Webhook receivers and their administration, as a Flask blueprint.

`POST /api/webhooks/<source>` is authenticated by the source's own secret, not by a user:
no session, no CSRF, no `@require` (the signature check is integrations/receiver.py's).
`/api/integrations…` are the integrations page's REST twins, under `manage:integrations`.
"""
from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, Flask, Response, current_app, request
from pydantic import Field

from api.routes import _json, envelope, error, limited_body
from api.validation import Query, query
from auth.guard import require
from auth.principal import audit
from data.services import Services
from integrations.receiver import SOURCE_NAMES, Outcome, Receiver

bp = Blueprint("webhooks", __name__)
PERMISSION = "manage:integrations"


def init_webhooks(server: Flask, services: Services) -> None:
    """The app's receiver (its mapping file is re-read when it changes) and the routes."""
    server.extensions["qms_webhooks"] = Receiver(services.redis, services.keys, services.settings,
                                                 services.ingestor, services.audit)
    server.register_blueprint(bp)


def receiver() -> Receiver:
    return current_app.extensions["qms_webhooks"]


def _answer(out: Outcome) -> Response:
    if out.error is not None:
        resp = error(out.status, *out.error)
    else:
        resp = _json(out.body, out.status)
    if out.retry_after:
        resp.headers["Retry-After"] = str(out.retry_after)
    return resp


@bp.post("/api/webhooks/<source>")
def webhook(source: str) -> Response:
    svc: Services = current_app.extensions["qms"]
    if source not in SOURCE_NAMES or not receiver().configured(source):
        # Said before the body is read: nothing about an unconfigured receiver is told.
        return error(404, "not_found", f"no {source[:50]} receiver is configured here")
    body = limited_body(svc.settings.max_body_bytes)
    if isinstance(body, Response):
        return body
    return _answer(receiver().receive(source, request.headers, body, request.remote_addr or "-"))


def _source(source: str) -> Response | None:
    if source not in SOURCE_NAMES:
        return error(404, "not_found", f"no source {source[:50]!r}; sources: {', '.join(SOURCE_NAMES)}")
    return None


@bp.get("/api/integrations")
@require(PERMISSION)
def integrations() -> Response:
    rec = receiver()
    summary = rec.mapping.get().summary        # (re-reads a changed file first, so `error` is current)
    return envelope({"sources": rec.overview(), "mapping": {"file": str(rec.mapping.path),
                                                           "error": rec.mapping.error, **summary}})


class DeliveriesQuery(Query):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    status: Literal["mapped", "unknown", "ignored", "invalid", "duplicate"] | None = None


@bp.get("/api/integrations/<source>/deliveries")
@require(PERMISSION)
def deliveries(source: str) -> Response:
    refused = _source(source)
    if refused is not None:
        return refused
    q = query(DeliveriesQuery)
    rows = receiver().deliveries(source, q.limit, q.status)
    return envelope({"source": source, "count": len(rows), "deliveries": rows})


@bp.post("/api/integrations/<source>/deliveries/<delivery_id>/replay")
@require(PERMISSION)
def replay(source: str, delivery_id: str) -> Response:
    refused = _source(source)
    if refused is not None:
        return refused
    rec = receiver()
    entry = rec.delivery(source, delivery_id[:200])
    if entry is None:
        return error(404, "not_found", f"no stored {source} delivery {delivery_id[:100]!r} with a body")
    out = rec.replay(source, entry)
    audit("integration.replayed", source=source, delivery=entry["id"], status=out.body.get("status", "invalid"))
    if out.error is not None:
        return _answer(out)
    return envelope({"source": source, "entry": entry["entry"], **out.body})
