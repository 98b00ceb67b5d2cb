"""components.render: every widget type of a dashboard definition drawn from plain pandas
frames (the data sources' contract), with thresholds, KPI card meaning, partial buckets,
annotations, dark mode and "not permitted".

No Redis, no browser: the component trees and figures are inspected as Python objects.
"""
from __future__ import annotations

import re

from typing import Any, Callable

import dash_ag_grid as dag
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import dcc, html

from components import quality, theme
from components.common import walk
from components.render import clean, not_permitted, records, render
from components.widgets import REGISTRY
from dashboards.schema import WIDGET_TYPES, Widget
from tests.unit.test_widgets import bars, gauge, text

LIGHT, DARK = theme.PALETTES["light"], theme.PALETTES["dark"]
T0 = pd.Timestamp("2025-08-17T00:00:00Z")
H = pd.Timedelta("1h")


# ---------------------------------------------------------------- helpers

def classes(c: Any) -> list[str]:
    return (getattr(c, "className", None) or "").split() if "className" in c._prop_names else []


def by_class(c: Any, cls: str) -> list[Any]:
    return [x for x in walk(c) if cls in classes(x)]


def figures(c: Any) -> list[go.Figure]:
    # A Graph holds its figure's JSON (components.common.graph): read back as a Plotly figure.
    return [go.Figure(x.figure) for x in walk(c) if isinstance(x, dcc.Graph) and "kpi-spark" not in classes(x)]


def fig(c: Any) -> go.Figure:
    (f,) = figures(c)
    return f


def placeholder_text(c: Any) -> str | None:
    """The placeholder's message, or None when `c` is not the placeholder."""
    if isinstance(c, html.Div) and "widget-no-data" in classes(c):
        return c.children
    return None


def widget(type_: str, **kw: Any) -> Widget:
    return Widget.model_validate({"id": f"w-{type_.replace('_', '-')}", "type": type_, "title": f"A {type_}", **kw})


def series(metric: str = "gate_pass_rate", unit: str = "percentage", values: tuple = (90.0, 85.0, 30.0),
           partial: bool = True) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"metric": metric, "unit": unit, "t": [T0 + i * H for i in range(n)],
                         "end": [T0 + (i + 1) * H for i in range(n)], "value": list(values),
                         "partial": [partial and i == n - 1 for i in range(n)]})


def kpi(metric: str = "gate_pass_rate", value: Any = 91.0, previous: Any = 88.0, unit: str = "percentage",
        direction: str | None = "higher_is_better", sample: Any = 120, filtered: Any = None) -> pd.DataFrame:
    return pd.DataFrame([{"metric": metric, "value": value, "previous": previous, "trend": "up", "unit": unit,
                          "direction": direction, "sample": sample, "filtered": filtered}])


def rows(*items: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(items))


ANNOTATIONS = rows({"t": T0 + 1.5 * H, "kind": "configuration", "title": "Coverage gate raised", "who": "ana",
                    "what": "coverage_percentage 80 → 85"},
                   {"t": T0 + 0.5 * H, "kind": "alert", "title": "High Queue Depth", "who": "alerts",
                    "what": "code_review depth 25"},
                   {"t": T0 - 48 * H, "kind": "configuration", "title": "Long ago", "who": "bo", "what": "outside"})

GATES = rows({"gate": "security-scan", "pass_rate": 70.0, "executions": 12, "p95_time": 11.0},
             {"gate": "lint", "pass_rate": 85.0, "executions": 40, "p95_time": 1.5},
             {"gate": "coverage", "pass_rate": 99.0, "executions": 5, "p95_time": None})
AGENTS = rows({"agent_id": "qms-sec", "status": "overloaded", "load": 0.95, "skills": ["security"], "since": T0},
              {"agent_id": "qms-arch", "status": "active", "load": 0.5, "skills": ["architecture"], "since": T0})
ACTIVE = rows({"workflow_id": "WF-1", "repository": "svc", "author": "ana", "pr_number": 1, "step": "code_review",
               "step_since": T0 + H, "created": T0},
              {"workflow_id": "WF-2", "repository": "ui", "author": "bo", "pr_number": 2, "step": "final_approval",
               "step_since": T0 + 2 * H, "created": T0})
ACTIVE.attrs["window"] = {"start": T0 - 21 * H, "end": T0 + 3 * H}      # kanban ages are counted to the window's end
DRILL_ERRORS = rows({"timestamp": T0 + H, "type": "system.error_occurred", "id": "e1", "source": "x", "workflow_id": None,
                     "data.component": "api", "data.error_type": "5xx", "data.severity": "critical",
                     "data.message": "boom"})


def _suggested_skills() -> pd.DataFrame:
    f = rows({"t": T0, "category": "security", "defects": 3}, {"t": T0 + H, "category": "security", "defects": 1},
             {"t": T0, "category": "style", "defects": 5})
    f.attrs["suggested"] = rows({"workflow_id": "WF-7", "repository": "svc", "author": "cy", "step_since": T0})
    return f


def _check_kpi(out: Any) -> None:
    assert "91.0%" in text(by_class(out, "kpi-value")) and "A kpi_card" in text(by_class(out, "kpi-title"))
    assert text(by_class(out, "kpi-delta")) == "▲ +3.0 pp"


def _trend_check(values: list[float]) -> Callable[[Any], None]:
    def check(out: Any) -> None:
        f = fig(out)
        assert list(f.data[0].y) == values[:-1] and f.data[-1].hovertext[0].endswith("still filling")
    return check


