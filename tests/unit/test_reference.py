"""Hand-computed checks of every KPI of data/reference.py (the METRICS.md reference).

Unless stated otherwise: end = 2025-08-17 12:00Z and T = 1 h, so
W = [11:00, 12:00) and the previous window P = [10:00, 11:00); state KPIs are evaluated
at 12:00 (current) and 11:00 (previous).
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from data.reference import (DASHBOARDS, KPI_UNITS, compute_dashboard, kpi_unit, trend)

UTC = timezone.utc
END = datetime(2025, 8, 17, 12, 0, tzinfo=UTC)
H1 = timedelta(hours=1)


def at(hhmm: str, day: int = 17) -> str:
    """'11:30' -> '2025-08-17T11:30:00Z' ('11:30:15' keeps the seconds)."""
    return f"2025-08-{day:02d}T{hhmm}{'' if hhmm.count(':') == 2 else ':00'}Z"


def ev(eid: str, etype: str, ts: str, **data: object) -> dict:
    """A bare event; types without a category are workflow events."""
    if not etype.startswith(("workflow.", "system.", "user.")):
        etype = "workflow." + etype
    return {"id": eid, "type": etype, "timestamp": ts, "source": "test", "data": data}


def dash(events: list[dict], dashboard: str, T: timedelta = H1, **kw: object) -> dict:
    return compute_dashboard(events, dashboard, END, T, **kw)


def k(events: list[dict], dashboard: str, kpi: str, T: timedelta = H1, **kw: object) -> dict:
    return dash(events, dashboard, T, **kw)[kpi]


def cur_prev(events: list[dict], dashboard: str, kpi: str, **kw: object) -> tuple:
    r = k(events, dashboard, kpi, **kw)
    return r["current_value"], r["previous_value"]


# ---------------------------------------------------------------- executive ----------


def test_ref001_gate_pass_rate_basic() -> None:
    events = [
        ev("g1", "quality_gate_executed", at("11:05"), workflow_id="w1", gate_name="lint", passed=True),
        ev("g2", "quality_gate_passed", at("11:10"), workflow_id="w1", gate_name="lint"),
        ev("g3", "quality_gate_failed", at("11:20"), workflow_id="w1", gate_name="cov"),
        ev("g4", "quality_gate_executed", at("10:30"), workflow_id="w1", gate_name="cov", passed=True),
    ]
    r = k(events, "executive", "gate_pass_rate")
    # W: 2 passed of 3 -> 66.67 ; P: 1 of 1 -> 100 ; change -33 -> down
    assert r["current_value"] == pytest.approx(200 / 3)
    assert r["previous_value"] == pytest.approx(100.0)
    assert r["trend"] == "down"
    assert r["unit"] == "percentage"


def test_ref002_gate_pass_rate_null_without_data() -> None:
    r = k([ev("x", "pr_created", at("11:00"), workflow_id="w", pr_number=1,
              repository="r", author="a")], "executive", "gate_pass_rate")
    assert (r["current_value"], r["previous_value"], r["trend"]) == (None, None, "flat")
    assert all(v["current_value"] is None for kid, v in dash([], "executive").items())


def test_ref003_duplicate_ids_first_seen_wins() -> None:
    events = [
        ev("g1", "quality_gate_executed", at("11:05"), workflow_id="w", gate_name="g", passed=True),
        # same id again, different content and even another window: ignored entirely
        ev("g1", "quality_gate_executed", at("10:05"), workflow_id="w", gate_name="g", passed=False),
        ev("g1", "quality_gate_failed", at("11:06"), workflow_id="w", gate_name="g"),
        ev("g2", "quality_gate_failed", at("11:07"), workflow_id="w", gate_name="g"),
    ]
    # W: g1 (passed) + g2 (failed) -> 50 ; P: nothing -> None
    assert cur_prev(events, "executive", "gate_pass_rate") == (pytest.approx(50.0), None)
    assert cur_prev(events, "qa", "total_gates_executed") == (2, None)


def test_ref004_window_edges() -> None:
    events = [
        ev("a", "quality_gate_passed", at("11:00"), workflow_id="w", gate_name="g"),  # == end-T: in W
        ev("b", "quality_gate_failed", at("12:00"), workflow_id="w", gate_name="g"),  # == end: nowhere
        ev("c", "quality_gate_failed", at("10:00"), workflow_id="w", gate_name="g"),  # == end-2T: in P
        ev("d", "quality_gate_passed", at("09:59:59"), workflow_id="w", gate_name="g"),  # before P
    ]
    assert cur_prev(events, "executive", "gate_pass_rate") == (100.0, 0.0)
    assert cur_prev(events, "qa", "total_gates_executed") == (1, 1)


def test_ref005_out_of_order_input_and_zones() -> None:
    events = [
        ev("s1", "system.agent_status_changed", at("10:00"), agent_id="a", status="idle"),
        ev("s2", "system.agent_status_changed", at("11:00"), agent_id="a", status="active"),
        # 13:30+02:00 == 11:30Z, inside W
        ev("g1", "quality_gate_failed", "2025-08-17T13:30:00+02:00", workflow_id="w", gate_name="g"),
        ev("g2", "quality_gate_passed", at("11:40"), workflow_id="w", gate_name="g"),
        # 06:59-04:00 == 10:59Z, inside P
        ev("g3", "quality_gate_passed", "2025-08-17T06:59:00-04:00", workflow_id="w", gate_name="g"),
    ]
    expected = {"gate": (50.0, 100.0), "util": (100.0, 0.0)}
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert cur_prev(shuffled, "executive", "gate_pass_rate") == expected["gate"]
        # latest status must follow timestamps, not list order: active all of W, idle all of P
        assert cur_prev(shuffled, "executive", "agent_utilization_rate") == expected["util"]
        assert cur_prev(shuffled, "operational", "active_agents") == (1, 0)


def test_ref006_defect_detection_rate() -> None:
    events = [
        ev("d1", "defect_found", at("11:01"), workflow_id="w", defect_id="D1", severity="minor"),  # stage default review
        ev("d2", "defect_found", at("11:02"), workflow_id="w", defect_id="D2", severity="minor", stage="review"),
        ev("d3", "defect_found", at("11:03"), workflow_id="w", defect_id="D3", severity="major", stage="production"),
        ev("d4", "defect_found", at("10:03"), workflow_id="w", defect_id="D4", severity="major", stage="production"),
    ]
    # W: 2 review of 3 -> 66.67 ; P: 0 of 1 -> 0 ; up
    r = k(events, "executive", "defect_detection_rate")
    assert (r["current_value"], r["previous_value"], r["trend"]) == (pytest.approx(200 / 3), 0.0, "up")


def test_ref007_false_positive_rate() -> None:
    events = [ev(f"r{i}", "defect_resolved", at(f"11:0{i}"), defect_id=f"D{i}", resolution=res)
              for i, res in enumerate(["fixed", "false_positive", "wont_fix", "fixed"])]
    # W: 1 false positive of 4 resolutions (per event, ids unknown to defect_found) -> 25 ; P: none
    assert cur_prev(events, "executive", "false_positive_rate") == (25.0, None)


def test_ref008_compliance_adherence_and_checks_passed() -> None:
    events = [ev(f"c{i}", "compliance_checked", at(f"11:1{i}"), workflow_id="w", policy="p", passed=ok)
              for i, ok in enumerate([True, True, False, True])]
    events.append(ev("c9", "compliance_checked", at("10:10"), workflow_id="w", policy="p", passed=False))
    # W: 3 of 4 -> 75 ; P: 0 of 1 -> 0
    assert cur_prev(events, "executive", "compliance_adherence") == (75.0, 0.0)
    assert cur_prev(events, "qa", "compliance_checks_passed") == (75.0, 0.0)


def test_ref009_overall_quality_score() -> None:
    events = [
        ev("g1", "quality_gate_passed", at("11:00"), workflow_id="w", gate_name="g"),
        ev("g2", "quality_gate_failed", at("11:01"), workflow_id="w", gate_name="g"),   # gate rate 50
        ev("d1", "defect_found", at("11:02"), workflow_id="w", defect_id="D", severity="minor"),  # ddr 100
        ev("r1", "defect_resolved", at("11:03"), defect_id="D", resolution="false_positive"),
        ev("r2", "defect_resolved", at("11:04"), defect_id="E", resolution="fixed"),
        ev("r3", "defect_resolved", at("11:05"), defect_id="F", resolution="fixed"),
        ev("r4", "defect_resolved", at("11:06"), defect_id="G", resolution="fixed"),  # fpr 25 -> 75
        # no compliance check in W -> that part is null and left out
        ev("c1", "compliance_checked", at("10:30"), workflow_id="w", policy="p", passed=True),
    ]
    # W: mean(50, 100, 75) = 75 ; P: only compliance 100 -> 100
    assert cur_prev(events, "executive", "overall_quality_score") == (75.0, 100.0)


def test_ref010_average_review_cycle_time() -> None:
    events = [
        # A: first start 09:00 (r1), first approval 11:30 in W -> 2.5 h
        ev("a1", "review_started", at("09:00"), workflow_id="A", reviewer="r1"),
        ev("a2", "review_started", at("10:30"), workflow_id="A", reviewer="r2"),
        ev("a3", "review_completed", at("11:00"), workflow_id="A", reviewer="r2", verdict="changes_requested"),
        ev("a4", "review_completed", at("11:30"), workflow_id="A", reviewer="r1", verdict="approved"),
        ev("a5", "review_completed", at("11:45"), workflow_id="A", reviewer="r2", verdict="approved"),
        # B: first approval 10:45 (in P) -> P value 10:45 - 10:15 = 0.5 h; the 11:15 one is ignored
        ev("b1", "review_started", at("10:15"), workflow_id="B", reviewer="r1"),
        ev("b2", "review_completed", at("11:15"), workflow_id="B", reviewer="r1", verdict="approved"),
        ev("b3", "review_completed", at("10:45"), workflow_id="B", reviewer="r2", verdict="approved"),
        # C: approved in W but never started -> skipped
        ev("c1", "review_completed", at("11:50"), workflow_id="C", reviewer="r1", verdict="approved"),
    ]
    r = k(events, "executive", "average_review_cycle_time")
    assert (r["current_value"], r["previous_value"], r["trend"], r["unit"]) == (2.5, 0.5, "up", "hours")


def test_ref011_workflow_completion_rate_per_event() -> None:
    events = [
        ev("c1", "completed", at("11:10"), workflow_id="w1", outcome="merged"),
        ev("c2", "completed", at("11:20"), workflow_id="w1", outcome="rejected"),  # 2nd completion still counts
        ev("c3", "completed", at("11:30"), workflow_id="w2", outcome="merged"),
        ev("c4", "completed", at("11:40"), workflow_id="w3", outcome="abandoned"),
    ]
    # 2 merged of 4 events -> 50 ; P: none
    assert cur_prev(events, "executive", "workflow_completion_rate") == (50.0, None)


def test_ref012_agent_utilization_rate() -> None:
    S = "system.agent_status_changed"
    events = [
        ev("a1", S, at("10:30"), agent_id="a1", status="active"),
        ev("a2", S, at("11:30"), agent_id="a1", status="idle"),
        ev("a3", S, at("11:45"), agent_id="a1", status="down"),
        ev("a4", S, at("12:00"), agent_id="a1", status="idle"),       # at end: changes nothing in W
        ev("b1", S, at("11:40"), agent_id="a2", status="overloaded"),  # unknown before 11:40
        ev("c1", S, at("11:00"), agent_id="a3", status="training"),
    ]
    # W: busy = a1 30 min + a2 20 min = 50 ; available = 50 + a1 idle 15 min = 65 -> 76.92
    # P: a1 active 10:30-11:00 only -> 100
    r = k(events, "executive", "agent_utilization_rate")
    assert r["current_value"] == pytest.approx(100 * 50 / 65)
    assert (r["previous_value"], r["trend"]) == (100.0, "down")
    only_down = [ev("x", S, at("09:00"), agent_id="z", status="down")]
    assert cur_prev(only_down, "executive", "agent_utilization_rate") == (None, None)


def _wf(wid: str, created: str | None, completed: str | None, outcome: str = "merged",
        team: str | None = None, author: str = "alice") -> list[dict]:
    out = []
    if created:
        data = {"workflow_id": wid, "pr_number": 1, "repository": "r", "author": author}
        if team:
            data["team"] = team
        out.append(ev(f"{wid}-pr", "pr_created", created, **data))
    if completed:
        out.append(ev(f"{wid}-done", "completed", completed, workflow_id=wid, outcome=outcome))
    return out


def test_ref013_sla_adherence() -> None:
    events = [
        *_wf("w1", at("04:00"), at("11:00")),                 # 7 h -> inside
        *_wf("w2", at("03:30"), at("11:30"), "rejected"),     # exactly 8 h -> inside
        *_wf("w3", at("03:00"), at("11:59"), "abandoned"),    # 8 h 59 -> outside
        *_wf("w4", None, at("11:20")),                        # no pr_created -> skipped
        *_wf("w5", at("10:00"), at("11:10")),                 # 1 h 10 -> inside
        ev("w5-again", "completed", at("11:50"), workflow_id="w5", outcome="merged"),
        *_wf("w6", at("01:00"), at("10:30")),                 # 9 h 30, earliest completion in P
        ev("w6-again", "completed", at("11:30"), workflow_id="w6", outcome="merged"),  # not a W completion
    ]
    # W: 3 inside of 4 -> 75 ; P: w6 outside -> 0
    assert cur_prev(events, "executive", "sla_adherence") == (75.0, 0.0)
    # with a 9 h target w3 is inside; w6 (9.5 h) still outside
    assert cur_prev(events, "executive", "sla_adherence", sla_hours=9) == (100.0, 0.0)


def test_ref014_cost_per_review() -> None:
    events = [
        ev("r1", "review_completed", at("11:01"), workflow_id="w", reviewer="x", verdict="approved", cost_usd=1.5),
        ev("r2", "review_completed", at("11:02"), workflow_id="w", reviewer="y", verdict="changes_requested",
           cost_usd=2.5),
        ev("r3", "review_completed", at("11:03"), workflow_id="w", reviewer="z", verdict="approved"),  # cost 0
        ev("r4", "review_started", at("10:03"), workflow_id="w", reviewer="z"),  # P has no completion
    ]
    # (1.5 + 2.5 + 0) / 3 = 1.3333 ; P: null
    r = k(events, "executive", "cost_per_review")
    assert r["current_value"] == pytest.approx(4 / 3)
    assert (r["previous_value"], r["unit"]) == (None, "usd")


def test_ref015_time_to_merge() -> None:
    events = [
        *_wf("w1", at("09:00"), at("11:00")),                 # 2 h
        *_wf("w2", at("10:00"), at("11:30")),                 # 1.5 h
        *_wf("w3", at("09:00"), at("11:40"), "rejected"),     # not merged
        *_wf("w4", None, at("11:50")),                        # merged, no pr_created: skipped
        *_wf("w5", at("09:30"), at("10:30")),                 # P: 1 h
    ]
    # W: (2 + 1.5) / 2 = 1.75 ; P: 1.0
    assert cur_prev(events, "executive", "time_to_merge") == (1.75, 1.0)


def test_ref016_developer_satisfaction() -> None:
    events = [ev(f"s{i}", "user.survey_submitted", at(f"11:1{i}"), user=f"u{i}", score=s)
              for i, s in enumerate([4, 5, 3])]
    events.append(ev("s9", "user.survey_submitted", at("10:10"), user="u9", score=2))
    # W: 12 / 3 = 4 ; P: 2 ; up
    r = k(events, "executive", "developer_satisfaction")
    assert (r["current_value"], r["previous_value"], r["trend"], r["unit"]) == (4.0, 2.0, "up", "score")


def test_ref017_process_adoption_rate() -> None:
    base = {"pr_number": 1, "repository": "r", "author": "a"}
    events = [
        ev("p1", "pr_created", at("11:01"), workflow_id="w1", **base),                    # default true
        ev("p2", "pr_created", at("11:02"), workflow_id="w2", qms_tracked=False, **base),
        ev("p3", "pr_created", at("11:03"), workflow_id="w3", qms_tracked=True, **base),
        ev("p4", "pr_created", at("10:03"), workflow_id="w4", qms_tracked=False, **base),
    ]
    # W: 2 of 3 -> 66.67 ; P: 0 of 1 -> 0
    assert cur_prev(events, "executive", "process_adoption_rate") == (pytest.approx(200 / 3), 0.0)


def test_ref018_executive_ids_and_units() -> None:
    d = dash([], "executive")
    assert len(d) == 13 and set(d) == {
        "gate_pass_rate", "defect_detection_rate", "false_positive_rate", "compliance_adherence",
        "overall_quality_score", "average_review_cycle_time", "workflow_completion_rate",
        "agent_utilization_rate", "sla_adherence", "cost_per_review", "time_to_merge",
        "developer_satisfaction", "process_adoption_rate"}
    assert all(v["unit"] == KPI_UNITS[kid] for kid, v in d.items())


# ---------------------------------------------------------------- operational --------


def _workflow_state_events() -> list[dict]:
    return [
        *_wf("w1", at("09:00"), None),
        ev("w1-s1", "step_entered", at("09:05"), workflow_id="w1", step="dor_validation"),
        ev("w1-s2", "step_entered", at("11:00"), workflow_id="w1", step="code_review"),
        *_wf("w2", at("10:00"), at("11:30")),                 # active at 11:00 only, no step
        *_wf("w3", at("11:20"), None),                        # active now, no step
        *_wf("w4", at("12:00"), None),                        # created at end: not yet active
        ev("w5-s1", "step_entered", at("10:00"), workflow_id="w5", step="code_review"),  # no pr_created
        *_wf("w6", at("10:30"), None),
        ev("w6-s1", "step_entered", at("10:40"), workflow_id="w6", step="dod_validation"),
        ev("w6-s2", "step_entered", at("11:50"), workflow_id="w6", step="final_approval"),
    ]


def test_ref019_active_reviews_and_steps() -> None:
    d = dash(_workflow_state_events(), "operational")
    got = {kid: (d[kid]["current_value"], d[kid]["previous_value"]) for kid in (
        "total_active_reviews", "pending_dor_validations", "in_progress_reviews",
        "awaiting_dod_validation", "final_approvals_needed")}
    # at 12:00: w1 (code_review), w3 (no step), w6 (final_approval) -> 3
    # at 11:00: w1 (dor; its code_review at 11:00 is not < 11:00), w2 (no step), w6 (dod) -> 3
    assert got == {"total_active_reviews": (3, 3), "pending_dor_validations": (0, 1),
                   "in_progress_reviews": (1, 0), "awaiting_dod_validation": (0, 1),
                   "final_approvals_needed": (1, 0)}
    assert d["total_active_reviews"]["trend"] == "flat"
    assert d["in_progress_reviews"]["trend"] == "up"


def test_ref020_workflow_state_null_without_pr_created() -> None:
    events = [ev("s", "step_entered", at("09:00"), workflow_id="w", step="code_review"),
              *_wf("late", at("11:30"), None)]
    d = dash(events, "operational")
    # at 11:00 no pr_created yet -> null ; at 12:00 one (no step) -> 1 and zeros
    assert (d["total_active_reviews"]["current_value"], d["total_active_reviews"]["previous_value"]) == (1, None)
    assert (d["in_progress_reviews"]["current_value"], d["in_progress_reviews"]["previous_value"]) == (0, None)


def test_ref021_agent_state() -> None:
    S = "system.agent_status_changed"
    events = [
        ev("a1-1", S, at("10:00"), agent_id="a1", status="active"),
        ev("a1-2", S, at("11:30"), agent_id="a1", status="idle"),
        ev("a2-1", S, at("10:30"), agent_id="a2", status="down"),
        ev("a3-1", S, at("11:00"), agent_id="a3", status="training"),
        ev("a4-1", S, at("11:59:59"), agent_id="a4", status="overloaded"),
        ev("a5-1", S, at("12:00"), agent_id="a5", status="active"),  # at end: unknown yet
        # same timestamp: latest by (ts, id) -> "x-2" (active)
        ev("x-2", S, at("11:10"), agent_id="a6", status="active"),
        ev("x-1", S, at("11:10"), agent_id="a6", status="idle"),
    ]
    d = dash(events, "operational")
    got = {kid: (d[kid]["current_value"], d[kid]["previous_value"]) for kid in (
        "total_agents", "active_agents", "overloaded_agents", "idle_agents", "down_agents",
        "agents_in_training")}
    # 12:00: a1 idle, a2 down, a3 training, a4 overloaded, a6 active -> 5
    # 11:00: a1 active, a2 down -> 2
    assert got == {"total_agents": (5, 2), "active_agents": (1, 1), "overloaded_agents": (1, 0),
                   "idle_agents": (1, 0), "down_agents": (1, 1), "agents_in_training": (1, 0)}
    assert dash([], "operational")["down_agents"]["current_value"] is None


def test_ref022_queue_depth() -> None:
    Q = "system.queue_depth_updated"
    events = [ev("q1", Q, at("10:00"), queue="reviews", depth=5),
              ev("q2", Q, at("11:30"), queue="reviews", depth=7),
              ev("q3", Q, at("11:30"), queue="gates", depth=3),
              ev("q4", Q, at("12:00"), queue="gates", depth=99)]   # at end: not yet
    d = dash(events, "operational")
    assert {kid for kid in d if kid.startswith("queue_depth.")} == {"queue_depth.reviews", "queue_depth.gates"}
    assert (d["queue_depth.reviews"]["current_value"], d["queue_depth.reviews"]["previous_value"]) == (7, 5)
    assert (d["queue_depth.gates"]["current_value"], d["queue_depth.gates"]["previous_value"]) == (3, None)
    assert d["queue_depth.reviews"]["unit"] == "count"
    d2 = dash(events, "operational", queues=["reviews", "other"])
    assert {kid for kid in d2 if kid.startswith("queue_depth.")} == {"queue_depth.reviews", "queue_depth.other"}
    assert d2["queue_depth.other"]["current_value"] is None


def test_ref023_error_rate() -> None:
    E = "system.error_occurred"
    errors = [ev(f"e{i}", E, at(f"11:{10 * i:02d}"), component="c", error_type="t") for i in range(3)]
    unknown = [ev("u1", "workflow.something_new", at("10:30"))]
    # W (1 h): 3 errors -> 3.0 / h ; P holds only an unknown-type event -> 0.0
    r = k(errors + unknown, "operational", "error_rate")
    assert (r["current_value"], r["previous_value"], r["unit"]) == (3.0, 0.0, "per_hour")
    # T = 2 h: W = [10:00, 12:00) -> 3 / 2 = 1.5 ; P = [08:00, 10:00) empty -> null
    r2 = k(errors + unknown, "operational", "error_rate", T=timedelta(hours=2))
    assert (r2["current_value"], r2["previous_value"]) == (1.5, None)
    assert k([], "operational", "error_rate")["current_value"] is None


def test_ref024_operational_ids() -> None:
    assert set(dash([], "operational")) == {
        "total_active_reviews", "pending_dor_validations", "in_progress_reviews",
        "awaiting_dod_validation", "final_approvals_needed", "total_agents", "active_agents",
        "overloaded_agents", "idle_agents", "down_agents", "agents_in_training", "error_rate"}


# ---------------------------------------------------------------- quality assurance --


def test_ref025_gate_counts_and_average_time() -> None:
    events = [
        ev("g1", "quality_gate_executed", at("11:01"), workflow_id="w", gate_name="a", passed=True,
           execution_time=60),
        ev("g2", "quality_gate_failed", at("11:02"), workflow_id="w", gate_name="a", execution_time=120),
        ev("g3", "quality_gate_passed", at("11:03"), workflow_id="w", gate_name="b"),  # no time
        ev("g4", "quality_gate_passed", at("10:03"), workflow_id="w", gate_name="b", execution_time=30),
    ]
    d = dash(events, "qa")
    got = {kid: (d[kid]["current_value"], d[kid]["previous_value"]) for kid in (
        "total_gates_executed", "gates_passed", "gates_failed", "average_gate_time")}
    # W: 3 runs, 2 passed, 1 failed, mean time (60 + 120) / 2 s = 1.5 min
    # P: 1 run passed, 0 failed (0, not null), 30 s = 0.5 min
    assert got == {"total_gates_executed": (3, 1), "gates_passed": (2, 1), "gates_failed": (1, 0),
                   "average_gate_time": (1.5, 0.5)}
    assert d["average_gate_time"]["unit"] == "minutes"
    empty = dash([], "qa")
    assert all(empty[kid]["current_value"] is None for kid in got)


def test_ref026_per_gate_kpis() -> None:
    G = "quality_gate_executed"
    events = [ev(f"a{i}", G, at(f"11:{i:02d}"), workflow_id="w", gate_name="a", passed=i != 2,
                 execution_time=t) for i, t in enumerate([30, 90, 60])]
    events += [ev(f"b{i}", G, at("11:30"), workflow_id="w", gate_name="big", passed=True,
                  execution_time=60 * i) for i in range(1, 21)]
    events.append(ev("c1", "quality_gate_failed", at("10:30"), workflow_id="w", gate_name="old"))
    d = dash(events, "qa")
    # a: 2 of 3 passed ; 3 runs ; p95 rank ceil(2.85) = 3 -> 90 s = 1.5 min
    assert d["gate.a.pass_rate"]["current_value"] == pytest.approx(200 / 3)
    assert (d["gate.a.executions"]["current_value"], d["gate.a.p95_time"]["current_value"]) == (3, 1.5)
    # big: times 1..20 min ; rank ceil(19.0) = 19 -> 19 min
    assert d["gate.big.p95_time"]["current_value"] == 19.0
    # old: only in P -> current null, previous 0 % of 1 run, no time -> null
    assert [d[f"gate.old.{m}"]["current_value"] for m in ("pass_rate", "executions", "p95_time")] == [None] * 3
    assert [d[f"gate.old.{m}"]["previous_value"] for m in ("pass_rate", "executions", "p95_time")] == [0.0, 1, None]
    assert [d[f"gate.a.{m}"]["unit"] for m in ("pass_rate", "executions", "p95_time")] == [
        "percentage", "count", "minutes"]
    # an explicit gate list replaces the discovered one
    d2 = dash(events, "qa", gates=["a", "never"])
    assert {kid for kid in d2 if kid.startswith("gate.")} == {
        f"gate.{g}.{m}" for g in ("a", "never") for m in ("pass_rate", "executions", "p95_time")}
    assert d2["gate.never.executions"]["current_value"] is None


def test_ref027_defects_found() -> None:
    events = [ev("d1", "defect_found", at("11:10"), workflow_id="w", defect_id="D1", severity="minor"),
              ev("d2", "defect_found", at("11:20"), workflow_id="w", defect_id="D2", severity="major"),
              ev("d3", "defect_found", at("09:20"), workflow_id="w", defect_id="D3", severity="major")]
    # W: 2 ; P: none -> null (not 0)
    assert cur_prev(events, "qa", "defects_found") == (2, None)


def test_ref028_critical_defects() -> None:
    F, R = "defect_found", "defect_resolved"
    events = [
        ev("f1", F, at("09:00"), workflow_id="w", defect_id="D1", severity="critical"),
        ev("r1", R, at("11:30"), defect_id="D1", resolution="fixed"),          # open at 11:00 only
        ev("f2", F, at("11:10"), workflow_id="w", defect_id="D2", severity="critical", stage="production"),
        ev("f3", F, at("09:00"), workflow_id="w", defect_id="D3", severity="major"),
        ev("f4a", F, at("10:00"), workflow_id="w", defect_id="D4", severity="minor"),   # earliest: minor
        ev("f4b", F, at("10:30"), workflow_id="w", defect_id="D4", severity="critical"),
        ev("f5", F, at("10:00"), workflow_id="w", defect_id="D5", severity="critical"),
        ev("r5", R, at("10:30"), defect_id="D5", resolution="false_positive"),  # any resolution closes
        ev("f6", F, at("10:50"), workflow_id="w", defect_id="D6", severity="critical"),
        ev("r6", R, at("12:00"), defect_id="D6", resolution="fixed"),          # at end: still open
    ]
    # 12:00: D2, D6 -> 2 ; 11:00: D1, D6 -> 2
    assert cur_prev(events, "qa", "critical_defects") == (2, 2)
    late = [ev("f", F, at("11:30"), workflow_id="w", defect_id="D", severity="minor")]
    # 12:00: a defect exists, none critical -> 0 ; 11:00: no defect yet -> null
    assert cur_prev(late, "qa", "critical_defects") == (0, None)


def test_ref029_defect_resolution_time() -> None:
    F, R = "defect_found", "defect_resolved"
    events = [
        ev("f1", F, at("09:00"), workflow_id="w", defect_id="D1", severity="minor"),
        ev("r1", R, at("11:30"), defect_id="D1", resolution="fixed"),            # 2.5 h
        ev("f2", F, at("11:00"), workflow_id="w", defect_id="D2", severity="minor"),
        ev("r2", R, at("11:15"), defect_id="D2", resolution="wont_fix"),         # 0.25 h
        ev("r3", R, at("11:20"), defect_id="D3", resolution="fixed"),            # unknown: skipped
        ev("f4a", F, at("08:00"), workflow_id="w", defect_id="D4", severity="minor"),
        ev("f4b", F, at("10:00"), workflow_id="w", defect_id="D4", severity="minor"),
        ev("r4", R, at("11:00"), defect_id="D4", resolution="fixed"),            # from earliest: 3 h
        ev("r5", R, at("10:30"), defect_id="D2", resolution="fixed"),            # P: found later -> -0.5 h
    ]
    # W: (2.5 + 0.25 + 3) / 3 = 1.91667 ; P: 10:30 - 11:00 = -0.5
    r = k(events, "qa", "defect_resolution_time")
    assert r["current_value"] == pytest.approx(5.75 / 3)
    assert (r["previous_value"], r["unit"]) == (-0.5, "hours")


def test_ref030_defect_prevention_rate() -> None:
    F = "defect_found"
    events = [
        *_wf("w1", None, at("11:10")),
        ev("w1-d", F, at("10:00"), workflow_id="w1", defect_id="A", severity="minor", stage="production"),
        *_wf("w2", None, at("11:20")),
        ev("w2-d", F, at("11:00"), workflow_id="w2", defect_id="B", severity="minor"),  # review stage
        *_wf("w3", None, at("11:30")),
        ev("w3-d", F, at("12:00"), workflow_id="w3", defect_id="C", severity="minor", stage="production"),
        *_wf("w4", None, at("11:40"), "rejected"),
        *_wf("w5", None, at("10:30")),
        ev("w5-d", F, at("11:30"), workflow_id="w5", defect_id="E", severity="minor", stage="production"),
    ]
    # W merged: w1 (prod defect), w2, w3 (prod defect only at end) -> 2 / 3 without
    # P merged: w5, its prod defect found at 11:30 >= 11:00 -> 1 / 1 without
    assert cur_prev(events, "qa", "defect_prevention_rate") == (pytest.approx(200 / 3), 100.0)


def _steps(wid: str, times: list[str]) -> list[dict]:
    names = ["dor_validation", "code_review", "dod_validation", "final_approval"]
    return [ev(f"{wid}-step{i}", "step_entered", ts, workflow_id=wid, step=names[i])
            for i, ts in enumerate(times)]


def test_ref031_audit_readiness_score() -> None:
    C = "compliance_checked"
    events = [
        *_wf("w1", None, at("11:30")), *_steps("w1", [at("09:00")] * 4),
        ev("w1-c", C, at("09:30"), workflow_id="w1", policy="p", passed=False),   # any result -> ready
        *_wf("w2", None, at("11:40"), "rejected"), *_steps("w2", [at("09:00")] * 3),  # no final_approval
        ev("w2-c", C, at("09:30"), workflow_id="w2", policy="p", passed=True),
        *_wf("w3", None, at("11:50")), *_steps("w3", [at("09:00")] * 4),
        ev("w3-c", C, at("12:00"), workflow_id="w3", policy="p", passed=True),    # check at end: too late
        *_wf("w4", None, at("11:10"), "abandoned"),
        *_steps("w4", [at("09:00"), at("09:00"), at("09:00"), at("11:20")]),   # after completion, < end
        ev("w4-c", C, at("11:55"), workflow_id="w4", policy="p", passed=True),
        *_wf("w5", None, at("10:30")), *_steps("w5", [at("09:00")] * 4),
        ev("w5-c", C, at("11:00"), workflow_id="w5", policy="p", passed=True),    # P: check at end-T: not ready
    ]
    # W: w1, w4 ready of w1..w4 -> 50 ; P: w5 not ready -> 0
    assert cur_prev(events, "qa", "audit_readiness_score") == (50.0, 0.0)


def test_ref032_policy_violations() -> None:
    C = "compliance_checked"
    events = [ev("c1", C, at("11:10"), workflow_id="w", policy="p", passed=False),
              ev("c2", C, at("11:20"), workflow_id="w", policy="q", passed=False),
              ev("c3", C, at("11:30"), workflow_id="w", policy="r", passed=True),
              ev("c4", C, at("10:30"), workflow_id="w", policy="r", passed=True)]
    # W: 2 failed ; P: checks ran, none failed -> 0
    assert cur_prev(events, "qa", "policy_violations") == (2, 0)
    assert cur_prev([], "qa", "policy_violations") == (None, None)


def test_ref033_remediation_pending() -> None:
    C, V = "compliance_checked", "violation_remediated"
    events = [
        ev("c1", C, at("10:00"), workflow_id="w1", policy="p1", passed=False),
        ev("v1", V, at("10:30"), workflow_id="w1", policy="p1"),        # remediates c1
        ev("c2", C, at("11:00"), workflow_id="w1", policy="p1", passed=False),  # remediation is earlier
        ev("c3", C, at("11:10"), workflow_id="w2", policy="p2", passed=False),
        ev("v3", V, at("11:10"), workflow_id="w2", policy="p2"),        # same instant: not later
        ev("c4", C, at("10:40"), workflow_id="w3", policy="p3", passed=False),
        ev("v4", V, at("12:00"), workflow_id="w3", policy="p3"),        # at end: not yet
        ev("c5", C, at("10:20"), workflow_id="w4", policy="p4", passed=False),
        ev("v5", V, at("10:25"), workflow_id="w4", policy="other"),     # other policy
        ev("c6", C, at("10:20"), workflow_id="w5", policy="p5", passed=True),
    ]
    # 12:00: c2, c3, c4, c5 -> 4 ; 11:00: c4, c5 (c1 remediated at 10:30) -> 2
    assert cur_prev(events, "qa", "remediation_pending") == (4, 2)
    assert cur_prev([], "qa", "remediation_pending") == (None, None)


def test_ref034_qa_ids() -> None:
    assert set(dash([], "qa")) == {
        "total_gates_executed", "gates_passed", "gates_failed", "average_gate_time",
        "defects_found", "critical_defects", "defect_resolution_time", "defect_prevention_rate",
        "compliance_checks_passed", "audit_readiness_score", "policy_violations",
        "remediation_pending"}


# ---------------------------------------------------------------- developer ----------


def test_ref035_pending_reviews() -> None:
    S, D = "review_started", "review_completed"
    events = [
        ev("s1", S, at("10:00"), workflow_id="w1", reviewer="alice"),
        ev("d1", D, at("10:30"), workflow_id="w1", reviewer="alice", verdict="approved"),
        ev("s1b", S, at("11:00"), workflow_id="w1", reviewer="alice"),   # restarted: pending again
        ev("s2", S, at("10:15"), workflow_id="w2", reviewer="alice"),
        ev("d2", D, at("11:30"), workflow_id="w2", reviewer="alice", verdict="changes_requested"),
        ev("s3", S, at("10:00"), workflow_id="w3", reviewer="bob"),
        ev("s4", S, at("11:45"), workflow_id="w4", reviewer="alice"),
        ev("d4", D, at("11:50"), workflow_id="w4", reviewer="bob", verdict="approved"),  # not alice's
    ]
    # 12:00: w1, w4 -> 2 ; 11:00: w2 only (w1's latest start before 11:00 was completed) -> 1
    assert cur_prev(events, "developer", "pending_reviews", user="alice") == (2, 1)
    assert cur_prev(events, "developer", "pending_reviews", user="carol") == (None, None)


def test_ref036_completed_today() -> None:
    D = "review_completed"
    events = [ev("d1", D, at("00:00"), workflow_id="w", reviewer="alice", verdict="approved"),
              ev("d2", D, at("08:00"), workflow_id="w", reviewer="alice", verdict="approved"),
              ev("d3", D, at("11:30"), workflow_id="w", reviewer="alice", verdict="approved"),
              ev("d4", D, at("12:00"), workflow_id="w", reviewer="alice", verdict="approved"),  # at end
              ev("d5", D, at("23:59", day=16), workflow_id="w", reviewer="alice", verdict="approved"),
              ev("d6", D, at("09:00", day=16), workflow_id="w", reviewer="alice", verdict="approved"),
              ev("d7", D, at("09:00"), workflow_id="w", reviewer="bob", verdict="approved")]
    # T = 1 h: [17th 00:00, 12:00) -> d1, d2, d3 = 3 ; at 11:00 -> d1, d2 = 2
    assert cur_prev(events, "developer", "completed_today", user="alice") == (3, 2)
    # T = 24 h: previous at 16th 12:00 -> [16th 00:00, 16th 12:00) -> d6 = 1
    r = k(events, "developer", "completed_today", T=timedelta(hours=24), user="alice")
    assert (r["current_value"], r["previous_value"], r["unit"]) == (3, 1, "count")
    # T = 4 h: previous at 08:00 -> d1 only (d2 at 08:00 excluded) = 1
    assert k(events, "developer", "completed_today", T=timedelta(hours=4), user="alice")[
        "previous_value"] == 1
    assert cur_prev(events, "developer", "completed_today", user="carol") == (None, None)


def test_ref037_average_feedback_time() -> None:
    S, D = "review_started", "review_completed"
    events = [
        ev("s1a", S, at("10:00"), workflow_id="w1", reviewer="alice"),
        ev("s1b", S, at("10:30"), workflow_id="w1", reviewer="alice"),
        ev("d1", D, at("11:00"), workflow_id="w1", reviewer="alice", verdict="approved"),  # latest start: 0.5 h
        ev("s2", S, at("11:20"), workflow_id="w2", reviewer="alice"),
        ev("d2", D, at("11:20"), workflow_id="w2", reviewer="alice", verdict="approved"),  # same ts: unpaired
        ev("s3", S, at("11:00"), workflow_id="w3", reviewer="bob"),
        ev("d3", D, at("11:30"), workflow_id="w3", reviewer="alice", verdict="approved"),  # bob's start: unpaired
        ev("s4", S, at("10:40"), workflow_id="w4", reviewer="alice"),
        ev("d4", D, at("11:40"), workflow_id="w4", reviewer="alice", verdict="approved"),  # 1 h
        ev("d4b", D, at("11:50"), workflow_id="w4", reviewer="bob", verdict="approved"),   # not alice
        ev("d5", D, at("10:45"), workflow_id="w1", reviewer="alice", verdict="approved"),  # P: 10:30 -> 0.25 h
    ]
    # W: (0.5 + 1) / 2 = 0.75 ; P: 0.25
    r = k(events, "developer", "average_feedback_time", user="alice")
    assert (r["current_value"], r["previous_value"], r["unit"]) == (0.75, 0.25, "hours")


def test_ref038_quality_score_trend() -> None:
    P, F = "quality_gate_passed", "quality_gate_failed"
    events = [
        *_wf("w1", at("08:00"), None, author="alice"),
        *_wf("w2", at("08:00"), None, author="bob"),
        ev("w3-pr-bob", "pr_created", at("08:00"), workflow_id="w3", pr_number=3, repository="r", author="bob"),
        ev("w3-pr-alice", "pr_created", at("09:00"), workflow_id="w3", pr_number=3, repository="r",
           author="alice"),                                   # later creation event: w3 stays bob's
        # W: 3 passed, 1 failed on w1 -> 75 (bob's w2/w3 failures ignored)
        *[ev(f"wp{i}", P, at(f"11:0{i}"), workflow_id="w1", gate_name="g") for i in range(3)],
        ev("wf", F, at("11:05"), workflow_id="w1", gate_name="g"),
        ev("wb", F, at("11:06"), workflow_id="w2", gate_name="g"),
        ev("wc", F, at("11:07"), workflow_id="w3", gate_name="g"),
        # P: 1 passed 1 failed -> 50
        ev("pp", P, at("10:01"), workflow_id="w1", gate_name="g"),
        ev("pf", F, at("10:02"), workflow_id="w1", gate_name="g"),
        # window before P ([09:00, 10:00)): 1 passed -> 100
        ev("qp", P, at("09:01"), workflow_id="w1", gate_name="g"),
    ]
    # current = 75 - 50 = 25 ; previous = 50 - 100 = -50 ; up
    r = k(events, "developer", "quality_score_trend", user="alice")
    assert (r["current_value"], r["previous_value"], r["trend"], r["unit"]) == (25.0, -50.0, "up", "points")
    no_pp = [e for e in events if e["id"] != "qp"]
    assert cur_prev(no_pp, "developer", "quality_score_trend", user="alice") == (25.0, None)


def test_ref039_team_velocity() -> None:
    events = [
        *_wf("a-old", at("08:00"), None, team="blue", author="alice"),
        *_wf("a-new", at("11:30"), None, team="red", author="alice"),   # alice's latest: team red
        *_wf("r1", at("06:00"), at("11:10"), team="red", author="bob"),
        *_wf("r2", at("06:00"), at("11:50"), team="red", author="carol"),
        *_wf("r3", at("06:00"), at("11:20"), "rejected", team="red", author="bob"),
        *_wf("b1", at("06:00"), at("11:20"), team="blue", author="dan"),
        *_wf("r4", at("06:00"), at("10:20"), team="red", author="bob"),   # P
        *_wf("r5", at("06:00"), at("09:20"), team="red", author="bob"),
    ]
    # T = 1 h: W has r1, r2 -> 2 * (168 h / 1 h) = 336 ; P: r4 -> 168
    r = k(events, "developer", "team_velocity", user="alice")
    assert (r["current_value"], r["previous_value"], r["trend"], r["unit"]) == (336.0, 168.0, "up", "per_7d")
    # T = 2 h: W = [10:00, 12:00): r1, r2, r4 -> 3 * 84 = 252 ; P = [08:00, 10:00): r5 -> 84
    assert cur_prev(events, "developer", "team_velocity", user="alice", T=timedelta(hours=2)) == (252.0, 84.0)
    # dan (blue): b1 in W -> 168, nothing in P -> 0 (team known, no merges: 0, not null)
    assert cur_prev(events, "developer", "team_velocity", user="dan") == (168.0, 0.0)
    # latest pr without team -> null ; no pr -> null
    no_team = events + _wf("a-x", at("11:40"), None, author="alice")
    assert cur_prev(no_team, "developer", "team_velocity", user="alice") == (None, None)
    assert cur_prev(events, "developer", "team_velocity", user="zed") == (None, None)


def test_ref040_skill_development_areas() -> None:
    F = "defect_found"
    cats = ["style", "security", "naming", "style", "security", None]
    events = [*_wf("w1", at("08:00"), None, author="alice"), *_wf("w2", at("08:00"), None, author="bob")]
    events += [ev(f"d{i}", F, at(f"11:1{i}"), workflow_id="w1", defect_id=f"D{i}", severity="minor",
                  **({"category": c} if c else {})) for i, c in enumerate(cats)]
    events += [ev("b1", F, at("11:30"), workflow_id="w2", defect_id="B1", severity="minor", category="naming"),
               ev("b2", F, at("11:31"), workflow_id="w2", defect_id="B2", severity="minor", category="naming"),
               ev("p1", F, at("10:30"), workflow_id="w1", defect_id="P1", severity="major", category="perf",
                  stage="production")]
    # W on alice's w1: style 2, security 2, naming 1 -> tie by name: [security, style]
    # P: [perf] ; list KPIs have no trend
    r = k(events, "developer", "skill_development_areas", user="alice")
    assert (r["current_value"], r["previous_value"], r["trend"], r["unit"]) == (
        ["security", "style"], ["perf"], None, "list")
    assert cur_prev(events, "developer", "skill_development_areas", user="carol") == (None, None)


def test_ref041_suggested_reviews_user_independent() -> None:
    events = [
        *_wf("w1", at("09:00"), None), *_steps("w1", [at("09:10"), at("10:30")]),   # code_review, unstarted
        *_wf("w2", at("09:00"), None), *_steps("w2", [at("09:10"), at("10:30")]),
        ev("w2-rs", "review_started", at("11:30"), workflow_id="w2", reviewer="bot"),  # started in W
        *_wf("w3", at("09:00"), None), *_steps("w3", [at("09:10")]),                # dor
        *_wf("w4", at("09:00"), at("11:15")), *_steps("w4", [at("09:10"), at("10:30")]),  # done in W
        *_steps("w5", [at("09:10"), at("10:30")]),                                # no pr_created
    ]
    # 12:00: w1 -> 1 ; 11:00: w1, w2, w4 -> 3
    for user in ("alice", "bob"):
        r = k(events, "developer", "suggested_reviews", user=user)
        assert (r["current_value"], r["previous_value"], r["trend"]) == (1, 3, "down")


def test_ref042_developer_ids_and_user_required() -> None:
    assert set(dash([], "developer", user="alice")) == {
        "pending_reviews", "completed_today", "average_feedback_time", "quality_score_trend",
        "team_velocity", "skill_development_areas", "suggested_reviews"}
    with pytest.raises(ValueError):
        dash([], "developer")
    with pytest.raises(ValueError):
        dash([], "finance")
    assert DASHBOARDS == ("executive", "operational", "qa", "developer")


# ---------------------------------------------------------------- trend and units ----


@pytest.mark.parametrize("cur, prev, expected", [
    (None, 1.0, "flat"), (1.0, None, "flat"), (None, None, "flat"),
    (5, 5, "flat"), (0, 0, "flat"),
    (100.4, 100.0, "flat"),     # |0.4| < 0.5 % of 100
    (100.5, 100.0, "up"),       # exactly 0.5 %: not below -> up
    (99.4, 100.0, "down"),
    (1, 0, "up"), (-1, 0, "down"),
    (-100.4, -100.0, "flat"),   # relative to |previous|
    (-101.0, -100.0, "down"),
    (["a"], ["b"], None),
])
def test_ref043_trend_rule(cur: object, prev: object, expected: str | None) -> None:
    assert trend(cur, prev) == expected


def test_ref044_units() -> None:
    assert KPI_UNITS["average_gate_time"] == "minutes"
    assert KPI_UNITS["error_rate"] == "per_hour"
    assert KPI_UNITS["team_velocity"] == "per_7d"
    assert KPI_UNITS["quality_score_trend"] == "points"
    assert KPI_UNITS["skill_development_areas"] == "list"
    assert KPI_UNITS["cost_per_review"] == "usd"
    assert KPI_UNITS["developer_satisfaction"] == "score"
    assert KPI_UNITS["suggested_reviews"] == "count"
    assert (kpi_unit("queue_depth.x"), kpi_unit("gate.a.b.p95_time")) == ("count", "minutes")
