"""Metric and agent charts (seed §4.1 metrics_widgets and agent_widgets): a KPI over time,
a gauge, progress towards a target, a comparison, a radar and a workload heatmap.

Each takes plain data (the API's shapes), returns a themed `dcc.Graph` (or a Bootstrap
progress bar), and shows "no data" when there is nothing to draw.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html

from components import theme
from components.common import GL_THRESHOLD, all_missing, graph, mappings, number, placeholder
from components.kpi import format_value, title_of

# Axis decorations per METRICS.md unit.
_TICKS: dict[str, dict[str, str]] = {"percentage": {"ticksuffix": "%"}, "usd": {"tickprefix": "$"},
                                     "hours": {"ticksuffix": " h"}, "minutes": {"ticksuffix": " min"},
                                     "per_hour": {"ticksuffix": "/h"}}
_RANGES: dict[str, tuple[float, float]] = {"percentage": (0, 100), "score": (1, 5)}


def _value(v: Any) -> float | None:
    """A series value: a number, or None (a gap). Lists (list-valued KPIs) are not plottable."""
    return None if isinstance(v, (list, dict)) else number(v)


def metric_trend(series: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, *, mode: str = "light",
                 id: Any = None, title: str | None = None, height: int | None = None) -> Any:
    """One or more KPI series (`Engine.series()` → `{"metric", "unit", "points": [{"t", "end", "value"}]}`)
    as lines. A None value is a gap; past 1,000 points a line is drawn with WebGL."""
    many = [series] if isinstance(series, Mapping) else mappings(series)
    many = [s for s in many if s.get("points")]
    if not many or all(all_missing(_value(p.get("value")) for p in s["points"]) for s in many):
        return placeholder("metric_trend", id=id)
    fig = go.Figure()
    for s in many:
        pts = s["points"]
        cls = go.Scattergl if len(pts) > GL_THRESHOLD else go.Scatter
        unit = s.get("unit") or ""
        fig.add_trace(cls(
            x=[p.get("t") for p in pts], y=[_value(p.get("value")) for p in pts],
            customdata=[p.get("end") for p in pts], name=title_of(s.get("metric") or "value"),
            mode="lines+markers" if len(pts) <= 60 else "lines", connectgaps=False,
            hovertemplate=f"%{{x}} – %{{customdata}}<br>%{{y:,.2f}} {unit}<extra>%{{fullData.name}}</extra>"))
    unit = many[0].get("unit")
    fig.update_yaxes(**_TICKS.get(unit or "", {}))
    if unit in _RANGES:
        lo, hi = _RANGES[unit]
        fig.update_yaxes(range=[lo, hi * 1.02])
    fig.update_layout(showlegend=len(many) > 1, hovermode="x unified")
    default_title = title_of(many[0]["metric"]) if len(many) == 1 and many[0].get("metric") else None
    return graph(fig, "metric_trend", mode=mode, id=id, height=height, title=title or default_title)


def level(value: float | None, thresholds: Mapping[str, float] | None) -> str | None:
    """'ok' | 'warning' | 'critical' for `value` against {"warning": w, "critical": c}.

    critical below warning means higher is better (a pass rate); above means lower is
    better (a queue depth). A value on a threshold has reached it.
    """
    if value is None or not thresholds:
        return None
    w, c = thresholds.get("warning"), thresholds.get("critical")
    higher_better = w is not None and c is not None and c < w
    if c is not None and (value <= c if higher_better else value >= c):
        return "critical"
    if w is not None and (value <= w if higher_better else value >= w):
        return "warning"
    return "ok"


_LEVEL_ROLE = {"ok": "success", "warning": "warning", "critical": "danger", None: "primary"}


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def gauge_chart(value: Any, unit: str | None = None, thresholds: Mapping[str, float] | None = None, *,
                mode: str = "light", id: Any = None, title: str | None = None, min_value: float | None = None,
                max_value: float | None = None, height: int | None = 220) -> Any:
    """A single value on a dial, coloured by `thresholds` ({"warning", "critical"}). `value` may be
    a number or a KPI card's data ({"current_value", "unit"})."""
    if isinstance(value, Mapping) and unit is None:
        unit = value.get("unit")
    v = number(value)
    if v is None:
        return placeholder("gauge_chart", id=id)
    p = theme.palette(mode)
    cuts = sorted(x for x in (thresholds or {}).values() if x is not None)
    lo, hi = _RANGES.get(unit or "", (min([v, *cuts, 0.0]) * 1.25, max([v, *cuts, 0.0]) * 1.25 or 1.0))
    lo = lo if min_value is None else min_value
    hi = hi if max_value is None else max_value
    steps = []
    if thresholds and cuts:
        edges = [lo, *cuts, hi]
        for a, b in zip(edges, edges[1:]):
            role = _LEVEL_ROLE[level((a + b) / 2, thresholds)]
            steps.append({"range": [a, b], "color": _rgba(p[role], 0.25)})
    fmt = {"percentage": {"suffix": "%"}, "usd": {"prefix": "$"}, "hours": {"suffix": " h"},
           "minutes": {"suffix": " min"}, "score": {"suffix": " / 5"}}.get(unit or "", {})
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=v, number={**fmt, "valueformat": ",.1f"},
        title={"text": title} if title else None,
        gauge={"axis": {"range": [lo, hi], "tickcolor": p["muted"]},
               "bar": {"color": p[_LEVEL_ROLE[level(v, thresholds)]]},
               "bgcolor": p["surface"], "bordercolor": p["grid"], "steps": steps}))
    fig.update_layout(margin={"l": 24, "r": 24, "t": 40 if title else 16, "b": 8})
    return graph(fig, "gauge_chart", mode=mode, id=id, height=height)


