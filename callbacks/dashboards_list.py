"""The dashboard list's callbacks (`/dashboards`, pages/dashboards_list.py): thin adapters
over dashboards.store, each under the permission its REST twin (api/dashboards.py) needs.

The store decides who may change what; a callback's declared permission says the same
before anything runs, so a forged request is refused (403) exactly where the REST call
is. Every one needs a dashboard user (api.dashboards.DASHBOARD_USER: one role dashboard's
permission); creating and importing also update:personal_settings; deleting a shared
dashboard and restoring a shared version manage:dashboards, restoring a personal version
update:personal_settings (the permission functions ask the store which one the clicked
row is); starring, reading versions and resetting one's own copy nothing more, as over
REST. A refusal the store still makes (a race, a provisioned dashboard, a definition that
does not validate) is shown as a message, never a 500. Changes are audited like the REST
ones (`dashboard.*`).
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app

from api.validation import loads
from api.dashboards import DASHBOARD_USER
from auth.guard import Permissions, secure_callback
from auth.principal import Principal, audit, authorize, current_principal
from callbacks.inputs import Choice, Count, Notice, Upload
from dashboards.schema import DefinitionError
from dashboards.store import MANAGE, PERSONAL, PERSONAL_SETTINGS, SHARED, DashboardStore, StoreError
from pages import dashboards_list as layout

ACTIONS = ("star", "delete", "restore", "create")
NOTICE = Notice | None


def store() -> DashboardStore:
    return current_app.extensions["qms"].dashboards


def page(search: str | None, principal: Principal | None) -> Any:
    """The router's `/dashboards` for a dashboard user (the list holds what they may see)."""
    audit("user.dashboard_accessed", dashboard="list")
    return layout.page(search, principal)


# --- which row a request is about ---------------------------------------------------------------

def _first_trigger(body: dict[str, Any]) -> dict[str, Any] | None:
    """The id of the request's first changed input, as Dash's ctx.triggered_id reads it."""
    changed = body.get("changedPropIds") or []
    cid = changed[0].rsplit(".", 1)[0] if changed and isinstance(changed[0], str) else ""
    try:
        tid = json.loads(cid) if cid.startswith("{") else None
    except ValueError:
        return None
    return tid if isinstance(tid, dict) else None


def _target(tid: Any, kind: str) -> tuple[str, Any, Any] | None:
    """(dashboard id, version n, scope) of a clicked row button of type `kind`."""
    if not isinstance(tid, dict) or tid.get("type") != kind or tid.get("id") in (None, ""):
        return None
    return str(tid["id"]), tid.get("n"), tid.get("scope")


def _clicked(kind: str) -> tuple[str, Any, Any]:
    """The row button that fired this callback (a click, not a button newly drawn)."""
    target = _target(ctx.triggered_id, kind)
    if target is None or not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate
    return target


def _version(n: Any, scope: Any) -> tuple[int, str] | None:
    if isinstance(n, int) and not isinstance(n, bool) and n > 0 and scope in (PERSONAL, SHARED):
        return n, scope
    return None


def _also(body: dict[str, Any], permission: str) -> str:
    """A dashboard user (as every /api/dashboards route) who also holds `permission`, said
    as the one permission the caller lacks (a single name, as the RBAC tests read specs)."""
    user = DASHBOARD_USER(body)
    return permission if authorize(current_principal(), user) else user


def _create_permission(body: dict[str, Any]) -> Permissions:
    """Creating and importing: personal dashboards need update:personal_settings."""
    return _also(body, PERSONAL_SETTINGS)


def _delete_permission(body: dict[str, Any]) -> Permissions:
    """As store.delete decides: a shared dashboard needs manage:dashboards; one's own
    personal dashboard nothing more; anything else the store answers (not found, provisioned)."""
    target = _target(_first_trigger(body), "dl-delete")
    found = store().get(target[0], current_principal()) if target is not None else None
    return _also(body, MANAGE) if found is not None and found.kind == SHARED else DASHBOARD_USER(body)


def _restore_permission(body: dict[str, Any]) -> Permissions:
    """As store.restore decides: a version of a personal dashboard or copy is saved with
    update:personal_settings, one of a shared definition with manage:dashboards; a version
    that is not there is the store's "not found"."""
    target = _target(_first_trigger(body), "dl-restore")
    version = _version(target[1], target[2]) if target else None
    if target is None or version is None:
        return DASHBOARD_USER(body)
    try:
        which, _ = store().version(target[0], version[0], current_principal(), version[1])
    except StoreError:
        return DASHBOARD_USER(body)
    return _also(body, PERSONAL_SETTINGS if which == PERSONAL else MANAGE)


# --- outcomes ------------------------------------------------------------------------------------

def _notice(done: dict[str, Any] | None, text: str | None, level: str = "info",
            lines: list[str] | None = None) -> dict[str, Any]:
    """The next outcome for a `dl-*-done` store, within the bounds its type (callbacks.inputs.
    Notice) holds it to when the browser sends it back."""
    return {"n": int((done or {}).get("n") or 0) + 1, "text": text[:2000] if text else text, "level": level,
            "lines": [line[:1000] for line in (lines or [])[:50]]}


