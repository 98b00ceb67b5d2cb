"""The workflow (pull request) page's body, from `data.entities.workflow_doc` (sanitised):
header, SLA and key facts, the four steps with the time in each, a timeline chart of every
event in its step, and grids of events, gates, reviews, defects and compliance checks.
Shared pieces (durations, fact tiles, grids) serve the agent page too (components/entity_agent.py).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from components import theme
from components.common import STEP_LABELS, graph, short_time
from components.links import ACTOR, AGENT, GATE, WORKFLOW, entity_link, link_column

LABELS = {"created": "Created (before DoR)", **STEP_LABELS}
SLA_BS = {"met": "success", "missed": "danger", "open": "info", "unknown": "secondary"}
WHEN = {"field": "timestamp", "headerName": "When (UTC)", "minWidth": 180, "sort": "desc",
        "valueFormatter": {"function": "params.value ? params.value.replace('T', ' ').replace('Z', '') : ''"}}


def fmt_duration(ms: Any) -> str:
    """'2d 3h', '3h 05m', '4m 10s', '12s'; '—' for none."""
    if not isinstance(ms, (int, float)):
        return "—"
    sign, s = ("−" if ms < 0 else ""), int(abs(ms)) // 1000
    if s >= 86_400:
        return f"{sign}{s // 86_400}d {s % 86_400 // 3600}h"
    if s >= 3600:
        return f"{sign}{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{sign}{s // 60}m {s % 60:02d}s"
    return f"{sign}{s}s"


def fact(label: str, value: Any, key: str, sub: Any = None) -> dbc.Col:
    """One key fact as a small tile (data-fact=key for tests and styling)."""
    return dbc.Col(html.Div([html.Div(label, className="small text-body-secondary"),
                             html.Div(value, className="fs-5 fw-semibold entity-fact-value"),
                             html.Div(sub, className="small text-body-secondary") if sub else None],
                            className="card card-body p-2 h-100", **{"data-fact": key}), xs=6, md=4, xl=2,
                   className="mb-2")


def grid(grid_id: str, rows: Sequence[Mapping[str, Any]], columns: list[dict[str, Any]], mode: str,
         height: str = "320px") -> Any:
    if not rows:
        return html.Div("none", className="small text-body-secondary mb-3", id=grid_id)
    return dag.AgGrid(id=grid_id, rowData=list(rows), columnDefs=columns,
                      defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1, "minWidth": 100},
                      dashGridOptions={"animateRows": False, "theme": theme.grid_theme(mode),
                                       "enableCellTextSelection": True, "domLayout": "normal"},
                      style={"height": height, "width": "100%"}, className="mb-3 entity-grid")


def section(title: str, body: Any) -> html.Div:
    return html.Div([html.H2(title, className="h6 mt-3"), body])


def scope_note(doc: Mapping[str, Any]) -> Any:
    note = (doc.get("scope") or {}).get("note")
    return dbc.Alert(note, color="secondary", className="py-1 px-2 small", id="entity-scope") if note else None


def not_found(kind: str, ident: str) -> html.Div:
    return html.Div([html.H1(f"No such {kind}", className="h4"), html.P(html.Code(ident)),
                     html.P("Nothing has reported it, or its events are older than the raw-event retention.",
                            className="text-body-secondary"),
                     dcc.Link("Back to your dashboards", href="/")], className="py-4", id="entity-not-found")


# --- the workflow page -----------------------------------------------------------------------

def sla_text(sla: Mapping[str, Any]) -> str:
    target = fmt_duration(sla.get("target_ms"))
    status = sla.get("status")
    if status == "unknown":
        return f"no pr_created: the SLA ({target}) has no start"
    if not sla.get("open"):
        return f"{'within' if status == 'met' else 'over'} {target}: took {fmt_duration(sla.get('elapsed_ms'))}"
    left = sla.get("time_left_ms")
    due = short_time(sla.get("due"))
    if status == "open":
        return f"{fmt_duration(left)} left of {target} (due {due} UTC)"
    return f"still open, {fmt_duration(-left if isinstance(left, (int, float)) else None)} past due ({due} UTC)"


def _header(doc: Mapping[str, Any]) -> html.Div:
    s = doc["summary"]
    name = f"{s.get('repository')} #{s.get('pr_number')}" if s.get("repository") else None
    state = (dbc.Badge(s["outcome"], color=theme.status_bs(s["outcome"]), className="ms-2", id="workflow-outcome")
             if s.get("outcome") else dbc.Badge(LABELS.get(s.get("current_step") or "", "open"), color="info",
                                                className="ms-2", id="workflow-current-step"))
    who = " · ".join(str(x) for x in (s.get("author"), s.get("team")) if x)
    return html.Div([
        html.H1(["Workflow ", html.Code(doc["workflow_id"]), state], className="h4 mb-1", id="workflow-title"),
        html.Div(" · ".join(x for x in (name, s.get("title"), who) if x), className="text-body-secondary mb-1"),
        html.Div(f"created {short_time(s.get('created'))} UTC" + (f", completed {short_time(s['completed'])} UTC"
                                                                  if s.get("completed") else ""),
                 className="small text-body-secondary mb-2"),
    ])


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _facts(doc: Mapping[str, Any]) -> dbc.Row:
    c, sla = doc["counts"], doc["sla"]
    return dbc.Row([
        fact("SLA", dbc.Badge(sla["status"], color=SLA_BS.get(sla["status"], "secondary"), id="workflow-sla"), "sla",
             sla_text(sla)),
        fact("Review cost", f"${doc['cost_usd']:,.2f}", "cost", _count(c['reviews_completed'], "review") + " completed"),
        fact("Quality gates", _count(c["gate_runs"], "run"), "gates", f"{c['gates_failed']} failed"),
        fact("Defects", str(c["defects"]), "defects", f"{c['defects_open']} open"),
        fact("Compliance checks", str(c["compliance_checks"]), "compliance", f"{c['compliance_failed']} failed"),
        fact("Events", str(c["events"]), "events"),
    ], className="g-2")


def _steps(doc: Mapping[str, Any]) -> dbc.Row:
    cols = []
    for i, s in enumerate(doc["steps"]):
        title = LABELS.get(s["step"], s["step"]) if i == 0 else f"{i}. {LABELS.get(s['step'], s['step'])}"
        body = [html.Div(title, className="small fw-semibold"),
                html.Div(fmt_duration(s["time_ms"]) if s["visits"] else "not entered",
                         className="fs-5 step-time"),
                html.Div(" · ".join(x for x in (f"entered {short_time(s['entered'])}" if s["entered"] else "",
                                                f"{s['visits']} visits" if s["visits"] > 1 else "") if x),
                         className="small text-body-secondary")]
        if s["open"]:
            body.append(dbc.Badge("now", color="info", className="mt-1"))
        cls = "border-info" if s["open"] else ("border-success" if s["visits"] else "")
        cols.append(dbc.Col(html.Div(body, className=f"card card-body p-2 h-100 border-2 {cls}",
                                     **{"data-step": s["step"]}), xs=6, md=4, xl=True, className="mb-2"))
    return dbc.Row(cols, className="g-2 workflow-steps", id="workflow-steps")


def workflow_timeline(doc: Mapping[str, Any], mode: str = "light") -> Any:
    """The steps as bars over time (one row per step) and every event as a point in the row
    of the step it happened in; a point's customdata is the event id."""
    p = theme.palette(mode)
    rows = [LABELS[s] for s in ("created", *STEP_LABELS)]
    fig = go.Figure()
    for seg in doc["segments"]:
        fig.add_trace(go.Bar(
            y=[LABELS.get(seg["step"], seg["step"])], x=[seg["duration_ms"]], base=[seg["start"]], orientation="h",
            marker={"color": p["info"] if seg["open"] else p["primary"], "opacity": 0.35}, showlegend=False,
            hovertemplate=f"{LABELS.get(seg['step'], seg['step'])}: {fmt_duration(seg['duration_ms'])}"
                          f"{' (so far)' if seg['open'] else ''}<extra></extra>"))
    evs = doc["events"]
    if evs:
        fig.add_trace(go.Scatter(
            x=[e["timestamp"] for e in evs], y=[LABELS.get(e.get("step") or "created") for e in evs], mode="markers",
            customdata=[e["id"] for e in evs], text=[e["type"].split(".", 1)[-1] for e in evs], showlegend=False,
            marker={"size": 9, "color": [p["danger"] if _bad(e) else p["text"] for e in evs], "symbol": "diamond"},
            hovertemplate="%{x}<br>%{text}<extra></extra>"))
    fig.update_xaxes(type="date")
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(rows)), range=[-0.5, len(rows) - 0.5])
    fig.update_layout(barmode="overlay", bargap=0.3)
    return graph(fig, "workflow_timeline", mode=mode, id="workflow-timeline", height=300)


