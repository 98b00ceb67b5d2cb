"""Pure computations behind the widgets' computed views (dashboards.computed reads Redis and
calls these): ROI, quality risks, per-gate rows, and the views made from raw events —
team collaboration, code quality, test coverage, achievements, skill development,
annotations. Plain dicts and lists in, rows (dicts) out; no Redis, no pandas, no UI.

Every time is epoch milliseconds; rows carry ISO 8601 strings (data.timeutil.fmt_ms) where
they hold an instant. docs/METRICS.md ("Computed views") says what each number is.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from data.contrib import MICRO
from data.pace import request_paced
from data.timeutil import DAY_MS, fmt_ms

Row = dict[str, Any]

# --- what a KPI's change means ---------------------------------------------------------

HIGHER, LOWER = "higher_is_better", "lower_is_better"
DIRECTION: dict[str, str] = {
    **dict.fromkeys(("overall_quality_score", "defect_detection_rate", "compliance_adherence", "gate_pass_rate",
                     "workflow_completion_rate", "agent_utilization_rate", "sla_adherence", "developer_satisfaction",
                     "process_adoption_rate", "active_agents", "gates_passed", "defect_prevention_rate",
                     "compliance_checks_passed", "audit_readiness_score", "completed_today", "quality_score_trend",
                     "team_velocity"), HIGHER),
    **dict.fromkeys(("false_positive_rate", "average_review_cycle_time", "cost_per_review", "time_to_merge",
                     "overloaded_agents", "down_agents", "error_rate", "gates_failed", "average_gate_time",
                     "defects_found", "critical_defects", "defect_resolution_time", "policy_violations",
                     "remediation_pending", "pending_reviews", "average_feedback_time"), LOWER),
}


def direction(kpi: str) -> str | None:
    """Whether a rise of the KPI is good news (None: neither, e.g. a count of work in flight)."""
    if kpi in DIRECTION:
        return DIRECTION[kpi]
    if kpi.startswith("queue_depth."):
        return LOWER
    if kpi.startswith("gate."):
        return {"pass_rate": HIGHER, "p95_time": LOWER}.get(kpi.rsplit(".", 1)[-1])
    return None


def unit_of(kpi: str) -> str | None:
    """The unit of a per-gate or per-queue KPI not computed yet (its gate or queue never seen)."""
    if kpi.startswith("queue_depth."):
        return "count"
    if kpi.startswith("gate."):
        return {"pass_rate": "percentage", "executions": "count", "p95_time": "minutes"}.get(kpi.rsplit(".", 1)[-1])
    return None


# The rollup field counting the events a mean or a percentage is made of: (family, field);
# "{gate}" and "{user}" are filled in. Counts need none (the value is its own sample).
SAMPLE_FIELDS: dict[str, tuple[str, str]] = {
    "gate_pass_rate": ("m", "gx"), "defect_detection_rate": ("m", "df"), "false_positive_rate": ("m", "dr"),
    "compliance_adherence": ("m", "cc"), "compliance_checks_passed": ("m", "cc"),
    "average_review_cycle_time": ("m", "rct_n"), "workflow_completion_rate": ("m", "wc"),
    "sla_adherence": ("m", "sla_n"), "cost_per_review": ("m", "rc"), "time_to_merge": ("m", "ttm_n"),
    "developer_satisfaction": ("m", "sn"), "process_adoption_rate": ("m", "pc"), "average_gate_time": ("m", "gtn"),
    "defect_resolution_time": ("m", "drt_n"), "defect_prevention_rate": ("m", "mw"),
    "audit_readiness_score": ("m", "arn"), "average_feedback_time": ("u", "fbn:{user}"),
    "quality_score_trend": ("u", "gx:{user}"),
}


def sample_field(kpi: str, user: str | None) -> tuple[str, str] | None:
    """(family, field) of the rollup counter behind a KPI's value, or None for counts and states."""
    if kpi.startswith("gate.") and kpi.count(".") >= 2:
        gate, metric = kpi[5:].rsplit(".", 1)
        return {"pass_rate": ("g", f"x:{gate}"), "p95_time": ("g", f"tn:{gate}")}.get(metric)
    found = SAMPLE_FIELDS.get(kpi)
    return None if found is None else (found[0], found[1].format(user=user or ""))


# --- ROI and risks -----------------------------------------------------------------------

# What an automated review saves, for the ROI widget; overridable in the YAML config (`roi:`).
DEFAULT_ROI = {"hours_saved_per_review": 0.75, "engineer_hourly_cost_usd": 85.0}


