"""The dashboard edit mode: its bar, the widget library and the configure dialog, and the pure
edits of a definition they make (add, duplicate, remove, configure, move; an undo stack).

Edits work on the definition as JSON (the `dash-def` store, `schema.dump` form) and return a
new one; every edit is checked by `schema.validate` before it is kept (the callbacks show the
error lines). Which data sources a user is offered is `dashboards.sources.allowed`, the one
check the page, callbacks, exports and live channel use.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterable, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboards.schema import (GRID_COLUMNS, MAX_WIDGETS, NEEDS_METRIC, SOURCE_KINDS, WIDGET_TYPES, DataSource,
                               Position, Widget)
from data.kpis import DEVELOPER, EXECUTIVE, OPERATIONAL, QA
from data.timeutil import TIMEFRAMES

UNDO_LIMIT = 30          # edits kept for undo (each a whole definition in the browser's store)

# The seed's widget categories (§4.1), in the library's order.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Metrics": ("kpi_card", "metric_trend", "gauge_chart", "progress_bar", "comparison_chart", "stat_group"),
    "Workflow": ("pipeline_visualizer", "queue_monitor", "timeline_view", "kanban_board"),
    "Agents": ("agent_status_grid", "workload_heatmap", "skill_matrix", "performance_radar"),
    "Quality": ("quality_trends", "defect_distribution", "gate_performance", "gate_table", "compliance_status",
                "risk_assessment", "risk_matrix", "code_quality", "test_coverage"),
    "System": ("system_health", "error_log_viewer", "alert_summary", "audit_log"),
    "Developer and team": ("team_collaboration", "achievement_tracker", "skill_development"),
    "Tables": ("table",),
}
LABELS = {"kpi_card": "KPI card", "metric_trend": "Metric trend", "gauge_chart": "Gauge", "progress_bar": "Progress bar",
          "comparison_chart": "Comparison chart", "stat_group": "Stat group",
          "pipeline_visualizer": "Pipeline", "queue_monitor": "Queue monitor", "timeline_view": "Timeline",
          "kanban_board": "Kanban board", "agent_status_grid": "Agent status", "workload_heatmap": "Workload heatmap",
          "skill_matrix": "Skill matrix", "performance_radar": "Performance radar", "quality_trends": "Quality trends",
          "defect_distribution": "Defect distribution", "gate_performance": "Gate performance",
          "gate_table": "Gate table", "compliance_status": "Compliance status", "risk_assessment": "Risk assessment",
          "risk_matrix": "Risk matrix", "code_quality": "Code quality", "test_coverage": "Test coverage",
          "system_health": "System health", "error_log_viewer": "Error log", "alert_summary": "Alert summary",
          "audit_log": "Audit log", "team_collaboration": "Team collaboration",
          "achievement_tracker": "Achievement tracker", "skill_development": "Skill development", "table": "Table"}


def _k(metric: str) -> tuple[str, str]:
    return ("kpi", metric)


def _s(metric: str) -> tuple[str, str]:
    return ("series", metric)


def _d(metric: str) -> tuple[str, str]:
    return ("drilldown", metric)


# Per type, the data sources a new widget starts with, in order of preference: the first set
# whose every source the user may see (one set per role's data, so everyone gets a preview).
Candidate = tuple[tuple[str, str], ...]
DEFAULTS: dict[str, tuple[Candidate, ...]] = {
    "kpi_card": ((_k("gate_pass_rate"),), (_k("total_active_reviews"),), (_k("gates_passed"),), (_k("pending_reviews"),)),
    "metric_trend": ((_s("overall_quality_score"),), (_s("total_active_reviews"),), (_s("gates_failed"),),
                     (_s("pending_reviews"),)),
    "gauge_chart": ((_k("sla_adherence"),), (_k("compliance_checks_passed"),), (_k("active_agents"),),
                    (_k("average_feedback_time"),)),
    "progress_bar": ((_k("gate_pass_rate"),), (_k("audit_readiness_score"),), (("computed", "achievements"),)),
    "comparison_chart": ((("breakdown", "merged_by_team"),), (("breakdown", "defects_by_severity"),),
                         (("breakdown", "events_by_type"),), (_k("pending_reviews"), _k("completed_today"))),
    "stat_group": ((_k("gate_pass_rate"), _k("sla_adherence"), _k("time_to_merge")),
                   (_k("total_active_reviews"), _k("active_agents"), _k("error_rate")),
                   (_k("gates_passed"), _k("gates_failed"), _k("defects_found")),
                   (_k("pending_reviews"), _k("completed_today"), _k("average_feedback_time"))),
    "pipeline_visualizer": ((("computed", "pipeline"),), (("state", "my_pull_requests"),)),
    "queue_monitor": ((("state", "queues"),),),
    "timeline_view": ((_d("total_active_reviews"),), (_d("gates_failed"),), (_d("overall_quality_score"),),
                      (_d("pending_reviews"),)),
    "kanban_board": ((("state", "active_workflows"),), (("state", "my_pull_requests"),)),
    "agent_status_grid": ((("state", "agents"),),),
    "workload_heatmap": ((("state", "agents"),),),
    "skill_matrix": ((("state", "agents"),),),
    "performance_radar": ((_k("gate_pass_rate"), _k("sla_adherence"), _k("compliance_adherence")),
                          (_k("compliance_checks_passed"), _k("audit_readiness_score"), _k("defect_prevention_rate")),
                          (_k("active_agents"), _k("idle_agents"), _k("overloaded_agents")),
                          (_k("pending_reviews"), _k("completed_today"), _k("suggested_reviews"))),
    "quality_trends": ((_s("gate_pass_rate"),), (_s("gates_failed"),), (_s("quality_score_trend"),)),
    "defect_distribution": ((("breakdown", "defects_by_severity"),),),
    "gate_performance": ((("computed", "gates"),),),
    "gate_table": ((("computed", "gates"),),),
    "compliance_status": ((("state", "violations"),), (_k("compliance_adherence"),)),
    "risk_assessment": ((("computed", "risks"),),),
    "risk_matrix": ((("computed", "risks"),),),
    "code_quality": ((("computed", "code_quality"),),),
    "test_coverage": ((("computed", "test_coverage"),),),
    "system_health": ((("state", "health"),),),
    "error_log_viewer": ((_s("error_rate"),), (_d("gates_failed"),)),
    "alert_summary": ((("computed", "alerts"),),),
    "audit_log": ((_d("total_active_reviews"),), (_d("gates_failed"),), (_d("pending_reviews"),)),
    "team_collaboration": ((("computed", "team_collaboration"),),),
    "achievement_tracker": ((("computed", "achievements"),),),
    "skill_development": ((("computed", "skill_development"),),),
    "table": ((("state", "active_workflows"),), (("state", "violations"),), (("computed", "roi"),),
              (("state", "my_reviews"),), (("breakdown", "merged_by_team"),)),
}
# A new widget's size on the 12-column grid (width, height in rows).
SIZES = {"kpi_card": (3, 2), "gauge_chart": (3, 4), "progress_bar": (4, 2), "stat_group": (6, 2),
         "table": (12, 5), "gate_table": (12, 5), "kanban_board": (12, 5), "agent_status_grid": (12, 4)}
DEFAULT_SIZE = (6, 4)
REFRESH_CHOICES = [("live", "Live (on new data)"), ("off", "Off"), ("10", "10 s"), ("30", "30 s"), ("60", "1 min"),
                   ("300", "5 min"), ("900", "15 min"), ("3600", "1 h")]
DISPLAY_FLAGS = [("show_legend", "Legend"), ("annotations", "Annotations (changes, alerts)"),
                 ("animation", "Animation")]


# --- data sources ----------------------------------------------------------------------------

def source_key(ds: DataSource | dict[str, Any]) -> str:
    """A data source's choice value: "<source>:<metric or name>"."""
    d = ds.model_dump() if isinstance(ds, DataSource) else ds
    return f"{d.get('source')}:{d.get('metric') or d.get('name')}"


