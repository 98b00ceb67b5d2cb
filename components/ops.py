"""Workflow and agent widgets for the operational dashboard (seed §2.2, §4.1 workflow_widgets):
the 4-step pipeline, queue depths, a timeline of events, a kanban board of active
workflows and a grid of agents.

Inputs are the aggregator's state rows (`data.aggregator._display`/`_timelines`): agents
`{agent_id, status, load, skills, since}`, queues `{queue, depth, since}`, active workflows
`{workflow_id, author, team, repository, pr_number, created, step, step_since, review_started}`,
or the matching KPI values, and raw events (EVENTS.md).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html

from components import theme
from components.charts import level
from components.links import AGENT, WORKFLOW, entity_link
from components.common import (GL_THRESHOLD, NO_DATA, STEP_KPIS, STEP_LABELS, STEPS, all_missing, graph, mappings,
                               number, placeholder, short_time, step_counts, unwrap)


def pipeline_visualizer(counts: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, *, mode: str = "light",
                        id: Any = None, title: str | None = None, height: int | None = 260) -> Any:
    """Active workflows in each of the 4 QMS steps, in process order.

    `counts` is {step: count|None} (step names or the step KPI ids, values plain or KPI
    data), or the active workflow rows themselves. Each bar's row carries its step (data-key).
    """
    if counts is None:
        return placeholder("pipeline_visualizer", id=id)
    if not isinstance(counts, Mapping):
        rows = mappings(counts)
        if not rows:
            return placeholder("pipeline_visualizer", id=id)
        counts = step_counts(rows)
    by_step = {STEP_KPIS.get(k, k): v for k, v in counts.items()}
    values = [number(by_step.get(s)) for s in STEPS]
    if all_missing(values):
        return placeholder("pipeline_visualizer", id=id)
    rows = [{"label": f"{i}. {STEP_LABELS[s]}", "key": s, "value": v, "role": "primary",
             "text": NO_DATA if v is None else f"{v:,.0f}"} for i, (s, v) in enumerate(zip(STEPS, values), 1)]
    return bar_list(rows, "pipeline_visualizer", id=id, caption="active workflows per step")


def bar_list(rows: Sequence[Mapping[str, Any]], widget: str, *, id: Any = None, marks: Sequence[tuple[float, str]] = (),
             top: float | None = None, headroom: float = 1.0, caption: str | None = None) -> html.Div:
    """Labelled horizontal bars in HTML, one row per item ({label, key, value, text, role[, hover]}:
    `role` a Bootstrap colour; value None draws no bar). `marks` are (value, role) lines across
    every track (thresholds), `top` the scale's end (default: the largest value or mark), times
    `headroom`.

    A few bars did not need a Plotly chart: one cost the browser ~40–60 ms of main thread to
    draw and resize (docs/PERFORMANCE.md, stop 18); this draws in the page's own layout pass
    and follows the light/dark theme through Bootstrap's CSS variables."""
    scale = (top or max([number(r.get("value")) or 0 for r in rows] + [m for m, _ in marks] + [1])) * headroom
    pct = lambda x: max(0.0, min(100.0, x / scale * 100))          # noqa: E731
    # Threshold lines as gradient stops on each track: no element per mark.
    lines = ", ".join(f"transparent calc({pct(m):.2f}% - 1px), var(--bs-{role}) calc({pct(m):.2f}% - 1px) "
                      f"{pct(m):.2f}%, transparent {pct(m):.2f}%" for m, role in sorted(marks))
    track = {"backgroundImage": f"linear-gradient(to right, {lines})"} if lines else {}
    items = []
    for r in rows:
        v = number(r.get("value"))
        items.append(html.Div([
            html.Span(r["label"], className="qb-label text-truncate", title=r["label"]),
            html.Div(html.Div(className="qb-fill", style={"width": f"{pct(v):.2f}%",
                                                            "background": f"var(--bs-{r.get('role', 'primary')})"})
                     if v is not None else None, className="qb-track", style=track),
            html.Span(r.get("text", ""), className="qb-num"),
        ], className="qb-row", title=r.get("hover") or f"{r['label']}: {r.get('text', '')}",
            **{"data-key": str(r.get("key", r["label"])), "data-value": "" if v is None else v,
               "data-role": r.get("role", "primary")}))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([*items, html.Div(caption, className="qb-caption small text-body-secondary") if caption else None],
                    className=f"qms-bars widget-{widget}", **{"data-widget": widget}, **kw)


def queue_level(depth: float | None, warning: float = 10, critical: float = 20) -> str | None:
    """'ok' | 'warning' | 'critical' for a queue depth (the seed's queue_depth_warning/critical:
    reaching a threshold counts); None for no data."""
    if depth is None:
        return None
    return "critical" if depth >= critical else "warning" if depth >= warning else "ok"


