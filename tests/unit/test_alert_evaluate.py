"""The alert state machine (alerts/evaluate.py) driven by an injected clock, the
notification text, and the default rules' own test file through alerts/ruletest.py."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from alerts.evaluate import acknowledge, evaluate, message
from alerts.rules import RuleSet, load_rules, parse_rules
from alerts.ruletest import run_tests

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_755_432_000_000          # 2025-08-17T12:00:00Z
SEC, MIN = 1000, 60_000
Q = "R{queue=code_review}"


def one_rule(condition: str = "queue_depth > 15", duration: str = "5m", **extra: Any) -> RuleSet:
    lines = "".join(f"      {k}: {v}\n" for k, v in extra.items())
    return parse_rules(f"alert_rules:\n  g:\n    - name: R\n      condition: \"{condition}\"\n"
                       f"      severity: warning\n      duration: {duration}\n      channels: [dashboard]\n{lines}", "t.yaml")


def queues(**depths: float) -> dict:
    return {"kpis": {}, "entities": {"queue_depth": depths}}


class Clock:
    """The only time source: evaluate() is handed `now` and never reads a clock."""

    def __init__(self) -> None:
        self.now = T0

    def advance(self, ms: int) -> None:
        self.now += ms


class Engine:
    """Feeds snapshots to evaluate() and keeps the state and every transition."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules, self.clock = rules, Clock()
        self.state: dict[str, Any] = {}
        self.history: list[dict] = []

    def tick(self, snapshot: dict) -> list[dict]:
        transitions, self.state = evaluate(self.rules, snapshot, self.clock.now, self.state)
        self.history += transitions
        return transitions

    def hold(self, snapshot: dict, ms: int, step: int = 15 * SEC) -> None:
        """Evaluate every `step` for `ms` more (the clock ends `ms` later)."""
        for _ in range(ms // step):
            self.clock.advance(step)
            self.tick(snapshot)

    def notified(self) -> list[tuple[str, str]]:
        return [(t["from"], t["to"]) for t in self.history if t["notify"]]

    def states(self) -> dict[str, str]:
        return {iid: rec["state"] for iid, rec in self.state.items()}


# --- the state machine -----------------------------------------------------------------

def test_below_the_threshold_nothing_happens() -> None:
    e = Engine(one_rule())
    e.tick(queues(code_review=15))
    e.hold(queues(code_review=15), 20 * MIN)
    assert e.history == [] and e.state == {}


def test_true_for_less_than_the_duration_is_pending_without_notification() -> None:
    e = Engine(one_rule())
    e.tick(queues(code_review=20))
    e.hold(queues(code_review=20), 5 * MIN - 15 * SEC)
    assert e.states() == {Q: "pending"}
    assert [(t["from"], t["to"], t["notify"], t["at"]) for t in e.history] == [("inactive", "pending", False, T0)]
    assert e.state[Q]["active_at"] == T0 and e.state[Q]["labels"] == {"queue": "code_review"}


def test_true_for_the_duration_fires_exactly_one_notification() -> None:
    e = Engine(one_rule())
    e.tick(queues(code_review=20))
    e.hold(queues(code_review=20), 30 * MIN)
    firing = [t for t in e.history if t["to"] == "firing"]
    assert len(firing) == 1 and e.notified() == [("pending", "firing")]
    assert firing[0] == {"id": Q, "rule": "R", "labels": {"queue": "code_review"}, "severity": "warning",
                         "from": "pending", "to": "firing", "at": T0 + 5 * MIN, "value": 20.0,
                         "threshold_text": "queue_depth > 15", "notify": True, "since": T0, "description": "",
                         "dashboard": "operational"}
    assert e.state[Q]["fired_at"] == T0 + 5 * MIN


def test_a_zero_duration_fires_at_once() -> None:
    e = Engine(one_rule(duration="0s"))
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick(queues(code_review=20))] == [("inactive", "firing", True)]


def test_recovery_resolves_with_a_notification_and_then_stays_quiet() -> None:
    e = Engine(one_rule(duration="0s"))
    e.tick(queues(code_review=20))
    e.clock.advance(MIN)
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick(queues(code_review=3))] == [("firing", "resolved", True)]
    e.hold(queues(code_review=3), 10 * MIN)
    assert e.notified() == [("inactive", "firing"), ("firing", "resolved")]
    assert e.states() == {Q: "resolved"}


def test_false_while_pending_goes_back_to_inactive_silently() -> None:
    e = Engine(one_rule())
    e.tick(queues(code_review=20))
    e.clock.advance(MIN)
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick(queues(code_review=1))] == [("pending", "inactive", False)]
    assert e.state == {}


