"""The drill-down page's pieces from plain data: AG Grid columns for a KPI's rows (every
data field in its own column, ids linking to their pages, times in the viewer's format),
rows flattened for the grid, and the count line that states the card's value."""
from __future__ import annotations

from typing import Any, Iterable

import orjson

from components.kpi import format_value, title_of
from components.links import FIELD_KINDS, link_column
from data.drilldown import Row, Spec
from data.exports import drilldown_columns, flat, label

# What one row of a KPI is, for the count line ("18 open critical defects").
NOUNS: dict[str, str] = {
    "critical_defects": "open critical defects", "remediation_pending": "failed checks waiting for remediation",
    "pending_reviews": "reviews you started and have not completed",
    "suggested_reviews": "workflows in code review that nobody has started reviewing",
    "total_active_reviews": "active workflows", "pending_dor_validations": "active workflows in DoR validation",
    "in_progress_reviews": "active workflows in code review", "awaiting_dod_validation": "active workflows in DoD validation",
    "final_approvals_needed": "active workflows in final approval", "total_agents": "agents with a known status",
    "active_agents": "active agents", "overloaded_agents": "overloaded agents", "idle_agents": "idle agents",
    "down_agents": "agents down", "agents_in_training": "agents in training", "error_rate": "errors",
    "total_gates_executed": "gate runs", "gates_passed": "gate runs passed", "gates_failed": "gate runs failed",
    "defects_found": "defects found", "policy_violations": "failed compliance checks",
    "completed_today": "reviews completed since midnight (UTC)", "team_velocity": "merges of your team",
    "average_review_cycle_time": "first approvals", "cost_per_review": "reviews", "time_to_merge": "merges",
    "developer_satisfaction": "survey answers", "average_gate_time": "timed gate runs",
    "defect_resolution_time": "resolutions", "average_feedback_time": "reviews you completed",
    "skill_development_areas": "categorised defects on your pull requests",
}
# A percentage's rows and what puts one in the numerator ("2 of 3 gate runs passed = 66.7%").
PERCENT: dict[str, tuple[str, str]] = {
    "gate_pass_rate": ("gate runs", "passed"), "defect_detection_rate": ("defects", "were found in review"),
    "false_positive_rate": ("resolutions", "were false positives"),
    "compliance_adherence": ("compliance checks", "passed"), "compliance_checks_passed": ("compliance checks", "passed"),
    "workflow_completion_rate": ("completions", "were merges"),
    "sla_adherence": ("completed workflows", "finished within the SLA"),
    "process_adoption_rate": ("pull requests", "are tracked by the QMS"),
    "defect_prevention_rate": ("merged workflows", "had no production defect"),
    "audit_readiness_score": ("completed workflows", "are ready for audit"),
    "agent_utilization_rate": ("agent hours available", "were busy"),
}
# The viewer's own locale and time zone (the API and the exports stay in UTC ISO 8601).
LOCAL_TIME = {"function": "localTime(params.value)"}     # assets/dashAgGridFunctions.js


def noun(kpi: str) -> str:
    if kpi.startswith("gate."):
        return "timed runs" if kpi.endswith(".p95_time") else "runs"
    if kpi.startswith("queue_depth."):
        return "items waiting"
    return NOUNS.get(kpi, "rows")


def grid_columns(sp: Spec, hidden: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Column defs for AG Grid: every column of the CSV export, ids as links."""
    keys, headers = drilldown_columns(sp, hidden)
    # On screen the event's own fields come right after what the row is; its envelope after them.
    first = ("timestamp", "role", "value", "type")
    last = ("id", "source", "priority", "window", "data.other", "context")
    order = [k for k in first if k in keys] + [k for k in keys if k not in first + last] + [k for k in last if k in keys]
    label_of = dict(zip(keys, headers))
    out: list[dict[str, Any]] = []
    for key in order:
        header = label_of[key]
        if key.startswith("data.") and key != "data.other":
            header = header[5:]
        if key == "value" and not sp.value_unit and sp.kind not in ("level", "list", "percentile"):
            continue
        col: dict[str, Any] = {"field": key, "headerName": header}
        kind = FIELD_KINDS.get(key[5:]) if key.startswith("data.") else None
        if kind:
            col = link_column(key, kind, header)
        if key == "timestamp":
            col.update(headerName="When (your time)", valueFormatter=LOCAL_TIME, minWidth=190, pinned="left")
        elif key == "type":
            col.update(headerName="Type", minWidth=220)
        elif key == "role":
            col.update(headerName="Role", minWidth=130)
        elif key == "value":
            col.update(type="numericColumn", headerName=label("Value", sp.value_unit))
        elif key in ("context", "data.other"):
            col.update(minWidth=260)
        out.append(col)
    return out


def grid_row(row: Row, ev: dict[str, Any], context: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    """A row for the grid: flat, one cell per column, objects as compact text."""
    out = flat(row, ev, context, fields)
    if context:
        out["context"] = "; ".join(f"{c.get('type')} {c.get('timestamp')} ({c.get('id')})" for c in context)
    for k, v in out.items():
        if isinstance(v, (dict, list)):
            out[k] = orjson.dumps(v).decode()
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"    # a value, not a checkbox
    return out


def count_line(kpi: str, sp: Spec, counts: dict[str, Any], value: Any, at: str | None) -> str:
    """How the rows make the card's number, in words: '18 open critical defects at …',
    '1,666 of 2,500 gate runs passed = 66.6%'."""
    shown = format_value(value, sp.unit)
    kind = sp.kind
    if kind in ("count", "state"):
        when = f" at {at} (UTC)" if at and kind == "state" else ""
        return f"{counts['counted']:,} {noun(kpi)}{when}"
    if kind == "level":
        return f"{counts['counted']:,} {noun(kpi)} at {at} (UTC), from the latest depth reported before then"
    if kind == "percentage":
        num, den = counts["numerator"], counts["denominator"]
        rows, what = ("gate runs", "passed") if kpi.startswith("gate.") else PERCENT.get(kpi, ("rows", "count"))
        if sp.weighted:
            return f"{num:,.2f} of {den:,.2f} {rows} {what} = {shown}"
        return f"{num:,} of {den:,} {rows} {what} = {shown}"
    if kind == "mean":
        return f"{counts['rows']:,} {noun(kpi)}, mean {shown}"
    if kind == "percentile":
        return f"{counts['rows']:,} {noun(kpi)}: the 95th percentile (row {counts['rank']:,} by time) is {shown}"
    if kind == "rate":
        if "hours" in counts:
            return f"{counts['counted']:,} {noun(kpi)} in {counts['hours']:g} h = {shown}"
        return f"{counts['counted']:,} {noun(kpi)} in {counts['days']:g} days = {shown}"
    if kind == "difference":
        now, before = counts["current"], counts["previous"]
        return (f"gate runs passed on your pull requests: {now['numerator']:,} of {now['denominator']:,} in this "
                f"window, {before['numerator']:,} of {before['denominator']:,} in the one before = {shown}")
    if kind == "list":
        return f"{counts['counted']:,} {noun(kpi)}; most frequent: {shown}"
    if kind == "composite":
        return f"{title_of(kpi)} = {shown}: the mean of its parts below"
    return shown
