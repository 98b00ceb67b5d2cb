"""The events behind a number (METRICS.md, "The events behind a number").

For every KPI, `rows()` yields exactly the events its value is computed from, newest first
(by timestamp, then id), each with its role: `counted`, `numerator` / `denominator`,
`averaged` (with the item's value), `ranked`, `open_at_end` / `state_at_end` (an entity in
the state at `end`, with the event that put it there), or `excluded` (agent time in neither
part of utilisation). A row may carry `context`: the other events its value needs (the
`pr_created` a time to merge starts from). `page()` folds every row of the window into
counts that reproduce the value, and returns one page of them after a cursor or offset.

Windows read the raw events of the window (data.rawstore). Whether an event is "the one"
(a workflow's first completion, its creation, a first approval) and entity states at `end`
come from the aggregator's entity states through the same data.contrib functions the
rollups are made with, so the rows agree with the card. State KPIs live in
data.drilldown_state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import orjson
import redis

from data import kpis, rawstore, scopes
from data.contrib import MICRO, NEVER, gate_passed
from data.events import GATE_TYPES, STEPS
from data.keys import Keys
from data.rawstore import Ref
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, day_start, fmt_ms

COUNTED, NUMERATOR, DENOMINATOR, AVERAGED, RANKED = "counted", "numerator", "denominator", "averaged", "ranked"
OPEN, AT_END, EXCLUDED = "open_at_end", "state_at_end", "excluded"
WF = "workflow."
Value = float | int | list[str] | None


@dataclass(frozen=True)
class Query:
    """One drill-down: a KPI over [start, end) (state KPIs: at `end`), for a user, filtered."""

    kpi: str
    start: int
    end: int
    horizon: int                         # no event is later than this (now + the allowed skew)
    user: str | None = None              # developer KPIs
    team: str | None = None              # the user's team (team_velocity)
    scope: tuple[str, str] | None = None  # ("repository" | "team", value), for data.scopes.SCOPED_KPIS
    gate: str | None = None
    agent: str | None = None
    sla_ms: int = 8 * HOUR_MS
    previous: int | None = None          # start of the window before (quality_score_trend)


class Row:
    """One event behind the number, with its role; ordered by `key` (timestamp ms, id)."""

    __slots__ = ("ts", "id", "role", "event", "value", "context", "window", "pending")

    def __init__(self, ts: int, ident: str, role: str, event: dict[str, Any], value: Any = None,
                 context: list[dict[str, Any]] | None = None, window: str | None = None) -> None:
        self.ts, self.id, self.role, self.event, self.value = ts, ident, role, event, value
        self.context = context or []
        self.window = window
        self.pending: tuple[list[Ref], list[Any]] | None = None     # context to read (data.drilldown.resolve)

    @property
    def key(self) -> Ref:
        return self.ts, self.id


class Ctx:
    """A Redis client and keys, with a bounded cache of entity states read for one request."""

    CACHE_MAX = 50_000

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r, self.k = r, keys
        self._states: dict[tuple[str, str], dict[str, Any] | None] = {}

    def states(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        missing = [w for w in wanted if w not in self._states]
        if missing:
            if len(self._states) + len(missing) > self.CACHE_MAX:
                self._states.clear()           # bounded: an export of any size keeps one chunk's worth
                missing = list(wanted)
            raws = self.r.mget([self.k.entity(kind, ident) for kind, ident in missing])
            for w, raw in zip(missing, raws):
                self._states[w] = _entity(raw) if raw else None
        return {w: self._states[w] for w in wanted}


def _entity(raw: bytes) -> dict[str, Any]:
    """An entity state without `_c`, the contributions the aggregator last wrote for it: most
    of a workflow's JSON, and nothing a drill-down reads (the aggregator writes it last)."""
    cut = raw.rfind(b',"_c":')
    if cut > 0 and raw.endswith(b"]}"):
        return orjson.loads(raw[:cut] + b"}")
    state = orjson.loads(raw)
    state.pop("_c", None)
    return state


Producer = Callable[[Ctx, Query], Iterator[Row]]


