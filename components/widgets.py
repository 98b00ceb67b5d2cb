"""The widget registry: the seed's widget type names (§4.1) → the functions that draw them.

The functions live in `charts` (metrics, agents), `ops` (workflow), `quality`, `system`,
`developer` (team and developer views) and `tables` (any rows, labelled numbers) and are
re-exported here; every type of dashboards.schema.WIDGET_TYPES has one. A dashboard
definition's widget is drawn from its data sources' frames by components.render. `render(type_name, data, **kw)` draws any of them from the
`data` an API widget carries, so a page can lay out a dashboard configuration without
knowing each function's signature. Every widget shows "no data" when it has none.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from dash import html

from components.charts import (comparison_chart, gauge_chart, metric_trend, performance_radar, progress_bar,
                               workload_heatmap)
from components.common import number, placeholder
from components.developer import achievement_tracker, skill_development, team_collaboration
from components.kpi import kpi_card
from components.ops import agent_status_grid, kanban_board, pipeline_visualizer, queue_monitor, timeline_view
from components.quality import (code_quality, compliance_status, defect_distribution, gate_performance, gate_table,
                                risk_matrix, test_coverage)
from components.system import alert_summary, audit_log, error_log_viewer, system_health
from components.tables import stat_group, table

REGISTRY: dict[str, Callable[..., Any]] = {
    # metrics_widgets
    "kpi_card": kpi_card, "metric_trend": metric_trend, "gauge_chart": gauge_chart, "progress_bar": progress_bar,
    "comparison_chart": comparison_chart,
    # workflow_widgets
    "pipeline_visualizer": pipeline_visualizer, "queue_monitor": queue_monitor, "timeline_view": timeline_view,
    "kanban_board": kanban_board,
    # agent_widgets (skill_matrix: agents × skills is what the heatmap draws from agent rows)
    "agent_status_grid": agent_status_grid, "workload_heatmap": workload_heatmap, "skill_matrix": workload_heatmap,
    "performance_radar": performance_radar,
    # quality_widgets (quality_trends: quality KPIs over time)
    "quality_trends": metric_trend, "defect_distribution": defect_distribution, "gate_performance": gate_performance,
    "compliance_status": compliance_status, "risk_assessment": risk_matrix, "risk_matrix": risk_matrix,
    "gate_table": gate_table, "code_quality": code_quality, "test_coverage": test_coverage,
    # system_widgets
    "system_health": system_health, "error_log_viewer": error_log_viewer, "alert_summary": alert_summary,
    "audit_log": audit_log,
    # developer and team
    "team_collaboration": team_collaboration, "achievement_tracker": achievement_tracker,
    "skill_development": skill_development,
    # generic
    "table": table, "stat_group": stat_group,
}


class UnknownWidget(KeyError):
    """A widget type that is not in REGISTRY (a typo in a dashboard configuration)."""


def _kpi(data: Any, *, id: Any = None, kpi_id: str | None = None, mode: str = "light") -> Any:
    # `data` is a KPI card's data, or the whole API widget {"id", "type", "data"}.
    if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
        kpi_id, data = kpi_id or str(data.get("id")), data["data"]
    if not isinstance(data, Mapping) or all(v is None for v in data.values()):
        return placeholder("kpi_card", id=id)
    card = kpi_card(kpi_id or "kpi", dict(data))
    return html.Div(card, id=id, className="h-100") if id is not None else card


def _gauge(data: Any, **kw: Any) -> Any:
    if isinstance(data, Mapping):
        kw.setdefault("unit", data.get("unit"))
        kw.setdefault("thresholds", data.get("thresholds"))
        if data.get("title") and "title" not in kw:
            kw["title"] = data["title"]
        return gauge_chart(number(data), **kw)
    return gauge_chart(data, **kw)


def _progress(data: Any, **kw: Any) -> Any:
    if isinstance(data, Mapping):
        kw.setdefault("unit", data.get("unit"))
        if data.get("label"):
            kw.setdefault("label", data["label"])
        return progress_bar(number(data), data.get("target", kw.pop("target", None)), **kw)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return progress_bar(data[0], data[1], **kw)
    return progress_bar(data, kw.pop("target", None), **kw)


_ADAPTERS: dict[str, Callable[..., Any]] = {"kpi_card": _kpi, "gauge_chart": _gauge, "progress_bar": _progress}


def render(type_name: str, data: Any, **kw: Any) -> Any:
    """Draw widget `type_name` from its `data`; keyword arguments (mode, id, title,
    thresholds…) go to the widget function."""
    if type_name not in REGISTRY:
        raise UnknownWidget(type_name)
    adapter = _ADAPTERS.get(type_name)
    return adapter(data, **kw) if adapter else REGISTRY[type_name](data, **kw)


def render_widget(widget: Mapping[str, Any], **kw: Any) -> Any:
    """Draw an API widget {"id", "type", "data"}; its id becomes the KPI id of a kpi_card."""
    if widget.get("type") == "kpi_card":
        return _kpi(widget.get("data"), kpi_id=str(widget.get("id")), **kw)
    return render(str(widget.get("type")), widget.get("data"), **kw)


__all__ = ["REGISTRY", "UnknownWidget", "render", "render_widget", *sorted({f.__name__ for f in REGISTRY.values()})]
