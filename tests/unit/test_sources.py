"""Widget data sources, the pure parts: per-source permissions for every role of
config/rbac.yaml, filters and transforms, frames and their export rows, and the computed
views (data.views) from plain event lists. No Redis."""
from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auth.rbac import load_rbac
from auth.sanitize import OtherTeams, Sanitizer
from auth.teams import TeamScope
from dashboards import sources
from dashboards.schema import SOURCE_KINDS, DataSource, Transform
from data import views
from data.gate_chunks import digest, fold
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, fmt_ms, parse_iso

RBAC = load_rbac()
T0 = parse_iso("2025-08-17T00:00:00Z")


class P:
    """A principal of one role (auth.principal.Principal's `can`)."""

    def __init__(self, role: str, name: str = "ann") -> None:
        self.name, self.roles, self.permissions = name, (role,), RBAC.permissions_for([role])

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def every_source() -> list[DataSource]:
    out = [DataSource(source=k, name=n) for k, names in SOURCE_KINDS.items() for n in names]
    for metric in ("gate_pass_rate", "cost_per_review", "total_active_reviews", "queue_depth.code_review_queue",
                   "gate.lint-gate.pass_rate", "critical_defects", "pending_reviews"):
        out += [DataSource(source=kind, metric=metric) for kind in ("kpi", "series", "drilldown")]
    return out


def label(ds: DataSource) -> str:
    return f"{ds.source}:{ds.name or ds.metric}"


def _kinds(metric: str) -> set[str]:
    return {f"{k}:{metric}" for k in ("kpi", "series", "drilldown")}


# What each shipped role may read: every source not listed is refused.
ALLOWED = {
    "executive": {"breakdown:merged_by_team", "breakdown:cost_by_team", "breakdown:cost_by_repository",
                  "computed:roi", "computed:risks", "computed:team_collaboration", "computed:annotations",
                  "computed:alerts", *_kinds("gate_pass_rate"), *_kinds("cost_per_review")},
    "qa_lead": {"breakdown:defects_by_severity", "breakdown:defects_by_category", "breakdown:defects_by_stage",
                "state:violations", "computed:risks", "computed:gates", "computed:code_quality",
                "computed:test_coverage", "computed:annotations", "computed:alerts",
                *_kinds("gate.lint-gate.pass_rate"), *_kinds("critical_defects")},
    "developer": {"breakdown:merged_by_team", "state:my_reviews", "state:my_pull_requests", "state:suggested_reviews",
                  "computed:team_collaboration", "computed:code_quality", "computed:test_coverage",
                  "computed:achievements", "computed:skill_development", "computed:annotations", "computed:alerts",
                  *_kinds("pending_reviews")},
    "operations": {"breakdown:events_by_type", "state:agents", "state:queues", "state:health",
                   "state:active_workflows", "computed:pipeline", "computed:annotations", "computed:alerts",
                   *_kinds("total_active_reviews"), *_kinds("queue_depth.code_review_queue")},
    "producer": set(),
}
ALLOWED["admin"] = {label(ds) for ds in every_source()}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_src001_every_source_for_every_role(role: str) -> None:
    assert set(RBAC.roles) == set(ALLOWED)               # a role added to the file needs a line here
    got = {label(ds) for ds in every_source() if sources.allowed(ds, P(role))}
    assert got == ALLOWED[role]


def test_src002_a_developer_is_refused_cost_and_operations_data() -> None:
    dev = P("developer")
    for kind, name in (("breakdown", "cost_by_team"), ("computed", "roi"), ("state", "agents"),
                       ("state", "queues"), ("state", "health"), ("state", "violations")):
        ds = DataSource(source=kind, name=name)
        assert not sources.allowed(ds, dev)
    assert sources.permission(DataSource(source="breakdown", name="cost_by_team")) == "view:cost_analysis"
    assert sources.permission(DataSource(source="series", metric="cost_per_review")) == "view:cost_analysis"
    assert sources.permission(DataSource(source="state", name="agents")) == "view:operational_dashboard"
    assert sources.permission(DataSource(source="kpi", metric="gate.lint-gate.p95_time")) == "view:qa_dashboard"
    assert sources.permissions(DataSource(source="computed", name="code_quality")) == (
        "view:quality_metrics", "view:developer_dashboard")
    assert not sources.allowed(DataSource(source="computed", name="annotations"), None)


