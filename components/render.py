"""One renderer: any widget of a dashboard definition, drawn from plain pandas frames.

`render(widget, frames, mode=, context=, annotations=, id=)` adapts the frames of the widget's
data sources (the B → C contract in dashboards.sources: kpi, series, drilldown, breakdown,
state and computed frames) to the widget functions of components.charts / ops / quality /
system / developer / tables / kpi, then gives every figure what a dashboard needs: the
light or dark template, a legend below the plot, few ticks on time axes, the widget's display
options, and annotations (configuration changes, alert firings) on every time series.

Rules: no frame, an empty frame or only missing values → the "no data" placeholder; a frame
without the columns a widget reads → the placeholder saying which column is missing; never
an exception (anything unexpected is logged and drawn as a placeholder). `not_permitted`
is the body of a widget whose data source the viewer may not read: it names the permission
and holds no data.
"""
from __future__ import annotations

import logging
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from dash import dcc, html

from components import charts, developer, ops, quality, system, tables
from components.charts import add_annotations, level, phone_friendly
from components.common import GL_THRESHOLD, merge, number, placeholder, walk
from components.kpi import events_href, kpi_card, title_of
from dashboards.schema import Widget
from data.timeutil import fmt_ms

log = logging.getLogger(__name__)

# Widgets drawn over a time axis: they get annotations and few ticks.
TIME_SERIES = frozenset({"metric_trend", "quality_trends", "code_quality", "test_coverage", "skill_development",
                         "error_log_viewer", "timeline_view"})
# Colour schemes (display_options.color_scheme) as Plotly colourways; "default"/"status_based"
# keep the theme's. Okabe–Ito: distinguishable with the common colour-vision deficiencies.
COLORWAYS = {
    "colorblind": ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"],
    "monochrome": {"light": ["#1e293b", "#475569", "#64748b", "#94a3b8", "#cbd5e1"],
                   "dark": ["#f1f5f9", "#cbd5e1", "#94a3b8", "#64748b", "#475569"]},
}
_DIRECTION_SIDE = {"higher_is_better": "below", "lower_is_better": "above"}


def live_value_id(v: Any, metric: str) -> dict[str, Any]:
    """The id of a KPI card's value, which assets/live.js finds to push new values into: the
    widget keeps two cards of one KPI apart, "r" asks for money rounded as the card shows it,
    "tf" pins a card to its source's own timeframe (the page's pushes leave it alone)."""
    out: dict[str, Any] = {"type": "kpi-value", "kpi": metric, "w": v.widget.id}
    if v.round_money:
        out["r"] = 1
    own = next((ds.timeframe for ds in v.widget.data_sources if ds.source == "kpi" and ds.timeframe), None)
    if own:
        out["tf"] = own
    return out


class Unusable(ValueError):
    """Frames a widget cannot draw; the message is the short reason its placeholder shows."""


# ---------------------------------------------------------------- frames → plain rows

def iso(ts: Any) -> str | None:
    """A time as the ISO text the widgets read ('2025-08-17T06:00:00Z', UTC; naive = UTC)."""
    if type(ts) is pd.Timestamp and ts.tzinfo is not None and not ts.microsecond % 1000:
        # A frame's instants (UTC, whole milliseconds): the data layer's own formatting,
        # cached by second, instead of a strftime per cell (86,000 a hundred cold pages).
        return fmt_ms(ts.value // 1_000_000)
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError):
        return None
    if pd.isna(t):
        return None
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    ms = f".{t.microsecond // 1000:03d}" if t.microsecond else ""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ms + "Z"