_QUEUE_ROLE = {"ok": "success", "warning": "warning", "critical": "danger", None: "secondary"}


def queue_monitor(queues: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, warning: float | None = 10,
                  critical: float | None = 20, *, mode: str = "light", id: Any = None, title: str | None = None,
                  height: int | None = None, direction: str = "above") -> Any:
    """Queue depths as bars coloured by threshold (`direction` "above": reaching one is bad).
    `queues` is the queue state rows ({queue, depth, since}) or {queue: depth} (also
    `queue_depth.<queue>` KPI ids)."""
    if isinstance(queues, Mapping):
        rows = [{"queue": k.removeprefix("queue_depth."), "depth": v} for k, v in queues.items()]
    else:
        rows = [r for r in mappings(queues) if r.get("queue") is not None]
    depths = [number(r.get("depth")) for r in rows]
    if not rows or all_missing(depths):
        return placeholder("queue_monitor", id=id)
    th = {"warning": warning, "critical": critical, "direction": direction}
    items = []
    for r, d in zip(rows, depths):
        text = NO_DATA if d is None else f"{d:,.0f}"
        since = f", since {short_time(r.get('since'))} UTC" if r.get("since") else ""
        items.append({"label": str(r["queue"]), "key": str(r["queue"]), "value": d, "text": text,
                      "role": _QUEUE_ROLE[level(d, th)], "hover": f"{r['queue']}: {text}{since}"})
    marks = [(at, role) for at, role in ((warning, "warning"), (critical, "danger")) if at is not None]
    caption = " · ".join(f"{name} {at:,.0f}" for at, name in ((warning, "warning"), (critical, "critical"))
                         if at is not None)
    return bar_list(items, "queue_monitor", id=id, marks=marks, headroom=1.15,
                    caption=f"depth; {caption}" if caption else "depth")


def _summary(data: Mapping[str, Any] | None, keys: int = 4) -> str:
    """The first few fields of an event's data, for hover text."""
    items = [(k, v) for k, v in (data or {}).items() if not isinstance(v, (dict, list)) and v is not None]
    return ", ".join(f"{k}={v}" for k, v in items[:keys])


