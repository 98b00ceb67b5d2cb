"""Every KPI of shared/spec/METRICS.md as a pure formula over rollup sums.

A formula gets a `Win`: one window [s, e) of a fetched Span, with the previous windows
reachable through `prev`. Window KPIs sum buckets in [s, e); state KPIs read the state
at e. Nothing here talks to Redis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from data.contrib import GATE, HIST, LATE, MAIN, MICRO, QUEUE, USER, user_field
from data.rollups import Span
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, day_start

Value = float | int | list[str] | None


@dataclass
class Win:
    span: Span
    bounds: list[int]          # [e, s, ps, pps, ...]: window i is [bounds[i+1], bounds[i])
    i: int = 0
    user: str | None = None
    team: str | None = None
    names: dict[str, list[str]] = field(default_factory=dict)   # registries: gates, queues, categories

    @property
    def e(self) -> int:
        return self.bounds[self.i]

    @property
    def s(self) -> int:
        return self.bounds[self.i + 1]

    @property
    def hours(self) -> float:
        return (self.e - self.s) / HOUR_MS

    @property
    def available(self) -> bool:
        return self.i + 1 < len(self.bounds)

    def prev(self) -> "Win":
        return Win(self.span, self.bounds, self.i + 1, self.user, self.team, self.names)

    def w(self, field: str, fam: str = MAIN) -> int:
        return self.span.window(fam, field, self.s, self.e)

    def sums(self, fam: str) -> dict[str, int]:
        return self.span.sums(fam, self.s, self.e)

    def at(self, field: str, fam: str = MAIN, t: int | None = None) -> int:
        return self.span.at(fam, field, self.e if t is None else t)

    def integral(self, field: str) -> int:
        return self.span.integral(MAIN, field, self.s, self.e)


def ratio(num: float, den: float) -> float | None:
    return None if not den else 100.0 * num / den


def mean(total: float, n: float, scale: float = 1.0) -> float | None:
    return None if not n else total / n / scale


def _count(w: Win, field: str) -> int | None:
    return w.w(field) or None


# --- executive -------------------------------------------------------------------------

def gate_pass_rate(w: Win) -> Value:
    return ratio(w.w("gp"), w.w("gx"))


def defect_detection_rate(w: Win) -> Value:
    return ratio(w.w("dfr"), w.w("df"))


def false_positive_rate(w: Win) -> Value:
    return ratio(w.w("drfp"), w.w("dr"))


def compliance_adherence(w: Win) -> Value:
    return ratio(w.w("cp"), w.w("cc"))


def overall_quality_score(w: Win) -> Value:
    fpr = false_positive_rate(w)
    parts = [gate_pass_rate(w), defect_detection_rate(w), None if fpr is None else 100.0 - fpr,
             compliance_adherence(w)]
    known = [p for p in parts if p is not None]
    return sum(known) / len(known) if known else None


def agent_utilization_rate(w: Win) -> Value:
    busy = w.integral("s.ag.active") + w.integral("s.ag.overloaded")
    return ratio(busy, busy + w.integral("s.ag.idle"))


EXECUTIVE: dict[str, tuple[str, Callable[[Win], Value]]] = {
    "overall_quality_score": ("percentage", overall_quality_score),
    "defect_detection_rate": ("percentage", defect_detection_rate),
    "false_positive_rate": ("percentage", false_positive_rate),
    "compliance_adherence": ("percentage", compliance_adherence),
    "gate_pass_rate": ("percentage", gate_pass_rate),
    "average_review_cycle_time": ("hours", lambda w: mean(w.w("rct_s"), w.w("rct_n"), HOUR_MS)),
    "workflow_completion_rate": ("percentage", lambda w: ratio(w.w("wm"), w.w("wc"))),
    "agent_utilization_rate": ("percentage", agent_utilization_rate),
    "sla_adherence": ("percentage", lambda w: ratio(w.w("sla_ok"), w.w("sla_n"))),
    "cost_per_review": ("usd", lambda w: mean(w.w("cost"), w.w("rc"), MICRO)),
    "time_to_merge": ("hours", lambda w: mean(w.w("ttm_s"), w.w("ttm_n"), HOUR_MS)),
    "developer_satisfaction": ("score", lambda w: mean(w.w("ss"), w.w("sn"), MICRO)),
    "process_adoption_rate": ("percentage", lambda w: ratio(w.w("pt"), w.w("pc"))),
}

# --- operational (state at e) ----------------------------------------------------------


def _wf_state(field: str) -> Callable[[Win], Value]:
    return lambda w: w.at(field) if w.at("s.wfk") else None


def _agents(status: str | None) -> Callable[[Win], Value]:
    def f(w: Win) -> Value:
        if not w.at("s.agk"):
            return None
        return w.at("s.agk") if status is None else w.at("s.ag." + status)
    return f


def error_rate(w: Win) -> Value:
    if not w.w("ev"):
        return None
    return w.w("err") / w.hours


OPERATIONAL: dict[str, tuple[str, Callable[[Win], Value]]] = {
    "total_active_reviews": ("count", _wf_state("s.active")),
    "pending_dor_validations": ("count", _wf_state("s.step.dor_validation")),
    "in_progress_reviews": ("count", _wf_state("s.step.code_review")),
    "awaiting_dod_validation": ("count", _wf_state("s.step.dod_validation")),
    "final_approvals_needed": ("count", _wf_state("s.step.final_approval")),
    "total_agents": ("count", _agents(None)),
    "active_agents": ("count", _agents("active")),
    "overloaded_agents": ("count", _agents("overloaded")),
    "idle_agents": ("count", _agents("idle")),
    "down_agents": ("count", _agents("down")),
    "agents_in_training": ("count", _agents("training")),
    "error_rate": ("per_hour", error_rate),
}

def queue_depth(q: str) -> Callable[[Win], Value]:
    return lambda w: w.at("s.q:" + q, QUEUE) if w.at("s.qk:" + q, QUEUE) else None


# --- QA --------------------------------------------------------------------------------

def _late(w: Win, prefix: str) -> int:
    """Late-readiness fields '<prefix><minute>' count when their minute lies before e."""
    return sum(v for f, v in w.sums(LATE).items() if f.startswith(prefix) and int(f[len(prefix):]) < w.e)


def defect_prevention_rate(w: Win) -> Value:
    merged = w.w("mw")
    with_prod = w.w("mwpd") + _late(w, "pd:")
    return ratio(merged - with_prod, merged)


def audit_readiness_score(w: Win) -> Value:
    return ratio(w.w("ary") + _late(w, "ar:"), w.w("arn"))


def nearest_rank(hist: dict[int, int], q: float) -> int | None:
    n = sum(hist.values())
    if not n:
        return None
    rank = math.ceil(q * n)
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return None


def histograms(w: Win) -> dict[str, dict[int, int]]:
    """Execution-time histograms of every gate over the window, grouped once per window
    (not once per gate: a week holds hundreds of thousands of histogram fields)."""
    key = ("hist_by_gate", w.s, w.e)
    cached = w.span.extra.get(key)
    if cached is None:
        cached = {}
        for k, v in w.sums(HIST).items():
            if v:
                gate, _, ms = k.rpartition("|")
                cached.setdefault(gate, {})[int(ms)] = v
        w.span.extra[key] = cached
    return cached


def gate_p95(gate: str) -> Callable[[Win], Value]:
    def f(w: Win) -> Value:
        p = nearest_rank(histograms(w).get(gate, {}), 0.95)
        return None if p is None else p / MINUTE_MS
    return f


def gate_kpis(gate: str) -> dict[str, tuple[str, Callable[[Win], Value]]]:
    return {
        f"gate.{gate}.pass_rate": ("percentage", lambda w: ratio(w.w("p:" + gate, GATE), w.w("x:" + gate, GATE))),
        f"gate.{gate}.executions": ("count", lambda w: w.w("x:" + gate, GATE) or None),
        f"gate.{gate}.p95_time": ("minutes", gate_p95(gate)),
    }


QA: dict[str, tuple[str, Callable[[Win], Value]]] = {
    "total_gates_executed": ("count", lambda w: _count(w, "gx")),
    "gates_passed": ("count", lambda w: w.w("gp") if w.w("gx") else None),
    "gates_failed": ("count", lambda w: w.w("gx") - w.w("gp") if w.w("gx") else None),
    "average_gate_time": ("minutes", lambda w: mean(w.w("gts"), w.w("gtn"), MINUTE_MS)),
    "defects_found": ("count", lambda w: _count(w, "df")),
    "critical_defects": ("count", lambda w: w.at("s.crit") if w.at("s.dfk") else None),
    "defect_resolution_time": ("hours", lambda w: mean(w.w("drt_s"), w.w("drt_n"), HOUR_MS)),
    "defect_prevention_rate": ("percentage", defect_prevention_rate),
    "compliance_checks_passed": ("percentage", compliance_adherence),
    "audit_readiness_score": ("percentage", audit_readiness_score),
    "policy_violations": ("count", lambda w: w.w("cc") - w.w("cp") if w.w("cc") else None),
    "remediation_pending": ("count", lambda w: w.at("s.rem") if w.at("s.cck") else None),
}

# --- developer (user u) ----------------------------------------------------------------


def pending_reviews(w: Win) -> Value:
    u = w.user or ""
    return w.at("s.pend:" + u, USER) if w.at("s.rsk:" + u, USER) else None


def completed_today(w: Win) -> Value:
    u = w.user or ""
    return w.span.window(USER, "rc:" + u, day_start(w.e), w.e) or None


def _author_pass_rate(w: Win) -> float | None:
    u = w.user or ""
    return ratio(w.w("gp:" + u, USER), w.w("gx:" + u, USER))


def quality_score_trend(w: Win) -> Value:
    before = w.prev()
    if not before.available:
        return None
    now_rate, before_rate = _author_pass_rate(w), _author_pass_rate(before)
    return None if now_rate is None or before_rate is None else now_rate - before_rate


def team_velocity(w: Win) -> Value:
    if not w.team:
        return None
    return w.w("tm:" + w.team, USER) * (7 * DAY_MS) / (w.e - w.s)


def skill_development_areas(w: Win) -> Value:
    prefix = user_field("dc", w.user or "", "")
    counts = {f[len(prefix):]: v for f, v in w.sums(USER).items() if f.startswith(prefix) and v > 0}
    if not counts:
        return None
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]


DEVELOPER: dict[str, tuple[str, Callable[[Win], Value]]] = {
    "pending_reviews": ("count", pending_reviews),
    "completed_today": ("count", completed_today),
    "average_feedback_time": ("hours", lambda w: mean(w.w("fbs:" + (w.user or ""), USER),
                                                      w.w("fbn:" + (w.user or ""), USER), HOUR_MS)),
    "quality_score_trend": ("points", quality_score_trend),
    "team_velocity": ("per_7d", team_velocity),
    "skill_development_areas": ("list", skill_development_areas),
    "suggested_reviews": ("count", _wf_state("s.sugg")),
}

def developer_fields(user: str, team: str | None, names: dict[str, list[str]]) -> dict[str, list[str]]:
    """The USER fields the developer formulas read for one user (and their team): the family
    holds every user's, so the engine asks for these only (rollups.fetch `only`). Defect
    categories come from their registry, which holds every category a `dc` field names."""
    fields = [f + user for f in ("s.pend:", "s.rsk:", "rc:", "fbs:", "fbn:", "gp:", "gx:")]
    fields += [user_field("dc", user, c) for c in names.get("categories", [])]
    if team:
        fields.append("tm:" + team)
    return {USER: fields}


# Families the engine has Redis sum per window (rollups.fetch `merged`): only window sums are
# read of them, and their buckets hold the most fields (a histogram; minutes of late readiness).
MERGED = (HIST, LATE)
# Of those, the ones whose fields "<prefix>:<ms>" count in a window only when ms is before its
# end (_late): Redis sums only those per window (rollups.fetch `cut`), not one field per minute.
CUT = (LATE,)

DASHBOARDS = ("executive", "operational", "qa", "developer")
FAMILIES = {"executive": (MAIN,), "operational": (MAIN, QUEUE), "qa": (MAIN, GATE, HIST, LATE),
            "developer": (MAIN, USER)}


def kpis_for(dashboard: str, names: dict[str, list[str]]) -> dict[str, tuple[str, Callable[[Win], Value]]]:
    """The ordered KPI table of a dashboard, per-entity KPIs expanded from the registries."""
    if dashboard == "executive":
        return dict(EXECUTIVE)
    if dashboard == "operational":
        out = dict(OPERATIONAL)
        err = out.pop("error_rate")
        for q in names.get("queues", []):
            out["queue_depth." + q] = ("count", queue_depth(q))
        out["error_rate"] = err
        return out
    if dashboard == "qa":
        out = dict(QA)
        tail = {k: out.pop(k) for k in list(out)[4:]}
        for g in names.get("gates", []):
            out.update(gate_kpis(g))
        out.update(tail)
        return out
    if dashboard == "developer":
        return dict(DEVELOPER)
    raise KeyError(dashboard)


def trend(current: Value, previous: Value) -> str | None:
    if isinstance(current, list) or isinstance(previous, list):
        return None
    if current is None or previous is None:
        return "flat"
    change = current - previous
    if change == 0 or abs(change) < 0.005 * abs(previous):
        return "flat"
    return "up" if change > 0 else "down"


def dashboard_of(kpi_id: str) -> str | None:
    """Which dashboard a KPI id belongs to (for permissions and series)."""
    for name, table in (("executive", EXECUTIVE), ("operational", OPERATIONAL), ("qa", QA), ("developer", DEVELOPER)):
        if kpi_id in table:
            return name
    if kpi_id.startswith("queue_depth."):
        return "operational"
    if kpi_id.startswith("gate.") and kpi_id.rsplit(".", 1)[-1] in ("pass_rate", "executions", "p95_time"):
        return "qa"
    return None


def compute(table: dict[str, tuple[str, Callable[[Win], Value]]], win: Win) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    prev = win.prev()
    for kpi_id, (unit, fn) in table.items():
        cur = fn(win)
        pv = fn(prev) if prev.available else None
        # A list (skill areas) has no direction, even when both windows are empty.
        out[kpi_id] = {"current_value": cur, "previous_value": pv,
                       "trend": None if unit == "list" else trend(cur, pv), "unit": unit}
    return out