def source_of(key: str) -> DataSource:
    """The data source a choice value names (ValueError for one that is not a source)."""
    kind, _, what = key.partition(":")
    if kind not in SOURCE_KINDS or not what:
        raise ValueError(f"not a data source: {key[:80]!r}")
    return DataSource(source=kind, **({"metric": what} if kind in NEEDS_METRIC else {"name": what}))


def _kpis() -> list[str]:
    return [k for table in (EXECUTIVE, OPERATIONAL, QA, DEVELOPER) for k in table]


def every_source() -> list[DataSource]:
    """Every data source a widget can read: each KPI as a value, a series and a drill-down,
    and every named breakdown, state list and computed view."""
    out = [DataSource(source=kind, metric=k) for kind in NEEDS_METRIC for k in _kpis()]
    out += [DataSource(source=kind, name=n) for kind, names in SOURCE_KINDS.items() for n in names]
    return out


def source_label(ds: DataSource) -> str:
    what = (ds.metric or ds.name or "").replace("_", " ")
    kind = {"kpi": "KPI", "series": "KPI over time", "drilldown": "events behind KPI", "breakdown": "breakdown",
            "state": "live list", "computed": "view"}[ds.source]
    return f"{what} ({kind})"


def source_options(principal: Any, allowed: Any) -> list[dict[str, str]]:
    """The sources `principal` may read (`allowed(ds, principal)`), as dropdown options."""
    return [{"label": source_label(ds), "value": source_key(ds)} for ds in every_source() if allowed(ds, principal)]


