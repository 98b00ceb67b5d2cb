"""Unit tests of the pure core: time planning, event validation, contributions, KPI helpers."""
from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from data import contrib, kpis
from data.batch import Acc
from data.events import BodyError, TooLarge, parse_body, validate
from data.rawstore import csv_cell, rows_csv
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, cover, fmt_ms, parse_duration, parse_iso, snap
from settings import Settings, SettingsError

NOW = 1_795_560_000_000 - 1_795_560_000_000 % HOUR_MS + 17 * MINUTE_MS + 12_345   # a fixed "now"


# --- time --------------------------------------------------------------------------------

def test_core001_parse_iso_normalises_zones_to_utc() -> None:
    assert parse_iso("2025-08-17T08:23:14+02:00") == parse_iso("2025-08-17T06:23:14Z")
    assert fmt_ms(parse_iso("2025-08-17T06:23:14.250Z")) == "2025-08-17T06:23:14.250Z"
    for bad in ("2025-08-17T06:23:14", "2025-08-17", "soon", 17):
        with pytest.raises(ValueError):
            parse_iso(bad)  # type: ignore[arg-type]


def test_core002_durations() -> None:
    assert parse_duration("90s") == 90_000 and parse_duration("5m") == 300_000 and parse_duration("7d") == 7 * DAY_MS
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")


def test_core003_snap_uses_the_finest_retained_resolution() -> None:
    assert snap(NOW, NOW) == NOW - NOW % MINUTE_MS
    assert snap(NOW, NOW, up=True) == NOW - NOW % MINUTE_MS + MINUTE_MS
    two_days = NOW - 2 * DAY_MS
    assert snap(two_days, NOW) % (5 * MINUTE_MS) == 0 and two_days - 5 * MINUTE_MS < snap(two_days, NOW) <= two_days
    month = NOW - 30 * DAY_MS
    assert snap(month, NOW) % HOUR_MS == 0


def test_core004_cover_tiles_exactly_with_few_buckets() -> None:
    e = snap(NOW, NOW, up=True)
    s = snap(e - 7 * DAY_MS, NOW)
    buckets = cover(s, e, NOW)
    assert buckets[0].start == s and buckets[-1].end == e
    assert all(a.end == b.start for a, b in zip(buckets, buckets[1:]))
    assert len(buckets) < 7 * 24 + 60, "hours in the middle, minutes only at the edge"
    with pytest.raises(ValueError):
        cover(NOW - 100 * DAY_MS, NOW - 99 * DAY_MS, NOW)


# --- events ------------------------------------------------------------------------------

def _gate(**over: Any) -> dict[str, Any]:
    e = {"id": "g1", "type": "workflow.quality_gate_executed", "timestamp": "2025-08-17T06:23:14+00:00",
         "source": "ci", "data": {"workflow_id": "W", "gate_name": "lint", "passed": False, "execution_time": 3}}
    e.update(over)
    return e


def test_core005_validate_normalises_and_keeps_extras() -> None:
    ev, ts, errors = validate(_gate(extra={"x": 1}))
    assert errors == [] and ev is not None
    assert ev["timestamp"] == "2025-08-17T06:23:14Z" and ev["metadata"] == {"priority": "normal"}
    assert ev["extra"] == {"x": 1} and ts == parse_iso("2025-08-17T06:23:14Z")


@pytest.mark.parametrize("type_, data, message", [
    ("workflow.pr_created", {"workflow_id": "W", "pr_number": "12", "repository": "r", "author": "a"},
     "data.pr_number: must be an integer"),
    ("workflow.step_entered", {"workflow_id": "W", "step": "deploy"}, "data.step: must be one of"),
    ("workflow.review_completed", {"workflow_id": "W", "reviewer": "r", "verdict": "approved", "cost_usd": -1},
     "data.cost_usd: must be a finite number from 0 to 1,000,000"),
    ("system.agent_status_changed", {"agent_id": "a", "status": "active", "load": 1.5}, "data.load: must be a finite number from 0 to 1"),
    ("system.queue_depth_updated", {"queue": "q", "depth": True}, "data.depth: must be an integer from 0 to 10,000,000"),
    ("user.survey_submitted", {"user": "u", "score": 6}, "data.score: must be a finite number from 1 to 5"),
    ("workflow.defect_resolved", {"defect_id": "D"}, "data.resolution: required"),
])
def test_core006_data_fields_are_checked_per_type(type_: str, data: dict[str, Any], message: str) -> None:
    _, _, errors = validate(_gate(type=type_, data=data))
    assert any(e.startswith(message) for e in errors), errors


