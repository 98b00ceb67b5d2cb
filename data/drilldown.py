"""The events behind a number (METRICS.md, "The events behind a number").

For every KPI, `rows()` yields exactly the events its value is computed from, newest first
(by timestamp, then id), each with its role: `counted`, `numerator` / `denominator`,
`averaged` (with the item's value), `ranked`, `open_at_end` / `state_at_end` (an entity in
the state at `end`, with the event that put it there), or `excluded` (agent time in neither
part of utilisation). A row may carry `context`: the other events its value needs (the
`pr_created` a time to merge starts from), read only for the rows sent (`resolve`).
`page()` folds every row of the window into counts that reproduce the value, and returns
one page of them after a cursor or offset.

Which rows each KPI has: data.drilldown_window (window KPIs, from the raw events of the
window) and data.drilldown_state (states at `end` and agent utilisation, from entity states
and timelines, through the same data.contrib functions the rollups are made with).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import orjson
import redis

from data import archive, entcodec, kpis, rawstore, scopes
from data.keys import Keys
from data.rawstore import Ref
from data.timeutil import DAY_MS, HOUR_MS, day_start, fmt_ms

COUNTED, NUMERATOR, DENOMINATOR, AVERAGED, RANKED = "counted", "numerator", "denominator", "averaged", "ranked"
OPEN, AT_END, EXCLUDED = "open_at_end", "state_at_end", "excluded"
WF = "workflow."
Value = float | int | list[str] | None


@dataclass(frozen=True)
class Query:
    """One drill-down: a KPI over [start, end) (state KPIs: at `end`), for a user, filtered."""

    kpi: str
    start: int
    end: int
    horizon: int                         # no event is later than this (now + the allowed skew)
    user: str | None = None              # developer KPIs
    team: str | None = None              # the user's team (team_velocity)
    scope: tuple[str, str] | None = None  # ("repository" | "team", value), for data.scopes.SCOPED_KPIS
    gate: str | None = None
    agent: str | None = None
    sla_ms: int = 8 * HOUR_MS
    previous: int | None = None          # start of the window before (quality_score_trend)


class Row:
    """One event behind the number, with its role; ordered by `key` (timestamp ms, id)."""

    __slots__ = ("ts", "id", "role", "event", "value", "context", "window", "pending")

    def __init__(self, ts: int, ident: str, role: str, event: dict[str, Any], value: Any = None,
                 context: list[dict[str, Any]] | None = None, window: str | None = None) -> None:
        self.ts, self.id, self.role, self.event, self.value = ts, ident, role, event, value
        self.context = context or []
        self.window = window
        self.pending: tuple[list[Ref], list[Any]] | None = None     # context to read (data.drilldown.resolve)

    @property
    def key(self) -> Ref:
        return self.ts, self.id


class Ctx:
    """A Redis client and keys, with a bounded cache of entity states read for one request."""

    CACHE_MAX = 50_000

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r, self.k = r, keys
        self._states: dict[tuple[str, str], dict[str, Any] | None] = {}

    def states(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        missing = [w for w in wanted if w not in self._states]
        if missing:
            if len(self._states) + len(missing) > self.CACHE_MAX:
                self._states.clear()           # bounded: an export of any size keeps one chunk's worth
                missing = list(wanted)
            raws = self.r.mget([self.k.entity(kind, ident) for kind, ident in missing])
            for w, raw in zip(missing, raws):
                self._states[w] = _entity(raw) if raw else None
        return {w: self._states[w] for w in wanted}


def _entity(raw: bytes) -> dict[str, Any]:
    """An entity state without the aggregator's bookkeeping: `_v`, the basis of the
    contributions it last wrote, or (entities written before it) `_c`, those contributions
    themselves — most of such a workflow's JSON, cut before parsing (written last). Compact
    states (data.entcodec) never hold `_c`."""
    if raw[:1] == b"{":
        cut = raw.rfind(b',"_c":')
        if cut > 0 and raw.endswith(b"]}"):
            return orjson.loads(raw[:cut] + b"}")
    state = entcodec.decode(raw)
    state.pop("_c", None)
    state.pop("_v", None)
    return state


Producer = Callable[[Ctx, Query], Iterator[Row]]


@dataclass(frozen=True)
class Spec:
    kind: str                      # count, percentage, mean, percentile, state, level, rate, difference, list, composite
    unit: str
    types: tuple[str, ...]         # the event types of the rows (their columns)
    rows: Producer | None
    value_unit: str | None = None  # the unit of a row's value (a mean: the KPI's unit)
    filters: tuple[str, ...] = ()  # which of gate / agent narrow the rows
    parts: tuple[str, ...] = ()    # a composite's parts
    weighted: bool = False         # a percentage of durations (row values), not of rows


def resolve(ctx: Ctx, rows: list[Row]) -> list[Row]:
    """Read the context events of these rows (two pipelines for all of them)."""
    todo = [row for row in rows if row.pending]
    if not todo:
        return rows
    refs = [ref for row in todo for ref in row.pending[0]]           # type: ignore[index]
    finds = [(kind, ident, ts) for row in todo for kind, ident, ts, _ in row.pending[1]]  # type: ignore[index]
    got = iter(rawstore.fetch(ctx.r, ctx.k, refs))
    found = iter(rawstore.entity_events_at(ctx.r, ctx.k, finds))
    for row in todo:
        refs_of, finds_of = row.pending                                # type: ignore[misc]
        context = [c for c in (next(got) for _ in refs_of) if c is not None]
        for _kind, _ident, _ts, pred in finds_of:
            match = sorted((c for c in next(found) if pred(c)), key=lambda c: c["id"])
            if match:
                context.append(match[0])
        row.context, row.pending = context, None
    return rows


def resolved(ctx: Ctx, rows: Iterator[Row], size: int = 500) -> Iterator[list[Row]]:
    """Rows in chunks of `size`, each with its context read (exports)."""
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield resolve(ctx, chunk)
            chunk = []
    if chunk:
        yield resolve(ctx, chunk)


def _in_scope(state: dict[str, Any] | None, q: Query) -> bool:
    c = (state or {}).get("c")
    if not c or q.scope is None:
        return False
    return (c[3] if q.scope[0] == "repository" else c[2]) == q.scope[1]


def spec(kpi: str) -> Spec:
    """The drill-down of a KPI id (KeyError for an unknown one)."""
    from data import drilldown_state, drilldown_window
    found = drilldown_window.spec(kpi) or drilldown_state.spec(kpi)
    if found is None:
        raise KeyError(kpi)
    return found


def scoped(kpi: str) -> bool:
    """Whether a repository/team filter narrows this KPI's rows (as it narrows the card)."""
    return kpi in scopes.SCOPED_KPIS