def test_src003_fetch_refuses_before_reading_anything() -> None:
    ctx = sources.SourceContext(engine=None, redis=None, keys=None, settings=None, principal=P("developer"),
                                sanitizer=Sanitizer())
    with pytest.raises(sources.NotPermitted) as exc:
        sources.fetch(DataSource(source="computed", name="roi"), ctx)
    assert exc.value.permission == "view:cost_analysis"


def test_src004_a_sources_filters_win_over_the_dashboards() -> None:
    dash = {"team": "payments", "gate": "lint-gate"}
    assert sources.merge_filters(dash, {"repository": "api"}) == {"repository": "api", "gate": "lint-gate"}
    assert sources.merge_filters(dash, {"gate": "security-scan-gate"}) == {"team": "payments",
                                                                           "gate": "security-scan-gate"}
    assert sources.merge_filters(dash, None) == dash
    assert sources.merge_filters({"repository": "api"}, {"team": "data", "agent": "qms-x"}) == {"team": "data",
                                                                                                "agent": "qms-x"}
    assert sources.clean_filters({"team": "", "agent": None, "repository": "r", "other": "x"}) == {"repository": "r"}


def frame() -> pd.DataFrame:
    f = sources.to_frame([{"name": "b", "value": 2.0, "t": "2025-08-17T01:00:00Z"},
                          {"name": "a", "value": None, "t": "2025-08-17T00:00:00.250Z"},
                          {"name": "c", "value": 7, "t": None}], ["name", "value", "t"])
    f.attrs["unit"] = "count"
    return f


def test_src005_frames_have_utc_times_and_nan_for_no_data() -> None:
    f = frame()
    assert str(f["t"].dtype) .startswith("datetime64") and str(f["t"].dt.tz) == "UTC"
    assert f["t"][0] == pd.Timestamp("2025-08-17T01:00:00Z")
    assert pd.isna(f["t"][2])
    assert f["value"].dtype == np.float64 and math.isnan(f["value"][1]) and f["value"][2] == 7.0
    empty = sources.to_frame([], ["metric", "value", "t"])
    assert list(empty.columns) == ["metric", "value", "t"] and len(empty) == 0
    assert str(empty["t"].dtype).startswith("datetime64")
    extra = sources.to_frame([{"a": 1, "zz": 2}], ["a"], strict=False)
    assert list(extra.columns) == ["a", "zz"]
    assert list(sources.to_frame([{"a": 1, "zz": 2}], ["a"]).columns) == ["a"]


def test_src006_transform_sorts_picks_and_limits_keeping_attrs() -> None:
    f = sources.apply_transform(frame(), Transform(sort_by="value", descending=True))
    assert f["name"].tolist() == ["c", "b", "a"]                         # no data last
    f = sources.apply_transform(frame(), Transform(sort_by="value", descending=False, columns=["value", "name", "x"],
                                                   limit=2))
    assert list(f.columns) == ["value", "name"] and f["name"].tolist() == ["b", "c"]
    assert f.attrs["unit"] == "count"
    f = sources.apply_transform(frame(), Transform(sort_by="nope", limit=1))
    assert f["name"].tolist() == ["b"]
    lists = sources.to_frame([{"k": ["b"]}, {"k": ["a", "z"]}], ["k"])
    assert sources.apply_transform(lists, Transform(sort_by="k", descending=False))["k"].tolist() == [["a", "z"], ["b"]]


def test_src007_export_rows_are_json_safe() -> None:
    f = frame()
    f["n"] = np.array([1, 2, 3], dtype=np.int64)
    f["ok"] = [True, False, True]
    f["skills"] = [["x"], [], None]
    cols, rows = sources.frames_to_rows(f)
    assert cols == ["name", "value", "t", "n", "ok", "skills"]
    assert rows[0] == {"name": "b", "value": 2.0, "t": "2025-08-17T01:00:00Z", "n": 1, "ok": True, "skills": ["x"]}
    assert rows[1]["t"] == "2025-08-17T00:00:00.250Z" and rows[1]["value"] is None
    assert rows[2]["t"] is None and rows[2]["skills"] is None
    assert type(rows[0]["n"]) is int and type(rows[0]["ok"]) is bool
    assert sources.frames_to_rows(None) == ([], [])


