"""The Reviewers page and one reviewer's page, drawn from the ledger's data (api/reviewers.py):
per-kind summary cards (people, AI agents, bots), time to first review apart from bots and AI,
the reviewers' grid (each reviewer links to its page), the gates' calibration and flakiness;
one reviewer's figures and, per figure, the events behind it."""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.entity import WHEN, fact, grid, section
from components.links import GATE, WORKFLOW, entity_link, link_column

KIND_LABELS = {"human": "People", "ai": "AI agents", "bot": "Bots", "gate": "Gates (as finders)"}
_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>])")
_NUM = "params.value == null ? '—' : "


def num(v: Any, digits: int = 1, suffix: str = "") -> str:
    return "—" if v is None else f"{v:,.{digits}f}{suffix}"


def usd(v: Any) -> str:
    return "—" if v is None else f"${v:,.2f}"


def md_link(text: str, href: str | None) -> str:
    """A markdown cell: the name as a link to `href` (escaped: names like `dependabot[bot]`)."""
    label = _MD.sub(r"\\\1", text)
    return f"[{label}]({href})" if href else label


def _fmt(kind: str) -> dict[str, Any]:
    fn = {"pct": _NUM + "params.value.toFixed(1) + ' %'", "hours": _NUM + "params.value.toFixed(2) + ' h'",
          "usd": _NUM + "'$' + params.value.toFixed(2)"}[kind]
    return {"valueFormatter": {"function": fn}, "type": "numericColumn", "minWidth": 110}


REVIEWER_COLUMNS = [
    {"field": "name", "headerName": "Reviewer", "cellRenderer": "markdown", "minWidth": 180, "pinned": "left"},
    {"field": "kind", "headerName": "Kind", "maxWidth": 110},
    {"field": "reviews_completed", "headerName": "Reviews", "type": "numericColumn", "sort": "desc"},
    {"field": "approvals", "headerName": "Approved", "type": "numericColumn"},
    {"field": "changes_requested", "headerName": "Changes req.", "type": "numericColumn"},
    {"field": "time_to_first_review", "headerName": "First review", **_fmt("hours")},
    {"field": "findings_raised", "headerName": "Findings", "type": "numericColumn"},
    {"field": "findings_accepted", "headerName": "Accepted", "type": "numericColumn"},
    {"field": "findings_dismissed", "headerName": "Dismissed", "type": "numericColumn"},
    {"field": "precision", "headerName": "Precision", **_fmt("pct")},
    {"field": "escapes", "headerName": "Escapes", "type": "numericColumn"},
    {"field": "miss_rate", "headerName": "Miss rate", **_fmt("pct")},
    {"field": "cost_per_accepted_finding", "headerName": "$ / accepted", **_fmt("usd")},
    {"field": "review_cost_usd", "headerName": "Review cost", **_fmt("usd")},
]
GATE_COLUMNS = [
    link_column("gate", GATE, "Gate", minWidth=160),
    {"field": "passes", "headerName": "Passes", "type": "numericColumn"},
    {"field": "passes_followed_by_production_defect", "headerName": "Passed, then a production defect",
     "type": "numericColumn", "minWidth": 200},
    {"field": "calibration_miss_rate", "headerName": "Calibration miss", **_fmt("pct")},
    {"field": "fails", "headerName": "Fails", "type": "numericColumn"},
    {"field": "flaky_fails", "headerName": "Failed, then passed on the same commit", "type": "numericColumn",
     "minWidth": 220},
    {"field": "flakiness", "headerName": "Flakiness", **_fmt("pct")},
]

for _col in REVIEWER_COLUMNS + GATE_COLUMNS:     # long names: wrapped headers, full name on hover
    _col.update({"wrapHeaderText": True, "autoHeaderHeight": True, "headerTooltip": _col["headerName"]})


def grid_rows(rows: Sequence[Mapping[str, Any]], timeframe: str = "24h") -> list[dict[str, Any]]:
    """Grid rows: the reviewer's name links to its page for the same timeframe."""
    return [{**row, "name": md_link(row["reviewer"], row["href"] + "?timeframe=" + timeframe if row.get("href")
                                    else None)} for row in rows]


