"""A role dashboard page: its KPIs, refreshing, with a timeframe selector."""
from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

TIMEFRAMES = ["1h", "4h", "24h", "7d", "30d"]
TITLES = {"executive": "Executive overview", "operational": "Operations", "qa": "Quality assurance",
          "developer": "My reviews"}


FILTERABLE = {"executive": ("scope",), "operational": ("scope", "agent"), "qa": ("scope", "gate")}


def filters(name: str, view: dict[str, str], names: dict[str, list[str]]) -> html.Div:
    """Repository/team (one scope), gate and agent pickers. All four are always in the page
    (the refresh callback reads them); the ones this dashboard does not use are hidden."""
    used = FILTERABLE.get(name, ())
    scope_options = ([{"label": f"Repository · {r}", "value": f"repository={r}"} for r in names.get("repositories", [])]
                     + [{"label": f"Team · {t}", "value": f"team={t}"} for t in names.get("teams", [])])
    scope = next((f"{d}={view[d]}" for d in ("repository", "team") if view.get(d)), None)

    def picker(key: str, id: str, options: list[Any], value: Any, placeholder: str) -> html.Div:
        return html.Div(dcc.Dropdown(id=id, options=options, value=value, placeholder=placeholder, clearable=True,
                                     className="filter-dropdown"),
                        className="filter" + ("" if key in used else " d-none"), style={"minWidth": "14rem"})
    return html.Div([
        picker("scope", "dash-scope", scope_options, scope, "All repositories and teams"),
        picker("gate", "dash-gate", names.get("gates", []), view.get("gate"), "All gates"),
        picker("agent", "dash-agent", names.get("agents", []), view.get("agent"), "All agents"),
    ], className="d-flex flex-wrap gap-2 mb-2" + ("" if used else " d-none"), id="dash-filters")


def layout(name: str, refresh_ms: int = 5000, timeframe: str = "24h", can_export: bool = False,
           view: dict[str, str] | None = None, names: dict[str, list[str]] | None = None) -> html.Div:
    return html.Div([
        html.Div([
            html.H1(TITLES.get(name, name), className="h4 mb-0 me-auto"),
            html.Span(id="dash-freshness", className="small text-body-secondary"),
            html.A("Export CSV", id="dash-export", href=f"/api/export/{name}.csv?timeframe={timeframe}",
                   className="btn btn-sm btn-outline-secondary" + ("" if can_export else " d-none")),
            dbc.RadioItems(id="dash-timeframe", options=[{"label": t, "value": t} for t in TIMEFRAMES],
                           value=timeframe if timeframe in TIMEFRAMES else "24h", inline=True,
                           className="btn-group", inputClassName="btn-check",
                           labelClassName="btn btn-outline-primary btn-sm", labelCheckedClassName="active"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-3"),
        filters(name, view or {}, names or {}),
        html.Div(id="dash-window", className="text-body-secondary small mb-2"),
        dcc.Loading(html.Div(id="dash-kpis"), delay_show=500),
        html.Div(id="dash-panels"),
        dcc.Interval(id="dash-refresh", interval=refresh_ms),
        # Live updates (assets/live.js): the channels this page listens to, and the store it
        # bumps when new data arrives so the charts are redrawn from the server's aggregates.
        html.Div(id="live-config", hidden=True, **{"data-channels": f"dashboard.{name} alerts",
                                                   "data-ws": "/ws", "data-sse": "/api/stream"}),
        dcc.Store(id="live-tick"),
        dcc.Store(id="widget-config"),      # bumped when the user hides or shows widgets
    ], **{"data-dashboard": name})


FAIL_COLUMNS = [
    {"field": "timestamp", "headerName": "When (UTC)", "sort": "desc", "minWidth": 190},
    {"field": "workflow_id", "headerName": "Workflow", "minWidth": 200},
    {"field": "agent_id", "headerName": "Agent"},
    {"field": "execution_time", "headerName": "Time (s)", "type": "numericColumn"},
    {"field": "id", "headerName": "Event"},
]


def gate_layout(gate: str, refresh_ms: int = 5000, timeframe: str = "24h") -> html.Div:
    """The drill-down of one quality gate: KPIs, pass rate over time, the failing runs."""
    return html.Div([
        html.Div([
            dcc.Link("← Quality assurance", href=f"/dashboards/qa?timeframe={timeframe}", className="small me-auto"),
            html.Span(id="gate-window", className="small text-body-secondary"),
            html.A("Export failing runs (CSV)", id="gate-csv", className="btn btn-sm btn-outline-primary"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.H1(f"Gate · {gate}", className="h4 mb-3"),
        dcc.Store(id="gate-timeframe", data=timeframe if timeframe in TIMEFRAMES else "24h"),
        html.Div(id="gate-kpis"),
        html.Div(id="gate-trend", className="mb-3"),
        html.H2("Failing runs", className="h6"),
        dag.AgGrid(id="gate-failures", columnDefs=FAIL_COLUMNS, rowData=[],
                   defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                   style={"height": "45vh"}),
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


def events_layout(kpi: str, timeframe: str = "24h", back: str = "/",
                  scope: tuple[str, str] | None = None) -> html.Div:
    """The events behind one KPI in the dashboard's window, sortable and filterable."""
    return html.Div([
        html.Div([
            dcc.Link("← Back to the dashboard", id="events-back", href=back, className="small me-auto"),
            html.Span(id="events-window", className="small text-body-secondary"),
            html.A("Export CSV", id="events-csv", className="btn btn-sm btn-outline-primary"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        html.H1(["Events behind ", html.Code(kpi)], className="h4 mb-3"),
        dcc.Store(id="events-kpi", data={"kpi": kpi, "timeframe": timeframe if timeframe in TIMEFRAMES else "24h",
                                         "scope": list(scope) if scope else None}),
        dag.AgGrid(id="events-grid", columnDefs=[], rowData=[],
                   defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1, "minWidth": 120},
                   dashGridOptions={"rowBuffer": 20, "animateRows": False}, style={"height": "70vh"}),
        html.Div(id="events-note", className="small text-body-secondary mt-2"),
    ], **{"data-events": kpi})
