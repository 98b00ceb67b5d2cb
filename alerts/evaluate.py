"""One evaluation of the alert rules against a snapshot of metric values: a pure step.

`evaluate(rules, snapshot, now_ms, previous_state)` returns the transitions and the new
state and does nothing else — no clock, no I/O, no randomness — so the deployment's one
evaluation loop can keep the state wherever it likes, and tests and `alerts.ruletest`
can replay any history with any clock.

Snapshot (plain dicts; a value that is missing, None, NaN or of the wrong type is no data):
    {"kpis": {kpi_id: number | None},
     "entities": {"queue_depth": {queue: number}, "agent_load": {agent: 0–100},
                  "agent_status": {agent: str}, "defect_severity": {defect_id: str}}}
Per-gate values of `gate.pass_rate` are read from the `gate.<gate>.pass_rate` KPIs;
`defect_severity` holds only the defects first seen since the last evaluation.

State: {instance id: record}, JSON-serialisable; only instances that are not inactive
are kept. A record holds id, rule, labels, severity, state (pending | firing | resolved |
no_data), since (when it entered that state), active_at (when pending began), fired_at,
last_true_at, last_notified_at, value, acknowledged ({by, at, comment} or None), prior
(in no_data: the state no_data stands in for) and dropped (entities of the rule left out
by max_instances at the last evaluation).

Transition: {id, rule, labels, severity, from, to, at, value, threshold_text, notify,
since, description, dashboard}. `notify` is True only for → firing, for → resolved from
firing, and for reminders (firing → firing every `repeat_interval` until acknowledged).
Rule-level transitions `active → capped` / `capped → active` (id = rule name, value = the
number of entities left out) say when max_instances starts and stops dropping entities.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from alerts.rules import Metric, Rule, RuleSet, Scalar
from data.timeutil import fmt_ms

STATES = ("inactive", "pending", "firing", "resolved", "no_data")
Record = dict[str, Any]
Transition = dict[str, Any]


def instance_id(rule_name: str, labels: Mapping[str, str]) -> str:
    """'High Queue Depth{queue=code_review}'; a global rule's one instance is its name."""
    if not labels:
        return rule_name
    return rule_name + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


# --- reading the snapshot --------------------------------------------------------------

def _coerce(metric: Metric, raw: Any) -> Scalar:
    """The value in the metric's type; anything unusable is None (no data), never 0."""
    if metric.is_string:
        return raw if isinstance(raw, str) else None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    return 100.0 - raw if metric.complement else float(raw)


def _section(snapshot: Any, key: str) -> Mapping[str, Any]:
    part = snapshot.get(key) if isinstance(snapshot, Mapping) else None
    return part if isinstance(part, Mapping) else {}


def _entity_values(metric: Metric, snapshot: Any) -> dict[str, Scalar]:
    """{entity: value} of a per-entity metric."""
    if metric.kpi:      # a KPI id template such as gate.{}.pass_rate
        prefix, suffix = metric.kpi.split("{}")
        return {k[len(prefix):len(k) - len(suffix)]: _coerce(metric, v) for k, v in _section(snapshot, "kpis").items()
                if isinstance(k, str) and len(k) > len(prefix) + len(suffix) and k.startswith(prefix) and k.endswith(suffix)}
    family = _section(snapshot, "entities").get(metric.name)
    return {str(k): _coerce(metric, v) for k, v in family.items()} if isinstance(family, Mapping) else {}


class _Subject(NamedTuple):
    """What one alert instance sees in this evaluation."""

    labels: dict[str, str]
    values: dict[str, Scalar]
    result: bool | None
    absent: bool        # an entity known from the state but missing from the snapshot


def _subjects(rule: Rule, snapshot: Any, previous: Mapping[str, Record]) -> list[_Subject]:
    """One subject for a global rule; for a per-entity rule, one per entity in the snapshot
    plus one per entity the state knows (a vanished entity is no data, or, for event
    metrics such as new defects, false)."""
    kpi_values = _section(snapshot, "kpis")
    shared = {m.name: _coerce(m, kpi_values.get(m.kpi or m.name)) for m in rule.metrics if m.label is None}
    if rule.label is None:
        return [_Subject({}, shared, rule.condition.evaluate(shared), False)]
    per_entity: dict[str, dict[str, Scalar]] = {}
    for m in rule.metrics:
        if m.label:
            for entity, value in _entity_values(m, snapshot).items():
                per_entity.setdefault(entity, {})[m.name] = value
    known = {rec["labels"][rule.label] for rec in previous.values() if list(rec.get("labels", {})) == [rule.label]}
    blank = {m.name: None for m in rule.metrics if m.label}
    out = []
    for entity in sorted(per_entity.keys() | known):
        values = {**shared, **blank, **per_entity.get(entity, {})}
        absent = entity not in per_entity
        result = False if absent and rule.event else rule.condition.evaluate(values)
        out.append(_Subject({rule.label: entity}, values, result, absent))
    return out