def roi(reviews: int, review_cost_usd: float, assumptions: dict[str, float] | None = None) -> dict[str, Any]:
    """Review cost against engineering time saved in the window; None where nothing was reviewed."""
    a = {**DEFAULT_ROI, **(assumptions or {})}
    if not reviews:
        return {"reviews": 0, "cost_usd": None, "saved_usd": None, "roi_pct": None, "assumptions": a}
    saved = reviews * a["hours_saved_per_review"] * a["engineer_hourly_cost_usd"]
    return {"reviews": reviews, "cost_usd": review_cost_usd, "saved_usd": saved,
            "roi_pct": None if not review_cost_usd else 100.0 * (saved - review_cost_usd) / review_cost_usd,
            "assumptions": a}


def roi_row(reviews: int, cost_micro: int, assumptions: dict[str, float] | None = None) -> Row:
    """The ROI widget's one row: reviews, cost_usd, saved_usd, roi_pct, assumption_<name>."""
    found = roi(reviews, cost_micro / MICRO, assumptions)
    row = {k: found[k] for k in ("reviews", "cost_usd", "saved_usd", "roi_pct")}
    row.update({f"assumption_{k}": v for k, v in found["assumptions"].items()})
    return row


def _level(x: float, cuts: tuple[float, ...]) -> int:
    """1..5: how many of the ascending cut points x reaches, plus one."""
    return 1 + sum(x >= c for c in cuts)


def quality_risks(kpis: dict[str, Any]) -> list[dict[str, Any]]:
    """Quality risks placed on a likelihood × impact grid (1-5), each from one KPI of the
    window. Impact is fixed per risk; likelihood scales with the KPI. A KPI without data
    gives no risk rather than a reassuring one."""
    def v(kpi: str) -> float | None:
        return (kpis.get(kpi) or {}).get("current_value")
    rules = [
        ("Open critical defects", "critical_defects", 5, lambda x: _level(x, (1, 2, 4, 8))),
        ("Defects escaping to production", "defect_prevention_rate", 5, lambda x: _level(100 - x, (1, 3, 6, 10))),
        ("Pending remediations", "remediation_pending", 4, lambda x: _level(x, (1, 3, 6, 11))),
        ("Audit readiness gaps", "audit_readiness_score", 4, lambda x: _level(100 - x, (2, 5, 10, 20))),
        ("Quality gate failures", "gate_pass_rate", 3, lambda x: _level(100 - x, (5, 10, 20, 30))),
    ]
    out = []
    for name, kpi, impact, likelihood in rules:
        value = v(kpi)
        if value is None and kpi == "gate_pass_rate":
            executed, passed = v("total_gates_executed"), v("gates_passed")
            value = None if not executed else 100.0 * (passed or 0) / executed
        if value is None:
            continue
        li = likelihood(value)
        out.append({"name": name, "kpi": kpi, "value": value, "likelihood": li, "impact": impact,
                    "status": "open" if li >= 3 else "watch"})
    return out


STEP_KPIS = ("pending_dor_validations", "in_progress_reviews", "awaiting_dod_validation", "final_approvals_needed")


def pipeline_rows(values: Mapping[str, Any]) -> list[Row]:
    """Active workflows per step (the operational KPIs), in the process's order."""
    return [{"step": k, "active_workflows": (values.get(k) or {}).get("current_value")} for k in STEP_KPIS]


def gate_rows(values: Mapping[str, Any], only: str | None = None) -> list[Row]:
    """One row per gate from the QA KPIs `gate.<gate>.<figure>` ({kpi: {"current_value", …}})."""
    by_gate: dict[str, Row] = {}
    for kpi, v in values.items():
        if not kpi.startswith("gate.") or kpi.count(".") < 2:
            continue
        gate, figure = kpi[5:].rsplit(".", 1)
        if figure in ("pass_rate", "executions", "p95_time") and (only is None or gate == only):
            row = by_gate.setdefault(gate, {"gate": gate, "pass_rate": None, "executions": None, "p95_time": None})
            row[figure] = (v or {}).get("current_value")
    return [by_gate[g] for g in sorted(by_gate)]


# --- time steps ----------------------------------------------------------------------------

def cuts_of(s: int, e: int, step: int) -> list[int]:
    """[s, s + step, …, e]: the edges of the steps tiling [s, e) (the last may be shorter)."""
    return list(range(s, e, step)) + [e]


# --- team collaboration ------------------------------------------------------------------

AGENTS_TEAM, NO_TEAM = "(agents)", "(no team)"
AGENT_PREFIX = "qms-"       # agents' ids (auth.sanitize keeps them readable too)

# A workflow as these views need it: (author, team, repository); None when its pr_created is unknown.
WorkflowInfo = tuple[str | None, str | None, str | None]


def reviewer_team(reviewer: str, teams: Mapping[str, str | None]) -> str:
    """An agent reviews for "(agents)"; a person for the team of their latest pull request."""
    if reviewer.startswith(AGENT_PREFIX):
        return AGENTS_TEAM
    return teams.get(reviewer) or NO_TEAM


