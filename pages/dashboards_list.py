"""The dashboard list (`/dashboards`): every dashboard the viewer may see, searchable by
title and tag as they type, starred ones first; per row its kind, owner, last change,
widget count and tags, and Export / History / Reset to default / Delete. New dashboard and
Import (a JSON definition exported by someone else) make personal dashboards.

Only layout here, from plain data (the store's summaries and versions, and what the viewer
may do); callbacks/dashboards_list.py fills it and runs the actions.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
from dash import dcc, html

from auth.principal import Principal, authorize
from dashboards.store import PERSONAL_SETTINGS

KIND_COLOURS = {"provisioned": "secondary", "shared": "info", "personal": "success"}
MAX_IMPORT_BYTES = 1024 * 1024          # a definition file (the API's body limit)


def query_of(search: str | None) -> str:
    """The search box's first value from the URL (`/dashboards?q=qa`)."""
    return (parse_qs((search or "").lstrip("?")).get("q") or [""])[0][:200]


def page(search: str | None, principal: Principal | None) -> html.Div:
    """The frame: search, New dashboard and Import (for those who may keep personal
    dashboards), the message line, the rows (filled by a callback) and the history modal."""
    can_create = authorize(principal, PERSONAL_SETTINGS)
    create = html.Div([
        dbc.InputGroup([
            dbc.Input(id="dl-new-title", placeholder="New dashboard title", maxLength=200, debounce=False),
            dbc.Button("New dashboard", id="dl-new", color="primary"),
        ], size="sm", style={"maxWidth": "24rem"}),
        dcc.Upload(id="dl-import", children=dbc.Button("Import JSON…", id="dl-import-button", size="sm",
                                                         color="secondary", outline=True),
                   accept=".json,application/json", multiple=False, max_size=MAX_IMPORT_BYTES),
    ], className="d-flex flex-wrap gap-2 align-items-center" + ("" if can_create else " d-none"))
    return html.Div([
        html.Div([
            html.H1("Dashboards", className="h4 mb-0 me-auto"),
            create,
        ], className="d-flex align-items-center flex-wrap gap-2 mb-3"),
        dcc.Input(id="dl-search", type="search", value=query_of(search), debounce=False, autoComplete="off",
                  placeholder="Search titles and tags", className="form-control form-control-sm mb-2",
                  style={"maxWidth": "24rem"}),
        html.Div(id="dl-message", role="status"),
        html.Div(id="dl-rows"),
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle(id="dl-history-title"), close_button=True),
            dbc.ModalBody(id="dl-history-body"),
        ], id="dl-history", size="xl", is_open=False, scrollable=True),
        # What each action did ({"n", "text", "level", "lines"}); the rows and the message
        # line are drawn again when one changes.
        *[dcc.Store(id=f"dl-{name}-done") for name in ("star", "delete", "restore", "create")],
        dcc.Location(id="dl-nav", refresh="callback-nav"),      # opens a new dashboard without a reload
    ], id="dashboard-list")


