"""Alert rule files and the condition language (alerts/rules.py): what loads, what is
refused and how the refusal reads, and the three-valued evaluation of conditions."""
from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from alerts.rules import (DEFAULT_MAX_INSTANCES, Rule, RuleError, RuleSet, load_rules, parse_condition,
                          parse_rules, reload)
from data import kpis

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "config" / "alert_rules.yaml"


def rule_yaml(condition: str = "queue_depth > 15", name: str = "R", **extra: str) -> str:
    """A one-rule file; extra keys are written as given (YAML)."""
    lines = [f"      {k}: {v}" for k, v in extra.items()]
    return "\n".join(["alert_rules:", "  g:", f"    - name: \"{name}\"", f"      condition: \"{condition}\"",
                      "      severity: warning", "      duration: 5m", "      channels: [dashboard]", *lines]) + "\n"


def named(rules: RuleSet, name: str) -> Rule:
    rule = rules.get(name)
    assert rule is not None, name
    return rule


# --- conditions that parse -------------------------------------------------------------

@pytest.mark.parametrize("text, values, expected", [
    ("queue_depth > 15", {"queue_depth": 16}, True),
    ("queue_depth > 15", {"queue_depth": 15}, False),
    ("queue_depth >= 15", {"queue_depth": 15}, True),
    ("queue_depth<15", {"queue_depth": 14.5}, True),
    ("queue_depth <= 15", {"queue_depth": 15.5}, False),
    ("queue_depth = 3", {"queue_depth": 3}, True),
    ("queue_depth == 3", {"queue_depth": 4}, False),
    ("queue_depth != 3", {"queue_depth": 4}, True),
    ("failure_rate > 10%", {"failure_rate": 10.5}, True),
    ("quality_score < 80%", {"quality_score": 80}, False),
    ("quality_score_trend < -5", {"quality_score_trend": -6}, True),
    ("agent_status = 'down'", {"agent_status": "down"}, True),
    ('agent_status == "down"', {"agent_status": "idle"}, False),
    ("agent_status != 'down'", {"agent_status": "idle"}, True),
    ("average_review_cycle_time > 2h", {"average_review_cycle_time": 2.5}, True),    # hours
    ("average_review_cycle_time > 2h", {"average_review_cycle_time": 1.9}, False),
    ("average_gate_time > 90s", {"average_gate_time": 1.6}, True),                   # minutes
    ("gate.code-coverage-gate.pass_rate < 70%", {"gate.code-coverage-gate.pass_rate": 65}, True),
    ("queue_depth.code_review_queue > 5", {"queue_depth.code_review_queue": 4}, False),
    ("gate.pass_rate < 50%", {"gate.pass_rate": 40}, True),
    ("agent_load > 90% AND agent_status = 'active'", {"agent_load": 95, "agent_status": "active"}, True),
    ("(error_rate > 5 or down_agents >= 2) and total_active_reviews > 0",
     {"error_rate": 1, "down_agents": 3, "total_active_reviews": 2}, True),
    ("error_rate > 5 or down_agents >= 2 and total_active_reviews > 0",     # and binds tighter
     {"error_rate": 6, "down_agents": 0, "total_active_reviews": 0}, True),
])
def test_conditions_parse_and_evaluate(text: str, values: dict, expected: bool) -> None:
    assert parse_condition(text).evaluate(values) is expected


def test_every_kpi_of_the_tables_is_a_metric_and_list_kpis_are_refused() -> None:
    for table in (kpis.EXECUTIVE, kpis.OPERATIONAL, kpis.QA, kpis.DEVELOPER):
        for kpi_id, (unit, _) in table.items():
            if unit == "list":
                with pytest.raises(RuleError, match="list-valued"):
                    parse_condition(f"{kpi_id} > 1")
            else:
                assert parse_condition(f"{kpi_id} > 1").evaluate({kpi_id: 2}) is True


