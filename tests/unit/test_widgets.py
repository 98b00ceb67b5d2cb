"""Widget builders (components/): plain data in, the expected traces, values and colours out.

No Redis, no browser: figures and component trees are inspected as Python objects.
"""
from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import plotly.graph_objects as go
import pytest
from dash import dcc, html

from components import theme
from components.common import walk
from components.charts import level
from components.common import STEPS
from components.ops import age, queue_level
from components.quality import gates_from_kpis
from components.system import PLAIN_ERROR_ROWS
from components.widgets import REGISTRY, UnknownWidget, render, render_widget
from components import widgets as w

LIGHT, DARK = theme.PALETTES["light"], theme.PALETTES["dark"]


# ---------------------------------------------------------------- helpers

def text(c: Any) -> str:
    if isinstance(c, (list, tuple)):
        return " ".join(text(x) for x in c)
    if isinstance(c, (str, int, float)):
        return str(c)
    if c is None:
        return ""
    return text(getattr(c, "children", None))


def by_class(c: Any, cls: str) -> list[Any]:
    return [x for x in walk(c) if cls in (getattr(x, "className", None) or "").split()]


def fig(out: Any) -> go.Figure:
    assert isinstance(out, dcc.Graph), out
    return go.Figure(out.figure)          # the Graph holds the figure's JSON


def gauge(out: Any) -> dict[str, Any]:
    """An HTML gauge's reading: value, range, level, colour role, bands, and what it shows."""
    assert isinstance(out, html.Div) and "qms-gauge" in out.className.split(), out
    a = lambda k: getattr(out, k)                                   # noqa: E731
    return {"value": a("data-value"), "range": (a("data-min"), a("data-max")), "level": a("data-level"),
            "colour": a("data-colour"), "bands": [b for b in a("data-bands").split("|") if b],
            "shown": text(by_class(out, "qg-value")[0]), "arc": by_class(out, "qg-arc")[0].style["background"],
            "aria": (out.role, a("aria-valuenow"), a("aria-valuemin"), a("aria-valuemax"))}


def bars(out: Any) -> list[dict[str, Any]]:
    """An HTML bar list's rows: key, value, role, the text shown and the bar's width."""
    assert isinstance(out, html.Div) and "qms-bars" in out.className.split(), out
    rows = []
    for r in by_class(out, "qb-row"):
        fill = by_class(r, "qb-fill")
        rows.append({"key": getattr(r, "data-key"), "value": getattr(r, "data-value"), "role": getattr(r, "data-role"),
                     "label": text(by_class(r, "qb-label")[0]), "text": text(by_class(r, "qb-num")[0]),
                     "width": float(fill[0].style["width"].rstrip("%")) if fill else None,
                     "colour": fill[0].style["background"] if fill else None,
                     "track": by_class(r, "qb-track")[0].style, "title": r.title})
    return rows


def is_placeholder(out: Any) -> bool:
    return isinstance(out, html.Div) and "widget-no-data" in (out.className or "").split() and out.children == "no data"


def series(values: list[Any], metric: str = "gate_pass_rate", unit: str = "percentage") -> dict[str, Any]:
    return {"metric": metric, "unit": unit, "points": [
        {"t": f"2025-08-17T00:{i // 60 % 60:02d}:{i % 60:02d}Z", "end": f"e{i}", "value": v} for i, v in enumerate(values)]}


AGENTS = [
    {"agent_id": "qms-sec", "status": "overloaded", "load": 0.95, "skills": ["security"], "since": "2025-08-17T06:00:00Z"},
    {"agent_id": "qms-arch", "status": "active", "load": 0.5, "skills": ["architecture", "security"],
     "since": "2025-08-17T05:00:00Z"},
    {"agent_id": "qms-perf", "status": "down", "load": None, "skills": ["performance"], "since": "2025-08-17T04:00:00Z"},
]
ACTIVE = [
    {"workflow_id": "WF-1", "author": "ana", "team": "core", "repository": "svc", "pr_number": 1,
     "created": "2025-08-17T01:00:00Z", "step": "code_review", "step_since": "2025-08-17T03:00:00Z", "review_started": True},
    {"workflow_id": "WF-2", "author": "bo", "team": "web", "repository": "ui", "pr_number": 2,
     "created": "2025-08-17T01:00:00Z", "step": "code_review", "step_since": "2025-08-17T02:00:00Z", "review_started": False},
    {"workflow_id": "WF-3", "author": "cy", "team": "web", "repository": "ui", "pr_number": 3,
     "created": "2025-08-17T01:00:00Z", "step": "final_approval", "step_since": "2025-08-17T04:00:00Z",
     "review_started": True},
]
ERRORS = [
    {"id": "e1", "type": "system.error_occurred", "timestamp": "2025-08-17T06:00:00Z", "source": "x",
     "data": {"component": "aggregator", "error_type": "timeout", "severity": "warning", "message": "slow"}},
    {"event": {"id": "e2", "type": "system.error_occurred", "timestamp": "2025-08-17T07:00:00Z", "source": "x",
               "data": {"component": "api", "error_type": "5xx", "severity": "critical", "message": "boom"}}},
]
AUDIT = [{"id": "aud-1", "type": "auth.sign_in", "timestamp": "2025-08-17T06:00:00.000Z", "source": "qms-dashboard",
          "data": {"user": "ana", "ip": "10.0.0.1", "outcome": "ok", "role": "admin"}, "metadata": {"priority": "normal"}},
         {"id": "aud-2", "type": "authz.denied", "timestamp": "2025-08-17T06:01:00.000Z", "source": "qms-dashboard",
          "data": {"user": "bo", "ip": None, "outcome": "denied", "permission": "admin.users"}}]