def timeline_view(events: Iterable[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                  title: str | None = None, height: int | None = None) -> Any:
    """Events (EVENTS.md or audit entries, bare or wrapped) as points in time, one row per
    type and one colour per category; a point's customdata is the event id."""
    evs = [e for e in (unwrap(x) for x in mappings(events)) if e.get("timestamp") and e.get("type")]
    if not evs:
        return placeholder("timeline_view", id=id)
    by_cat: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in evs:
        by_cat[str(e["type"]).split(".", 1)[0]].append(e)
    cls = go.Scattergl if len(evs) > GL_THRESHOLD else go.Scatter
    fig = go.Figure()
    for cat in sorted(by_cat):
        group = by_cat[cat]
        fig.add_trace(cls(
            x=[e["timestamp"] for e in group], y=[e["type"] for e in group], mode="markers", name=cat,
            customdata=[e.get("id") for e in group], hovertext=[_summary(e.get("data")) for e in group],
            marker={"size": 8, "opacity": 0.8}, hovertemplate="%{x}<br>%{y}<br>%{hovertext}<extra></extra>"))
    n_types = len({e["type"] for e in evs})
    fig.update_yaxes(categoryorder="category descending", title=None)
    fig.update_layout(height=height or max(220, 60 + 26 * n_types), legend={"orientation": "h", "y": -0.15})
    return graph(fig, "timeline_view", mode=mode, id=id, title=title)


def _parse(ts: Any) -> datetime | None:
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts / 1000, timezone.utc)
    if isinstance(ts, datetime):
        return ts
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def age(since: Any, now: Any) -> str | None:
    """'3h 05m' from `since` to `now` (ISO strings, epoch ms or datetimes); None if either is unknown."""
    a, b = _parse(since) if since else None, _parse(now) if now is not None else None
    if a is None or b is None:
        return None
    minutes = max(0, int((b - a).total_seconds() // 60))
    if minutes >= 24 * 60:
        return f"{minutes // 1440}d {minutes % 1440 // 60}h"
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _kanban_card(row: Mapping[str, Any], now: Any) -> html.Div:
    wf = str(row.get("workflow_id"))
    repo = row.get("repository")
    pr = row.get("pr_number")
    waited = age(row.get("step_since"), now)
    since = f"in step {waited}" if waited else (f"since {short_time(row.get('step_since'))}"
                                                 if row.get("step_since") else "")
    who = " · ".join(str(x) for x in (row.get("author"), row.get("team")) if x)
    return html.Div([
        html.Div(entity_link(WORKFLOW, wf, f"{repo} #{pr}" if repo else wf), className="fw-semibold text-truncate",
                 title=wf),
        html.Div(who, className="small text-body-secondary text-truncate") if who else None,
        html.Div([html.Span(since, className="me-auto"),
                  dbc.Badge("reviewing", color="info", className="ms-1") if row.get("review_started") else None],
                 className="d-flex small text-body-secondary"),
    ], className="kanban-card card card-body p-2 mb-2", id={"type": "kanban-card", "workflow": wf})


def kanban_board(active_rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                 now: Any = None, max_cards: int = 50) -> Any:
    """Active workflows as cards in one column per QMS step, longest waiting first. Workflows
    that have entered no step yet get their own column, shown only when there are some."""
    rows = [r for r in mappings(active_rows) if r.get("workflow_id")]
    if not rows:
        return placeholder("kanban_board", id=id)
    cols: dict[str | None, list[Mapping[str, Any]]] = {s: [] for s in STEPS}
    for r in rows:
        cols.setdefault(r.get("step") if r.get("step") in cols else None, []).append(r)
    out = []
    for step, items in cols.items():
        items = sorted(items, key=lambda r: (r.get("step_since") is None, str(r.get("step_since") or "")))
        cards: list[Any] = [_kanban_card(r, now) for r in items[:max_cards]]
        if len(items) > max_cards:
            cards.append(html.Div(f"+{len(items) - max_cards} more", className="small text-body-secondary"))
        label = STEP_LABELS.get(step or "", "Not yet in a step")
        out.append(dbc.Col(html.Div([
            html.Div([html.Span(label, className="fw-semibold me-auto"), dbc.Badge(str(len(items)), color="secondary",
                                                                                  className="kanban-count")],
                     className="d-flex align-items-center mb-2"),
            html.Div(cards, className="kanban-cards"),
        ], className="kanban-column h-100 p-2 rounded bg-body-tertiary", **{"data-step": step or "none"}),
            xs=12, md=6, xl=True, className="mb-3"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div(dbc.Row(out, className="g-2"), className="kanban-board", **{"data-widget": "kanban_board"}, **kw)


AGENT_STATUSES = ("active", "overloaded", "idle", "training", "down")


def _agent_tile(a: Mapping[str, Any]) -> html.Div:
    """One agent: name (its page), status, load bar, skills, since when. Few components — an
    organisation's agents are the largest widget of a dashboard page to mount."""
    status = a.get("status")
    load = number(a.get("load"))
    bs = theme.status_bs(status)
    load_part: Any = (dbc.Progress(value=max(0.0, min(load * 100, 100.0)), label=f"{load * 100:.0f}%",
                                   color=theme.status_bs(status), style={"height": "0.9rem"}, className="agent-load")
                      if load is not None else html.Div("load: no data", className="small text-body-secondary"))
    skills = [str(s) for s in a.get("skills") or []]
    return html.Div([
        html.Div([entity_link(AGENT, str(a["agent_id"]), className="entity-link fw-semibold text-truncate me-auto"),
                  dbc.Badge(status or "unknown", color=bs, className="agent-status")], className="d-flex mb-1"),
        load_part,
        html.Div(" · ".join(skills), className="small mt-1 agent-skills text-truncate", title=", ".join(skills))
        if skills else None,
        html.Div(f"since {short_time(a.get('since'))}", className="small text-body-secondary mt-1")
        if a.get("since") else None,
    ], className=f"agent-tile card card-body p-2 border-start border-4 border-{bs}",
        id={"type": "agent-tile", "agent": str(a["agent_id"])})


def agent_status_grid(agents: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None) -> Any:
    """Agent state rows as tiles (status, load, skills) under a count per status."""
    rows = sorted((a for a in mappings(agents) if a.get("agent_id")), key=lambda a: str(a["agent_id"]))
    if not rows:
        return placeholder("agent_status_grid", id=id)
    counts = Counter(str(a.get("status")) for a in rows)
    order = [s for s in AGENT_STATUSES if counts[s]] + sorted(s for s in counts if s not in AGENT_STATUSES)
    summary = [dbc.Badge(f"{s} {counts[s]}", color=theme.status_bs(s), className=f"me-1 agent-count agent-count-{s}")
               for s in order]
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([
        html.Div([html.Span(f"{len(rows)} agents", className="me-2 fw-semibold"), *summary], className="mb-2"),
        html.Div([_agent_tile(a) for a in rows], className="agent-tiles"),     # a CSS grid (assets/dashboard.css)
    ], className="agent-status-grid", **{"data-widget": "agent_status_grid"}, **kw)
