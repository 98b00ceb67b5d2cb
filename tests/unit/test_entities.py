"""Entity pages' assembly (data/entities.py), pure: a workflow's time in each step, its SLA
status, cost and defects, an agent's time in each status and its false positives — every
expected number worked out by hand from the events below."""
from __future__ import annotations

import random
from typing import Any

import pytest

from auth.sanitize import Sanitizer
from data import entities as E
from data.timeutil import fmt_ms

T0 = 1_750_000_000_000 // 60_000 * 60_000
MIN = 60_000
H = 60 * MIN


def ev(eid: str, minute: float, etype: str, **data: Any) -> dict[str, Any]:
    return {"id": eid, "type": etype, "timestamp": fmt_ms(int(T0 + minute * MIN)), "source": "test",
            "data": data, "metadata": {"priority": "normal"}}


def workflow_events(done: bool = True) -> list[dict[str, Any]]:
    """Created at 0; DoR 2; code review 10; DoD 40; back to code review 45; DoD 55; final 60;
    merged at 70 (when `done`)."""
    w = "WF-1"
    evs = [
        ev("c1", 0, "workflow.pr_created", workflow_id=w, pr_number=7, repository="qms-core", author="alice.chen",
           team="platform", title="feat: add retry logic"),
        ev("s1", 2, "workflow.step_entered", workflow_id=w, step="dor_validation"),
        ev("g1", 5, "workflow.quality_gate_executed", workflow_id=w, gate_name="dor-checklist-gate", passed=False,
           agent_id="qms-dor-validator", execution_time=20),
        ev("g2", 8, "workflow.quality_gate_executed", workflow_id=w, gate_name="dor-checklist-gate", passed=True,
           agent_id="qms-dor-validator", execution_time=15),
        ev("s2", 10, "workflow.step_entered", workflow_id=w, step="code_review"),
        ev("g3", 11, "workflow.quality_gate_failed", workflow_id=w, gate_name="lint-gate", agent_id="qms-style-linter"),
        ev("r1", 12, "workflow.review_started", workflow_id=w, reviewer="qms-code-reviewer"),
        ev("d1", 14, "workflow.defect_found", workflow_id=w, defect_id="D1", severity="critical", category="security",
           found_by="qms-code-reviewer"),
        ev("d2", 15, "workflow.defect_found", workflow_id=w, defect_id="D2", severity="minor", category="style",
           found_by="bruno.silva"),
        ev("r2", 20, "workflow.review_completed", workflow_id=w, reviewer="qms-code-reviewer",
           verdict="changes_requested", cost_usd=12.345),
        ev("r3", 30, "workflow.review_started", workflow_id=w, reviewer="qms-code-reviewer"),
        ev("r4", 38, "workflow.review_completed", workflow_id=w, reviewer="qms-code-reviewer", verdict="approved",
           cost_usd=0.1),
        ev("s3", 40, "workflow.step_entered", workflow_id=w, step="dod_validation"),
        ev("k1", 42, "workflow.compliance_checked", workflow_id=w, policy="license-check", passed=False),
        ev("s4", 45, "workflow.step_entered", workflow_id=w, step="code_review"),
        ev("k2", 50, "workflow.violation_remediated", workflow_id=w, policy="license-check"),
        ev("r5", 52, "workflow.review_completed", workflow_id=w, reviewer="bruno.silva", verdict="approved",
           cost_usd=0.2),
        ev("s5", 55, "workflow.step_entered", workflow_id=w, step="dod_validation"),
        ev("k3", 56, "workflow.compliance_checked", workflow_id=w, policy="secrets-scan", passed=True),
        ev("s6", 60, "workflow.step_entered", workflow_id=w, step="final_approval"),
    ]
    if done:
        evs.append(ev("x1", 70, "workflow.completed", workflow_id=w, outcome="merged"))
    return evs


RESOLUTIONS = {"D1": [ev("dr1", 25, "workflow.defect_resolved", defect_id="D1", resolution="false_positive")]}