def kind_card(kind: str, c: Mapping[str, Any]) -> dbc.Col:
    lines = [("Reviews", f"{c['reviews_completed']:,}", "reviews"),
             ("Precision", num(c["precision"], 1, " %"), "precision"),
             ("Miss rate", num(c["miss_rate"], 1, " %"), "miss_rate"),
             ("Time to first review", num(c["time_to_first_review"], 2, " h"), "ttf"),
             ("Findings accepted / dismissed", f"{c['findings_accepted']:,} / {c['findings_dismissed']:,}",
              "findings"),
             ("Escapes", f"{c['escapes']:,}", "escapes"),
             ("Cost per accepted finding", usd(c["cost_per_accepted_finding"]), "cpaf")]
    body = [html.H2(KIND_LABELS.get(kind, kind), className="h6")]
    body += [html.Div([html.Span(label, className="text-body-secondary me-2"),
                       html.Span(value, className="fw-semibold", **{"data-figure": key})],
                      className="d-flex justify-content-between small") for label, value, key in lines]
    return dbc.Col(html.Div(body, className="card card-body p-2 h-100", **{"data-kind": kind}), xs=12, md=4,
                   className="mb-2")


def first_review_card(fr: Mapping[str, Any]) -> html.Div:
    return html.Div(html.Div([
        html.Span("Time to first review, per pull request: ", className="text-body-secondary"),
        html.Span(f"any reviewer {num(fr['time_to_first_review_any'], 2, ' h')} ", id="rv-first-any"),
        html.Span(f"({fr['workflows_any']:,})", className="text-body-secondary me-3"),
        html.Span(f"first human {num(fr['time_to_first_human_review'], 2, ' h')} ", id="rv-first-human",
                  className="fw-semibold"),
        html.Span(f"({fr['workflows_human']:,})", className="text-body-secondary")]),
        className="card card-body p-2 small mb-2")


def _notes(doc: Mapping[str, Any]) -> list[Any]:
    out = []
    note = (doc.get("scope") or {}).get("note")
    if note:
        out.append(dbc.Alert(note, color="secondary", className="py-1 px-2 small", id="rv-scope"))
    if doc.get("cost_hidden"):
        out.append(html.Div("Cost figures need the permission view:cost_analysis.",
                            className="small text-body-secondary", id="rv-cost-hidden"))
    return out


def window_text(doc: Mapping[str, Any]) -> str:
    w = doc["window"]
    return f"{w['start'].replace('T', ' ').replace('Z', '')} – {w['end'].replace('T', ' ').replace('Z', '')} UTC"


def ledger_view(doc: Mapping[str, Any], mode: str = "light") -> html.Div:
    """The Reviewers page body from GET /api/reviewers' data (sanitised)."""
    kinds = doc["kinds"]
    filtered = doc.get("unfiltered")
    return html.Div([
        html.Div(window_text(doc), className="small text-body-secondary mb-2", id="rv-window"),
        *_notes(doc),
        html.Div("Filtered: findings, precision and cost per accepted finding stay computed over every "
                 "workflow (a resolution names no team).", className="small text-body-secondary mb-2",
                 id="rv-unfiltered") if filtered else None,
        dbc.Row([kind_card(k, kinds[k]) for k in ("human", "ai", "bot")], className="g-2"),
        first_review_card(doc["first_review"]),
        section("Reviewers", grid("rv-grid", grid_rows(doc["rows"], doc["timeframe"]), REVIEWER_COLUMNS, mode, height="420px")),
        section("Gates: calibration and flakiness", grid("rv-gates", doc["gates"], GATE_COLUMNS, mode,
                                                         height="240px")),
    ], **{"data-page-body": "reviewers"})


# --- one reviewer -----------------------------------------------------------------------------

FIGURE_TITLES = {"reviews_completed": "Reviews completed", "first_reviews": "First reviews (time from creation)",
                 "findings_raised": "Findings raised", "findings_accepted": "Findings accepted (fixed)",
                 "findings_dismissed": "Findings dismissed (false positive)", "findings_wont_fix": "Won't fix",
                 "escapes": "Escapes (production defects after their approval)",
                 "workflows_approved": "Pull requests approved"}
EVENT_COLUMNS = [WHEN, link_column("workflow_id", WORKFLOW, "Workflow", minWidth=160),
                 {"field": "type", "headerName": "Event", "minWidth": 170},
                 {"field": "what", "headerName": "What", "flex": 2},
                 {"field": "value", "headerName": "Hours", **_fmt("hours")},
                 {"field": "id", "headerName": "Event id", "minWidth": 150}]