# One small plain frame per type, and what the drawing must hold.
CASES: dict[str, tuple[list[pd.DataFrame], Callable[[Any], None]]] = {
    "kpi_card": ([kpi()], _check_kpi),
    "metric_trend": ([series()], _trend_check([90.0, 85.0, 30.0])),
    "quality_trends": ([series(), series("defect_detection_rate", values=(50.0, 60.0, 10.0))],
                       lambda out: [t.name for t in fig(out).data if t.showlegend is not False]
                       == ["Gate pass rate", "Defect detection rate"]),
    "gauge_chart": ([kpi(value=87.5)], lambda out: gauge(out)["value"] == 87.5 and gauge(out)["shown"] == "87.5%"),
    "progress_bar": ([kpi(value=45.0)], lambda out: "45.0% / 100.0%" in text(out)
                     and by_class(out, "widget-progress")[0].value == 45.0),
    "comparison_chart": ([kpi(), kpi("sla_adherence", 80.0, 85.0)],
                         lambda out: list(fig(out).data[1].y) == [91.0, 80.0]
                         and list(fig(out).data[0].y) == [88.0, 85.0]
                         and list(fig(out).data[1].x) == ["Gate pass rate", "SLA adherence"]),
    "pipeline_visualizer": ([rows({"step": "dor_validation", "active_workflows": 4},
                                  {"step": "code_review", "active_workflows": 9},
                                  {"step": "dod_validation", "active_workflows": 0},
                                  {"step": "final_approval", "active_workflows": 2})],
                            lambda out: [r["value"] for r in bars(out)] == [4.0, 9.0, 0.0, 2.0]),
    "queue_monitor": ([rows({"queue": "code_review", "depth": 25, "since": T0}, {"queue": "dor", "depth": 3, "since": T0})],
                      lambda out: [r["value"] for r in bars(out)] == [25.0, 3.0]
                      and [r["role"] for r in bars(out)] == ["danger", "success"]),
    "timeline_view": ([DRILL_ERRORS], lambda out: list(fig(out).data[0].customdata) == ["e1"]
                      and "component=api" in fig(out).data[0].hovertext[0]),
    "kanban_board": ([ACTIVE], lambda out: {c.id["workflow"] for c in by_class(out, "kanban-card")} == {"WF-1", "WF-2"}
                     and "in step 2h 00m" in text(by_class(out, "kanban-card")[0])),
    "agent_status_grid": ([AGENTS], lambda out: [t.id["agent"] for t in by_class(out, "agent-tile")]
                          == ["qms-arch", "qms-sec"] and [p.label for p in by_class(out, "agent-load")] == ["50%", "95%"]),
    "workload_heatmap": ([AGENTS], lambda out: [list(r) for r in fig(out).data[0].z] == [[50.0, None], [None, 95.0]]),
    "skill_matrix": ([AGENTS], lambda out: list(fig(out).data[0].x) == ["architecture", "security"]),
    "performance_radar": ([kpi(), kpi("sla_adherence", 80.0, 85.0)],
                          lambda out: list(fig(out).data[-1].r) == [91.0, 80.0, 91.0]
                          and list(fig(out).data[0].r) == [88.0, 85.0, 88.0]),
    "defect_distribution": ([rows({"dimension": "severity", "name": "minor", "value": 3},
                                  {"dimension": "severity", "name": "critical", "value": 1}),
                             rows({"dimension": "category", "name": "security", "value": 4})],
                            lambda out: [list(t.x) for t in fig(out).data] == [["critical", "minor"], ["security"]]
                            and [list(t.y) for t in fig(out).data] == [[1.0, 3.0], [4.0]]),
    "gate_performance": ([GATES], lambda out: list(fig(out).data[0].customdata) == ["security-scan", "lint", "coverage"]
                         and list(fig(out).data[0].y) == [70.0, 85.0, 99.0]),
    "gate_table": ([GATES], lambda out: [text(c) for c in by_class(out, "gate-rate")] == ["70.0%", "85.0%", "99.0%"]
                   and [text(c) for c in by_class(out, "gate-runs")] == ["12", "40", "5"]
                   and [text(c) for c in by_class(out, "gate-p95")] == ["11.0 min", "1.5 min", "no data"]
                   and len(by_class(out, "gate-table")) == 1),
    "compliance_status": ([kpi("compliance_checks_passed", 96.0, 95.0), kpi("policy_violations", 2, 1, "count"),
                           rows({"workflow_id": "WF-3", "policy": "two-reviewers", "failed_checks": 1, "since": T0})],
                          lambda out: "96.0%" in text(by_class(out, "compliance-tile")[0])
                          and "2" in text(by_class(out, "compliance-tile")[2])
                          and "two-reviewers" in text(by_class(out, "compliance-violations"))),
    "risk_assessment": ([rows({"name": "Escaped defects", "kpi": "defect_prevention_rate", "value": 90.0,
                               "likelihood": 4, "impact": 5, "status": "open"})],
                        lambda out: list(fig(out).data[1].customdata) == ["Escaped defects"]),
    "risk_matrix": ([rows({"name": "Gate failures", "kpi": "gate_pass_rate", "value": 70.0, "likelihood": 2,
                           "impact": 3, "status": "mitigated"})],
                    lambda out: (fig(out).data[1].x[0], fig(out).data[1].y[0]) == (3, 2)
                    and list(fig(out).data[1].marker.symbol) == ["circle-open"]),
    "code_quality": ([rows({"t": T0, "gate": "sonar", "metric": "complexity", "value": 12.0},
                           {"t": T0 + H, "gate": "sonar", "metric": "complexity", "value": 10.0},
                           {"t": T0, "gate": "sonar", "metric": "duplications", "value": 3.5})],
                     lambda out: {t.name: list(t.y) for t in fig(out).data}
                     == {"complexity": [12.0, 10.0], "duplications": [3.5]}),
    "test_coverage": ([rows({"t": T0, "repository": "svc", "coverage": 70.0},
                            {"t": T0 + H, "repository": "svc", "coverage": 82.5},
                            {"t": T0, "repository": "ui", "coverage": 55.0})],
                      lambda out: {t.name: list(t.y) for t in fig(out).data} == {"svc": [70.0, 82.5], "ui": [55.0]}
                      and [text(b) for b in by_class(out, "coverage-latest")] == ["svc 82.5%", "ui 55.0%"]),
    "system_health": ([rows({"check": "redis", "status": "healthy", "detail": None},
                            {"check": "aggregator", "status": "degraded", "detail": "backlog 12"})],
                      lambda out: [c.id["check"] for c in by_class(out, "health-check")] == ["redis", "aggregator"]
                      and "backlog 12" in text(out)),
    "error_log_viewer": ([DRILL_ERRORS], lambda out: [[text(td) for td in tr.children]
                                                      for tr in by_class(out, "error-log-table")[0].children[1].children][0]
                         [1:] == ["critical", "api", "5xx", "boom"]),
    "alert_summary": ([rows({"id": "a1", "rule": "High Queue Depth", "severity": "warning", "status": "firing",
                             "labels": {"queue": "code_review"}, "since": T0, "acknowledged_by": None},
                            {"id": "a2", "rule": "Agent down", "severity": "critical", "status": "acknowledged",
                             "labels": {"agent": "qms-perf"}, "since": T0 + H, "acknowledged_by": "ana"})],
                      lambda out: [i.id["alert"] for i in by_class(out, "alert-item")] == ["a2", "a1"]
                      and [text(b) for b in by_class(out, "alert-count")] == ["firing 1", "acknowledged 1"]
                      and "acknowledged by ana" in text(out) and "since 2025-08-17 00:00:00" in text(out)),
    "audit_log": ([rows({"timestamp": T0, "type": "auth.sign_in", "id": "aud-1", "source": "qms", "workflow_id": None,
                         "data.user": "ana", "data.ip": "10.0.0.1", "data.outcome": "ok"})],
                  lambda out: out.rowData[0]["user"] == "ana" and out.rowData[0]["outcome"] == "ok"),
    "team_collaboration": ([rows({"reviewer_team": "core", "author_team": "web", "reviews": 4},
                                 {"reviewer_team": "core", "author_team": "core", "reviews": 6},
                                 {"reviewer_team": "web", "author_team": "core", "reviews": 2})],
                           lambda out: [list(r) for r in fig(out).data[0].z] == [[6.0, 4.0], [2.0, None]]
                           and list(fig(out).data[0].x) == ["core", "web"]
                           and text(by_class(out, "collab-summary")) == "6 of 12 reviews (50%) across teams"),
    "achievement_tracker": ([rows({"milestone": "First review", "description": "Review a PR", "achieved": True,
                                   "progress": 1, "target": 1, "at": T0},
                                  {"milestone": "Ten reviews", "description": None, "achieved": False, "progress": 4,
                                   "target": 10, "at": None})],
                            lambda out: text(by_class(out, "achievement-count")) == "1 of 2 milestones achieved"
                            and "First review" in text(by_class(out, "achievement-done"))
                            and by_class(out, "widget-progress")[0].value == 40.0),
    "skill_development": ([_suggested_skills()],
                          lambda out: {t.name: list(t.y) for t in fig(out).data} == {"security": [3.0, 1.0],
                                                                                      "style": [5.0]}
                          and "WF-7" in text(by_class(out, "skill-suggested"))),
    "table": ([ACTIVE], lambda out: [text(c) for c in by_class(out, "col-workflow_id")] == ["WF-1", "WF-2"]
              and [c.href for c in walk(out) if isinstance(c, dcc.Link)] == ["/workflows/WF-1", "/workflows/WF-2"]
              and text(by_class(out, "col-step_since")[0]) == "2025-08-17 01:00:00"),
    "stat_group": ([rows({"reviews": 120, "cost_usd": 1234.5, "saved_usd": 9000.0, "roi_pct": 629.1,
                          "assumption_hours_saved_per_review": 0.5, "assumption_engineer_hourly_cost_usd": 150.0})],
                   lambda out: [text(c) for c in by_class(out, "stat-value")] == ["120", "$1,234.50", "$9,000.00",
                                                                                   "629.1%"]
                   and [text(c) for c in by_class(out, "stat-label")] == ["Reviews", "Cost (USD)", "Saved (USD)",
                                                                          "ROI (%)"]
                   and "0.5 h" in text(by_class(out, "stat-note")) and "$150/h" in text(by_class(out, "stat-note"))),
}


