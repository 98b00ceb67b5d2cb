"""Metric and agent charts (seed §4.1 metrics_widgets and agent_widgets): a KPI over time,
a gauge, progress towards a target, a comparison, a radar and a workload heatmap.

Each takes plain data (the API's shapes), returns a themed `dcc.Graph` (or a Bootstrap
progress bar), and shows "no data" when there is nothing to draw.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from urllib.parse import quote

from html import escape
from typing import Any, Iterable, Mapping, Sequence

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from components import theme
from components.common import GL_THRESHOLD, all_missing, graph, mappings, merge, number, placeholder, trace
from components.kpi import LEVEL_BS, format_value, title_of

# Axis decorations per METRICS.md unit.
_TICKS: dict[str, dict[str, str]] = {"percentage": {"ticksuffix": "%"}, "usd": {"tickprefix": "$"},
                                     "hours": {"ticksuffix": " h"}, "minutes": {"ticksuffix": " min"},
                                     "per_hour": {"ticksuffix": "/h"}}
_RANGES: dict[str, tuple[float, float]] = {"percentage": (0, 100), "score": (1, 5)}


def _value(v: Any) -> float | None:
    """A series value: a number, or None (a gap). Lists (list-valued KPIs) are not plottable."""
    return None if isinstance(v, (list, dict)) else number(v)


def _hover(v: float | None, unit: str, round_money: bool) -> str:
    return format_value(v, unit or None, round_money=round_money) if unit else ("" if v is None else f"{v:,.2f}")


def _add_series(traces: list[dict[str, Any]], s: Mapping[str, Any], chart: str, round_money: bool) -> None:
    """One series: the finished buckets as a line (area, bars), and a partial last bucket
    (`"partial": True`, still filling) marked apart — a dotted segment to a hollow marker, or a
    hatched bar, with "still filling" on hover — so it does not read as a drop. Plain trace
    dicts (common.trace)."""
    pts = list(s["points"])
    unit = s.get("unit") or ""
    name = title_of(s.get("metric") or "value")
    partial = pts[-1] if pts and pts[-1].get("partial") else None
    done = pts[:-1] if partial else pts
    hover = f"%{{x}} – %{{customdata}}<br>%{{hovertext}}<extra>{name}</extra>"
    xs, ys = [p.get("t") for p in done], [_value(p.get("value")) for p in done]
    common: dict[str, Any] = {"name": name, "legendgroup": name}
    if chart == "bar":
        common["offsetgroup"] = name
        traces.append(trace("bar", x=xs, y=ys, customdata=[p.get("end") for p in done],
                            hovertext=[_hover(v, unit, round_money) for v in ys], hovertemplate=hover, **common))
    else:
        traces.append(trace("scattergl" if len(pts) > GL_THRESHOLD else "scatter", x=xs, y=ys,
                            customdata=[p.get("end") for p in done], hovertext=[_hover(v, unit, round_money) for v in ys],
                            mode="lines+markers" if len(pts) <= 60 else "lines", connectgaps=False,
                            fill="tozeroy" if chart == "area" else None, hovertemplate=hover, **common))
    if partial is None:
        return
    v = _value(partial.get("value"))
    still = {"name": f"{name} (still filling)", "legendgroup": name, "showlegend": False,
             "customdata": [partial.get("end")], "hovertext": [f"{_hover(v, unit, round_money)} · still filling"],
             "hovertemplate": hover}
    if chart == "bar":
        traces.append(trace("bar", x=[partial.get("t")], y=[v], offsetgroup=name, opacity=0.45,
                            marker={"pattern": {"shape": "/"}}, **still))
        return
    last = done[-1] if done else None
    if last is not None and v is not None and _value(last.get("value")) is not None:
        traces.append(trace("scatter", x=[last.get("t"), partial.get("t")], y=[_value(last.get("value")), v],
                            mode="lines", line={"dash": "dot"}, hoverinfo="skip", name=f"{name} (still filling)",
                            legendgroup=name, showlegend=False))
    traces.append(trace("scatter", x=[partial.get("t")], y=[v], mode="markers",
                        marker={"symbol": "circle-open", "size": 10, "line": {"width": 2}}, **still))


def metric_trend(series: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, *, mode: str = "light",
                 id: Any = None, title: str | None = None, height: int | None = None, chart: str = "line",
                 round_money: bool = False) -> Any:
    """One or more KPI series (`Engine.series()` → `{"metric", "unit", "points": [{"t", "end", "value",
    "partial"?}]}`) as lines (`chart`: "line", "area" or "bar"). A None value is a gap; past 1,000
    points a line is drawn with WebGL; a partial last bucket is marked (see _add_series)."""
    many = [series] if isinstance(series, Mapping) else mappings(series)
    many = [s for s in many if s.get("points")]
    if not many or all(all_missing(_value(p.get("value")) for p in s["points"]) for s in many):
        return placeholder("metric_trend", id=id)
    traces: list[dict[str, Any]] = []
    for s in many:
        _add_series(traces, s, chart, round_money)
    unit = many[0].get("unit")
    yaxis = dict(_TICKS.get(unit or "", {}))
    if unit in _RANGES:
        lo, hi = _RANGES[unit]
        yaxis["range"] = [lo, hi * 1.02]
    layout: dict[str, Any] = {**({"yaxis": yaxis} if yaxis else {}), "showlegend": len(many) > 1,
                              "hovermode": "x unified"}
    default_title = title_of(many[0]["metric"]) if len(many) == 1 and many[0].get("metric") else None
    return graph({"data": traces, "layout": layout}, "metric_trend", mode=mode, id=id, height=height,
                 title=title or default_title)


def sparkline(points: Sequence[Mapping[str, Any]] | None, *, unit: str | None = None, mode: str = "light",
              height: int = 40) -> Any:
    """A KPI's recent values as a small static line under its card (None without two values):
    an SVG image, not a Plotly graph — a dashboard has a card per KPI, and a Plotly graph
    each cost a chart to draw in the browser and ~4 ms of server time (bench/pages.py). Gaps
    (no data) break the line; a partial last bucket is its own dotted segment."""
    pts = mappings(points)
    ys = [_value(p.get("value")) for p in pts]
    if sum(v is not None for v in ys) < 2:
        return None
    partial = bool(pts[-1].get("partial"))
    svg = sparkline_svg(ys, partial, theme.palette(mode)["primary"], height)
    return html.Img(src="data:image/svg+xml;charset=utf-8," + quote(svg), className="kpi-spark", alt="",
                    style={"height": f"{height}px", "width": "100%"}, **{"data-points": len(ys)})


def sparkline_svg(ys: Sequence[float | None], partial: bool, color: str, height: int = 40) -> str:
    """The SVG of a sparkline: polylines over runs of values (100 units wide, stretched to
    the card), the last segment dotted when the last bucket is still filling."""
    known = [v for v in ys if v is not None]
    lo, hi = min(known), max(known)
    span = (hi - lo) or 1.0
    n = len(ys)

    def xy(i: int, v: float) -> str:
        x = 100.0 * i / max(1, n - 1)
        y = 2 + (height - 4) * (1 - (v - lo) / span)
        return f"{x:.2f},{y:.2f}"
    body = ys[:-1] if partial else ys
    runs: list[list[str]] = [[]]
    for i, v in enumerate(body):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, v))
    stroke = f'fill="none" stroke="{color}" stroke-width="1.5" vector-effect="non-scaling-stroke"'
    lines = [f'<polyline class="solid" points="{" ".join(r)}" {stroke}/>' for r in runs if len(r) > 1]
    if partial and n > 1 and ys[-1] is not None and ys[-2] is not None:
        lines.append(f'<polyline class="partial" points="{xy(n - 2, ys[-2])} {xy(n - 1, ys[-1])}" {stroke} '
                     'stroke-dasharray="2 2"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 {height}" preserveAspectRatio="none">'
            + "".join(lines) + "</svg>")


def level(value: float | None, thresholds: Mapping[str, Any] | None) -> str | None:
    """'ok' | 'warning' | 'critical' for `value` against {"warning": w, "critical": c[, "direction"]}.

    `direction` "above": values at or over a threshold are bad (a queue depth); "below": at or
    under it (a pass rate). Without one, critical below warning means higher is better. A value
    on a threshold has reached it.
    """
    if value is None or not thresholds:
        return None
    w, c = number(thresholds.get("warning")), number(thresholds.get("critical"))
    if w is None and c is None:
        return None
    direction = thresholds.get("direction")
    if direction in ("above", "below"):
        higher_better = direction == "below"
    else:
        higher_better = w is not None and c is not None and c < w
    if c is not None and (value <= c if higher_better else value >= c):
        return "critical"
    if w is not None and (value <= w if higher_better else value >= w):
        return "warning"
    return "ok"


_LEVEL_ROLE = {**LEVEL_BS, None: "primary"}


ANNOTATIONS = "Annotations"
_ANNOTATION_AXIS = "y9"          # an invisible 0..1 axis over the plot, so markers span its height
_ANNOTATION_STYLE = {"configuration": ("primary", "diamond"), "alert": ("danger", "triangle-down")}


def add_annotations(fig: dict[str, Any], rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light") -> int:
    """Annotations ({t, kind, title, who, what}: configuration changes, alert firings) as vertical
    markers over a time-series figure (its JSON, as `graph` holds it), who/what on hover. They form one legend group named
    "Annotations", so a click on the legend entry hides them all. Returns how many were drawn."""
    rows = [r for r in mappings(rows) if r.get("t") is not None]
    if not rows:
        return 0
    p = theme.palette(mode)
    xs = [r["t"] for r in rows]
    group = {"legendgroup": "annotations", "yaxis": _ANNOTATION_AXIS, "name": ANNOTATIONS}
    traces = fig.setdefault("data", [])
    traces.append(trace(
        "scatter", x=[v for t in xs for v in (t, t, None)], y=[v for _ in xs for v in (0, 1, None)], mode="lines",
        line={"color": p["muted"], "width": 1, "dash": "dot"}, hoverinfo="skip", showlegend=False, **group))
    styles = [_ANNOTATION_STYLE.get(str(r.get("kind")), ("secondary", "circle")) for r in rows]

    def say(r: Mapping[str, Any]) -> str:
        e = lambda v: escape(str(v))                                               # noqa: E731
        head = f"<b>{e(r.get('title') or r.get('kind') or 'annotation')}</b>"
        who = f"{e(r.get('kind') or 'change')}" + (f" by {e(r['who'])}" if r.get("who") else "")
        return "<br>".join([head, who] + ([e(r["what"])] if r.get("what") else []))

    traces.append(trace(
        "scatter", x=xs, y=[1] * len(xs), mode="markers", showlegend=True, customdata=[r.get("kind") for r in rows],
        marker={"size": 11, "color": [p[c] for c, _ in styles], "symbol": [s for _, s in styles],
                "line": {"width": 1, "color": p["background"]}},
        hovertext=[say(r) for r in rows], hovertemplate="%{hovertext}<extra></extra>", **group))
    merge(fig.setdefault("layout", {}), {"showlegend": True, "yaxis" + _ANNOTATION_AXIS[1:]: {
        "overlaying": "y", "range": [0, 1.06], "visible": False, "fixedrange": True}})
    return len(rows)


def phone_friendly(fig: dict[str, Any], *, time_axis: bool = False) -> dict[str, Any]:
    """A layout that holds on a phone: the legend below the plot (in the container, so it
    never covers tick labels), margins that fit the labels, and few ticks on a time axis.
    `fig`: a figure's JSON (as `graph` holds it), changed in place and returned."""
    merge(fig.setdefault("layout", {}), {"legend": {"orientation": "h", "yref": "container", "y": 0,
                                                    "yanchor": "bottom", "x": 0, "xanchor": "left"},
                                         **({"xaxis": {"nticks": 6}} if time_axis else {})})
    return fit_margins(fig)


