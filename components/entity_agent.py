"""The agent page's body, from `data.entities.agent_doc` (sanitised): current status, counts
for the window, status and load over time (step charts), time in each status, and grids of
its gate runs, reviews, defects found (with resolutions) and assignments."""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from components import theme
from components.common import graph, short_time
from components.entity import DEFECT_COLUMNS, WHEN, defect_rows, fact, fmt_duration, grid, scope_note, section
from components.links import GATE, WORKFLOW, link_column
from components.ops import AGENT_STATUSES

GATE_RUN_COLUMNS = [WHEN, link_column("workflow_id", WORKFLOW, "Workflow", minWidth=180),
                    link_column("gate_name", GATE, "Gate"),
                    {"field": "passed", "headerName": "Passed", "maxWidth": 110,
                     "cellClassRules": {"text-danger fw-semibold": "params.value === false"}},
                    {"field": "execution_time", "headerName": "Time (s)"}, {"field": "id", "headerName": "Event id"}]
REVIEW_COLUMNS = [WHEN, {"field": "event", "headerName": "Review", "maxWidth": 130},
                  link_column("workflow_id", WORKFLOW, "Workflow", minWidth=180),
                  {"field": "verdict", "headerName": "Verdict"}, {"field": "cost_usd", "headerName": "Cost (USD)"},
                  {"field": "id", "headerName": "Event id"}]
ASSIGN_COLUMNS = [WHEN, link_column("workflow_id", WORKFLOW, "Workflow", minWidth=180),
                  {"field": "queue", "headerName": "Queue"}, {"field": "id", "headerName": "Event id"}]


def status_chart(doc: Mapping[str, Any], mode: str = "light") -> Any:
    """Status (top) and load (bottom) as step lines over the window; each value holds until
    the next change, and the last one until the window's end."""
    series = doc["status_series"]
    if not series:
        return html.Div("No status reported in this window.", className="small text-body-secondary",
                        id="agent-status-chart")
    p = theme.palette(mode)
    end = doc["window"]["end"]
    x = [s["timestamp"] for s in series] + [end]
    status = [s["status"] for s in series] + [series[-1]["status"]]
    load = [s["load"] * 100 if isinstance(s["load"], (int, float)) else None for s in series]
    load.append(load[-1])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.45, 0.55])
    fig.add_trace(go.Scatter(x=x, y=status, mode="lines+markers", line={"shape": "hv", "color": p["primary"]},
                             name="status", hovertemplate="%{x}<br>%{y}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=load, mode="lines", line={"shape": "hv", "color": p["warning"]}, connectgaps=False,
                             name="load", hovertemplate="%{x}<br>load %{y:.0f}%<extra></extra>"), row=2, col=1)
    order = [s for s in AGENT_STATUSES if s in status] + sorted({s for s in status if s not in AGENT_STATUSES})
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(order)), row=1, col=1)
    fig.update_yaxes(range=[0, 105], title={"text": "load %"}, row=2, col=1)
    fig.update_xaxes(range=[doc["window"]["start"], end], type="date")
    fig.update_layout(showlegend=False)
    return graph(fig, "agent_status_chart", mode=mode, id="agent-status-chart", height=340)


def _header(doc: Mapping[str, Any]) -> html.Div:
    cur = doc.get("current") or {}
    status = cur.get("status")
    load = cur.get("load")
    return html.Div([
        html.H1(["Agent ", html.Code(doc["agent_id"]),
                 dbc.Badge(status or "no status", color=theme.status_bs(status), className="ms-2", id="agent-status")],
                className="h4 mb-1", id="agent-title"),
        html.Div(" · ".join(x for x in (
            f"load {load * 100:.0f}%" if isinstance(load, (int, float)) else "",
            f"since {short_time(cur.get('since'))} UTC" if cur.get("since") else "",
            ", ".join(cur.get("skills") or [])) if x), className="text-body-secondary mb-1"),
        html.Div(f"Window {short_time(doc['window']['start'])} → {short_time(doc['window']['end'])} UTC",
                 className="small text-body-secondary mb-2", id="agent-window"),
        dcc.Link("As a reviewer: precision, misses, time to first review →",      # the reviewer ledger
                 href="/reviewers/" + quote(doc["agent_id"], safe=""), className="small", id="agent-ledger"),
    ])


