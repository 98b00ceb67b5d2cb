"""Share a dashboard: who besides its owner may open it — roles, teams, users — saved as the
shared definition (`manage:dashboards`, like `PUT /api/dashboards/{id}?scope=shared`).

A QA lead builds a dashboard for their team in the editor, then shares it with the qa_lead
role or with a team here; it then appears in those users' dashboard lists. The viewers still
see each widget only as far as its data sources' permissions allow them.
"""
from __future__ import annotations

from typing import Annotated, Any

from dash import Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app
from pydantic import Field

from api.validation import Name
from auth.guard import secure_callback
from auth.principal import audit, current_principal
from callbacks.inputs import Count
from dashboards.schema import Dashboard, DefinitionError
from dashboards.store import StoreError
from data.audit import Action

MANAGE = "manage:dashboards"
Names = Annotated[list[Name], Field(max_length=500)] | None


def _users(text: str | None) -> list[str]:
    return [u.strip() for u in (text or "").split(",") if u.strip()][:500]


def register(app: Dash) -> None:
    @secure_callback(app, MANAGE, Output("dash-share-modal", "is_open"), Input("dash-share-open", "n_clicks"),
                     prevent_initial_call=True, inputs={"dash-share-open.n_clicks": Count})
    def open_share(clicks: int | None) -> bool:
        if not clicks:
            raise PreventUpdate
        return True

    @secure_callback(app, MANAGE, Output("dash-share-status", "children"), Output("dash-def", "data",
                                                                                    allow_duplicate=True),
                     Input("dash-share-save", "n_clicks"), State("dash-share-roles", "value"),
                     State("dash-share-teams", "value"), State("dash-share-users", "value"),
                     State("dash-def", "data"), prevent_initial_call=True,
                     inputs={"dash-share-save.n_clicks": Count, "dash-share-roles.value": Names,
                             "dash-share-teams.value": Names, "dash-share-users.value": Name | None,
                             "dash-def.data": Dashboard | None},
                     twin="PUT /api/dashboards/<dash_id>")
    def share(clicks: int | None, roles: list[str] | None, teams: list[str] | None, users: str | None,
              raw: dict[str, Any] | None) -> tuple[Any, Any]:
        if not clicks or not raw:
            raise PreventUpdate
        principal = current_principal()
        doc = dict(raw)
        doc["visibility"] = {**(doc.get("visibility") or {}), "roles": sorted(set(roles or [])),
                             "teams": sorted(set(teams or [])), "users": _users(users)}
        store = current_app.extensions["qms"].dashboards
        try:
            found = store.save_shared(doc["id"], principal, doc, origin="the share dialog")
        except (StoreError, DefinitionError) as exc:
            return html.Span(str(exc), className="text-danger"), no_update
        v = found.dashboard.visibility
        who = ", ".join([*(f"role {r}" for r in v.roles), *(f"team {t}" for t in v.teams), *v.users]) or "its owner only"
        version = found.saved_version or {}
        audit(Action.DASHBOARD_SHARED_SAVED.value, dashboard=doc["id"], version=version.get("n"),
              summary=f"shared with {who}")
        return html.Span(f"Shared with {who}.", className="text-success"), found.dashboard.model_dump(mode="json")