def in_scope(info: WorkflowInfo | None, filters: Mapping[str, str]) -> bool:
    """Whether a workflow passes a repository and/or team filter (no filter: every workflow)."""
    repo, team = filters.get("repository"), filters.get("team")
    if not repo and not team:
        return True
    if info is None:
        return False
    return (not repo or info[2] == repo) and (not team or info[1] == team)


def collaboration(reviews: Iterable[dict[str, Any]], workflows: Mapping[str, WorkflowInfo | None],
                       teams: Mapping[str, str | None], filters: Mapping[str, str] | None = None
                       ) -> tuple[list[Row], list[Row]]:
    """Who reviews whose pull requests: `review_completed` events counted per (reviewer's team,
    author's team), and per (reviewer, author). A team filter keeps the reviews where that
    team is on either side; a repository filter the reviews of that repository's workflows.
    Returns (team rows, person rows), each sorted by reviews (most first), then by names."""
    filters = filters or {}
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    people: dict[tuple[str, str | None, str, str], int] = defaultdict(int)
    for ev in request_paced(reviews):       # a window's reviews: up to 50,000
        d = ev.get("data") or {}
        reviewer = d.get("reviewer")
        if not isinstance(reviewer, str):
            continue
        info = workflows.get(d.get("workflow_id"))
        author, a_team = (info[0], info[1] or NO_TEAM) if info else (None, NO_TEAM)
        r_team = reviewer_team(reviewer, teams)
        team = filters.get("team")
        if filters.get("repository") and not in_scope(info, {"repository": filters["repository"]}):
            continue
        if team and team not in (r_team, a_team):
            continue
        pairs[(r_team, a_team)] += 1
        people[(reviewer, author, r_team, a_team)] += 1
    team_rows = [{"reviewer_team": rt, "author_team": at, "reviews": n,
                  "cross_team": rt != at and rt != AGENTS_TEAM}
                 for (rt, at), n in pairs.items()]
    team_rows.sort(key=lambda r: (-r["reviews"], r["reviewer_team"], r["author_team"]))
    person_rows = [{"reviewer": rv, "author": au, "reviewer_team": rt, "author_team": at, "reviews": n}
                   for (rv, au, rt, at), n in people.items()]
    person_rows.sort(key=lambda r: (-r["reviews"], r["reviewer"], r["author"] or ""))
    return team_rows, person_rows


# --- gate metrics: code quality and test coverage --------------------------------------

# Per step, gate, metric and the run's workflow's team and repository (None: not known):
# [sum of the metric over the runs that report it, how many] (data.gate_chunks sums them).
GateSums = dict[tuple[int, str | None, str, str | None, str | None], list[float]]


def quality_of(sums: GateSums, cuts: list[int], gate: str | None = None,
               filters: Mapping[str, str] | None = None) -> list[Row]:
    """Per step, gate and metric: the mean of that metric over the gate's runs in the step
    that report it (`runs`: how many), of the workflows the filters keep."""
    filters = filters or {}
    out: dict[tuple[int, str, str], list[float]] = {}
    for (i, name, metric, team, repo), (total, n) in sums.items():
        if name is None or (gate and name != gate) or not in_scope((None, team, repo), filters):
            continue
        acc = out.setdefault((i, name, metric), [0.0, 0])
        acc[0] += total
        acc[1] += n
    return [{"t": fmt_ms(cuts[i]), "end": fmt_ms(cuts[i + 1]), "gate": g, "metric": m, "value": total / n, "runs": n}
            for (i, g, m), (total, n) in sorted(out.items())]


COVERAGE = "coverage_percentage"


def coverage_of(sums: GateSums, cuts: list[int], filters: Mapping[str, str] | None = None) -> list[Row]:
    """Per step and repository: the mean `coverage_percentage` of the gate runs that report
    one, on workflows of that repository (a workflow's repository is its creation's) that
    the filters keep. Runs of workflows whose pr_created is unknown have no repository and
    are left out."""
    filters = filters or {}
    out: dict[tuple[int, str], list[float]] = {}
    for (i, _name, metric, team, repo), (total, n) in sums.items():
        if metric != COVERAGE or not repo or not in_scope((None, team, repo), filters):
            continue
        acc = out.setdefault((i, repo), [0.0, 0])
        acc[0] += total
        acc[1] += n
    return [{"t": fmt_ms(cuts[i]), "end": fmt_ms(cuts[i + 1]), "repository": repo, "coverage": total / n, "runs": n}
            for (i, repo), (total, n) in sorted(out.items())]


# --- achievements ---------------------------------------------------------------------------

REVIEW_MILESTONES = ((1, "first_review", "Completed your first review"),
                     (10, "reviews_10", "Completed 10 reviews"),
                     (50, "reviews_50", "Completed 50 reviews"),
                     (100, "reviews_100", "Completed 100 reviews"))