GATES = [{"gate": "code-coverage-gate", "pass_rate": 95.0, "executions": 40, "p95_time": 3.25},
         {"gate": "security-scan", "pass_rate": 80.0, "executions": 12, "p95_time": 11.0},
         {"gate": "lint", "pass_rate": 60.0, "executions": 5, "p95_time": None}]
HEALTH = {"status": "degraded", "timestamp": "2025-08-17T06:00:00Z", "checks": {
    "redis": {"status": "healthy"}, "aggregator": {"status": "degraded", "backlog": 12, "last_batch_age_s": 75.5},
    "disk": {"status": "healthy", "free_bytes": 3 * 2**30}}}
ALERTS = [{"name": "High Queue Depth", "severity": "warning", "state": "firing", "labels": {"queue": "code_review"},
           "since": "2025-08-17T06:00:00Z"},
          {"name": "Agent down", "severity": "critical", "state": "pending", "labels": {"agent": "qms-perf"},
           "since": "2025-08-17T06:30:00Z"},
          {"name": "Old", "severity": "critical", "state": "resolved"}]

# One realistic input per registry entry (for the theme, id and registry tests).
SAMPLES: dict[str, Any] = {
    "kpi_card": {"id": "gate_pass_rate", "type": "kpi_card",
                 "data": {"current_value": 90.0, "previous_value": 80.0, "trend": "up", "unit": "percentage"}},
    "metric_trend": series([90, None, 80]), "quality_trends": series([1, 2]),
    "gauge_chart": {"current_value": 87.3, "unit": "percentage", "thresholds": {"warning": 90, "critical": 80}},
    "progress_bar": {"value": 45, "target": 60},
    "comparison_chart": [{"label": "a", "value": 1, "previous": 2}],
    "pipeline_visualizer": {"dor_validation": 5, "code_review": 3, "dod_validation": 1, "final_approval": 0},
    "queue_monitor": [{"queue": "code_review", "depth": 15, "since": "2025-08-17T06:00:00Z"}],
    "timeline_view": ERRORS, "kanban_board": ACTIVE, "agent_status_grid": AGENTS, "workload_heatmap": AGENTS,
    "skill_matrix": AGENTS, "performance_radar": {"quality": 80, "speed": 70, "cost": 60},
    "defect_distribution": {"critical": 1, "major": 2, "minor": 3}, "gate_performance": GATES,
    "compliance_status": {"compliance_checks_passed": 94.1, "violations": []},
    "risk_assessment": [{"name": "r", "likelihood": 2, "impact": 4}],
    "risk_matrix": [{"name": "r", "likelihood": 2, "impact": 4}],
    "system_health": HEALTH, "error_log_viewer": ERRORS, "alert_summary": ALERTS, "audit_log": AUDIT,
    # the types added with dashboards as data (issue 11)
    "gate_table": GATES,
    "code_quality": [{"t": "2025-08-17T00:00:00Z", "gate": "sonar", "metric": "complexity", "value": 12}],
    "test_coverage": [{"t": "2025-08-17T00:00:00Z", "repository": "svc", "coverage": 81.5}],
    "team_collaboration": [{"reviewer_team": "core", "author_team": "web", "reviews": 4}],
    "achievement_tracker": [{"milestone": "First review", "achieved": True, "at": "2025-08-17T00:00:00Z"}],
    "skill_development": [{"t": "2025-08-17T00:00:00Z", "category": "security", "defects": 2}],
    "table": ACTIVE, "stat_group": [{"label": "Reviews", "value": 12, "unit": "count"}],
}
FIGURE_WIDGETS = [n for n in SAMPLES if isinstance(render(n, SAMPLES[n]), dcc.Graph)]