def _value(rule: Rule, values: Mapping[str, Scalar]) -> Scalar | dict[str, Scalar]:
    """The metric's value, or {metric: value} when the condition uses several."""
    names = [m.name for m in rule.metrics]
    return values.get(names[0]) if len(names) == 1 else {n: values.get(n) for n in names}


# --- the state machine -----------------------------------------------------------------

def _fresh(rule: Rule, labels: Mapping[str, str], now: int) -> Record:
    return {"id": instance_id(rule.name, labels), "rule": rule.name, "labels": dict(labels),
            "severity": rule.severity, "state": "inactive", "since": now, "active_at": None, "fired_at": None,
            "last_true_at": None, "last_notified_at": None, "value": None, "acknowledged": None,
            "prior": None, "dropped": 0}


def _when_true(rule: Rule, rec: Record, base: str, now: int) -> str:
    if base == "firing":
        return "firing"
    if base == "pending":
        return "firing" if now - rec["active_at"] >= rule.duration_ms else "pending"
    rec["active_at"] = now
    return "firing" if rule.duration_ms == 0 else "pending"


def _when_false(rule: Rule, rec: Record, base: str, now: int) -> str:
    if base == "firing":
        last = rec.get("last_true_at")
        held = last is not None and now - last < rule.keep_firing_for_ms
        return "firing" if held else "resolved"
    return "resolved" if base == "resolved" else "inactive"


def _reminder_due(rule: Rule, rec: Record, now: int) -> bool:
    """A firing alert is notified again every repeat_interval until it is acknowledged."""
    if rule.repeat_interval_ms is None or rec.get("acknowledged"):
        return False
    last = rec.get("last_notified_at")
    return last is not None and now - last >= rule.repeat_interval_ms


def _transition(rule: Rule, rec: Record, was: str, new: str, now: int, notify: bool) -> Transition:
    return {"id": rec["id"], "rule": rule.name, "labels": dict(rec["labels"]), "severity": rule.severity,
            "from": was, "to": new, "at": now, "value": rec["value"], "threshold_text": rule.condition_text,
            "notify": notify, "since": rec["active_at"] if new == "firing" else now,
            "description": rule.description, "dashboard": rule.dashboard}


def _step(rule: Rule, subject: _Subject, prev: Record | None, now: int) -> tuple[Record | None, Transition | None]:
    """Advance one instance. No data is a state of its own that remembers what it stands in
    for (`prior`), so data coming back continues a firing alert instead of re-notifying it,
    and no data never resolves one."""
    was = prev["state"] if prev and prev.get("state") in STATES else "inactive"
    base = (prev.get("prior") or "inactive") if prev and was == "no_data" else was
    rec = dict(prev) if prev else _fresh(rule, subject.labels, now)
    rec.update(severity=rule.severity, value=_value(rule, subject.values))
    if subject.result is None:
        new = "no_data"
        rec["prior"] = rec.get("prior") if was == "no_data" else ("inactive" if was == "pending" else was)
    elif subject.result:
        rec["last_true_at"] = now
        new = _when_true(rule, rec, base, now)
    else:
        new = _when_false(rule, rec, base, now)
    fires = new == "firing" and base != "firing"
    resolves = new == "resolved" and base == "firing"
    reminds = new == was == "firing" and _reminder_due(rule, rec, now)
    if fires:
        rec["fired_at"] = now
    if fires or reminds:
        rec["last_notified_at"] = now
    if resolves:
        rec["acknowledged"] = None
    if new != was:
        rec["since"] = now
    if new != "no_data":
        rec["prior"] = None
    rec["state"] = new
    kept = None if new == "inactive" else rec
    if new == was and not reminds:
        return kept, None
    return kept, _transition(rule, rec, was, new, now, fires or resolves or reminds)


def _priority(prev: Record | None, rec: Record) -> int:
    """Who keeps a slot when a rule has more instances than max_instances: alerts already
    under way, then new pending or firing ones, then resolved and no-data ones."""
    if prev is not None and (prev.get("state") in ("pending", "firing") or prev.get("prior") == "firing"):
        return 0
    return 1 if rec["state"] in ("pending", "firing") else 2


def _rule_transition(rule: Rule, was: str, new: str, value: Any, now: int) -> Transition:
    return {"id": rule.name, "rule": rule.name, "labels": {}, "severity": rule.severity, "from": was, "to": new,
            "at": now, "value": value, "threshold_text": rule.condition_text, "notify": False, "since": now,
            "description": rule.description, "dashboard": rule.dashboard}


def _retired(rec: Record, now: int) -> Transition:
    """An instance whose rule was removed, or now has other labels, leaves the state with
    a record in the history rather than silently."""
    return {"id": rec.get("id"), "rule": rec.get("rule"), "labels": dict(rec.get("labels", {})),
            "severity": rec.get("severity"), "from": rec.get("state"), "to": "inactive", "at": now,
            "value": None, "threshold_text": "", "notify": False, "since": now,
            "description": "the rule was removed or changed", "dashboard": "executive"}


