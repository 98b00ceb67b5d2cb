"""The dashboard edit mode: thin adapters between the page's stores and components.editor.

The page holds `dash-id`, `dash-def` (the definition shown / being edited), `dash-edit`
(edit mode) and the grid in `dash-grid-wrap`; components.editor.toolbar adds the bar, the
library and configure dialogs, `dash-undo` (earlier definitions) and `dash-edit-base` (the
definition when editing began, for Cancel). Every edit validates the new definition with
dashboards.schema.validate and shows its error lines instead of keeping a bad one; a widget
only reads sources its user may see (dashboards.sources.allowed), and saves go through the
dashboard store like PUT /api/dashboards/{id} (audited the same way).
"""
from __future__ import annotations

import logging
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app

from auth.guard import secure_callback, secure_clientside
from auth.principal import Principal, audit, authorize, current_principal
from callbacks.inputs import Choice, Choices, Count, Flag, GridLayouts, Number, Theme
from components import editor
from components.grid import grid, layout_to_positions
from dashboards import sources
from dashboards.schema import Dashboard, DefinitionError, Widget, dump, validate
from dashboards.store import MANAGE, PERSONAL_SETTINGS, StoreError

log = logging.getLogger("qms.edit")

Definition = Dashboard | None
History = list[Dashboard] | None
DUP = {"allow_duplicate": True}
CFG_FIELDS = ("title", "sources", "timeframe", "warning", "critical", "direction", "refresh", "flags", "chart",
              "colors", "theme")
CFG_TYPES = {"dash-cfg-title.value": Choice, "dash-cfg-sources.value": Choices, "dash-cfg-timeframe.value": Choice,
             "dash-cfg-warning.value": Number, "dash-cfg-critical.value": Number, "dash-cfg-direction.value": Choice,
             "dash-cfg-refresh.value": Choice, "dash-cfg-flags.value": Choices, "dash-cfg-chart.value": Choice,
             "dash-cfg-colors.value": Choice, "dash-cfg-theme.value": Choice}


def edit_permission(_body: dict[str, Any] | None = None) -> str:
    """Editing needs update:personal_settings (a personal copy) or manage:dashboards (a
    shared save): whichever the caller holds, else the first (refused)."""
    return MANAGE if not authorize(current_principal(), PERSONAL_SETTINGS) and authorize(current_principal(), MANAGE) \
        else PERSONAL_SETTINGS


def _save_permission(body: dict[str, Any]) -> str:
    """Save as shared: manage:dashboards; reset: the personal copy's permission, or for a
    manager without it the shared definition's; save: update:personal_settings."""
    changed = " ".join(body.get("changedPropIds") or [])
    if "dash-edit-save-shared" in changed:
        return MANAGE
    if "dash-edit-reset" in changed:
        return edit_permission()
    return PERSONAL_SETTINGS


def _store() -> Any:
    return current_app.extensions["qms"].dashboards


def _sctx(principal: Principal | None, doc: dict[str, Any] | None = None) -> Any:
    svc = current_app.extensions["qms"]
    return sources.SourceContext.for_request(svc, principal, (doc or {}).get("default_timeframe") or "24h", {})


def _denied(widget: Widget, principal: Principal | None) -> str | None:
    return next((sources.permission(ds) for ds in widget.data_sources if not sources.allowed(ds, principal)), None)


def draw_grid(doc: dict[str, Any], principal: Principal | None, editable: bool) -> Any:
    """The grid of a definition for this viewer, each widget in the page's own shell (a
    forbidden widget says "not permitted" and has no body)."""
    from pages.dashboard import grid_with_bodies
    defn = Dashboard.model_validate(doc)
    csv = ({w.id: f"/api/dashboards/{defn.id}/widgets/{w.id}/data?format=csv" for w in defn.widgets}
           if authorize(principal, "export:reports") else {})
    denied = {w.id: d for w in defn.widgets if (d := _denied(w, principal))}
    return grid_with_bodies(defn, denied, csv, None, editable=editable)


def checked(doc: dict[str, Any], principal: Principal | None) -> tuple[dict[str, Any] | None, list[str]]:
    """(the definition as the schema dumps it, []) or (None, its error lines) — also when it
    reads a source the user may not see."""
    try:
        defn = validate(doc, "the edited dashboard")
    except DefinitionError as exc:
        return None, str(exc).splitlines()
    refused = [f"widget {w.id!r}: {editor.source_label(ds)}: needs the permission {sources.permission(ds)}"
               for w in defn.widgets for ds in w.data_sources if not sources.allowed(ds, principal)]
    return dump(defn), refused


