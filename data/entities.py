"""Entity pages: one workflow (pull request) or one agent, assembled from its own raw events.

Pure functions over events (no Redis): `workflow_doc` (timeline through the four steps, time
in each step, SLA status, cost, gates, reviews, defects and their resolutions, compliance) and
`agent_doc` (status and load over time, time in each status, gate runs, reviews, defects it
found and how many were false positives). `data.entity_reader` reads the events from Redis
(the aggregator's per-entity index) and calls these; `sanitize_*` apply a role's sanitiser.

The definitions follow the KPIs' (data/contrib.py): a workflow is active on [created, done);
its step at t is the latest `step_entered` at or before t (ties by event id); the SLA is met
when done − created ≤ target; money is summed in micro-dollars so sums stay exact. Plain
Python, not pandas: a workflow has a handful of segments, and a DataFrame groupby over them
cost 12 ms where the loop costs well under one.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Mapping, Sequence

from auth.sanitize import Sanitizer
from data.contrib import MICRO, gate_passed
from data.events import GATE_TYPES, STEPS
from data.timeutil import fmt_ms, parse_iso

PRE_STEP = "created"               # from pr_created to the first step (before DoR validation)
STEP_ORDER = (PRE_STEP, *STEPS)


def ts_of(ev: Mapping[str, Any]) -> int:
    return parse_iso(ev["timestamp"])


def _key(ev: Mapping[str, Any]) -> tuple[int, str]:
    return ts_of(ev), str(ev["id"])


def step_at(steps: Sequence[tuple[int, str, str]], t: int) -> str | None:
    """The step a workflow is in at t: the latest (ts, event id) step entered at or before t."""
    cur = None
    for ts, _eid, step in steps:
        if ts > t:
            break
        cur = step
    return cur


def step_segments(created: int | None, done: int | None, steps: Sequence[tuple[int, str, str]],
                  now: int) -> list[dict[str, Any]]:
    """The workflow's life [created, done or now) cut where its step changes; consecutive
    pieces in the same step are one visit. Without a pr_created it starts at its first step.
    Each segment: step, start, end, duration_ms, open (the last one of an open workflow)."""
    steps = sorted(steps)
    start = created if created is not None else (steps[0][0] if steps else None)
    end = done if done is not None else max(now, start or now)
    if start is None or end < start:
        return []
    points = sorted({start, *(ts for ts, _, _ in steps if start < ts < end)})
    out: list[dict[str, Any]] = []
    for i, p in enumerate(points):
        q = points[i + 1] if i + 1 < len(points) else end
        step = step_at(steps, p) or PRE_STEP
        if out and out[-1]["step"] == step:
            out[-1]["end"] = q
        else:
            out.append({"step": step, "start": p, "end": q})
    for seg in out:
        seg["duration_ms"] = seg["end"] - seg["start"]
        seg["open"] = False
    if done is None:
        out[-1]["open"] = True
    return out


def time_in_steps(segments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per step in process order: total time, visits, first entered, still open."""
    out = []
    for step in STEP_ORDER:
        mine = [s for s in segments if s["step"] == step]
        out.append({"step": step, "time_ms": sum(s["duration_ms"] for s in mine), "visits": len(mine),
                    "entered": fmt_ms(min(s["start"] for s in mine)) if mine else None,
                    "open": any(s["open"] for s in mine)})
    return out


def sla_status(created: int | None, done: int | None, now: int, sla_ms: int) -> dict[str, Any]:
    """met / missed when done; while open: open with the time left, or missed once past due
    (it can no longer be met); unknown without a pr_created."""
    base: dict[str, Any] = {"target_ms": sla_ms, "target_hours": sla_ms / 3_600_000}
    if created is None:
        return {**base, "status": "unknown", "open": done is None, "elapsed_ms": None, "due": None, "time_left_ms": None}
    due = created + sla_ms
    if done is not None:
        elapsed = done - created
        return {**base, "status": "met" if elapsed <= sla_ms else "missed", "open": False, "elapsed_ms": elapsed,
                "due": fmt_ms(due), "time_left_ms": None}
    elapsed = now - created
    return {**base, "status": "open" if elapsed <= sla_ms else "missed", "open": True, "elapsed_ms": elapsed,
            "due": fmt_ms(due), "time_left_ms": due - now}


