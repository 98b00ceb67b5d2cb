"""Alert rules: the seed's YAML form (§6.1) and the safe condition language of ALERTS.md.

A condition is read by a hand-written tokenizer and recursive-descent parser into a small
immutable tree. Nothing is ever handed to eval/compile, so a rule file can name metrics
and compare them with constants, and do nothing else. Everything a rule file can get
wrong is refused at load with the file, the rule and the reason, and `reload` keeps the
running rules when the new file is refused.

Metrics a condition may use:
- every KPI id of the executive, operational, QA and developer tables of `data.kpis`
  (list-valued KPIs excepted: nothing can be compared with a list), and the per-entity ids
  `queue_depth.<queue>` and `gate.<gate>.pass_rate|executions|p95_time` read as one value;
- the seed's aliases: `quality_score` is `overall_quality_score`; `failure_rate` is
  100 − `workflow_completion_rate` (the share of completed workflows not merged:
  rejected or abandoned);
- per-entity metrics, one alert instance per entity (label key in brackets):
  `queue_depth` [queue], `agent_load` [agent] (percentage 0–100), `agent_status` [agent]
  (string), `gate.pass_rate` [gate] (read from the `gate.<gate>.pass_rate` KPIs) and
  `defect_severity` [defect] (string; a defect first seen since the last evaluation).
  Plain `gate_pass_rate` is the global KPI.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Union

import yaml

from data import kpis
from data.events import AGENT_STATUSES
from data.timeutil import parse_duration

SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("dashboard", "slack", "email", "pagerduty", "sms", "webhook")
DEFECT_SEVERITIES = ("critical", "major", "minor")
MAX_CONDITION_LENGTH = 1000
MAX_NESTING = 20
DEFAULT_MAX_INSTANCES = 50
MAX_INSTANCES_LIMIT = 10_000

Scalar = Union[float, str, None]


class RuleError(ValueError):
    """A rule file or condition that cannot be used; says where (file, rule) and why."""

    def __init__(self, reason: str, source: str | None = None, rule: str | None = None) -> None:
        self.reason, self.source, self.rule = reason, source, rule
        where = [p for p in (source, None if rule is None else f"rule '{rule}'") if p]
        super().__init__(": ".join([*where, reason]))


# --- metrics ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """A name a condition may use, with what its values and thresholds are.

    `label` is the entity label key of a per-entity metric (None for a global one);
    `kpi` is the snapshot KPI id a global metric reads, or for `gate.pass_rate` the id
    template with `{}` for the entity; `event` marks entities that are present only in the
    evaluation that first sees them (a new defect), so their absence is "false", not "no
    data".
    """

    name: str
    unit: str                        # a data.kpis unit, or "string"
    label: str | None = None
    kpi: str | None = None
    complement: bool = False         # value is 100 − the KPI (failure_rate)
    event: bool = False
    choices: tuple[str, ...] = ()    # the values a string metric can take

    @property
    def is_string(self) -> bool:
        return self.unit == "string"


def _global_metrics() -> dict[str, Metric]:
    """Every KPI of the data.kpis tables (list-valued ones cannot be compared)."""
    out: dict[str, Metric] = {}
    for table in (kpis.EXECUTIVE, kpis.OPERATIONAL, kpis.QA, kpis.DEVELOPER):
        for kpi_id, (unit, _) in table.items():
            if unit != "list":
                out[kpi_id] = Metric(kpi_id, unit, kpi=kpi_id)
    return out


METRICS: dict[str, Metric] = {
    **_global_metrics(),
    "quality_score": Metric("quality_score", "percentage", kpi="overall_quality_score"),
    "failure_rate": Metric("failure_rate", "percentage", kpi="workflow_completion_rate", complement=True),
}
ENTITY_METRICS: dict[str, Metric] = {
    "queue_depth": Metric("queue_depth", "count", label="queue"),
    "agent_load": Metric("agent_load", "percentage", label="agent"),
    "agent_status": Metric("agent_status", "string", label="agent", choices=AGENT_STATUSES),
    "gate.pass_rate": Metric("gate.pass_rate", "percentage", label="gate", kpi="gate.{}.pass_rate"),
    "defect_severity": Metric("defect_severity", "string", label="defect", event=True, choices=DEFECT_SEVERITIES),
}
LIST_METRICS = frozenset(k for t in (kpis.EXECUTIVE, kpis.OPERATIONAL, kpis.QA, kpis.DEVELOPER)
                         for k, (unit, _) in t.items() if unit == "list")
_QUEUE_KPI = re.compile(r"queue_depth\.[A-Za-z0-9][A-Za-z0-9_-]*")
_GATE_KPI = re.compile(r"gate\.[A-Za-z0-9][A-Za-z0-9_-]*\.(pass_rate|executions|p95_time)")
_GATE_UNITS = {k.rsplit(".", 1)[1]: unit for k, (unit, _) in kpis.gate_kpis("g").items()}


def lookup_metric(name: str) -> Metric | None:
    """The metric a condition names, or None when there is no such metric."""
    found = METRICS.get(name) or ENTITY_METRICS.get(name)
    if found is not None:
        return found
    if _QUEUE_KPI.fullmatch(name):
        return Metric(name, "count", kpi=name)
    gate = _GATE_KPI.fullmatch(name)
    return Metric(name, _GATE_UNITS[gate.group(1)], kpi=name) if gate else None


# --- tokens ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str        # name, number, percent, duration, string, op, (, ), and, or, end
    text: str
    pos: int         # 1-based column
    value: Any = None

    def describe(self) -> str:
        return "end of condition" if self.kind == "end" else f"'{self.text}' at column {self.pos}"


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<literal>-?\d[\w.%]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<string>'[^'\n]*'|"[^"\n]*")
  | (?P<op>>=|<=|==|!=|>|<|=)
  | (?P<paren>[()])
""", re.VERBOSE)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _literal(text: str, pos: int) -> Token:
    """A number, a percentage ('10%' is 10.0) or a duration ('2h', in seconds)."""
    if _NUMBER.fullmatch(text):
        return Token("number", text, pos, float(text))
    if text.endswith("%") and _NUMBER.fullmatch(text[:-1]):
        return Token("percent", text, pos, float(text[:-1]))
    try:
        return Token("duration", text, pos, parse_duration(text) / 1000.0)
    except ValueError:
        raise RuleError(f"bad value '{text}' at column {pos} (use a number, 10%, 90s, 5m or 2h)") from None