def _commit(old: dict[str, Any], new: dict[str, Any], stack: list[Any] | None, principal: Principal | None
            ) -> tuple[Any, Any, Any, Any]:
    """(dash-def, dash-undo, the redrawn grid, the error lines) after an edit: kept only when
    valid; laid out as the grid would (compacted) so the redraw reports no move of its own."""
    doc, errors = checked(editor.compact(new), principal)
    if doc is None:
        return no_update, no_update, no_update, _errors(errors)
    return doc, editor.push(stack, old), draw_grid(doc, principal, True), ""


def _errors(lines: list[str]) -> Any:
    return html.Ul([html.Li(line) for line in lines], className="mb-0") if lines else ""


def _clicked() -> dict[str, Any]:
    """The pattern id of the clicked button (PreventUpdate for a redraw's n_clicks=0)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(t.get("value") for t in ctx.triggered or []):
        raise PreventUpdate
    return trigger


def preview(widget: Widget, principal: Principal | None, doc: dict[str, Any] | None, mode: str) -> Any:
    """A widget drawn with real data (what the viewer may see of it), for the library and
    the configure dialog; a failing source costs the preview, not the dialog."""
    from components.render import not_permitted, render
    missing = _denied(widget, principal)
    if missing:
        return not_permitted(widget, missing)
    try:
        frames = sources.fetch_all(widget, _sctx(principal, doc))
        return render(widget, frames, mode=mode, context={"timeframe": (doc or {}).get("default_timeframe", "24h"),
                                                          "scope_query": "", "dashboard": (doc or {}).get("id")})
    except Exception:                           # noqa: BLE001 - logged; one preview, not the page
        log.exception("preview of %s failed", widget.type)
        return html.Div("This preview could not be drawn (logged).", className="small text-danger")


def register(app: Dash) -> None:
    # Edit mode on the page, in the browser: the grid's drag/resize and the bar follow dash-edit.
    # (set_props: the grid is the page's, and only a draggable grid has these props.)
    secure_clientside(app, lambda body: None,
                      "function(editing) { var on = !!editing;"
                      " if (document.querySelector('#dash-grid-wrap .react-grid-layout') && window.dash_clientside"
                      "     && window.dash_clientside.set_props) {"
                      "   window.dash_clientside.set_props('dash-grid', {isDraggable: on, isResizable: on}); }"
                      " return [on ? 'dash-edit-bar' : 'dash-edit-bar d-none', on]; }",
                      Output("dash-edit-bar", "className"), Output("dash-edit-toggle", "disabled"),
                      # A page starts out of the edit mode as drawn (components/editor.toolbar):
                      # no call on load, one renderer cycle fewer.
                      Input("dash-edit", "data"), prevent_initial_call=True)
    secure_clientside(app, lambda body: None,
                      "function(stack) { var n = (stack || []).length; return [n ? 'Undo (' + n + ')' : 'Undo', !n]; }",
                      Output("dash-edit-undo", "children"), Output("dash-edit-undo", "disabled"),
                      Input("dash-undo", "data"), prevent_initial_call=True)     # drawn "Undo", disabled
    secure_clientside(app, lambda body: None, "function(n) { return false; }",
                      Output("dash-cfg-modal", "is_open", **DUP), Input("dash-cfg-cancel", "n_clicks"),
                      prevent_initial_call=True)

    @secure_callback(app, edit_permission,
                     Output("dash-edit", "data", **DUP), Output("dash-edit-base", "data"),
                     Output("dash-undo", "data", **DUP), Output("dash-def", "data", **DUP),
                     Output("dash-grid-wrap", "children", **DUP), Output("dash-edit-errors", "children", **DUP),
                     Output("dash-edit-status", "children", **DUP),
                     Input("dash-edit-toggle", "n_clicks"), Input("dash-edit-cancel", "n_clicks"),
                     State("dash-def", "data"), State("dash-edit-base", "data"), prevent_initial_call=True,
                     inputs={"dash-edit-toggle.n_clicks": Count, "dash-edit-cancel.n_clicks": Count,
                             "dash-def.data": Definition, "dash-edit-base.data": Definition})
    def start_or_cancel(_start: int | None, _cancel: int | None, doc: dict[str, Any] | None,
                        base: dict[str, Any] | None) -> tuple[Any, ...]:
        """Edit: remember the definition (for Cancel), start an empty undo stack. Cancel: the
        definition as it was, out of edit mode."""
        if not doc:
            raise PreventUpdate
        if ctx.triggered_id == "dash-edit-toggle":
            # The grid again, now with each widget's edit strip (a view-mode grid has none).
            return (True, doc, [], no_update, draw_grid(doc, current_principal(), True), "",
                    "Editing: drag by ⠿, resize by the corner; Save keeps it.")
        back = base or doc
        return False, None, [], back, draw_grid(back, current_principal(), False), "", "Changes discarded."

    # The grid reports its layout when it mounts and on every drag: only a report in the edit
    # mode goes on to the server (a page load costs no request for it).
    secure_clientside(app, lambda body: None,
                      "function(layouts, editing) { return editing && layouts ? layouts"
                      " : window.dash_clientside.no_update; }",
                      Output("dash-grid-moved", "data"), Input("dash-grid", "layouts"), State("dash-edit", "data"),
                      prevent_initial_call=True)

    @secure_callback(app, edit_permission,
                     Output("dash-def", "data", **DUP), Output("dash-undo", "data", **DUP),
                     Input("dash-grid-moved", "data"), State("dash-edit", "data"), State("dash-def", "data"),
                     State("dash-undo", "data"), prevent_initial_call=True,
                     inputs={"dash-grid-moved.data": GridLayouts, "dash-edit.data": Flag, "dash-def.data": Definition,
                             "dash-undo.data": History})
    def moved(layouts: dict[str, Any] | None, editing: bool | None, doc: dict[str, Any] | None,
              stack: list[Any] | None) -> tuple[Any, Any]:
        """A drag or resize on the desktop grid: the new positions into the definition (one
        undo step); the grid's own compaction of what it was given is not an edit."""
        if not editing or not doc or not layouts or "lg" not in layouts:
            raise PreventUpdate
        positions = layout_to_positions(layouts["lg"])
        if not positions or editor.same_positions(doc, positions):
            raise PreventUpdate
        new = editor.move(doc, positions)
        if editor.same_positions(editor.compact(doc), positions):
            return new, no_update
        return new, editor.push(stack, doc)

    @secure_callback(app, edit_permission,
                     Output("dash-def", "data", **DUP), Output("dash-undo", "data", **DUP),
                     Output("dash-grid-wrap", "children", **DUP), Output("dash-edit-errors", "children", **DUP),
                     Input({"type": "w-edit", "w": ALL, "op": "duplicate"}, "n_clicks"),
                     Input({"type": "w-edit", "w": ALL, "op": "remove"}, "n_clicks"),
                     State("dash-def", "data"), State("dash-undo", "data"), prevent_initial_call=True,
                     inputs={"w-edit.n_clicks": Count, "dash-def.data": Definition, "dash-undo.data": History})
    def duplicate_or_remove(_dup: list[Any], _rm: list[Any], doc: dict[str, Any] | None,
                            stack: list[Any] | None) -> tuple[Any, ...]:
        trigger = _clicked()
        if not doc:
            raise PreventUpdate
        wid = str(trigger.get("w"))
        new = editor.duplicate(doc, wid) if trigger.get("op") == "duplicate" else editor.remove(doc, wid)
        return _commit(doc, new, stack, current_principal())

    @secure_callback(app, edit_permission,
                     Output("dash-def", "data", **DUP), Output("dash-undo", "data", **DUP),
                     Output("dash-grid-wrap", "children", **DUP), Output("dash-edit-errors", "children", **DUP),
                     Input("dash-edit-undo", "n_clicks"), State("dash-undo", "data"), prevent_initial_call=True,
                     inputs={"dash-edit-undo.n_clicks": Count, "dash-undo.data": History})
    def undo(clicks: int | None, stack: list[Any] | None) -> tuple[Any, ...]:
        last, rest = editor.pop(stack)
        if not clicks or last is None:
            raise PreventUpdate
        return last, rest, draw_grid(last, current_principal(), True), ""

    @secure_callback(app, edit_permission,
                     Output("dash-lib-modal", "is_open"), Output("dash-lib-body", "children"),
                     Input("dash-edit-add", "n_clicks"), State("dash-def", "data"), State("theme", "data"),
                     prevent_initial_call=True,
                     inputs={"dash-edit-add.n_clicks": Count, "dash-def.data": Definition, "theme.data": Theme})
    def open_library(clicks: int | None, doc: dict[str, Any] | None, mode: str | None) -> tuple[bool, Any]:
        """Every widget type, by category, each drawn with real data from the first default
        source its user may see (a type with none the user may see cannot be added)."""
        if not clicks:
            raise PreventUpdate
        principal = current_principal()
        groups = []
        for cat, items in editor.library(principal, sources.allowed):
            row = []
            for wtype, srcs in items:
                if srcs is None:
                    row.append((wtype, html.Div("No data source you may see fits this widget.",
                                                className="small text-body-secondary"), False))
                    continue
                sample = Widget.model_validate(editor.new_widget({"widgets": []}, wtype, srcs))
                row.append((wtype, preview(sample, principal, doc, mode or "light"), True))
            groups.append((cat, row))
        return True, editor.library_body(groups)

    @secure_callback(app, edit_permission,
                     Output("dash-def", "data", **DUP), Output("dash-undo", "data", **DUP),
                     Output("dash-grid-wrap", "children", **DUP), Output("dash-edit-errors", "children", **DUP),
                     Output("dash-lib-modal", "is_open", **DUP),
                     Input({"type": "lib-add", "t": ALL}, "n_clicks"), State("dash-def", "data"),
                     State("dash-undo", "data"), prevent_initial_call=True,
                     inputs={"lib-add.n_clicks": Count, "dash-def.data": Definition, "dash-undo.data": History})
    def add_widget(_clicks: list[Any], doc: dict[str, Any] | None, stack: list[Any] | None) -> tuple[Any, ...]:
        wtype = str(_clicked().get("t"))
        principal = current_principal()
        srcs = editor.default_sources(wtype, principal, sources.allowed)
        if not doc or srcs is None:
            raise PreventUpdate
        return (*_commit(doc, editor.add(doc, editor.new_widget(doc, wtype, srcs)), stack, principal), False)

    @secure_callback(app, edit_permission,
                     Output("dash-cfg-modal", "is_open"), Output("dash-cfg-widget", "data"),
                     Output("dash-cfg-sources", "options"), Output("dash-cfg-errors", "children"),
                     *[Output(f"dash-cfg-{f}", "value") for f in CFG_FIELDS],
                     Input({"type": "w-edit", "w": ALL, "op": "configure"}, "n_clicks"), State("dash-def", "data"),
                     prevent_initial_call=True, inputs={"w-edit.n_clicks": Count, "dash-def.data": Definition})
    def open_configure(_clicks: list[Any], doc: dict[str, Any] | None) -> tuple[Any, ...]:
        wid = str(_clicked().get("w"))
        widget = Dashboard.model_validate(doc).widget(wid) if doc else None
        if widget is None:
            raise PreventUpdate
        form = editor.form_of(widget)
        form["colors"] = form.pop("color_scheme")
        options = editor.source_options(current_principal(), sources.allowed)
        return (True, wid, options, "", *[form.get(f) for f in CFG_FIELDS])

    cfg_states = [State(f"dash-cfg-{f}", "value") for f in CFG_FIELDS]

    def _form(values: tuple[Any, ...]) -> dict[str, Any]:
        form = dict(zip(CFG_FIELDS, values))
        form["color_scheme"] = form.pop("colors")
        return form

    def _refused(form: dict[str, Any], principal: Principal | None) -> list[str]:
        """Sources in the form the user may not read, or that are not sources at all."""
        out = []
        for key in form.get("sources") or []:
            try:
                ds = editor.source_of(key)
            except ValueError as exc:
                out.append(str(exc))
                continue
            if not sources.allowed(ds, principal):
                out.append(f"{editor.source_label(ds)}: needs the permission {sources.permission(ds)}")
        return out

    @secure_callback(app, edit_permission,
                     Output("dash-def", "data", **DUP), Output("dash-undo", "data", **DUP),
                     Output("dash-grid-wrap", "children", **DUP), Output("dash-cfg-errors", "children", **DUP),
                     Output("dash-cfg-modal", "is_open", **DUP),
                     Input("dash-cfg-apply", "n_clicks"), State("dash-cfg-widget", "data"), *cfg_states,
                     State("dash-def", "data"), State("dash-undo", "data"), prevent_initial_call=True,
                     inputs={"dash-cfg-apply.n_clicks": Count, "dash-cfg-widget.data": Choice, **CFG_TYPES,
                             "dash-def.data": Definition, "dash-undo.data": History})
    def apply_configure(clicks: int | None, wid: str | None, *rest: Any) -> tuple[Any, ...]:
        """The dialog's values into the widget, if the definition stays valid (else its error
        lines, the dialog still open)."""
        *values, doc, stack = rest
        if not clicks or not wid or not doc:
            raise PreventUpdate
        principal = current_principal()
        form = _form(tuple(values))
        refused = _refused(form, principal)
        if refused:
            return no_update, no_update, no_update, _errors(refused), True
        try:
            new = editor.configure(doc, wid, form)
        except ValueError as exc:
            return no_update, no_update, no_update, _errors([str(exc)]), True
        doc2, stack2, drawn, errors = _commit(doc, new, stack, principal)
        return doc2, stack2, drawn, errors, bool(errors)

    @secure_callback(app, edit_permission,
                     Output("dash-cfg-preview", "children"),
                     *[Input(f"dash-cfg-{f}", "value") for f in CFG_FIELDS],
                     State("dash-cfg-widget", "data"), State("dash-def", "data"), State("theme", "data"),
                     prevent_initial_call=True,
                     inputs={**CFG_TYPES, "dash-cfg-widget.data": Choice, "dash-def.data": Definition,
                             "theme.data": Theme})
    def configure_preview(*args: Any) -> Any:
        """The widget as the dialog would make it, drawn with real data."""
        *values, wid, doc, mode = args
        if not wid or not doc:
            raise PreventUpdate
        principal = current_principal()
        form = _form(tuple(values))
        refused = _refused(form, principal)
        if refused:
            return _errors(refused)
        try:
            new = editor.configure(doc, wid, form)
            widget = validate(new, "the configured widget").widget(wid)
        except (ValueError, DefinitionError) as exc:
            return html.Div(str(exc).splitlines()[0][:300], className="small text-danger")
        return preview(widget, principal, doc, mode or "light") if widget else no_update

    @secure_callback(app, _save_permission,
                     Output("dash-edit-status", "children", **DUP), Output("dash-edit-errors", "children", **DUP),
                     Output("dash-edit", "data", **DUP), Output("dash-def", "data", **DUP),
                     Output("dash-undo", "data", **DUP), Output("dash-grid-wrap", "children", **DUP),
                     Input("dash-edit-save", "n_clicks"), Input("dash-edit-save-shared", "n_clicks"),
                     Input("dash-edit-reset", "n_clicks"), State("dash-id", "data"), State("dash-def", "data"),
                     prevent_initial_call=True,
                     inputs={"dash-edit-save.n_clicks": Count, "dash-edit-save-shared.n_clicks": Count,
                             "dash-edit-reset.n_clicks": Count, "dash-id.data": Choice, "dash-def.data": Definition},
                     twin="PUT /api/dashboards/<dash_id>")
    def save(_s: int | None, _sh: int | None, _r: int | None, dash_id: str | None,
             doc: dict[str, Any] | None) -> tuple[Any, ...]:
        """Save (a personal copy), save as shared (manage:dashboards), or reset to the default
        (drop the personal copy; a manager without one: the shared definition back to its
        file) — through the store, audited as the REST API audits them."""
        trigger = ctx.triggered_id
        if not dash_id or not doc or not any(t.get("value") for t in ctx.triggered or []):
            raise PreventUpdate
        principal = current_principal()
        store = _store()
        try:
            if trigger == "dash-edit-reset":
                if authorize(principal, PERSONAL_SETTINGS):
                    store.reset_personal(dash_id, principal)
                    audit("dashboard.deleted", dashboard=dash_id, scope="personal copy")
                    said = "Reset to the default: your personal copy is gone."
                else:
                    store.reset_shared(dash_id, principal)
                    audit("dashboard.restored", dashboard=dash_id, scope="shared", to="provisioned file")
                    said = "Reset to the default: the shared definition is its file's again."
                found = store.get(dash_id, principal)
                if found is None:
                    raise PreventUpdate
                back = dump(found.dashboard)
                return said, "", False, back, [], draw_grid(back, principal, False)
            clean, errors = checked(doc, principal)
            if clean is None or errors:
                return "Not saved.", _errors(errors), no_update, no_update, no_update, no_update
            origin = f"the editor (dashboard {dash_id!r})"
            if trigger == "dash-edit-save-shared":
                found = store.save_shared(dash_id, principal, clean, origin)
                audit("dashboard.shared_saved", dashboard=dash_id, widgets=len(found.dashboard.widgets))
                said = "Saved as the shared dashboard."
            else:
                found = store.save_personal(dash_id, principal, clean, origin)
                audit("dashboard.saved", dashboard=dash_id, scope="personal", widgets=len(found.dashboard.widgets))
                said = "Saved as your personal copy."
        except DefinitionError as exc:
            return "Not saved.", _errors(str(exc).splitlines()), no_update, no_update, no_update, no_update
        except StoreError as exc:
            return f"Not saved: {exc}", "", no_update, no_update, no_update, no_update
        return said, "", False, dump(found.dashboard), [], no_update


__all__ = ["register", "draw_grid", "checked", "preview", "edit_permission"]