def latest_resolution(resolutions: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """A defect's resolution is its latest resolved event (by time, then id): a defect called a
    false positive and later fixed counts as fixed."""
    return max(resolutions, key=lambda r: (r["ts"], r["id"]), default=None)


def _resolutions(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"ts": ts_of(e), "id": e["id"], "resolution": e["data"].get("resolution")} for e in events]


def _defect_row(ev: Mapping[str, Any], resolved_by: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    d = ev["data"]
    ts = ts_of(ev)
    res = _resolutions(resolved_by)
    last = latest_resolution(res)
    first = min((r["ts"] for r in res), default=None)
    return {"defect_id": d.get("defect_id"), "workflow_id": d.get("workflow_id"), "found": ev["timestamp"],
            "severity": d.get("severity"), "category": d.get("category"), "stage": d.get("stage", "review"),
            "found_by": d.get("found_by"), "status": "resolved" if last else "open",
            "resolution": last["resolution"] if last else None, "resolved": fmt_ms(last["ts"]) if last else None,
            "time_to_resolve_ms": first - ts if first is not None else None, "id": ev["id"]}


def _micro(cost: Any) -> int:
    return int(round(float(cost or 0) * MICRO))


def workflow_doc(workflow_id: str, events: Iterable[Mapping[str, Any]],
                 resolutions: Mapping[str, Sequence[Mapping[str, Any]]], now: int, sla_ms: int) -> dict[str, Any]:
    """Everything the workflow page shows, from the workflow's events and its defects'
    resolutions ({defect id: defect_resolved events}). Same result whatever the event order."""
    evs = sorted({e["id"]: e for e in events}.values(), key=_key)
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for e in evs:
        by_type.setdefault(e["type"], []).append(e)
    created_ev = next(iter(by_type.get("workflow.pr_created", [])), None)
    done_ev = next(iter(by_type.get("workflow.completed", [])), None)
    created = ts_of(created_ev) if created_ev else None
    done = ts_of(done_ev) if done_ev else None
    steps = sorted((ts_of(e), str(e["id"]), e["data"]["step"]) for e in by_type.get("workflow.step_entered", []))
    segments = step_segments(created, done, steps, now)

    gates = [{"timestamp": e["timestamp"], "gate_name": e["data"].get("gate_name"), "passed": gate_passed(dict(e)),
              "agent_id": e["data"].get("agent_id"), "execution_time": e["data"].get("execution_time"),
              "step": step_at(steps, ts_of(e)), "id": e["id"]} for e in evs if e["type"] in GATE_TYPES]
    reviews = []
    started: dict[str, int] = {}
    for e in evs:
        d = e["data"]
        if e["type"] == "workflow.review_started":
            started[d["reviewer"]] = ts_of(e)
        elif e["type"] == "workflow.review_completed":
            begun = started.pop(d["reviewer"], None)
            reviews.append({"timestamp": e["timestamp"], "reviewer": d["reviewer"], "verdict": d.get("verdict"),
                            "cost_usd": d.get("cost_usd"), "started": fmt_ms(begun) if begun is not None else None,
                            "duration_ms": ts_of(e) - begun if begun is not None else None, "id": e["id"]})
    in_review = [{"reviewer": who, "started": fmt_ms(ts)} for who, ts in sorted(started.items())]
    found = by_type.get("workflow.defect_found", [])
    defects = [_defect_row(e, resolutions.get(e["data"].get("defect_id"), ())) for e in found]
    resolved_evs = [r for e in found for r in resolutions.get(e["data"].get("defect_id"), ())]
    compliance = _compliance(by_type)
    timeline = sorted({e["id"]: e for e in [*evs, *resolved_evs]}.values(), key=_key)
    cost = sum(_micro(e["data"].get("cost_usd")) for e in by_type.get("workflow.review_completed", []))
    current = segments[-1]["step"] if segments and done is None else None
    c = created_ev["data"] if created_ev else {}
    return {
        "workflow_id": workflow_id,
        "summary": {"repository": c.get("repository"), "pr_number": c.get("pr_number"), "author": c.get("author"),
                    "team": c.get("team"), "title": c.get("title"), "qms_tracked": c.get("qms_tracked", True)
                    if created_ev else None, "created": created_ev["timestamp"] if created_ev else None,
                    "completed": done_ev["timestamp"] if done_ev else None,
                    "outcome": done_ev["data"].get("outcome") if done_ev else None,
                    "current_step": None if current in (None, PRE_STEP) else current},
        "steps": time_in_steps(segments),
        "segments": [{**s, "start": fmt_ms(s["start"]), "end": fmt_ms(s["end"])} for s in segments],
        "sla": sla_status(created, done, now, sla_ms),
        "cost_usd": cost / MICRO,
        "gates": gates, "reviews": reviews, "in_review": in_review, "defects": defects, "compliance": compliance,
        "events": [{**e, "step": step_at(steps, ts_of(e))} for e in timeline],
        "counts": {"events": len(timeline), "gate_runs": len(gates), "gates_failed": sum(not g["passed"] for g in gates),
                   "reviews_completed": len(reviews), "defects": len(defects),
                   "defects_open": sum(d["status"] == "open" for d in defects),
                   "compliance_checks": len(by_type.get("workflow.compliance_checked", [])),
                   "compliance_failed": sum(not e["data"].get("passed") for e in
                                            by_type.get("workflow.compliance_checked", []))},
    }


def _compliance(by_type: Mapping[str, list[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per policy: checks, failures, remediations and failures still waiting for one (as the
    pending-remediation KPI: a failed check is pending until a remediation after it)."""
    policies: dict[str, dict[str, list[int]]] = {}
    for e in by_type.get("workflow.compliance_checked", []):
        p = policies.setdefault(e["data"]["policy"], {"ok": [], "fail": [], "rem": []})
        p["ok" if e["data"].get("passed") else "fail"].append(ts_of(e))
    for e in by_type.get("workflow.violation_remediated", []):
        policies.setdefault(e["data"]["policy"], {"ok": [], "fail": [], "rem": []})["rem"].append(ts_of(e))
    out = []
    for name, p in sorted(policies.items()):
        last = max(p["ok"] + p["fail"], default=None)
        out.append({"policy": name, "checks": len(p["ok"]) + len(p["fail"]), "failed": len(p["fail"]),
                    "remediations": len(p["rem"]),
                    "pending_violations": sum(not any(r > f for r in p["rem"]) for f in p["fail"]),
                    "last_check": fmt_ms(last) if last is not None else None,
                    "last_passed": (last in p["ok"]) if last is not None else None})
    return out


# --- agents ------------------------------------------------------------------------------

def status_segments(points: Sequence[tuple[int, str, str]], before: str | None, start: int,
                    end: int) -> list[tuple[str, int, int]]:
    """An agent's status over [start, end) as (status, from, to): the status carried in from
    before the window, then each change. Time before the first known status is left out."""
    out: list[tuple[str, int, int]] = []
    cur, since = before, start
    for ts, _eid, status in sorted(points):
        ts = max(ts, start)
        if ts >= end:
            break
        if cur is not None and ts > since:
            out.append((cur, since, ts))
        cur, since = status, ts
    if cur is not None and end > since:
        out.append((cur, since, end))
    return out


def time_in_status(segments: Iterable[tuple[str, int, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for status, a, b in segments:
        total[status] += b - a
    return {k: v for k, v in total.items() if v}


class _Newest:
    """The newest `limit` rows of one list (rows arrive in any order) and whether any were left out."""

    def __init__(self, limit: int) -> None:
        self.limit, self.rows, self.seen = limit, [], 0

    def add(self, row: dict[str, Any], key: tuple[int, str]) -> None:
        self.seen += 1
        self.rows.append((key, row))
        if len(self.rows) > 2 * self.limit + 100:       # keep memory bounded on long windows
            self._trim()

    def _trim(self) -> None:
        self.rows.sort(key=lambda x: x[0], reverse=True)
        del self.rows[self.limit:]

    def result(self) -> list[dict[str, Any]]:
        self._trim()
        return [r for _, r in self.rows]


Resolve = Callable[[list[str]], Mapping[str, Sequence[Mapping[str, Any]]]]


def agent_doc(agent_id: str, current: Mapping[str, Any] | None, points: Sequence[tuple[int, str, str]],
              before: tuple[int, str, str, Any] | None, events: Iterable[Mapping[str, Any]], resolve: Resolve,
              start: int, end: int, now: int, limit: int = 500) -> dict[str, Any]:
    """Everything the agent page shows for the window [start, end).

    `points` are the agent's status changes in the window (its timeline: ts, event id, status),
    `before` the last change before it (ts, event id, status, load), `events` the agent's indexed
    events in the window (streamed: counted, and only the newest `limit` rows of each list kept),
    `resolve(defect ids)` gives {defect id: defect_resolved events} for the defects it found
    (asked once, after the events: a query function, so this stays free of Redis)."""
    stop = min(end, now)
    counts: Counter[str] = Counter()
    cost = 0
    loads: dict[str, Any] = {}
    lists = {name: _Newest(limit) for name in ("gate_runs", "reviews", "assignments", "defects")}
    by_gate: dict[str, dict[str, int]] = {}
    found: list[Mapping[str, Any]] = []
    for e in events:
        t, d = e["type"], e.get("data") or {}
        key = _key(e)
        if t == "system.agent_status_changed" and d.get("agent_id") == agent_id:
            loads[e["id"]] = d.get("load")
        elif t in GATE_TYPES and d.get("agent_id") == agent_id:
            passed = gate_passed(dict(e))
            counts["gate_runs"] += 1
            counts["gates_failed"] += not passed
            g = by_gate.setdefault(str(d.get("gate_name")), {"runs": 0, "failed": 0})
            g["runs"] += 1
            g["failed"] += not passed
            lists["gate_runs"].add({"timestamp": e["timestamp"], "workflow_id": d.get("workflow_id"),
                                    "gate_name": d.get("gate_name"), "passed": passed,
                                    "execution_time": d.get("execution_time"), "id": e["id"]}, key)
        elif t == "workflow.agent_assigned" and d.get("agent_id") == agent_id:
            counts["assignments"] += 1
            lists["assignments"].add({"timestamp": e["timestamp"], "workflow_id": d.get("workflow_id"),
                                      "queue": d.get("queue"), "id": e["id"]}, key)
        elif t in ("workflow.review_started", "workflow.review_completed") and d.get("reviewer") == agent_id:
            done = t == "workflow.review_completed"
            counts["reviews_completed" if done else "reviews_started"] += 1
            if done:
                counts["approved" if d.get("verdict") == "approved" else "changes_requested"] += 1
                cost += _micro(d.get("cost_usd"))
            lists["reviews"].add({"timestamp": e["timestamp"], "event": "completed" if done else "started",
                                  "workflow_id": d.get("workflow_id"), "verdict": d.get("verdict"),
                                  "cost_usd": d.get("cost_usd"), "id": e["id"]}, key)
        elif t == "workflow.defect_found" and d.get("found_by") == agent_id:
            found.append(e)
    resolutions = resolve([e["data"].get("defect_id") for e in found]) if found else {}
    for e in found:
        row = _defect_row(e, resolutions.get(e["data"].get("defect_id"), ()))
        counts["defects_found"] += 1
        counts["defects_resolved"] += row["status"] == "resolved"
        counts["false_positives"] += row["resolution"] == "false_positive"
        lists["defects"].add(row, _key(e))
    in_window = sorted(p for p in points if start <= p[0] < end)
    counts["status_changes"] = len(in_window)
    counts["times_down"] = sum(1 for p in in_window if p[2] == "down")
    series = []
    if before is not None:
        series.append({"timestamp": fmt_ms(start), "status": before[2], "load": before[3], "event_id": before[1],
                       "carried": True})
    series += [{"timestamp": fmt_ms(ts), "status": s, "load": loads.get(eid), "event_id": eid, "carried": False}
               for ts, eid, s in in_window]
    order = ("gate_runs", "gates_failed", "assignments", "reviews_started", "reviews_completed", "approved",
             "changes_requested", "review_cost_usd", "defects_found", "defects_resolved", "false_positives",
             "status_changes", "times_down")
    counts_out: dict[str, Any] = {k: int(counts[k]) for k in order if k != "review_cost_usd"}
    counts_out["review_cost_usd"] = cost / MICRO
    return {
        "agent_id": agent_id, "current": dict(current) if current else None,
        "window": {"start": fmt_ms(start), "end": fmt_ms(end)},
        "status_series": series,
        "time_in_status": time_in_status(status_segments(in_window, before[2] if before else None, start, stop)),
        "counts": {k: counts_out[k] for k in order},
        "gates_by_name": dict(sorted(by_gate.items())),
        **{name: lst.result() for name, lst in lists.items()},
        "truncated": {name: lst.seen > limit for name, lst in lists.items()},
    }


# --- sanitisation ----------------------------------------------------------------------------

# A defect row names its finder (a person, an agent or a gate): pseudonymised like a reviewer
# (agents stay readable), in one pass with the row so its team scope is counted once.
FINDER = ("found_by",)

def _scope(san: Sanitizer) -> dict[str, Any]:
    info = getattr(san, "scope_info", None)        # team scope: what was shown without names or left out
    return info() if callable(info) else {"teams": "all"}


def sanitize_workflow(doc: Mapping[str, Any], san: Sanitizer) -> dict[str, Any]:
    """The workflow page as a role may see it: every row and event through the role's
    sanitiser (people pseudonymised or hidden, hidden fields such as the PR title removed,
    other teams' rows as the role's scope says); the numbers are the workflow's own."""
    if san.is_noop:
        return {**doc, "scope": {"teams": "all"}}
    wf = doc["workflow_id"]

    def rows(name: str, keys: tuple[str, ...] = ("author", "reviewer", "user")) -> list[dict[str, Any]]:
        return san.rows([{**r, "workflow_id": wf} for r in doc[name]], keys)
    return {**doc, "summary": san.row({**doc["summary"], "workflow_id": wf}),
            "gates": rows("gates"), "reviews": rows("reviews"), "in_review": rows("in_review"),
            "defects": rows("defects", FINDER),
            "compliance": rows("compliance"), "events": san.events([dict(e) for e in doc["events"]]),
            "scope": _scope(san)}


def sanitize_agent(doc: Mapping[str, Any], san: Sanitizer) -> dict[str, Any]:
    """The agent page's rows are the agent's own work on many workflows; they still pass the
    role's sanitiser, so a field or another team's row the role may not see never leaves."""
    if san.is_noop:
        return {**doc, "scope": {"teams": "all"}}
    out = {**doc, **{name: san.rows(doc[name]) for name in ("gate_runs", "reviews", "assignments")}}
    out["defects"] = san.rows(doc["defects"], FINDER)
    out["scope"] = _scope(san)
    return out