def tokenize(text: str) -> Iterator[Token]:
    """Tokens of a condition, read lazily so that the first error in reading order is the
    one reported; any character outside the language is an error."""
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        pos = i + 1
        if m is None:
            if text[i] in "'\"":
                raise RuleError(f"unterminated string starting at column {pos}")
            raise RuleError(f"unexpected character {text[i]!r} at column {pos}")
        kind, tok = m.lastgroup, m.group()
        i = m.end()
        if kind == "literal":
            yield _literal(tok, pos)
        elif kind == "name" and tok.lower() in ("and", "or"):
            yield Token(tok.lower(), tok, pos)
        elif kind == "name":
            yield Token("name", tok, pos)
        elif kind == "string":
            yield Token("string", tok, pos, tok[1:-1])
        elif kind == "op":
            yield Token("op", tok, pos, "==" if tok == "=" else tok)
        elif kind == "paren":
            yield Token(tok, tok, pos)          # "space" yields nothing
    yield Token("end", "", len(text) + 1)


# --- condition trees -------------------------------------------------------------------

_COMPARE = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Compare:
    """`<metric> <op> <threshold>`; the threshold is already in the metric's unit."""

    metric: Metric
    op: str
    threshold: float | str

    def evaluate(self, values: Mapping[str, Scalar]) -> bool | None:
        """None when the metric has no value (or one of the wrong type): no data."""
        value = values.get(self.metric.name)
        if value is None or isinstance(value, str) != isinstance(self.threshold, str):
            return None
        return bool(_COMPARE[self.op](value, self.threshold))

    def metrics(self) -> tuple[Metric, ...]:
        return (self.metric,)


@dataclass(frozen=True)
class Junction:
    """`and` / `or` over two or more parts, in three-valued logic (None = no data)."""

    op: str
    parts: tuple["Condition", ...]

    def evaluate(self, values: Mapping[str, Scalar]) -> bool | None:
        """`and`: False if any part is False, else None if any is None. `or`: dually.

        A definite answer wins over missing data, so one known-false part is enough to
        say an `and` is false even when another metric has no data.
        """
        results = [p.evaluate(values) for p in self.parts]
        decisive = self.op == "or"      # the value that settles the junction
        if any(r is decisive for r in results):
            return decisive
        return None if any(r is None for r in results) else not decisive

    def metrics(self) -> tuple[Metric, ...]:
        seen: dict[str, Metric] = {}
        for part in self.parts:
            for m in part.metrics():
                seen.setdefault(m.name, m)
        return tuple(seen.values())


Condition = Union[Compare, Junction]


