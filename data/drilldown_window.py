"""The drill-downs of window KPIs: one verdict per event of the window (its role, value and
the context events it needs), read a chunk at a time. Whether an event is "the one" (a
workflow's first completion, its creation, a first approval) comes from the aggregator's
entity states, so the rows agree with the card. The states at `end` are in
data.drilldown_state; paging and counting in data.drilldown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from data import kpis, rawstore
from data.contrib import MICRO, NEVER, gate_passed, pair_id
from data.drilldown import (AVERAGED, COUNTED, DENOMINATOR, NUMERATOR, RANKED, WF, Ctx, Producer, Query, Row, Spec,
                            _in_scope, window)
from data.events import GATE_TYPES, STEPS
from data.rawstore import Ref
from data.timeutil import HOUR_MS, MINUTE_MS


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
    first_ids = iter(rawstore.ids_at(ctx.r, ctx.k, firsts))
    # A verdict's workflow events at its instant (usually none besides itself), all read in one pipeline.
    ties: list[list[Ref]] = []
    for ts, ident, _, v in verdicts:
        others = [i for i in (m.decode() for m in next(first_ids)) if i != ident] if v.first is not None else []
        ties.append([(ts, i) for i in [ident, *others]] if others else [])
    bodies = iter(rawstore.fetch(ctx.r, ctx.k, [ref for refs in ties for ref in refs]))
    for (ts, ident, ev, v), refs in zip(verdicts, ties):
        if refs:
            same = sorted(c["id"] for c in [next(bodies) for _ in refs] if c is not None and v.first(c))
            if same and same[0] != ident:
                continue              # another event at the same instant is the first one
        row = Row(ts, ident, v.role, ev, v.value, None, v.window)
        if v.refs or v.finds:
            row.pending = (v.refs, v.finds)
        yield row


def _wf_of(ev: dict[str, Any]) -> str:
    wf = (ev.get("data") or {}).get("workflow_id")
    return wf if isinstance(wf, str) else ""


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
    st = states.get(("rv", pair_id(q.user or "", _wf_of(ev)))) or {}
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
        REVIEWED, _feedback, where=_reviewer, entities=lambda ev, q: [("rv", pair_id(q.user or "", _wf_of(ev)))]), "hours"),
    "quality_score_trend": Spec("difference", "points", G, _scan(
        G, _trend_gate, entities=_wf)),
    "team_velocity": Spec("rate", "per_7d", COMPLETED, _scan(COMPLETED, _velocity, entities=_wf)),
    "skill_development_areas": Spec("list", "list", FOUND, _scan(FOUND, _authored(
        lambda ev: Verdict(COUNTED, _data(ev)["category"]) if _data(ev).get("category") is not None else None),
        entities=_wf)),
}


def spec(kpi: str) -> Spec | None:
    """The drill-down of a window KPI (the per-gate ones built for their gate), None for any other id."""
    if kpi in SPECS:
        return SPECS[kpi]
    if kpi.startswith("gate.") and kpis.dashboard_of(kpi) == "qa":
        gate, metric = kpi[len("gate."):].rsplit(".", 1)
        if metric == "pass_rate":
            return _gate_spec("percentage", lambda q, ts, ev, st: _flag(gate_passed(ev)), "percentage", gate)
        if metric == "executions":
            return _gate_spec("count", _count_if(lambda ev: True), "count", gate)
        return _gate_spec("percentile", _timed(RANKED), "minutes", gate, "minutes")
    return None
