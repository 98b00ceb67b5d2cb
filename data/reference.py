"""Reference implementation of every KPI in ``METRICS.md``, straight from raw events.

Deliberately naive and slow: each value is recomputed by scanning the de-duplicated event
list.  Tests use it to cross-check the fast rollup-based engine, so every formula follows
``METRICS.md`` (and its "Precise readings") as literally as possible.

Conventions used throughout:

* events are de-duplicated by ``id`` (first seen in input order wins), then sorted by
  ``(timestamp, id)``; "earliest" is the minimum and "latest" the maximum in that order;
* a window KPI is computed over ``[a, b)``: current ``[end - T, end)``, previous
  ``[end - 2T, end - T)``;
* a state KPI is computed at the instant ``t = b`` from events with ``ts < t`` (so its
  previous value is the state at ``end - T``);
* a workflow's creation is its earliest ``pr_created``; its completion its earliest
  ``completed``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

DASHBOARDS = ("executive", "operational", "qa", "developer")

STEP_KPIS = {"pending_dor_validations": "dor_validation", "in_progress_reviews": "code_review",
             "awaiting_dod_validation": "dod_validation", "final_approvals_needed": "final_approval"}
AGENT_KPIS = {"active_agents": "active", "overloaded_agents": "overloaded", "idle_agents": "idle",
              "down_agents": "down", "agents_in_training": "training"}
# gate event type -> passed implied by the type (None: read data.passed)
GATE_TYPES: dict[str, bool | None] = {"workflow.quality_gate_executed": None,
                                      "workflow.quality_gate_passed": True,
                                      "workflow.quality_gate_failed": False}

KPI_UNITS: dict[str, str] = {
    # executive
    "gate_pass_rate": "percentage", "defect_detection_rate": "percentage",
    "false_positive_rate": "percentage", "compliance_adherence": "percentage",
    "overall_quality_score": "percentage", "average_review_cycle_time": "hours",
    "workflow_completion_rate": "percentage", "agent_utilization_rate": "percentage",
    "sla_adherence": "percentage", "cost_per_review": "usd", "time_to_merge": "hours",
    "developer_satisfaction": "score", "process_adoption_rate": "percentage",
    # operational
    "total_active_reviews": "count", **{k: "count" for k in STEP_KPIS},
    "total_agents": "count", **{k: "count" for k in AGENT_KPIS}, "error_rate": "per_hour",
    # qa
    "total_gates_executed": "count", "gates_passed": "count", "gates_failed": "count",
    "average_gate_time": "minutes", "defects_found": "count", "critical_defects": "count",
    "defect_resolution_time": "hours", "defect_prevention_rate": "percentage",
    "compliance_checks_passed": "percentage", "audit_readiness_score": "percentage",
    "policy_violations": "count", "remediation_pending": "count",
    # developer
    "pending_reviews": "count", "completed_today": "count", "average_feedback_time": "hours",
    "quality_score_trend": "points", "team_velocity": "per_7d",
    "skill_development_areas": "list", "suggested_reviews": "count",
}
_GATE_UNITS = {"pass_rate": "percentage", "executions": "count", "p95_time": "minutes"}


def kpi_unit(kpi_id: str) -> str:
    """Unit of a KPI id, including the dynamic ``gate.<g>.*`` and ``queue_depth.<q>`` ids."""
    if kpi_id in KPI_UNITS:
        return KPI_UNITS[kpi_id]
    if kpi_id.startswith("queue_depth."):
        return "count"
    if kpi_id.startswith("gate."):
        return _GATE_UNITS[kpi_id.rsplit(".", 1)[1]]
    raise KeyError(kpi_id)


def trend(current: Any, previous: Any) -> str | None:
    """Trend rule: flat when a side is null, change is 0 or |change| < 0.5 % of |previous|;
    ``None`` for lists (``skill_development_areas``)."""
    if isinstance(current, list) or isinstance(previous, list):
        return None
    if current is None or previous is None:
        return "flat"
    change = current - previous
    if change == 0 or abs(change) < 0.005 * abs(previous):
        return "flat"
    return "up" if change > 0 else "down"


# The engine reads a gate's p95 time from binned durations (data.contrib.hist_bin): it is the
# exact nearest-rank value here to within this relative error. Every other KPI is exact.
P95_REL_ERROR = 2.0 ** -7


def agrees(kpi_id: str, got: Any, want: Any) -> bool:
    """An engine value against this calculator's: equal (floats to 1e-9), a gate's p95 time
    within P95_REL_ERROR."""
    if got is None or want is None or isinstance(got, (list, str)) or isinstance(want, (list, str)):
        return got == want
    if kpi_id.endswith(".p95_time"):
        return abs(got - want) <= P95_REL_ERROR * abs(want) + 1e-12
    if isinstance(got, float) or isinstance(want, float):
        return abs(got - want) <= max(1e-9 * max(abs(got), abs(want)), 1e-9)
    return bool(got == want)


def trend_agrees(kpi_id: str, got: str | None, want: dict[str, Any]) -> bool:
    """An engine trend against this calculator's entry: equal, or for a gate's p95 time one
    that values within P95_REL_ERROR of this entry's current and previous could give."""
    if got == want["trend"]:
        return True
    cur, prev = want["current_value"], want["previous_value"]
    if not kpi_id.endswith(".p95_time") or cur is None or prev is None:
        return False
    e = P95_REL_ERROR
    corners = {trend(cur * (1 + a), prev * (1 + b)) for a in (-e, 0.0, e) for b in (-e, 0.0, e)}
    if {"up", "down"} <= corners:
        corners.add("flat")
    return got in corners