def clean(v: Any) -> Any:
    """A frame value as plain Python: NaN/NaT/NA → None, numpy scalars → Python, times → ISO text,
    arrays → lists."""
    t = type(v)
    if t is str or t is int or t is bool:          # most cells: nothing to do
        return v
    if t is float:
        return None if v != v else v
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, (pd.Timestamp, datetime, np.datetime64)):
        return iso(v)
    if isinstance(v, np.ndarray):
        return [clean(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    return v


def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """A frame's rows as plain dicts (see `clean`)."""
    if frame is None or not isinstance(frame, pd.DataFrame) or frame.empty:
        return []
    # One object array (the values frame.to_dict("records") gives, without its per-row
    # boxing; and without a Series per column, each of which deep-copied the frame's attrs —
    # its extra frames included: a twelfth of a cold page's draw).
    names = [str(c) for c in frame.columns]
    return [{k: clean(v) for k, v in zip(names, row)} for row in frame.to_numpy(dtype=object).tolist()]


def events(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Drill-down rows (timestamp, type, id, source, workflow_id, data.*) as events {…, data: {…}}."""
    out = []
    for r in records(frame):
        data = {k[5:]: v for k, v in r.items() if k.startswith("data.")}
        if isinstance(r.get("data"), Mapping):
            data = {**r["data"], **data}
        ev = {k: v for k, v in r.items() if not k.startswith("data.") and k != "data"}
        if ev.get("workflow_id") is not None:
            data.setdefault("workflow_id", ev["workflow_id"])
        out.append({**ev, "data": data})
    return out


def need(frame: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise Unusable(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")


def has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


# ---------------------------------------------------------------- what a widget is drawn with

@dataclass
class View:
    widget: Widget
    frames: list[pd.DataFrame]
    mode: str
    context: Mapping[str, Any]
    id: Any
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def options(self) -> Any:
        return self.widget.display_options

    @property
    def round_money(self) -> bool:
        own = self.options.round_money
        return own if own is not None else self.context.get("dashboard") == "executive"

    def unit(self, frame: pd.DataFrame | None = None, row: Mapping[str, Any] | None = None) -> str | None:
        """The unit labels show: the widget's override, the row's, the frame's."""
        return (self.options.unit or (row or {}).get("unit")
                or (frame.attrs.get("unit") if frame is not None else None))

    def thresholds(self, metric_direction: str | None = None,
                   default: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """alert_thresholds as {"warning", "critical", "direction"}: the widget's direction, else
        the metric's (higher is better: below the thresholds is bad), else the ordering decides."""
        t = self.widget.alert_thresholds
        if t is None or (t.warning is None and t.critical is None):
            return dict(default) if default else None
        return {"warning": t.warning, "critical": t.critical,
                "direction": t.direction or _DIRECTION_SIDE.get(metric_direction or "")}

    def first(self, *columns: str) -> pd.DataFrame:
        """The first frame holding `columns` (else the first frame, checked: says what is missing)."""
        for f in self.frames:
            if has(f, *columns):
                return f
        need(self.frames[0], *columns)
        return self.frames[0]           # pragma: no cover (need raised)

    def source_name(self, i: int = 0) -> str | None:
        ds = self.widget.data_sources
        return (ds[i].name or ds[i].metric) if i < len(ds) else None


# ---------------------------------------------------------------- per type

def _series(v: View) -> list[dict[str, Any]]:
    """Series frames (metric, unit, t, end, value, partial) as metric_trend's series, one per metric."""
    out = []
    for i, f in enumerate(v.frames):
        need(f, "t", "value")
        rows = records(f)
        metrics = dict.fromkeys(r.get("metric") for r in rows)
        for m in metrics:
            pts = [r for r in rows if r.get("metric") == m]
            pts.sort(key=lambda r: str(r.get("t")))
            out.append({"metric": m or v.source_name(i) or "value", "unit": v.unit(f, pts[0]),
                        "points": [{"t": r.get("t"), "end": r.get("end"), "value": r.get("value"),
                                    "partial": bool(r.get("partial"))} for r in pts]})
    return out


def _trend(v: View) -> Any:
    return charts.metric_trend(_series(v), mode=v.mode, id=v.id, chart=v.options.chart or "line",
                               round_money=v.round_money)


def _kpi_row(v: View) -> tuple[pd.DataFrame, dict[str, Any]]:
    f = v.first("value")
    return f, records(f)[0]


def _kpi_card(v: View) -> Any:
    f, row = _kpi_row(v)
    metric = str(row.get("metric") or v.source_name() or v.widget.id)
    unit = v.unit(f, row)
    # text where a number belongs: a number, or no data (lists stay: list-valued KPIs)
    value, previous = (number(x) if isinstance(x, str) else x for x in (row.get("value"), row.get("previous")))
    spark_frame = f.attrs.get("spark")
    spark = None
    if isinstance(spark_frame, pd.DataFrame) and has(spark_frame, "value"):
        spark = charts.sparkline(records(spark_frame), unit=unit, mode=v.mode)
    ctx = v.context
    href = (events_href(metric, ctx.get("timeframe"), ctx.get("scope_query") or "", row.get("filtered"))
            if "drill_down" in v.options.interactions else None)
    card = kpi_card(
        metric, {"current_value": value, "previous_value": previous, "trend": row.get("trend"),
                 "unit": unit},
        href, row.get("filtered") is False, direction=row.get("direction"), sample=row.get("sample"), spark=spark,
        level=level(number(value), v.thresholds(row.get("direction"))), round_money=v.round_money,
        title=v.widget.title, value_id=live_value_id(v, metric))
    return html.Div(card, id=v.id, className="h-100") if v.id is not None else card


def _gauge(v: View) -> Any:
    f = v.first("value")
    rows = records(f)
    if has(f, "t"):                 # a series: its newest finished value
        rows = [r for r in sorted(rows, key=lambda r: str(r.get("t"))) if not r.get("partial")] or rows
    row = rows[-1] if has(f, "t") else rows[0]
    unit = v.unit(f, row)
    return charts.gauge_chart(number(row.get("value")), unit, v.thresholds(row.get("direction")), mode=v.mode,
                              id=v.id)


def _progress(v: View) -> Any:
    f = v.frames[0]
    if has(f, "target"):            # milestones or goals: one bar per row
        rows = records(f)
        value_col = "progress" if has(f, "progress") else "value"
        need(f, value_col)
        bars = [charts.progress_bar(r.get(value_col), r.get("target"), unit=v.unit(f, r), mode=v.mode,
                                    label=str(r.get("milestone") or r.get("name") or r.get("metric") or ""),
                                    thresholds=v.thresholds(r.get("direction")), round_money=v.round_money)
                for r in rows]
        bars = [b for b in bars if "widget-no-data" not in (b.className or "")]
        if not bars:
            return placeholder("progress_bar", id=v.id)
        kw = {"id": v.id} if v.id is not None else {}
        return html.Div(bars, className="d-grid gap-2", **{"data-widget": "progress_bar"}, **kw)
    f, row = _kpi_row(v)
    unit = v.unit(f, row)
    target = v.options.target if v.options.target is not None else (100.0 if unit == "percentage" else None)
    if target is None:
        raise Unusable("no target: set display_options.target")
    return charts.progress_bar(row.get("value"), target, unit=unit, label=title_of(str(row.get("metric") or "")),
                               mode=v.mode, id=v.id, thresholds=v.thresholds(row.get("direction")),
                               round_money=v.round_money)


def _labelled(v: View) -> tuple[list[dict[str, Any]], str | None]:
    """KPI frames (metric, value, previous) or breakdown frames (name, value) as
    [{"label", "value", "previous", "unit", "metric"}] and their unit."""
    items: list[dict[str, Any]] = []
    unit = None
    for f in v.frames:
        need(f, "value")
        for r in records(f):
            if r.get("metric") is not None and not has(f, "name"):
                label, metric = title_of(str(r["metric"])), str(r["metric"])
            else:
                label, metric = str(r.get("name") if r.get("name") is not None else r.get("dimension", "")), None
            u = v.unit(f, r)
            unit = unit or u
            items.append({"label": label, "value": r.get("value"), "previous": r.get("previous"), "unit": u,
                          "metric": metric})
    return items, unit


def _comparison(v: View) -> Any:
    items, unit = _labelled(v)
    return charts.comparison_chart(items, mode=v.mode, id=v.id, unit=unit, round_money=v.round_money)


def _radar(v: View) -> Any:
    items, unit = _labelled(v)
    axes = {i["label"]: i["value"] for i in items}
    compare = {i["label"]: i["previous"] for i in items}
    values = [x for x in (number(a) for a in [*axes.values(), *compare.values()]) if x is not None]
    top = 100.0 if unit in ("percentage", None) and all(x <= 100 for x in values) else max(values or [1]) * 1.1
    has_prev = any(number(x) is not None for x in compare.values())
    return charts.performance_radar(axes, compare=compare if has_prev else None, max_value=top, mode=v.mode, id=v.id)


def _pipeline(v: View) -> Any:
    f = v.frames[0]
    if has(f, "step", "active_workflows"):
        return ops.pipeline_visualizer({r["step"]: r.get("active_workflows") for r in records(f) if r.get("step")},
                                       mode=v.mode, id=v.id)
    if has(f, "workflow_id", "step"):
        return ops.pipeline_visualizer(records(f), mode=v.mode, id=v.id)
    if has(f, "metric", "value"):
        return ops.pipeline_visualizer({str(r["metric"]): r.get("value") for fr in v.frames for r in records(fr)},
                                       mode=v.mode, id=v.id)
    raise Unusable("missing columns: step, active_workflows")


def _queues(v: View) -> Any:
    f = v.frames[0]
    th = v.thresholds(default={"warning": 10, "critical": 20, "direction": "above"}) or {}
    kw = {"warning": th.get("warning"), "critical": th.get("critical"), "direction": th.get("direction") or "above",
          "mode": v.mode, "id": v.id}
    if has(f, "metric", "value") and not has(f, "queue"):
        return ops.queue_monitor({str(r["metric"]): r.get("value") for fr in v.frames for r in records(fr)}, **kw)
    need(f, "queue", "depth")
    return ops.queue_monitor(records(f), **kw)


def _timeline(v: View) -> Any:
    f = v.first("timestamp", "type")
    return ops.timeline_view(events(f), mode=v.mode, id=v.id)


def _kanban(v: View) -> Any:
    f = v.first("workflow_id")
    now = v.context.get("now") or (f.attrs.get("window") or {}).get("end") or datetime.now(timezone.utc)
    return ops.kanban_board(records(f), mode=v.mode, id=v.id, now=iso(now))


def _agents(draw: Callable[..., Any]) -> Callable[[View], Any]:
    def run(v: View) -> Any:
        return draw(records(v.first("agent_id")), mode=v.mode, id=v.id)
    return run


def _defects(v: View) -> Any:
    f = v.frames[0]
    if has(f, "name", "value"):
        dims: dict[str, dict[str, Any]] = {}
        for fr in v.frames:
            need(fr, "name", "value")
            for r in records(fr):
                dims.setdefault(str(r.get("dimension") or "category"), {})[str(r["name"])] = r.get("value")
        return quality.defect_distribution(dims, mode=v.mode, id=v.id)
    if any(c in f.columns for c in ("data.severity", "data.category")):         # defect events
        return quality.defect_distribution(events(f), mode=v.mode, id=v.id)
    if any(c in f.columns for c in ("severity", "category")):                   # defect rows
        return quality.defect_distribution(records(f), mode=v.mode, id=v.id)
    raise Unusable("missing columns: name, value")


def _gate_rows(v: View) -> Any:
    f = v.frames[0]
    if has(f, "gate"):
        return records(f)
    if has(f, "metric", "value"):
        return quality.gates_from_kpis({str(r["metric"]): r.get("value") for fr in v.frames for r in records(fr)})
    raise Unusable("missing column: gate")


def _gates(v: View) -> Any:
    return quality.gate_performance(_gate_rows(v), mode=v.mode, id=v.id, thresholds=v.thresholds())


def _gate_table(v: View) -> Any:
    return quality.gate_table(_gate_rows(v), mode=v.mode, id=v.id, thresholds=v.thresholds())


def _compliance(v: View) -> Any:
    data: dict[str, Any] = {}
    for f in v.frames:
        if has(f, "workflow_id", "policy"):
            data["violations"] = records(f)
        elif has(f, "metric", "value"):
            data.update({str(r["metric"]): r.get("value") for r in records(f)})
    if not data:
        raise Unusable("missing columns: metric, value (or workflow_id, policy)")
    return quality.compliance_status(data, mode=v.mode, id=v.id, thresholds=v.thresholds())


def _risks(v: View) -> Any:
    f = v.first("likelihood", "impact")
    return quality.risk_matrix(records(f), mode=v.mode, id=v.id)


def _code_quality(v: View) -> Any:
    f = v.first("t", "metric", "value")
    return quality.code_quality(records(f), mode=v.mode, id=v.id)


def _coverage(v: View) -> Any:
    f = v.first("t", "coverage")
    return quality.test_coverage(records(f), mode=v.mode, id=v.id, thresholds=v.thresholds())


def _health(v: View) -> Any:
    f = v.first("status")
    rows = [{"name": r.get("check") or r.get("name"), "status": r.get("status"), "details": r.get("detail")}
            for r in records(f)]
    return system.system_health([r for r in rows if r["name"]], mode=v.mode, id=v.id)


def _errors(v: View) -> Any:
    if has(v.frames[0], "t", "value"):          # errors per hour: a series
        return _trend(v)
    rows = events(v.first("timestamp"))
    ds, ctx = (v.widget.data_sources or [None])[0], v.context
    # The rest of a drill-down's events are on its events page (the widget's own timeframe).
    more = (events_href(ds.metric, ds.timeframe or ctx.get("timeframe"), ctx.get("scope_query") or "", True)
            if ds is not None and ds.source == "drilldown" and ds.metric else None)
    return system.error_log_viewer(rows, mode=v.mode, id=v.id, more_href=more)


def _alerts(v: View) -> Any:
    """Alert rows (the alerts source: id, rule, severity, status, since, labels, acknowledged_by…;
    also the alerts page's name/state) as the alert summary's {name, state, …}."""
    f = v.frames[0]
    if not (has(f, "rule") or has(f, "name") or has(f, "id")):
        need(f, "rule")
    rows = [{**r, "name": r.get("name") or r.get("rule") or r.get("id"), "state": r.get("state") or r.get("status")}
            for r in records(f)]
    return system.alert_summary(rows, mode=v.mode, id=v.id)


def _audit(v: View) -> Any:
    return system.audit_log(events(v.first("timestamp", "type")), mode=v.mode, id=v.id)


def _collaboration(v: View) -> Any:
    """Team pairs (reviewer_team, author_team, reviews); per person from attrs["people"]
    (reviewer, author, …) where the caller may see names, else from person columns of the frame."""
    f = v.first("reviews")
    people = f.attrs.get("people")
    if isinstance(people, pd.DataFrame) and has(people, "reviewer", "author", "reviews") and not people.empty:
        return developer.team_collaboration(records(people), mode=v.mode, id=v.id)
    if not (has(f, "reviewer_team", "author_team") or has(f, "reviewer", "author")):
        need(f, "reviewer_team", "author_team")
    return developer.team_collaboration(records(f), mode=v.mode, id=v.id)


def _achievements(v: View) -> Any:
    return developer.achievement_tracker(records(v.first("milestone")), mode=v.mode, id=v.id)


def _skills(v: View) -> Any:
    f = v.frames[0]
    suggested = f.attrs.get("suggested")
    picks = records(suggested) if isinstance(suggested, pd.DataFrame) else None
    rows = records(v.first("t", "category", "defects")) if not f.empty else []
    return developer.skill_development(rows, picks, mode=v.mode, id=v.id)


def _table(v: View) -> Any:
    f = v.frames[0]
    limit = next((ds.transform.limit for ds in v.widget.data_sources if ds.transform and ds.transform.limit), None)
    return tables.table(records(f), list(map(str, f.columns)), id=v.id, max_rows=min(limit or 50, 200),
                        round_money=v.round_money)


ROI_NOTE = ("Assumes each review saves {hours:g} h of engineering time at ${rate:,.0f}/h.")


def _stat_group(v: View) -> Any:
    f = v.frames[0]
    if has(f, "value") and (has(f, "metric") or has(f, "name")):
        items, _ = _labelled(v)
        return tables.stat_group(items, id=v.id, round_money=v.round_money)
    row = records(f)[0]
    items, assumptions = [], {}
    for k, val in row.items():
        if k.startswith("assumption_"):
            assumptions[k.removeprefix("assumption_")] = val
        elif isinstance(val, (int, float)) or val is None:
            items.append({"label": tables.column_label(k), "value": val, "unit": tables.column_unit(k) or "count"})
    hours, rate = number(assumptions.get("hours_saved_per_review")), number(assumptions.get("engineer_hourly_cost_usd"))
    if hours is not None and rate is not None:
        note: Any = ROI_NOTE.format(hours=hours, rate=rate)
    else:
        note = "; ".join(f"{k.replace('_', ' ')}: {x}" for k, x in assumptions.items()) or None
    return tables.stat_group(items, note=note, id=v.id, round_money=v.round_money)


DRAW: dict[str, Callable[[View], Any]] = {
    "kpi_card": _kpi_card, "metric_trend": _trend, "gauge_chart": _gauge, "progress_bar": _progress,
    "comparison_chart": _comparison,
    "pipeline_visualizer": _pipeline, "queue_monitor": _queues, "timeline_view": _timeline, "kanban_board": _kanban,
    "agent_status_grid": _agents(ops.agent_status_grid), "workload_heatmap": _agents(charts.workload_heatmap),
    "skill_matrix": _agents(charts.workload_heatmap), "performance_radar": _radar,
    "quality_trends": _trend, "defect_distribution": _defects, "gate_performance": _gates, "gate_table": _gate_table,
    "compliance_status": _compliance, "risk_assessment": _risks, "risk_matrix": _risks,
    "code_quality": _code_quality, "test_coverage": _coverage,
    "system_health": _health, "error_log_viewer": _errors, "alert_summary": _alerts, "audit_log": _audit,
    "team_collaboration": _collaboration, "achievement_tracker": _achievements, "skill_development": _skills,
    "table": _table, "stat_group": _stat_group,
}


# ---------------------------------------------------------------- the figure finish

def _window(frames: Sequence[pd.DataFrame]) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The time span the frames draw — their attrs' window, else t … end — to keep annotations inside it."""
    seen: list[pd.Timestamp] = []
    for f in frames:
        win = f.attrs.get("window")
        edges = ([pd.to_datetime(win.get(k), utc=True, errors="coerce", format="ISO8601") for k in ("start", "end")]
                 if isinstance(win, Mapping) else [])
        if len(edges) == 2 and not any(pd.isna(e) for e in edges):
            seen += edges
            continue
        for col in ("t", "end", "timestamp"):
            if col in f.columns:
                s = pd.to_datetime(f[col], utc=True, errors="coerce", format="ISO8601").dropna()
                seen += [s.min(), s.max()] if not s.empty else []
    return (min(seen), max(seen)) if seen else (None, None)


# The last markers frame prepared (a weak reference to it, its instants in ns, its rows, both
# in time order): one frame serves every time series of a page's draw, which parsed, sorted
# and converted it again for each.
_MARKS: list[tuple[Any, list[int], list[dict[str, Any]]] | None] = [None]


def _marks(annotations: pd.DataFrame) -> tuple[list[int], list[dict[str, Any]]]:
    found = _MARKS[0]
    if found is not None and found[0]() is annotations:
        return found[1], found[2]
    a = annotations.copy()
    # ISO 8601 whatever the precision ('…:00Z' and '…:00.250Z' in one column: pandas' inferred
    # format took the first and made the others NaT).
    a["t"] = pd.to_datetime(a["t"], utc=True, errors="coerce", format="ISO8601")
    a = a.dropna(subset=["t"]).sort_values("t", kind="stable")
    ns = [t.value for t in a["t"]]
    rows = records(a)
    _MARKS[0] = (weakref.ref(annotations), ns, rows)
    return ns, rows


def annotation_rows(annotations: pd.DataFrame | None, frames: Sequence[pd.DataFrame]) -> list[dict[str, Any]]:
    """The annotations ({t, kind, title, who, what}) inside the frames' time span, in time order."""
    if not isinstance(annotations, pd.DataFrame) or annotations.empty or "t" not in annotations.columns:
        return []
    ns, rows = _marks(annotations)
    lo, hi = _window(frames)
    if lo is None or hi is None:
        return list(rows)
    return rows[bisect_left(ns, lo.value):bisect_right(ns, hi.value)]


def _finish(out: Any, v: View) -> Any:
    time_series = v.widget.type in TIME_SERIES
    o = v.options
    for g in walk(out):
        if not isinstance(g, dcc.Graph) or "widget-graph" not in (g.className or ""):
            continue
        fig = g.figure                           # its JSON (components.common.graph)
        if time_series and o.annotations and v.annotations:
            add_annotations(fig, v.annotations, mode=v.mode)
        # The widget's header carries the title; the display options.
        updates: dict[str, Any] = {"title": None}
        if not o.show_legend:
            updates["showlegend"] = False
        if "hover" not in o.interactions:
            updates["hovermode"] = False
        scheme = COLORWAYS.get(o.color_scheme)
        if scheme:
            updates["colorway"] = scheme[v.mode] if isinstance(scheme, dict) else scheme
        if o.animation and sum(len(x) for t in fig.get("data") or [] if (x := t.get("x")) is not None) <= GL_THRESHOLD:
            updates["transition"] = {"duration": 300, "easing": "cubic-in-out"}
        merge(fig.setdefault("layout", {}), updates)
        phone_friendly(fig, time_axis=time_series)
    return out


# ---------------------------------------------------------------- the entry points

def _frames(frames: Any) -> list[pd.DataFrame]:
    if isinstance(frames, pd.DataFrame):
        frames = [frames]
    return [f for f in (frames or []) if isinstance(f, pd.DataFrame)]


def _usable(widget: Widget, frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    keep = [f for f in frames if not f.empty]
    if widget.type == "skill_development":      # no defects yet, but reviews to suggest
        keep += [f for f in frames if f.empty and isinstance(f.attrs.get("suggested"), pd.DataFrame)
                 and not f.attrs["suggested"].empty]
    return keep


def render(widget: Widget | Mapping[str, Any], frames: Sequence[pd.DataFrame | None] | pd.DataFrame | None, *, mode: str = "light",
           context: Mapping[str, Any] | None = None, annotations: pd.DataFrame | None = None, id: Any = None) -> Any:
    """Draw `widget` from its data sources' frames (in the order of widget.data_sources).
    `context`: {"timeframe", "scope_query", "dashboard", "now"}; `annotations`: the annotations
    frame for time-series widgets. Never raises for odd data (see the module's rules)."""
    if isinstance(widget, Mapping):                 # a definition's widget as JSON
        widget = Widget.model_validate(widget)
    if widget.display_options.theme in ("light", "dark"):
        mode = widget.display_options.theme
    given = _frames(frames)
    usable = _usable(widget, given)
    if not usable:
        empty = _known_empty(widget, given)
        if empty:          # an empty queue is a fact, not missing data
            return html.Div(empty, className="widget-empty text-body-secondary small p-2", id=id) \
                if id is not None else html.Div(empty, className="widget-empty text-body-secondary small p-2")
        return placeholder(widget.type, id=id)
    v = View(widget, usable, mode, context or {}, id)
    try:
        if widget.type in TIME_SERIES and widget.display_options.annotations:
            v.annotations = annotation_rows(annotations, usable)
        draw = DRAW.get(widget.type)
        if draw is None:
            return placeholder(widget.type, id=id, message=f"no data: no renderer for {widget.type!r}")
        return _finish(draw(v), v)
    except Unusable as exc:
        return placeholder(widget.type, id=id, message=f"no data: {exc}")
    except Exception:                            # odd data must not break a dashboard
        log.exception("widget %s (%s) could not be drawn", widget.id, widget.type)
        return placeholder(widget.type, id=id, message="no data: this data cannot be drawn")


# What an empty list means, per state source (an empty frame that has its columns was read).
EMPTY_STATE = {"my_reviews": "No review waiting for you", "suggested_reviews": "Nothing is waiting for a reviewer",
               "my_pull_requests": "You have no open pull request", "violations": "No open compliance violation",
               "active_workflows": "No active workflow", "queues": "No queue has reported yet",
               "agents": "No agent has reported yet"}


def _known_empty(widget: Widget, frames: Sequence[pd.DataFrame]) -> str | None:
    """The sentence for a widget whose only sources are state lists that were read and are
    empty (None when any source is missing or holds rows)."""
    sources = widget.data_sources
    if not sources or len(frames) != len(sources) or any(ds.source != "state" for ds in sources):
        return None
    if not all(isinstance(f, pd.DataFrame) and f.empty and len(f.columns) for f in frames):
        return None
    return EMPTY_STATE.get(sources[0].name or "", "Nothing here right now")


def not_permitted(widget: Widget, permission: str, *, id: Any = None) -> html.Div:
    """The body of a widget whose data the viewer may not read: says so, names the permission,
    and holds no data."""
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([
        html.Div("Not permitted", className="fw-semibold widget-denied-title"),
        html.Div(["This widget needs the ", html.Code(permission, className="widget-denied-permission"),
                  " permission."], className="small"),
    ], className="widget-denied text-body-secondary text-center py-4",
        **{"data-widget": widget.type, "data-permission": permission}, **kw)


__all__ = ["render", "not_permitted", "records", "events", "annotation_rows", "DRAW", "TIME_SERIES", "Unusable"]