def _refused(done: dict[str, Any] | None, exc: Exception, what: str) -> dict[str, Any]:
    if isinstance(exc, DefinitionError):
        return _notice(done, f"{what}: the definition does not validate.", "danger",
                       [exc.line(e) for e in exc.errors])
    return _notice(done, f"{what}: {exc}", "warning")


def _title(s: DashboardStore, ident: str, principal: Principal | None) -> str:
    found = s.get(ident, principal)
    return found.dashboard.title if found is not None else ident


def _upload(contents: str) -> Any:
    """A dcc.Upload data: URL's JSON document; ValueError saying why it is not one."""
    _, _, data = contents.partition(",")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the file could not be read (not a base64 upload)") from None
    try:
        return loads(raw)
    except ValueError as exc:
        raise ValueError(f"not a JSON file: {exc}") from None


def _history(s: DashboardStore, ident: str, principal: Principal | None) -> tuple[str, Any]:
    """The title and the history modal's body: the versions the viewer may read (of their
    copy and of the shared definition, or of their own personal dashboard, or of the
    shared/provisioned one), a Restore button where they may save."""
    found = s.get(ident, principal)
    if found is None:
        return ident, html.P(f"No dashboard {ident!r} you may see.")
    title = found.dashboard.title
    may_personal, may_shared = authorize(principal, PERSONAL_SETTINGS), authorize(principal, MANAGE)
    if found.kind == PERSONAL and not found.personal_copy:
        scopes = [(PERSONAL, "Your dashboard", may_personal, None)]
    elif found.personal_copy:
        scopes = [(PERSONAL, "Your copy", may_personal, "What you see: your personal copy's saves."),
                  (SHARED, "Shared definition", may_shared,
                   "What everyone else sees (Reset to default brings it back for you).")]
    else:
        scopes = [(SHARED, "Shared definition", may_shared,
                   None if may_shared else "Restoring a shared version needs the permission manage:dashboards.")]
    sections = []
    for scope, label, can, note in scopes:
        try:
            versions = s.versions(ident, principal, scope)["versions"]
        except StoreError:
            continue
        sections.append({"id": ident, "scope": scope, "label": label, "versions": versions, "can_restore": can,
                         "note": note})
    return title, layout.history(sections)


