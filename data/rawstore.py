"""The events behind a KPI (drill-down and CSV): raw events indexed by type and day.

A drill-down reads only the index entries of the window for the KPI's event types, so
its cost follows the rows returned, not the size of the store.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable

import orjson
import redis

from data.events import GATE_TYPES
from data.keys import Keys
from data.timeutil import DAY_MS

WF = "workflow."
_COMPLETION = (WF + "completed", WF + "pr_created")
_WF_STATE = (WF + "pr_created", WF + "step_entered", WF + "completed")
_AGENTS = ("system.agent_status_changed",)

# KPI id -> event types whose events are "behind" it.
SOURCES: dict[str, tuple[str, ...]] = {
    "gate_pass_rate": GATE_TYPES, "total_gates_executed": GATE_TYPES, "gates_passed": GATE_TYPES,
    "gates_failed": GATE_TYPES, "average_gate_time": GATE_TYPES,
    "defect_detection_rate": (WF + "defect_found",), "defects_found": (WF + "defect_found",),
    "false_positive_rate": (WF + "defect_resolved",),
    "defect_resolution_time": (WF + "defect_resolved", WF + "defect_found"),
    "critical_defects": (WF + "defect_found", WF + "defect_resolved"),
    "compliance_adherence": (WF + "compliance_checked",), "compliance_checks_passed": (WF + "compliance_checked",),
    "policy_violations": (WF + "compliance_checked",),
    "remediation_pending": (WF + "compliance_checked", WF + "violation_remediated"),
    "overall_quality_score": (*GATE_TYPES, WF + "defect_found", WF + "defect_resolved", WF + "compliance_checked"),
    "average_review_cycle_time": (WF + "review_started", WF + "review_completed"),
    "workflow_completion_rate": (WF + "completed",), "sla_adherence": _COMPLETION, "time_to_merge": _COMPLETION,
    "defect_prevention_rate": (WF + "completed", WF + "defect_found"),
    "audit_readiness_score": (WF + "completed", WF + "step_entered", WF + "compliance_checked"),
    "agent_utilization_rate": _AGENTS, "cost_per_review": (WF + "review_completed",),
    "developer_satisfaction": ("user.survey_submitted",), "process_adoption_rate": (WF + "pr_created",),
    "total_active_reviews": _WF_STATE, "pending_dor_validations": _WF_STATE, "in_progress_reviews": _WF_STATE,
    "awaiting_dod_validation": _WF_STATE, "final_approvals_needed": _WF_STATE,
    "suggested_reviews": (*_WF_STATE, WF + "review_started"),
    "total_agents": _AGENTS, "active_agents": _AGENTS, "overloaded_agents": _AGENTS, "idle_agents": _AGENTS,
    "down_agents": _AGENTS, "agents_in_training": _AGENTS, "error_rate": ("system.error_occurred",),
    "pending_reviews": (WF + "review_started", WF + "review_completed"),
    "completed_today": (WF + "review_completed",),
    "average_feedback_time": (WF + "review_started", WF + "review_completed"),
    "quality_score_trend": GATE_TYPES, "team_velocity": (WF + "completed",),
    "skill_development_areas": (WF + "defect_found",),
}
REVIEWER_FILTERED = {"pending_reviews", "completed_today", "average_feedback_time"}


def sources(kpi_id: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """Event types behind a KPI, and a data-field filter for per-entity KPIs."""
    if kpi_id.startswith("queue_depth."):
        return ("system.queue_depth_updated",), {"queue": kpi_id[len("queue_depth."):]}
    if kpi_id.startswith("gate."):
        return GATE_TYPES, {"gate_name": kpi_id[len("gate."):].rsplit(".", 1)[0]}
    if kpi_id in SOURCES:
        return SOURCES[kpi_id], {}
    raise KeyError(kpi_id)


def events_between(r: redis.Redis, keys: Keys, types: Iterable[str], s: int, e: int, limit: int,
                   where: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Events of `types` with timestamp in [s, e), oldest first, at most `limit`.

    Returns (events, truncated)."""
    types = list(types)
    days = list(range(s // DAY_MS, (e - 1) // DAY_MS + 1))
    with r.pipeline(transaction=False) as p:
        for day in days:
            for t in types:
                p.zrangebyscore(keys.raw_index(t, day), s, f"({e}", withscores=True)
        res = p.execute()
    hits: list[tuple[float, int, bytes]] = []
    i = 0
    for day in days:
        for _t in types:
            hits += [(score, day, member) for member, score in res[i]]
            i += 1
    hits.sort()
    out: list[dict[str, Any]] = []
    truncated = False
    chunk = max(limit, 500)
    pos = 0
    while pos < len(hits) and len(out) < limit:
        part = hits[pos:pos + chunk]
        pos += chunk
        with r.pipeline(transaction=False) as p:
            for _score, day, member in part:
                p.hget(keys.raw(day), member)
            bodies = p.execute()
        for body in bodies:
            if body is None:
                continue
            ev = orjson.loads(body)
            if where and any((ev.get("data") or {}).get(k) != v for k, v in where.items()):
                continue
            if len(out) >= limit:
                truncated = True
                break
            out.append(ev)
    if pos < len(hits):
        truncated = True
    return out, truncated


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    if text.startswith(_DANGEROUS):
        text = "'" + text
    return text


def flat_row(ev: dict[str, Any]) -> dict[str, Any]:
    """One event as a flat table row: id, type, timestamp, source, priority, data.<field>."""
    row: dict[str, Any] = {"id": ev.get("id"), "type": ev.get("type"), "timestamp": ev.get("timestamp"),
                           "source": ev.get("source"), "priority": (ev.get("metadata") or {}).get("priority")}
    for k, v in (ev.get("data") or {}).items():
        row["data." + k] = orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v
    return row


def rows_csv(rows: list[list[Any]]) -> str:
    """Rows (the first is the header) as CSV, every cell escaped like csv_cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in rows:
        w.writerow([csv_cell(c) for c in row])
    return buf.getvalue()


def events_csv(events: list[dict[str, Any]]) -> str:
    data_cols = sorted({k for ev in events for k in (ev.get("data") or {})})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "type", "timestamp", "source", "priority"] + ["data." + c for c in data_cols])
    for ev in events:
        d = ev.get("data") or {}
        meta = ev.get("metadata") or {}
        w.writerow([csv_cell(ev.get("id")), csv_cell(ev.get("type")), csv_cell(ev.get("timestamp")),
                    csv_cell(ev.get("source")), csv_cell(meta.get("priority"))] + [csv_cell(d.get(c)) for c in data_cols])
    return buf.getvalue()


def workflows_in_scope(r: redis.Redis, keys: Keys, dimension: str, value: str, before_ms: int,
                       retention_days: int) -> set[str]:
    """Workflow ids whose creation (earliest `pr_created` still kept as a raw event) names
    that repository or team: what a drill-down of a filtered KPI keeps."""
    field = {"repository": "repository", "team": "team"}[dimension]
    start = before_ms - retention_days * DAY_MS
    created, _ = events_between(r, keys, ("workflow.pr_created",), start, before_ms, 1_000_000)
    first: dict[str, Any] = {}
    for ev in created:                   # oldest first: the first one seen is the creation
        first.setdefault(ev["data"]["workflow_id"], ev["data"].get(field))
    return {wf for wf, v in first.items() if v == value}
