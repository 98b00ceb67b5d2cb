"""Drill-downs of the KPIs read from entity states and timelines: the states at `end`
(active workflows by step, suggested reviews, open critical defects, pending remediations,
a user's pending reviews, agents by status, queue depth) and agent utilisation over W.

Candidates are the entities in the state now (the aggregator's display hashes) plus those
that left it after `end` (an event of theirs stamped after `end`); whether each was in the
state at `end` is the sum of its step contributions before `end` (data.contrib, as the
rollups sum them). Each row is the event that put the entity there.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from data import contrib, rawstore
from data.batch import member
from data.contrib import MAIN, USER
from data.drilldown import (AT_END, DENOMINATOR, EXCLUDED, NUMERATOR, OPEN, WF, Ctx, Producer, Query, Row, Spec,
                            _in_scope, stub)
from data.rawstore import Ref
from data.timeutil import HOUR_MS

CHUNK = 1000
STEP_KPIS = {"pending_dor_validations": "dor_validation", "in_progress_reviews": "code_review",
             "awaiting_dod_validation": "dod_validation", "final_approvals_needed": "final_approval"}
AGENT_KPIS = {"total_agents": None, "active_agents": "active", "overloaded_agents": "overloaded",
              "idle_agents": "idle", "down_agents": "down", "agents_in_training": "training"}
Found = tuple[Ref, str, dict[str, Any], list[Ref], Any]    # (row event, its type, stub data, context, value)


def _at(contributions: Iterable[contrib.Contribution], fam: str, field: str, t: int) -> int:
    """A state function's value at t: its step deltas before t."""
    return sum(v for f, name, ts, v, step in contributions if step and f == fam and name == field and ts < t)


def _chunks(items: list[str], n: int = CHUNK) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _hkeys(ctx: Ctx, kind: str) -> set[str]:
    return {k.decode() for k in ctx.r.hkeys(ctx.k.state(kind))}


def _after(ctx: Ctx, q: Query, etype: str) -> Iterator[dict[str, Any]]:
    """Events of a type stamped at or after `end`: the entities that may have left a state since."""
    for chunk in rawstore.scan(ctx.r, ctx.k, (etype,), q.end, q.horizon + 1):
        for _ts, _id, ev in chunk:
            yield ev.get("data") or {}


def _materialise(ctx: Ctx, found: list[Found], role: str) -> list[Row]:
    """Rows newest first, with the raw events (a stub where the raw copy has expired)."""
    found.sort(key=lambda f: f[0], reverse=True)
    refs = [f[0] for f in found]
    ctx_refs = [c for f in found for c in f[3]]
    bodies = rawstore.fetch(ctx.r, ctx.k, refs + ctx_refs)
    events, contexts = iter(bodies[:len(refs)]), iter(bodies[len(refs):])
    out = []
    for (ref, etype, data, ctx_of, value), ev in zip(found, events):
        context = [c for c in (next(contexts) for _ in ctx_of) if c is not None]
        out.append(Row(ref[0], ref[1], role, ev or stub(ref[1], etype, ref[0], data), value, context))
    return out


# --- workflows -------------------------------------------------------------------------------------

def _workflows(field: str) -> Producer:
    def produce(ctx: Ctx, q: Query) -> Iterator[Row]:
        ids = _hkeys(ctx, "active") | {d.get("workflow_id") for d in _after(ctx, q, WF + "completed")}
        found: list[Found] = []
        for part in _chunks(sorted(i for i in ids if isinstance(i, str))):
            states = ctx.states({("wf", i) for i in part})
            for i in part:
                st = states[("wf", i)] or {}
                c = st.get("c")
                if not c or (q.scope is not None and not _in_scope(st, q)):
                    continue
                if _at(contrib.contributions("wf", st, q.sla_ms), MAIN, field, q.end) <= 0:
                    continue
                created = (c[0], c[5])
                if field == "s.active":
                    found.append((created, WF + "pr_created", {"workflow_id": i, "author": c[1], "team": c[2],
                                                                "repository": c[3], "pr_number": c[4]}, [], None))
                else:
                    step = [s for s in st.get("st", []) if s[0] < q.end][-1]
                    found.append(((step[0], step[1]), WF + "step_entered", {"workflow_id": i, "step": step[2]},
                                  [created], None))
        yield from _materialise(ctx, found, OPEN)
    return produce


# --- defects, remediations, reviews ------------------------------------------------------------------