@dataclass(frozen=True)
class Event:
    """A parsed event: timestamp converted to an aware UTC datetime."""

    id: str
    type: str
    ts: datetime
    data: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def wf(self) -> Any:
        return self.data.get("workflow_id")


def parse_ts(value: str | datetime) -> datetime:
    """ISO 8601 with a zone (``Z`` or ``+hh:mm``) -> aware UTC datetime."""
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without zone: {value!r}")
    return dt.astimezone(timezone.utc)


def _pct(num: int, den: int) -> float | None:
    return None if den == 0 else 100.0 * num / den


def _mean(values: list[float]) -> float | None:
    return None if not values else sum(values) / len(values)


def _hours(d: timedelta) -> float:
    return d.total_seconds() / 3600.0


class _Reference:
    """All events of one computation plus the per-workflow creation/completion index."""

    def __init__(self, events: Iterable[dict], user: str | None, sla_hours: float,
                 queues: Iterable[str] | None, gates: Iterable[str] | None) -> None:
        seen: set[str] = set()
        evs: list[Event] = []
        for raw in events:
            if raw["id"] in seen:
                continue  # duplicate id: the first one seen wins
            seen.add(raw["id"])
            evs.append(Event(raw["id"], raw["type"], parse_ts(raw["timestamp"]),
                             dict(raw.get("data") or {})))
        evs.sort(key=lambda e: (e.ts, e.id))
        self.events = evs
        self.user = user
        self.sla_hours = sla_hours
        self.creation: dict[Any, Event] = {}
        self.completion: dict[Any, Event] = {}
        for e in evs:  # sorted, so setdefault keeps the earliest
            if e.type == "workflow.pr_created":
                self.creation.setdefault(e.wf, e)
            elif e.type == "workflow.completed":
                self.completion.setdefault(e.wf, e)
        self.gates = sorted(set(gates) if gates is not None else
                            {e.get("gate_name") for e in evs if e.type in GATE_TYPES})
        self.queues = sorted(set(queues) if queues is not None else
                             {e.get("queue") for e in evs
                              if e.type == "system.queue_depth_updated"})

    # ---- selection helpers -------------------------------------------------------------
    def of(self, etype: str, lo: datetime | None = None, hi: datetime | None = None) -> list[Event]:
        """Events of ``etype`` with ``lo <= ts < hi`` (either bound optional), sorted."""
        return [e for e in self.events if e.type == etype
                and (lo is None or e.ts >= lo) and (hi is None or e.ts < hi)]

    def gate_execs(self, a: datetime, b: datetime) -> list[tuple[Event, bool]]:
        """Every gate execution event in [a, b) with its passed flag."""
        out = []
        for e in self.events:
            if e.type in GATE_TYPES and a <= e.ts < b:
                implied = GATE_TYPES[e.type]
                out.append((e, bool(e.get("passed")) if implied is None else implied))
        return out

    def completed_in(self, a: datetime, b: datetime, outcome: str | None = None) -> list[Any]:
        """Workflows whose earliest completion is in [a, b) (optionally with that outcome)."""
        return [wf for wf, c in self.completion.items() if a <= c.ts < b
                and (outcome is None or c.get("outcome") == outcome)]

    def authored_by(self, wf: Any, user: str | None) -> bool:
        c = self.creation.get(wf)
        return c is not None and c.get("author") == user

    def active_at(self, t: datetime) -> list[Any]:
        return [wf for wf, c in self.creation.items() if c.ts < t
                and not (wf in self.completion and self.completion[wf].ts < t)]

    def latest_steps(self, t: datetime) -> dict[Any, str]:
        steps: dict[Any, str] = {}
        for e in self.of("workflow.step_entered", hi=t):
            steps[e.wf] = e.get("step")  # sorted: the last write is the latest
        return steps

    # ---- executive ---------------------------------------------------------------------
    def gate_pass_rate(self, a: datetime, b: datetime) -> float | None:
        g = self.gate_execs(a, b)
        return _pct(sum(1 for _, p in g if p), len(g))

    def share(self, etype: str, a: datetime, b: datetime,
              pred: Callable[[Event], Any]) -> float | None:
        """100 * (events of ``etype`` in [a, b) satisfying ``pred``) / (all of them), per event."""
        evs = self.of(etype, a, b)
        return _pct(sum(1 for e in evs if pred(e)), len(evs))

    def defect_detection_rate(self, a: datetime, b: datetime) -> float | None:
        return self.share("workflow.defect_found", a, b,
                          lambda e: e.get("stage", "review") == "review")

    def false_positive_rate(self, a: datetime, b: datetime) -> float | None:
        return self.share("workflow.defect_resolved", a, b,
                          lambda e: e.get("resolution") == "false_positive")

    def compliance_adherence(self, a: datetime, b: datetime) -> float | None:
        return self.share("workflow.compliance_checked", a, b, lambda e: e.get("passed"))

    def overall_quality_score(self, a: datetime, b: datetime) -> float | None:
        fpr = self.false_positive_rate(a, b)
        parts = [self.gate_pass_rate(a, b), self.defect_detection_rate(a, b),
                 None if fpr is None else 100.0 - fpr, self.compliance_adherence(a, b)]
        return _mean([p for p in parts if p is not None])

    def average_review_cycle_time(self, a: datetime, b: datetime) -> float | None:
        first_approved: dict[Any, datetime] = {}
        for e in self.of("workflow.review_completed"):
            if e.get("verdict") == "approved":
                first_approved.setdefault(e.wf, e.ts)
        first_start: dict[Any, datetime] = {}
        for e in self.of("workflow.review_started"):
            first_start.setdefault(e.wf, e.ts)
        return _mean([_hours(ts - first_start[wf]) for wf, ts in first_approved.items()
                      if a <= ts < b and wf in first_start])

    def workflow_completion_rate(self, a: datetime, b: datetime) -> float | None:
        return self.share("workflow.completed", a, b, lambda e: e.get("outcome") == "merged")

    def agent_utilization_rate(self, a: datetime, b: datetime) -> float | None:
        by_agent: dict[Any, list[Event]] = defaultdict(list)
        for e in self.of("system.agent_status_changed"):
            by_agent[e.get("agent_id")].append(e)  # sorted by (ts, id)
        busy = avail = timedelta(0)
        for changes in by_agent.values():
            for i, e in enumerate(changes):
                seg_lo = max(e.ts, a)
                seg_hi = b if i + 1 == len(changes) else min(changes[i + 1].ts, b)
                if seg_hi <= seg_lo:
                    continue
                if e.get("status") in ("active", "overloaded"):
                    busy += seg_hi - seg_lo
                    avail += seg_hi - seg_lo
                elif e.get("status") == "idle":
                    avail += seg_hi - seg_lo
        return None if avail == timedelta(0) else 100.0 * (busy / avail)

    def _durations(self, a: datetime, b: datetime, outcome: str | None) -> list[timedelta]:
        """(completion - creation) for workflows completed in [a, b) that have a pr_created."""
        return [self.completion[wf].ts - self.creation[wf].ts
                for wf in self.completed_in(a, b, outcome) if wf in self.creation]

    def sla_adherence(self, a: datetime, b: datetime) -> float | None:
        durs = self._durations(a, b, None)
        inside = sum(1 for d in durs if d.total_seconds() <= self.sla_hours * 3600.0)
        return _pct(inside, len(durs))

    def cost_per_review(self, a: datetime, b: datetime) -> float | None:
        done = self.of("workflow.review_completed", a, b)
        return None if not done else sum(e.get("cost_usd", 0) or 0 for e in done) / len(done)

    def time_to_merge(self, a: datetime, b: datetime) -> float | None:
        return _mean([_hours(d) for d in self._durations(a, b, "merged")])

    def developer_satisfaction(self, a: datetime, b: datetime) -> float | None:
        return _mean([e.get("score") for e in self.of("user.survey_submitted", a, b)])

    def process_adoption_rate(self, a: datetime, b: datetime) -> float | None:
        return self.share("workflow.pr_created", a, b, lambda e: e.get("qms_tracked", True))

    # ---- operational (state at t, except error_rate) -----------------------------------
    def workflow_state(self, t: datetime) -> dict[str, int | None]:
        if not self.of("workflow.pr_created", hi=t):
            return {k: None for k in ("total_active_reviews", *STEP_KPIS)}
        active, steps = self.active_at(t), self.latest_steps(t)
        out: dict[str, int | None] = {"total_active_reviews": len(active)}
        for kpi, step in STEP_KPIS.items():
            out[kpi] = sum(1 for wf in active if steps.get(wf) == step)
        return out

    def agent_state(self, t: datetime) -> dict[str, int | None]:
        status: dict[Any, str] = {}
        for e in self.of("system.agent_status_changed", hi=t):
            status[e.get("agent_id")] = e.get("status")  # last write is the latest
        if not status:
            return {k: None for k in ("total_agents", *AGENT_KPIS)}
        out: dict[str, int | None] = {"total_agents": len(status)}
        for kpi, st in AGENT_KPIS.items():
            out[kpi] = sum(1 for s in status.values() if s == st)
        return out

    def queue_depths(self, t: datetime) -> dict[str, int | None]:
        depth: dict[Any, int] = {}
        for e in self.of("system.queue_depth_updated", hi=t):
            depth[e.get("queue")] = e.get("depth")
        return {f"queue_depth.{q}": depth.get(q) for q in self.queues}

    def error_rate(self, a: datetime, b: datetime) -> float | None:
        if not any(a <= e.ts < b for e in self.events):
            return None
        return len(self.of("system.error_occurred", a, b)) / _hours(b - a)

    # ---- quality assurance -------------------------------------------------------------
    def gate_kpis(self, a: datetime, b: datetime) -> dict[str, Any]:
        g = self.gate_execs(a, b)
        n_pass = sum(1 for _, p in g if p)
        times = [e.get("execution_time") for e, _ in g if e.get("execution_time") is not None]
        out: dict[str, Any] = {
            "total_gates_executed": len(g) or None,
            "gates_passed": n_pass if g else None,
            "gates_failed": len(g) - n_pass if g else None,
            "average_gate_time": None if not times else sum(times) / len(times) / 60.0,
        }
        for name in self.gates:
            mine = [(e, p) for e, p in g if e.get("gate_name") == name]
            ts = sorted(e.get("execution_time") for e, _ in mine
                        if e.get("execution_time") is not None)
            rank = (95 * len(ts) + 99) // 100  # = ceil(0.95 * n), exact integer arithmetic
            out[f"gate.{name}.pass_rate"] = _pct(sum(1 for _, p in mine if p), len(mine))
            out[f"gate.{name}.executions"] = len(mine) or None
            out[f"gate.{name}.p95_time"] = ts[rank - 1] / 60.0 if ts else None
        return out

    def defects_found(self, a: datetime, b: datetime) -> int | None:
        return len(self.of("workflow.defect_found", a, b)) or None

    def _first_found(self) -> dict[Any, Event]:
        first: dict[Any, Event] = {}
        for e in self.of("workflow.defect_found"):
            first.setdefault(e.get("defect_id"), e)
        return first

    def critical_defects(self, t: datetime) -> int | None:
        if not self.of("workflow.defect_found", hi=t):
            return None
        resolved = {e.get("defect_id") for e in self.of("workflow.defect_resolved", hi=t)}
        return sum(1 for d, e in self._first_found().items()
                   if e.ts < t and e.get("severity") == "critical" and d not in resolved)

    def defect_resolution_time(self, a: datetime, b: datetime) -> float | None:
        first = self._first_found()
        return _mean([_hours(r.ts - first[r.get("defect_id")].ts)
                      for r in self.of("workflow.defect_resolved", a, b)
                      if r.get("defect_id") in first])

    def defect_prevention_rate(self, a: datetime, b: datetime) -> float | None:
        merged = self.completed_in(a, b, "merged")
        prod = {e.wf for e in self.of("workflow.defect_found", hi=b)
                if e.get("stage", "review") == "production"}
        return _pct(sum(1 for wf in merged if wf not in prod), len(merged))

    def audit_readiness_score(self, a: datetime, b: datetime) -> float | None:
        done = self.completed_in(a, b)
        entered: dict[Any, set[str]] = defaultdict(set)
        for e in self.of("workflow.step_entered", hi=b):
            entered[e.wf].add(e.get("step"))
        checked = {e.wf for e in self.of("workflow.compliance_checked", hi=b)}
        ready = sum(1 for wf in done
                    if set(STEP_KPIS.values()) <= entered[wf] and wf in checked)
        return _pct(ready, len(done))

    def policy_violations(self, a: datetime, b: datetime) -> int | None:
        checks = self.of("workflow.compliance_checked", a, b)
        return sum(1 for c in checks if not c.get("passed")) if checks else None

    def remediation_pending(self, t: datetime) -> int | None:
        checks = self.of("workflow.compliance_checked", hi=t)
        if not checks:
            return None
        rems: dict[tuple[Any, Any], list[datetime]] = defaultdict(list)
        for r in self.of("workflow.violation_remediated", hi=t):
            rems[(r.wf, r.get("policy"))].append(r.ts)
        return sum(1 for c in checks if not c.get("passed")
                   and not any(ts > c.ts for ts in rems[(c.wf, c.get("policy"))]))

    # ---- developer (user u) ------------------------------------------------------------
    def pending_reviews(self, u: str, t: datetime) -> int | None:
        latest_start: dict[Any, datetime] = {}
        for e in self.of("workflow.review_started", hi=t):
            if e.get("reviewer") == u:
                latest_start[e.wf] = e.ts
        if not latest_start:
            return None
        done: dict[Any, list[datetime]] = defaultdict(list)
        for c in self.of("workflow.review_completed", hi=t):
            if c.get("reviewer") == u:
                done[c.wf].append(c.ts)
        return sum(1 for wf, s in latest_start.items() if not any(ts > s for ts in done[wf]))

    def completed_today(self, u: str, t: datetime) -> int | None:
        midnight = t.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        done = [e for e in self.of("workflow.review_completed", midnight, t)
                if e.get("reviewer") == u]
        return len(done) or None

    def average_feedback_time(self, u: str, a: datetime, b: datetime) -> float | None:
        starts: dict[Any, list[datetime]] = defaultdict(list)
        for s in self.of("workflow.review_started"):
            if s.get("reviewer") == u:
                starts[s.wf].append(s.ts)
        hours = []
        for c in self.of("workflow.review_completed", a, b):
            earlier = [ts for ts in starts[c.wf] if ts < c.ts] if c.get("reviewer") == u else []
            if earlier:
                hours.append(_hours(c.ts - max(earlier)))  # u's latest strictly earlier start
        return _mean(hours)

    def user_gate_pass_rate(self, u: str, a: datetime, b: datetime) -> float | None:
        g = [(e, p) for e, p in self.gate_execs(a, b) if self.authored_by(e.wf, u)]
        return _pct(sum(1 for _, p in g if p), len(g))

    def quality_score_trend(self, u: str, a: datetime, b: datetime) -> float | None:
        cur, prev = self.user_gate_pass_rate(u, a, b), self.user_gate_pass_rate(u, a - (b - a), a)
        return None if cur is None or prev is None else cur - prev

    def team_velocity(self, u: str, a: datetime, b: datetime) -> float | None:
        mine = [e for e in self.of("workflow.pr_created") if e.get("author") == u]
        team = mine[-1].get("team") if mine else None
        if team is None:
            return None
        merged = [wf for wf in self.completed_in(a, b, "merged")
                  if wf in self.creation and self.creation[wf].get("team") == team]
        return len(merged) * (timedelta(days=7) / (b - a))

    def skill_development_areas(self, u: str, a: datetime, b: datetime) -> list[str] | None:
        cats = Counter(e.get("category") for e in self.of("workflow.defect_found", a, b)
                       if e.get("category") is not None and self.authored_by(e.wf, u))
        if not cats:
            return None
        return [c for c, _ in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]

    def suggested_reviews(self, t: datetime) -> int | None:
        if not self.of("workflow.pr_created", hi=t):
            return None
        steps = self.latest_steps(t)
        started = {e.wf for e in self.of("workflow.review_started", hi=t)}
        return sum(1 for wf in self.active_at(t)
                   if steps.get(wf) == "code_review" and wf not in started)

    # ---- dashboards --------------------------------------------------------------------
    def values(self, dashboard: str, a: datetime, b: datetime) -> dict[str, Any]:
        """All KPI values of ``dashboard`` for window [a, b) / instant b."""
        if dashboard == "executive":
            names = ("gate_pass_rate", "defect_detection_rate", "false_positive_rate",
                     "compliance_adherence", "overall_quality_score",
                     "average_review_cycle_time", "workflow_completion_rate",
                     "agent_utilization_rate", "sla_adherence", "cost_per_review",
                     "time_to_merge", "developer_satisfaction", "process_adoption_rate")
            return {n: getattr(self, n)(a, b) for n in names}
        if dashboard == "operational":
            return {**self.workflow_state(b), **self.agent_state(b), **self.queue_depths(b),
                    "error_rate": self.error_rate(a, b)}
        if dashboard == "qa":
            return {**self.gate_kpis(a, b),
                    "defects_found": self.defects_found(a, b),
                    "critical_defects": self.critical_defects(b),
                    "defect_resolution_time": self.defect_resolution_time(a, b),
                    "defect_prevention_rate": self.defect_prevention_rate(a, b),
                    "compliance_checks_passed": self.compliance_adherence(a, b),
                    "audit_readiness_score": self.audit_readiness_score(a, b),
                    "policy_violations": self.policy_violations(a, b),
                    "remediation_pending": self.remediation_pending(b)}
        if dashboard == "developer":
            u = self.user
            assert u is not None
            return {"pending_reviews": self.pending_reviews(u, b),
                    "completed_today": self.completed_today(u, b),
                    "average_feedback_time": self.average_feedback_time(u, a, b),
                    "quality_score_trend": self.quality_score_trend(u, a, b),
                    "team_velocity": self.team_velocity(u, a, b),
                    "skill_development_areas": self.skill_development_areas(u, a, b),
                    "suggested_reviews": self.suggested_reviews(b)}
        raise ValueError(f"unknown dashboard {dashboard!r}; expected one of {DASHBOARDS}")


