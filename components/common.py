"""What every widget shares: the "no data" placeholder, the themed graph wrapper, the QMS
steps, and small readers for the shapes the API serves (events, KPI data, timestamps).

The rule all widgets follow: no data is shown as "no data", never as a zero nobody
computed, and a None inside a series is a gap.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Iterable, Iterator, Mapping

import plotly.graph_objects as go
from dash import dcc, html

from components import theme

NO_DATA = "no data"
# Beyond this many points a line is drawn with WebGL (go.Scattergl): SVG slows past ~1k.
GL_THRESHOLD = 1000
GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]}


class Step(str, Enum):
    """The four QMS steps, in process order (EVENTS.md workflow.step_entered)."""

    DOR_VALIDATION = "dor_validation"
    CODE_REVIEW = "code_review"
    DOD_VALIDATION = "dod_validation"
    FINAL_APPROVAL = "final_approval"


STEPS: tuple[str, ...] = tuple(s.value for s in Step)
STEP_LABELS = {"dor_validation": "DoR validation", "code_review": "Code review",
               "dod_validation": "DoD validation", "final_approval": "Final approval"}
# The operational KPIs that count active workflows per step (METRICS.md), so a page can
# pass the dashboard's KPI values straight to the pipeline.
STEP_KPIS = {"pending_dor_validations": "dor_validation", "in_progress_reviews": "code_review",
             "awaiting_dod_validation": "dod_validation", "final_approvals_needed": "final_approval"}
SEVERITIES = ("critical", "major", "minor")


def placeholder(widget: str, *, id: Any = None, message: str = NO_DATA, className: str = "") -> html.Div:
    """The visible stand-in for a widget with nothing to show."""
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div(message, className=f"widget-no-data text-body-secondary text-center py-4 {className}".strip(),
                    **{"data-widget": widget}, **kw)


def trace(kind: str, **props: Any) -> dict[str, Any]:
    """A trace as the JSON Plotly's validated object of that type gives (`go.Scatter(...)` →
    {"type": "scatter", ...}; a prop set to None is left out, as Plotly leaves it out), built
    without it: the charts of a page are drawn on every fill, and Plotly's validation and
    copies were most of their drawing (tests/unit/test_render.py checks each builder's JSON
    against Plotly's own)."""
    return {"type": kind, **{k: v for k, v in props.items() if v is not None}}


def hline(y: float, line: Mapping[str, Any]) -> dict[str, Any]:
    """The shape Plotly's `add_hline(y=..., line=...)` adds to the layout."""
    return {"line": dict(line), "type": "line", "x0": 0, "x1": 1, "xref": "x domain", "y0": y, "y1": y, "yref": "y"}


def graph(fig: go.Figure | dict[str, Any], widget: str, *, mode: str = "light", id: Any = None,
          height: int | None = None, title: str | None = None) -> dcc.Graph:
    """A figure with the theme's template, in a dcc.Graph tagged with its widget type. The
    Graph holds the figure's JSON (what Plotly sends the browser): what is changed after the
    builders (the theme, the widget's display options, the margins) is changed in plain dicts,
    not through Plotly's update_layout, which validates and copies on every call (a fifth of a
    chart's drawing went there)."""
    figure = fig.to_plotly_json() if isinstance(fig, go.Figure) else fig
    theme.apply(figure, mode)
    layout = figure["layout"]
    if title:
        merge(layout, {"title": {"text": title}})
    if height:
        layout["height"] = height
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    if height:
        kw["style"] = {"height": f"{height}px"}      # style=None crashes dcc.Graph in the browser
    return dcc.Graph(figure=figure, config=GRAPH_CONFIG, className=f"widget-graph widget-{widget}", **kw)


def merge(into: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Plotly's update semantics on a figure's JSON, in place: nested dicts merge, anything else
    replaces, None removes."""
    for k, v in updates.items():
        if v is None:
            into.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = dict(v) if isinstance(v, Mapping) else v
    return into


def walk(c: Any) -> Iterator[Any]:
    """Every component in a Dash tree, depth first (children as a component, a list or text)."""
    if isinstance(c, (list, tuple)):
        for x in c:
            yield from walk(x)
        return
    if c is None or isinstance(c, (str, int, float)):
        return
    yield c
    yield from walk(getattr(c, "children", None))


def is_missing(value: Any) -> bool:
    """None, or a float NaN (pandas' missing value)."""
    return value is None or (isinstance(value, float) and value != value)


def all_missing(values: Iterable[Any]) -> bool:
    return all(is_missing(v) for v in values)


def number(value: Any) -> float | None:
    """`value` as a number, or None when it is missing; a KPI widget's `data` gives its current value."""
    if isinstance(value, Mapping):
        value = value.get("current_value", value.get("value"))
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def mappings(items: Any) -> list[Mapping[str, Any]]:
    """The dict items of a list input (None and stray values dropped)."""
    if items is None or isinstance(items, (str, bytes, Mapping)):
        return []
    return [x for x in items if isinstance(x, Mapping)]


def unwrap(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """An event in either accepted form (`{"event": {...}}` or bare) as the bare event."""
    inner = event.get("event")
    return inner if isinstance(inner, Mapping) else event


def step_counts(active_rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Active workflows per step from the operational state rows (rows with no step yet are
    left out, as in the step KPIs)."""
    counts = {s: 0 for s in STEPS}
    for row in active_rows:
        if row.get("step") in counts:
            counts[row["step"]] += 1
    return counts


def short_time(ts: str | None) -> str:
    """'2025-08-17T06:23:14.000Z' → '2025-08-17 06:23:14' (UTC); None → ''."""
    if not ts:
        return ""
    text = str(ts).replace("T", " ")
    return text.split(".")[0].rstrip("Z")


def fmt_bytes(n: Any) -> str:
    if is_missing(n):
        return NO_DATA
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def pct(value: float | None, digits: int = 1) -> str:
    return NO_DATA if value is None else f"{value:.{digits}f}%"