@pytest.mark.parametrize("op, left, right, expected", [
    ("and", True, None, None), ("and", False, None, False), ("and", True, True, True),
    ("or", True, None, True), ("or", False, None, None), ("or", False, False, False),
])
def test_three_valued_logic(op: str, left: bool | None, right: bool | None, expected: bool | None) -> None:
    def term(metric: str, outcome: bool | None) -> dict:
        return {metric: None if outcome is None else (10 if outcome else 0)}
    cond = parse_condition(f"error_rate > 5 {op} down_agents > 5")
    assert cond.evaluate({**term("error_rate", left), **term("down_agents", right)}) is expected


def test_a_missing_metric_or_one_of_the_wrong_type_is_no_data() -> None:
    assert parse_condition("queue_depth > 15").evaluate({}) is None
    assert parse_condition("agent_status = 'down'").evaluate({"agent_status": 3.0}) is None


def test_conditions_are_parsed_without_eval_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("eval/compile called")
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    rules = parse_rules(DEFAULT_RULES.read_text(), "x.yaml")
    assert [r.condition.evaluate({"queue_depth": 20}) for r in rules][0] is True


# --- hostile and bad conditions --------------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ("__import__('os')", "function calls are not allowed"),
    ("__import__('os').system('x') > 1", "function calls are not allowed"),
    ("len(queue_depth) > 1", "function calls are not allowed"),
    ("a.b > 1", "unknown metric 'a.b'"),
    ("queue_depth.__class__ > 1", "unknown metric"),
    ("x[0] > 1", "unexpected character '[' at column 2"),
    ("queue_depth[0] > 1", "unexpected character '[' at column 12"),
    ("foo > 1", "unknown metric 'foo'"),
    ("queue_depth > 15 garbage", "unexpected 'garbage' at column 18"),
    ("queue_depth > 15)", "unexpected ')'"),
    ("queue_depth > 15 and", "expected a metric name but found end of condition"),
    ("(queue_depth > 15", "expected ')' but found end of condition"),
    ("queue_depth >", "expected a value after 'queue_depth >'"),
    ("queue_depth 15", "expected a comparison operator"),
    ("queue_depth => 15", "expected a value"),
    ("queue_depth > 15x", "bad value '15x'"),
    ("queue_depth > 1e9", "bad value '1e9'"),
    ("queue_depth > 'down", "unterminated string starting at column 15"),
    ("queue_depth > 15; drop", "unexpected character ';' at column 17"),
    ("queue_depth > 15 && error_rate > 1", "unexpected character '&'"),
    ("not queue_depth > 1", "unknown metric 'not'"),
    ("", "empty condition"),
    ("   ", "empty condition"),
    ("queue_depth > 1 or " * 60 + "queue_depth > 1", "longer than 1000 characters"),
    ("(" * 21 + "queue_depth > 1" + ")" * 21, "nested deeper than 20"),
    ("queue_depth > 1 and agent_load > 2", "mixes metrics of different entities"),
    ("agent_status > 'down'", "only =, == and != apply"),
    ("agent_status = down", "expected a value after 'agent_status =' but found 'down' at column 16"),
    ("agent_status = 5", "string metric: compare it with a quoted value"),
    ("agent_status = 'Down'", "never 'Down'"),
    ("queue_depth > 'x'", "numeric: compare it with a number"),
    ("error_rate > 10%", "not a percentage"),
    ("queue_depth > 5m", "not a duration"),
])
def test_bad_conditions_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_condition(text)
    assert reason in str(err.value)


def test_nesting_up_to_the_limit_is_fine() -> None:
    cond = parse_condition("(" * 20 + "queue_depth > 1" + ")" * 20)
    assert cond.evaluate({"queue_depth": 2}) is True


# --- rule files ------------------------------------------------------------------------

def test_the_six_default_rules_load_in_file_order() -> None:
    rules = load_rules(DEFAULT_RULES)
    assert [(r.name, r.label, r.duration_ms, r.severity) for r in rules] == [
        ("High Queue Depth", "queue", 300_000, "warning"),
        ("Workflow Failure Rate High", None, 120_000, "critical"),
        ("Agent Overload", "agent", 600_000, "warning"),
        ("Agent Unavailable", "agent", 60_000, "critical"),
        ("Quality Score Drop", None, 900_000, "warning"),
        ("Critical Defect Detected", "defect", 0, "critical"),
    ]
    assert named(rules, "Agent Unavailable").channels == ("dashboard", "email", "sms")
    assert all(r.max_instances == DEFAULT_MAX_INSTANCES and r.keep_firing_for_ms == 0 for r in rules)
    assert [r.dashboard for r in rules] == ["operational", "executive", "operational", "operational", "qa", "qa"]


