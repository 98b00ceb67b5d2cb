"""Quality widgets for the QA and executive dashboards (seed §2.4, §4.1 quality_widgets):
defect distribution, quality gate performance (with a click-to-drill-down gate name on
every bar) and the per-gate figures in one table, compliance status, a likelihood × impact
risk matrix, and from gate runs' `metrics`: code quality and test coverage over time.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import html

from components import theme
from components.charts import level
from components.common import (NO_DATA, SEVERITIES, all_missing, graph, hline, mappings, number, pct, placeholder,
                               short_time, trace, unwrap)
from components.kpi import LEVEL_BS, format_value, title_of
from components.links import GATE, entity_link


def _ordered(counts: Mapping[str, Any], dim: str) -> list[tuple[str, float | None]]:
    items = [(str(k), number(v)) for k, v in counts.items()]
    if dim == "severity":
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(items, key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    return sorted(items, key=lambda kv: (-(kv[1] or 0), kv[0]))


def _defect_dims(counts: Any) -> dict[str, Mapping[str, Any]]:
    if isinstance(counts, Mapping):
        nested = {k: v for k, v in counts.items() if isinstance(v, Mapping)}     # {dimension: {name: n}}
        if nested:
            return nested
        return {"severity" if set(counts) <= set(SEVERITIES) else "category": counts}
    rows = [unwrap(r) for r in mappings(counts)]
    rows = [r.get("data", r) if isinstance(r.get("data"), Mapping) else r for r in rows]
    dims: dict[str, Mapping[str, Any]] = {}
    sev = Counter(str(r["severity"]) for r in rows if r.get("severity"))
    cat = Counter(str(r["category"]) for r in rows if r.get("category"))
    if sev:
        dims["severity"] = sev
    if cat:
        dims["category"] = cat
    return dims


def defect_distribution(counts: Any, *, mode: str = "light", id: Any = None, title: str | None = None,
                        height: int | None = None) -> Any:
    """Defects by severity and/or category: {severity: n}, {category: n}, {"severity": {...},
    "category": {...}}, or defect rows/events to count. Severities keep their colours."""
    dims = {k: _ordered(v, k) for k, v in _defect_dims(counts).items() if v}
    if not dims or all_missing(v for items in dims.values() for _, v in items):
        return placeholder("defect_distribution", id=id)
    p = theme.palette(mode)
    # What Plotly's make_subplots(rows=1, cols=len(dims), subplot_titles=...) gives as JSON:
    # columns 0.1 of the width apart, each titled "by <dimension>" when there are two.
    n = len(dims)
    width = (1.0 - 0.1 * (n - 1)) / n
    traces, layout, titles = [], {}, []
    for col, (dim, items) in enumerate(dims.items(), 1):
        colours = [theme.status_color(k, mode) if dim == "severity" else p["primary"] for k, _ in items]
        keys = [k for k, _ in items]
        x, y = ("x", "y") if col == 1 else (f"x{col}", f"y{col}")
        traces.append(trace("bar", x=keys, y=[v for _, v in items], name=dim, customdata=keys,
                            marker={"color": colours}, text=[NO_DATA if v is None else f"{v:,.0f}" for _, v in items],
                            textposition="outside", cliponaxis=False,
                            hovertemplate="%{x}: %{text}<extra>" + dim + "</extra>", xaxis=x, yaxis=y))
        lo = (col - 1) * (width + 0.1)
        domain = [lo, lo + width] if n > 1 else [0.0, 1.0]
        layout["xaxis" + x[1:]] = {"anchor": y, "domain": domain}
        layout["yaxis" + y[1:]] = {"anchor": x, "domain": [0.0, 1.0], "rangemode": "tozero"}
        if n > 1:
            titles.append({"font": {"size": 16}, "showarrow": False, "text": f"by {dim}", "x": (domain[0] + domain[1]) / 2,
                           "xanchor": "center", "xref": "paper", "y": 1.0, "yanchor": "bottom", "yref": "paper"})
    if titles:
        layout["annotations"] = titles
    layout["showlegend"] = False
    return graph({"data": traces, "layout": layout}, "defect_distribution", mode=mode, id=id, height=height, title=title)


def gates_from_kpis(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-gate KPIs (`gate.<name>.pass_rate|executions|p95_time`, plain or KPI data) as gate rows."""
    gates: dict[str, dict[str, Any]] = {}
    for key, v in values.items():
        if key.startswith("gate.") and key.count(".") >= 2:
            name, field = key[5:].rsplit(".", 1)
            if field in ("pass_rate", "executions", "p95_time"):
                gates.setdefault(name, {"gate": name})[field] = number(v)
    return [gates[g] for g in sorted(gates)]