def default_sources(wtype: str, principal: Any, allowed: Any) -> list[DataSource] | None:
    """The first default source set of `wtype` the user may read all of (None: none)."""
    for cand in DEFAULTS.get(wtype, ()):
        sources = [source_of(f"{kind}:{what}") for kind, what in cand]
        if all(allowed(ds, principal) for ds in sources):
            return sources
    return None


def library(principal: Any, allowed: Any) -> list[tuple[str, list[tuple[str, list[DataSource] | None]]]]:
    """Every widget type, grouped by category, with the sources its preview reads (None: no
    source of that type the user may see)."""
    return [(cat, [(t, default_sources(t, principal, allowed)) for t in types]) for cat, types in CATEGORIES.items()]


# --- edits of a definition (JSON in, JSON out) -----------------------------------------------

def _free_id(base: str, taken: Iterable[str]) -> str:
    used = set(taken)
    stem = re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-_")[:56] or "widget"
    if stem not in used:
        return stem
    n = 2
    while f"{stem}-{n}" in used:
        n += 1
    return f"{stem}-{n}"


def _bottom(doc: dict[str, Any]) -> int:
    return max((w["position"]["y"] + w["position"]["height"] for w in doc.get("widgets", [])
                if isinstance(w.get("position"), dict)), default=0)


def new_widget(doc: dict[str, Any], wtype: str, sources: Sequence[DataSource] | None) -> dict[str, Any]:
    """A widget of `wtype` reading `sources`, below the others, with a free id."""
    width, height = SIZES.get(wtype, DEFAULT_SIZE)
    wid = _free_id(wtype.replace("_", "-"), (w["id"] for w in doc.get("widgets", [])))
    widget = Widget(id=wid, type=wtype, title=LABELS.get(wtype, wtype),
                    position=Position(x=0, y=_bottom(doc), width=width, height=height),
                    data_sources=list(sources or []))
    return widget.model_dump(mode="json")


