"""Dashboards as data over HTTP (docs/API.md, "Dashboards"): list, create, read, save
(a personal copy, or the shared definition with `manage:dashboards`), delete, versions and
restore, stars, export and import — thin adapters over dashboards.store.

Every route needs a dashboard user (the permission of one role dashboard at least: not a
producer's token, not an unknown role); the store decides the rest. A dashboard the caller
may not see answers 404 like one that does not exist; an invalid definition 422 with one
entry per error naming the widget and the field; a refused permission 403. Each change is
audited (`dashboard.*`).
"""
from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from flask import Blueprint, Response, current_app

from api.entities import any_of
from api.routes import envelope, error
from api.validation import InvalidInput, Query, Text, json_body, query
from auth.guard import require
from auth.principal import audit, authorize, current_principal
from auth.rbac import DASHBOARD_PERMISSION
from dashboards.schema import DefinitionError
from dashboards.store import MANAGE, DashboardStore, Found, NotFound, StoreError, exported
from data.audit import Action

bp = Blueprint("dashboards", __name__)
DASHBOARD_USER = any_of(tuple(DASHBOARD_PERMISSION.values()))


class ListQuery(Query):
    q: Text(200) | None = None                          # type: ignore[valid-type]


class SaveQuery(Query):
    scope: Literal["personal", "shared"] = "personal"


class ScopeQuery(Query):
    scope: Literal["personal", "shared"] | None = None


def store() -> DashboardStore:
    return current_app.extensions["qms"].dashboards


@bp.errorhandler(StoreError)
def _store_error(exc: StoreError) -> Response:
    return error(exc.status, exc.code, str(exc))


@bp.errorhandler(DefinitionError)
def _invalid(exc: DefinitionError) -> Response:
    return error(422, "invalid_definition", str(exc), errors=exc.errors)


def _definition() -> Any:
    """The body: a definition (JSON object). Malformed or too deep JSON is a 400 (InvalidInput);
    anything parsed but not a valid definition is the store's 422."""
    doc = json_body()
    if doc is None:
        raise InvalidInput("the body must be a dashboard definition (a JSON object)")
    return doc


def _visible(dash_id: str) -> Found:
    """The dashboard as the caller sees it; NotFound (404) if none or not theirs to see."""
    found = store().get(dash_id, current_principal())
    if found is None:
        raise NotFound(f"no dashboard {dash_id!r}")
    return found


def _changed(found: Found) -> dict[str, Any]:
    """The version a write made, for its audit entry: who changed what (the summary)."""
    v = found.saved_version or {}
    return {"version": v.get("n"), "summary": v.get("summary")}


def _answer(found: Found, status: int = 200) -> Response:
    return envelope(found.as_json(), status=status)


@bp.get("/api/dashboards")
@require(DASHBOARD_USER)
def list_dashboards() -> Response:
    principal = current_principal()
    found = store().list(principal, query(ListQuery).q)
    data: dict[str, Any] = {"count": len(found), "dashboards": found}
    if authorize(principal, MANAGE):      # who can fix a refused file is told about it
        data["provision_errors"] = store().provision_errors()
    return envelope(data)


@bp.post("/api/dashboards")
@require(DASHBOARD_USER)
def create_dashboard() -> Response:
    scope = query(SaveQuery).scope
    found = store().create(current_principal(), _definition(), shared=scope == "shared",
                           origin="POST /api/dashboards")
    audit(Action.DASHBOARD_CREATED, dashboard=found.dashboard.id, scope=scope, **_changed(found))
    return _answer(found, 201)


@bp.get("/api/dashboards/<dash_id>")
@require(DASHBOARD_USER)
def get_dashboard(dash_id: str) -> Response:
    return _answer(_visible(dash_id))


@bp.put("/api/dashboards/<dash_id>")
@require(DASHBOARD_USER)
def save_dashboard(dash_id: str) -> Response:
    scope = query(SaveQuery).scope
    s, principal, origin = store(), current_principal(), f"PUT /api/dashboards/{dash_id}"
    if scope == "shared":
        found = s.save_shared(dash_id, principal, _definition(), origin)
        audit(Action.DASHBOARD_SHARED_SAVED, dashboard=dash_id, **_changed(found))
    else:
        found = s.save_personal(dash_id, principal, _definition(), origin)
        audit(Action.DASHBOARD_SAVED, dashboard=dash_id, scope="personal", **_changed(found))
    return _answer(found)


