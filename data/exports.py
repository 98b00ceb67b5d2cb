"""Exports of drill-downs and widgets as CSV or JSON Lines, produced row by row (a
streamed response holds one chunk at a time, whatever the number of rows).

Numbers keep their type: counts are integers; derived values (a percentage, a duration)
are rounded in CSV to the precision its header states, e.g. `pass_rate (percentage, 2 dp)`,
and left exact in JSON Lines. Every CSV cell is escaped by data.rawstore.csv_cell. Where
a deployment caps exports (`export_max_rows`), the file's last line says where it was cut.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator

import orjson

from data.drilldown import Row, Spec
from data.events import SCHEMAS
from data.rawstore import csv_lines
from data.timeutil import fmt_ms

# Decimal places of a derived value in CSV, by unit (counts and raw event fields are not rounded).
PRECISION = {"percentage": 2, "hours": 4, "minutes": 2, "usd": 6, "score": 4, "per_hour": 4, "per_7d": 4,
             "points": 2, "fraction": 4}
# Units of event fields whose name does not say it.
FIELD_UNITS = {"execution_time": "seconds", "load": "fraction", "score": "1-5"}
# Widget table columns: (unit, is a count).
WIDGET_UNITS: dict[str, str] = {
    "pass_rate": "percentage", "p95_time": "minutes", "executions": "count", "depth": "count", "load": "fraction",
    "reviews": "count", "cost_usd": "usd", "cost_per_review_usd": "usd", "saved_usd": "usd", "roi_pct": "percentage",
    "merged": "count", "defects": "count", "failed_checks": "count", "active_workflows": "count",
    "likelihood": "1-5", "impact": "1-5", "pr_number": "count",
}
INTEGER_UNITS = {"count", "1-5"}


def label(name: str, unit: str | None) -> str:
    """A column header with its unit and, for a rounded value, its precision."""
    if not unit:
        return name
    dp = PRECISION.get(unit)
    return f"{name} ({unit}, {dp} dp)" if dp is not None else f"{name} ({unit})"


def typed(value: Any, unit: str | None, rounded: bool) -> Any:
    """A cell's value as its type: counts as integers, derived values rounded (CSV only)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if unit in INTEGER_UNITS and value.is_integer():
            return int(value)
        dp = PRECISION.get(unit or "")
        if rounded and dp is not None:
            return round(value, dp)
    return value


def _capped(rows: Iterable[Any], cap: int, on_cut: Callable[[], Any]) -> Iterator[Any]:
    n = 0
    for row in rows:
        if cap and n >= cap:
            yield on_cut()
            return
        n += 1
        yield row


def _cut_note(cap: int) -> str:
    return f"# cut at {cap} rows (export_max_rows = {cap}); the window holds more: narrow it or ask for a bigger cap"


# --- drill-downs ------------------------------------------------------------------------------------

def data_fields(types: Iterable[str]) -> list[str]:
    """The data fields of the event contract for these types, in contract order."""
    out: list[str] = []
    for t in types:
        for f in SCHEMAS.get(t, {}):
            if f not in out:
                out.append(f)
    return out


