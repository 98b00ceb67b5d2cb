"""Entity pages: the route (permission, then the page layout) and the callbacks that fill them.
Thin adapters: the data and its sanitising are api/entities.py's (the REST twin answers the
same data under the same permission), the components are components/entity*.py."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate
from pydantic import BaseModel, ConfigDict

from api.entities import AGENT_VIEWS, WORKFLOW_VIEWS, agent_data, agent_permission, agent_window, workflow_data, \
    workflow_permission
from api.validation import Text
from auth.guard import secure_callback
from callbacks.inputs import Count, Theme, TimeframeValue
from auth.principal import Principal, audit, authorize, current_principal
from components.entity import not_found, workflow_view
from components.entity_agent import agent_view
from components.links import AGENT, BASES, WORKFLOW
from data.events import MAX_NAME
from data.timeutil import now_ms
from pages import entity as entity_page
from pages.dashboard import forbidden

PREFIXES = {BASES[kind]: kind for kind in (WORKFLOW, AGENT)}


class EntitySpec(BaseModel):
    """The page's store: which workflow or agent (ids are at most 256 characters, EVENTS.md)."""
    model_config = ConfigDict(extra="allow")
    id: Text(MAX_NAME)  # type: ignore[valid-type]


def entity_for_path(path: str | None) -> tuple[str, str] | None:
    """("workflow" | "agent", id) for /workflows/<id> and /agents/<id> (id URL-decoded)."""
    for prefix, kind in PREFIXES.items():
        if isinstance(path, str) and path.startswith(prefix) and len(path) > len(prefix):
            return kind, unquote(path[len(prefix):].rstrip("/"))
    return None


def page(path: str | None, search: str | None, principal: Principal | None) -> Any | None:
    """The entity page for `path` (or the 403 page), None when `path` is not an entity page."""
    found = entity_for_path(path)
    if found is None:
        return None
    kind, ident = found
    views = WORKFLOW_VIEWS if kind == "workflow" else AGENT_VIEWS
    if not any(authorize(principal, p) for p in views):
        audit("authz.denied", "denied", page=path, permission=views[0])
        return forbidden(views[0])
    if not ident or len(ident) > MAX_NAME:          # no event names such an id (EVENTS.md bounds)
        return not_found(kind, ident[:MAX_NAME] + "…")
    audit("user.dashboard_accessed", dashboard=kind, **{kind: ident})
    if kind == "workflow":
        return entity_page.workflow_layout(ident)
    timeframe = (parse_qs((search or "").lstrip("?")).get("timeframe") or ["24h"])[0]
    return entity_page.agent_layout(ident, timeframe)


def _ident(spec: dict[str, Any] | None) -> str:
    ident = (spec or {}).get("id")
    if not ident:
        raise PreventUpdate
    return str(ident)


def register(app: Dash) -> None:
    @secure_callback(app, workflow_permission, Output("workflow-body", "children"),
                     Input("workflow-spec", "data"), Input("workflow-refresh", "n_clicks"), State("theme", "data"),
                     inputs={"workflow-spec.data": EntitySpec | None, "workflow-refresh.n_clicks": Count,
                             "theme.data": Theme},
                     twin="GET /api/entities/workflow/<path:workflow_id>")
    def workflow_body(spec: dict[str, Any] | None, _clicks: int | None, mode: str | None) -> Any:
        ident = _ident(spec)
        doc = workflow_data(ident)
        return not_found("workflow", ident) if doc is None else workflow_view(doc, _mode(mode))

    @secure_callback(app, agent_permission, Output("agent-body", "children"),
                     Input("agent-spec", "data"), Input("agent-timeframe", "value"), Input("agent-refresh", "n_clicks"),
                     State("theme", "data"),
                     inputs={"agent-spec.data": EntitySpec | None, "agent-timeframe.value": TimeframeValue,
                             "agent-refresh.n_clicks": Count, "theme.data": Theme},
                     twin="GET /api/entities/agent/<path:agent_id>")
    def agent_body(spec: dict[str, Any] | None, timeframe: str | None, _clicks: int | None, mode: str | None) -> Any:
        ident = _ident(spec)
        start, end = agent_window(timeframe or "24h", None, now_ms())
        doc = agent_data(ident, start, end)
        if doc is None:
            return not_found("agent", ident)
        return agent_view(doc, _mode(mode), ledger=ledger_row(ident, timeframe or "24h", current_principal()))


def ledger_row(agent: str, timeframe: str, principal: Principal | None) -> dict[str, Any] | None:
    """The agent's figures as a reviewer in the reviewer ledger (data.ledger), for those who
    may read the ledger (GET /api/reviewers' permissions); cost figures need view:cost_analysis.
    `timeframe` is the page's picker value, typed by the callback's schema."""
    from api.reviewers import VIEWS
    if not any(authorize(principal, p) for p in VIEWS):
        return None
    from data import ledger
    from flask import current_app
    svc = current_app.extensions["qms"]
    found = ledger.figures(svc.redis, svc.keys, timeframe)
    row = next((r for r in found["rows"] if r["reviewer"] == agent), None)
    if row is not None and not authorize(principal, "view:cost_analysis"):
        row = {k: (None if k in ledger.COST_FIGURES else v) for k, v in row.items()}
    return row


def _mode(mode: Any) -> str:
    return "dark" if mode == "dark" else "light"
