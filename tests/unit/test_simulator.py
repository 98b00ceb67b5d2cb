"""Unit tests for data/simulator.py: determinism, continuation, the event contract, realism."""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from data.events import validate
from data.simulator import BOT, EXTERNAL_AGENT, REVIEW_AGENTS, Simulator

UTC = timezone.utc
TUESDAY = datetime(2026, 11, 24, tzinfo=UTC)  # a working day: the weekly rhythm puts it near the mean rate
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _int_ge0(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _enum(*allowed: str) -> Callable[[Any], bool]:
    return lambda v: v in allowed


_GATE = {"workflow_id": _str, "gate_name": _str}
# EVENTS.md: type -> required data fields and their checks
REQUIRED: dict[str, dict[str, Callable[[Any], bool]]] = {
    "workflow.pr_created": {"workflow_id": _str, "pr_number": _int_ge0, "repository": _str, "author": _str},
    "workflow.step_entered": {"workflow_id": _str,
                              "step": _enum("dor_validation", "code_review", "dod_validation", "final_approval")},
    "workflow.agent_assigned": {"workflow_id": _str, "agent_id": _str},
    "workflow.review_started": {"workflow_id": _str, "reviewer": _str},
    "workflow.review_completed": {"workflow_id": _str, "reviewer": _str,
                                  "verdict": _enum("approved", "changes_requested")},
    "workflow.quality_gate_executed": {**_GATE, "passed": _bool},
    "workflow.quality_gate_passed": _GATE,
    "workflow.quality_gate_failed": _GATE,
    "workflow.defect_found": {"workflow_id": _str, "defect_id": _str, "severity": _enum("critical", "major", "minor")},
    "workflow.defect_resolved": {"defect_id": _str, "resolution": _enum("fixed", "false_positive", "wont_fix")},
    "workflow.compliance_checked": {"workflow_id": _str, "policy": _str, "passed": _bool},
    "workflow.violation_remediated": {"workflow_id": _str, "policy": _str},
    "workflow.completed": {"workflow_id": _str, "outcome": _enum("merged", "rejected", "abandoned")},
    "system.agent_status_changed": {"agent_id": _str,
                                    "status": _enum("active", "idle", "overloaded", "down", "training")},
    "system.queue_depth_updated": {"queue": _str, "depth": _int_ge0},
    "system.performance_threshold_exceeded": {"metric": _str, "value": _num, "threshold": _num},
    "system.error_occurred": {"component": _str, "error_type": _str},
    "user.survey_submitted": {"user": _str, "score": lambda v: _num(v) and 1 <= v <= 5},
}
# Optional fields that, when present, must have the right shape.
_SHA = re.compile(r"^[0-9a-f]{40}$")
_KIND = _enum("human", "ai", "bot")
OPTIONAL: dict[str, dict[str, Callable[[Any], bool]]] = {
    "workflow.pr_created": {"qms_tracked": _bool, "team": _str},
    "workflow.review_started": {"reviewer_kind": _KIND},
    "workflow.review_completed": {"cost_usd": lambda v: _num(v) and v >= 0, "reviewer_kind": _KIND},
    "workflow.quality_gate_executed": {"execution_time": lambda v: _num(v) and v >= 0,
                                       "metrics": lambda v: isinstance(v, dict), "head_sha": _SHA.match},
    "workflow.quality_gate_passed": {"head_sha": _SHA.match},
    "workflow.quality_gate_failed": {"head_sha": _SHA.match},
    "workflow.defect_found": {"stage": _enum("review", "production"), "category": _str, "found_by": _str,
                              "found_by_kind": _KIND},
    "system.agent_status_changed": {"load": lambda v: _num(v) and 0 <= v <= 1, "skills": lambda v: isinstance(v, list)},
    "system.error_occurred": {"severity": _enum("info", "warning", "critical")},
}


def _ms(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def day() -> list[dict[str, Any]]:
    return list(Simulator(seed=3, rate=0.5).events_between(TUESDAY, TUESDAY + timedelta(days=1)))


@pytest.fixture(scope="module")
def week() -> list[dict[str, Any]]:
    start = datetime(2025, 8, 17, tzinfo=UTC)
    return list(Simulator(seed=11, rate=0.1).events_between(start, start + timedelta(days=7)))


def test_sim001_same_seed_same_events() -> None:
    a, b = TUESDAY + timedelta(hours=9), TUESDAY + timedelta(hours=11)
    first = list(Simulator(seed=5, rate=1.0).events_between(a, b))
    second = list(Simulator(seed=5, rate=1.0).events_between(a, b))
    assert first and first == second
    other = list(Simulator(seed=6, rate=1.0).events_between(a, b))
    assert [e["type"] for e in other] != [e["type"] for e in first]


def test_sim002_continuation_equals_single_run() -> None:
    a = TUESDAY + timedelta(hours=8)
    b, c = a + timedelta(minutes=97), a + timedelta(hours=3)
    whole = list(Simulator(seed=9, rate=1.0).events_between(a, c))
    sim = Simulator(seed=9, rate=1.0)
    parts = list(sim.events_between(a, b)) + list(sim.events_between(b, c))
    assert parts == whole
    ids = [e["id"] for e in parts]
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError):
        sim.events_between(a, b)  # cannot go back in time
    # Live streaming in uneven small windows (some empty, some sub-second) gives the same stream.
    sim, live, t = Simulator(seed=9, rate=1.0), [], a
    for step_ms in [0, 1, 999, 60_000, 7, 250_000, 0, 1_500_000] * 8:
        nxt = min(t + timedelta(milliseconds=step_ms), c)
        live += sim.events_between(t, nxt)
        t = nxt
    live += sim.events_between(t, c)
    assert live == whole


def test_sim003_abandoned_window_then_resume_never_repeats_ids() -> None:
    a = TUESDAY + timedelta(hours=10)
    sim = Simulator(seed=2, rate=2.0)
    it = sim.events_between(a, a + timedelta(hours=1))
    head = [next(it) for _ in range(100)]
    rest = list(sim.events_between(a + timedelta(hours=1), a + timedelta(hours=2)))
    ids = [e["id"] for e in head + rest]
    assert rest and len(ids) == len(set(ids))


def test_sim004_sorted_within_window_and_envelope(day: list[dict[str, Any]]) -> None:
    prev = TUESDAY
    ids = set()
    for ev in day:
        assert set(ev) == {"id", "type", "timestamp", "source", "data", "metadata"}
        assert _str(ev["id"]) and len(ev["id"]) <= 128 and ev["id"] not in ids
        ids.add(ev["id"])
        assert ev["source"] == "qms-simulator"
        assert TS_RE.match(ev["timestamp"]), ev["timestamp"]
        ts = _ms(ev["timestamp"])
        assert prev <= ts < TUESDAY + timedelta(days=1)
        prev = ts
        assert ev["metadata"]["priority"] in ("low", "normal", "high", "critical")
        assert _str(ev["metadata"]["correlation_id"])


def test_sim005_data_fields_per_type(day: list[dict[str, Any]]) -> None:
    for ev in day:
        assert ev["type"] in REQUIRED, ev["type"]
        data = ev["data"]
        for name, ok in REQUIRED[ev["type"]].items():
            assert name in data and ok(data[name]), (ev["type"], name, data)
        for name, ok in OPTIONAL.get(ev["type"], {}).items():
            assert name not in data or ok(data[name]), (ev["type"], name, data)
        assert validate(ev)[2] == [], ev  # and valid by the product's own contract


def test_sim006_rate_roughly_respected_over_a_day(day: list[dict[str, Any]]) -> None:
    assert 0.7 * 0.5 * 86400 <= len(day) <= 1.3 * 0.5 * 86400


def test_sim007_every_type_appears_in_a_day(day: list[dict[str, Any]]) -> None:
    seen = Counter(e["type"] for e in day)
    expected = {t for t in REQUIRED if t.startswith(("workflow.", "system."))}
    assert expected - set(seen) == set()
    assert seen["user.survey_submitted"] >= 1
    outcomes = Counter(e["data"]["outcome"] for e in day if e["type"] == "workflow.completed")
    assert outcomes["merged"] > outcomes["rejected"] + outcomes["abandoned"] > 0


def test_sim008_realistic_shape(day: list[dict[str, Any]]) -> None:
    gates = [e for e in day if e["type"] == "workflow.quality_gate_executed"]
    pass_rate = sum(e["data"]["passed"] for e in gates) / len(gates)
    assert 0.8 < pass_rate < 0.97
    costs: dict[str, list[float]] = {}
    for e in day:
        if e["type"] == "workflow.review_completed":
            costs.setdefault(e["data"]["reviewer"] if e["data"]["reviewer_kind"] != "human" else "human",
                             []).append(e["data"]["cost_usd"])
    assigned = [c for r, cs in costs.items() if r in REVIEW_AGENTS or r == "human" for c in cs]
    assert 10 <= min(assigned) and max(assigned) <= 80
    assert 0.5 <= min(costs[EXTERNAL_AGENT]) and max(costs[EXTERNAL_AGENT]) <= 4  # an AI review costs little
    assert set(costs[BOT]) == {0.0}  # the bot's reviews cost nothing
    created = {e["data"]["workflow_id"]: _ms(e["timestamp"]) for e in day if e["type"] == "workflow.pr_created"}
    hours = [(_ms(e["timestamp"]) - created[e["data"]["workflow_id"]]) / timedelta(hours=1)
             for e in day if e["type"] == "workflow.completed" and e["data"]["workflow_id"] in created]
    assert 1 < sum(hours) / len(hours) < 8  # cycle times of hours ...
    assert any(h > 8 for h in hours)  # ... some beyond the 8 h SLA
    by_hour = Counter(_ms(e["timestamp"]).hour for e in day if e["type"] == "workflow.pr_created")
    assert by_hour[14] > 3 * by_hour[3]  # busier in working hours than at night


def test_sim009_steps_in_order_per_workflow(day: list[dict[str, Any]]) -> None:
    order = ["dor_validation", "code_review", "dod_validation", "final_approval"]
    steps: dict[str, list[str]] = {}
    for e in day:
        if e["type"] == "workflow.step_entered":
            steps.setdefault(e["data"]["workflow_id"], []).append(e["data"]["step"])
    assert steps and all(s == order[:len(s)] for s in steps.values())


def test_sim010_outages_and_escaped_defects_in_a_week(week: list[dict[str, Any]]) -> None:
    statuses = Counter(e["data"]["status"] for e in week if e["type"] == "system.agent_status_changed")
    assert statuses["down"] >= 3 and statuses["training"] >= 3 and statuses["overloaded"] >= 1
    found = {e["data"]["defect_id"]: e for e in week if e["type"] == "workflow.defect_found"}
    prod = [e for e in found.values() if e["data"]["stage"] == "production"]
    assert prod and len(prod) < 0.2 * len(found)
    merged = {e["data"]["workflow_id"]: e["timestamp"] for e in week
              if e["type"] == "workflow.completed" and e["data"]["outcome"] == "merged"}
    assert all(merged[e["data"]["workflow_id"]] < e["timestamp"] for e in prod)  # escaped after merge
    resolved = [e for e in week if e["type"] == "workflow.defect_resolved"]
    assert all(e["data"]["defect_id"] in found for e in resolved)
    assert {e["data"]["resolution"] for e in resolved} == {"fixed", "false_positive", "wont_fix"}
    failed = [e for e in week if e["type"] == "workflow.compliance_checked" and not e["data"]["passed"]]
    remediated = [e for e in week if e["type"] == "workflow.violation_remediated"]
    assert failed and len(failed) * 0.6 < len(remediated) <= len(failed)


def test_sim011_any_start_and_rejects_bad_input() -> None:
    start = datetime(2025, 8, 17, 6, 23, 14, 500000, tzinfo=UTC)
    evs = list(Simulator(seed=1, rate=1.0, start=start).events_between(start, start + timedelta(minutes=30)))
    assert evs[0]["timestamp"] == "2025-08-17T06:23:14.500Z"  # the opening snapshot of agents and queues
    naive = list(Simulator(seed=1, rate=1.0).events_between(start.replace(tzinfo=None),
                                                             start.replace(tzinfo=None) + timedelta(minutes=30)))
    assert naive == evs  # naive datetimes are UTC
    with pytest.raises(ValueError):
        Simulator(rate=0)
    with pytest.raises(ValueError):
        Simulator().events_between(start, start - timedelta(seconds=1))


def _first_by(events: list[dict[str, Any]], etype: str, key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["type"] == etype:
            out.setdefault(e["data"][key], e)
    return out


def test_sim012_reviewers_of_every_kind_and_the_bot_first(day: list[dict[str, Any]]) -> None:
    reviews = [e for e in day if e["type"] in ("workflow.review_started", "workflow.review_completed")]
    assert all("reviewer_kind" in e["data"] for e in reviews)
    done = Counter((e["data"]["reviewer_kind"], e["data"]["reviewer"] in REVIEW_AGENTS + [EXTERNAL_AGENT, BOT])
                   for e in reviews if e["type"] == "workflow.review_completed")
    assert set(done) == {("human", False), ("ai", True), ("bot", True)}, done  # no colleague is called an agent
    assert done[("bot", True)] > 100 and done[("ai", True)] > 500 and done[("human", False)] > 300, done
    by_reviewer = Counter(e["data"]["reviewer"] for e in reviews
                          if e["type"] == "workflow.review_completed" and e["data"]["reviewer_kind"] != "human")
    assert set(by_reviewer) == {*REVIEW_AGENTS, EXTERNAL_AGENT, BOT}
    # The bot approves within a minute of starting, and is then the workflow's first reviewer.
    started = {(e["data"]["workflow_id"], e["data"]["reviewer"]): _ms(e["timestamp"]) for e in reviews
               if e["type"] == "workflow.review_started"}
    bot_done = [e for e in reviews if e["type"] == "workflow.review_completed" and e["data"]["reviewer"] == BOT]
    assert {e["data"]["verdict"] for e in bot_done} == {"approved"}
    waits = [_ms(e["timestamp"]) - started[(e["data"]["workflow_id"], BOT)] for e in bot_done]
    assert max(waits) <= timedelta(minutes=1)
    first = _first_by(reviews, "workflow.review_started", "workflow_id")
    bot_first = [w for w, e in first.items() if e["data"]["reviewer"] == BOT]
    assert len(bot_first) > 0.9 * len(bot_done)


def test_sim013_findings_and_their_fate_differ_by_reviewer(day: list[dict[str, Any]]) -> None:
    found = {e["data"]["defect_id"]: e["data"] for e in day if e["type"] == "workflow.defect_found"}
    review = [d for d in found.values() if d["stage"] == "review"]
    assert all(d.get("found_by") and d.get("found_by_kind") in ("ai", "human") for d in review)
    kinds = Counter(d["found_by_kind"] for d in review)
    assert kinds["ai"] > 1000 and kinds["human"] > 200, kinds
    fate: dict[str, Counter[str]] = {}
    for e in day:
        if e["type"] == "workflow.defect_resolved" and found[e["data"]["defect_id"]]["stage"] == "review":
            d = found[e["data"]["defect_id"]]
            who = d["found_by"] if d["found_by_kind"] == "ai" else "human"
            fate.setdefault(who, Counter())[e["data"]["resolution"]] += 1

    def fp_share(who: str) -> float:
        return fate[who]["false_positive"] / sum(fate[who].values())
    assert set(fate) == {*REVIEW_AGENTS, EXTERNAL_AGENT, "human"}
    assert all(sum(c.values()) >= 50 for c in fate.values()), fate
    assert fp_share("qms-senior-code-reviewer") < 0.06  # the precise agent
    assert fp_share(EXTERNAL_AGENT) > 0.2  # the noisy one
    assert fp_share("human") < 0.08 and fate["human"]["fixed"] / sum(fate["human"].values()) > 0.85
    assert all(set(c) == {"fixed", "false_positive", "wont_fix"} for who, c in fate.items() if who != "human")


def test_sim014_flaky_gates_rerun_on_the_same_commit(day: list[dict[str, Any]]) -> None:
    gates = [e for e in day if e["type"] in ("workflow.quality_gate_executed", "workflow.quality_gate_passed",
                                             "workflow.quality_gate_failed")]
    assert all(_SHA.match(e["data"]["head_sha"]) for e in gates)
    last_fail: dict[tuple[str, str], dict[str, Any]] = {}
    flaky, fixed = Counter[str](), Counter[str]()
    for e in gates:
        key = (e["data"]["workflow_id"], e["data"]["gate_name"])
        passed = e["data"].get("passed", e["type"] == "workflow.quality_gate_passed")
        if not passed:
            last_fail[key] = e
        elif key in last_fail:
            same = last_fail.pop(key)["data"]["head_sha"] == e["data"]["head_sha"]
            (flaky if same else fixed)[e["data"]["gate_name"]] += 1
    assert flaky["performance-gate"] > 5 and flaky["code-coverage-gate"] > 5, flaky
    assert flaky["lint-gate"] == flaky["dor-checklist-gate"] == 0  # these gates are never flaky
    assert fixed["lint-gate"] > 10 and fixed["code-coverage-gate"] > 10, fixed  # a genuine fail: a new push
    shas = {e["data"]["workflow_id"]: set() for e in gates}
    for e in gates:
        shas[e["data"]["workflow_id"]].add(e["data"]["head_sha"])
    owners = Counter(sha for s in shas.values() for sha in s)
    assert max(owners.values()) == 1  # commits belong to one pull request


def test_sim015_production_defects_escape_approving_reviewers(day: list[dict[str, Any]],
                                                             week: list[dict[str, Any]]) -> None:
    for events, n in ((day, 20), (week, 5)):
        approvers: dict[str, set[tuple[str, str]]] = {}
        for e in events:
            if e["type"] == "workflow.review_completed" and e["data"]["verdict"] == "approved":
                approvers.setdefault(e["data"]["workflow_id"], set()).add(
                    (e["data"]["reviewer_kind"], e["data"]["reviewer"]))
        prod = [e["data"] for e in events if e["type"] == "workflow.defect_found" and e["data"]["stage"] == "production"]
        escaped = [d for d in prod if d["workflow_id"] in approvers]
        assert len(escaped) >= n and len(escaped) > 0.9 * len(prod), (len(escaped), len(prod))
        assert all(d.get("found_by_kind", "human") == "human" for d in prod)  # on-call colleagues, or nobody
        if events is day:
            missed_by = {k for d in escaped for k, _ in approvers[d["workflow_id"]]}
            assert missed_by == {"human", "ai", "bot"}, missed_by
            assert any("found_by" in d for d in prod) and any("found_by" not in d for d in prod)
            reverts = [d for d in prod if d["category"] == "revert"]
            assert reverts and all(d["found_by"] for d in reverts)
            assert all(d["category"] != "revert" for d in found_in_review(events))


def found_in_review(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "workflow.defect_found" and e["data"]["stage"] == "review"]