@bp.delete("/api/dashboards/<dash_id>")
@require(DASHBOARD_USER)
def delete_dashboard(dash_id: str) -> Response:
    """No scope: delete the dashboard (yours, or a shared one with manage:dashboards);
    ?scope=personal: drop your personal copy; ?scope=shared: a provisioned dashboard's file
    definition back in place of its shared override."""
    scope = query(ScopeQuery).scope
    s, principal = store(), current_principal()
    if scope == "personal":
        s.reset_personal(dash_id, principal)
        audit(Action.DASHBOARD_DELETED, dashboard=dash_id, scope="personal copy")
        found = s.get(dash_id, principal)
        return envelope({"id": dash_id, "deleted": "personal copy", "now": found.as_json() if found else None})
    if scope == "shared":
        found = s.reset_shared(dash_id, principal)
        audit(Action.DASHBOARD_RESTORED, dashboard=dash_id, scope="shared", to="provisioned file", **_changed(found))
        return envelope({"id": dash_id, "deleted": "shared override", "now": found.as_json()})
    kind = s.delete(dash_id, principal)
    audit(Action.DASHBOARD_DELETED, dashboard=dash_id, scope=kind)
    return envelope({"id": dash_id, "deleted": kind})


@bp.get("/api/dashboards/<dash_id>/versions")
@require(DASHBOARD_USER)
def list_versions(dash_id: str) -> Response:
    return envelope(store().versions(dash_id, current_principal(), query(ScopeQuery).scope))


@bp.post("/api/dashboards/<dash_id>/versions/<n>/restore")
@require(DASHBOARD_USER)
def restore_version(dash_id: str, n: str) -> Response:
    # Any text routes here (not to the pages' catch-all, a 405): not a version number is a 404.
    if not re.fullmatch(r"[0-9]{1,9}", n):
        return error(404, "not_found", f"no version {n[:20]!r} of {dash_id!r}")
    scope = query(ScopeQuery).scope
    found = store().restore(dash_id, int(n), current_principal(), scope)
    audit(Action.DASHBOARD_RESTORED, dashboard=dash_id, restored=int(n),
          scope="personal" if found.personal_copy or found.kind == "personal" else "shared", **_changed(found))
    return _answer(found)


@bp.put("/api/dashboards/<dash_id>/star")
@require(DASHBOARD_USER)
def star(dash_id: str) -> Response:
    return envelope({"id": dash_id, "starred": store().star(dash_id, current_principal(), True)})


@bp.delete("/api/dashboards/<dash_id>/star")
@require(DASHBOARD_USER)
def unstar(dash_id: str) -> Response:
    return envelope({"id": dash_id, "starred": store().star(dash_id, current_principal(), False)})


@bp.get("/api/dashboards/<dash_id>/export")
@require(DASHBOARD_USER)
def export_dashboard(dash_id: str) -> Response:
    """The definition as a file to import elsewhere: no owner, no visibility."""
    found = _visible(dash_id)
    audit(Action.EXPORT_REQUESTED, export=f"dashboard:{dash_id}", format="json")
    resp = Response(orjson.dumps(exported(found.dashboard), option=orjson.OPT_INDENT_2), mimetype="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="{found.dashboard.id}.dashboard.json"'
    return resp


@bp.post("/api/dashboards/import")
@require(DASHBOARD_USER)
def import_dashboard() -> Response:
    """An exported definition becomes the caller's personal dashboard (a new id if taken)."""
    doc = _definition()
    if isinstance(doc, dict):             # whose it was and who saw it do not travel
        doc = {k: v for k, v in doc.items() if k not in ("owner", "visibility")}
    found = store().create(current_principal(), doc, origin="POST /api/dashboards/import",
                           summary="imported")
    asked = doc.get("id") if isinstance(doc, dict) else None
    audit(Action.DASHBOARD_IMPORTED, dashboard=found.dashboard.id, asked_id=str(asked)[:64] if asked else None,
          **_changed(found))
    return _answer(found, 201)