def progress_bar(value: Any, target: Any = None, *, unit: str | None = None, label: str | None = None,
                 mode: str = "light", id: Any = None) -> html.Div:
    """Progress of `value` towards `target` (same unit). No target, or no value, is no data."""
    if isinstance(value, Mapping):
        unit = unit or value.get("unit")
        target = value.get("target", target)
    v, t = number(value), number(target)
    if v is None or t is None or t <= 0:
        return placeholder("progress_bar", id=id)
    share = v / t * 100
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([
        html.Div([html.Span(label or "", className="me-auto"),
                  html.Span(f"{format_value(v, unit)} / {format_value(t, unit)}", className="text-body-secondary")],
                 className="d-flex small mb-1"),
        dbc.Progress(value=min(share, 100.0), label=f"{share:.0f}%", color="success" if share >= 100 else "primary",
                     className="widget-progress", style={"height": "1.25rem"}),
    ], className="widget-progress-bar", **{"data-widget": "progress_bar"}, **kw)


def _comparison_items(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, Mapping):
        return [{"label": k, "value": v} for k, v in items.items()]
    out = []
    for it in mappings(items):
        if "data" in it and isinstance(it["data"], Mapping):  # dashboard widgets
            d = it["data"]
            out.append({"label": title_of(str(it.get("id"))), "value": d.get("current_value"),
                        "previous": d.get("previous_value")})
        else:
            out.append({"label": it.get("label", it.get("id")), "value": it.get("value", it.get("current")),
                        "previous": it.get("previous")})
    return out


def comparison_chart(items: Any, *, mode: str = "light", id: Any = None, title: str | None = None,
                     unit: str | None = None, current_name: str = "current", previous_name: str = "previous",
                     height: int | None = None) -> Any:
    """Side-by-side bars: [{"label", "value", "previous"}], {label: value}, or dashboard widgets
    (current against previous window). Missing values are missing bars, not zero-height ones."""
    rows = _comparison_items(items)
    cur = [number(r["value"]) for r in rows]
    prev = [number(r.get("previous")) for r in rows]
    if not rows or all_missing(cur + prev):
        return placeholder("comparison_chart", id=id)
    labels = [str(r["label"]) for r in rows]
    fig = go.Figure()
    if not all_missing(prev):
        fig.add_trace(go.Bar(x=labels, y=prev, name=previous_name, opacity=0.55))
    fig.add_trace(go.Bar(x=labels, y=cur, name=current_name,
                         text=[format_value(v, unit) for v in cur], textposition="outside", cliponaxis=False))
    fig.update_yaxes(**_TICKS.get(unit or "", {}))
    fig.update_layout(barmode="group", showlegend=not all_missing(prev))
    return graph(fig, "comparison_chart", mode=mode, id=id, height=height, title=title)