# ---------------------------------------------------------------- theme

def test_wid001_palettes_are_the_seeds():
    assert {k: LIGHT[k] for k in ("primary", "secondary", "success", "warning", "danger", "background", "surface",
                                  "text")} == {"primary": "#2563eb", "secondary": "#64748b", "success": "#10b981",
                                               "warning": "#f59e0b", "danger": "#ef4444", "background": "#ffffff",
                                               "surface": "#f8fafc", "text": "#1e293b"}
    assert (DARK["primary"], DARK["background"], DARK["text"], DARK["danger"]) == ("#3b82f6", "#0f172a", "#f1f5f9",
                                                                                     "#f87171")


def test_wid002_dark_template_differs_from_light():
    lt, dk = theme.plotly_template("light").layout, theme.plotly_template("dark").layout
    assert (lt.paper_bgcolor, lt.plot_bgcolor, lt.font.color) == ("#ffffff", "#ffffff", "#1e293b")
    assert (dk.paper_bgcolor, dk.plot_bgcolor, dk.font.color) == ("#0f172a", "#0f172a", "#f1f5f9")
    assert lt.colorway[0] == LIGHT["primary"] and dk.colorway[0] == DARK["primary"]
    assert lt.colorway != dk.colorway
    assert lt.xaxis.gridcolor == LIGHT["grid"] != dk.xaxis.gridcolor == DARK["grid"]
    assert theme.plotly_template("nonsense").layout.paper_bgcolor == "#ffffff"


def test_wid003_apply_and_status_colours():
    shared = theme.apply({}, "dark")              # a figure's JSON: the template by reference
    assert shared["layout"]["template"]["layout"]["paper_bgcolor"] == DARK["background"]
    f = go.Figure(shared)
    f.layout.template.layout.paper_bgcolor = "red"  # a figure's copy, not the shared template
    assert theme.plotly_template("dark").layout.paper_bgcolor == DARK["background"]
    assert theme.apply({}, "dark")["layout"]["template"]["layout"]["paper_bgcolor"] == DARK["background"]
    for status in ("active", "idle", "overloaded", "down", "training", "critical", "major", "minor", "pass", "fail"):
        assert theme.STATUS_COLORS["light"][status] != theme.STATUS_COLORS["dark"][status]
    assert theme.STATUS_COLORS["light"]["overloaded"] == LIGHT["warning"]
    assert theme.STATUS_COLORS["dark"]["down"] == DARK["danger"]
    assert theme.STATUS_COLORS["light"]["pass"] == LIGHT["success"] and theme.STATUS_COLORS["light"]["fail"] == LIGHT["danger"]
    assert theme.status_bs("overloaded") == "warning" and theme.status_bs("mystery") == "secondary"
    assert "#0f172a" in theme.grid_theme("dark")["function"] and "#ffffff" in theme.grid_theme("light")["function"]


@pytest.mark.parametrize("name", FIGURE_WIDGETS)
def test_wid004_every_figure_gets_the_theme(name):
    for mode, pal in (("light", LIGHT), ("dark", DARK)):
        f = fig(render(name, SAMPLES[name], mode=mode))
        assert f.layout.template.layout.paper_bgcolor == pal["background"]
        assert f.layout.template.layout.font.color == pal["text"]


# ---------------------------------------------------------------- metrics widgets

def test_wid005_metric_trend_keeps_gaps():
    f = fig(w.metric_trend(series([90.0, None, 80.5, None])))
    (tr,) = f.data
    assert isinstance(tr, go.Scatter)
    assert list(tr.y) == [90.0, None, 80.5, None]
    assert tr.connectgaps is False
    assert list(tr.x)[:2] == ["2025-08-17T00:00:00Z", "2025-08-17T00:00:01Z"]
    assert f.layout.yaxis.ticksuffix == "%" and f.layout.title.text == "Gate pass rate"


def test_wid006_metric_trend_uses_webgl_beyond_1000_points():
    assert isinstance(fig(w.metric_trend(series(list(range(1000))))).data[0], go.Scatter)
    big = fig(w.metric_trend(series([None if i % 7 == 0 else i for i in range(1001)]))).data[0]
    assert isinstance(big, go.Scattergl)
    assert big.y[0] is None and big.y[7] is None and big.y[1] == 1
    two = fig(w.metric_trend([series([1, 2], "cost_per_review", "usd"), series([3, None], "time_to_merge", "hours")]))
    assert [t.name for t in two.data] == ["Cost per review", "Time to merge"] and two.layout.showlegend