def _critical(ctx: Ctx, q: Query) -> Iterator[Row]:
    ids = _hkeys(ctx, "defects") | {str(d.get("defect_id")) for d in _after(ctx, q, WF + "defect_resolved")}
    found: list[Found] = []
    for part in _chunks(sorted(ids)):
        states = ctx.states({("df", i) for i in part})
        for i in part:
            st = states[("df", i)] or {}
            f = st.get("f")
            if f and f[1] == "critical" and _at(contrib.contributions("df", st, q.sla_ms), MAIN, "s.crit", q.end) > 0:
                found.append(((f[0], f[3]), WF + "defect_found",
                              {"workflow_id": f[2], "defect_id": i, "severity": f[1]}, [], None))
    yield from _materialise(ctx, found, OPEN)


def _remediation(ctx: Ctx, q: Query) -> Iterator[Row]:
    ids = _hkeys(ctx, "violations") | {contrib.pair_id(str(d.get("workflow_id")), str(d.get("policy")))
                                       for d in _after(ctx, q, WF + "violation_remediated")}
    pending: list[tuple[str, str, int, int]] = []          # (workflow, policy, check ts, how many at ts)
    for part in _chunks(sorted(ids)):
        states = ctx.states({("cp", i) for i in part})
        for i in part:
            st = states[("cp", i)] or {}
            rems = st.get("r", [])
            open_at: dict[int, int] = {}
            for c in st.get("f", []):
                if c < q.end and not any(c < r < q.end for r in rems):
                    open_at[c] = open_at.get(c, 0) + 1
            wf, policy = contrib.pair_of(i)
            pending += [(wf, policy, ts, n) for ts, n in open_at.items()]
    rows: list[Row] = []
    for part_start in range(0, len(pending), CHUNK):
        part = pending[part_start:part_start + CHUNK]
        events = rawstore.entity_events_at(ctx.r, ctx.k, [("wf", wf, ts) for wf, _, ts, _ in part])
        for (wf, policy, ts, n), evs in zip(part, events):
            failed = sorted((e for e in evs if e.get("type") == WF + "compliance_checked"
                             and (e.get("data") or {}).get("policy") == policy
                             and (e.get("data") or {}).get("passed") is not True), key=lambda e: e["id"])
            for k in range(n):
                ev = failed[k] if k < len(failed) else stub(f"{wf}|{policy}|{ts}|{k}", WF + "compliance_checked", ts,
                                                            {"workflow_id": wf, "policy": policy, "passed": False})
                rows.append(Row(ts, ev["id"], OPEN, ev))
    rows.sort(key=lambda row: row.key, reverse=True)
    yield from rows


def _pending_reviews(ctx: Ctx, q: Query) -> Iterator[Row]:
    user = q.user or ""
    ids = {k for k in _hkeys(ctx, "reviews") if contrib.pair_of(k)[0] == user}
    ids |= {contrib.pair_id(user, str(d.get("workflow_id"))) for d in _after(ctx, q, WF + "review_completed")
            if d.get("reviewer") == user}
    starts: list[tuple[str, int]] = []
    for part in _chunks(sorted(ids)):
        states = ctx.states({("rv", i) for i in part})
        for i in part:
            st = states[("rv", i)] or {}
            if _at(contrib.rv_contributions(user, st), USER, "s.pend:" + user, q.end) > 0:
                starts.append((contrib.pair_of(i)[1], max(x for x in st.get("s", []) if x < q.end)))
    rows: list[Row] = []
    for part_start in range(0, len(starts), CHUNK):
        part = starts[part_start:part_start + CHUNK]
        events = rawstore.entity_events_at(ctx.r, ctx.k, [("wf", wf, ts) for wf, ts in part])
        for (wf, ts), evs in zip(part, events):
            mine = sorted((e for e in evs if e.get("type") == WF + "review_started"
                           and (e.get("data") or {}).get("reviewer") == user), key=lambda e: e["id"])
            ev = mine[0] if mine else stub(f"{user}|{wf}|{ts}", WF + "review_started", ts,
                                           {"workflow_id": wf, "reviewer": user})
            rows.append(Row(ts, ev["id"], OPEN, ev))
    rows.sort(key=lambda row: row.key, reverse=True)
    yield from rows


# --- agents and queues (timelines) ---------------------------------------------------------------

def _agents(ctx: Ctx, q: Query) -> list[str]:
    known = sorted(m.decode() for m in ctx.r.smembers(ctx.k.registry("agents")))
    return [a for a in known if q.agent is None or a == q.agent]