def test_core007_parse_body_forms_and_limits() -> None:
    assert len(parse_body(b'{"events": [{"event": {"id": "a"}}, {"id": "b"}]}', 10, 1000)) == 2
    assert parse_body(b'{"event": {"id": "a"}}', 10, 1000) == [{"id": "a"}]
    assert len(parse_body(b'{"id": "a"}\n{"id": "b"}\n', 10, 1000)) == 2
    with pytest.raises(BodyError):
        parse_body(b"[]", 10, 1000)
    with pytest.raises(TooLarge):
        parse_body(b'{"events": [{}, {}, {}]}', 2, 1000)
    with pytest.raises(TooLarge):
        parse_body(b'{"events": [{"id": "' + b"x" * 2000 + b'"}, {}]}', 10, 1000)


# --- contributions: order independence and exact retraction ------------------------------

def _wf_events() -> list[dict[str, Any]]:
    t0 = parse_iso("2025-08-17T06:00:00Z")

    def e(i: int, minutes: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"id": f"w{i}", "type": type_, "timestamp": fmt_ms(t0 + minutes * MINUTE_MS), "source": "t",
                "data": {"workflow_id": "W1", **data}}
    return [
        e(1, 0, "workflow.pr_created", pr_number=1, repository="r", author="ann", team="core"),
        e(2, 5, "workflow.step_entered", step="dor_validation"),
        e(3, 20, "workflow.step_entered", step="code_review"),
        e(4, 30, "workflow.review_started", reviewer="bob"),
        e(5, 50, "workflow.review_completed", reviewer="bob", verdict="approved", cost_usd=12.5),
        e(6, 55, "workflow.quality_gate_failed", gate_name="lint"),
        e(7, 60, "workflow.step_entered", step="dod_validation"),
        e(8, 61, "workflow.compliance_checked", policy="license", passed=True),
        e(9, 70, "workflow.step_entered", step="final_approval"),
        e(10, 90, "workflow.defect_found", defect_id="D1", severity="critical", category="security", stage="production"),
        e(11, 80, "workflow.completed", outcome="merged"),
    ]


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for ev in events:
        contrib.fold("wf", state, ev, parse_iso(ev["timestamp"]))
    return state


def test_core008_fold_is_order_independent() -> None:
    events = _wf_events()
    want = sorted(contrib.contributions("wf", _fold(events), 8 * HOUR_MS))
    rng = random.Random(1)
    for _ in range(30):
        shuffled = rng.sample(events, len(events))
        assert sorted(contrib.contributions("wf", _fold(shuffled), 8 * HOUR_MS)) == want


def test_core009_incremental_diffs_sum_to_the_final_contributions() -> None:
    """What the aggregator writes batch by batch (new - old) adds up to the final state."""
    events = _wf_events()
    for cut in itertools.combinations(range(1, len(events)), 2):
        rng = random.Random(sum(cut))
        order = rng.sample(events, len(events))
        acc, state_old = Acc(), {}
        for part in (order[:cut[0]], order[cut[0]:cut[1]], order[cut[1]:]):
            new = _fold(order[:order.index(part[-1]) + 1]) if part else state_old
            acc.add_diff(contrib.contributions("wf", state_old, 8 * HOUR_MS), contrib.contributions("wf", new, 8 * HOUR_MS))
            state_old = new
        once = Acc()
        once.add_all(contrib.contributions("wf", _fold(events), 8 * HOUR_MS))
        clean = lambda a: {k: {f: v for f, v in h.items() if v} for k, h in a.buckets.items() if any(h.values())}  # noqa: E731
        assert clean(acc) == clean(once)


def test_core010_workflow_state_function() -> None:
    cs = contrib.contributions("wf", _fold(_wf_events()), 8 * HOUR_MS)
    steps = {(f, ts): v for fam, f, ts, v, step in cs if step}
    t0 = parse_iso("2025-08-17T06:00:00Z")
    assert steps[("s.active", t0)] == 1 and steps[("s.active", t0 + 80 * MINUTE_MS)] == -1
    assert steps[("s.sugg", t0 + 20 * MINUTE_MS)] == 1 and steps[("s.sugg", t0 + 30 * MINUTE_MS)] == -1
    points = {(f, ts): v for fam, f, ts, v, step in cs if not step}
    assert points[("rct_s", t0 + 50 * MINUTE_MS)] == 20 * MINUTE_MS            # approved - first started
    assert points[("ttm_s", t0 + 80 * MINUTE_MS)] == 80 * MINUTE_MS
    assert ("pd:" + str(t0 + 90 * MINUTE_MS), t0 + 80 * MINUTE_MS) in points, "production defect after merge is late"
    assert points[("ary", t0 + 80 * MINUTE_MS)] == 1