# ---------------------------------------------------------------- every type

def test_ren001_every_schema_type_is_registered_and_has_a_case():
    assert set(REGISTRY) == set(WIDGET_TYPES)
    assert set(CASES) == set(WIDGET_TYPES)


@pytest.mark.parametrize("type_", WIDGET_TYPES)
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_ren002_every_type_draws_its_frame(type_, mode):
    frames, check = CASES[type_]
    out = render(widget(type_), frames, mode=mode, id={"type": "w-body", "w": type_})
    assert placeholder_text(out) is None, placeholder_text(out)
    assert check(out) is not False
    assert out.id == {"type": "w-body", "w": type_}
    for f in figures(out):                       # dark mode: the template's backgrounds and text
        pal = DARK if mode == "dark" else LIGHT
        assert f.layout.template.layout.paper_bgcolor == pal["background"]
        assert f.layout.template.layout.font.color == pal["text"]
        assert f.layout.legend.orientation == "h" and f.layout.legend.yref == "container"   # below, on phones too
        if any(t.type in ("bar", "scatter", "heatmap") for t in f.data):    # margins fitted to the labels
            assert f.layout.xaxis.automargin is False and f.layout.margin.l >= 20 and f.layout.margin.b >= 26


@pytest.mark.parametrize("type_", WIDGET_TYPES)
@pytest.mark.parametrize("frames", [None, [], [None], [pd.DataFrame()], "columns-no-rows"],
                         ids=["none", "no-frames", "none-frame", "empty-frame", "columns-no-rows"])
def test_ren003_no_rows_is_the_no_data_placeholder(type_, frames):
    if frames == "columns-no-rows":
        frames = [f.iloc[0:0].copy() for f in CASES[type_][0]]
        for f in frames:
            f.attrs = {}                     # no suggested reviews either
    out = render(widget(type_), frames, id="x")
    assert placeholder_text(out) == "no data" and out.id == "x"
    assert getattr(out, "data-widget") == type_


GENERIC = {"table", "stat_group"}      # these draw any columns


@pytest.mark.parametrize("type_", sorted(set(WIDGET_TYPES) - GENERIC))
def test_ren004_missing_columns_say_which(type_):
    out = render(widget(type_), [rows({"unrelated": 1, "other": "x"})])
    msg = placeholder_text(out)
    assert msg is not None and msg.startswith("no data: missing column"), msg


def _all_missing(f: pd.DataFrame) -> pd.DataFrame:
    """The frame with every number NaN (pandas' missing value)."""
    f = f.copy()
    for c in f.columns:
        if pd.api.types.is_numeric_dtype(f[c]) and not pd.api.types.is_bool_dtype(f[c]):
            f[c] = float("nan")
    return f


ALL_NAN = {"metric_trend", "quality_trends", "gauge_chart", "progress_bar", "comparison_chart", "pipeline_visualizer",
           "queue_monitor", "workload_heatmap", "skill_matrix", "performance_radar", "defect_distribution",
           "gate_performance", "gate_table", "risk_assessment", "risk_matrix", "code_quality", "test_coverage",
           "team_collaboration", "stat_group"}


@pytest.mark.parametrize("type_", sorted(ALL_NAN))
def test_ren005_nan_numbers_are_no_data_not_zero(type_):
    frames = [_all_missing(f) for f in CASES[type_][0]]
    assert placeholder_text(render(widget(type_), frames)) == "no data"


