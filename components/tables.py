"""Generic widgets: any rows as a small table, and a row of labelled numbers.

`table` shows whatever columns its rows have (or the ones asked for): ids of workflows,
agents and gates link to their pages (components.links), numbers are formatted by what
their column name says they are (`*_usd` dollars, `*_pct`/`*rate`/`coverage` percentages),
times read as UTC, a missing value is a dash, never 0. `stat_group` draws labelled numbers
side by side (the ROI: reviews, review cost, time saved, ROI).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import html

from components.common import is_missing, mappings, placeholder, short_time
from components.kpi import format_value
from components.links import cell

MISSING = "—"


def column_unit(column: str) -> str | None:
    """The METRICS.md unit a column name implies (None: a plain number)."""
    c = column.lower().rsplit(".", 1)[-1]
    if c.endswith("_usd") or c in ("cost", "saved", "usd"):
        return "usd"
    if c.endswith("_pct") or c.endswith("_rate") or c in ("coverage", "percentage", "share"):
        return "percentage"
    if c.endswith("_minutes") or c in ("p95_time", "minutes"):
        return "minutes"
    if c.endswith("_hours") or c == "hours":
        return "hours"
    return None


def column_label(column: str) -> str:
    """'data.failed_checks' → 'Failed checks'; 'cost_usd' → 'Cost (USD)'; 'roi_pct' → 'ROI (%)'."""
    c = column.removeprefix("data.")
    for suffix, unit in (("_usd", " (USD)"), ("_pct", " (%)")):
        if c.endswith(suffix):
            c = c.removesuffix(suffix)
            return (c.upper() if len(c) <= 3 else c.replace("_", " ").capitalize()) + unit
    return c.replace("_", " ").replace(".", " · ").capitalize()


def format_cell(column: str, value: Any, *, round_money: bool = False) -> Any:
    """One value as text (ids of known columns as links)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (int, float)):
        unit = column_unit(column)
        if unit:
            return format_value(float(value), unit, round_money=round_money)
        return f"{value:,}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.2f}"
    text = str(value)
    if len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":   # an ISO time
        return short_time(text)
    return cell(column, text)


def table(rows: Sequence[Mapping[str, Any]] | None, columns: Sequence[str | tuple[str, str]] | None = None, *,
          id: Any = None, max_rows: int = 50, empty: str | None = None, round_money: bool = False,
          widget: str = "table", className: str = "", mode: str = "light") -> Any:
    """Rows as a small table. `columns`: keys, or (key, label) pairs; default every key of the
    rows in first-seen order. `empty`: what an empty list says (an empty queue is a fact);
    without it an empty list is "no data". Rows past `max_rows` are counted, not drawn."""
    given, rows = rows, mappings(rows)
    if not rows:
        if empty is not None and given is not None:
            kw: dict[str, Any] = {"id": id} if id is not None else {}
            return html.Div(empty, className="text-body-secondary small widget-empty", **{"data-widget": widget}, **kw)
        return placeholder(widget, id=id)
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        columns = list(seen)
    cols = [(c, column_label(c)) if isinstance(c, str) else (c[0], c[1]) for c in columns]
    body = [html.Tr([html.Td(format_cell(k, r.get(k), round_money=round_money), className=f"col-{k}")
                     for k, _ in cols]) for r in rows[:max_rows]]
    out: list[Any] = [dbc.Table([html.Thead(html.Tr([html.Th(label) for _, label in cols])), html.Tbody(body)],
                                size="sm", hover=True, responsive=True, className=f"mb-0 widget-table {className}".strip())]
    if len(rows) > max_rows:
        out.append(html.Div(f"+{len(rows) - max_rows} more", className="small text-body-secondary table-more"))
    kw = {"id": id} if id is not None else {}
    return html.Div(out, className="widget-table-wrap", **{"data-widget": widget}, **kw)


def stat_group(items: Sequence[Mapping[str, Any]] | None, *, note: Any = None, id: Any = None,
               widget: str = "stat_group", round_money: bool = False, mode: str = "light") -> Any:
    """Labelled numbers side by side: [{"label", "value", "unit"?, "level"?}] (a missing value
    reads "no data"). `note` goes under them (assumptions behind the numbers)."""
    items = [i for i in mappings(items) if i.get("label")]
    if not items or all(is_missing(i.get("value")) for i in items):
        return placeholder(widget, id=id)
    cols = []
    for i in items:
        v = i.get("value")
        text = (format_value(None if is_missing(v) else v, i.get("unit"), round_money=round_money)
                if not isinstance(v, str) else v)
        cols.append(dbc.Col([html.Div(str(i["label"]), className="small text-body-secondary stat-label"),
                             html.Div(text, className="fs-5 fw-semibold stat-value")],
                            xs=6, md=True, className="stat"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([dbc.Row(cols, className="g-2 mb-1"),
                     html.P(note, className="small text-body-secondary mb-0 stat-note") if note else None],
                    className="stat-group", **{"data-widget": widget}, **kw)