# --- computed views from plain events ---------------------------------------------------

def ev(etype: str, ts: int, **data: Any) -> dict[str, Any]:
    return {"id": f"e{ts}-{etype}", "type": etype, "timestamp": fmt_ms(ts), "source": "t", "data": data}


WORKFLOWS = {"W1": ("ann", "payments", "pay-svc"), "W2": ("bob", "mobile", "app"), "W3": None}
TEAMS = {"carl": "mobile", "ann": "payments", "dora": None}


def reviews() -> list[dict[str, Any]]:
    done = "workflow.review_completed"
    return [ev(done, T0, workflow_id="W1", reviewer="carl", verdict="approved"),
            ev(done, T0 + 1, workflow_id="W1", reviewer="carl", verdict="approved"),
            ev(done, T0 + 2, workflow_id="W1", reviewer="qms-code-reviewer", verdict="approved"),
            ev(done, T0 + 3, workflow_id="W2", reviewer="ann", verdict="changes_requested"),
            ev(done, T0 + 4, workflow_id="W2", reviewer="carl", verdict="approved"),
            ev(done, T0 + 5, workflow_id="W3", reviewer="dora", verdict="approved")]


def test_src008_team_collaboration_counts_reviews_per_team_pair_and_person() -> None:
    teams, people = views.collaboration(reviews(), WORKFLOWS, TEAMS)
    assert [(r["reviewer_team"], r["author_team"], r["reviews"], r["cross_team"]) for r in teams] == [
        ("mobile", "payments", 2, True), ("(agents)", "payments", 1, False), ("(no team)", "(no team)", 1, False),
        ("mobile", "mobile", 1, False), ("payments", "mobile", 1, True)]
    assert sum(r["reviews"] for r in teams) == 6 == sum(r["reviews"] for r in people)
    assert people[0] == {"reviewer": "carl", "author": "ann", "reviewer_team": "mobile", "author_team": "payments",
                         "reviews": 2}
    assert {"reviewer": "dora", "author": None, "reviewer_team": "(no team)", "author_team": "(no team)",
            "reviews": 1} in people
    only, _ = views.collaboration(reviews(), WORKFLOWS, TEAMS, {"team": "payments"})
    assert sorted((r["reviewer_team"], r["author_team"], r["reviews"]) for r in only) == [
        ("(agents)", "payments", 1), ("mobile", "payments", 2), ("payments", "mobile", 1)]
    repo, _ = views.collaboration(reviews(), WORKFLOWS, TEAMS, {"repository": "app"})
    assert sum(r["reviews"] for r in repo) == 2


def gate(ts: int, name: str, wf: str, passed: bool, **metrics: Any) -> tuple[int, dict[str, Any]]:
    return ts, ev("workflow.quality_gate_executed", ts, workflow_id=wf, gate_name=name, passed=passed, metrics=metrics)


def gate_sums(runs: Any, cuts: list[int], workflows: Any) -> views.GateSums:
    """The window's runs summed in one pass, as the product sums a window read whole."""
    return fold([digest(runs, workflows, 0)], cuts, workflows)