class _Parser:
    """expr := and_expr ('or' and_expr)* ; and_expr := primary ('and' primary)* ;
    primary := '(' expr ')' | NAME OP VALUE."""

    def __init__(self, tokens: Iterator[Token]) -> None:
        self.tokens, self.depth = tokens, 0
        self.lookahead: Token | None = None

    def peek(self) -> Token:
        if self.lookahead is None:
            self.lookahead = next(self.tokens)
        return self.lookahead

    def take(self) -> Token:
        tok = self.peek()
        self.lookahead = None
        return tok

    def parse(self) -> Condition:
        cond = self.expr()
        tok = self.peek()
        if tok.kind != "end":
            raise RuleError(f"unexpected {tok.describe()} (expected 'and', 'or' or the end)")
        return cond

    def expr(self) -> Condition:
        return self.junction("or", self.and_expr)

    def and_expr(self) -> Condition:
        return self.junction("and", self.primary)

    def junction(self, op: str, part: Callable[[], Condition]) -> Condition:
        parts = [part()]
        while self.peek().kind == op:
            self.take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else Junction(op, tuple(parts))

    def primary(self) -> Condition:
        tok = self.take()
        if tok.kind == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise RuleError(f"parentheses nested deeper than {MAX_NESTING}")
            cond = self.expr()
            close = self.take()
            if close.kind != ")":
                raise RuleError(f"expected ')' but found {close.describe()}")
            self.depth -= 1
            return cond
        if tok.kind != "name":
            raise RuleError(f"expected a metric name but found {tok.describe()}")
        return self.comparison(tok)

    def comparison(self, name: Token) -> Compare:
        if self.peek().kind == "(":
            raise RuleError(f"function calls are not allowed ('{name.text}(' at column {name.pos})")
        metric = lookup_metric(name.text)
        if metric is None:
            hint = " (list-valued KPIs cannot be compared)" if name.text in LIST_METRICS else ""
            raise RuleError(f"unknown metric '{name.text}'{hint}")
        op = self.take()
        if op.kind != "op":
            raise RuleError(f"expected a comparison operator after '{name.text}' but found {op.describe()}")
        value = self.take()
        if value.kind not in ("number", "percent", "duration", "string"):
            raise RuleError(f"expected a value after '{name.text} {op.text}' but found {value.describe()}")
        return Compare(metric, op.value, _threshold(metric, op, value))


_DURATION_UNITS = {"hours": 3600.0, "minutes": 60.0}


def _threshold(metric: Metric, op: Token, value: Token) -> float | str:
    """Check that the value fits the metric and bring it to the metric's unit."""
    if metric.is_string:
        if value.kind != "string":
            raise RuleError(f"'{metric.name}' is a string metric: compare it with a quoted value")
        if op.value not in ("==", "!="):
            raise RuleError(f"'{metric.name}' is a string metric: only =, == and != apply, not '{op.text}'")
        if value.value not in metric.choices:
            raise RuleError(f"'{metric.name}' is never '{value.value}' (one of: {', '.join(metric.choices)})")
        return value.value
    if value.kind == "string":
        raise RuleError(f"'{metric.name}' is numeric: compare it with a number, not {value.text}")
    if value.kind == "percent" and metric.unit != "percentage":
        raise RuleError(f"'{metric.name}' is in {metric.unit}, not a percentage: '{value.text}' does not apply")
    if value.kind == "duration":
        if metric.unit not in _DURATION_UNITS:
            raise RuleError(f"'{metric.name}' is in {metric.unit}, not a duration: '{value.text}' does not apply")
        return value.value / _DURATION_UNITS[metric.unit]
    return value.value


def parse_condition(text: str) -> Condition:
    """Parse a condition or raise RuleError with the reason (no file or rule: see parse_rules)."""
    if not isinstance(text, str):
        raise RuleError(f"a condition must be a string, not {text!r}")
    if not text.strip():
        raise RuleError("empty condition")
    if len(text) > MAX_CONDITION_LENGTH:
        raise RuleError(f"condition longer than {MAX_CONDITION_LENGTH} characters")
    cond = _Parser(tokenize(text)).parse()
    labels = sorted({(m.label, m.name) for m in cond.metrics() if m.label})
    if len({label for label, _ in labels}) > 1:
        names = ", ".join(f"{name} ({label})" for label, name in labels)
        raise RuleError(f"mixes metrics of different entities: {names}")
    return cond