def test_wid007_gauge_value_range_and_threshold_colours():
    g = gauge(w.gauge_chart(87.3, "percentage", {"warning": 90, "critical": 80}, title="SLA adherence"))
    assert g["value"] == 87.3 and g["range"] == (0, 100) and g["shown"] == "87.3%"
    assert g["level"] == "warning" and g["colour"] == "warning" and len(g["bands"]) == 3
    # the value's arc turns 87.3 % of the half turn, in the level's colour (a theme variable)
    assert g["arc"].startswith("conic-gradient(from -90deg at 50% 100%, var(--bs-warning) 0deg 157.1deg")
    # bands: below 80 critical, 80-90 warning, above ok (higher is better: critical < warning)
    assert [b.split(" ")[0] for b in g["bands"]] == ["rgba(var(--bs-danger-rgb),", "rgba(var(--bs-warning-rgb),",
                                                     "rgba(var(--bs-success-rgb),"]
    assert g["bands"][0].endswith("0.0deg 144.0deg") and g["bands"][1].endswith("144.0deg 162.0deg")
    assert g["aria"] == ("meter", 87.3, 0, 100)
    assert gauge(w.gauge_chart(95, "percentage", {"warning": 90, "critical": 80}))["colour"] == "success"
    # lower is better (critical above warning): a queue depth of 25; the theme is CSS's, not the mode's
    deep = gauge(w.gauge_chart(25, "count", {"warning": 10, "critical": 20}, mode="dark"))
    assert deep["level"] == "critical" and deep["colour"] == "danger"
    assert gauge(w.gauge_chart({"current_value": 4.1, "unit": "score"}))["range"] == (1, 5)
    assert gauge(w.gauge_chart(4.1, "score"))["colour"] == "primary"           # no thresholds: no level
    assert is_placeholder(w.gauge_chart(None, "percentage")) and is_placeholder(w.gauge_chart({"current_value": None}))


def test_wid008_levels():
    higher = {"warning": 90, "critical": 80}
    assert [level(v, higher) for v in (95, 90, 85, 80, 10)] == ["ok", "warning", "warning", "critical", "critical"]
    lower = {"warning": 10, "critical": 20}
    assert [level(v, lower) for v in (0, 10, 19, 20)] == ["ok", "warning", "warning", "critical"]
    assert level(None, higher) is None and level(5, None) is None


def test_wid009_progress_bar():
    out = w.progress_bar(45, 60, unit="count", label="Reviews")
    (bar,) = [c for c in walk(out) if type(c).__name__ == "Progress"]
    assert bar.value == 75.0 and bar.label == "75%" and bar.color == "primary"
    assert "45 / 60" in text(out) and "Reviews" in text(out)
    over = [c for c in walk(w.progress_bar(90, 60)) if type(c).__name__ == "Progress"][0]
    assert over.value == 100.0 and over.label == "150%" and over.color == "success"
    assert is_placeholder(w.progress_bar(None, 60)) and is_placeholder(w.progress_bar(5, None))
    assert is_placeholder(w.progress_bar(5, 0))
    assert [c for c in walk(render("progress_bar", (1, 4))) if type(c).__name__ == "Progress"][0].value == 25.0


def test_wid010_comparison_chart():
    f = fig(w.comparison_chart([{"label": "a", "value": 1, "previous": 2}, {"label": "b", "value": None, "previous": 4}]))
    prev, cur = f.data
    assert (prev.name, cur.name) == ("previous", "current")
    assert list(cur.y) == [1.0, None] and list(prev.y) == [2.0, 4.0]
    only = fig(w.comparison_chart({"x": 3, "y": 4}))
    assert len(only.data) == 1 and list(only.data[0].x) == ["x", "y"]
    widgets = [{"id": "gate_pass_rate", "type": "kpi_card", "data": {"current_value": 90, "previous_value": 85}}]
    assert list(fig(w.comparison_chart(widgets)).data[1].x) == ["Gate pass rate"]


# ---------------------------------------------------------------- workflow widgets

def test_wid011_pipeline_counts_in_step_order():
    b = bars(w.pipeline_visualizer({"final_approval": 4, "code_review": 23, "dod_validation": None, "dor_validation": 0}))
    assert [r["key"] for r in b] == list(STEPS)
    assert [r["value"] for r in b] == [0.0, 23.0, "", 4.0]        # a 0 computed is shown, a None is no bar
    assert [r["text"] for r in b] == ["0", "23", "no data", "4"]
    assert [r["width"] for r in b] == [0.0, 100.0, None, round(4 / 23 * 100, 2)]
    assert [r["label"].split(". ", 1)[1] for r in b] == ["DoR validation", "Code review", "DoD validation",
                                                        "Final approval"]
    kpis = {"in_progress_reviews": {"current_value": 7}, "pending_dor_validations": {"current_value": 2},
            "awaiting_dod_validation": {"current_value": 1}, "final_approvals_needed": {"current_value": 3}}
    assert [r["value"] for r in bars(w.pipeline_visualizer(kpis))] == [2.0, 7.0, 1.0, 3.0]
    assert [r["value"] for r in bars(w.pipeline_visualizer(ACTIVE + [{"workflow_id": "WF-9", "step": None}]))] == \
        [0.0, 2.0, 0.0, 1.0]