def add(doc: dict[str, Any], widget: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["widgets"] = [*out.get("widgets", []), widget]
    return out


def duplicate(doc: dict[str, Any], widget_id: str) -> dict[str, Any]:
    """A copy of the widget right below it ("<title> (copy)", a free id)."""
    out = copy.deepcopy(doc)
    widgets = out.get("widgets", [])
    i = next((n for n, w in enumerate(widgets) if w.get("id") == widget_id), None)
    if i is None:
        return out
    twin = copy.deepcopy(widgets[i])
    twin["id"] = _free_id(widget_id, (w["id"] for w in widgets))
    twin["title"] = (str(twin.get("title") or "") + " (copy)")[:200]
    twin["position"] = {**twin["position"], "y": _bottom(out)}
    widgets.insert(i + 1, twin)
    return out


def remove(doc: dict[str, Any], widget_id: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["widgets"] = [w for w in out.get("widgets", []) if w.get("id") != widget_id]
    return out


def move(doc: dict[str, Any], positions: dict[str, Position]) -> dict[str, Any]:
    """The definition with these widgets' positions (others unchanged)."""
    out = copy.deepcopy(doc)
    for w in out.get("widgets", []):
        p = positions.get(w.get("id"))
        if p is not None:
            w["position"] = p.model_dump()
    return out


def _collides(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """The definition with every widget moved up as far as it goes, as the grid does
    (react-grid-layout's vertical compaction: by row then column, each widget rises until it
    would overlap one already placed). Drawing a compacted definition changes nothing, so
    the grid reports no layout change of its own after a redraw."""
    out = copy.deepcopy(doc)
    placed: list[dict[str, int]] = []
    for w in sorted(out.get("widgets", []), key=lambda w: (w["position"]["y"], w["position"]["x"])):
        p = dict(w["position"])
        p["y"] = min(p["y"], max((q["y"] + q["height"] for q in placed), default=0))
        while p["y"] > 0 and not any(_collides(p, q) for q in placed):
            p["y"] -= 1
        hit = next((q for q in placed if _collides(p, q)), None)
        while hit is not None:
            p["y"] = hit["y"] + hit["height"]
            hit = next((q for q in placed if _collides(p, q)), None)
        placed.append(p)
        w["position"] = p
    return out


def same_positions(doc: dict[str, Any], positions: dict[str, Position]) -> bool:
    return all(w.get("position") == positions[w["id"]].model_dump() for w in doc.get("widgets", [])
               if w.get("id") in positions)


def _number(v: Any) -> float | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def configure(doc: dict[str, Any], widget_id: str, form: dict[str, Any]) -> dict[str, Any]:
    """The widget reconfigured from the dialog's values: title, sources (keys; a kept source
    keeps its filters and transform), timeframe override, thresholds, refresh, display options.
    Not validated here (schema.validate does, naming the field)."""
    out = copy.deepcopy(doc)
    w = next((w for w in out.get("widgets", []) if w.get("id") == widget_id), None)
    if w is None:
        return out
    if form.get("title") is not None:
        w["title"] = str(form["title"]).strip()
    keys = form.get("sources")
    if keys is not None:
        old = {source_key(ds): ds for ds in w.get("data_sources", [])}
        w["data_sources"] = [copy.deepcopy(old[k]) if k in old else source_of(k).model_dump(mode="json", exclude_none=True)
                             for k in dict.fromkeys(keys)]
    timeframe = form.get("timeframe") or None
    for ds in w.get("data_sources", []):
        ds["timeframe"] = timeframe
    warning, critical = _number(form.get("warning")), _number(form.get("critical"))
    direction = form.get("direction") or None
    w["alert_thresholds"] = ({"warning": warning, "critical": critical, "direction": direction}
                             if warning is not None or critical is not None else None)
    refresh = form.get("refresh")
    if refresh:
        w["refresh_interval"] = int(refresh) if str(refresh).isdigit() else refresh
    flags = set(form.get("flags") or [])
    display = dict(w.get("display_options") or {})
    for flag, _ in DISPLAY_FLAGS:
        display[flag] = flag in flags
    for key in ("chart", "color_scheme", "theme"):
        if key in form:
            display[key] = form[key] or ({"color_scheme": "default", "theme": "auto"}.get(key))
    w["display_options"] = display
    return out


def form_of(widget: Widget) -> dict[str, Any]:
    """The dialog's values for a widget (configure's inverse)."""
    th = widget.alert_thresholds
    d = widget.display_options
    tfs = {ds.timeframe for ds in widget.data_sources}
    return {"title": widget.title, "sources": [source_key(ds) for ds in widget.data_sources],
            "timeframe": next(iter(tfs)) if len(tfs) == 1 else None,
            "warning": th.warning if th else None, "critical": th.critical if th else None,
            "direction": (th.direction if th else None) or "", "refresh": str(widget.refresh_interval),
            "flags": [f for f, _ in DISPLAY_FLAGS if getattr(d, f)], "chart": d.chart or "",
            "color_scheme": d.color_scheme, "theme": d.theme}


# --- undo ------------------------------------------------------------------------------------

def push(stack: list[Any] | None, doc: Any, limit: int = UNDO_LIMIT) -> list[Any]:
    """The stack with `doc` on top, the oldest dropped past `limit`."""
    return [*(stack or []), doc][-limit:]


def pop(stack: list[Any] | None) -> tuple[Any, list[Any]]:
    """(the last definition, the rest); (None, []) when there is nothing to undo."""
    stack = list(stack or [])
    return (stack.pop(), stack) if stack else (None, [])


# --- the components --------------------------------------------------------------------------

def _button(label: str, id: str, color: str = "secondary", **kw: Any) -> dbc.Button:
    return dbc.Button(label, id=id, color=color, outline=color == "secondary", size="sm", n_clicks=0, **kw)


def toolbar(can_save: bool, can_share: bool = False) -> html.Div:
    """The Edit toggle and, in edit mode, the editor's bar; its dialogs and stores. `can_save`:
    a personal copy (update:personal_settings); `can_share`: the shared definition
    (manage:dashboards). Neither: the toggle is hidden (the stores stay for the callbacks)."""
    hidden = "" if can_save or can_share else " d-none"
    return html.Div([
        _button("Edit", "dash-edit-toggle", className="dash-edit-toggle" + hidden),
        html.Div([
            _button("Add widget", "dash-edit-add", "primary"),
            _button("Undo", "dash-edit-undo", disabled=True),       # nothing to undo yet
            _button("Save", "dash-edit-save", "success", className="" if can_save else "d-none"),
            _button("Save as shared", "dash-edit-save-shared", "success", className="" if can_share else "d-none"),
            _button("Reset to default", "dash-edit-reset"),
            _button("Cancel", "dash-edit-cancel"),
        ], id="dash-edit-bar", className="dash-edit-bar d-none"),
        html.Span(id="dash-edit-status", className="small text-body-secondary", role="status"),
        html.Div(id="dash-edit-errors", className="dash-edit-errors small text-danger"),
        dcc.Store(id="dash-undo", data=[]),
        dcc.Store(id="dash-edit-base"),
        library_modal(),
        config_modal(),
    ], id="dash-editor", className="d-flex flex-column gap-1 mb-2")


def library_modal() -> dbc.Modal:
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Add a widget")),
        dbc.ModalBody(dcc.Loading(html.Div(id="dash-lib-body")), className="dash-lib-body"),
    ], id="dash-lib-modal", size="xl", scrollable=True, is_open=False)


def library_body(groups: list[tuple[str, list[tuple[str, Any, Any]]]]) -> list[Any]:
    """The library: per category, a card per type with its preview (a component) and an Add
    button; `groups`: [(category, [(type, preview, addable)])]."""
    out = []
    for cat, items in groups:
        cards = [dbc.Col(html.Div(dbc.Card([
            dbc.CardHeader([html.Span(LABELS.get(t, t), className="fw-semibold me-auto"),
                            dbc.Button("Add", id={"type": "lib-add", "t": t}, size="sm", color="primary", n_clicks=0,
                                       disabled=not addable, className="lib-add")],
                           className="d-flex align-items-center gap-2"),
            dbc.CardBody(html.Div(preview, className="lib-preview"), className="p-2"),
        ], className="lib-card h-100"), className="h-100", **{"data-type": t}), md=6, lg=4, className="mb-3")
            for t, preview, addable in items]
        out.append(html.Div([html.H3(cat, className="h6"), dbc.Row(cards)], className="lib-group",
                            **{"data-category": cat}))
    return out


def _field(label: str, control: Any) -> html.Div:
    return html.Div([dbc.Label(label, className="small mb-0"), control], className="mb-2")


def config_modal() -> dbc.Modal:
    dd = {"clearable": True, "className": "filter-dropdown"}
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Configure widget")),
        dbc.ModalBody(dbc.Row([
            dbc.Col([
                _field("Title", dbc.Input(id="dash-cfg-title", type="text", maxLength=200)),
                _field("Data sources", dcc.Dropdown(id="dash-cfg-sources", multi=True, options=[], **dd)),
                _field("Timeframe", dcc.Dropdown(id="dash-cfg-timeframe", placeholder="The dashboard's",
                                                 options=[{"label": t, "value": t} for t in TIMEFRAMES], **dd)),
                dbc.Row([
                    dbc.Col(_field("Warning at", dbc.Input(id="dash-cfg-warning", type="number"))),
                    dbc.Col(_field("Critical at", dbc.Input(id="dash-cfg-critical", type="number"))),
                    dbc.Col(_field("Bad when", dcc.Dropdown(id="dash-cfg-direction", placeholder="The metric's direction",
                                                            options=[{"label": "above", "value": "above"},
                                                                     {"label": "below", "value": "below"}], **dd))),
                ]),
                _field("Refresh", dcc.Dropdown(id="dash-cfg-refresh", clearable=False, className="filter-dropdown",
                                               options=[{"label": lbl, "value": v} for v, lbl in REFRESH_CHOICES])),
                _field("Display", dbc.Checklist(id="dash-cfg-flags", inline=True,
                                                options=[{"label": lbl, "value": f} for f, lbl in DISPLAY_FLAGS])),
                dbc.Row([
                    dbc.Col(_field("Chart", dcc.Dropdown(id="dash-cfg-chart", placeholder="default", options=[
                        {"label": c, "value": c} for c in ("line", "area", "bar")], **dd))),
                    dbc.Col(_field("Colours", dcc.Dropdown(id="dash-cfg-colors", clearable=False, className="filter-dropdown",
                                                           options=[{"label": c.replace("_", " "), "value": c} for c in
                                                                    ("default", "status_based", "colorblind", "monochrome")]))),
                    dbc.Col(_field("Theme", dcc.Dropdown(id="dash-cfg-theme", clearable=False, className="filter-dropdown",
                                                         options=[{"label": c, "value": c} for c in ("auto", "light", "dark")]))),
                ]),
                html.Div(id="dash-cfg-errors", className="small text-danger dash-edit-errors"),
            ], md=7),
            dbc.Col([html.Div("Preview", className="small text-body-secondary"),
                     dcc.Loading(html.Div(id="dash-cfg-preview", className="cfg-preview"))], md=5),
        ])),
        dbc.ModalFooter([_button("Cancel", "dash-cfg-cancel"), _button("Apply", "dash-cfg-apply", "primary")]),
        dcc.Store(id="dash-cfg-widget"),
    ], id="dash-cfg-modal", size="xl", is_open=False)


__all__ = ["CATEGORIES", "LABELS", "DEFAULTS", "UNDO_LIMIT", "toolbar", "library", "library_body", "config_modal",
           "library_modal", "source_options", "source_key", "source_of", "every_source", "default_sources",
           "new_widget", "add", "duplicate", "remove", "move", "same_positions", "configure", "form_of", "push", "pop",
           "GRID_COLUMNS", "MAX_WIDGETS"]