def test_flapping_within_the_duration_never_notifies() -> None:
    e = Engine(one_rule())
    for minute in range(30):
        e.tick(queues(code_review=20 if minute % 2 == 0 else 5))
        e.clock.advance(MIN)
    assert e.notified() == []
    assert {t["to"] for t in e.history} == {"pending", "inactive"}


def test_a_resolved_alert_that_becomes_true_again_is_pending_again() -> None:
    e = Engine(one_rule(duration="1m"))
    e.tick(queues(code_review=20))
    e.hold(queues(code_review=20), MIN)
    e.hold(queues(code_review=5), MIN)
    e.hold(queues(code_review=20), 15 * SEC)
    assert e.states() == {Q: "pending"}
    e.hold(queues(code_review=20), MIN)
    assert e.notified() == [("pending", "firing"), ("firing", "resolved"), ("pending", "firing")]


def test_keep_firing_for_holds_a_firing_alert_through_short_dips() -> None:
    e = Engine(one_rule(duration="0s", keep_firing_for="2m"))
    e.tick(queues(code_review=20))
    for minute in range(10):        # false for 1 minute, then true again: never resolves
        e.hold(queues(code_review=5 if minute % 2 == 0 else 20), MIN, step=MIN)
    assert e.notified() == [("inactive", "firing")] and e.states() == {Q: "firing"}
    e.hold(queues(code_review=5), MIN, step=MIN)
    assert e.states() == {Q: "firing"}
    e.hold(queues(code_review=5), MIN, step=MIN)        # 2 minutes since the last true
    assert e.states() == {Q: "resolved"} and e.notified()[-1] == ("firing", "resolved")


@pytest.mark.parametrize("snapshot", [{}, {"kpis": {}}, {"kpis": {"error_rate": None}},
                                      {"kpis": {"error_rate": math.nan}}, {"kpis": {"error_rate": "high"}}])
def test_no_data_is_its_own_state(snapshot: dict) -> None:
    e = Engine(one_rule("error_rate > 5"))
    assert [(t["id"], t["from"], t["to"], t["value"], t["notify"]) for t in e.tick(snapshot)] == \
        [("R", "inactive", "no_data", None, False)]
    e.hold(snapshot, 5 * MIN)
    assert e.states() == {"R": "no_data"} and len(e.history) == 1


def test_no_data_does_not_resolve_a_firing_alert_and_data_coming_back_continues_it() -> None:
    e = Engine(one_rule("error_rate > 5", duration="0s"))
    e.tick({"kpis": {"error_rate": 9}})
    e.clock.advance(MIN)
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick({"kpis": {}})] == [("firing", "no_data", False)]
    e.clock.advance(MIN)
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick({"kpis": {"error_rate": 9}})] == [("no_data", "firing", False)]
    assert e.state["R"]["fired_at"] == T0
    e.clock.advance(MIN)
    e.tick({"kpis": {}})
    e.clock.advance(MIN)
    assert [(t["from"], t["to"], t["notify"]) for t in e.tick({"kpis": {"error_rate": 1}})] == [("no_data", "resolved", True)]


def test_no_data_while_pending_starts_the_wait_over() -> None:
    e = Engine(one_rule("error_rate > 5", duration="2m"))
    e.tick({"kpis": {"error_rate": 9}})
    e.hold({"kpis": {}}, MIN)
    e.hold({"kpis": {"error_rate": 9}}, 105 * SEC)      # T0+165s: pending again since T0+75s
    assert e.states() == {"R": "pending"} and e.state["R"]["active_at"] == T0 + 75 * SEC
    e.hold({"kpis": {"error_rate": 9}}, 30 * SEC)
    assert e.states() == {"R": "firing"} and e.notified() == [("pending", "firing")]


def test_each_entity_has_its_own_instance() -> None:
    e = Engine(one_rule(duration="0s"))
    e.tick(queues(code_review=20, dor=30, dod=1))
    assert e.states() == {"R{queue=code_review}": "firing", "R{queue=dor}": "firing"}
    assert e.state["R{queue=dor}"]["value"] == 30.0 and e.notified() == [("inactive", "firing")] * 2


def test_a_vanished_entity_is_no_data() -> None:
    e = Engine(one_rule(duration="0s"))
    e.tick(queues(code_review=20, dor=30))
    e.clock.advance(MIN)
    assert [(t["id"], t["to"]) for t in e.tick(queues(dor=30))] == [(Q, "no_data")]