# A gate's pass rate: below 90 % is a warning, below 75 % critical (unless a widget says otherwise).
GATE_THRESHOLDS = {"warning": 90.0, "critical": 75.0, "direction": "below"}


def _gate_rows(gates: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return gates_from_kpis(gates) if isinstance(gates, Mapping) else [g for g in mappings(gates) if g.get("gate")]


def gate_table(gates: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, *, mode: str = "light", id: Any = None,
               thresholds: Mapping[str, Any] | None = None, max_rows: int = 100) -> Any:
    """Every gate's figures in ONE table ({gate, pass_rate, executions, p95_time} rows, or the
    per-gate KPIs): the gate (linked to its page), its pass rate coloured by `thresholds`
    (default GATE_THRESHOLDS), executions and p95 time. Worst pass rate first is the caller's sort."""
    rows = _gate_rows(gates)
    if not rows or all_missing(number(g.get(k)) for g in rows for k in ("pass_rate", "executions", "p95_time")):
        return placeholder("gate_table", id=id)
    th = thresholds or GATE_THRESHOLDS
    body = []
    for g in rows[:max_rows]:
        rate = number(g.get("pass_rate"))
        lv = level(rate, th)
        body.append(html.Tr([
            html.Td(entity_link(GATE, str(g["gate"])), className="gate-name"),
            html.Td(pct(rate), className=f"gate-rate gate-level-{lv or 'none'} fw-semibold"
                    + (f" text-{LEVEL_BS[lv]}-emphasis" if lv else " text-body-secondary"),
                    title=f"{lv} (thresholds: warning {th.get('warning')}, critical {th.get('critical')})" if lv else None),
            html.Td(format_value(number(g.get("executions")), "count"), className="gate-runs text-end"),
            html.Td(format_value(number(g.get("p95_time")), "minutes"), className="gate-p95 text-end"),
        ], **{"data-gate": str(g["gate"])}))
    out: list[Any] = [dbc.Table([
        html.Thead(html.Tr([html.Th("Gate"), html.Th("Pass rate"), html.Th("Runs", className="text-end"),
                            html.Th("p95 time", className="text-end")])),
        html.Tbody(body)], size="sm", hover=True, responsive=True, className="gate-table mb-0")]
    if len(rows) > max_rows:
        out.append(html.Div(f"+{len(rows) - max_rows} more", className="small text-body-secondary"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div(out, className="gate-table-wrap", **{"data-widget": "gate_table"}, **kw)


def gate_performance(gates: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, *, mode: str = "light",
                     id: Any = None, title: str | None = None, height: int | None = None,
                     thresholds: Mapping[str, float] | None = None) -> Any:
    """Pass rate per quality gate (bars, coloured by `thresholds`, default warning 90 /
    critical 75 %) with its p95 time in minutes (markers, right axis, and in the bar text).
    Every bar and marker carries the gate name as customdata, for the drill-down."""
    rows = _gate_rows(gates)
    rates = [number(g.get("pass_rate")) for g in rows]
    p95 = [number(g.get("p95_time")) for g in rows]
    runs = [number(g.get("executions")) for g in rows]
    if not rows or all_missing(rates + p95 + runs):
        return placeholder("gate_performance", id=id)
    p = theme.palette(mode)
    th = thresholds or GATE_THRESHOLDS
    role = {**LEVEL_BS, None: "secondary"}
    names = [str(g["gate"]) for g in rows]

    def bar_text(r: float | None, t: float | None) -> str:
        return f"{pct(r)}<br>p95 {format_value(t, 'minutes')}" if t is not None else pct(r)

    traces = [trace(
        "bar", x=names, y=rates, name="pass rate", customdata=names,
        marker={"color": [p[role[level(r, th)]] for r in rates]},
        text=[bar_text(r, t) for r, t in zip(rates, p95)], textposition="auto",
        hovertext=[f"{format_value(n, 'count')} runs · p95 {format_value(t, 'minutes')}" for n, t in zip(runs, p95)],
        hovertemplate="%{customdata}<br>pass rate %{y:.1f}%<br>%{hovertext}<extra></extra>")]
    if not all_missing(p95):
        traces.append(trace(
            "scatter", x=names, y=p95, name="p95 time (min)", yaxis="y2", mode="markers", customdata=names,
            marker={"symbol": "diamond", "size": 10, "color": p["text"]},
            hovertemplate="%{customdata}<br>p95 %{y:.1f} min<extra></extra>"))
    layout = {"yaxis": {"range": [0, 105], "ticksuffix": "%", "title": {"text": "pass rate"}},
              "yaxis2": {"overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False,
                         "title": {"text": "p95 (min)"}},
              "legend": {"orientation": "h", "y": 1.12}, "clickmode": "event",
              "xaxis": {"tickangle": -20, "automargin": True}}
    return graph({"data": traces, "layout": layout}, "gate_performance", mode=mode, id=id, height=height, title=title)


COMPLIANCE_KPIS = (("compliance_checks_passed", "percentage"), ("audit_readiness_score", "percentage"),
                   ("policy_violations", "count"), ("remediation_pending", "count"))


def _tile(kpi_id: str, value: float | None, unit: str, colour: str) -> dbc.Col:
    return dbc.Col(html.Div([
        html.Div(title_of(kpi_id), className="small text-body-secondary"),
        html.Div(format_value(value, unit), className=f"fs-4 fw-semibold text-{colour}"),
    ], className="compliance-tile", **{"data-kpi": kpi_id}), xs=6, lg=3, className="mb-2")


def compliance_status(data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, *, mode: str = "light",
                      id: Any = None, thresholds: Mapping[str, float] | None = None, max_rows: int = 50) -> Any:
    """The compliance KPIs (plain or KPI data; `compliance_adherence` stands for
    `compliance_checks_passed`) and, under `"violations"`, the open violation rows
    ({workflow_id, policy, failed_checks, since}). A bare list is the violations alone."""
    if data is None:
        return placeholder("compliance_status", id=id)
    if not isinstance(data, Mapping):
        data = {"violations": mappings(data)}
    values = {k: number(data.get(k)) for k, _ in COMPLIANCE_KPIS}
    if values["compliance_checks_passed"] is None:
        values["compliance_checks_passed"] = number(data.get("compliance_adherence"))
    violations = data.get("violations")
    if all_missing(values.values()) and not violations:
        return placeholder("compliance_status", id=id)
    th = thresholds or {"warning": 95.0, "critical": 90.0}
    colours = {"ok": "success", "warning": "warning", "critical": "danger", None: "body-secondary"}
    tiles = []
    for kpi_id, unit in COMPLIANCE_KPIS:
        v = values[kpi_id]
        if unit == "percentage":
            colour = colours[level(v, th)]
        else:
            colour = "body-secondary" if v is None else "success" if v == 0 else "warning"
        tiles.append(_tile(kpi_id, v, unit, colour))
    body: list[Any] = [dbc.Row(tiles, className="g-2")]
    if violations is not None:
        rows = sorted(mappings(violations), key=lambda r: str(r.get("since") or ""))
        if rows:
            body.append(dbc.Table([
                html.Thead(html.Tr([html.Th(h) for h in ("Workflow", "Policy", "Failed checks", "Since (UTC)")])),
                html.Tbody([html.Tr([html.Td(r.get("workflow_id")), html.Td(r.get("policy")),
                                     html.Td(format_value(number(r.get("failed_checks")), "count")),
                                     html.Td(short_time(r.get("since")))]) for r in rows[:max_rows]]),
            ], size="sm", hover=True, className="compliance-violations mb-0 mt-2"))
            if len(rows) > max_rows:
                body.append(html.Div(f"+{len(rows) - max_rows} more", className="small text-body-secondary"))
        else:
            body.append(html.Div("No open violations", className="small text-success mt-2 compliance-none"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div(body, className="compliance-status", **{"data-widget": "compliance_status"}, **kw)


_LEVEL_WORDS = {"very_low": 1, "low": 2, "medium": 3, "high": 4, "very_high": 5,
                "rare": 1, "unlikely": 2, "possible": 3, "likely": 4, "almost_certain": 5,
                "negligible": 1, "minor": 2, "moderate": 3, "major": 4, "severe": 5, "critical": 5}


_SPREAD = [(0, 0), (0.2, 0), (-0.2, 0), (0, 0.2), (0, -0.2), (0.2, 0.2), (-0.2, -0.2), (0.2, -0.2), (-0.2, 0.2)]


def _scale(v: Any) -> float | None:
    if isinstance(v, str) and not v.replace(".", "", 1).isdigit():
        return _LEVEL_WORDS.get(v.strip().lower().replace(" ", "_"))
    return number(v)


def risk_matrix(risks: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                title: str | None = None, height: int | None = 360, size: int = 5) -> Any:
    """Risks ({name, likelihood, impact, status?}; levels 1..size or words like "high") on a
    likelihood × impact grid. Mitigated/closed risks are hollow markers; customdata is the name."""
    rows = []
    for r in mappings(risks):
        li, im = _scale(r.get("likelihood")), _scale(r.get("impact"))
        if li is not None and im is not None:
            rows.append((str(r.get("name") or r.get("risk") or r.get("title") or "risk"), li, im, r.get("status")))
    if not rows:
        return placeholder("risk_matrix", id=id)
    p = theme.palette(mode)
    axis = list(range(1, size + 1))
    traces = [trace(
        "heatmap", x=axis, y=axis, z=[[i * j for i in axis] for j in axis], showscale=False, opacity=0.35, hoverinfo="skip",
        colorscale=[[0, p["success"]], [0.45, p["warning"]], [1, p["danger"]]])]
    # Risks in the same cell are spread along a small circle so none hides another.
    seen: Counter[tuple[float, float]] = Counter()
    xs, ys = [], []
    for _, li, im, _ in rows:
        dx, dy = _SPREAD[seen[(im, li)] % len(_SPREAD)]
        seen[(im, li)] += 1
        xs.append(im + dx)
        ys.append(li + dy)
    done = {"mitigated", "closed", "resolved", "accepted"}
    traces.append(trace(
        "scatter", x=xs, y=ys, mode="markers+text", text=[n for n, *_ in rows], textposition="top center",
        customdata=[n for n, *_ in rows],
        hovertext=[f"likelihood {li:g} · impact {im:g}" + (f" · {st}" if st else "") for _, li, im, st in rows],
        hovertemplate="%{customdata}<br>%{hovertext}<extra></extra>",
        marker={"size": 12, "color": p["text"], "line": {"width": 2, "color": p["text"]},
                "symbol": ["circle-open" if str(st).lower() in done else "circle" for *_, st in rows]}))
    ax = {"range": [0.5, size + 0.5], "dtick": 1, "showgrid": False, "zeroline": False}
    layout = {"xaxis": {"title": {"text": "impact"}, **ax}, "yaxis": {"title": {"text": "likelihood"}, **ax},
              "showlegend": False}
    return graph({"data": traces, "layout": layout}, "risk_matrix", mode=mode, id=id, height=height, title=title)


def line_traces(groups: Mapping[str, list[Mapping[str, Any]]], value: str, unit: str | None = None) -> list[dict[str, Any]]:
    """One line per group of {t, <value>} rows, in time order; a None value is a gap. Plain
    trace dicts (common.trace)."""
    out = []
    for name in sorted(groups):
        pts = sorted(groups[name], key=lambda r: str(r.get("t")))
        ys = [number(r.get(value)) for r in pts]
        out.append(trace("scatter", connectgaps=False, hovertemplate="%{x}<br>%{hovertext}<extra>%{fullData.name}</extra>",
                         hovertext=[format_value(v, unit) if unit else ("" if v is None else f"{v:,.2f}") for v in ys],
                         mode="lines+markers" if len(pts) <= 60 else "lines", name=name,
                         x=[r.get("t") for r in pts], y=ys))
    return out


def group_rows(rows: Sequence[Mapping[str, Any]], key: Any) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def code_quality(rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                 title: str | None = None, height: int | None = None) -> Any:
    """Gate runs' `metrics` over time ({t, gate, metric, value}): one line per gate and metric
    (complexity, duplications, issues…)."""
    rows = [r for r in mappings(rows) if r.get("t") is not None and r.get("metric")]
    if not rows or all_missing(number(r.get("value")) for r in rows):
        return placeholder("code_quality", id=id)
    gates = {r.get("gate") for r in rows}
    traces = line_traces(group_rows(rows, lambda r: f"{r.get('gate')} · {r['metric']}" if len(gates) > 1
                                    else str(r["metric"])), "value")
    return graph({"data": traces, "layout": {"hovermode": "x unified", "showlegend": True}}, "code_quality",
                 mode=mode, id=id, height=height, title=title)


# Coverage below 80 % is a warning, below 60 % critical (unless a widget says otherwise).
COVERAGE_THRESHOLDS = {"warning": 80.0, "critical": 60.0, "direction": "below"}


def test_coverage(rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                  title: str | None = None, height: int | None = None,
                  thresholds: Mapping[str, Any] | None = None) -> Any:
    """Coverage over time per repository ({t, repository, coverage}, in %) and each repository's
    latest value as a badge coloured by `thresholds` (default COVERAGE_THRESHOLDS), which are also
    drawn as dashed lines."""
    rows = [r for r in mappings(rows) if r.get("t") is not None]
    if not rows or all_missing(number(r.get("coverage")) for r in rows):
        return placeholder("test_coverage", id=id)
    th = thresholds or COVERAGE_THRESHOLDS
    p = theme.palette(mode)
    groups = group_rows(rows, lambda r: str(r.get("repository") or "all"))
    lines = [hline(number(th[key]), {"color": p[role], "dash": "dash", "width": 1})      # type: ignore[arg-type]
             for key, role in (("warning", "warning"), ("critical", "danger")) if number(th.get(key)) is not None]
    fig = {"data": line_traces(groups, "coverage", "percentage"),
           "layout": {**({"shapes": lines} if lines else {}), "yaxis": {"range": [0, 102], "ticksuffix": "%"},
                      "hovermode": "x unified", "showlegend": len(groups) > 1}}
    latest = []
    for repo in sorted(groups):
        known = [r for r in sorted(groups[repo], key=lambda r: str(r.get("t"))) if number(r.get("coverage")) is not None]
        v = number(known[-1].get("coverage")) if known else None
        lv = level(v, th)
        latest.append(html.Span([html.Span(repo, className="me-1"), html.B(pct(v))],
                                className=f"badge coverage-latest coverage-level-{lv or 'none'} me-2 mb-1 "
                                          f"text-bg-{LEVEL_BS.get(lv or '', 'secondary')}",
                                **{"data-repository": repo}))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([html.Div(latest, className="coverage-latest-row mb-1"),
                     graph(fig, "test_coverage", mode=mode, height=height, title=title)],
                    className="test-coverage", **{"data-widget": "test_coverage"}, **kw)
