"""A role dashboard page: its KPIs, refreshing, with a timeframe selector."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.grid import grid

TIMEFRAMES = ["1h", "4h", "24h", "7d", "30d"]
TITLES = {"executive": "Executive overview", "operational": "Operations", "qa": "Quality assurance",
          "developer": "My reviews"}


CONTROLS = ("scope", "gate", "agent")


def filters(controls: list[str] | tuple[str, ...], view: dict[str, str], names: dict[str, list[str]]) -> html.Div:
    """Repository/team (one scope), gate and agent pickers. All three are always in the page
    (the refresh callback reads them); the ones this dashboard does not offer are hidden."""
    scope_options = ([{"label": f"Repository · {r}", "value": f"repository={r}"} for r in names.get("repositories", [])]
                     + [{"label": f"Team · {t}", "value": f"team={t}"} for t in names.get("teams", [])])
    scope = next((f"{d}={view[d]}" for d in ("repository", "team") if view.get(d)), None)

    def picker(key: str, id: str, options: list[Any], value: Any, placeholder: str) -> html.Div:
        return html.Div(dcc.Dropdown(id=id, options=options, value=value, placeholder=placeholder, clearable=True,
                                     className="filter-dropdown"),
                        className="filter" + ("" if key in controls else " d-none"), style={"minWidth": "14rem"})
    return html.Div([
        picker("scope", "dash-scope", scope_options, scope, "All repositories and teams"),
        picker("gate", "dash-gate", names.get("gates", []), view.get("gate"), "All gates"),
        picker("agent", "dash-agent", names.get("agents", []), view.get("agent"), "All agents"),
    ], className="d-flex flex-wrap gap-2 mb-2" + ("" if controls else " d-none"), id="dash-filters")


def refresh_every_ms(widget: Any, live_every_ms: int | None) -> int | None:
    """How often a widget is redrawn on its own: its `refresh_interval` in seconds; "live":
    when the live channel brings new data, or every `live_every_ms` on a page with no live
    channel; "off": on view changes only (None)."""
    interval = widget.refresh_interval
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
        return interval * 1000
    return live_every_ms if interval == "live" and live_every_ms else None


def widget_clock(widgets: Any, denied: dict[str, str], live_every_ms: int | None) -> list[Any]:
    """ONE timer for the page's own refreshes instead of one per widget (each a component the
    page mounts and a timer it runs): it ticks at the largest step that divides every
    widget's period (`w-every`), and a step in the browser (callbacks/dashboard.py DUE_JS)
    names the widgets whose period has come round."""
    every = {w.id: ms for w in widgets if not denied.get(w.id) and (ms := refresh_every_ms(w, live_every_ms))}
    tick = math.gcd(*every.values()) if every else 3_600_000
    return [dcc.Interval(id="w-clock", interval=tick, disabled=not every), dcc.Store(id="w-every", data=every)]


def widget_shell(widget: Any, denied: str | None, *, csv_href: str | None = None, drawn: Any = None) -> html.Div:
    """One widget on the grid: a header (title, CSV of its rows) and its body — `drawn` when
    the page comes with it, else "loading…" until the refresh callback fills it. A widget
    whose data the viewer may not see gets a static body saying so: no refresh, no
    callback, no request for its data."""
    wid = widget.id
    tools: list[Any] = []
    if csv_href and not denied:
        tools.append(html.A("CSV", href=csv_href, className="small ms-2 widget-csv",
                            title="The rows of this widget as CSV"))
    # A KPI card is its own frame: its title, value and change need no second header.
    bare = widget.type == "kpi_card" and not denied
    header = None if bare else html.Div([html.Span(widget.title, className="me-auto widget-title text-truncate",
                                                   title=widget.description or widget.title),
                                         *tools], className="card-header small fw-semibold d-flex widget-header")
    # One element per role: the shell is the card, the body its scrolling content (each level
    # less is a component fewer per widget for the page to mount).
    inner = "" if bare else " card-body p-2 widget-content"
    if denied:
        body: Any = html.Div([html.Div("Not permitted", className="fw-semibold"),
                              html.Div(["Your role does not include ", html.Code(denied), "."],
                                       className="small text-body-secondary")],
                             id={"type": "w-denied", "w": wid}, className="widget-denied p-2" + inner)
    else:
        body = html.Div(drawn if drawn is not None else html.Div("loading…", className="small text-body-secondary p-2"),
                        id={"type": "w-body", "w": wid}, className="widget-body" + inner)
    frame = ("widget widget-bare" if bare else "card widget" + (" widget-forbidden" if denied else ""))
    return html.Div([body] if bare else [header, body], id={"type": "w-shell", "w": wid},
                    className="widget-cell " + frame, **{"data-widget": wid, "data-type": widget.type})


def board(defn: Any, *, denied: dict[str, str], timeframe: str, view: dict[str, str], names: dict[str, list[str]],
          can_export: bool, csv_hrefs: dict[str, str], channels: list[str], kind: str = "provisioned",
          notices: list[Any] | None = None, tools: list[Any] | None = None, editor: Any = None,
          live_every_ms: int | None = None, drawn: Drawn | None = None,
          redraw_ms: dict[str, int] | None = None) -> html.Div:
    """Any dashboard definition as a page: header, filters, and its widgets on the 12-column
    grid at their positions (a CSS grid; one column on phones). With `drawn`, the page
    arrives whole — every body, the window line, the freshness and the export link — so the
    browser draws it in one pass, with no refresh round trip after the page's own.
    `redraw_ms`: per timeframe, how often new data may redraw the live widgets (the server
    reuses a body that long: callbacks/dashboard.py STALE_FACTOR)."""
    tf = timeframe if timeframe in TIMEFRAMES else "24h"
    drawn = drawn or Drawn()
    return html.Div([
        html.Div([
            html.H1(defn.title, className="h4 mb-0 me-2", id="dash-title"),
            html.Span("personal copy", className="badge text-bg-info me-auto", id="dash-kind")
            if kind == "personal" else html.Span(className="me-auto"),
            html.Span(drawn.freshness, id="dash-freshness", className="small text-body-secondary"),
            *(tools or []),
            *([editor] if editor is not None else []),
            html.A("Export CSV", id="dash-export", href=drawn.export_href or f"/api/export/{defn.id}.csv?timeframe={tf}",
                   className="btn btn-sm btn-outline-secondary" + ("" if can_export else " d-none")),
            dbc.RadioItems(id="dash-timeframe", options=[{"label": t, "value": t} for t in TIMEFRAMES],
                           value=tf, inline=True, className="btn-group", inputClassName="btn-check",
                           labelClassName="btn btn-outline-primary btn-sm", labelCheckedClassName="active"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        *(notices or []),
        filters(defn.filter_controls, view, names),
        html.Div(drawn.window, id="dash-window", className="text-body-secondary small mb-2"),
        html.Div(grid_with_bodies(defn, denied, csv_hrefs if can_export else {}, drawn.bodies, editable=False,
                                  live_every_ms=live_every_ms),
                 id="dash-grid-wrap", className="dash-grid"),
        dcc.Store(id="dash-id", data=defn.id),
        dcc.Store(id="dash-def", data=defn.model_dump(mode="json")),
        dcc.Store(id="dash-def-key"),       # what the widgets' bodies depend on (callbacks/dashboard.py)
        dcc.Store(id="dash-def-seen"),      # the definition the bodies were last drawn from
        dcc.Store(id="dash-edit", data=False),
        dcc.Store(id="dash-grid-moved"),    # the grid's layout after a drag in the edit mode
        dcc.Store(id="w-due"),              # the widgets whose own interval fired
        # Live updates (assets/live.js): the channels this page listens to, and the store it
        # bumps when new data arrives so the live widgets are redrawn from the server's aggregates.
        html.Div(id="live-config", hidden=True, **{"data-channels": " ".join(channels),
                                                   "data-ws": "/ws", "data-sse": "/api/stream",
                                                   **({"data-redraw": json.dumps(redraw_ms, sort_keys=True)}
                                                      if redraw_ms else {})}),
        dcc.Store(id="live-tick"),
    ], **{"data-dashboard": defn.id})


@dataclass
class Drawn:
    """What a page comes with when the server draws it whole (callbacks/dashboard.py)."""
    bodies: dict[str, Any] | None = None    # widget id -> its body
    window: str | None = None
    freshness: str | None = None
    export_href: str | None = None


def grid_with_bodies(defn: Any, denied: dict[str, str], csv_hrefs: dict[str, str], bodies: dict[str, Any] | None,
                     *, editable: bool, live_every_ms: int | None = None) -> list[Any]:
    """The grid of shells, and whether it came with its bodies (`dash-drawn`: the refresh's
    first call then has nothing to do; shells without bodies are filled by that call)."""
    return [grid([(w, widget_shell(w, denied.get(w.id), csv_href=csv_hrefs.get(w.id), drawn=(bodies or {}).get(w.id)))
                  for w in defn.widgets], editable=editable),
            dcc.Store(id="dash-drawn", data=bodies is not None), *widget_clock(defn.widgets, denied, live_every_ms)]


def validation_board() -> html.Div:
    """Every id the dashboard page's callbacks name, for the app's validation layout."""
    from dashboards.schema import Dashboard
    defn = Dashboard.model_validate({"id": "x", "title": "x", "widgets": [
        {"id": "w", "type": "kpi_card", "title": "w", "data_sources": [{"source": "kpi", "metric": "gate_pass_rate"}]}]})
    from components.editor import toolbar
    from components.share import share_dialog
    return board(defn, denied={}, timeframe="24h", view={}, names={}, can_export=True, csv_hrefs={}, channels=[],
                 editor=toolbar(True, True), tools=[share_dialog(defn, [], [])])


def infinite_grid(grid_id: str, columns: list[dict[str, Any]], height: str) -> dag.AgGrid:
    """A grid fed page by page from the server (AG Grid's infinite row model): its
    getRowsRequest goes to a callback that reads the drill-down, newest first."""
    return dag.AgGrid(id=grid_id, rowModelType="infinite", columnDefs=columns,
                      # cellDataType off: booleans and ids show as the values they are, not checkboxes.
                      defaultColDef={"resizable": True, "sortable": False, "filter": False, "cellDataType": False,
                                     "minWidth": 120},
                      # Every column rendered (a dozen or two), so none shows empty while scrolled away.
                      dashGridOptions={"suppressFieldDotNotation": True, "suppressColumnVirtualisation": True,
                                       "cacheBlockSize": 200,
                                       "maxBlocksInCache": 50, "infiniteInitialRowCount": 1, "rowBuffer": 20,
                                       "animateRows": False},
                      style={"height": height})


def cap_note(export_cap: int) -> html.Span | None:
    """Said before the click: this deployment cuts exports (the file says so too)."""
    if not export_cap:
        return None
    return html.Span(f"Exports hold at most {export_cap:,} rows (this deployment's limit)", id="export-cap",
                     className="small text-warning-emphasis")


def gate_layout(gate: str, refresh_ms: int = 5000, timeframe: str = "24h", *, failing: dict[str, Any] | None = None,
                columns: list[dict[str, Any]] | None = None, csv_href: str | None = None,
                export_cap: int = 0) -> html.Div:
    """The drill-down of one quality gate: KPIs, pass rate over time, its failing runs
    (the gates_failed drill-down of this gate, newest first) and their export."""
    return html.Div([
        html.Div([
            dcc.Link("← Quality assurance", href=f"/dashboards/qa?timeframe={timeframe}", className="small me-auto"),
            html.Span(id="gate-window", className="small text-body-secondary"),
            cap_note(export_cap),
            html.A("Export failing runs (CSV)", id="gate-csv", href=csv_href,
                   className="btn btn-sm btn-outline-primary" + ("" if csv_href else " d-none")),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.H1(f"Gate · {gate}", className="h4 mb-3"),
        dcc.Store(id="gate-timeframe", data=timeframe if timeframe in TIMEFRAMES else "24h"),
        # Room kept for the cards and the chart the first refresh draws: the failing runs below
        # (their own grid, filled at once) must not jump down under the reader's pointer.
        html.Div(id="gate-kpis", style={"minHeight": "10rem"}),
        html.Div(id="gate-trend", className="mb-3", style={"minHeight": "450px"}),
        html.H2("Failing runs", className="h6"),
        html.Div(id="gate-failures-count", className="small mb-1"),
        dcc.Store(id="gate-failures-query", data=failing),
        infinite_grid("gate-failures", columns or [], "45vh"),
        dcc.Interval(id="gate-refresh", interval=refresh_ms),
    ], **{"data-gate": gate})


def forbidden(permission: str) -> html.Div:
    return html.Div([
        html.H1("You may not open this page", className="h4"),
        html.P(["Your role does not include ", html.Code(permission), ". Ask an administrator if you need it."],
               className="text-body-secondary"),
        dcc.Link("Back to your dashboards", href="/", className="btn btn-outline-primary"),
    ], className="py-4", id="forbidden")


def not_found(path: str) -> html.Div:
    return html.Div([html.H1("No such page", className="h4"), html.P(html.Code(path)),
                     dcc.Link("Back to your dashboards", href="/")], className="py-4", id="not-found")


def events_layout(kpi: str, timeframe: str = "24h", back: str = "/", scope: tuple[str, str] | None = None, *,
                  title: str | None = None, columns: list[dict[str, Any]] | None = None,
                  query: dict[str, Any] | None = None, exports: dict[str, str] | None = None, export_cap: int = 0,
                  window: str = "", notes: list[Any] | None = None) -> html.Div:
    """The events behind one KPI: the count line that makes the card's number, and every
    row of the window in a grid fed page by page (newest first), exports a click away."""
    buttons = [html.A(f"Export {label}", id=f"events-{fmt}", href=href, className="btn btn-sm btn-outline-primary")
               for fmt, label, href in (("csv", "CSV", (exports or {}).get("csv")),
                                        ("jsonl", "JSON Lines", (exports or {}).get("jsonl"))) if href]
    return html.Div([
        html.Div([
            dcc.Link("← Back to the dashboard", id="events-back", href=back, className="small me-auto"),
            html.Span(window, id="events-window", className="small text-body-secondary"),
            cap_note(export_cap), *buttons,
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.H1(["Events behind ", title or html.Code(kpi)], className="h4 mb-1"),
        html.Div(id="events-count", className="fs-6 fw-semibold mb-2"),
        dcc.Store(id="events-kpi", data=query or {"kpi": kpi, "timeframe": timeframe if timeframe in TIMEFRAMES
                                                  else "24h", "scope": list(scope) if scope else None}),
        infinite_grid("events-grid", columns or [], "70vh"),
        html.Div(notes or [], id="events-legend", className="small text-body-secondary mt-2"),
        html.Div(id="events-note", className="small text-body-secondary mt-1"),
    ], **{"data-events": kpi})