def test_src009_code_quality_and_coverage_are_means_per_step() -> None:
    cuts = views.cuts_of(T0, T0 + 2 * HOUR_MS, HOUR_MS)
    runs = [gate(T0 + 1, "lint-gate", "W1", True, errors=0, warnings=4, threshold=3),
            gate(T0 + 2, "lint-gate", "W2", False, errors=3, warnings=2, flaky=True),
            gate(T0 + HOUR_MS, "code-coverage-gate", "W1", True, coverage_percentage=90.0),
            gate(T0 + HOUR_MS + 5, "code-coverage-gate", "W1", True, coverage_percentage=80.0),
            gate(T0 + HOUR_MS + 9, "code-coverage-gate", "W2", False, coverage_percentage=70.5),
            gate(T0 + HOUR_MS + 10, "code-coverage-gate", "W3", True, coverage_percentage=99.0),
            gate(T0 + 3 * HOUR_MS, "lint-gate", "W1", True, errors=9)]           # after the window
    sums = gate_sums(runs, cuts, WORKFLOWS)
    got = {(r["t"], r["gate"], r["metric"]): (r["value"], r["runs"]) for r in views.quality_of(sums, cuts)}
    h0, h1 = fmt_ms(T0), fmt_ms(T0 + HOUR_MS)
    assert got == {(h0, "lint-gate", "errors"): (1.5, 2), (h0, "lint-gate", "warnings"): (3.0, 2),
                   (h1, "code-coverage-gate", "coverage_percentage"): (pytest.approx((90 + 80 + 70.5 + 99) / 4), 4)}
    assert [r["gate"] for r in views.quality_of(sums, cuts, gate="code-coverage-gate")] == ["code-coverage-gate"]
    cov = views.coverage_of(sums, cuts)
    assert [(r["t"], r["repository"], r["coverage"], r["runs"]) for r in cov] == [
        (h1, "app", 70.5, 1), (h1, "pay-svc", 85.0, 2)]                        # W3 has no repository
    assert [r["repository"] for r in views.coverage_of(sums, cuts, {"team": "mobile"})] == ["app"]
    assert numeric_metrics({"a": 1, "b": True, "c": float("nan"), "threshold_ms": 3, "d": "x"}) == {"a": 1.0}
    only = gate_sums([gate(T0 + 1, "g", "W1", True, a=1, b=True, c=float("nan"), threshold_ms=3, d="x")],
                     cuts, WORKFLOWS)
    assert list(only.values()) == [[1.0, 1]] and [k[2] for k in only] == ["a"]


def step_of(cuts: list[int], ts: int) -> int | None:
    """The index of the step [cuts[i], cuts[i+1]) holding ts, or None outside [cuts[0], cuts[-1])."""
    if not cuts or ts < cuts[0] or ts >= cuts[-1]:
        return None
    return bisect.bisect_right(cuts, ts) - 1


def numeric_metrics(metrics: Any) -> dict[str, float]:
    """The measurements of a gate run's `metrics`: finite numbers (not booleans), leaving out
    the gate's own settings (names starting with `threshold`)."""
    if not isinstance(metrics, dict):
        return {}
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and not str(k).startswith("threshold")}


def _gate_sums_by_the_definition(runs: Any, cuts: list[int], workflows: Any) -> dict[Any, list[float]]:
    """The gate sums as first written: step_of and numeric_metrics per run, run by run."""
    sums: dict[Any, list[float]] = {}
    for ts, e in runs:
        d = e.get("data") or {}
        i = step_of(cuts, ts)
        if i is None:
            continue
        metrics = numeric_metrics(d.get("metrics"))
        if not metrics:
            continue
        name = d.get("gate_name")
        info = workflows.get(d.get("workflow_id"))
        team, repo = (info[1], info[2]) if info else (None, None)
        for metric, value in metrics.items():
            acc = sums.setdefault((i, name if isinstance(name, str) else None, metric, team, repo), [0.0, 0])
            acc[0] += value
            acc[1] += 1
    return sums


@pytest.mark.parametrize("seed", range(3))
def test_src009b_gate_sums_inlined_sum_what_the_definition_sums(seed: int) -> None:
    """Sums per minute (data.gate_chunks.digest, its rule inlined) folded into steps give what
    step_of and numeric_metrics give run by run — the same counts, the same sums to the last
    bits of a float (added in another order): runs before, inside and after the steps, metrics
    that are booleans, NaN, infinite, strings, thresholds, not a dict, gates without a name,
    workflows unknown or without a repository, and cut lists of one edge or none."""
    import random
    rnd = random.Random(seed)
    values = [0, 3, -2, 7.25, 99.5, True, False, float("nan"), float("inf"), "x", None, 10**12]
    names = ["errors", "warnings", "coverage_percentage", "threshold", "threshold_ms", "flaky"]
    runs = []
    for n in range(3000):
        ts = T0 + rnd.randint(-HOUR_MS, 4 * HOUR_MS)
        metrics: Any = {rnd.choice(names): rnd.choice(values) for _ in range(rnd.randint(0, 4))}
        if n % 97 == 0:
            metrics = rnd.choice([None, [1, 2], "m", 5])
        data = {"workflow_id": rnd.choice(["W1", "W2", "W3", "W9"]), "metrics": metrics,
                "gate_name": rnd.choice(["lint-gate", "code-coverage-gate", None, 7])}
        runs.append((ts, {"type": "workflow.quality_gate_executed", "data": data}))
    runs.append((T0, {"type": "workflow.quality_gate_executed"}))
    for cuts in (views.cuts_of(T0, T0 + 3 * HOUR_MS, HOUR_MS), views.cuts_of(T0, T0 + 3 * HOUR_MS, 7 * 60_000),
                 [T0], []):
        want = _gate_sums_by_the_definition(runs, cuts, WORKFLOWS)
        got = gate_sums(runs, cuts, WORKFLOWS)
        assert got.keys() == want.keys() and (len(cuts) < 2 or len(got) > 20), cuts[:2]
        for k, (v, n) in want.items():
            assert got[k][1] == n and math.isclose(got[k][0], v, rel_tol=1e-12), (k, got[k], v)