def test_a_global_kpi_is_shared_by_every_entity_of_a_per_entity_rule() -> None:
    e = Engine(one_rule("agent_load > 90% and error_rate > 5", duration="0s"))
    e.tick({"kpis": {}, "entities": {"agent_load": {"a1": 95, "a2": 50}}})
    assert e.states() == {"R{agent=a1}": "no_data"}        # a2 is false whatever error_rate is
    e.clock.advance(MIN)
    e.tick({"kpis": {"error_rate": 8}, "entities": {"agent_load": {"a1": 95, "a2": 50}}})
    assert e.states() == {"R{agent=a1}": "firing"}
    assert e.state["R{agent=a1}"]["value"] == {"agent_load": 95.0, "error_rate": 8.0}


def test_instances_are_capped_at_max_instances() -> None:
    e = Engine(one_rule(duration="0s", max_instances="3"))
    five = queues(q1=20, q2=20, q3=20, q4=20, q5=20)
    trs = e.tick(five)
    assert e.states() == {"R{queue=q1}": "firing", "R{queue=q2}": "firing", "R{queue=q3}": "firing"}
    assert [(t["id"], t["from"], t["to"], t["value"], t["notify"]) for t in trs if t["to"] == "capped"] == \
        [("R", "active", "capped", 2, False)]
    assert all(rec["dropped"] == 2 for rec in e.state.values())
    e.clock.advance(MIN)
    assert e.tick({**five, "entities": {"queue_depth": {"a0": 20, **five["entities"]["queue_depth"]}}}) == []
    assert "R{queue=a0}" not in e.state          # alerts under way keep their slots
    e.clock.advance(MIN)
    trs = e.tick(queues(q1=20, q2=20, q3=1, q4=1, q5=1))
    assert [(t["from"], t["to"]) for t in trs if t["id"] == "R"] == [("capped", "active")]


def test_an_acknowledged_alert_gets_no_reminders_until_it_resolves() -> None:
    e = Engine(one_rule(duration="0s", repeat_interval="10m"))
    e.tick(queues(code_review=20))
    e.hold(queues(code_review=20), 10 * MIN)
    assert e.notified() == [("inactive", "firing"), ("firing", "firing")]       # a reminder
    e.state = acknowledge(e.state, Q, "alice", "looking into it", e.clock.now)
    assert e.state[Q]["acknowledged"] == {"by": "alice", "at": T0 + 10 * MIN, "comment": "looking into it"}
    e.hold(queues(code_review=20), 60 * MIN)
    assert len(e.notified()) == 2
    e.hold(queues(code_review=3), 15 * SEC)
    assert e.notified()[-1] == ("firing", "resolved") and e.state[Q]["acknowledged"] is None
    e.hold(queues(code_review=20), 15 * SEC)
    assert e.notified()[-1] == ("resolved", "firing")


def test_acknowledge_is_pure_and_refuses_what_is_not_firing() -> None:
    e = Engine(one_rule())
    e.tick(queues(code_review=20))
    before = copy.deepcopy(e.state)
    with pytest.raises(ValueError, match="only a firing alert"):
        acknowledge(e.state, Q, "alice", "", T0)
    with pytest.raises(KeyError):
        acknowledge(e.state, "R{queue=nope}", "alice", "", T0)
    e.hold(queues(code_review=20), 5 * MIN)
    acked = acknowledge(e.state, Q, "alice", "", T0)
    assert acked[Q]["acknowledged"]["by"] == "alice" and e.state[Q]["acknowledged"] is None
    assert before[Q]["state"] == "pending"


def test_evaluate_is_pure_deterministic_and_its_state_is_json() -> None:
    rules = load_rules(ROOT / "config" / "alert_rules.yaml")
    snapshot = {"kpis": {"workflow_completion_rate": 80, "overall_quality_score": None},
                "entities": {"queue_depth": {"a": 20}, "agent_status": {"x": "down"}, "defect_severity": {"D": "critical"}}}
    _, state = evaluate(rules, snapshot, T0, {})
    frozen = copy.deepcopy(state)
    first = evaluate(rules, snapshot, T0 + 10 * MIN, state)
    assert state == frozen                                   # the previous state is not changed
    assert evaluate(rules, snapshot, T0 + 10 * MIN, frozen) == first
    assert json.loads(json.dumps(first[1])) == first[1]
    assert {r["state"] for r in first[1].values()} == {"firing", "no_data"}