@dataclass(frozen=True)
class Spec:
    kind: str                      # count, percentage, mean, percentile, state, level, rate, difference, list, composite
    unit: str
    types: tuple[str, ...]         # the event types of the rows (their columns)
    rows: Producer | None
    value_unit: str | None = None  # the unit of a row's value (a mean: the KPI's unit)
    filters: tuple[str, ...] = ()  # which of gate / agent narrow the rows
    parts: tuple[str, ...] = ()    # a composite's parts
    weighted: bool = False         # a percentage of durations (row values), not of rows


# --- one verdict per event -----------------------------------------------------------------

@dataclass
class Verdict:
    role: str
    value: Any = None
    refs: list[Ref] = field(default_factory=list)                  # context events by (ts, id)
    finds: list[tuple[str, str, int, Callable[[dict[str, Any]], bool]]] = field(default_factory=list)
    first: Callable[[dict[str, Any]], bool] | None = None           # keep only if the first such at its instant
    window: str | None = None


Classify = Callable[[Query, int, dict[str, Any], dict[tuple[str, str], Any]], Verdict | None]


def _scan(types: tuple[str, ...], classify: Classify, *, entities: Callable[[dict[str, Any], Query],
          list[tuple[str, str]]] | None = None, where: Callable[[dict[str, Any], Query], bool] | None = None
          ) -> Producer:
    """Rows from the events of `types` in the window, one verdict each, read a chunk at a
    time: cheap data filters first, then the entity states the verdicts need (one MGET per
    chunk), then the context events (one pipeline per chunk). A query with a scope keeps
    only the events of that repository's or team's workflows (the caller sets one only for
    the KPIs of data.scopes.SCOPED_KPIS)."""
    def produce(ctx: Ctx, q: Query) -> Iterator[Row]:
        s, e = window(q)
        by_scope = q.scope is not None
        for chunk in rawstore.scan(ctx.r, ctx.k, types, s, e):
            hits = [h for h in chunk if where is None or where(h[2], q)]
            wanted: set[tuple[str, str]] = set()
            for _ts, _id, ev in hits:
                if entities:
                    wanted.update(entities(ev, q))
                if by_scope:
                    wanted.add(("wf", _wf_of(ev)))
            states = ctx.states(wanted) if wanted else {}
            verdicts: list[tuple[int, str, dict[str, Any], Verdict]] = []
            for ts, ident, ev in hits:
                if by_scope and not _in_scope(states.get(("wf", _wf_of(ev))), q):
                    continue
                v = classify(q, ts, ev, states)
                if v is not None:
                    verdicts.append((ts, ident, ev, v))
            yield from _with_context(ctx, verdicts)
    return produce


def _with_context(ctx: Ctx, verdicts: list[tuple[int, str, dict[str, Any], Verdict]]) -> Iterator[Row]:
    """Rows of the verdicts; their context is only noted here and read by `resolve` for the
    rows a page or an export sends (counting a window needs none of it)."""
    firsts = [("wf", _wf_of(ev), ts) for ts, _, ev, v in verdicts if v.first is not None]
    first_ids = iter(_ids_at(ctx, firsts))
    for ts, ident, ev, v in verdicts:
        if v.first is not None:
            others = [i for i in next(first_ids) if i != ident]
            if others:
                same = sorted(c["id"] for c in rawstore.fetch(ctx.r, ctx.k, [(ts, i) for i in [ident, *others]])
                              if c is not None and v.first(c))
                if same and same[0] != ident:
                    continue              # another event at the same instant is the first one
        row = Row(ts, ident, v.role, ev, v.value, None, v.window)
        if v.refs or v.finds:
            row.pending = (v.refs, v.finds)
        yield row


def _ids_at(ctx: Ctx, wants: list[tuple[str, str, int]]) -> list[list[str]]:
    """For each (kind, id, ts), the other event ids of that entity at exactly ts (usually none)."""
    if not wants:
        return []
    with ctx.r.pipeline(transaction=False) as p:
        for kind, ident, ts in wants:
            p.zrangebyscore(ctx.k.entity_events(kind, ident), ts, ts)
        return [[m.decode() for m in got] for got in p.execute()]


