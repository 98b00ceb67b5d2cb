"""A promtool-like runner for alert rule tests: snapshots over time in, alert states out.

Pure apart from reading the files, so a rule change can be checked before it is deployed.

    rule_files: [alert_rules.yaml]          # relative to the test file
    interval: 15s                           # evaluation interval
    tests:
      - name: queue backs up
        snapshots:                          # each holds from its `at` until the next one
          - at: 0m
            kpis: {overall_quality_score: 85}
            entities: {queue_depth: {code_review_queue: 20}}
        expect:
          - at: 5m
            rule: High Queue Depth          # optional: compare only this rule's instances
            alerts:
              - {labels: {queue: code_review_queue}, state: firing}

Each test starts from an empty state. The rules are evaluated at every multiple of
`interval` from 0 and at every expectation's `at`. An expectation lists every instance
(pending, firing, resolved or no_data) of its rule — of all rules when it names none — so
an empty list means none, and `state: inactive` asserts that an instance is absent.
Event families (`defect_severity`, the defects first seen since the last evaluation) reach
only the first evaluation at or after their snapshot's `at`: a defect is new once.

`python -m alerts.ruletest FILE...` prints the failed expectations and exits 1 if any.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import yaml

from alerts.evaluate import STATES, evaluate, instance_id
from alerts.rules import ENTITY_METRICS, Rule, RuleError, RuleSet, load_rules
from data.timeutil import parse_duration

EVENT_FAMILIES = frozenset(m.name for m in ENTITY_METRICS.values() if m.event)
LabelKey = tuple[tuple[str, str], ...]


class _Input(NamedTuple):
    at: int
    snapshot: dict[str, Any]


class _Expect(NamedTuple):
    at: int
    at_text: str
    rule: str | None
    alerts: dict[tuple[str, LabelKey], str]      # (rule, labels) -> expected state


def _time(raw: Any) -> int:
    """Milliseconds from the start, or -1 when raw is not a duration."""
    try:
        return parse_duration(raw) if isinstance(raw, str) else -1
    except ValueError:
        return -1


def _at(item: Any, where: str) -> int:
    if not isinstance(item, Mapping):
        raise RuleError(f"{where} must be a mapping")
    at = _time(item.get("at"))
    if at < 0:
        raise RuleError(f"{where}: 'at' must be a duration from the start such as 0m, 90s or 6m")
    return at


def _inputs(raw: Any, where: str) -> list[_Input]:
    if not isinstance(raw, list):
        raise RuleError(f"{where}: 'snapshots' must be a list")
    out = []
    for i, item in enumerate(raw):
        at = _at(item, f"{where}, snapshot #{i + 1}")
        kpis, entities = item.get("kpis", {}), item.get("entities", {})
        if not isinstance(kpis, Mapping) or not isinstance(entities, Mapping):
            raise RuleError(f"{where}, snapshot #{i + 1}: 'kpis' and 'entities' must be mappings")
        out.append(_Input(at, {"kpis": dict(kpis), "entities": dict(entities)}))
    return sorted(out, key=lambda s: s.at)


def _labels(raw: Any, where: str) -> LabelKey:
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where}: 'labels' must be a mapping")
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def _expectations(raw: Any, rules: RuleSet, where: str) -> list[_Expect]:
    if not isinstance(raw, list):
        raise RuleError(f"{where}: 'expect' must be a list")
    out = []
    for i, item in enumerate(raw):
        here = f"{where}, expectation #{i + 1}"
        at = _at(item, here)
        scope = item.get("rule")
        alerts: dict[tuple[str, LabelKey], str] = {}
        if not isinstance(item.get("alerts"), list):
            raise RuleError(f"{here}: 'alerts' must be a list (empty for none)")
        for alert in item["alerts"]:
            alert = alert if isinstance(alert, Mapping) else {}
            rule, state = alert.get("rule", scope), alert.get("state")
            if not isinstance(rule, str) or rules.get(rule) is None:
                raise RuleError(f"{here}: unknown rule {rule!r}")
            if state not in STATES:
                raise RuleError(f"{here}: bad state {state!r} (one of: {', '.join(STATES)})")
            alerts[(rule, _labels(alert.get("labels", {}), here))] = state
        if scope is not None and rules.get(scope) is None:
            raise RuleError(f"{here}: unknown rule {scope!r}")
        out.append(_Expect(at, str(item["at"]), scope, alerts))
    return out


def _rules(doc: Mapping[str, Any], path: Path) -> RuleSet:
    files = doc.get("rule_files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise RuleError("'rule_files' must be a non-empty list of paths", str(path))
    rules: list[Rule] = []
    for name in files:
        for rule in load_rules(path.parent / name):
            if any(r.name == rule.name for r in rules):
                raise RuleError("defined in more than one rule file", str(path), rule.name)
            rules.append(rule)
    return RuleSet(tuple(rules), str(path))


def _check(expect: _Expect, state: Mapping[str, Any], where: str) -> list[str]:
    actual = {(rec["rule"], _labels(rec["labels"], where)): rec["state"] for rec in state.values()
              if expect.rule is None or rec["rule"] == expect.rule}
    failures = []
    for rule, labels in sorted(expect.alerts.keys() | actual.keys()):
        wanted = expect.alerts.get((rule, labels), "inactive")
        got = actual.get((rule, labels), "inactive")
        if wanted != got:
            failures.append(f"{where} at {expect.at_text}: {instance_id(rule, dict(labels))}: "
                            f"expected {wanted}, got {got}")
    return failures


def _snapshot(inputs: list[_Input], t: int, delivered: set[int]) -> dict[str, Any]:
    """The snapshot in force at t; its event families only the first time it is used."""
    current = [i for i, s in enumerate(inputs) if s.at <= t]
    if not current:
        return {}
    index = current[-1]
    snapshot = inputs[index].snapshot
    if index in delivered:
        snapshot = {**snapshot, "entities": {k: v for k, v in snapshot["entities"].items() if k not in EVENT_FAMILIES}}
    delivered.add(index)
    return snapshot


def _run_case(rules: RuleSet, interval: int, case: Any, where: str, redis_client: Any = None) -> list[str]:
    if not isinstance(case, Mapping):
        raise RuleError(f"{where} must be a mapping")
    where = f"{where} '{case['name']}'" if isinstance(case.get("name"), str) else where
    inputs = _inputs(case.get("snapshots", []), where)
    expects = _expectations(case.get("expect", []), rules, where)
    end = max([e.at for e in expects] + [s.at for s in inputs], default=0)
    times = sorted(set(range(0, end + 1, interval)) | {e.at for e in expects})
    world = None
    if "events" in case:        # events through the real aggregator and engine (alerts.eventtest)
        if redis_client is None:
            raise RuleError(f"{where}: event-driven tests need Redis (run them with cli.py alerts test)")
        from alerts.eventtest import EventWorld
        world = EventWorld(redis_client, case["events"], end, where)
    state: dict[str, Any] = {}
    delivered: set[int] = set()
    failures: list[str] = []
    try:
        for t in times:
            snap = world.snapshot(t) if world is not None else _snapshot(inputs, t, delivered)
            _, state = evaluate(rules, snap, t, state)
            for expect in expects:
                if expect.at == t:
                    failures += _check(expect, state, where)
    finally:
        if world is not None:
            world.close()
    return failures


def run_tests(path: str | Path, redis_client: Any = None) -> list[str]:
    """The failed expectations of a test file, one readable line each ([] when all pass).
    A malformed test or rule file raises RuleError."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RuleError(f"cannot read the test file: {exc}", str(path)) from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("tests"), list):
        raise RuleError("a test file has rule_files, interval and a list of tests", str(path))
    rules = _rules(doc, path)
    interval = _time(doc.get("interval", "15s"))
    if interval <= 0:
        raise RuleError("'interval' must be a duration longer than 0s", str(path))
    failures: list[str] = []
    for i, case in enumerate(doc["tests"]):
        failures += _run_case(rules, interval, case, f"{path}: test #{i + 1}", redis_client)
    return failures


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m alerts.ruletest TEST_FILE...")
        return 2
    failures: list[str] = []
    for path in argv:
        try:
            failures += run_tests(path)
        except RuleError as exc:
            failures.append(str(exc))
    print("\n".join(failures) or f"{len(argv)} alert rule test file(s) passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