def test_failure_rate_is_100_minus_the_completion_rate() -> None:
    e = Engine(one_rule("failure_rate > 10%", duration="0s"))
    (t,) = e.tick({"kpis": {"workflow_completion_rate": 85}})
    assert (t["to"], t["value"]) == ("firing", 15.0)


def test_gate_pass_rate_per_gate_reads_the_gate_kpis() -> None:
    e = Engine(one_rule("gate.pass_rate < 50%", duration="0s"))
    e.tick({"kpis": {"gate_pass_rate": 10, "gate.lint-gate.pass_rate": 40, "gate.perf-gate.pass_rate": 90,
                     "gate.lint-gate.executions": 12}})
    assert e.states() == {"R{gate=lint-gate}": "firing"}


def test_a_new_critical_defect_fires_once_then_resolves_and_is_forgotten() -> None:
    e = Engine(load_rules(ROOT / "config" / "alert_rules.yaml"))
    new = {"kpis": {"workflow_completion_rate": 99, "overall_quality_score": 95},
           "entities": {"defect_severity": {"D1": "critical", "D2": "minor"}}}
    trs = e.tick(new)
    assert [(t["id"], t["to"], t["notify"]) for t in trs] == [("Critical Defect Detected{defect=D1}", "firing", True)]
    e.clock.advance(15 * SEC)
    quiet = {"kpis": new["kpis"], "entities": {}}
    assert [(t["to"], t["notify"]) for t in e.tick(quiet)] == [("resolved", True)]
    e.clock.advance(15 * SEC)
    assert e.tick(quiet) == [] and e.state == {}


def test_instances_of_a_removed_rule_leave_with_a_transition() -> None:
    e = Engine(one_rule(duration="0s"))
    e.tick(queues(code_review=20))
    transitions, state = evaluate(RuleSet(), queues(code_review=20), T0 + MIN, e.state)
    assert state == {} and [(t["id"], t["from"], t["to"], t["notify"]) for t in transitions] == [(Q, "firing", "inactive", False)]


# --- notification text -----------------------------------------------------------------

def test_a_firing_message_says_what_where_since_when_and_links_the_dashboard() -> None:
    e = Engine(load_rules(ROOT / "config" / "alert_rules.yaml"))
    e.tick(queues(code_review_queue=22))
    e.hold(queues(code_review_queue=22), 5 * MIN)
    (firing,) = [t for t in e.history if t["to"] == "firing"]
    title, body = message(firing, "https://qms.example/")
    assert title == "[WARNING] High Queue Depth (queue=code_review_queue) is firing"
    assert body.splitlines() == ["Alert: High Queue Depth", "Severity: warning", "State: pending -> firing",
                                 "Entity: queue=code_review_queue", "Value: 22", "Condition: queue_depth > 15",
                                 "Since: 2025-08-17T12:00:00Z", "Dashboard: https://qms.example/dashboards/operational"]


@pytest.mark.parametrize("condition, bad, good, link", [
    ("quality_score < 80%", {"overall_quality_score": 71.25}, {"overall_quality_score": 90}, "/dashboards/qa"),
    ("failure_rate > 10%", {"workflow_completion_rate": 70}, {"workflow_completion_rate": 99}, "/dashboards/executive"),
])
def test_messages_link_the_dashboard_of_the_metric(condition: str, bad: dict, good: dict, link: str) -> None:
    e = Engine(one_rule(condition, duration="0s"))
    (firing,) = e.tick({"kpis": bad})
    e.clock.advance(MIN)
    (resolved,) = e.tick({"kpis": good})
    title, body = message(firing, "http://h")
    assert title == "[WARNING] R is firing" and body.endswith("Dashboard: http://h" + link)
    assert "Entity:" not in body
    assert message(resolved, "http://h")[0] == "[RESOLVED] R is resolved"


# --- rule tests ------------------------------------------------------------------------

def test_the_default_rules_pass_their_rule_tests() -> None:
    assert run_tests(ROOT / "config" / "alert_rules.test.yaml") == []


def test_a_failed_expectation_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"rule_files: [{ROOT / 'config' / 'alert_rules.yaml'}]\ninterval: 15s\ntests:\n"
                    "  - name: too early\n    snapshots: [{at: 0m, entities: {queue_depth: {q: 20}}}]\n"
                    "    expect:\n      - {at: 4m, rule: High Queue Depth, alerts: [{labels: {q: q}, state: firing}]}\n")
    assert run_tests(path) == [
        f"{path}: test #1 'too early' at 4m: High Queue Depth{{q=q}}: expected firing, got inactive",
        f"{path}: test #1 'too early' at 4m: High Queue Depth{{queue=q}}: expected inactive, got pending",
    ]