GATES_PASSED_TARGET = 50
CLEAN_WEEK_DAYS = 7


def achievements(review_times: Iterable[int], days: list[tuple[int, int, int, int]], end: int) -> list[Row]:
    """A developer's milestones from their own events.

    `review_times`: when each of their `review_completed` happened (ms); `days`: per UTC day,
    oldest first, (day start, day end, gate runs on their pull requests, of which passed).
    Rows: milestone, description, achieved, progress, target, at (when it was reached: the
    review's time; for day-based milestones the end of the day it was reached, capped at `end`).
    """
    times = sorted(review_times)
    out: list[Row] = []
    for target, key, text in REVIEW_MILESTONES:
        done = len(times) >= target
        out.append({"milestone": key, "description": text, "achieved": done, "progress": min(len(times), target),
                    "target": target, "at": fmt_ms(times[target - 1]) if done else None})
    # A clean week: 7 days in a row with gate runs on your pull requests and no failure.
    run = streak_runs = 0
    best_at: int | None = None
    for start, stop, runs, passed in days:
        if runs > passed:
            run = streak_runs = 0
            continue
        run += 1
        streak_runs += runs
        if run >= CLEAN_WEEK_DAYS and streak_runs and best_at is None:
            best_at = min(stop, end)
    out.append({"milestone": "clean_week", "description": "A week without a failed gate on your pull requests",
                "achieved": best_at is not None, "progress": min(run, CLEAN_WEEK_DAYS) if best_at is None
                else CLEAN_WEEK_DAYS, "target": CLEAN_WEEK_DAYS, "at": fmt_ms(best_at) if best_at else None})
    passed_total, reached = 0, None
    for start, stop, runs, passed in days:
        passed_total += passed
        if reached is None and passed_total >= GATES_PASSED_TARGET:
            reached = min(stop, end)
    out.append({"milestone": "gates_passed_50", "description": "50 gate runs passed on your pull requests",
                "achieved": reached is not None, "progress": min(passed_total, GATES_PASSED_TARGET),
                "target": GATES_PASSED_TARGET, "at": fmt_ms(reached) if reached else None})
    return out


def day_cuts(s: int, e: int) -> list[int]:
    """s, every UTC midnight strictly inside (s, e), e."""
    first = (s // DAY_MS + 1) * DAY_MS
    return [s] + list(range(first, e, DAY_MS)) + [e]


# --- skill development -----------------------------------------------------------------

def skill_rows(per_step: list[dict[str, int]], cuts: list[int]) -> list[Row]:
    """Defects found on the developer's pull requests per step and category (`per_step[i]`:
    category -> count in [cuts[i], cuts[i+1])). Every category seen in the window gets a row
    in every step (0 where none was found then); no category at all gives no rows."""
    cats = sorted({c for counts in per_step for c, n in counts.items() if n})
    return [{"t": fmt_ms(cuts[i]), "end": fmt_ms(cuts[i + 1]), "category": c, "defects": counts.get(c, 0)}
            for i, counts in enumerate(per_step) for c in cats]


# --- annotations ------------------------------------------------------------------------

def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def configuration_annotations(events: Iterable[dict[str, Any]]) -> list[Row]:
    """`system.configuration_changed` events (already sanitised for the viewer) as markers:
    who changed which key, from what to what (fields the viewer may not see stay out)."""
    out = []
    for ev in events:
        d = ev.get("data") or {}
        key = d.get("key")
        what = str(key) if key is not None else "configuration"
        if "old" in d or "new" in d:
            what += f": {_short(d.get('old')) if 'old' in d else '…'} → {_short(d.get('new')) if 'new' in d else '…'}"
        out.append({"t": ev.get("timestamp"), "kind": "configuration", "title": f"Configuration changed: {key}",
                    "who": d.get("changed_by"), "what": what, "id": ev.get("id")})
    return out


def alert_annotations(transitions: Iterable[dict[str, Any]], s: int, e: int) -> list[Row]:
    """Alert firings (history transitions to `firing`) in [s, e) as markers."""
    out = []
    for t in transitions:
        at = t.get("at")
        if t.get("kind", "transition") != "transition" or t.get("to") != "firing" or not isinstance(at, int) \
                or not s <= at < e:
            continue
        labels = ", ".join(f"{k}={v}" for k, v in sorted((t.get("labels") or {}).items()))
        what = f"value {t.get('value')!r}" + (f" ({t['threshold_text']})" if t.get("threshold_text") else "")
        out.append({"t": fmt_ms(at), "kind": "alert",
                    "title": f"Alert firing: {t.get('rule')}" + (f" [{labels}]" if labels else ""),
                    "who": None, "what": what, "id": t.get("id"), "severity": t.get("severity")})
    return out