def days(*spec: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    return [(T0 + i * DAY_MS, T0 + (i + 1) * DAY_MS, runs, passed) for i, (runs, passed) in enumerate(spec)]


def test_src010_achievements_from_a_developers_own_events() -> None:
    times = [T0 + i * MINUTE_MS for i in range(12)]
    end = T0 + 30 * DAY_MS
    got = {r["milestone"]: r for r in views.achievements(times, days(*[(2, 2)] * 8), end)}
    assert got["first_review"] == {"milestone": "first_review", "description": "Completed your first review",
                                   "achieved": True, "progress": 1, "target": 1, "at": fmt_ms(T0)}
    assert got["reviews_10"]["achieved"] and got["reviews_10"]["at"] == fmt_ms(T0 + 9 * MINUTE_MS)
    assert got["reviews_50"]["achieved"] is False and got["reviews_50"]["progress"] == 12
    assert got["reviews_50"]["at"] is None
    assert got["clean_week"]["achieved"] and got["clean_week"]["at"] == fmt_ms(T0 + 7 * DAY_MS)
    assert got["gates_passed_50"]["progress"] == 16 and not got["gates_passed_50"]["achieved"]
    # A failure on day 4 restarts the week: 4 clean days since, no clean week yet.
    broken = {r["milestone"]: r for r in views.achievements([], days(*[(1, 1)] * 3, (3, 2), *[(1, 1)] * 4), end)}
    assert broken["clean_week"]["achieved"] is False and broken["clean_week"]["progress"] == 4
    assert broken["first_review"]["progress"] == 0 and broken["first_review"]["achieved"] is False
    # Seven quiet days are not a clean week (no gate ran); 50 passed runs are reached on day 3.
    idle = {r["milestone"]: r for r in views.achievements([], days(*[(0, 0)] * 7, (30, 30), (30, 30)), end)}
    assert idle["clean_week"]["achieved"] is True and idle["clean_week"]["at"] == fmt_ms(T0 + 8 * DAY_MS)
    assert idle["gates_passed_50"]["at"] == fmt_ms(T0 + 9 * DAY_MS)
    none_ran = {r["milestone"]: r for r in views.achievements([], days(*[(0, 0)] * 9), end)}
    assert none_ran["clean_week"]["achieved"] is False


def test_src011_skill_rows_and_annotations() -> None:
    cuts = views.cuts_of(T0, T0 + 3 * HOUR_MS, HOUR_MS)
    rows = views.skill_rows([{"logic": 2}, {}, {"style": 1, "logic": 1}], cuts)
    assert [(r["t"], r["category"], r["defects"]) for r in rows] == [
        (fmt_ms(T0), "logic", 2), (fmt_ms(T0), "style", 0), (fmt_ms(T0 + HOUR_MS), "logic", 0),
        (fmt_ms(T0 + HOUR_MS), "style", 0), (fmt_ms(T0 + 2 * HOUR_MS), "logic", 1),
        (fmt_ms(T0 + 2 * HOUR_MS), "style", 1)]
    assert views.skill_rows([{}, {}], cuts[:3]) == []
    cfg = [ev("system.configuration_changed", T0, key="sla.hours", old=8, new=6, changed_by="ops.amy"),
           ev("system.configuration_changed", T0 + 1, key="flag")]
    marks = views.configuration_annotations(cfg)
    assert marks[0] == {"t": fmt_ms(T0), "kind": "configuration", "title": "Configuration changed: sla.hours",
                        "who": "ops.amy", "what": "sla.hours: 8 → 6", "id": cfg[0]["id"]}
    assert marks[1]["who"] is None and marks[1]["what"] == "flag"
    fired = views.alert_annotations([
        {"kind": "transition", "id": "q|code", "rule": "queue_high", "to": "firing", "at": T0 + 5, "value": 31,
         "threshold_text": "depth > 25", "labels": {"queue": "code"}, "severity": "warning"},
        {"kind": "transition", "rule": "x", "to": "resolved", "at": T0 + 6},
        {"kind": "acknowledged", "rule": "x", "to": "firing", "at": T0 + 7},
        {"kind": "transition", "rule": "y", "to": "firing", "at": T0 + 10 * HOUR_MS}], T0, T0 + HOUR_MS)
    assert fired == [{"t": fmt_ms(T0 + 5), "kind": "alert", "title": "Alert firing: queue_high [queue=code]",
                      "who": None, "what": "value 31 (depth > 25)", "id": "q|code", "severity": "warning"}]


def test_src012_gate_pipeline_direction_and_sample_fields() -> None:
    kpis = {"gate.lint-gate.pass_rate": {"current_value": 90.0}, "gate.lint-gate.executions": {"current_value": 10},
            "gate.lint-gate.p95_time": {"current_value": None}, "gate.a.b.pass_rate": {"current_value": 50.0},
            "gates_passed": {"current_value": 9}, "in_progress_reviews": {"current_value": 4}}
    assert views.gate_rows(kpis) == [
        {"gate": "a.b", "pass_rate": 50.0, "executions": None, "p95_time": None},
        {"gate": "lint-gate", "pass_rate": 90.0, "executions": 10, "p95_time": None}]
    assert [r["gate"] for r in views.gate_rows(kpis, only="lint-gate")] == ["lint-gate"]
    assert views.pipeline_rows(kpis)[1] == {"step": "in_progress_reviews", "active_workflows": 4}
    assert views.pipeline_rows(kpis)[0]["active_workflows"] is None
    assert views.direction("average_review_cycle_time") == "lower_is_better"
    assert views.direction("gate.x.pass_rate") == "higher_is_better"
    assert views.direction("queue_depth.q") == "lower_is_better"
    assert views.direction("total_active_reviews") is None
    assert views.unit_of("gate.g.p95_time") == "minutes" and views.unit_of("queue_depth.q") == "count"
    assert views.unit_of("gate_pass_rate") is None
    assert views.sample_field("cost_per_review", None) == ("m", "rc")
    assert views.sample_field("gate.lint-gate.p95_time", None) == ("g", "tn:lint-gate")
    assert views.sample_field("average_feedback_time", "ann") == ("u", "fbn:ann")
    assert views.sample_field("defects_found", None) is None
    assert views.roi_row(4, 100_000_000, {"engineer_hourly_cost_usd": 100.0}) == {
        "reviews": 4, "cost_usd": 100.0, "saved_usd": 300.0, "roi_pct": 200.0,
        "assumption_hours_saved_per_review": 0.75, "assumption_engineer_hourly_cost_usd": 100.0}


def developer_sanitizer(viewer: str = "carl", team: str | None = "mobile", omit: bool = False) -> Sanitizer:
    other = OtherTeams(frozenset({"data.user"}), True, True, frozenset({"reviews"}) if omit else frozenset())
    return Sanitizer(frozenset({"data.user"}), False, b"k" * 32, other, TeamScope(viewer, team))


def test_src013_per_person_collaboration_rows_follow_the_team_scope() -> None:
    _, people = views.collaboration(reviews(), WORKFLOWS, TEAMS)
    clean = developer_sanitizer()
    rows, count = sources._people_rows(clean, people)
    by = {(r["reviewer_team"], r["author_team"], r["reviews"]): r for r in rows}
    # carl's own rows keep names; ann→bob is another team's reviewer: pseudonymised.
    assert by[("mobile", "payments", 2)]["reviewer"] == "carl" and by[("mobile", "payments", 2)]["author"] == "ann"
    other = by[("payments", "mobile", 1)]
    assert other["reviewer"] == clean.pseudonym("ann") and other["author"] == clean.pseudonym("bob")
    assert by[("(agents)", "payments", 1)]["reviewer"] == "qms-code-reviewer"     # agents are not people
    assert count.shown_without_names == 3 and count.left_out == 0
    rows, count = sources._people_rows(developer_sanitizer(omit=True), people)
    assert sorted(r["reviewer"] for r in rows) == ["carl", "carl"] and count.left_out == 3
    plain, count = sources._people_rows(Sanitizer(pseudonymize=True, secret=b"k" * 32), people)
    assert all(r["reviewer"] != "carl" for r in plain) and count.rows == 0


def _constructed(rows: list[dict[str, Any]], cols: list[str]) -> pd.DataFrame:
    """What to_frame gave before its fast path: pandas' own parser and constructor."""
    data: dict[str, Any] = {}
    for c in cols:
        values = [r.get(c, np.nan) for r in rows]
        if c in sources.TIME_COLUMNS:
            data[c] = pd.to_datetime(values, utc=True, format="ISO8601")
        elif all(sources._is_number(v) for v in values) and any(v is not None for v in values):
            plain = np.array([np.nan if v is None else v for v in values])
            data[c] = plain if plain.dtype.kind in "if" else \
                pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy()
        else:
            data[c] = values
    return pd.DataFrame(data, columns=cols)


def test_src014_frames_are_what_pandas_constructor_gives() -> None:
    """to_frame builds its frames from one block per column and parses the data layer's ISO
    texts with numpy: every column type must come out as pandas' own constructor and parser
    make it (dtypes, values, NaN/NaT, index and column labels)."""
    import itertools
    import random
    rnd = random.Random(14)
    kinds = {
        "t": lambda i: rnd.choice([f"2025-08-17T{i % 24:02d}:00:00Z", f"2025-08-17T01:02:03.{i % 1000:03d}Z", None]),
        "at": lambda i: rnd.choice(["2025-08-17T01:00:00+02:00", "2025-08-17", "2025-08-17T01:00:00Z", None]),
        "end": lambda i: None,
        "f": lambda i: rnd.choice([1.5, None, 3, float("nan")]),
        "i": lambda i: i,
        "s": lambda i: rnd.choice(["a", "béta", "", None]),
        "only_none": lambda i: None,
        "lists": lambda i: rnd.choice([["x"], [], None]),
        "mixed": lambda i: rnd.choice(["a", 1, None]),
        "bools": lambda i: rnd.choice([True, False]),
        "dicts": lambda i: {"k": i},
    }
    names = list(kinds)
    for n_rows, width in itertools.product((1, 2, 7), (1, 3, 5)):
        for _ in range(12):
            cols = rnd.sample(names, width)
            rows = [{c: kinds[c](i) for c in cols if rnd.random() > 0.1} for i in range(n_rows)]
            got, want = sources.to_frame(rows, cols), _constructed(rows, cols)
            pd.testing.assert_frame_equal(got, want, check_index_type=True, check_column_type=True)
    fast = sources.to_frame([{"t": "2025-08-17T01:00:00.250Z", "s": "a", "f": 2.0}], ["t", "s", "f"])
    assert fast["t"][0] == pd.Timestamp("2025-08-17T01:00:00.250Z") and str(fast["s"].dtype) == "str"


def test_src015_text_columns_hold_python_strings() -> None:
    """Text in a source's frame is pandas' "str" dtype stored as Python strings, not as Arrow
    arrays (pyarrow is installed for the archive, and pandas would then choose it): every
    renderer and export reads the frame back as Python objects, which an Arrow array makes
    ~90x dearer, and a page's draw makes some thirty frames."""
    frame = sources.to_frame([{"repository": "api", "n": 1}, {"repository": None, "n": 2}], ["repository", "n"])
    assert str(frame["repository"].dtype) == "str"
    assert frame["repository"].array.dtype.storage == "python"
    assert frame.columns.dtype.storage == "python"
    assert frame["repository"].tolist()[0] == "api" and frame["repository"].isna().tolist() == [False, True]
    built = pd.DataFrame({"a": ["x", "y"]})                      # pandas' own constructor in this process too
    assert built["a"].array.dtype.storage == "python"