def _what(figure: str, row: Mapping[str, Any]) -> str:
    d = row["event"].get("data") or {}
    ctx = row.get("context") or []
    if figure == "reviews_completed":
        return f"{d.get('verdict')}" + (f", ${d['cost_usd']}" if d.get("cost_usd") else "")
    if figure == "first_reviews":
        return "since " + (ctx[0]["timestamp"] if ctx else "?")
    if figure.startswith("findings_") and figure != "findings_raised":
        found = ctx[0]["data"] if ctx else {}
        return f"{d.get('resolution')}: {found.get('defect_id')} ({found.get('severity')}, {found.get('category')})"
    if figure == "findings_raised":
        return f"{d.get('defect_id')}: {d.get('severity')}, {d.get('category')}"
    if figure == "escapes":
        return f"{d.get('defect_id')} ({d.get('category')}), approved {ctx[0]['timestamp'] if ctx else '?'}"
    if figure == "workflows_approved":
        return "escaped: " + (ctx[0]["data"].get("defect_id", "") if ctx else "") if row.get("escaped") else "no escape"
    return ""


def event_rows(figure: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        ev = row["event"]
        out.append({"timestamp": ev["timestamp"], "workflow_id": (ev.get("data") or {}).get("workflow_id"),
                    "type": ev["type"].split(".", 1)[-1], "what": _what(figure, row), "value": row.get("value"),
                    "id": ev["id"]})
    return out


def reviewer_view(doc: Mapping[str, Any], mode: str = "light", agent_page: bool = False) -> html.Div:
    """One reviewer's page body from GET /api/reviewers/{id}'s data."""
    f = doc["figures"]
    head = [html.H1(doc["reviewer"], className="h4 mb-0 me-2"),
            dbc.Badge(doc.get("kind") or "—", color="info", className="me-2", id="rv-kind")]
    if agent_page:
        head.append(entity_link("agent", doc["reviewer"], "Agent page →"))
    facts = dbc.Row([
        fact("Reviews", f"{f['reviews_completed']:,}", "reviews_completed",
             f"{f['approvals']:,} approved, {f['changes_requested']:,} changes"),
        fact("Time to first review", num(f["time_to_first_review"], 2, " h"), "time_to_first_review",
             f"{f['first_reviews']:,} pull requests"),
        fact("Precision", num(f["precision"], 1, " %"), "precision",
             f"{f['findings_accepted']:,} accepted, {f['findings_dismissed']:,} dismissed of {f['findings_raised']:,}"
             " raised"),
        fact("Miss rate", num(f["miss_rate"], 1, " %"), "miss_rate",
             f"{f['workflows_approved_with_escape']:,} of {f['workflows_approved']:,} approved"),
        fact("Escapes", f"{f['escapes']:,}", "escapes"),
        fact("Cost per accepted finding", usd(f["cost_per_accepted_finding"]), "cost_per_accepted_finding",
             "review cost " + usd(f["review_cost_usd"])),
    ], className="g-2")
    sections = [section(f"{FIGURE_TITLES[name]} ({doc['counts'][name]:,})",
                        grid(f"rv-rows-{name}", event_rows(name, rows), EVENT_COLUMNS, mode, height="260px"))
                for name, rows in doc["rows"].items()]
    return html.Div([
        html.Div(head, className="d-flex align-items-center mb-1"),
        html.Div(window_text(doc), className="small text-body-secondary mb-2", id="rv-window"),
        *_notes(doc),
        html.Div("Some of the reviewer's events were left out (more than the page reads).",
                 className="small text-warning") if doc.get("truncated") else None,
        facts, *sections,
    ], **{"data-page-body": "reviewer"})


def not_found(reviewer: str) -> html.Div:
    return html.Div([html.H1("No such reviewer", className="h4"), html.P(html.Code(reviewer)),
                     dcc.Link("All reviewers", href="/reviewers")], className="py-4", id="rv-not-found")


def refused() -> html.Div:
    return html.Div([html.H1("Not shown", className="h4"),
                     html.P("Your role sees this reviewer's figures only without their name."),
                     dcc.Link("All reviewers", href="/reviewers")], className="py-4", id="rv-refused")


def message(text: str) -> html.Div:
    return dbc.Alert(text, color="warning", className="py-1 px-2 small", id="rv-message")