def _evaluate_rule(rule: Rule, snapshot: Any, previous: Mapping[str, Record],
                   now: int) -> tuple[list[Transition], dict[str, Record]]:
    steps: list[tuple[int, str, Record | None, Transition | None]] = []
    for subject in _subjects(rule, snapshot, previous):
        iid = instance_id(rule.name, subject.labels)
        prev = previous.get(iid)
        rec, tr = _step(rule, subject, prev, now)
        if rec is not None and rule.event and subject.absent and tr is None and rec["state"] == "resolved":
            rec = None      # an old defect whose resolve notice has gone out: nothing left to show
        steps.append((2 if rec is None else _priority(prev, rec), iid, rec, tr))
    ranked = sorted((s for s in steps if s[2] is not None), key=lambda s: (s[0], s[1]))
    kept_ids = {s[1] for s in ranked[:rule.max_instances]}
    dropped = len(ranked) - len(kept_ids)
    state: dict[str, Record] = {}
    transitions: list[Transition] = []
    for _, iid, rec, tr in sorted(steps, key=lambda s: s[1]):
        if rec is not None and iid not in kept_ids:
            continue
        if rec is not None:
            state[iid] = {**rec, "dropped": dropped}
        if tr is not None:
            transitions.append(tr)
    was_dropping = any(r.get("dropped") for r in previous.values())
    if was_dropping != (dropped > 0):
        was, new = ("capped", "active") if was_dropping else ("active", "capped")
        transitions.append(_rule_transition(rule, was, new, dropped, now))
    evaluated = {s[1] for s in steps}
    transitions += [_retired(rec, now) for iid, rec in sorted(previous.items()) if iid not in evaluated]
    return transitions, state


def evaluate(rules: RuleSet, snapshot: Mapping[str, Any], now_ms: int,
             previous_state: Mapping[str, Record] | None) -> tuple[list[Transition], dict[str, Record]]:
    """Evaluate every rule, in file order, against one snapshot. Pure and deterministic:
    the same arguments always give the same result, and previous_state is not changed."""
    previous = {k: v for k, v in (previous_state or {}).items() if isinstance(v, Mapping)}
    names = {rule.name for rule in rules}
    transitions: list[Transition] = []
    state: dict[str, Record] = {}
    for rule in rules:
        mine = {k: v for k, v in previous.items() if v.get("rule") == rule.name}
        trs, recs = _evaluate_rule(rule, snapshot, mine, now_ms)
        transitions += trs
        state.update(recs)
    transitions += [_retired(rec, now_ms) for iid, rec in sorted(previous.items()) if rec.get("rule") not in names]
    return transitions, state


def acknowledge(state: Mapping[str, Record], instance_id: str, user: str, comment: str,
                now_ms: int) -> dict[str, Record]:
    """A copy of the state with the firing instance acknowledged (who, when, why): it gets
    no reminders until it resolves, and the acknowledgement ends with it."""
    rec = state.get(instance_id)
    if rec is None:
        raise KeyError(f"no alert instance '{instance_id}'")
    if rec.get("state") != "firing":
        raise ValueError(f"'{instance_id}' is {rec.get('state')}: only a firing alert can be acknowledged")
    return {**state, instance_id: {**rec, "acknowledged": {"by": user, "at": now_ms, "comment": comment}}}


# --- notification text -----------------------------------------------------------------

_PHRASES = {"pending": "is pending", "firing": "is firing", "resolved": "is resolved", "no_data": "has no data",
            "inactive": "is inactive", "capped": "has more entities than max_instances",
            "active": "tracks all its entities again"}


def _fmt_value(value: Any) -> str:
    if value is None:
        return "no data"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items())
    return str(value)


def message(transition: Mapping[str, Any], base_url: str) -> tuple[str, str]:
    """(title, body) of a notification, readable as plain text in any channel."""
    t = transition
    labels = ", ".join(f"{k}={v}" for k, v in sorted(t.get("labels", {}).items()))
    subject = f"{t['rule']} ({labels})" if labels else t["rule"]
    to = t["to"]
    phrase = "is still firing" if to == t["from"] == "firing" else _PHRASES.get(to, f"is {to}")
    tag = "RESOLVED" if to == "resolved" else str(t["severity"]).upper()
    lines = [f"Alert: {t['rule']}", f"Severity: {t['severity']}", f"State: {t['from']} -> {to}"]
    if labels:
        lines.append(f"Entity: {labels}")
    value_name = "Entities not tracked" if to == "capped" else "Value"
    lines += [f"{value_name}: {_fmt_value(t.get('value'))}", f"Condition: {t['threshold_text']}",
              f"Since: {fmt_ms(t.get('since') or t['at'])}"]
    if t.get("description"):
        lines.append(f"Description: {t['description']}")
    lines.append(f"Dashboard: {base_url.rstrip('/')}/dashboards/{t.get('dashboard') or 'executive'}")
    return f"[{tag}] {subject} {phrase}", "\n".join(lines)