def resolve(ctx: Ctx, rows: list[Row]) -> list[Row]:
    """Read the context events of these rows (two pipelines for all of them)."""
    todo = [row for row in rows if row.pending]
    if not todo:
        return rows
    refs = [ref for row in todo for ref in row.pending[0]]           # type: ignore[index]
    finds = [(kind, ident, ts) for row in todo for kind, ident, ts, _ in row.pending[1]]  # type: ignore[index]
    got = iter(rawstore.fetch(ctx.r, ctx.k, refs))
    found = iter(rawstore.entity_events_at(ctx.r, ctx.k, finds))
    for row in todo:
        refs_of, finds_of = row.pending                                # type: ignore[misc]
        context = [c for c in (next(got) for _ in refs_of) if c is not None]
        for _kind, _ident, _ts, pred in finds_of:
            match = sorted((c for c in next(found) if pred(c)), key=lambda c: c["id"])
            if match:
                context.append(match[0])
        row.context, row.pending = context, None
    return rows


def resolved(ctx: Ctx, rows: Iterator[Row], size: int = 500) -> Iterator[list[Row]]:
    """Rows in chunks of `size`, each with its context read (exports)."""
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield resolve(ctx, chunk)
            chunk = []
    if chunk:
        yield resolve(ctx, chunk)


def _wf_of(ev: dict[str, Any]) -> str:
    wf = (ev.get("data") or {}).get("workflow_id")
    return wf if isinstance(wf, str) else ""


def _in_scope(state: dict[str, Any] | None, q: Query) -> bool:
    c = (state or {}).get("c")
    if not c or q.scope is None:
        return False
    return (c[3] if q.scope[0] == "repository" else c[2]) == q.scope[1]


def _wf(ev: dict[str, Any], q: Query) -> list[tuple[str, str]]:
    return [("wf", _wf_of(ev))]


def _state(states: dict[tuple[str, str], Any], ev: dict[str, Any]) -> dict[str, Any]:
    return states.get(("wf", _wf_of(ev))) or {}


def _creation(st: dict[str, Any]) -> list[Ref]:
    c = st.get("c")
    return [(c[0], c[5])] if c else []