def drilldown_columns(sp: Spec, hidden: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(keys, CSV headers) of a drill-down's rows; no column for a field the viewer's
    sanitiser hides (`data.title` for some roles)."""
    gone = set(hidden)
    fields = [f for f in data_fields(sp.types) if "data." + f not in gone]
    keys = ["timestamp", "role", "value", "type", "id", "source", "priority"] + \
        (["window"] if sp.kind == "difference" else []) + [f"data.{f}" for f in fields] + ["data.other", "context"]
    headers = [label("value", sp.value_unit) if k == "value" else
               label(k, FIELD_UNITS.get(k[5:])) if k.startswith("data.") and k != "data.other" else
               "data (other fields)" if k == "data.other" else k for k in keys]
    return keys, headers


def flat(row: Row, ev: dict[str, Any], context: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    """A drill-down row as flat columns (the CSV and the page's grid): every data field in
    its own column, the fields the contract does not name together in `data.other`."""
    d = ev.get("data") or {}
    out: dict[str, Any] = {"timestamp": ev.get("timestamp"), "role": row.role, "value": row.value,
                           "type": ev.get("type"), "id": ev.get("id"), "source": ev.get("source"),
                           "priority": (ev.get("metadata") or {}).get("priority"), "window": row.window}
    for f in fields:
        out["data." + f] = d.get(f)
    other = {k: v for k, v in d.items() if k not in fields}
    out["data.other"] = other or None
    out["context"] = [{"type": c.get("type"), "id": c.get("id"), "timestamp": c.get("timestamp"),
                       "data": c.get("data")} for c in context] or None
    return out


Cleaned = Iterable[tuple[Row, dict[str, Any], list[dict[str, Any]]]]


Note = Callable[[], str | None]


def drilldown_csv(sp: Spec, rows: Cleaned, cap: int = 0, note: Note = lambda: None,
                  hidden: Iterable[str] = ()) -> Iterator[str]:
    """A drill-down as CSV; `note()` (asked after the last row: e.g. how many rows of other
    teams were shown without names) becomes the file's last line when it says anything."""
    keys, headers = drilldown_columns(sp, hidden)
    fields = [k[5:] for k in keys if k.startswith("data.") and k != "data.other"]

    def lines() -> Iterator[list[Any]]:
        yield headers
        for row, ev, context in rows:
            f = flat(row, ev, context, fields)
            f["value"] = typed(f["value"], sp.value_unit, True)
            yield [f[k] for k in keys]

    def with_note() -> Iterator[list[Any]]:
        yield from _capped(lines(), cap + 1 if cap else 0, lambda: [_cut_note(cap)])
        said = note()
        if said:
            yield ["# " + said]
    return csv_lines(with_note())


def drilldown_jsonl(rows: Cleaned, cap: int = 0, note: Note = lambda: None) -> Iterator[bytes]:
    def objects() -> Iterator[dict[str, Any]]:
        for row, ev, context in rows:
            yield as_json(row, ev, context)

    def with_note() -> Iterator[dict[str, Any]]:
        yield from _capped(objects(), cap, lambda: {"cut_at": cap, "note": _cut_note(cap)[2:]})
        said = note()
        if said:
            yield {"note": said}
    return _jsonl(with_note())


def as_json(row: Row, ev: dict[str, Any], context: list[dict[str, Any]]) -> dict[str, Any]:
    """A drill-down row in the API: the event, its role, its value and context if any."""
    out = {**ev, "role": row.role}
    if row.value is not None:
        out["value"] = row.value
    if context:
        out["context"] = context
    if row.window is not None:
        out["window"] = row.window
    return out


def _jsonl(objects: Iterable[dict[str, Any]], per_chunk: int = 500) -> Iterator[bytes]:
    buf: list[bytes] = []
    for obj in objects:
        buf.append(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS))
        if len(buf) >= per_chunk:
            yield b"\n".join(buf) + b"\n"
            buf = []
    if buf:
        yield b"\n".join(buf) + b"\n"


# --- widgets -----------------------------------------------------------------------------------------

def _units(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, str | None]:
    units: dict[str, str | None] = {c: WIDGET_UNITS.get(c) for c in columns}
    if "value" in columns and "unit" in columns:          # a series: one unit per metric
        found = {r.get("unit") for r in rows}
        units["value"] = found.pop() if len(found) == 1 else None
    return units


def widget_csv(columns: list[str], rows: list[dict[str, Any]], cap: int = 0) -> Iterator[str]:
    units = _units(columns, rows)

    def lines() -> Iterator[list[Any]]:
        yield [label(c, units[c]) for c in columns]
        for r in rows:
            yield [_cell(typed(r.get(c), units[c] or (r.get("unit") if c == "value" else None), True)) for c in columns]
    return csv_lines(_capped(lines(), cap + 1 if cap else 0, lambda: [_cut_note(cap)]))


def widget_jsonl(columns: list[str], rows: list[dict[str, Any]], cap: int = 0) -> Iterator[bytes]:
    units = _units(columns, rows)
    objects = ({c: typed(r.get(c), units[c], False) for c in columns} for r in rows)
    return _jsonl(_capped(objects, cap, lambda: {"cut_at": cap, "note": _cut_note(cap)[2:]}))


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value


# --- names ----------------------------------------------------------------------------------------------

def _stamp(ms: int) -> str:
    return fmt_ms(ms // 60_000 * 60_000)[:16].replace("-", "").replace(":", "") + "Z"


def filename(dashboard: str, what: str, timeframe: str, start: int, end: int, filters: dict[str, str],
             ext: str) -> str:
    """qms-<dashboard>-<kpi or widget>-<timeframe>-<start>-<end>[-<filter>-<value>...].<ext>,
    with anything but letters, digits, dot, underscore and dash replaced."""
    parts = ["qms", dashboard, what, timeframe, _stamp(start), _stamp(end)]
    for k, v in filters.items():
        parts += [k, v]
    name = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p)[:80] for p in parts)
    return f"{name}.{ext}"