def _bad(e: Mapping[str, Any]) -> bool:
    t, d = e.get("type", ""), e.get("data") or {}
    return t.endswith("_failed") or d.get("passed") is False or t == "workflow.defect_found"


def event_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for e in doc["events"]:
        d = dict(e.get("data") or {})
        actor = d.pop("agent_id", None) or d.pop("reviewer", None) or d.pop("found_by", None)
        gate = d.pop("gate_name", None)
        d.pop("workflow_id", None)
        rows.append({"id": e["id"], "timestamp": e["timestamp"], "type": e["type"],
                     "step": LABELS.get(e.get("step") or "created"), "actor": actor, "gate": gate,
                     "details": ", ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, (dict, list)))})
    return rows


EVENT_COLUMNS = [WHEN, {"field": "step", "headerName": "Step", "maxWidth": 190},
                 {"field": "type", "headerName": "Event", "minWidth": 230},
                 link_column("actor", ACTOR, "Agent / reviewer"), link_column("gate", GATE, "Gate"),
                 {"field": "details", "headerName": "Details", "flex": 2, "tooltipField": "details"},
                 {"field": "id", "headerName": "Event id"}]
GATE_COLUMNS = [WHEN, link_column("gate_name", GATE, "Gate", minWidth=180),
                {"field": "passed", "headerName": "Passed", "maxWidth": 110,
                 "cellClassRules": {"text-danger fw-semibold": "params.value === false"}},
                link_column("agent_id", AGENT, "Agent"), {"field": "execution_time", "headerName": "Time (s)"},
                {"field": "id", "headerName": "Event id"}]
REVIEW_COLUMNS = [WHEN, link_column("reviewer", ACTOR, "Reviewer"), {"field": "verdict", "headerName": "Verdict"},
                  {"field": "cost_usd", "headerName": "Cost (USD)"},
                  {"field": "duration", "headerName": "Took"}, {"field": "id", "headerName": "Event id"}]
DEFECT_COLUMNS = [{**WHEN, "field": "found", "headerName": "Found (UTC)"},
                  {"field": "defect_id", "headerName": "Defect"}, {"field": "severity", "headerName": "Severity"},
                  {"field": "category", "headerName": "Category"}, {"field": "stage", "headerName": "Stage"},
                  link_column("found_by", ACTOR, "Found by"), link_column("workflow_id", WORKFLOW, "Workflow"),
                  {"field": "resolution", "headerName": "Resolution"},
                  {"field": "to_resolve", "headerName": "Time to resolve"}]
COMPLIANCE_COLUMNS = [{"field": "policy", "headerName": "Policy"}, {"field": "checks", "headerName": "Checks"},
                      {"field": "failed", "headerName": "Failed"}, {"field": "remediations", "headerName": "Remediated"},
                      {"field": "pending_violations", "headerName": "Pending violations"},
                      {"field": "last_check", "headerName": "Last check (UTC)"}]


def defect_rows(defects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "to_resolve": fmt_duration(d.get("time_to_resolve_ms"))} for d in defects]


def workflow_view(doc: Mapping[str, Any], mode: str = "light") -> html.Div:
    """The whole workflow page body."""
    reviews = [{**r, "duration": fmt_duration(r.get("duration_ms"))} for r in doc["reviews"]]
    in_review = doc.get("in_review") or []
    return html.Div([
        _header(doc), scope_note(doc), _facts(doc),
        section("Steps: DoR validation → code review → DoD validation → final approval", _steps(doc)),
        workflow_timeline(doc, mode),
        section(f"Every event ({len(doc['events'])})", grid("workflow-events", event_rows(doc), EVENT_COLUMNS, mode,
                                                            "420px")),
        section("Quality gates", grid("workflow-gates", doc["gates"], GATE_COLUMNS, mode)),
        section("Reviews" + (" — in review now: " if in_review else ""), html.Div([
            html.Div([entity_link(ACTOR, r.get("reviewer")) for r in in_review], className="small mb-1")
            if in_review else None, grid("workflow-reviews", reviews, REVIEW_COLUMNS, mode, "240px")])),
        section("Defects", grid("workflow-defects", defect_rows(doc["defects"]), DEFECT_COLUMNS, mode, "240px")),
        section("Compliance", grid("workflow-compliance", doc["compliance"], COMPLIANCE_COLUMNS, mode, "200px")),
    ], id="workflow-view", **{"data-workflow": doc["workflow_id"]})