# --- rules -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    name: str
    group: str
    condition_text: str
    condition: Condition
    severity: str
    duration_ms: int
    channels: tuple[str, ...]
    keep_firing_for_ms: int = 0
    repeat_interval_ms: int | None = None
    max_instances: int = DEFAULT_MAX_INSTANCES
    description: str = ""

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self.condition.metrics()

    @property
    def label(self) -> str | None:
        """The entity label key when the rule is evaluated per entity."""
        return next((m.label for m in self.metrics if m.label), None)

    @property
    def event(self) -> bool:
        return any(m.event for m in self.metrics)

    @property
    def dashboard(self) -> str:
        """Where a notification links: queue/agent → operational, gate/defect/quality → qa."""
        words = [m.name if m.label is None else m.label for m in self.metrics]
        if any("queue" in w or "agent" in w for w in words):
            return "operational"
        if any(k in w for w in words for k in ("gate", "defect", "quality")):
            return "qa"
        return "executive"


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in file order."""

    rules: tuple[Rule, ...] = ()
    source: str = ""

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


_RULE_KEYS = ("name", "condition", "severity", "duration", "channels", "keep_firing_for",
              "repeat_interval", "max_instances", "description")


def _duration(raw: Any, key: str) -> int:
    if not isinstance(raw, str):
        raise RuleError(f"'{key}' must be a duration with a unit such as 90s, 5m or 2h, not {raw!r}")
    try:
        return parse_duration(raw)
    except ValueError:
        raise RuleError(f"bad duration '{raw}' for '{key}' (use e.g. 0s, 90s, 5m, 2h)") from None


def _channels(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise RuleError("'channels' must be a non-empty list of channel names")
    unknown = [c for c in raw if c not in CHANNELS]
    if unknown:
        raise RuleError(f"unknown channel '{unknown[0]}' (one of: {', '.join(CHANNELS)})")
    return tuple(raw)


def _max_instances(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_INSTANCES_LIMIT:
        raise RuleError(f"'max_instances' must be a whole number from 1 to {MAX_INSTANCES_LIMIT}, not {raw!r}")
    return raw


def _rule(item: Any, group: str) -> Rule:
    """One rule mapping; errors carry the reason only (the caller adds file and rule)."""
    unknown = [k for k in item if k not in _RULE_KEYS]
    if unknown:
        raise RuleError(f"unknown key '{unknown[0]}' (allowed: {', '.join(_RULE_KEYS)})")
    for key in ("condition", "severity", "duration", "channels"):
        if key not in item:
            raise RuleError(f"missing '{key}'")
    if item["severity"] not in SEVERITIES:
        raise RuleError(f"bad severity {item['severity']!r} (one of: {', '.join(SEVERITIES)})")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise RuleError("'description' must be a string")
    repeat = _duration(item["repeat_interval"], "repeat_interval") if "repeat_interval" in item else None
    if repeat == 0:
        raise RuleError("'repeat_interval' must be longer than 0s")
    return Rule(name=item["name"], group=group, condition_text=item["condition"],
                condition=parse_condition(item["condition"]), severity=item["severity"],
                duration_ms=_duration(item["duration"], "duration"), channels=_channels(item["channels"]),
                keep_firing_for_ms=_duration(item.get("keep_firing_for", "0s"), "keep_firing_for"), repeat_interval_ms=repeat,
                max_instances=_max_instances(item.get("max_instances", DEFAULT_MAX_INSTANCES)),
                description=description)


def _rule_name(item: Any, group: str, index: int) -> str:
    """The rule's name, checked first so every later error can name the rule."""
    where = f"group '{group}', rule #{index + 1}"
    if not isinstance(item, dict):
        raise RuleError(f"{where}: a rule must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"{where}: missing 'name'")
    if len(name) > 200 or any(c in name for c in "{}\n"):
        raise RuleError(f"{where}: a name has at most 200 characters and no braces or newlines")
    return name


def parse_rules(text: str, source_name: str) -> RuleSet:
    """Rules from YAML text (`alert_rules:` → groups → lists of rules); other top-level
    keys are left for other readers of the same file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"invalid YAML: {exc}", source_name) from None
    groups = doc.get("alert_rules") if isinstance(doc, dict) else None
    if not isinstance(groups, dict):
        raise RuleError("expected a top-level 'alert_rules' mapping of groups", source_name)
    rules: list[Rule] = []
    for group, items in groups.items():
        if not isinstance(items, list):
            raise RuleError(f"group '{group}' must be a list of rules", source_name)
        for index, item in enumerate(items):
            try:
                name = _rule_name(item, str(group), index)
            except RuleError as exc:
                raise RuleError(exc.reason, source_name) from None
            if any(r.name == name for r in rules):
                raise RuleError("duplicate rule name", source_name, name)
            try:
                rules.append(_rule(item, str(group)))
            except RuleError as exc:
                raise RuleError(exc.reason, source_name, name) from None
    return RuleSet(tuple(rules), source_name)


def load_rules(path: str | Path) -> RuleSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read: {exc}", str(path)) from None
    return parse_rules(text, str(path))


def reload(path: str | Path, current: RuleSet) -> tuple[RuleSet, RuleError | None]:
    """The new rules, or — when the file is refused — the current ones and the error, so a
    bad edit never stops the rules that are running."""
    try:
        return load_rules(path), None
    except RuleError as exc:
        return current, exc