def test_wid012_queue_bars_coloured_by_threshold():
    rows = [{"queue": q, "depth": d} for q, d in (("a", 9), ("b", 10), ("c", 19), ("d", 20), ("e", None))]
    b = bars(w.queue_monitor(rows + [{"queue": "f", "depth": 3, "since": "2025-08-17T06:00:00Z"}]))
    assert [r["key"] for r in b] == ["a", "b", "c", "d", "e", "f"]
    assert [r["value"] for r in b] == [9.0, 10.0, 19.0, 20.0, "", 3.0]
    assert [r["role"] for r in b] == ["success", "warning", "warning", "danger", "secondary", "success"]
    assert b[0]["colour"] == "var(--bs-success)" and b[4]["width"] is None and b[4]["text"] == "no data"
    # the scale ends 15 % past the deepest queue or threshold (23); thresholds are lines on every track
    assert b[3]["width"] == round(20 / 23 * 100, 2)
    track = b[0]["track"]["backgroundImage"]
    assert f"var(--bs-warning) calc({10 / 23 * 100:.2f}% - 1px)" in track and f"var(--bs-danger) calc({20 / 23 * 100:.2f}% - 1px)" in track
    assert b[5]["title"] == "f: 3, since 2025-08-17 06:00:00 UTC"
    dark = bars(w.queue_monitor({"queue_depth.code_review": 15, "queue_depth.dor": 3}, warning=5, critical=12,
                                mode="dark"))
    assert [r["key"] for r in dark] == ["code_review", "dor"] and [r["role"] for r in dark] == ["danger", "success"]
    assert [queue_level(d) for d in (None, 0, 10, 20)] == [None, "ok", "warning", "critical"]


def test_wid013_timeline_view():
    evs = ERRORS + [{"id": "p1", "type": "workflow.pr_created", "timestamp": "2025-08-17T05:00:00Z",
                     "data": {"workflow_id": "WF-1", "pr_number": 1}}]
    f = fig(w.timeline_view(evs))
    assert [t.name for t in f.data] == ["system", "workflow"]
    assert list(f.data[0].customdata) == ["e1", "e2"] and list(f.data[1].y) == ["workflow.pr_created"]
    assert "workflow_id=WF-1" in f.data[1].hovertext[0]
    many = [{"id": f"x{i}", "type": "user.filter_applied", "timestamp": f"2025-08-17T06:00:{i % 60:02d}Z"}
            for i in range(1001)]
    assert isinstance(fig(w.timeline_view(many)).data[0], go.Scattergl)


def test_wid014_kanban_columns_are_the_steps():
    out = w.kanban_board(ACTIVE, now="2025-08-17T05:30:00Z")
    cols = by_class(out, "kanban-column")
    assert [getattr(c, "data-step") for c in cols] == list(STEPS)
    cards = {c.id["workflow"]: c for c in by_class(out, "kanban-card")}
    assert set(cards) == {"WF-1", "WF-2", "WF-3"}
    review = [c.id["workflow"] for c in by_class(cols[1], "kanban-card")]
    assert review == ["WF-2", "WF-1"]  # longest in the step first
    assert [text(b) for b in by_class(out, "kanban-count")] == ["0", "2", "0", "1"]
    assert "in step 3h 30m" in text(cards["WF-2"]) and "reviewing" in text(cards["WF-1"])
    assert "reviewing" not in text(cards["WF-2"]) and "ui #2" in text(cards["WF-2"])
    extra = w.kanban_board(ACTIVE + [{"workflow_id": "WF-4", "step": None}])
    assert [getattr(c, "data-step") for c in by_class(extra, "kanban-column")] == [*STEPS, "none"]
    assert age("2025-08-17T00:00:00Z", "2025-08-18T02:00:00Z") == "1d 2h" and age(None, "x") is None


def test_wid015_agent_status_grid():
    out = w.agent_status_grid(AGENTS)
    tiles = by_class(out, "agent-tile")
    assert [t.id["agent"] for t in tiles] == ["qms-arch", "qms-perf", "qms-sec"]
    assert [b.color for b in by_class(out, "agent-status")] == ["success", "danger", "warning"]
    assert [text(b) for b in by_class(out, "agent-count")] == ["active 1", "overloaded 1", "down 1"]
    loads = by_class(out, "agent-load")
    assert [(p.value, p.label) for p in loads] == [(50.0, "50%"), (95.0, "95%")]
    assert "load: no data" in text(tiles[1]) and "0%" not in text(tiles[1])
    skills = {t.id["agent"]: text(t) for t in tiles}
    assert "architecture · security" in skills["qms-arch"] and "performance" in skills["qms-perf"]