def performance_radar(axes: Mapping[str, Any] | None, *, compare: Mapping[str, Any] | None = None,
                      max_value: float = 100.0, mode: str = "light", id: Any = None, title: str | None = None,
                      name: str = "current", compare_name: str = "previous", height: int | None = None) -> Any:
    """Axes → values (0..max_value) on a radar; a None axis is a gap in the outline."""
    if not isinstance(axes, Mapping) or all_missing(number(v) for v in axes.values()):
        return placeholder("performance_radar", id=id)
    keys = list(axes)
    theta = [title_of(k) for k in keys] + [title_of(keys[0])]

    def closed(values: Mapping[str, Any]) -> list[float | None]:
        r = [number(values.get(k)) for k in keys]
        return r + r[:1]

    fig = go.Figure()
    if compare and not all_missing(number(v) for v in compare.values()):
        fig.add_trace(go.Scatterpolar(r=closed(compare), theta=theta, name=compare_name, fill="toself",
                                      opacity=0.45, connectgaps=False))
    fig.add_trace(go.Scatterpolar(r=closed(axes), theta=theta, name=name, fill="toself", connectgaps=False))
    fig.update_layout(polar={"radialaxis": {"range": [0, max_value], "visible": True}}, showlegend=bool(compare))
    return graph(fig, "performance_radar", mode=mode, id=id, height=height, title=title)


def _agent_matrix(agents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Agents × skills, cell = the agent's load (%) where it has the skill. Agents without
    skills reported get a single "load" column."""
    rows = sorted((a for a in mappings(agents) if a.get("agent_id")), key=lambda a: str(a["agent_id"]))
    skills = sorted({s for a in rows for s in (a.get("skills") or [])})
    cols = skills or ["load"]
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for a in rows:
        load = number(a.get("load"))
        pct = None if load is None else round(load * 100, 1)
        mine = set(a.get("skills") or [])
        z.append([pct if (c in mine or not skills) else None for c in cols])
        text.append([str(a.get("status") or "") for _ in cols])
    return {"x": cols, "y": [str(a["agent_id"]) for a in rows], "z": z, "text": text, "zmin": 0, "zmax": 100,
            "unit": "%"}


def workload_heatmap(data: Any, *, mode: str = "light", id: Any = None, title: str | None = None,
                     height: int | None = None) -> Any:
    """Agent state rows ({agent_id, status, load, skills}) as agents × skills coloured by load,
    or a ready matrix {"x", "y", "z"[, "zmin", "zmax", "unit"]}. None cells stay empty."""
    if isinstance(data, Mapping) and "z" in data:
        m = dict(data)
    elif data:
        m = _agent_matrix(data)
    else:
        m = {"z": []}
    z = m.get("z") or []
    if not z or all_missing(v for row in z for v in row):
        return placeholder("workload_heatmap", id=id)
    p = theme.palette(mode)
    unit = m.get("unit", "")
    fig = go.Figure(go.Heatmap(
        x=m.get("x"), y=m.get("y"), z=z, text=m.get("text"), zmin=m.get("zmin"), zmax=m.get("zmax"),
        colorscale=[[0, p["success"]], [0.6, p["warning"]], [1, p["danger"]]], hoverongaps=False, xgap=2, ygap=2,
        colorbar={"ticksuffix": unit, "outlinewidth": 0},
        hovertemplate="%{y} · %{x}<br>%{z:.0f}" + unit + "<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    return graph(fig, "workload_heatmap", mode=mode, id=id, height=height, title=title)


__all__ = ["metric_trend", "gauge_chart", "progress_bar", "comparison_chart", "performance_radar",
           "workload_heatmap", "level"]