# Text metrics of the theme's 12 px system-ui font (an average glyph, a line of ticks).
CHAR_PX = 7.0
LINE_PX = 18
PHONE_PLOT_PX = 300       # a chart's width on a phone: labels and legends are laid out for it
LABEL_CHARS = 24          # a longer category is cut in its tick (the bar keeps its name on hover)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NO_AXES = {"indicator", "pie", "scatterpolar", "barpolar", "sankey", "table", "funnelarea"}


def fit_margins(fig: dict[str, Any]) -> dict[str, Any]:
    """Margins computed here from the labels the axes will show, instead of Plotly's
    automargin: that draws each chart, measures its labels and draws it again (a page of ten
    charts took three times as long). Categories longer than LABEL_CHARS are cut in the tick.
    `fig`: a figure's JSON (as `graph` holds it), changed in place and returned."""
    data = fig.get("data") or []
    if any(t.get("type") in _NO_AXES for t in data) or not data:
        return fig
    lay = fig.setdefault("layout", {})
    axes = {"xaxis": {}, "yaxis": {}, **{k: v for k, v in lay.items() if k.startswith(("xaxis", "yaxis"))
                                         and isinstance(v, dict)}}
    refs = {t.get("xaxis") or "x" for t in data} | {t.get("yaxis") or "y" for t in data}
    updates: dict[str, Any] = {name: {"automargin": False} for name in axes}
    bottom = max(_axis_extent(fig, "x", axes.get("xaxis" + r[1:]), r, updates) for r in refs if r.startswith("x"))
    left, right = 40.0, 16.0
    for r in sorted(x for x in refs if x.startswith("y")):
        axis = axes.get("yaxis" + r[1:])
        if axis is not None and axis.get("visible") is False:
            continue
        if r == "y":
            left = _axis_extent(fig, "y", axis, r, updates)
        elif axis is not None and axis.get("overlaying") and axis.get("side") == "right":
            right = max(right, _axis_extent(fig, "y", axis, r, updates))
    right = max(right, updates.pop("_right", 0))
    updates["margin"] = {"l": int(left), "b": int(bottom + _legend_height(fig)), "r": int(right), "t": 24}
    merge(lay, updates)
    return fig


