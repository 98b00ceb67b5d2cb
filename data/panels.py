"""What each role dashboard shows besides its KPI cards, as plain data: one call per
refresh reads the engine and the state lists once and hands everything to components."""
from __future__ import annotations

from typing import Any

import orjson

from data.contrib import DEFECTS, MAIN, MICRO, USER
from data import scopes
from data.engine import Engine, plan
from data.health import health
from data.rawstore import events_between
from data.timeutil import now_ms
# The ROI and risk rules live with the other computed views (dashboards.computed reads them too).
from data.views import DEFAULT_ROI, quality_risks, roi  # noqa: F401

TREND_POINTS = 48
# The series the shared dashboards draw (warmed by live.publisher for each data version).
CHART_SERIES = ("overall_quality_score", "gate_pass_rate", "compliance_adherence", "cost_per_review",
                "error_rate", "defects_found")


def state_rows(engine: Engine, kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in engine.r.hvals(engine.k.state(kind))]


def panel_data(engine: Engine, name: str, timeframe: str, user: str | None, sanitize: Any,
               roi_assumptions: dict[str, float] | None = None, view: dict[str, str] | None = None) -> dict[str, Any]:
    """KPI widgets plus the dashboard's widget data: series, state lists (sanitised).

    `view` may filter by one repository or team (KPIs and series that can be split, see
    data.scopes), by gate (QA: the gate KPIs and chart) and by agent (operations: the grid).
    Every list of rows that names people or workflows leaves through `sanitize` here, once
    (a second pass would pseudonymise a pseudonym); `scope` maps a widget id to what the
    team scope did to its rows (auth.sanitize.Sanitizer.scope_info)."""
    view = view or {}
    dim = next((d for d in scopes.DIMENSIONS if view.get(d)), None)
    scope = scopes.label(dim, view[dim]) if dim else None
    out = engine.dashboard(name, timeframe, user=user, scope=scope)
    gate = view.get("gate")
    if gate and name == "qa":   # other gates' KPIs leave the page; the gate's own stay
        prefix = f"gate.{gate}."
        out = {**out, "data": {**out["data"], "widgets": [w for w in out["data"]["widgets"]
                                                          if not w["id"].startswith("gate.") or w["id"].startswith(prefix)]}}
    kpis = {w["id"]: w["data"] for w in out["data"]["widgets"]}
    data: dict[str, Any] = {"dashboard": out, "kpis": kpis, "view": view, "scope": {}}

    def clean(widget: str, rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        rows = sanitize.events(rows) if kind == "events" else sanitize.rows(rows, kind=kind)
        data["scope"][widget] = sanitize.scope_info(sanitize.last_scoped)
        return rows
    if name == "executive":
        data["trends"] = [engine.series(m, timeframe, points=TREND_POINTS, scope=scope, shared=True)
                          for m in ("overall_quality_score", "gate_pass_rate", "compliance_adherence")]
        data["cost"] = engine.series("cost_per_review", timeframe, points=TREND_POINTS, scope=scope, shared=True)
        data["teams"] = engine.breakdown(USER, timeframe).get("tm", {})
        # Cost analysis: what reviews cost per team and per repository (their workflows').
        data["cost_split"] = engine.cost_by_scope(timeframe)
        sums = engine.window_sums(MAIN, ["rc", "cost"], timeframe)
        data["roi"] = roi(sums["rc"], sums["cost"] / MICRO, roi_assumptions)
        # Executives (view:all_metrics) see the quality risks without opening the QA dashboard.
        qa = engine.dashboard("qa", timeframe)["data"]["widgets"]
        data["risks"] = quality_risks({w["id"]: w["data"] for w in qa})
    elif name == "operational":
        data["queues"] = sorted(state_rows(engine, "queues"), key=lambda q: q["queue"])
        data["agents"] = sorted((a for a in state_rows(engine, "agents")
                                 if not view.get("agent") or a["agent_id"] == view["agent"]), key=lambda a: a["agent_id"])
        data["errors"] = engine.series("error_rate", timeframe, points=TREND_POINTS, shared=True)
        data["health"] = health(engine.r, engine.k)
        p = plan(timeframe, None, now_ms(), engine.skew_ms, 1)
        errors, _ = events_between(engine.r, engine.k, ("system.error_occurred",), p.bounds[1], p.bounds[0], 500)
        data["error_log"] = clean("ops-error-log", errors, "events")
    elif name == "qa":
        data["violations"] = clean("qa-compliance", state_rows(engine, "violations"), "violations")
        data["defects"] = engine.series("defects_found", timeframe, points=TREND_POINTS, scope=scope, shared=True)
        found = engine.breakdown(DEFECTS, timeframe)
        data["defect_breakdown"] = {"severity": found.get("sev", {}), "category": found.get("cat", {}),
                                    "stage": found.get("stage", {})}
        data["risks"] = quality_risks(kpis)
    elif name == "developer" and user:
        active = state_rows(engine, "active")
        data["my_prs"] = clean("dev-kanban", [r for r in active if r.get("author") == user], "workflows")
        data["my_reviews"] = clean("dev-queue", sorted((r for r in state_rows(engine, "reviews")
                                                        if r.get("reviewer") == user), key=lambda r: r["since"]),
                                   "reviews")
        # Waiting longest first: active, in code review, nobody has started reviewing.
        waiting = [r for r in active if r.get("step") == "code_review" and not r.get("review_started")
                   and r.get("author") != user]
        data["suggested"] = clean("dev-suggested", sorted(waiting, key=lambda r: r.get("step_since") or "")[:10],
                                  "workflows")
    return data


def gate_data(engine: Engine, gate: str, timeframe: str) -> dict[str, Any]:
    """The gate drill-down: its KPIs and its pass rate over time."""
    prefix = f"gate.{gate}."
    out = engine.dashboard("qa", timeframe, only={prefix + m for m in ("pass_rate", "executions", "p95_time")})
    return {"dashboard": out, "kpis": {w["id"]: w["data"] for w in out["data"]["widgets"]},
            "series": engine.series(prefix + "pass_rate", timeframe, points=TREND_POINTS, shared=True)}