def register(app: Dash) -> None:
    done_inputs = {f"dl-{a}-done.data": NOTICE for a in ACTIONS}

    @secure_callback(app, DASHBOARD_USER, Output("dl-rows", "children"), Output("dl-message", "children"),
                     Input("dl-search", "value"), *[Input(f"dl-{a}-done", "data") for a in ACTIONS],
                     inputs={"dl-search.value": Choice, **done_inputs}, twin="GET /api/dashboards")
    def list_rows(query: str | None, *notices: dict[str, Any] | None) -> tuple[Any, Any]:
        """The rows (search as you type; starred first), and the message of the action that
        changed them."""
        principal = current_principal()
        found = store().list(principal, (query or "").strip() or None)
        trigger = ctx.triggered_id
        note = dict(zip((f"dl-{a}-done" for a in ACTIONS), notices)).get(trigger) if isinstance(trigger, str) else None
        return (layout.rows(found, (query or "").strip(), authorize(principal, MANAGE)),
                layout.message(note) if note and note.get("text") else no_update)

    @secure_callback(app, DASHBOARD_USER, Output("dl-star-done", "data"),
                     Input({"type": "dl-star", "id": ALL}, "n_clicks"), State("dl-star-done", "data"),
                     prevent_initial_call=True, inputs={"dl-star.n_clicks": Count, "dl-star-done.data": NOTICE},
                     twin="PUT /api/dashboards/<dash_id>/star")
    def star(_clicks: list[Any], done: dict[str, Any] | None) -> dict[str, Any]:
        ident, _, _ = _clicked("dl-star")
        s, principal = store(), current_principal()
        try:
            s.star(ident, principal, ident not in s.starred(principal))
        except StoreError as exc:
            return _refused(done, exc, "Not starred")
        return _notice(done, None)

    @secure_callback(app, _delete_permission, Output("dl-delete-done", "data"),
                     Input({"type": "dl-delete", "id": ALL}, "submit_n_clicks"),
                     Input({"type": "dl-reset", "id": ALL}, "submit_n_clicks"), State("dl-delete-done", "data"),
                     prevent_initial_call=True,
                     inputs={"dl-delete.submit_n_clicks": Count, "dl-reset.submit_n_clicks": Count,
                             "dl-delete-done.data": NOTICE},
                     twin="DELETE /api/dashboards/<dash_id>")
    def delete(_deletes: list[Any], _resets: list[Any], done: dict[str, Any] | None) -> dict[str, Any]:
        """Delete a dashboard (as DELETE /api/dashboards/<id>), or Reset to default: drop
        one's personal copy, the provisioned or shared one shows again (?scope=personal)."""
        reset = isinstance(ctx.triggered_id, dict) and ctx.triggered_id.get("type") == "dl-reset"
        ident, _, _ = _clicked("dl-reset" if reset else "dl-delete")
        s, principal = store(), current_principal()
        title = _title(s, ident, principal)
        try:
            if reset:
                s.reset_personal(ident, principal)
            kind = "personal copy" if reset else s.delete(ident, principal)
        except StoreError as exc:
            return _refused(done, exc, "Nothing was reset" if reset else f"“{title}” was not deleted")
        audit("dashboard.deleted", dashboard=ident, scope=kind)
        return _notice(done, f"Your copy of “{title}” is gone: you see the default again." if reset
                       else f"Deleted “{title}” and its history.", "success")

    @secure_callback(app, DASHBOARD_USER, Output("dl-history", "is_open"), Output("dl-history-title", "children"),
                     Output("dl-history-body", "children"),
                     Input({"type": "dl-history-open", "id": ALL}, "n_clicks"), prevent_initial_call=True,
                     inputs={"dl-history-open.n_clicks": Count}, twin="GET /api/dashboards/<dash_id>/versions")
    def history(_clicks: list[Any]) -> tuple[Any, ...]:
        """The versions of a dashboard: n, when, who, what changed."""
        ident, _, _ = _clicked("dl-history-open")
        title, body = _history(store(), ident, current_principal())
        return True, f"History · {title}", body

    # The open history is drawn again by the restore itself: a second callback listening to
    # dl-restore-done would race the list's redraw (whose new History buttons fire the
    # history callback again, and Dash drops the earlier answer).
    @secure_callback(app, _restore_permission, Output("dl-restore-done", "data"),
                     Output("dl-history-body", "children", allow_duplicate=True),
                     Input({"type": "dl-restore", "id": ALL, "n": ALL, "scope": ALL}, "n_clicks"),
                     State("dl-restore-done", "data"), prevent_initial_call=True,
                     inputs={"dl-restore.n_clicks": Count, "dl-restore-done.data": NOTICE},
                     twin="POST /api/dashboards/<dash_id>/versions/<n>/restore")
    def restore(_clicks: list[Any], done: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
        """A version saved again as a new one (the store keeps who and what); the history
        shown again, the new version on top."""
        ident, n, scope = _clicked("dl-restore")
        version = _version(n, scope)
        if version is None:
            return _notice(done, f"No such version of {ident!r}.", "warning"), no_update
        s, principal = store(), current_principal()
        try:
            found = s.restore(ident, version[0], principal, version[1])
        except (StoreError, DefinitionError) as exc:
            return _refused(done, exc, f"Version {version[0]} was not restored"), no_update
        audit("dashboard.restored", dashboard=ident, version=version[0], scope=version[1])
        return (_notice(done, f"Restored version {version[0]} of “{found.dashboard.title}” (saved as a new version).",
                        "success"), _history(s, ident, principal)[1])

    @secure_callback(app, _create_permission, Output("dl-nav", "href"), Output("dl-create-done", "data"),
                     Input("dl-new", "n_clicks"), Input("dl-new-title", "n_submit"), Input("dl-import", "contents"),
                     State("dl-new-title", "value"), State("dl-import", "filename"), State("dl-create-done", "data"),
                     prevent_initial_call=True,
                     inputs={"dl-new.n_clicks": Count, "dl-new-title.n_submit": Count, "dl-import.contents": Upload,
                             "dl-new-title.value": Choice, "dl-import.filename": Choice, "dl-create-done.data": NOTICE},
                     twin="POST /api/dashboards")
    def create(_new: Any, _submit: Any, contents: str | None, title: str | None, filename: str | None,
               done: dict[str, Any] | None) -> tuple[Any, Any]:
        """New dashboard (a title: an empty personal dashboard) or Import (an exported
        definition: the caller's personal dashboard, a new id if taken); then open it."""
        s, principal = store(), current_principal()
        if ctx.triggered_id == "dl-import":
            if not contents:
                raise PreventUpdate
            origin = filename or "the uploaded file"
            try:
                doc = _upload(contents)
            except ValueError as exc:
                return no_update, _notice(done, f"{origin} was not imported: {exc}", "danger")
            if isinstance(doc, dict):       # whose it was and who saw it do not travel (as the API's import)
                doc = {k: v for k, v in doc.items() if k not in ("owner", "visibility")}
            try:
                found = s.create(principal, doc, origin=origin, summary="imported")
            except (StoreError, DefinitionError) as exc:
                return no_update, _refused(done, exc, f"{origin} was not imported")
            audit("dashboard.imported", dashboard=found.dashboard.id, widgets=len(found.dashboard.widgets))
        else:
            if not (title or "").strip():
                return no_update, _notice(done, "Give the new dashboard a title first.", "warning")
            try:
                found = s.create(principal, {"title": title.strip(), "widgets": []}, origin="New dashboard")
            except (StoreError, DefinitionError) as exc:
                return no_update, _refused(done, exc, "No dashboard was created")
            audit("dashboard.created", dashboard=found.dashboard.id, scope="personal", widgets=0)
        return f"/dashboards/{found.dashboard.id}", _notice(done, f"Created “{found.dashboard.title}”.", "success")