def test_ren006_odd_values_never_raise():
    w = widget("metric_trend")
    odd = pd.DataFrame({"metric": ["m"] * 3, "t": [T0, None, "not a time"], "value": ["x", None, float("inf")],
                        "end": [None] * 3, "partial": [None, "yes", 1]})
    out = render(w, [odd])
    assert isinstance(out, (dcc.Graph, html.Div))
    assert placeholder_text(render(widget("kpi_card"), [pd.DataFrame({"value": [[1, 2]]})])) is None
    assert placeholder_text(render(widget("table"), [pd.DataFrame({"a": [None, float("nan")], "b": [pd.NaT, T0]})])) \
        is None
    assert records(pd.DataFrame({"a": [float("nan")], "b": [pd.NaT], "c": [T0]})) == \
        [{"a": None, "b": None, "c": "2025-08-17T00:00:00Z"}]


def test_ren006b_records_are_the_frames_records_whatever_the_dtypes():
    """`records` reads the frame as one object array: the values to_dict("records") gives,
    cleaned, for every dtype a source produces (and the frame's attrs untouched)."""
    frame = pd.DataFrame({
        "s": pd.array(["x", None, "y"], dtype="str"), "i": [1, 2, 3], "f": [0.5, float("nan"), 2.0],
        "I": pd.array([1, None, 3], dtype="Int64"), "b": [True, False, None], "o": [[1, 2], {"k": 1}, None],
        "c": pd.Categorical(["a", "b", None]), "t": pd.to_datetime([T0, None, "2025-08-17T06:00:00Z"], utc=True),
        "n": pd.to_datetime(["2025-08-17", None, "2025-08-18"])})
    frame.attrs = {"spark": pd.DataFrame({"x": [1]}), "window": {"start": "a"}}
    want = [{k: clean(v) for k, v in row.items()} for row in frame.to_dict("records")]
    assert records(frame) == want
    assert want[1] == {"s": None, "i": 2, "f": None, "I": None, "b": False, "o": {"k": 1}, "c": "b", "t": None,
                       "n": None}
    assert want[2]["t"] == "2025-08-17T06:00:00Z" and want[0]["n"] == "2025-08-17T00:00:00Z"
    assert list(frame.attrs) == ["spark", "window"]


# ---------------------------------------------------------------- KPI cards

def card(frame: pd.DataFrame, **kw: Any) -> Any:
    return render(widget("kpi_card", **kw), [frame], context={"timeframe": "7d"})


def delta(out: Any) -> Any:
    found = by_class(out, "kpi-delta")
    return found[0] if found else None


def test_ren010_change_is_good_or_bad_by_the_metric_direction():
    up_good = card(kpi(value=91.0, previous=88.0, direction="higher_is_better"))
    assert text(delta(up_good)) == "▲ +3.0 pp" and "kpi-delta-good" in classes(delta(up_good))
    # a rising cycle time is bad
    up_bad = card(kpi("average_review_cycle_time", 5.0, 4.0, "hours", "lower_is_better"))
    assert text(delta(up_bad)) == "▲ +1.0 h" and "kpi-delta-bad" in classes(delta(up_bad))
    down_good = card(kpi("average_review_cycle_time", 4.0, 4.5, "hours", "lower_is_better"))
    assert text(delta(down_good)) == "▼ -30 min" and "kpi-delta-good" in classes(delta(down_good))
    down_bad = card(kpi(value=80.0, previous=88.0))
    assert text(delta(down_bad)) == "▼ -8.0 pp" and "kpi-delta-bad" in classes(delta(down_bad))
    unknown = card(kpi("events_total", 12, 10, "count", None))
    assert text(delta(unknown)) == "▲ +2" and "kpi-delta-neutral" in classes(delta(unknown))


def test_ren011_no_arrow_when_the_change_rounds_to_nothing():
    same = card(kpi(value=91.04, previous=91.0))
    assert not by_class(same, "kpi-arrow") and text(delta(same)) == "no change"
    assert "kpi-delta-none" in classes(delta(same))
    cents = card(kpi("cost_per_review", 2.504, 2.501, "usd", "lower_is_better"))
    assert not by_class(cents, "kpi-arrow")
    moved = card(kpi(value=91.06, previous=91.0))
    assert text(by_class(moved, "kpi-arrow")) == "▲" and text(delta(moved)) == "▲ +0.1 pp"
    # both read "5.0 h": no change at the precision shown, though the minutes differ
    hours = card(kpi("average_review_cycle_time", 5.04, 4.96, "hours", "lower_is_better"))
    assert not by_class(hours, "kpi-arrow") and text(by_class(hours, "kpi-value")) == "5.0 h"
    # executive: $47 against $47 is no change, even 45 cents apart
    dollars = render(widget("kpi_card"), [kpi("cost_per_review", 47.2, 46.75, "usd", "lower_is_better")],
                     context={"dashboard": "executive"})
    assert not by_class(dollars, "kpi-arrow") and text(by_class(dollars, "kpi-value")) == "$47"
    assert text(delta(card(kpi("cost_per_review", 47.2, 46.75, "usd", "lower_is_better")))) == "▲ +$0.45"
    no_previous = card(kpi(previous=None))
    assert delta(no_previous) is None and "previous: no data" in text(no_previous)


def test_ren012_small_samples_are_shown():
    assert text(by_class(card(kpi(sample=7)), "kpi-sample")) == "n = 7"
    assert text(by_class(card(kpi(sample=29)), "kpi-sample")) == "n = 29"
    assert not by_class(card(kpi(sample=30)), "kpi-sample")
    assert not by_class(card(kpi(sample=None)), "kpi-sample")


def test_ren013_card_links_its_events_and_sparkline():
    f = kpi(filtered=True)
    f.attrs["spark"] = series(values=(1.0, 2.0, 3.0, 4.0))
    out = render(widget("kpi_card"), [f], context={"timeframe": "7d", "scope_query": "team=core"})
    (link,) = [c for c in walk(out) if isinstance(c, dcc.Link)]
    assert link.href == "/events/gate_pass_rate?timeframe=7d&team=core"
    (spark,) = by_class(out, "kpi-spark")
    from urllib.parse import unquote
    svg = unquote(spark.src.split(",", 1)[1])
    solid = re.search(r'class="solid" points="([^"]+)"', svg).group(1).split()
    dotted = re.search(r'class="partial" points="([^"]+)"', svg).group(1).split()
    ys = [float(p.split(",")[1]) for p in solid]
    assert len(solid) == 3 and ys == sorted(ys, reverse=True), "three rising values (y grows downwards)"
    assert dotted[0] == solid[-1] and float(dotted[1].split(",")[1]) < ys[-1], "the still-filling bucket, dotted"
    assert 'stroke-dasharray' in svg.split('class="partial"')[1]
    # the value keeps the live-update id, made unique per widget
    assert by_class(out, "kpi-value")[0].id == {"type": "kpi-value", "kpi": "gate_pass_rate", "w": "w-kpi-card"}
    unfiltered = card(kpi(filtered=False))
    assert text(by_class(unfiltered, "kpi-unfiltered")) == "all"
    assert not [c for c in walk(render(widget("kpi_card", display_options={"interactions": []}), [kpi()],
                                       context={"timeframe": "7d"})) if isinstance(c, dcc.Link)]