def _latest(ctx: Ctx, kind: str, idents: list[str], t: int) -> list[tuple[int, str, str] | None]:
    with ctx.r.pipeline(transaction=False) as p:
        for ident in idents:
            p.zrevrangebyscore(ctx.k.timeline(kind, ident), f"({t}", "-inf", start=0, num=1)
        return [member(got[0]) if got else None for got in p.execute()]


def _agent_status(status: str | None) -> Producer:
    def produce(ctx: Ctx, q: Query) -> Iterator[Row]:
        agents = _agents(ctx, q)
        found: list[Found] = []
        for agent, last in zip(agents, _latest(ctx, "ag", agents, q.end)):
            if last is not None and (status is None or last[2] == status):
                found.append(((last[0], last[1]), "system.agent_status_changed",
                              {"agent_id": agent, "status": last[2]}, [], None))
        yield from _materialise(ctx, found, AT_END)
    return produce


def _queue(queue: str) -> Producer:
    def produce(ctx: Ctx, q: Query) -> Iterator[Row]:
        [last] = _latest(ctx, "q", [queue], q.end)
        if last is not None:
            found: list[Found] = [((last[0], last[1]), "system.queue_depth_updated",
                                   {"queue": queue, "depth": int(last[2])}, [], int(last[2]))]
            yield from _materialise(ctx, found, AT_END)
    return produce


def _utilisation(ctx: Ctx, q: Query) -> Iterator[Row]:
    """Each status an agent held during W (including the one it entered before W), with the
    hours of W it held it: busy (active, overloaded) and idle make the two parts."""
    agents = _agents(ctx, q)
    with ctx.r.pipeline(transaction=False) as p:
        for agent in agents:
            key = ctx.k.timeline("ag", agent)
            p.zrevrangebyscore(key, f"({q.start}", "-inf", start=0, num=1)
            p.zrangebyscore(key, q.start, f"({q.end}")
        res = p.execute()
    segments: list[tuple[Ref, str, dict[str, Any], list[Ref], Any, str]] = []
    for i, agent in enumerate(agents):
        points = [member(m) for m in res[2 * i] + res[2 * i + 1]]
        for j, (ts, eid, status) in enumerate(points):
            lo = max(ts, q.start)
            hi = q.end if j + 1 == len(points) else min(points[j + 1][0], q.end)
            if hi <= lo:
                continue
            role = NUMERATOR if status in ("active", "overloaded") else DENOMINATOR if status == "idle" else EXCLUDED
            segments.append(((ts, eid), "system.agent_status_changed", {"agent_id": agent, "status": status}, [],
                             (hi - lo) / HOUR_MS, role))
    by_role: dict[str, list[Found]] = {}
    for *f, role in segments:
        by_role.setdefault(role, []).append(tuple(f))   # type: ignore[arg-type]
    rows = [row for role, found in by_role.items() for row in _materialise(ctx, found, role)]
    rows.sort(key=lambda row: row.key, reverse=True)
    yield from rows


def spec(kpi: str) -> Spec | None:
    """The drill-down of a state KPI (or agent utilisation), None for any other id."""
    wf_types = (WF + "pr_created",)
    if kpi == "total_active_reviews":
        return Spec("state", "count", wf_types, _workflows("s.active"))
    if kpi in STEP_KPIS:
        return Spec("state", "count", (WF + "step_entered",), _workflows("s.step." + STEP_KPIS[kpi]))
    if kpi == "suggested_reviews":
        return Spec("state", "count", (WF + "step_entered",), _workflows("s.sugg"))
    if kpi in AGENT_KPIS:
        return Spec("state", "count", ("system.agent_status_changed",), _agent_status(AGENT_KPIS[kpi]),
                    filters=("agent",))
    if kpi.startswith("queue_depth.") and len(kpi) > len("queue_depth."):
        return Spec("level", "count", ("system.queue_depth_updated",), _queue(kpi[len("queue_depth."):]))
    if kpi == "critical_defects":
        return Spec("state", "count", (WF + "defect_found",), _critical)
    if kpi == "remediation_pending":
        return Spec("state", "count", (WF + "compliance_checked",), _remediation)
    if kpi == "pending_reviews":
        return Spec("state", "count", (WF + "review_started",), _pending_reviews)
    if kpi == "agent_utilization_rate":
        return Spec("percentage", "percentage", ("system.agent_status_changed",), _utilisation, "hours",
                    filters=("agent",), weighted=True)
    return None