def test_wid016_workload_heatmap():
    hm = fig(w.workload_heatmap(AGENTS)).data[0]
    assert list(hm.x) == ["architecture", "performance", "security"]
    assert list(hm.y) == ["qms-arch", "qms-perf", "qms-sec"]
    assert [list(r) for r in hm.z] == [[50.0, None, 50.0], [None, None, None], [None, None, 95.0]]
    assert (hm.zmin, hm.zmax) == (0, 100)
    no_skills = fig(w.workload_heatmap([{"agent_id": "a", "load": 0.25}])).data[0]
    assert list(no_skills.x) == ["load"] and [list(r) for r in no_skills.z] == [[25.0]]
    m = fig(w.workload_heatmap({"x": ["09h", "10h"], "y": ["a"], "z": [[1, None]]})).data[0]
    assert list(m.z[0]) == [1, None]


def test_wid017_performance_radar_axes():
    f = fig(w.performance_radar({"gate_pass_rate": 90, "sla_adherence": None, "speed": 70},
                                compare={"gate_pass_rate": 80, "sla_adherence": 60, "speed": 50}))
    prev, cur = f.data
    assert list(cur.theta) == ["Gate pass rate", "SLA adherence", "Speed", "Gate pass rate"]
    assert list(cur.r) == [90.0, None, 70.0, 90.0] and list(prev.r) == [80.0, 60.0, 50.0, 80.0]
    assert tuple(f.layout.polar.radialaxis.range) == (0, 100)


# ---------------------------------------------------------------- quality widgets

def test_wid018_defect_distribution():
    (bar,) = fig(w.defect_distribution({"minor": 3, "critical": 1, "major": None})).data
    assert list(bar.x) == ["critical", "major", "minor"] and list(bar.y) == [1.0, None, 3.0]
    assert list(bar.marker.color) == [LIGHT["danger"], LIGHT["warning"], LIGHT["primary"]]
    rows = [{"defect_id": "d1", "severity": "major", "workflow_id": "w", "found": "t"},
            {"event": {"id": "x", "type": "workflow.defect_found", "timestamp": "t",
                       "data": {"defect_id": "d2", "severity": "major", "category": "security"}}}]
    sev, cat = fig(w.defect_distribution(rows)).data
    assert (list(sev.x), list(sev.y)) == (["major"], [2.0]) and (list(cat.x), list(cat.y)) == (["security"], [1.0])
    cats = fig(w.defect_distribution({"category": {"style": 1, "security": 5}})).data[0]
    assert list(cats.x) == ["security", "style"]


def test_wid019_gate_bars_carry_gate_names_and_p95():
    f = fig(w.gate_performance(GATES))
    bars, p95 = f.data
    assert list(bars.customdata) == ["code-coverage-gate", "security-scan", "lint"]
    assert list(bars.y) == [95.0, 80.0, 60.0]
    assert list(bars.marker.color) == [LIGHT["success"], LIGHT["warning"], LIGHT["danger"]]
    assert "p95 3.2 min" in bars.text[0] and "p95 11.0 min" in bars.text[1] and bars.text[2] == "60.0%"
    assert list(p95.y) == [3.25, 11.0, None] and list(p95.customdata) == list(bars.customdata)
    assert p95.yaxis == "y2"
    kpis = {"gate.lint.pass_rate": {"current_value": 50.0}, "gate.lint.executions": 2, "gate.lint.p95_time": 1.5,
            "gate.a.b.pass_rate": 10, "gate_pass_rate": 70}
    assert gates_from_kpis(kpis) == [{"gate": "a.b", "pass_rate": 10.0},
                                     {"gate": "lint", "pass_rate": 50.0, "executions": 2.0, "p95_time": 1.5}]
    assert list(fig(w.gate_performance(kpis)).data[0].customdata) == ["a.b", "lint"]