def _facts(doc: Mapping[str, Any]) -> dbc.Row:
    c = doc["counts"]
    return dbc.Row([
        fact("Gate runs", str(c["gate_runs"]), "gate_runs", f"{c['gates_failed']} failed"),
        fact("Reviews completed", str(c["reviews_completed"]), "reviews",
             f"{c['approved']} approved, {c['changes_requested']} changes requested"),
        fact("Review cost", f"${c['review_cost_usd']:,.2f}", "cost"),
        fact("Defects found", str(c["defects_found"]), "defects", f"{c['defects_resolved']} resolved"),
        fact("False positives", str(c["false_positives"]), "false_positives",
             f"{100 * c['false_positives'] / c['defects_resolved']:.0f}% of resolved" if c["defects_resolved"] else None),
        fact("Status changes", str(c["status_changes"]), "status_changes", f"down {c['times_down']} times"),
    ], className="g-2")


def _time_in_status(doc: Mapping[str, Any]) -> Any:
    t = doc["time_in_status"]
    if not t:
        return html.Div("unknown in this window", className="small text-body-secondary")
    total = sum(t.values())
    # dbc.Badge takes no data-* attributes: a span around each carries the status.
    return html.Div([html.Span(dbc.Badge(f"{s} {fmt_duration(ms)} ({100 * ms / total:.0f}%)",
                                         color=theme.status_bs(s), className="me-1"),
                               className="agent-time-in-status", **{"data-status": s})
                     for s, ms in sorted(t.items(), key=lambda kv: -kv[1])], id="agent-time-in-status")


def _more(doc: Mapping[str, Any], name: str, count: int) -> str:
    return f" (newest {len(doc[name])} of {count})" if doc["truncated"].get(name) else ""


def _ledger(row: Mapping[str, Any] | None) -> Any:
    """Its figures as a reviewer from the reviewer ledger (outcomes of its findings and
    approvals), when the viewer may read the ledger and it reviewed in the window."""
    if not row:
        return None

    def pct(v: Any) -> str:
        return "—" if v is None else f"{v:.0f}%"
    return section("As a reviewer (the reviewer ledger)", dbc.Row([
        fact("Precision", pct(row.get("precision")), "ledger_precision",
             f"{row.get('findings_accepted', 0)} accepted, {row.get('findings_dismissed', 0)} dismissed"),
        fact("Miss rate", pct(row.get("miss_rate")), "ledger_miss_rate",
             f"{row.get('escapes', 0)} escapes over {row.get('workflows_approved', 0)} approved"),
        fact("Time to first review", "—" if row.get("time_to_first_review") is None
             else fmt_duration(row["time_to_first_review"] * 3_600_000), "ledger_first_review",
             f"{row.get('first_reviews', 0)} pull requests"),
        fact("Cost per accepted finding", "—" if row.get("cost_per_accepted_finding") is None
             else f"${row['cost_per_accepted_finding']:,.2f}", "ledger_cost_per_finding"),
    ], className="g-2", id="agent-ledger-figures"))


def agent_view(doc: Mapping[str, Any], mode: str = "light", ledger: Mapping[str, Any] | None = None) -> html.Div:
    c = doc["counts"]
    return html.Div([
        _header(doc), scope_note(doc), _facts(doc), _ledger(ledger),
        section("Status and load", html.Div([_time_in_status(doc), status_chart(doc, mode)])),
        section("Gate runs" + _more(doc, "gate_runs", c["gate_runs"]),
                grid("agent-gate-runs", doc["gate_runs"], GATE_RUN_COLUMNS, mode)),
        section("Reviews" + _more(doc, "reviews", c["reviews_started"] + c["reviews_completed"]),
                grid("agent-reviews", doc["reviews"], REVIEW_COLUMNS, mode)),
        section("Defects found" + _more(doc, "defects", c["defects_found"]),
                grid("agent-defects", defect_rows(doc["defects"]), DEFECT_COLUMNS, mode, "260px")),
        section("Assignments" + _more(doc, "assignments", c["assignments"]),
                grid("agent-assignments", doc["assignments"], ASSIGN_COLUMNS, mode, "240px")),
    ], id="agent-view", **{"data-agent": doc["agent_id"]})