def compute_dashboard(events: Iterable[dict], dashboard: str, end: datetime, T: timedelta,
                      user: str | None = None, sla_hours: float = 8.0,
                      queues: Iterable[str] | None = None,
                      gates: Iterable[str] | None = None) -> dict[str, dict]:
    """Every KPI of ``dashboard`` for W = [end - T, end), with previous value and trend.

    Returns ``{kpi_id: {"current_value", "previous_value", "trend", "unit"}}``.
    """
    if dashboard not in DASHBOARDS:
        raise ValueError(f"unknown dashboard {dashboard!r}; expected one of {DASHBOARDS}")
    if dashboard == "developer" and user is None:
        raise ValueError("the developer dashboard requires a user")
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    if T <= timedelta(0):
        raise ValueError("T must be positive")
    end = end.astimezone(timezone.utc)
    ref = _Reference(events, user, sla_hours, queues, gates)
    current = ref.values(dashboard, end - T, end)
    previous = ref.values(dashboard, end - 2 * T, end - T)
    out: dict[str, dict] = {}
    for kpi, value in current.items():
        unit = kpi_unit(kpi)
        out[kpi] = {"current_value": value, "previous_value": previous[kpi],
                    "trend": None if unit == "list" else trend(value, previous[kpi]),
                    "unit": unit}
    return out