def test_wid020_compliance_status():
    out = w.compliance_status({"compliance_adherence": {"current_value": 96.0}, "audit_readiness_score": 85.0,
                               "policy_violations": 6, "remediation_pending": 0,
                               "violations": [{"workflow_id": "WF-2", "policy": "p2", "failed_checks": 1,
                                               "since": "2025-08-17T07:00:00Z"},
                                              {"workflow_id": "WF-1", "policy": "p1", "failed_checks": 2,
                                               "since": "2025-08-17T06:00:00Z"}]})
    tiles = by_class(out, "compliance-tile")
    assert [getattr(t, "data-kpi") for t in tiles] == ["compliance_checks_passed", "audit_readiness_score",
                                                       "policy_violations", "remediation_pending"]
    assert "96.0%" in text(tiles[0]) and "85.0%" in text(tiles[1]) and "6" in text(tiles[2]) and "0" in text(tiles[3])
    table = text(by_class(out, "compliance-violations"))
    assert table.index("WF-1") < table.index("WF-2")
    partial = w.compliance_status({"compliance_checks_passed": 99.0, "violations": []})
    assert by_class(partial, "compliance-none") and "no data" in text(by_class(partial, "compliance-tile")[1])


def test_wid021_risk_matrix():
    f = fig(w.risk_matrix([{"name": "r1", "likelihood": "high", "impact": 3},
                           {"name": "r2", "likelihood": 4, "impact": 3, "status": "mitigated"},
                           {"name": "skip", "likelihood": None, "impact": 2}]))
    grid, pts = f.data
    assert len(grid.z) == 5 and grid.z[4][4] == 25
    assert list(pts.customdata) == ["r1", "r2"]
    assert (pts.x[0], pts.y[0]) == (3, 4) and (pts.x[1], pts.y[1]) != (3, 4)  # same cell, spread apart
    assert list(pts.marker.symbol) == ["circle", "circle-open"]


# ---------------------------------------------------------------- system widgets

def test_wid022_system_health():
    out = w.system_health(HEALTH)
    assert [c.id["check"] for c in by_class(out, "health-check")] == ["redis", "aggregator", "disk"]
    assert [b.color for b in by_class(out, "health-status")] == ["success", "warning", "success"]
    assert by_class(out, "health-overall")[0].color == "warning"
    body = text(out)
    assert "backlog: 12" in body and "75.5 s" in body and "3.0 GiB" in body
    seed_form = w.system_health([{"name": "db", "status": "healthy"}, {"name": "ws", "status": "unhealthy",
                                                                         "details": "refused"}])
    assert by_class(seed_form, "health-overall")[0].color == "warning" and "refused" in text(seed_form)


def test_wid023_error_log_viewer_table_then_grid():
    table = w.error_log_viewer(ERRORS, id="errors")
    assert isinstance(table, html.Div) and table.id == "errors" and getattr(table, "data-widget") == "error_log_viewer"
    rows = [[text(td) for td in tr.children] for tr in by_class(table, "error-log-table")[0].children[1].children]
    assert rows[0] == ["2025-08-17 07:00:00", "critical", "api", "5xx", "boom"] and len(rows) == 2   # newest first
    assert "text-danger" in by_class(table, "col-severity")[0].className
    # more errors than the tile shows: the newest, and a link to the rest on the events page
    many = [{"id": f"e{i:03d}", "timestamp": f"2025-08-17T07:{i // 60:02d}:{i % 60:02d}Z", "type": "system.error_occurred",
             "data": {"severity": "warning", "component": "api", "error_type": "5xx", "message": f"m{i}"}}
            for i in range(40)]
    linked = w.error_log_viewer(many, more_href="/events/error_rate?timeframe=24h")
    body = by_class(linked, "error-log-table")[0].children[1].children
    assert len(body) == PLAIN_ERROR_ROWS == 15 and getattr(body[0], "data-id") == "e039"
    more = by_class(linked, "error-log-more")[0]
    assert more.href == "/events/error_rate?timeframe=24h" and "newest 15 of 40" in text(more)
    # without a page for the rest, all of them in a virtual-scrolling grid
    grid = w.error_log_viewer(many, id="errors")
    assert isinstance(grid, dag.AgGrid) and grid.id == "errors" and len(grid.rowData) == 40
    assert grid.rowData[0]["id"] == "e039" and grid.getRowId == "params.data.id" and grid.style["height"].endswith("px")
    assert grid.dashGridOptions["suppressRowVirtualisation"] is False
    assert grid.dashGridOptions["theme"] != w.error_log_viewer(many, mode="dark").dashGridOptions["theme"]


def test_wid024_alert_summary():
    out = w.alert_summary(ALERTS)
    items = by_class(out, "alert-item")
    assert [i.id["alert"] for i in items] == ["Agent down|agent=qms-perf", "High Queue Depth|queue=code_review"]
    assert [text(b) for b in by_class(out, "alert-count")] == ["firing 1", "pending 1", "resolved 1"]
    assert [b.color for b in by_class(out, "alert-state")] == ["warning", "danger"]
    assert is_placeholder(w.alert_summary([]))


