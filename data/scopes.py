"""Dashboards filtered by repository or team.

A workflow knows its repository and team (from its `pr_created`), so the aggregator writes
the workflow's contributions a second time under `r:<repository>` and `t:<team>` in the
SCOPE family (data.contrib._scoped). Here a fetched Span is turned into a view where MAIN
and LATE hold one scope's fields, so the unchanged formulas of data.kpis compute the
filtered KPIs. Only KPIs whose every input is a workflow fact can be filtered; the others
(agents, surveys, defect resolutions, per-gate times) stay unfiltered and say so.
"""
from __future__ import annotations

from typing import Any

from data.contrib import LATE, MAIN, SCOPE
from data.rollups import Span

DIMENSIONS = {"repository": "r", "team": "t"}

SCOPED_KPIS = frozenset({
    # executive
    "gate_pass_rate", "defect_detection_rate", "compliance_adherence", "average_review_cycle_time",
    "workflow_completion_rate", "sla_adherence", "time_to_merge", "process_adoption_rate", "cost_per_review",
    # operational
    "total_active_reviews", "pending_dor_validations", "in_progress_reviews", "awaiting_dod_validation",
    "final_approvals_needed",
    # QA
    "total_gates_executed", "gates_passed", "gates_failed", "defects_found", "defect_prevention_rate",
    "compliance_checks_passed", "audit_readiness_score", "policy_violations",
})


def label(dimension: str, value: str) -> str:
    """'repository', 'api' -> 'r:api' (the prefix the aggregator writes)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown filter {dimension!r}")
    return f"{DIMENSIONS[dimension]}:{value}"


def _split(row: dict[str, int], prefix: str) -> tuple[dict[str, int], dict[str, int]]:
    main: dict[str, int] = {}
    late: dict[str, int] = {}
    n = len(prefix)
    for f, v in row.items():
        if f.startswith(prefix):
            rest = f[n:]
            if rest.startswith("L|"):
                late[rest[2:]] = v
            else:
                main[rest] = v
    return main, late


def view(span: Span, scope: str) -> Span:
    """The span as one scope sees it: MAIN and LATE read from that scope's SCOPE fields."""
    def make() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        prefix = scope + "|"
        rows = [_split(row, prefix) for row in span.values.get(SCOPE, [])]
        tot_main, tot_late = _split(span.totals.get(SCOPE, {}), prefix)
        return ({MAIN: [m for m, _ in rows], LATE: [lt for _, lt in rows]}, {MAIN: tot_main, LATE: tot_late},
                {MAIN: {}, LATE: {}})
    # Made once per read of the SCOPE buckets (SpanCache), with its own sums shared likewise:
    # every filtered card of a page used to split every bucket again.
    values, totals, memo = span.derived(SCOPE, ("view", scope), make)
    return Span(span.buckets, values, totals, memo)


def cost_by_scope(span: Span, s: int, e: int) -> dict[str, dict[str, dict[str, int]]]:
    """Reviews and their cost (micro-dollars) in [s, e) per team and per repository:
    {"team": {name: {"rc": n, "cost": µ$}}, "repository": {...}}."""
    names = {v: k for k, v in DIMENSIONS.items()}
    out: dict[str, dict[str, dict[str, int]]] = {"team": {}, "repository": {}}
    for f, v in span.sums(SCOPE, s, e).items():
        label, _, field = f.rpartition("|")
        if field in ("rc", "cost") and v and label[:2] in ("r:", "t:"):
            out[names[label[0]]].setdefault(label[2:], {"rc": 0, "cost": 0})[field] += v
    return out