def in_scope(events: Iterable[dict], dimension: str, value: str) -> list[dict]:
    """The events a dashboard filtered by repository or team works on: the workflow events
    of workflows whose creation (earliest `pr_created`, duplicates counted once) names that
    repository or team. Only the KPIs of data.scopes.SCOPED_KPIS are defined on them."""
    field = {"repository": "repository", "team": "team"}[dimension]
    first: dict[Any, tuple[datetime, str, Any]] = {}
    unique: dict[str, dict] = {}
    for raw in events:
        unique.setdefault(raw["id"], raw)
    for raw in unique.values():
        if raw["type"] == "workflow.pr_created":
            key = (parse_ts(raw["timestamp"]), raw["id"])
            wf = raw["data"]["workflow_id"]
            if wf not in first or key < first[wf][:2]:
                first[wf] = (*key, raw["data"].get(field))
    keep = {wf for wf, (_, _, v) in first.items() if v == value}
    return [raw for raw in unique.values()
            if raw["type"].startswith("workflow.") and (raw.get("data") or {}).get("workflow_id") in keep]


# ---- the reviewer ledger (METRICS.md, "The reviewer ledger") ------------------------------

LEDGER_KINDS = ("human", "ai", "bot", "gate")
_LEDGER_COUNTS = ("reviews_completed", "approvals", "changes_requested", "first_reviews", "findings_raised",
                  "findings_accepted", "findings_dismissed", "findings_wont_fix", "escapes",
                  "workflows_approved", "workflows_approved_with_escape")