def _is(etype: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def pred(ev: dict[str, Any]) -> bool:
        d = ev.get("data") or {}
        return ev.get("type") == etype and all(d.get(k) == v for k, v in data.items())
    return pred


# --- window KPIs from the events themselves ---------------------------------------------------

def _flag(yes: bool) -> Verdict:
    return Verdict(NUMERATOR if yes else DENOMINATOR)


def _count_if(test: Callable[[dict[str, Any]], bool]) -> Classify:
    return lambda q, ts, ev, st: Verdict(COUNTED) if test(ev) else None


def _share(test: Callable[[dict[str, Any]], bool]) -> Classify:
    return lambda q, ts, ev, st: _flag(test(ev))


def _data(ev: dict[str, Any]) -> dict[str, Any]:
    return ev.get("data") or {}


def _gate_where(gate: str | None = None) -> Callable[[dict[str, Any], Query], bool]:
    def where(ev: dict[str, Any], q: Query) -> bool:
        d = _data(ev)
        want = gate or q.gate
        return (want is None or d.get("gate_name") == want) and (q.agent is None or d.get("agent_id") == q.agent)
    return where


def _exec_ms(ev: dict[str, Any]) -> int | None:
    et = _data(ev).get("execution_time")
    return None if et is None else int(round(et * 1000))      # as the rollups keep it


def _timed(role: str) -> Classify:
    def classify(q: Query, ts: int, ev: dict[str, Any], st: Any) -> Verdict | None:
        ms = _exec_ms(ev)
        return None if ms is None else Verdict(role, ms / MINUTE_MS)
    return classify


def _micro(x: Any) -> float:
    return int(round(float(x or 0) * MICRO)) / MICRO


def _scoped_first(test: Callable[[dict[str, Any], dict[str, Any]], bool]) -> Classify:
    """Unfiltered, every event counts; filtered by repository/team, a workflow counts once
    (its creation, its first completion) as the per-scope rollups do."""
    def classify(q: Query, ts: int, ev: dict[str, Any], states: dict[tuple[str, str], Any]) -> Verdict | None:
        st = _state(states, ev)
        if q.scope is not None:
            first = st.get("c") if ev["type"] == WF + "pr_created" else st.get("done")
            if not first or first[-1] != ev["id"]:
                return None
        return _flag(test(ev, st))
    return classify


# --- window KPIs that need the workflow's (or defect's, review's) other events --------------

def _completion(ev: dict[str, Any], states: dict[tuple[str, str], Any]) -> tuple[dict[str, Any], list[Any]] | None:
    """The workflow's state if this completed event is its first completion."""
    st = _state(states, ev)
    done = st.get("done")
    return (st, done) if done and done[2] == ev["id"] else None


def _sla(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    got = _completion(ev, states)
    if not got or not got[0].get("c"):
        return None
    st, done = got
    dur = done[0] - st["c"][0]
    v = _flag(dur <= q.sla_ms)
    v.value, v.refs = dur / HOUR_MS, _creation(st)
    return v


def _merge_time(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    got = _completion(ev, states)
    if not got or not got[0].get("c") or got[1][1] != "merged":
        return None
    st, done = got
    return Verdict(AVERAGED, (done[0] - st["c"][0]) / HOUR_MS, _creation(st))


def _prevention(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    got = _completion(ev, states)
    if not got or got[1][1] != "merged":
        return None
    prod = [x[0] for x in got[0].get("d", []) if x[2]]
    first = min(prod) if prod else None
    escaped = first is not None and first < q.end          # a production defect found before end
    v = _flag(not escaped)
    if escaped:
        v.finds = [("wf", _wf_of(ev), first, _is(WF + "defect_found", stage="production"))]
    return v


def _audit(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    got = _completion(ev, states)
    if not got:
        return None
    st = got[0]
    firsts: dict[str, list[Any]] = {}
    for step in st.get("st", []):
        firsts.setdefault(step[2], step)
    ready = len(firsts) == len(STEPS) and "cc" in st and max(max(s[0] for s in firsts.values()), st["cc"]) < q.end
    v = _flag(ready)
    if ready:
        v.refs = [(s[0], s[1]) for s in firsts.values()]
        v.finds = [("wf", _wf_of(ev), st["cc"], _is(WF + "compliance_checked"))]
    return v


def _velocity(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    got = _completion(ev, states)
    if not got or got[1][1] != "merged" or not q.team:
        return None
    c = got[0].get("c")
    return Verdict(COUNTED, refs=_creation(got[0])) if c and c[2] == q.team else None


def _cycle(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    if _data(ev).get("verdict") != "approved":
        return None
    st = _state(states, ev)
    ap, rs = st.get("ap"), st.get("rs", NEVER)
    if ap != ts or rs == NEVER:
        return None
    return Verdict(AVERAGED, (ap - rs) / HOUR_MS, finds=[("wf", _wf_of(ev), rs, _is(WF + "review_started"))],
                   first=_is(WF + "review_completed", verdict="approved"))


def _resolution(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    st = states.get(("df", str(_data(ev).get("defect_id")))) or {}
    f = st.get("f")
    return Verdict(AVERAGED, (ts - f[0]) / HOUR_MS, [(f[0], f[3])]) if f else None


def _feedback(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    st = states.get(("rv", f"{q.user}|{_wf_of(ev)}")) or {}
    prior = max((x for x in st.get("s", []) if x < ts), default=None)
    if prior is None:
        return None
    return Verdict(AVERAGED, (ts - prior) / HOUR_MS,
                   finds=[("wf", _wf_of(ev), prior, _is(WF + "review_started", reviewer=q.user))])


def _authored(role: Callable[[dict[str, Any]], Verdict | None]) -> Classify:
    """Events on the user's pull requests (a workflow is the author's by its creation)."""
    def classify(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
        st = _state(states, ev)
        c = st.get("c")
        if not c or c[1] != q.user:
            return None
        v = role(ev)
        if v is not None:
            v.refs = _creation(st)
        return v
    return classify


def _trend_gate(q: Query, ts: int, ev: dict[str, Any], states: Any) -> Verdict | None:
    v = _authored(lambda e: _flag(gate_passed(e)))(q, ts, ev, states)
    if v is not None:
        v.window = "current" if ts >= q.start else "previous"
    return v


def _reviewer(ev: dict[str, Any], q: Query) -> bool:
    return _data(ev).get("reviewer") == q.user


# --- the table ---------------------------------------------------------------------------------

G = GATE_TYPES
COMPLETED, FOUND, RESOLVED, CHECKED = (WF + "completed",), (WF + "defect_found",), (WF + "defect_resolved",), \
    (WF + "compliance_checked",)
REVIEWED = (WF + "review_completed",)
GF = ("gate", "agent")


def _gate_spec(kind: str, classify: Classify, unit: str, gate: str | None = None,
               value_unit: str | None = None) -> Spec:
    return Spec(kind, unit, G, _scan(G, classify, where=_gate_where(gate)), value_unit, () if gate else GF)


SPECS: dict[str, Spec] = {
    # executive
    "gate_pass_rate": _gate_spec("percentage", lambda q, ts, ev, st: _flag(gate_passed(ev)), "percentage"),
    "defect_detection_rate": Spec("percentage", "percentage", FOUND, _scan(
        FOUND, _share(lambda ev: _data(ev).get("stage", "review") == "review"))),
    "false_positive_rate": Spec("percentage", "percentage", RESOLVED, _scan(
        RESOLVED, _share(lambda ev: _data(ev).get("resolution") == "false_positive"))),
    "compliance_adherence": Spec("percentage", "percentage", CHECKED, _scan(
        CHECKED, _share(lambda ev: _data(ev).get("passed") is True))),
    "overall_quality_score": Spec("composite", "percentage", (), None, parts=(
        "gate_pass_rate", "defect_detection_rate", "false_positive_rate", "compliance_adherence")),
    "average_review_cycle_time": Spec("mean", "hours", REVIEWED, _scan(REVIEWED, _cycle, entities=_wf),
                                      "hours"),
    "workflow_completion_rate": Spec("percentage", "percentage", COMPLETED, _scan(
        COMPLETED, _scoped_first(lambda ev, st: _data(ev).get("outcome") == "merged"))),
    "sla_adherence": Spec("percentage", "percentage", COMPLETED, _scan(COMPLETED, _sla, entities=_wf),
                          "hours"),
    "cost_per_review": Spec("mean", "usd", REVIEWED, _scan(
        REVIEWED, lambda q, ts, ev, st: Verdict(AVERAGED, _micro(_data(ev).get("cost_usd")))), "usd"),
    "time_to_merge": Spec("mean", "hours", COMPLETED, _scan(COMPLETED, _merge_time, entities=_wf), "hours"),
    "developer_satisfaction": Spec("mean", "score", ("user.survey_submitted",), _scan(
        ("user.survey_submitted",), lambda q, ts, ev, st: Verdict(AVERAGED, _micro(_data(ev).get("score")))), "score"),
    "process_adoption_rate": Spec("percentage", "percentage", (WF + "pr_created",), _scan(
        (WF + "pr_created",), _scoped_first(lambda ev, st: _data(ev).get("qms_tracked", True) is not False))),
    # operational (window part; the states are in data.drilldown_state)
    "error_rate": Spec("rate", "per_hour", ("system.error_occurred",), _scan(
        ("system.error_occurred",), _count_if(lambda ev: True))),
    # quality assurance
    "total_gates_executed": _gate_spec("count", _count_if(lambda ev: True), "count"),
    "gates_passed": _gate_spec("count", _count_if(gate_passed), "count"),
    "gates_failed": _gate_spec("count", _count_if(lambda ev: not gate_passed(ev)), "count"),
    "average_gate_time": _gate_spec("mean", _timed(AVERAGED), "minutes", value_unit="minutes"),
    "defects_found": Spec("count", "count", FOUND, _scan(FOUND, _count_if(lambda ev: True))),
    "defect_resolution_time": Spec("mean", "hours", RESOLVED, _scan(
        RESOLVED, _resolution, entities=lambda ev, q: [("df", str(_data(ev).get("defect_id")))]), "hours"),
    "defect_prevention_rate": Spec("percentage", "percentage", COMPLETED, _scan(
        COMPLETED, _prevention, entities=_wf)),
    "compliance_checks_passed": Spec("percentage", "percentage", CHECKED, _scan(
        CHECKED, _share(lambda ev: _data(ev).get("passed") is True))),
    "audit_readiness_score": Spec("percentage", "percentage", COMPLETED, _scan(
        COMPLETED, _audit, entities=_wf)),
    "policy_violations": Spec("count", "count", CHECKED, _scan(
        CHECKED, _count_if(lambda ev: _data(ev).get("passed") is not True))),
    # developer (for q.user)
    "completed_today": Spec("count", "count", REVIEWED, _scan(
        REVIEWED, _count_if(lambda ev: True), where=_reviewer)),
    "average_feedback_time": Spec("mean", "hours", REVIEWED, _scan(
        REVIEWED, _feedback, where=_reviewer, entities=lambda ev, q: [("rv", f"{q.user}|{_wf_of(ev)}")]), "hours"),
    "quality_score_trend": Spec("difference", "points", G, _scan(
        G, _trend_gate, entities=_wf)),
    "team_velocity": Spec("rate", "per_7d", COMPLETED, _scan(COMPLETED, _velocity, entities=_wf)),
    "skill_development_areas": Spec("list", "list", FOUND, _scan(FOUND, _authored(
        lambda ev: Verdict(COUNTED, _data(ev)["category"]) if _data(ev).get("category") is not None else None),
        entities=_wf)),
}


def spec(kpi: str) -> Spec:
    """The drill-down of a KPI id (KeyError for an unknown one)."""
    if kpi in SPECS:
        return SPECS[kpi]
    from data import drilldown_state
    found = drilldown_state.spec(kpi)
    if found is not None:
        return found
    if kpi.startswith("gate.") and kpis.dashboard_of(kpi) == "qa":
        gate, metric = kpi[len("gate."):].rsplit(".", 1)
        if metric == "pass_rate":
            return _gate_spec("percentage", lambda q, ts, ev, st: _flag(gate_passed(ev)), "percentage", gate)
        if metric == "executions":
            return _gate_spec("count", _count_if(lambda ev: True), "count", gate)
        return _gate_spec("percentile", _timed(RANKED), "minutes", gate, "minutes")
    raise KeyError(kpi)


def scoped(kpi: str) -> bool:
    """Whether a repository/team filter narrows this KPI's rows (as it narrows the card)."""
    return kpi in scopes.SCOPED_KPIS


# --- counting ------------------------------------------------------------------------------------

class Tally:
    """Folds rows into the counts that reproduce the KPI's value."""

    def __init__(self, sp: Spec, q: Query) -> None:
        self.sp, self.q = sp, q
        self.rows = 0
        self.n: dict[str, float] = {}
        self.values: dict[Any, int] = {}

    def add(self, row: Row) -> None:
        self.rows += 1
        kind = self.sp.kind
        if kind == "difference":
            key = f"{row.window}.{row.role}"
            self.n[key] = self.n.get(key, 0) + 1
        elif kind in ("percentage",):
            if row.role in (NUMERATOR, DENOMINATOR):
                w = row.value if self.sp.weighted else 1
                self.n["denominator"] = self.n.get("denominator", 0) + w
                if row.role == NUMERATOR:
                    self.n["numerator"] = self.n.get("numerator", 0) + w
        elif kind == "mean":
            self.n["sum"] = self.n.get("sum", 0) + row.value
        elif kind in ("percentile", "list"):
            self.values[row.value] = self.values.get(row.value, 0) + 1
        elif kind == "level":
            self.n["counted"] = self.n.get("counted", 0) + int(row.value)

    def counts(self) -> dict[str, Any]:
        kind, n = self.sp.kind, self.n
        if kind in ("count", "state"):
            return {"counted": self.rows}
        if kind == "level":
            return {"counted": int(n.get("counted", 0))}
        if kind == "percentage":
            return {"numerator": n.get("numerator", 0), "denominator": n.get("denominator", 0)}
        if kind == "mean":
            return {"rows": self.rows, "sum": n.get("sum", 0)}
        if kind == "percentile":
            return {"rows": self.rows, "rank": math.ceil(0.95 * self.rows) if self.rows else 0}
        if kind == "rate":
            span = (self.q.end - self.q.start)
            return ({"counted": self.rows, "hours": span / HOUR_MS} if self.sp.unit == "per_hour"
                    else {"counted": self.rows, "days": span / DAY_MS})
        if kind == "difference":
            return {w: {"numerator": int(n.get(f"{w}.{NUMERATOR}", 0)),
                        "denominator": int(n.get(f"{w}.{NUMERATOR}", 0) + n.get(f"{w}.{DENOMINATOR}", 0))}
                    for w in ("current", "previous")}
        if kind == "list":
            return {"counted": self.rows, "by_category": dict(sorted(self.values.items()))}
        raise ValueError(kind)

    def value(self) -> Value:
        kind, c = self.sp.kind, self.counts()
        if kind in ("count", "state", "level"):
            return c["counted"]
        if kind == "percentage":
            return kpis.ratio(c["numerator"], c["denominator"])
        if kind == "mean":
            return kpis.mean(c["sum"], c["rows"])
        if kind == "percentile":
            return kpis.nearest_rank(self.values, 0.95)  # type: ignore[arg-type]
        if kind == "rate":
            return c["counted"] / c["hours"] if "hours" in c else c["counted"] * 7 / c["days"]
        if kind == "difference":
            now = kpis.ratio(c["current"]["numerator"], c["current"]["denominator"])
            before = kpis.ratio(c["previous"]["numerator"], c["previous"]["denominator"])
            return None if now is None or before is None else now - before
        if kind == "list":
            top = sorted(self.values.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
            return [k for k, _ in top] or None
        raise ValueError(kind)


@dataclass
class Page:
    rows: list[Row]
    counts: dict[str, Any]
    value: Value
    total: int | None             # None: not counted (page(count=False))
    next: Ref | None
    parts: list[dict[str, Any]] = field(default_factory=list)


def rows(ctx: Ctx, q: Query) -> Iterator[Row]:
    """Every row of the drill-down, newest first (lazily: one chunk in memory at a time)."""
    sp = spec(q.kpi)
    if sp.rows is not None:
        yield from sp.rows(ctx, q)


def page(ctx: Ctx, q: Query, limit: int = 100, cursor: Ref | None = None, offset: int = 0,
         count: bool = True) -> Page:
    """Counts over the whole window, and `limit` rows after the cursor (rows older than it)
    or after skipping `offset` rows. `count=False`: only the rows, read no further than
    they need (counts empty, total None) — the grid's later blocks."""
    sp = spec(q.kpi)
    if sp.kind == "composite":
        return _composite(ctx, q, sp)
    tally = Tally(sp, q)
    out: list[Row] = []
    skipped = 0
    more = False
    for row in rows(ctx, q):
        if count:
            tally.add(row)
        if cursor is not None and row.key >= cursor:
            continue
        if skipped < offset:
            skipped += 1
        elif len(out) < limit:
            out.append(row)
        else:
            more = True
            if not count:
                break
    following = out[-1].key if more and out else None
    if not count:
        return Page(resolve(ctx, out), {}, None, None, following)        # type: ignore[arg-type]
    value = tally.value()
    if sp.kind == "rate" and sp.unit == "per_hour" and not tally.rows and not _any_events(ctx, q):
        value = None                       # error_rate: no events at all in the window is no data
    return Page(resolve(ctx, out), tally.counts(), value, tally.rows, following)


def _composite(ctx: Ctx, q: Query, sp: Spec) -> Page:
    parts = []
    values: list[float] = []
    for part in sp.parts:
        got = page(ctx, Query(part, q.start, q.end, q.horizon, sla_ms=q.sla_ms), limit=0)
        parts.append({"metric": part, "value": got.value, "counts": got.counts, "total": got.total})
        if got.value is not None:
            values.append(100.0 - got.value if part == "false_positive_rate" else got.value)   # type: ignore[operator]
    value = sum(values) / len(values) if values else None
    return Page([], {"parts": {p["metric"]: p["counts"] for p in parts}}, value, 0, None, parts)


def _any_events(ctx: Ctx, q: Query) -> bool:
    types = [t.decode() for t in ctx.r.smembers(ctx.k.registry("types"))]
    with ctx.r.pipeline(transaction=False) as p:
        for day in range(q.start // DAY_MS, (q.end - 1) // DAY_MS + 1):
            for t in types:
                p.zcount(ctx.k.raw_index(t, day), q.start, f"({q.end}")
        return any(p.execute())


def stub(ident: str, etype: str, ts: int, data: dict[str, Any]) -> dict[str, Any]:
    """An event whose raw copy has expired (older than the raw retention), from what its
    entity kept."""
    return {"id": ident, "type": etype, "timestamp": fmt_ms(ts), "source": None, "data": data, "expired": True}


# --- a request -------------------------------------------------------------------------------------

MAX_NAME = 200                 # as the API documents names (api.validation.Name)


def make_query(engine: Any, kpi: str, timeframe: str = "24h", end_ms: int | None = None, *, user: str | None = None,
               scope: tuple[str, str] | None = None, gate: str | None = None, agent: str | None = None,
               now: int | None = None) -> tuple[Query, dict[str, str]]:
    """The query of a drill-down request (window planned like the card's) and the filters
    that apply to this KPI. Raises data.engine.QueryError for a bad request, KeyError for
    an unknown KPI."""
    from data.engine import QueryError, plan
    from data.timeutil import now_ms
    sp = spec(kpi)
    for name, value in (("user", user), ("gate", gate), ("agent", agent), ("filter", scope[1] if scope else None)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_NAME):
            raise QueryError(f"{name}: a name of 1 to {MAX_NAME} characters")
    if kpis.dashboard_of(kpi) == "developer" and not user:
        raise QueryError("developer metrics need a user")
    now = now_ms() if now is None else now
    p = plan(timeframe, end_ms, now, engine.skew_ms, depth=2 if kpi == "quality_score_trend" else 1)
    if kpi == "quality_score_trend" and len(p.bounds) < 3:
        raise QueryError("the window before this one is older than the retained rollups")
    filters: dict[str, str] = {}
    if scope is not None and scoped(kpi):
        filters[scope[0]] = scope[1]
    else:
        scope = None
    gate = gate if "gate" in sp.filters else None
    agent = agent if "agent" in sp.filters else None
    filters.update({k: v for k, v in (("gate", gate), ("agent", agent)) if v})
    team = engine.team_of(user) if user and kpi == "team_velocity" else None
    q = Query(kpi, p.bounds[1], p.bounds[0], now + engine.skew_ms, user if kpis.dashboard_of(kpi) == "developer" else None,
              team, scope, gate, agent, int(engine.sla_hours * HOUR_MS), p.bounds[2] if len(p.bounds) > 2 else None)
    return q, filters


def window(q: Query) -> tuple[int, int]:
    """The span a drill-down's rows come from (completed_today: since midnight of `end`)."""
    if q.kpi == "completed_today":
        return day_start(q.end), q.end
    if q.kpi == "quality_score_trend" and q.previous is not None:
        return q.previous, q.end
    return q.start, q.end


def basis(ctx: Ctx, q: Query) -> list[dict[str, Any]]:
    """Events the whole value stands on besides its rows: team_velocity's team is the team
    of the user's latest pull request."""
    if q.kpi != "team_velocity" or not q.user:
        return []
    raw = ctx.r.hget(ctx.k.authors, q.user)
    if not raw:
        return []
    ts, ident, team = orjson.loads(raw)
    [ev] = rawstore.fetch(ctx.r, ctx.k, [(ts, ident)])
    return [ev or stub(ident, WF + "pr_created", ts, {"author": q.user, "team": team})]