# ---------------------------------------------------------------- thresholds

BELOW = {"warning": 90, "critical": 80, "direction": "below"}        # e.g. SLA adherence
ABOVE = {"warning": 10, "critical": 20, "direction": "above"}        # e.g. a queue depth


@pytest.mark.parametrize("th,value,expected", [
    (BELOW, 95.0, "ok"), (BELOW, 85.0, "warning"), (BELOW, 80.0, "critical"), (BELOW, 50.0, "critical"),
    (ABOVE, 5.0, "ok"), (ABOVE, 15.0, "warning"), (ABOVE, 20.0, "critical"), (ABOVE, 40.0, "critical"),
])
def test_ren020_thresholds_colour_kpi_cards(th, value, expected):
    out = card(kpi(value=value, previous=value), alert_thresholds=th)
    (body,) = by_class(out, "kpi-card")
    assert f"kpi-level-{expected}" in classes(body)
    assert f"border-{ {'ok': 'success', 'warning': 'warning', 'critical': 'danger'}[expected]}" in classes(body)
    badge = by_class(out, "kpi-level-badge")
    assert (text(badge) if badge else "ok") == expected


def test_ren021_threshold_direction_defaults_to_the_metrics():
    th = {"warning": 24, "critical": 48}                      # no direction: the metric's decides
    assert by_class(card(kpi("time_to_merge", 30.0, 30.0, "hours", "lower_is_better"), alert_thresholds=th),
                    "kpi-level-warning")
    assert by_class(card(kpi("time_to_merge", 12.0, 12.0, "hours", "lower_is_better"), alert_thresholds=th),
                    "kpi-level-ok")
    th2 = {"warning": 95, "critical": 90}
    assert by_class(card(kpi(value=92.0, previous=92.0), alert_thresholds=th2), "kpi-level-warning")
    assert by_class(card(kpi(value=89.0, previous=89.0), alert_thresholds=th2), "kpi-level-critical")
    assert by_class(card(kpi(value=97.0, previous=97.0), alert_thresholds=th2), "kpi-level-ok")


@pytest.mark.parametrize("th,value,role", [(BELOW, 95.0, "success"), (BELOW, 85.0, "warning"), (BELOW, 70.0, "danger"),
                                           (ABOVE, 5.0, "success"), (ABOVE, 12.0, "warning"), (ABOVE, 30.0, "danger")])
def test_ren022_thresholds_colour_gauges_and_progress_bars(th, value, role):
    g = gauge(render(widget("gauge_chart", alert_thresholds=th), [kpi(value=value, unit="count")], mode="dark"))
    assert g["colour"] == role and f"var(--bs-{role}) 0deg" in g["arc"]
    assert len(g["bands"]) == 3 and {b.split(",")[0] for b in g["bands"]} == {
        f"rgba(var(--bs-{r}-rgb)" for r in ("success", "warning", "danger")}
    bar = render(widget("progress_bar", alert_thresholds=th, display_options={"target": 100}), [kpi(value=value)])
    assert by_class(bar, "widget-progress")[0].color == role


def test_ren023_thresholds_colour_queue_bars():
    q = rows({"queue": "a", "depth": 4}, {"queue": "b", "depth": 6}, {"queue": "c", "depth": 9})
    b = bars(render(widget("queue_monitor", alert_thresholds={"warning": 5, "critical": 8}), [q]))
    assert [r["role"] for r in b] == ["success", "warning", "danger"]
    assert all("var(--bs-warning) calc(" in r["track"]["backgroundImage"] for r in b)
    # default: the seed's 10 / 20
    assert [r["role"] for r in bars(render(widget("queue_monitor"), [q]))] == ["success"] * 3


def test_ren023b_error_log_links_the_rest_to_its_events_page():
    many = pd.concat([DRILL_ERRORS] * 20, ignore_index=True)
    many["id"] = [f"e{i:02d}" for i in range(len(many))]
    w = widget("error_log_viewer", data_sources=[{"source": "drilldown", "metric": "error_rate", "timeframe": "7d"}])
    out = render(w, [many], context={"timeframe": "24h"})
    more = by_class(out, "error-log-more")[0]
    assert more.href == "/events/error_rate?timeframe=7d" and f"newest 15 of {len(many)}" in text(more)


def test_ren024_gate_table_colours_pass_rates():
    out = render(widget("gate_table"), [GATES])
    assert [[c for c in classes(x) if c.startswith("gate-level-")] for x in by_class(out, "gate-rate")] == \
        [["gate-level-critical"], ["gate-level-warning"], ["gate-level-ok"]]
    strict = render(widget("gate_table", alert_thresholds={"warning": 99.5, "critical": 98, "direction": "below"}),
                    [GATES])
    assert [[c for c in classes(x) if c.startswith("gate-level-")][0] for x in by_class(strict, "gate-rate")] == \
        ["gate-level-critical", "gate-level-critical", "gate-level-warning"]
    assert [getattr(r, "data-gate") for r in walk(out) if hasattr(r, "data-gate")] == ["security-scan", "lint", "coverage"]
    assert [c.href for c in walk(out) if isinstance(c, dcc.Link)] == ["/gates/security-scan", "/gates/lint",
                                                                        "/gates/coverage"]


def test_ren025_coverage_badges_by_threshold():
    out = render(widget("test_coverage", alert_thresholds={"warning": 80, "critical": 60}), CASES["test_coverage"][0])
    levels = {getattr(b, "data-repository"): [c for c in classes(b) if c.startswith("coverage-level-")][0]
              for b in by_class(out, "coverage-latest")}
    assert levels == {"svc": "coverage-level-ok", "ui": "coverage-level-critical"}


# ---------------------------------------------------------------- series

def test_ren030_partial_bucket_is_marked_not_a_drop():
    f = fig(render(widget("metric_trend"), [series(values=(90.0, 85.0, 30.0))]))
    main, segment, point = f.data
    assert list(main.y) == [90.0, 85.0]                 # the filling bucket is not on the line
    assert list(segment.y) == [85.0, 30.0] and segment.line.dash == "dot" and segment.hoverinfo == "skip"
    assert list(point.y) == [30.0] and point.marker.symbol == "circle-open"
    assert point.hovertext == ("30.0% · still filling",)
    assert point.showlegend is False and point.legendgroup == main.legendgroup
    full = fig(render(widget("metric_trend"), [series(partial=False)]))
    assert len(full.data) == 1 and list(full.data[0].y) == [90.0, 85.0, 30.0]


