"""The Reviewers pages: the route (permission, then the layout) and the callbacks that fill
them. Thin adapters: the data and its sanitising are api/reviewers.py's (the REST twins answer
the same under the same permission); the components are components/reviewers.py."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate
from flask import current_app

from api.reviewers import VIEWS, permission, reviewer_data, reviewers_data
from auth.guard import secure_callback
from auth.principal import Principal, audit, authorize
from callbacks.entity import EntitySpec
from callbacks.inputs import Choice, Count, Theme, TimeframeValue
from components import reviewers as view
from data import scopes
from data.engine import QueryError
from data.entity_reader import agent_known
from data.events import MAX_NAME
from pages import reviewers as layouts
from pages.dashboard import forbidden

BASE = "/reviewers"


def page(path: str | None, search: str | None, principal: Principal | None) -> Any | None:
    """/reviewers and /reviewers/<id> (or the 403 page); None for any other path."""
    path = (path or "").rstrip("/")
    if path != BASE and not path.startswith(BASE + "/"):
        return None
    if not any(authorize(principal, p) for p in VIEWS):
        audit("authz.denied", "denied", page=path, permission=VIEWS[0])
        return forbidden(VIEWS[0])
    query = parse_qs((search or "").lstrip("?"))
    timeframe = (query.get("timeframe") or ["24h"])[0]
    if path == BASE:
        audit("user.dashboard_accessed", dashboard="reviewers")
        names = current_app.extensions["qms"].engine.names()
        return layouts.layout(timeframe, names["teams"], names["repositories"],
                              (query.get("team") or [None])[0], (query.get("repository") or [None])[0])
    reviewer = unquote(path[len(BASE) + 1:])
    if not reviewer or len(reviewer) > MAX_NAME:
        return view.not_found(reviewer[:MAX_NAME])
    audit("user.dashboard_accessed", dashboard="reviewer", reviewer=reviewer)
    return layouts.reviewer_layout(reviewer, timeframe)


def _scope(team: str | None, repository: str | None) -> str | None:
    if team and repository:
        raise QueryError("filter by repository or by team, not both")
    if team:
        return scopes.label("team", team)
    return scopes.label("repository", repository) if repository else None


def _mode(mode: Any) -> str:
    return "dark" if mode == "dark" else "light"


def register(app: Dash) -> None:
    @secure_callback(app, permission, Output("reviewers-body", "children"),
                     Input("reviewers-timeframe", "value"), Input("reviewers-team", "value"),
                     Input("reviewers-repository", "value"), Input("reviewers-refresh", "n_clicks"),
                     State("theme", "data"),
                     inputs={"reviewers-timeframe.value": TimeframeValue, "reviewers-team.value": Choice,
                             "reviewers-repository.value": Choice, "reviewers-refresh.n_clicks": Count,
                             "theme.data": Theme},
                     twin="GET /api/reviewers")
    def reviewers_body(timeframe: str | None, team: str | None, repository: str | None, _clicks: int | None,
                       mode: str | None) -> Any:
        try:
            doc = reviewers_data(timeframe or "24h", None, _scope(team, repository))
        except QueryError as exc:
            return view.message(str(exc))
        return view.ledger_view(doc, _mode(mode))

    @secure_callback(app, permission, Output("reviewer-body", "children"),
                     Input("reviewer-spec", "data"), Input("reviewer-timeframe", "value"),
                     Input("reviewer-refresh", "n_clicks"), State("theme", "data"),
                     inputs={"reviewer-spec.data": EntitySpec | None, "reviewer-timeframe.value": TimeframeValue,
                             "reviewer-refresh.n_clicks": Count, "theme.data": Theme},
                     twin="GET /api/reviewers/<path:reviewer>")
    def reviewer_body(spec: dict[str, Any] | None, timeframe: str | None, _clicks: int | None,
                      mode: str | None) -> Any:
        reviewer = (spec or {}).get("id")
        if not reviewer:
            raise PreventUpdate
        try:
            doc = reviewer_data(str(reviewer), timeframe or "24h", None, None)
        except PermissionError:
            audit("authz.denied", "denied", page=BASE, asked_reviewer=str(reviewer))
            return view.refused()
        if doc is None:
            return view.not_found(str(reviewer))
        svc = current_app.extensions["qms"]
        agent = doc.get("kind") in ("ai", "bot") and agent_known(svc.redis, svc.keys, str(reviewer))
        return view.reviewer_view(doc, _mode(mode), agent_page=agent)