def test_wid025_audit_log():
    grid = w.audit_log(AUDIT)
    assert isinstance(grid, dag.AgGrid)
    assert [c["field"] for c in grid.columnDefs] == ["timestamp", "type", "user", "ip", "outcome", "details"]
    assert grid.rowData[0] == {"id": "aud-1", "timestamp": "2025-08-17T06:00:00.000Z", "type": "auth.sign_in",
                               "user": "ana", "ip": "10.0.0.1", "outcome": "ok", "details": '{"role": "admin"}'}
    assert grid.rowData[1]["outcome"] == "denied" and "admin.users" in grid.rowData[1]["details"]


# ---------------------------------------------------------------- the rule and the registry

@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("empty", [None, [], {}, [None]], ids=["none", "empty-list", "empty-dict", "list-of-none"])
def test_wid026_no_data_placeholder_for_every_widget(name, empty):
    out = render(name, empty, id=f"w-{name}")
    assert is_placeholder(out), out
    assert out.id == f"w-{name}"


ALL_NONE = {
    "kpi_card": {"current_value": None, "previous_value": None, "trend": None, "unit": None},
    "metric_trend": series([None, None, None]), "quality_trends": {"metric": "x", "points": []},
    "gauge_chart": {"current_value": None, "unit": "percentage"}, "progress_bar": {"value": None, "target": 10},
    "comparison_chart": [{"label": "a", "value": None, "previous": None}],
    "pipeline_visualizer": {s: None for s in STEPS}, "queue_monitor": [{"queue": "q", "depth": None}],
    "timeline_view": [{"id": "x", "type": "t.x", "timestamp": None}], "kanban_board": [{"step": "code_review"}],
    "agent_status_grid": [{"status": "active"}], "workload_heatmap": [{"agent_id": "a", "load": None}],
    "skill_matrix": {"x": ["a"], "y": ["b"], "z": [[None]]}, "performance_radar": {"a": None, "b": None},
    "defect_distribution": {"critical": None, "major": None}, "gate_performance": [{"gate": "g"}],
    "compliance_status": {"compliance_checks_passed": {"current_value": None}, "policy_violations": None},
    "risk_assessment": [{"name": "r", "likelihood": None, "impact": 3}], "risk_matrix": [{"name": "r"}],
    "system_health": {"checks": {}}, "error_log_viewer": [], "alert_summary": [{"severity": "warning"}],
    "audit_log": [None],
    "gate_table": [{"gate": "g", "pass_rate": None}], "code_quality": [{"t": "x", "metric": "m", "value": None}],
    "test_coverage": [{"t": "x", "repository": "r", "coverage": None}],
    "team_collaboration": [{"reviewer_team": "a", "author_team": "b", "reviews": None}],
    "achievement_tracker": [{"description": "no milestone name"}],
    "skill_development": [{"t": "x", "category": "c", "defects": None}],
    "table": [None], "stat_group": [{"label": "Reviews", "value": None}],
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_wid027_all_none_values_are_no_data_not_zero(name):
    assert is_placeholder(render(name, ALL_NONE[name]))


LISTED = ["kpi_card", "metric_trend", "gauge_chart", "progress_bar", "comparison_chart", "pipeline_visualizer",
          "queue_monitor", "timeline_view", "kanban_board", "agent_status_grid", "workload_heatmap",
          "performance_radar", "defect_distribution", "gate_performance", "compliance_status", "risk_assessment",
          "risk_matrix", "system_health", "error_log_viewer", "alert_summary", "audit_log"]


def test_wid028_registry_covers_every_type():
    assert set(LISTED) <= set(REGISTRY)
    assert set(REGISTRY) == set(SAMPLES) == set(ALL_NONE)
    assert REGISTRY["risk_assessment"] is REGISTRY["risk_matrix"] is w.risk_matrix
    assert REGISTRY["gate_performance"] is w.gate_performance and REGISTRY["kpi_card"] is w.kpi_card
    with pytest.raises(UnknownWidget):
        render("no_such_widget", {})


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_wid029_render_draws_every_sample_with_its_id(name):
    out = render(name, SAMPLES[name], id=f"w-{name}", mode="dark")
    assert not is_placeholder(out)
    assert out.id == f"w-{name}"


def test_wid030_render_widget_from_the_api_envelope():
    card = render_widget(SAMPLES["kpi_card"])
    assert getattr(card, "data-kpi") == "gate_pass_rate" and "90.0%" in text(card)
    # a KPI with a unit but no value keeps kpi_card's own "no data" card
    assert "no data" in text(render("kpi_card", {"current_value": None, "unit": "percentage"}, kpi_id="sla_adherence"))
    g = render_widget({"id": "g", "type": "gauge_chart", "data": SAMPLES["gauge_chart"]}, mode="dark")
    assert gauge(g)["colour"] == "warning"