def test_ren031_partial_bar_is_hatched():
    f = fig(render(widget("metric_trend", display_options={"chart": "bar"}), [series()]))
    bars, filling = f.data
    assert list(bars.y) == [90.0, 85.0] and list(filling.y) == [30.0]
    assert filling.marker.pattern.shape == "/" and filling.opacity < 1 and filling.offsetgroup == bars.offsetgroup
    area = fig(render(widget("metric_trend", display_options={"chart": "area"}), [series(partial=False)]))
    assert area.data[0].fill == "tozeroy"


def windowed(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Copies carrying the source's window (attrs), as dashboards.sources hands them over."""
    out = []
    for f in frames:
        g = f.copy()
        g.attrs = {**f.attrs, "window": {"start": T0 - H, "end": T0 + 3 * H}}
        out.append(g)
    return out


TIME_SERIES_CASES = {   # series frames: the window from t … end; the others: from attrs
    "metric_trend": [series()], "quality_trends": [series()], "code_quality": windowed(CASES["code_quality"][0]),
    "test_coverage": windowed(CASES["test_coverage"][0]), "skill_development": windowed([_suggested_skills()]),
    "error_log_viewer": [series("errors_per_hour", "per_hour", (3.0, 5.0, 1.0))],
    "timeline_view": windowed([DRILL_ERRORS]),
}


@pytest.mark.parametrize("type_", sorted(TIME_SERIES_CASES))
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_ren032_annotations_on_every_time_series(type_, mode):
    out = render(widget(type_), TIME_SERIES_CASES[type_], annotations=ANNOTATIONS, mode=mode)
    f = fig(out)
    marks = [t for t in f.data if t.name == "Annotations"]
    assert len(marks) == 2 and {t.legendgroup for t in marks} == {"annotations"}
    shown = [t for t in marks if t.showlegend]
    assert len(shown) == 1 and f.layout.showlegend is True           # one legend entry: a click hides them all
    (point,) = shown
    # the one from two days before is outside the window; the others in time order
    assert [x for x in point.x] == ["2025-08-17T00:30:00Z", "2025-08-17T01:30:00Z"]
    assert "High Queue Depth" in point.hovertext[0] and "alert by alerts" in point.hovertext[0]
    assert "Coverage gate raised" in point.hovertext[1] and "by ana" in point.hovertext[1]
    assert "coverage_percentage 80 → 85" in point.hovertext[1]
    pal = DARK if mode == "dark" else LIGHT
    assert list(point.marker.color) == [pal["danger"], pal["primary"]]
    line = next(t for t in marks if not t.showlegend)
    assert list(line.x) == ["2025-08-17T00:30:00Z"] * 2 + [None] + ["2025-08-17T01:30:00Z"] * 2 + [None]
    assert point.yaxis == line.yaxis == "y9" and f.layout.yaxis9.overlaying == "y"


def test_ren033_annotations_switched_off_or_absent():
    off = fig(render(widget("metric_trend", display_options={"annotations": False}), [series()],
                     annotations=ANNOTATIONS))
    assert not [t for t in off.data if t.name == "Annotations"]
    none = fig(render(widget("metric_trend"), [series()], annotations=None))
    assert not [t for t in none.data if t.name == "Annotations"]
    # not a time series: no markers
    bars = fig(render(widget("gate_performance"), [GATES], annotations=ANNOTATIONS))
    assert not [t for t in bars.data if t.name == "Annotations"]
    hostile = rows({"t": T0 + H, "kind": "configuration", "title": "<script>x</script>", "who": "<b>", "what": "a&b"})
    (mark,) = [t for t in fig(render(widget("metric_trend"), [series()], annotations=hostile)).data
               if t.name == "Annotations" and t.showlegend]
    assert "<script>" not in mark.hovertext[0] and "&lt;script&gt;" in mark.hovertext[0]


# ---------------------------------------------------------------- money, display options

def test_ren040_money_rounded_on_executive_views():
    f = kpi("cost_per_review", 1234.56, 1200.0, "usd", "lower_is_better")
    assert text(by_class(card(f), "kpi-value")) == "$1,234.56"
    exec_card = render(widget("kpi_card"), [f], context={"dashboard": "executive"})
    assert text(by_class(exec_card, "kpi-value")) == "$1,235" and text(delta(exec_card)) == "▲ +$35"
    small = render(widget("kpi_card"), [kpi("cost_per_review", 2.5, 2.0, "usd")], context={"dashboard": "executive"})
    assert text(by_class(small, "kpi-value")) == "$2.50"             # cents only below $10
    opted = render(widget("kpi_card", display_options={"round_money": False}), [f], context={"dashboard": "executive"})
    assert text(by_class(opted, "kpi-value")) == "$1,234.56"
    roi = render(widget("stat_group"), CASES["stat_group"][0], context={"dashboard": "executive"})
    assert [text(c) for c in by_class(roi, "stat-value")] == ["120", "$1,235", "$9,000", "629.1%"]
    cost = rows({"dimension": "team", "name": "core", "value": 1500.4}, {"dimension": "team", "name": "web", "value": 7.25})
    cost.attrs["unit"] = "usd"
    bars = fig(render(widget("comparison_chart"), [cost], context={"dashboard": "executive"}))
    assert list(bars.data[0].text) == ["$1,500", "$7.25"]


def test_ren041_display_options_reach_the_figure():
    hidden = fig(render(widget("metric_trend", display_options={"show_legend": False}),
                        [series(), series("sla_adherence")], annotations=ANNOTATIONS))
    assert hidden.layout.showlegend is False
    cb = fig(render(widget("metric_trend", display_options={"color_scheme": "colorblind"}), [series()]))
    assert cb.layout.colorway[0] == "#0072B2"
    forced = fig(render(widget("metric_trend", display_options={"theme": "dark"}), [series()], mode="light"))
    assert forced.layout.template.layout.paper_bgcolor == DARK["background"]
    unit = render(widget("progress_bar", display_options={"target": 200}), [kpi("reviews_completed", 50, 40, "count")])
    assert "50 / 200" in text(unit) and by_class(unit, "widget-progress")[0].value == 25.0
    no_target = render(widget("progress_bar"), [kpi("reviews_completed", 50, 40, "count")])
    assert placeholder_text(no_target) == "no data: no target: set display_options.target"
    assert fig(render(widget("metric_trend"), [series()])).layout.xaxis.nticks == 6
    assert fig(render(widget("metric_trend"), [series()])).layout.hovermode == "x unified"
    assert fig(render(widget("metric_trend", display_options={"interactions": ["click"]}), [series()])).layout.hovermode \
        is False


# ---------------------------------------------------------------- developer widgets

def test_ren050_team_collaboration_per_person_where_names_are_seen():
    f = rows({"reviewer_team": "core", "author_team": "web", "reviews": 3, "cross_team": True},
             {"reviewer_team": "core", "author_team": "core", "reviews": 1, "cross_team": False},
             {"reviewer_team": "web", "author_team": "core", "reviews": 2, "cross_team": True})
    f.attrs["people"] = rows(
        {"reviewer": "ana", "author": "bo", "reviewer_team": "core", "author_team": "web", "reviews": 3},
        {"reviewer": "ana", "author": "cy", "reviewer_team": "core", "author_team": "core", "reviews": 1},
        {"reviewer": "bo", "author": "ana", "reviewer_team": "web", "author_team": "core", "reviews": 2})
    hm = fig(render(widget("team_collaboration"), [f])).data[0]
    assert list(hm.y) == ["ana", "bo"] and list(hm.x) == ["ana", "bo", "cy"]
    assert [list(r) for r in hm.z] == [[None, 3.0, 1.0], [2.0, None, None]]
    assert "reviewer %{y}" in hm.hovertemplate
    f.attrs["people"] = f.attrs["people"].iloc[0:0]          # names not visible to this caller: teams
    teams = fig(render(widget("team_collaboration"), [f])).data[0]
    assert list(teams.y) == ["core", "web"] and [list(r) for r in teams.z] == [[1.0, 3.0], [2.0, None]]


def test_ren051_skill_development_with_only_suggestions():
    f = pd.DataFrame(columns=["t", "category", "defects"])
    f.attrs["suggested"] = rows({"workflow_id": "WF-9", "repository": "svc", "author": "cy", "step_since": T0})
    out = render(widget("skill_development"), [f])
    assert "WF-9" in text(out) and placeholder_text(out) is None and "no defects over time" in text(out)


def test_ren052_developer_figures_are_plain_json_plotly_leaves_unchanged():
    """Team collaboration and skill development build their figures as plain dicts (drawn per
    viewer, Plotly's validation was half their cost): what Plotly's validated figure gives."""
    f = rows({"reviewer_team": "core", "author_team": "web", "reviews": 3, "cross_team": True},
             {"reviewer_team": "web", "author_team": "web", "reviews": None, "cross_team": False})
    skills = rows(*[{"t": T0 + pd.Timedelta(hours=h), "category": c, "defects": (h + len(c)) % 3 or None}
                    for h in range(70) for c in ("logic", "style")])
    for out in (render(widget("team_collaboration"), [f]), render(widget("skill_development"), [skills])):
        figure = next(c.figure for c in walk(out) if isinstance(c, dcc.Graph))
        assert isinstance(figure, dict) and figure["data"]
        assert go.Figure(figure).to_plotly_json() == figure
    lines = next(c.figure for c in walk(render(widget("skill_development"), [skills])) if isinstance(c, dcc.Graph))
    assert [(t["name"], t["mode"], len(t["x"])) for t in lines["data"]] == [("logic", "lines", 70), ("style", "lines", 70)]


# ---------------------------------------------------------------- not permitted

def test_ren060_not_permitted_names_the_permission_and_holds_no_data():
    w = widget("comparison_chart", data_sources=[{"source": "breakdown", "name": "cost_by_team"}])
    out = not_permitted(w, "view:cost_analysis", id={"type": "w-denied", "w": w.id})
    assert "Not permitted" in text(out) and "view:cost_analysis" in text(out)
    assert text(by_class(out, "widget-denied-permission")) == "view:cost_analysis"
    assert out.id == {"type": "w-denied", "w": w.id} and getattr(out, "data-permission") == "view:cost_analysis"
    assert not figures(out) and not [c for c in walk(out) if isinstance(c, dag.AgGrid)]
    assert not any(ch.isdigit() for ch in text(out).replace("view:cost_analysis", ""))


def test_ren061_test_coverage_is_not_collected_as_a_test():
    # components.quality.test_coverage is a widget; imported by module here so pytest leaves it alone
    assert quality.test_coverage.__module__ == "components.quality"


def test_ren042_progress_bars_per_goal_row():
    goals = rows({"milestone": "Ten reviews", "progress": 4, "target": 10},
                 {"milestone": "Fifty reviews", "progress": 60, "target": 50},
                 {"milestone": "No target", "progress": 3, "target": None})
    out = render(widget("progress_bar"), [goals])
    bars = by_class(out, "widget-progress")
    assert [(b.value, b.label, b.color) for b in bars] == [(40.0, "40%", "primary"), (100.0, "120%", "success")]
    assert "Ten reviews" in text(out) and "No target" not in text(out)


def test_ren043_text_numbers_and_json_widgets():
    out = render({"id": "k", "type": "kpi_card", "title": "Gate pass rate"},
                 [kpi(value="91.5", previous="bad")])
    assert text(by_class(out, "kpi-value")) == "91.5%" and "previous: no data" in text(out)


def test_an_empty_state_list_says_what_it_means_and_missing_data_stays_no_data() -> None:
    """An empty review queue is a fact ("No review waiting for you"), not missing data; a
    source that gave no frame at all is still "no data"."""
    import pandas as pd
    from components.render import render
    from components.common import walk as tree
    from dashboards.schema import Widget
    w = Widget.model_validate({"id": "q", "type": "table", "title": "My queue",
                               "data_sources": [{"source": "state", "name": "my_reviews"}]})
    empty = pd.DataFrame(columns=["workflow_id", "since"])

    def text(node: object) -> str:
        return " ".join(str(n.children) for n in tree(node) if isinstance(getattr(n, "children", None), str))
    assert "No review waiting for you" in text(render(w, [empty]))
    assert "No review waiting" not in text(render(w, [None]))
    assert "no data" in text(render(w, [None])).lower()


def test_a_sparkline_breaks_at_missing_values_and_scales_to_its_range() -> None:
    from components.charts import sparkline_svg
    svg = sparkline_svg([5.0, None, 1.0, 3.0, 2.0], False, "#123456", height=40)
    (run,) = re.findall(r'class="solid" points="([^"]+)"', svg)       # the lone 5.0 draws nothing
    pts = [tuple(map(float, p.split(","))) for p in run.split()]
    assert [x for x, _ in pts] == [50.0, 75.0, 100.0]
    assert pts[0][1] == 38.0 and pts[1][1] == 20.0 and 'stroke="#123456"' in svg   # 1.0 lowest, 3.0 mid of 1..5
    assert "partial" not in svg


def test_ren053_every_chart_on_the_pages_is_plain_json_plotly_leaves_unchanged():
    """The charts of the role dashboards (trends, defects, gates, risks, code quality, coverage,
    comparisons, annotation markers) are built as plain dicts: each must be the JSON Plotly's
    validated figure gives of it (an unknown property or a value Plotly would change fails here)."""
    from components import charts, quality, theme
    pts = [{"t": f"2026-12-01T{h:02d}:00:00Z", "end": f"2026-12-01T{h + 1:02d}:00:00Z", "value": None if h == 3 else h}
           for h in range(12)]
    pts[-1]["partial"] = True
    series = {"metric": "gate_pass_rate", "unit": "percentage", "points": pts}
    gates = [{"gate": "lint", "pass_rate": 95.0, "executions": 10, "p95_time": 2.5},
             {"gate": "tests", "pass_rate": 70.0, "executions": 4, "p95_time": None}]
    lines = [{"t": p["t"], "gate": g, "metric": "issues", "value": i, "repository": g, "coverage": 60 + i}
             for i, p in enumerate(pts) for g in ("lint", "sonar")]
    built = [charts.metric_trend(series), charts.metric_trend([series, {**series, "metric": "x"}], chart="bar"),
             charts.metric_trend(series, chart="area", mode="dark"),
             quality.defect_distribution({"critical": 2, "minor": 1}),
             quality.defect_distribution({"severity": {"major": 2}, "category": {"logic": 1, "style": 3}}),
             quality.gate_performance(gates), quality.risk_matrix([{"name": "a", "likelihood": 3, "impact": 4}]),
             quality.code_quality(lines), quality.test_coverage(lines),
             charts.comparison_chart([{"label": "a", "value": 3, "previous": 2}], unit="usd")]
    figs = [next(c.figure for c in walk(out) if isinstance(c, dcc.Graph)) for out in built]
    marked = {"data": [], "layout": {}}
    assert charts.add_annotations(marked, [{"t": pts[0]["t"], "kind": "alert", "title": "x"}]) == 1
    theme.apply(marked)                         # as the time series it is added to has
    for figure in [*figs, marked]:
        assert isinstance(figure, dict) and figure["data"]
        assert go.Figure(figure).to_plotly_json() == figure
    two = figs[4]["layout"]
    assert [a["text"] for a in two["annotations"]] == ["by severity", "by category"]
    assert two["xaxis"]["domain"] == [0.0, 0.45] and two["xaxis2"]["domain"] == [0.55, 1.0]
    assert [t["type"] for t in figs[0]["data"]] == ["scatter", "scatter", "scatter"]     # line, dotted segment, marker


def test_ren054_frame_cells_as_plain_values():
    """records()/clean(): the fast paths (plain cells, UTC instants in whole milliseconds) give
    what the general ones give."""
    import numpy as np

    from components.render import clean, iso
    slow = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond else "") + "Z"  # noqa: E731
    for text in ("2025-08-17T06:00:00Z", "2025-08-17T06:00:00.250Z", "1999-12-31T23:59:59.999Z", "2030-01-01T00:00:00.001Z"):
        t = pd.Timestamp(text)
        assert iso(t) == slow(t) == text
    assert iso(pd.Timestamp("2025-08-17T06:00:00.000500Z")) == "2025-08-17T06:00:00.000Z"      # under a millisecond
    assert iso(pd.Timestamp("2025-08-17T08:00:00+02:00")) == "2025-08-17T06:00:00Z"
    assert iso(pd.Timestamp("2025-08-17T06:00:00")) == "2025-08-17T06:00:00Z"                     # naive = UTC
    assert iso(pd.NaT) is None and iso("not a time") is None
    assert [clean(v) for v in ("a", 3, True, 2.5, float("nan"), None, np.int64(4), np.float64("nan"), pd.NA)] == \
        ["a", 3, True, 2.5, None, None, 4, None, None]