# --- counting ------------------------------------------------------------------------------------

class Tally:
    """Folds rows into the counts that reproduce the KPI's value."""

    def __init__(self, sp: Spec, q: Query) -> None:
        self.sp, self.q = sp, q
        self.rows = 0
        self.n: dict[str, float] = {}
        self.values: dict[Any, int] = {}

    def add(self, row: Row) -> None:
        self.rows += 1
        kind = self.sp.kind
        if kind == "difference":
            key = f"{row.window}.{row.role}"
            self.n[key] = self.n.get(key, 0) + 1
        elif kind in ("percentage",):
            if row.role in (NUMERATOR, DENOMINATOR):
                w = row.value if self.sp.weighted else 1
                self.n["denominator"] = self.n.get("denominator", 0) + w
                if row.role == NUMERATOR:
                    self.n["numerator"] = self.n.get("numerator", 0) + w
        elif kind == "mean":
            self.n["sum"] = self.n.get("sum", 0) + row.value
        elif kind in ("percentile", "list"):
            self.values[row.value] = self.values.get(row.value, 0) + 1
        elif kind == "level":
            self.n["counted"] = self.n.get("counted", 0) + int(row.value)

    def counts(self) -> dict[str, Any]:
        kind, n = self.sp.kind, self.n
        if kind in ("count", "state"):
            return {"counted": self.rows}
        if kind == "level":
            return {"counted": int(n.get("counted", 0))}
        if kind == "percentage":
            return {"numerator": n.get("numerator", 0), "denominator": n.get("denominator", 0)}
        if kind == "mean":
            return {"rows": self.rows, "sum": n.get("sum", 0)}
        if kind == "percentile":
            return {"rows": self.rows, "rank": math.ceil(0.95 * self.rows) if self.rows else 0}
        if kind == "rate":
            span = (self.q.end - self.q.start)
            return ({"counted": self.rows, "hours": span / HOUR_MS} if self.sp.unit == "per_hour"
                    else {"counted": self.rows, "days": span / DAY_MS})
        if kind == "difference":
            return {w: {"numerator": int(n.get(f"{w}.{NUMERATOR}", 0)),
                        "denominator": int(n.get(f"{w}.{NUMERATOR}", 0) + n.get(f"{w}.{DENOMINATOR}", 0))}
                    for w in ("current", "previous")}
        if kind == "list":
            return {"counted": self.rows, "by_category": dict(sorted(self.values.items()))}
        raise ValueError(kind)

    def value(self) -> Value:
        kind, c = self.sp.kind, self.counts()
        if kind in ("count", "state", "level"):
            return c["counted"]
        if kind == "percentage":
            return kpis.ratio(c["numerator"], c["denominator"])
        if kind == "mean":
            return kpis.mean(c["sum"], c["rows"])
        if kind == "percentile":
            return kpis.nearest_rank(self.values, 0.95)  # type: ignore[arg-type]
        if kind == "rate":
            return c["counted"] / c["hours"] if "hours" in c else c["counted"] * 7 / c["days"]
        if kind == "difference":
            now = kpis.ratio(c["current"]["numerator"], c["current"]["denominator"])
            before = kpis.ratio(c["previous"]["numerator"], c["previous"]["denominator"])
            return None if now is None or before is None else now - before
        if kind == "list":
            top = sorted(self.values.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
            return [k for k, _ in top] or None
        raise ValueError(kind)


@dataclass
class Page:
    rows: list[Row]
    counts: dict[str, Any]
    value: Value
    total: int | None             # None: not counted (page(count=False))
    next: Ref | None
    parts: list[dict[str, Any]] = field(default_factory=list)


def rows(ctx: Ctx, q: Query) -> Iterator[Row]:
    """Every row of the drill-down, newest first (lazily: one chunk in memory at a time)."""
    sp = spec(q.kpi)
    if sp.rows is not None:
        yield from sp.rows(ctx, q)


def page(ctx: Ctx, q: Query, limit: int = 100, cursor: Ref | None = None, offset: int = 0,
         count: bool = True) -> Page:
    """Counts over the whole window, and `limit` rows after the cursor (rows older than it)
    or after skipping `offset` rows. `count=False`: only the rows, read no further than
    they need (counts empty, total None) — the grid's later blocks."""
    sp = spec(q.kpi)
    if sp.kind == "composite":
        return _composite(ctx, q, sp)
    tally = Tally(sp, q)
    out: list[Row] = []
    skipped = 0
    more = False
    for row in rows(ctx, q):
        if count:
            tally.add(row)
        if cursor is not None and row.key >= cursor:
            continue
        if skipped < offset:
            skipped += 1
        elif len(out) < limit:
            out.append(row)
        else:
            more = True
            if not count:
                break
    following = out[-1].key if more and out else None
    if not count:
        return Page(resolve(ctx, out), {}, None, None, following)        # type: ignore[arg-type]
    value = tally.value()
    if sp.kind == "rate" and sp.unit == "per_hour" and not tally.rows and not _any_events(ctx, q):
        value = None                       # error_rate: no events at all in the window is no data
    return Page(resolve(ctx, out), tally.counts(), value, tally.rows, following)


def _composite(ctx: Ctx, q: Query, sp: Spec) -> Page:
    parts = []
    values: list[float] = []
    for part in sp.parts:
        got = page(ctx, Query(part, q.start, q.end, q.horizon, sla_ms=q.sla_ms), limit=0)
        parts.append({"metric": part, "value": got.value, "counts": got.counts, "total": got.total})
        if got.value is not None:
            values.append(100.0 - got.value if part == "false_positive_rate" else got.value)   # type: ignore[operator]
    value = sum(values) / len(values) if values else None
    return Page([], {"parts": {p["metric"]: p["counts"] for p in parts}}, value, 0, None, parts)


def _any_events(ctx: Ctx, q: Query) -> bool:
    types = [t.decode() for t in ctx.r.smembers(ctx.k.registry("types"))]
    with ctx.r.pipeline(transaction=False) as p:
        for day in range(q.start // DAY_MS, (q.end - 1) // DAY_MS + 1):
            for t in types:
                p.zcount(ctx.k.raw_index(t, day), q.start, f"({q.end}")
        if any(p.execute()):
            return True
    arch = archive.of(ctx.k)
    return arch is not None and arch.any_between(q.start, q.end)


def stub(ident: str, etype: str, ts: int, data: dict[str, Any]) -> dict[str, Any]:
    """An event whose raw copy has expired (older than the raw retention), from what its
    entity kept."""
    return {"id": ident, "type": etype, "timestamp": fmt_ms(ts), "source": None, "data": data, "expired": True}


# --- a request -------------------------------------------------------------------------------------

MAX_NAME = 200                 # as the API documents names (api.validation.Name)


def make_query(engine: Any, kpi: str, timeframe: str = "24h", end_ms: int | None = None, *, user: str | None = None,
               scope: tuple[str, str] | None = None, gate: str | None = None, agent: str | None = None,
               now: int | None = None) -> tuple[Query, dict[str, str]]:
    """The query of a drill-down request (window planned like the card's) and the filters
    that apply to this KPI. Raises data.engine.QueryError for a bad request, KeyError for
    an unknown KPI."""
    from data.engine import QueryError, plan
    from data.timeutil import now_ms
    sp = spec(kpi)
    for name, value in (("user", user), ("gate", gate), ("agent", agent), ("filter", scope[1] if scope else None)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_NAME):
            raise QueryError(f"{name}: a name of 1 to {MAX_NAME} characters")
    if kpis.dashboard_of(kpi) == "developer" and not user:
        raise QueryError("developer metrics need a user")
    now = now_ms() if now is None else now
    p = plan(timeframe, end_ms, now, engine.skew_ms, depth=2 if kpi == "quality_score_trend" else 1)
    if kpi == "quality_score_trend" and len(p.bounds) < 3:
        raise QueryError("the window before this one is older than the retained rollups")
    filters: dict[str, str] = {}
    if scope is not None and scoped(kpi):
        filters[scope[0]] = scope[1]
    else:
        scope = None
    gate = gate if "gate" in sp.filters else None
    agent = agent if "agent" in sp.filters else None
    filters.update({k: v for k, v in (("gate", gate), ("agent", agent)) if v})
    team = engine.team_of(user) if user and kpi == "team_velocity" else None
    q = Query(kpi, p.bounds[1], p.bounds[0], now + engine.skew_ms, user if kpis.dashboard_of(kpi) == "developer" else None,
              team, scope, gate, agent, int(engine.sla_hours * HOUR_MS), p.bounds[2] if len(p.bounds) > 2 else None)
    return q, filters


def window(q: Query) -> tuple[int, int]:
    """The span a drill-down's rows come from (completed_today: since midnight of `end`)."""
    if q.kpi == "completed_today":
        return day_start(q.end), q.end
    if q.kpi == "quality_score_trend" and q.previous is not None:
        return q.previous, q.end
    return q.start, q.end


def basis(ctx: Ctx, q: Query) -> list[dict[str, Any]]:
    """Events the whole value stands on besides its rows: team_velocity's team is the team
    of the user's latest pull request."""
    if q.kpi != "team_velocity" or not q.user:
        return []
    raw = ctx.r.hget(ctx.k.authors, q.user)
    if not raw:
        return []
    ts, ident, team = orjson.loads(raw)
    [ev] = rawstore.fetch(ctx.r, ctx.k, [(ts, ident)])
    return [ev or stub(ident, WF + "pr_created", ts, {"author": q.user, "team": team})]