def _ledger_cell(c: dict[str, Any]) -> dict[str, Any]:
    out = {k: c.get(k, 0) for k in _LEDGER_COUNTS}
    cost = c.get("cost", 0.0)
    ttf = c.get("ttf", [])
    out["review_cost_usd"] = cost
    out["time_to_first_review"] = _mean(ttf)
    acc, dis = out["findings_accepted"], out["findings_dismissed"]
    out["precision"] = _pct(acc, acc + dis)
    out["miss_rate"] = _pct(out["workflows_approved_with_escape"], out["workflows_approved"])
    out["cost_per_accepted_finding"] = None if not acc else c.get("cost_all", cost) / acc
    return out


def compute_ledger(events: Iterable[dict], end: datetime, T: timedelta, dimension: str | None = None,
                   value: str | None = None) -> dict[str, Any]:
    """The reviewer ledger of W = [end − T, end) straight from raw events: `rows` (per
    reviewer), `kinds`, `first_review`, `gates` — the shape data.ledger.assemble gives. With a
    repository or team filter, the workflow facts are those of that scope's workflows and the
    findings stay unfiltered."""
    ref = _Reference(events, None, 8.0, None, None)
    b = end.astimezone(timezone.utc)
    a = b - T
    evs = ref.events
    known = {e.get("agent_id") for e in evs if e.type in ("system.agent_status_changed", "workflow.agent_assigned")}

    def kind_of(e: Event, actor: str, field: str) -> str:
        return e.get(field) or ("ai" if actor in known else "human")

    def keep(wf: Any) -> bool:
        if dimension is None:
            return True
        c = ref.creation.get(wf)
        return c is not None and c.get(dimension) == value

    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)

    def bump(actor: str, kind: str, name: str, n: Any = 1) -> None:
        cell = cells[(actor, kind)]
        cell[name] = cell.get(name, 0) + n

    reviews = [e for e in evs if e.type in ("workflow.review_started", "workflow.review_completed")]
    for e in reviews:
        if e.type == "workflow.review_completed" and a <= e.ts < b:
            who = e.get("reviewer")
            k = kind_of(e, who, "reviewer_kind")
            if dimension is not None and e.get("cost_usd"):    # cost per accepted finding stays unfiltered
                bump(who, k, "cost_all", float(e.get("cost_usd")))
            if keep(e.wf):
                bump(who, k, "reviews_completed")
                bump(who, k, "approvals" if e.get("verdict") == "approved" else "changes_requested")
                bump(who, k, "cost", float(e.get("cost_usd") or 0))
    first_review: dict[tuple[Any, Any], Event] = {}
    first_approval: dict[tuple[Any, Any], Event] = {}
    for e in reviews:                                   # sorted: the first seen is the earliest
        first_review.setdefault((e.get("reviewer"), e.wf), e)
        if e.type == "workflow.review_completed" and e.get("verdict") == "approved":
            first_approval.setdefault((e.get("reviewer"), e.wf), e)
    for (who, wf), e in first_review.items():
        if a <= e.ts < b and wf in ref.creation and keep(wf):
            k = kind_of(e, who, "reviewer_kind")
            bump(who, k, "first_reviews")
            cells[(who, k)].setdefault("ttf", []).append(_hours(e.ts - ref.creation[wf].ts))
    # findings: each defect's first defect_found, its latest resolution
    first_found: dict[Any, Event] = {}
    for e in ref.of("workflow.defect_found"):
        first_found.setdefault(e.get("defect_id"), e)
    latest_res: dict[Any, Event] = {}
    for e in ref.of("workflow.defect_resolved"):
        latest_res[e.get("defect_id")] = e              # sorted: the last one is the latest
    for d, e in first_found.items():
        who = e.get("found_by")
        if not who or (e.get("stage") or "review") != "review":
            continue
        k = kind_of(e, who, "found_by_kind")
        if a <= e.ts < b:
            bump(who, k, "findings_raised")
        res = latest_res.get(d)
        if res is not None and a <= res.ts < b:
            bump(who, k, {"fixed": "findings_accepted", "false_positive": "findings_dismissed"}.get(
                res.get("resolution"), "findings_wont_fix"))
    production = [e for e in ref.of("workflow.defect_found") if e.get("stage") == "production"]
    for (who, wf), ap in first_approval.items():
        if not keep(wf):
            continue
        k = kind_of(ap, who, "reviewer_kind")
        if a <= ap.ts < b:
            bump(who, k, "workflows_approved")
            if any(d.wf == wf and ap.ts <= d.ts < b for d in production):
                bump(who, k, "workflows_approved_with_escape")
        for d in production:
            if d.wf == wf and a <= d.ts < b and ap.ts <= d.ts:
                bump(who, k, "escapes")
    # per workflow: the first review by anyone, and by a human
    any_first: dict[Any, Event] = {}
    human_first: dict[Any, Event] = {}
    for (who, wf), e in sorted(first_review.items(), key=lambda kv: (kv[1].ts, kv[1].id)):
        any_first.setdefault(wf, e)
        if kind_of(e, who, "reviewer_kind") == "human":
            human_first.setdefault(wf, e)
    first = {}
    for name, table in (("any", any_first), ("human", human_first)):
        hours = [_hours(e.ts - ref.creation[wf].ts) for wf, e in table.items()
                 if a <= e.ts < b and wf in ref.creation and keep(wf)]
        first[name] = hours
    # gates
    gates: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    runs = [(e, p) for e, p in ref.gate_execs(ref.events[0].ts if ref.events else a, b)]
    for e, passed in runs:
        if not (a <= e.ts < b) or not keep(e.wf):
            continue
        g = gates[e.get("gate_name")]
        if passed:
            g["passes"] += 1
            if any(d.wf == e.wf and e.ts <= d.ts < b for d in production):
                g["passes_followed_by_production_defect"] += 1
        else:
            g["fails"] += 1
            sha = e.get("head_sha")
            if sha and any(p and x.wf == e.wf and x.get("gate_name") == e.get("gate_name")
                           and x.get("head_sha") == sha and (x.ts, x.id) > (e.ts, e.id) and x.ts < b
                           for x, p in runs):
                g["flaky_fails"] += 1
    by_actor: dict[str, dict[str, Any]] = defaultdict(dict)
    actor_kinds: dict[str, set[str]] = defaultdict(set)
    by_kind: dict[str, dict[str, Any]] = {k: {} for k in LEDGER_KINDS}
    for (who, k), cell in cells.items():
        actor_kinds[who].add(k)
        for target in (by_actor[who], by_kind.setdefault(k, {})):
            for name, v in cell.items():
                target[name] = (target.get(name, []) + v) if name == "ttf" else target.get(name, 0) + v
    return {
        "rows": [{"reviewer": who, "kind": next(iter(actor_kinds[who])) if len(actor_kinds[who]) == 1 else "mixed",
                  **_ledger_cell(by_actor[who])} for who in sorted(by_actor)],
        "kinds": {k: _ledger_cell(c) for k, c in by_kind.items()},
        "first_review": {"time_to_first_review_any": _mean(first["any"]), "workflows_any": len(first["any"]),
                         "time_to_first_human_review": _mean(first["human"]), "workflows_human": len(first["human"])},
        "gates": [{"gate": name, "passes": g["passes"],
                   "passes_followed_by_production_defect": g["passes_followed_by_production_defect"],
                   "calibration_miss_rate": _pct(g["passes_followed_by_production_defect"], g["passes"]),
                   "fails": g["fails"], "flaky_fails": g["flaky_fails"],
                   "flakiness": _pct(g["flaky_fails"], g["fails"])} for name, g in sorted(gates.items())],
    }