def _when(iso: str | None) -> str:
    """'2025-08-17T06:23:14.120Z' -> '2025-08-17 06:23 UTC'."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso and len(iso) >= 16 else (iso or "")


def _kind(row: dict[str, Any]) -> list[Any]:
    badges = [dbc.Badge(row["kind"], color=KIND_COLOURS.get(row["kind"], "secondary"), className="me-1 dl-kind")]
    if row.get("personal_copy"):
        badges.append(dbc.Badge("your copy", color="warning", text_color="dark", className="dl-copy",
                                title="You keep a personal copy of this dashboard; Reset to default drops it"))
    return badges


def _owner(row: dict[str, Any]) -> str:
    return "provisioned file" if row["kind"] == "provisioned" and row.get("owner") == "system" else row.get("owner", "")


def _last_change(row: dict[str, Any]) -> str:
    if not row.get("updated_at"):
        return "as provisioned"
    return f"{_when(row['updated_at'])} by {row.get('updated_by') or 'unknown'}"


def may_delete(row: dict[str, Any], manage: bool) -> bool:
    """Own personal dashboards; shared ones with manage:dashboards; never provisioned ones
    (a personal copy of a shared one is dropped with Reset to default, not Delete)."""
    if row["kind"] == "personal":
        return True
    return row["kind"] == "shared" and manage and not row.get("personal_copy")


def _confirm(label: str, ident: str, kind: str, message: str, colour: str) -> dcc.ConfirmDialogProvider:
    return dcc.ConfirmDialogProvider(
        dbc.Button(label, size="sm", color=colour, outline=True, className="dl-" + kind),
        id={"type": f"dl-{kind}", "id": ident}, message=message)


def _actions(row: dict[str, Any], manage: bool) -> html.Div:
    ident, title = row["id"], row["title"]
    items: list[Any] = [
        html.A("Export", href=f"/api/dashboards/{ident}/export", download=f"{ident}.dashboard.json",
               className="btn btn-sm btn-outline-secondary dl-export", title="The definition as a JSON file"),
        dbc.Button("History", id={"type": "dl-history-open", "id": ident}, size="sm", color="secondary",
                   outline=True, className="dl-history-open"),
    ]
    if row.get("personal_copy"):
        items.append(_confirm("Reset to default", ident, "reset",
                              f"Drop your personal copy of “{title}” and see the shared one again?", "warning"))
    if may_delete(row, manage):
        items.append(_confirm("Delete", ident, "delete", f"Delete “{title}” and its history?", "danger"))
    return html.Div(items, className="d-flex flex-wrap gap-1")


def rows(summaries: list[dict[str, Any]], query: str = "", manage: bool = False) -> Any:
    """The table of dashboards (the store's summaries, starred first as it orders them)."""
    if not summaries:
        text = f"No dashboard matches “{query}”." if query else "No dashboards you may open yet."
        return html.P(text, className="text-body-secondary py-2", id="dl-empty")
    head = html.Thead(html.Tr([html.Th("", style={"width": "2.5rem"}), html.Th("Title"), html.Th("Kind"),
                               html.Th("Owner"), html.Th("Last change"), html.Th("Widgets", className="text-end"),
                               html.Th("Tags"), html.Th("")]))
    body = []
    for row in summaries:
        ident, starred = row["id"], bool(row.get("starred"))
        body.append(html.Tr([
            html.Td(html.Button("★" if starred else "☆", id={"type": "dl-star", "id": ident},
                                className="btn btn-link btn-sm p-0 dl-star" + (" text-warning" if starred else ""),
                                title="Unstar" if starred else "Star (starred dashboards come first)",
                                **{"aria-pressed": "true" if starred else "false"})),
            html.Td([dcc.Link(row["title"], href=f"/dashboards/{ident}", className="dl-title fw-semibold"),
                     html.Div(row["description"], className="small text-body-secondary")
                     if row.get("description") else None]),
            html.Td(_kind(row)),
            html.Td(_owner(row), className="dl-owner"),
            html.Td(_last_change(row), className="dl-changed small"),
            html.Td(str(row.get("widgets", 0)), className="dl-widgets text-end"),
            html.Td([dbc.Badge(t, color="light", text_color="dark", className="me-1 dl-tag")
                     for t in row.get("tags") or []]),
            html.Td(_actions(row, manage)),
        ], className="dl-row", **{"data-dashboard": ident, "data-starred": "1" if starred else "0"}))
    return dbc.Table([head, html.Tbody(body)], hover=True, responsive=True, size="sm", className="align-middle",
                     id="dl-table")


def message(notice: dict[str, Any] | None) -> Any:
    """An action's outcome: a line, and the definition errors one per line (widget, field)."""
    if not notice or not notice.get("text"):
        return None
    lines = notice.get("lines") or []
    return dbc.Alert([html.Div(notice["text"]),
                      html.Ul([html.Li(line) for line in lines], className="mb-0 small dl-error-lines")
                      if lines else None],
                     color=notice.get("level") or "info", dismissable=True, className="py-2", id="dl-alert")


def history(sections: list[dict[str, Any]]) -> Any:
    """Version tables: each section {"scope", "label", "versions" (newest first),
    "can_restore", "note"}; a Restore button per version but the newest (it is in use)."""
    out: list[Any] = []
    for sec in sections:
        out.append(html.H2(sec["label"], className="h6 mt-2"))
        if sec.get("note"):
            out.append(html.P(sec["note"], className="small text-body-secondary"))
        versions = sec.get("versions") or []
        if not versions:
            out.append(html.P("No saved versions yet: the provisioned file's definition is in use.",
                              className="small text-body-secondary"))
            continue
        trs = []
        for i, v in enumerate(versions):
            restore = html.Span("current", className="small text-body-secondary") if i == 0 else (
                dbc.Button("Restore", id={"type": "dl-restore", "id": sec["id"], "n": v["n"], "scope": sec["scope"]},
                           size="sm", color="primary", outline=True, className="dl-restore")
                if sec.get("can_restore") else None)
            trs.append(html.Tr([html.Td(str(v["n"]), className="text-end"), html.Td(_when(v.get("at"))),
                                html.Td(v.get("by") or ""), html.Td(v.get("summary") or ""),
                                html.Td(str(v.get("widgets", "")), className="text-end"), html.Td(restore)],
                               className="dl-version", **{"data-version": str(v["n"])}))
        out.append(dbc.Table([html.Thead(html.Tr([html.Th("#", className="text-end"), html.Th("When"),
                                                  html.Th("Who"), html.Th("What changed"),
                                                  html.Th("Widgets", className="text-end"), html.Th("")])),
                              html.Tbody(trs)], size="sm", hover=True, responsive=True,
                             className=f"dl-versions dl-versions-{sec['scope']}"))
    return out