def _legend_height(fig: dict[str, Any]) -> float:
    """The legend below the plot (phone_friendly puts it in the container's bottom): its rows
    at a chart's usual width, so the tick labels above it keep their room."""
    lay, data = fig.get("layout") or {}, fig.get("data") or []
    if lay.get("showlegend") is False or (lay.get("legend") or {}).get("orientation") != "h":
        return 0.0
    names = [t.get("name") or "" for t in data
             if t.get("showlegend") is not False and (t.get("name") or t.get("showlegend"))]
    if len(names) < 2 and not any(t.get("showlegend") for t in data):
        return 0.0
    width = sum(len(n) * CHAR_PX + 45 for n in names)
    return 4 + LINE_PX * max(1, math.ceil(width / PHONE_PLOT_PX))


def _axis_extent(fig: dict[str, Any], letter: str, axis: dict[str, Any] | None, ref: str,
                 updates: dict[str, Any]) -> float:
    """Pixels an axis's tick labels (and title) take beside the plot: across for a y axis,
    down for an x axis (the axis's own changes go into `updates`)."""
    name = f"{letter}axis{ref[1:]}"
    values: list[Any] = []
    for t in fig.get("data") or []:
        seq = t.get(letter)
        if (t.get(letter + "axis") or letter) == ref and seq is not None:
            values += [v for v in seq if v is not None]
    text = [v for v in values if isinstance(v, str) and not _DATE.match(v)]
    dates = any(isinstance(v, (datetime, date)) or (isinstance(v, str) and _DATE.match(v)) for v in values)
    affix = len(axis.get("tickprefix") or "") + len(axis.get("ticksuffix") or "") if axis is not None else 0
    title = axis.get("title") if axis is not None else None
    titled = bool(title.get("text") if isinstance(title, dict) else title)
    own = updates.setdefault(name, {"automargin": False})
    if text:                                  # categories
        longest = max(min(len(v), LABEL_CHARS) for v in text)
        if any(len(v) > LABEL_CHARS for v in text):
            cats = list(dict.fromkeys(text))
            own.update(tickmode="array", tickvals=cats, ticktext=[_cut(c) for c in cats])
        width = longest * CHAR_PX
        if letter == "x":
            tilt = axis.get("tickangle") if axis is not None else None
            angle = abs(tilt) if isinstance(tilt, (int, float)) else None
            if angle is None and len(set(text)) * (width + 8) > PHONE_PLOT_PX:
                angle = 30                  # crowded on a phone: Plotly turns them, by 30° at most
                own["autotickangles"] = [0, 30]
            extent = (LINE_PX + width * math.sin(math.radians(angle))) if angle else LINE_PX
            if angle:                       # the last label, turned, reaches past the plot's right edge
                updates["_right"] = max(16, int(width * math.cos(math.radians(angle)) / 2))
            return 8 + extent + (LINE_PX if titled else 0)
        return 12 + width + (LINE_PX if titled else 0)
    if letter == "x":                         # numbers or times under the plot: times may take two lines
        return 8 + (2 * LINE_PX if dates else LINE_PX) + (LINE_PX if titled else 0)
    numbers = [abs(float(v)) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
    top = max(numbers, default=0.0)
    digits = 4 if top >= 1000 else (len(f"{top:.0f}") + (2 if top < 10 else 0))   # 1.2k, 100, 0.25
    return 12 + (digits + affix) * CHAR_PX + (LINE_PX if titled else 0)


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def _frac(x: float, lo: float, hi: float) -> float:
    return 0.0 if hi <= lo else max(0.0, min(1.0, (x - lo) / (hi - lo)))


def gauge_chart(value: Any, unit: str | None = None, thresholds: Mapping[str, float] | None = None, *,
                mode: str = "light", id: Any = None, title: str | None = None, min_value: float | None = None,
                max_value: float | None = None, height: int | None = 220) -> Any:
    """A single value on a half dial, coloured by `thresholds` ({"warning", "critical"}). `value`
    may be a number or a KPI card's data ({"current_value", "unit"}).

    Drawn in HTML and CSS (two conic gradients: the threshold bands, and the value's arc in its
    level's colour), not as a Plotly indicator: a Plotly gauge cost the browser ~50 ms of main
    thread to draw and again to resize, for one number (docs/PERFORMANCE.md, stop 18). Colours
    are Bootstrap's theme variables, so the dial follows light and dark without a redraw; the
    element is an ARIA meter. `mode` is accepted for the widget signature (the theme is CSS's).
    """
    if isinstance(value, Mapping) and unit is None:
        unit = value.get("unit")
    v = number(value)
    if v is None:
        return placeholder("gauge_chart", id=id)
    cuts = sorted(x for x in (number((thresholds or {}).get(k)) for k in ("warning", "critical")) if x is not None)
    lo, hi = _RANGES.get(unit or "", (min([v, *cuts, 0.0]) * 1.25, max([v, *cuts, 0.0]) * 1.25 or 1.0))
    lo = lo if min_value is None else min_value
    hi = hi if max_value is None else max_value
    lv = level(v, thresholds)
    role = _LEVEL_ROLE[lv]
    # The bands: each stretch between thresholds in its level's colour (faint), as conic stops
    # over the half turn from the left end (-90deg) to the right end.
    bands = []
    if thresholds and cuts:
        edges = [lo, *cuts, hi]
        for a, b in zip(edges, edges[1:]):
            band = _LEVEL_ROLE[level((a + b) / 2, thresholds)]
            bands.append(f"rgba(var(--bs-{band}-rgb), .28) {_frac(a, lo, hi) * 180:.1f}deg "
                         f"{_frac(b, lo, hi) * 180:.1f}deg")
    track = ", ".join(bands) if bands else "var(--bs-secondary-bg) 0deg 180deg"
    turn = _frac(v, lo, hi) * 180
    shown = format_value(v, unit)
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    # A threshold is a mark across the band ring, its value in the tooltip.
    ticks = [html.Span(className="qg-tick", title=f"threshold {format_value(c, unit)}",
                       style={"transform": f"rotate({_frac(c, lo, hi) * 180 - 90:.1f}deg)"})
             for c in cuts if lo < c < hi]
    return html.Div([
        html.Div([
            html.Div(className="qg-bands", style={"background": f"conic-gradient(from -90deg at 50% 100%, {track}, "
                                                                f"transparent 180deg)"}),
            html.Div(className="qg-arc", style={"background": f"conic-gradient(from -90deg at 50% 100%, "
                                                              f"var(--bs-{role}) 0deg {turn:.1f}deg, "
                                                              f"var(--bs-secondary-bg) {turn:.1f}deg 180deg, "
                                                              f"transparent 180deg)"}),
            *ticks,
            html.Div(shown, className=f"qg-value fw-semibold text-{role}-emphasis"),
        ], className="qg-dial"),
        html.Div([html.Span(format_value(lo, unit)), html.Span(format_value(hi, unit))],
                 className="qg-ends small text-body-secondary"),
    ], className=f"qms-gauge qg-level-{lv or 'none'}", role="meter", title=f"{title}: {shown}" if title else shown,
        **({"style": {"height": f"{height}px"}} if height else {}),
        **{"data-widget": "gauge_chart", "data-value": v, "data-min": lo, "data-max": hi,
           "data-level": lv or "", "data-colour": role, "data-bands": "|".join(bands),
           "aria-valuenow": v, "aria-valuemin": lo, "aria-valuemax": hi, "aria-valuetext": shown,
           "aria-label": title or "gauge"}, **kw)


def progress_bar(value: Any, target: Any = None, *, unit: str | None = None, label: str | None = None,
                 mode: str = "light", id: Any = None, thresholds: Mapping[str, Any] | None = None,
                 round_money: bool = False) -> html.Div:
    """Progress of `value` towards `target` (same unit). No target, or no value, is no data.
    With `thresholds` the bar is coloured by the level `value` has reached (see `level`)."""
    if isinstance(value, Mapping):
        unit = unit or value.get("unit")
        target = value.get("target", target)
    v, t = number(value), number(target)
    if v is None or t is None or t <= 0:
        return placeholder("progress_bar", id=id)
    share = v / t * 100
    lv = level(v, thresholds)
    colour = LEVEL_BS[lv] if lv else "success" if share >= 100 else "primary"
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    money = {"round_money": round_money}
    return html.Div([
        html.Div([html.Span(label or "", className="me-auto"),
                  html.Span(f"{format_value(v, unit, **money)} / {format_value(t, unit, **money)}",
                            className="text-body-secondary")],
                 className="d-flex small mb-1"),
        dbc.Progress(value=max(0.0, min(share, 100.0)), label=f"{share:.0f}%", color=colour,
                     className=f"widget-progress progress-level-{lv or 'none'}", style={"height": "1.25rem"}),
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
                     height: int | None = None, round_money: bool = False) -> Any:
    """Side-by-side bars: [{"label", "value", "previous"}], {label: value}, or dashboard widgets
    (current against previous window). Missing values are missing bars, not zero-height ones."""
    rows = _comparison_items(items)
    cur = [number(r["value"]) for r in rows]
    prev = [number(r.get("previous")) for r in rows]
    if not rows or all_missing(cur + prev):
        return placeholder("comparison_chart", id=id)
    labels = [str(r["label"]) for r in rows]
    traces = [trace("bar", x=labels, y=prev, name=previous_name, opacity=0.55)] if not all_missing(prev) else []
    traces.append(trace("bar", x=labels, y=cur, name=current_name, cliponaxis=False, textposition="outside",
                        text=[format_value(v, unit, round_money=round_money) for v in cur]))
    ticks = _TICKS.get(unit or "", {})
    layout = {**({"yaxis": dict(ticks)} if ticks else {}), "barmode": "group", "showlegend": not all_missing(prev)}
    return graph({"data": traces, "layout": layout}, "comparison_chart", mode=mode, id=id, height=height, title=title)


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
