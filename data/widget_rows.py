"""The rows each dashboard widget shows, as a table: the data behind `GET
/api/widgets/{id}/data` and every widget's CSV export. Pure: from data.panels.panel_data's
result to (columns, rows); the caller sanitises and formats."""
from __future__ import annotations

from typing import Any, Callable

from components.quality import gates_from_kpis
from data.contrib import MICRO
from data.rawstore import flat_row

Table = tuple[list[str], list[dict[str, Any]]]


def _series(*series: dict[str, Any]) -> Table:
    rows = [{"metric": s["metric"], "unit": s["unit"], "start": p["t"], "end": p["end"], "value": p["value"]}
            for s in series for p in s["points"]]
    return ["metric", "unit", "start", "end", "value"], rows


def _records(items: list[dict[str, Any]] | None, columns: list[str] | None = None) -> Table:
    items = items or []
    cols = columns or sorted({k for row in items for k in row})
    return cols, [{c: row.get(c) for c in cols} for row in items]


def _mapping(name: str, value: str, d: dict[str, Any]) -> Table:
    return [name, value], [{name: k, value: v} for k, v in sorted(d.items())]


def cost_rows(split: dict[str, dict[str, dict[str, int]]]) -> Table:
    """Per team and repository: reviews, their cost and the cost per review (USD)."""
    rows = [{"dimension": dim, "name": name, "reviews": v["rc"], "cost_usd": v["cost"] / MICRO,
             "cost_per_review_usd": v["cost"] / MICRO / v["rc"] if v["rc"] else None}
            for dim in ("team", "repository") for name, v in sorted(split.get(dim, {}).items())]
    return ["dimension", "name", "reviews", "cost_usd", "cost_per_review_usd"], rows


def _pipeline(data: dict[str, Any]) -> Table:
    steps = ("pending_dor_validations", "in_progress_reviews", "awaiting_dod_validation", "final_approvals_needed")
    return ["step", "active_workflows"], [{"step": s, "active_workflows": (data["kpis"].get(s) or {}).get("current_value")}
                                          for s in steps]


def _health(data: dict[str, Any]) -> Table:
    rows = [{"check": name, "status": c.get("status"),
             "detail": ", ".join(f"{k}={v}" for k, v in c.items() if k != "status")}
            for name, c in sorted(data["health"]["checks"].items())]
    return ["check", "status", "detail"], rows


def _roi(data: dict[str, Any]) -> Table:
    roi = data["roi"]
    row = {k: roi[k] for k in ("reviews", "cost_usd", "saved_usd", "roi_pct")}
    row.update({f"assumption_{k}": v for k, v in roi["assumptions"].items()})
    return list(row), [row]


def _defect_mix(data: dict[str, Any]) -> Table:
    rows = [{"dimension": dim, "value": k, "defects": n}
            for dim, counts in sorted(data["defect_breakdown"].items()) for k, n in sorted(counts.items())]
    return ["dimension", "value", "defects"], rows


def _compliance(data: dict[str, Any]) -> Table:
    return _records(data["violations"], ["workflow_id", "policy", "failed_checks", "since"])


# widget id -> (dashboard, title, rows)
WIDGETS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Table]]] = {
    "exec-trends": ("executive", "Quality trends", lambda d: _series(*d["trends"])),
    "exec-cost": ("executive", "Cost per review", lambda d: _series(d["cost"])),
    "exec-teams": ("executive", "Team performance", lambda d: _mapping("team", "merged", d["teams"])),
    "exec-cost-split": ("executive", "Review cost by team and repository", lambda d: cost_rows(d["cost_split"])),
    "exec-roi": ("executive", "Return on investment", _roi),
    "exec-risks": ("executive", "Risk assessment", lambda d: _records(d["risks"], ["name", "kpi", "value", "likelihood",
                                                                                    "impact", "status"])),
    "ops-pipeline": ("operational", "Workflow pipeline", _pipeline),
    "ops-queues": ("operational", "Queue monitor", lambda d: _records(d["queues"], ["queue", "depth", "since"])),
    "ops-agents": ("operational", "Agents", lambda d: _records(d["agents"], ["agent_id", "status", "load", "skills",
                                                                             "since"])),
    "ops-health": ("operational", "System health", _health),
    "ops-errors": ("operational", "Errors per hour", lambda d: _series(d["errors"])),
    "ops-error-log": ("operational", "Recent errors", lambda d: _records(
        [flat_row(e) for e in d["error_log"]], ["timestamp", "data.component", "data.error_type", "data.severity",
                                                "data.message", "source", "id"])),
    "qa-gates": ("qa", "Quality gate performance", lambda d: _records(gates_from_kpis(d["kpis"]),
                                                                       ["gate", "pass_rate", "executions", "p95_time"])),
    "qa-compliance": ("qa", "Open compliance violations", _compliance),
    "qa-defects": ("qa", "Defects found over time", lambda d: _series(d["defects"])),
    "qa-defect-mix": ("qa", "Defects by severity, category and stage", _defect_mix),
    "qa-risks": ("qa", "Risk matrix", lambda d: _records(d["risks"], ["name", "kpi", "value", "likelihood", "impact",
                                                                        "status"])),
    "dev-queue": ("developer", "My review queue", lambda d: _records(d.get("my_reviews"), ["workflow_id", "since"])),
    "dev-suggested": ("developer", "Suggested reviews", lambda d: _records(d.get("suggested"), [
        "workflow_id", "repository", "author", "step_since"])),
    "dev-kanban": ("developer", "My open pull requests", lambda d: _records(d.get("my_prs"), [
        "workflow_id", "repository", "pr_number", "step", "step_since", "created"])),
}


# Widgets that show the newest rows of a KPI's drill-down: their export is that whole drill-down.
DRILLDOWN_EXPORTS = {"ops-error-log": "error_rate"}


def dashboard_of_widget(widget_id: str) -> str | None:
    entry = WIDGETS.get(widget_id)
    return entry[0] if entry else None


def widget_table(widget_id: str, data: dict[str, Any]) -> Table:
    return WIDGETS[widget_id][2](data)