def test_ren062_annotations_inside_each_widgets_window_from_one_preparation() -> None:
    """A page's markers (one frame for every time series of the page) are parsed and sorted
    once; each widget gets those inside its own window, in time order, as plain rows, and a
    new markers frame is prepared anew."""
    from components import render as r
    marks = pd.DataFrame({"t": ["2026-01-01T05:00:00Z", "2026-01-01T01:00:00Z", None, "2026-01-01T03:00:00.250Z",
                                "2026-01-02T00:00:00Z"],
                          "kind": ["alert", "config", "config", "alert", "config"], "title": list("abcde")})

    def series(start: str, end: str) -> pd.DataFrame:
        f = pd.DataFrame({"t": [start], "value": [1.0]})
        f.attrs["window"] = {"start": start, "end": end}
        return f
    parsed = []
    real = r.pd.to_datetime
    r.pd.to_datetime = lambda *a, **k: (parsed.append(1), real(*a, **k))[1] if isinstance(a[0], pd.Series) else real(*a, **k)
    try:
        first = r.annotation_rows(marks, [series("2026-01-01T00:00:00Z", "2026-01-01T04:00:00Z")])
        second = r.annotation_rows(marks, [series("2026-01-01T03:00:00.250Z", "2026-01-01T05:00:00Z")])
        every = r.annotation_rows(marks, [pd.DataFrame({"value": [1.0]})])          # no window: all of them
    finally:
        r.pd.to_datetime = real
    assert [(x["t"], x["title"]) for x in first] == [("2026-01-01T01:00:00Z", "b"), ("2026-01-01T03:00:00.250Z", "d")]
    assert [x["title"] for x in second] == ["d", "a"]
    assert [x["title"] for x in every] == ["b", "d", "a", "e"]
    assert first[0] == {"t": "2026-01-01T01:00:00Z", "kind": "config", "title": "b"}
    assert len(parsed) == 1, "the markers' instants parsed once for the page"
    other = marks.iloc[:2].copy()
    assert [x["title"] for x in r.annotation_rows(other, [pd.DataFrame({"value": [1.0]})])] == ["b", "a"]
    assert r.annotation_rows(None, []) == [] and r.annotation_rows(marks.iloc[:0], []) == []