def test_core011_timeline_insertion_in_the_middle() -> None:
    old = contrib.timeline_steps("ag", "a", None, [(0, "active"), (100, "idle")])
    new = contrib.timeline_steps("ag", "a", None, [(0, "active"), (50, "down"), (100, "idle")])
    acc = Acc()
    acc.add_diff(old, new)
    bucket = {f: v for f, v in acc.buckets[("m", 0)].items() if v}
    # 'down' from 50 to 100 ms: the active integral loses 50 ms (moment +50; down keeps no moment).
    assert bucket == {"~s.ag.active": 50}
    assert all(v == 0 for v in acc.totals["m"].values()), "a change in the middle leaves the final state as it was"


# --- KPI helpers -------------------------------------------------------------------------

@pytest.mark.parametrize("cur, prev, want", [
    (10, 5, "up"), (5, 10, "down"), (100, 100.4, "flat"), (None, 3, "flat"), (3, None, "flat"), (0, 0, "flat"),
    (["a"], ["b"], None), (-2, 0, "down"),
])
def test_core012_trend(cur: Any, prev: Any, want: Any) -> None:
    assert kpis.trend(cur, prev) == want


def test_core013_nearest_rank_percentile() -> None:
    hist = {v: 1 for v in range(1, 21)}              # 1..20: rank ceil(0.95*20)=19
    assert kpis.nearest_rank(hist, 0.95) == 19
    assert kpis.nearest_rank({7: 3}, 0.95) == 7
    assert kpis.nearest_rank({}, 0.95) is None


def test_core014_csv_cells_never_start_a_formula() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+x", "-3", "@SUM(A1)", "ok", None, True)] == \
        ["'=1+1", "'+x", "'-3", "'@SUM(A1)", "ok", "", "true"]
    text = rows_csv([["id", "data.a", "data.b"], ["=cmd", "-2", 1]])
    assert text.splitlines() == ["id,data.a,data.b", "'=cmd,'-2,1"]


# --- settings ----------------------------------------------------------------------------

def test_core015_settings_from_env_and_yaml(tmp_path: Any) -> None:
    cfg = tmp_path / "qms.yaml"
    cfg.write_text("port: 9000\nsla_hours: 6\nalert_rules: {x: 1}\n")
    s = Settings.from_env({"QMS_CONFIG": str(cfg), "QMS_PORT": "9100", "QMS_DEMO": "yes", "REDIS_URL": "redis://h:1/2"})
    assert (s.port, s.sla_hours, s.demo, s.redis_url) == (9100, 6.0, True, "redis://h:1/2")
    assert s.extra == {"alert_rules": {"x": 1}}
    with pytest.raises(SettingsError, match="QMS_PORT"):
        Settings.from_env({"QMS_PORT": "eighty"})
    with pytest.raises(SettingsError, match="does not exist"):
        Settings.from_env({"QMS_CONFIG": str(tmp_path / "missing.yaml")})


def test_core016_quality_risks_from_kpis() -> None:
    from data.views import quality_risks
    kpis = {"critical_defects": {"current_value": 3}, "defect_prevention_rate": {"current_value": None},
            "remediation_pending": {"current_value": 0}, "audit_readiness_score": {"current_value": 85.0},
            "total_gates_executed": {"current_value": 10}, "gates_passed": {"current_value": 7}}
    risks = {r["name"]: r for r in quality_risks(kpis)}
    assert "Defects escaping to production" not in risks, "no data gives no risk"
    assert (risks["Open critical defects"]["likelihood"], risks["Open critical defects"]["impact"]) == (3, 5)
    assert risks["Pending remediations"]["likelihood"] == 1 and risks["Pending remediations"]["status"] == "watch"
    assert risks["Audit readiness gaps"]["likelihood"] == 4
    assert risks["Quality gate failures"]["value"] == 70.0 and risks["Quality gate failures"]["likelihood"] == 5