def test_ent001_time_in_each_step_of_a_finished_workflow() -> None:
    doc = E.workflow_doc("WF-1", workflow_events(), RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    got = {s["step"]: s["time_ms"] for s in doc["steps"]}
    # created 0-2, DoR 2-10, code review 10-40 and 45-55, DoD 40-45 and 55-60, final 60-70
    assert got == {"created": 2 * MIN, "dor_validation": 8 * MIN, "code_review": 40 * MIN,
                   "dod_validation": 10 * MIN, "final_approval": 10 * MIN}
    visits = {s["step"]: s["visits"] for s in doc["steps"]}
    assert visits == {"created": 1, "dor_validation": 1, "code_review": 2, "dod_validation": 2, "final_approval": 1}
    assert sum(got.values()) == 70 * MIN, "the steps tile the workflow's life"
    assert [s["step"] for s in doc["segments"]] == ["created", "dor_validation", "code_review", "dod_validation",
                                                    "code_review", "dod_validation", "final_approval"]
    assert not any(s["open"] for s in doc["segments"])
    assert doc["summary"]["current_step"] is None and doc["summary"]["outcome"] == "merged"


def test_ent002_events_in_any_order_give_the_same_page() -> None:
    evs = workflow_events()
    first = E.workflow_doc("WF-1", evs, RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    random.Random(3).shuffle(evs)
    again = E.workflow_doc("WF-1", evs, RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    assert again == first
    assert [e["id"] for e in first["events"]][:3] == ["c1", "s1", "g1"]     # oldest first


def test_ent003_sla_met_missed_and_open() -> None:
    met = E.workflow_doc("WF-1", workflow_events(), {}, now=T0 + 500 * MIN, sla_ms=70 * MIN)["sla"]
    assert (met["status"], met["elapsed_ms"], met["open"]) == ("met", 70 * MIN, False)   # equal to the target is met
    missed = E.workflow_doc("WF-1", workflow_events(), {}, now=T0 + 500 * MIN, sla_ms=69 * MIN)["sla"]
    assert (missed["status"], missed["elapsed_ms"]) == ("missed", 70 * MIN)
    open_ = E.workflow_doc("WF-1", workflow_events(done=False), {}, now=T0 + 100 * MIN, sla_ms=8 * H)
    assert open_["sla"]["status"] == "open" and open_["sla"]["open"] is True
    assert open_["sla"]["time_left_ms"] == 380 * MIN and open_["sla"]["due"] == fmt_ms(T0 + 8 * H)
    late = E.workflow_doc("WF-1", workflow_events(done=False), {}, now=T0 + 100 * MIN, sla_ms=H)["sla"]
    assert (late["status"], late["open"], late["time_left_ms"]) == ("missed", True, -40 * MIN)
    # The open workflow is in final approval since minute 60: 40 minutes so far, still counting.
    steps = {s["step"]: s for s in open_["steps"]}
    assert steps["final_approval"]["time_ms"] == 40 * MIN and steps["final_approval"]["open"] is True
    assert open_["summary"]["current_step"] == "final_approval"
    nameless = E.workflow_doc("WF-1", [e for e in workflow_events() if e["id"] != "c1"], {}, T0 + 500 * MIN, H)
    assert nameless["sla"]["status"] == "unknown", "no pr_created: no start to measure from"


def test_ent004_cost_reviews_gates_defects_compliance() -> None:
    doc = E.workflow_doc("WF-1", workflow_events(), RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    assert doc["cost_usd"] == 12.645                       # 12.345 + 0.1 + 0.2, summed exactly
    assert doc["counts"] == {"events": 22, "gate_runs": 3, "gates_failed": 2, "reviews_completed": 3,
                             "defects": 2, "defects_open": 1, "compliance_checks": 2, "compliance_failed": 1}
    reviews = doc["reviews"]
    assert [(r["reviewer"], r["verdict"], r["duration_ms"]) for r in reviews] == [
        ("qms-code-reviewer", "changes_requested", 8 * MIN), ("qms-code-reviewer", "approved", 8 * MIN),
        ("bruno.silva", "approved", None)]                  # bruno never sent review_started
    gates = doc["gates"]
    assert [(g["gate_name"], g["passed"], g["step"]) for g in gates] == [
        ("dor-checklist-gate", False, "dor_validation"), ("dor-checklist-gate", True, "dor_validation"),
        ("lint-gate", False, "code_review")]
    d1, d2 = doc["defects"]
    assert (d1["defect_id"], d1["resolution"], d1["resolved"], d1["time_to_resolve_ms"]) == (
        "D1", "false_positive", fmt_ms(T0 + 25 * MIN), 11 * MIN)
    assert (d2["defect_id"], d2["resolution"], d2["status"]) == ("D2", None, "open")
    policies = {c["policy"]: c for c in doc["compliance"]}
    assert policies["license-check"]["checks"] == 1 and policies["license-check"]["failed"] == 1
    assert policies["license-check"]["pending_violations"] == 0       # remediated at 50
    assert policies["secrets-scan"]["failed"] == 0


def test_ent005_every_event_is_placed_in_its_step() -> None:
    doc = E.workflow_doc("WF-1", workflow_events(), RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    step = {e["id"]: e["step"] for e in doc["events"]}
    assert step["c1"] is None and step["g1"] == "dor_validation" and step["k1"] == "dod_validation"
    assert step["k2"] == "code_review" and step["x1"] == "final_approval"
    assert [e["id"] for e in doc["events"] if e["type"] == "workflow.defect_resolved"] == ["dr1"], \
        "a defect's resolution joins the workflow's timeline"


def test_ent006_latest_resolution_decides() -> None:
    res = [{"ts": 5, "id": "a", "resolution": "fixed"}, {"ts": 9, "id": "b", "resolution": "false_positive"},
           {"ts": 9, "id": "a2", "resolution": "wont_fix"}]
    assert E.latest_resolution(res)["resolution"] == "false_positive"      # (9, "b") > (9, "a2")
    assert E.latest_resolution([]) is None


def agent_events() -> tuple[list[tuple[int, str, str]], list[dict[str, Any]]]:
    """Status points (ts, event id, status) and the agent's indexed events in [0, 60)."""
    points = [(T0 + 10 * MIN, "a1", "active"), (T0 + 30 * MIN, "a2", "overloaded"), (T0 + 40 * MIN, "a3", "down"),
              (T0 + 50 * MIN, "a4", "active")]
    st = [ev(eid, (ts - T0) / MIN, "system.agent_status_changed", agent_id="qms-code-reviewer", status=s, load=ld)
          for (ts, eid, s), ld in zip(points, (0.5, 0.95, 0.0, 0.2))]
    evs = st + [
        ev("g1", 5, "workflow.quality_gate_executed", workflow_id="W1", gate_name="lint-gate", passed=True,
           agent_id="qms-code-reviewer"),
        ev("g2", 6, "workflow.quality_gate_failed", workflow_id="W2", gate_name="lint-gate", agent_id="qms-code-reviewer"),
        ev("g3", 7, "workflow.quality_gate_executed", workflow_id="W3", gate_name="security-scan-gate", passed=False,
           agent_id="qms-code-reviewer"),
        ev("as1", 8, "workflow.agent_assigned", workflow_id="W1", agent_id="qms-code-reviewer", queue="code_review_queue"),
        ev("r1", 9, "workflow.review_started", workflow_id="W1", reviewer="qms-code-reviewer"),
        ev("r2", 19, "workflow.review_completed", workflow_id="W1", reviewer="qms-code-reviewer", verdict="approved",
           cost_usd=10.5),
        ev("r3", 29, "workflow.review_completed", workflow_id="W2", reviewer="qms-code-reviewer",
           verdict="changes_requested", cost_usd=0.25),
        ev("d1", 11, "workflow.defect_found", workflow_id="W1", defect_id="D1", severity="major",
           found_by="qms-code-reviewer"),
        ev("d2", 12, "workflow.defect_found", workflow_id="W1", defect_id="D2", severity="minor",
           found_by="qms-code-reviewer"),
        ev("d3", 13, "workflow.defect_found", workflow_id="W2", defect_id="D3", severity="minor",
           found_by="qms-code-reviewer"),
        ev("d4", 14, "workflow.defect_found", workflow_id="W3", defect_id="D4", severity="critical",
           found_by="qms-code-reviewer"),
    ]
    return points, evs


AGENT_RESOLUTIONS = {
    "D1": [ev("x1", 20, "workflow.defect_resolved", defect_id="D1", resolution="false_positive")],
    "D2": [ev("x2", 20, "workflow.defect_resolved", defect_id="D2", resolution="fixed"),
           ev("x3", 22, "workflow.defect_resolved", defect_id="D2", resolution="false_positive")],
    "D4": [ev("x4", 20, "workflow.defect_resolved", defect_id="D4", resolution="false_positive"),
           ev("x5", 21, "workflow.defect_resolved", defect_id="D4", resolution="fixed")],
}


def agent(limit: int = 500) -> dict[str, Any]:
    points, evs = agent_events()
    current = {"agent_id": "qms-code-reviewer", "status": "active", "load": 0.2, "since": fmt_ms(T0 + 50 * MIN)}
    return E.agent_doc("qms-code-reviewer", current, points, (T0 - 5 * MIN, "a0", "idle", 0.1), evs,
                       lambda ids: {d: AGENT_RESOLUTIONS[d] for d in ids if d in AGENT_RESOLUTIONS}, T0, T0 + 60 * MIN, T0 + 90 * MIN, limit)


def test_ent007_agent_time_in_each_status() -> None:
    doc = agent()
    # idle 0-10 (carried in from before the window), active 10-30 and 50-60, overloaded 30-40, down 40-50
    assert doc["time_in_status"] == {"idle": 10 * MIN, "active": 30 * MIN, "overloaded": 10 * MIN, "down": 10 * MIN}
    series = doc["status_series"]
    assert [(p["timestamp"], p["status"], p["load"]) for p in series] == [
        (fmt_ms(T0), "idle", 0.1), (fmt_ms(T0 + 10 * MIN), "active", 0.5), (fmt_ms(T0 + 30 * MIN), "overloaded", 0.95),
        (fmt_ms(T0 + 40 * MIN), "down", 0.0), (fmt_ms(T0 + 50 * MIN), "active", 0.2)]
    assert series[0]["carried"] is True and not series[1]["carried"]


def test_ent008_agent_counts_and_false_positives() -> None:
    c = agent()["counts"]
    assert c == {"gate_runs": 3, "gates_failed": 2, "assignments": 1, "reviews_started": 1, "reviews_completed": 2,
                 "approved": 1, "changes_requested": 1, "review_cost_usd": 10.75, "defects_found": 4,
                 "defects_resolved": 3, "false_positives": 2, "status_changes": 4, "times_down": 1}
    # D1 (false_positive) and D2 (fixed, then false_positive) are false positives; D4 was
    # reclassified as fixed after being called a false positive; D3 is open.
    doc = agent()
    fp = sorted(d["defect_id"] for d in doc["defects"] if d["resolution"] == "false_positive")
    assert fp == ["D1", "D2"]
    assert doc["gates_by_name"] == {"lint-gate": {"runs": 2, "failed": 1}, "security-scan-gate": {"runs": 1, "failed": 1}}


def test_ent009_agent_rows_are_newest_first_and_counts_cover_the_window() -> None:
    doc = agent(limit=2)
    assert [g["id"] for g in doc["gate_runs"]] == ["g3", "g2"]
    assert doc["truncated"]["gate_runs"] is True and doc["counts"]["gate_runs"] == 3
    assert [r["id"] for r in doc["reviews"]] == ["r3", "r2"] and doc["truncated"]["reviews"] is True


def test_ent010_sanitised_for_a_pseudonymising_role() -> None:
    doc = E.workflow_doc("WF-1", workflow_events(), RESOLUTIONS, now=T0 + 500 * MIN, sla_ms=8 * H)
    san = Sanitizer(frozenset({"data.title", "data.user"}), True, b"s" * 32)
    out = E.sanitize_workflow(doc, san)
    assert out["summary"]["author"] == san.pseudonym("alice.chen") and "title" not in out["summary"]
    assert [r["reviewer"] for r in out["reviews"]] == ["qms-code-reviewer", "qms-code-reviewer",
                                                      san.pseudonym("bruno.silva")]
    assert [d["found_by"] for d in out["defects"]] == ["qms-code-reviewer", san.pseudonym("bruno.silva")]
    blob = repr(out)
    assert "alice.chen" not in blob and "bruno.silva" not in blob and "add retry logic" not in blob
    assert out["cost_usd"] == doc["cost_usd"] and out["steps"] == doc["steps"]
    assert E.sanitize_workflow(doc, Sanitizer.none()) == {**doc, "scope": {"teams": "all"}}