def test_optional_fields_are_read() -> None:
    rules = parse_rules(rule_yaml(keep_firing_for="2m", repeat_interval="1h", max_instances="7",
                                  description="'why it matters'"), "f.yaml")
    rule = named(rules, "R")
    assert (rule.keep_firing_for_ms, rule.repeat_interval_ms, rule.max_instances, rule.description) == \
        (120_000, 3_600_000, 7, "why it matters")


def test_the_error_names_file_rule_and_reason() -> None:
    with pytest.raises(RuleError) as err:
        parse_rules(rule_yaml("foo > 1", name="X"), "config/alert_rules.yaml")
    assert str(err.value) == "config/alert_rules.yaml: rule 'X': unknown metric 'foo'"
    assert (err.value.source, err.value.rule, err.value.reason) == ("config/alert_rules.yaml", "X", "unknown metric 'foo'")


@pytest.mark.parametrize("text, message", [
    (rule_yaml(severity="urgent"), "f.yaml: rule 'R': bad severity 'urgent'"),
    (rule_yaml().replace("duration: 5m", "duration: 5 minutes"), "f.yaml: rule 'R': bad duration '5 minutes' for 'duration'"),
    (rule_yaml().replace("duration: 5m", "duration: 5"), "f.yaml: rule 'R': 'duration' must be a duration"),
    (rule_yaml().replace("      duration: 5m\n", ""), "f.yaml: rule 'R': missing 'duration'"),
    (rule_yaml(keep_firing_for="soon"), "f.yaml: rule 'R': bad duration 'soon' for 'keep_firing_for'"),
    (rule_yaml(repeat_interval="0s"), "f.yaml: rule 'R': 'repeat_interval' must be longer than 0s"),
    (rule_yaml(max_instances="0"), "f.yaml: rule 'R': 'max_instances' must be a whole number"),
    (rule_yaml(max_instances="true"), "f.yaml: rule 'R': 'max_instances' must be a whole number"),
    (rule_yaml().replace("[dashboard]", "[dashboard, carrier-pigeon]"), "f.yaml: rule 'R': unknown channel 'carrier-pigeon'"),
    (rule_yaml().replace("[dashboard]", "[]"), "f.yaml: rule 'R': 'channels' must be a non-empty list"),
    (rule_yaml(fro="5m"), "f.yaml: rule 'R': unknown key 'fro'"),
    (rule_yaml("queue_depth >> 1"), "f.yaml: rule 'R': expected a value after 'queue_depth >'"),
    (rule_yaml() + rule_yaml().split("\n", 2)[2], "f.yaml: rule 'R': duplicate rule name"),
    (rule_yaml().replace('name: "R"', 'name: ""'), "f.yaml: group 'g', rule #1: missing 'name'"),
    (rule_yaml().replace('name: "R"', 'name: "a{b}"'), "f.yaml: group 'g', rule #1: a name has at most"),
    ("alert_rules:\n  g: {name: x}\n", "f.yaml: group 'g' must be a list of rules"),
    ("rules: []\n", "f.yaml: expected a top-level 'alert_rules' mapping"),
    ("alert_rules: [\n", "f.yaml: invalid YAML"),
])
def test_bad_rule_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rules(text, "f.yaml")
    assert str(err.value).startswith(message)


def test_a_missing_file_is_a_rule_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="nope.yaml: cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_reload_keeps_the_running_rules_when_the_new_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rule_yaml("queue_depth > 15"))
    running = load_rules(path)
    path.write_text(rule_yaml("queue_lenght > 15"))
    rules, error = reload(path, running)
    assert rules is running and error is not None and "rule 'R': unknown metric 'queue_lenght'" in str(error)
    path.write_text(rule_yaml("queue_depth > 30"))
    rules, error = reload(path, running)
    assert error is None and isinstance(rules, RuleSet)
    assert named(rules, "R").condition.evaluate({"queue_depth": 20}) is False
