"""The KPI engine: plans a request's windows, fetches the rollups once, computes every KPI
of a dashboard (data.kpis), and caches the result in Redis keyed by the aggregator's
data version, so identical requests between two batches cost one GET.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import orjson
import redis
from cachetools import TTLCache

from data import cache_io, kpis, partition, rollups, scopes
from data.contrib import SCOPE
from data.gate_chunks import GateChunks
from data.keys import Keys
from data.kpis import Win
from data.timeutil import HOUR_MS, RESOLUTIONS, TIMEFRAMES, day_start, finest_step_at, fmt_ms, now_ms, retained, snap


class QueryError(ValueError):
    """A request the engine cannot answer (bad timeframe, end outside retention)."""


@dataclass(frozen=True)
class Plan:
    timeframe: str
    bounds: list[int]       # [e, s, ps, (pps)] — window i is [bounds[i+1], bounds[i])
    horizon: int
    now: int


def plan(timeframe: str, end_ms: int | None, now: int, skew_ms: int, depth: int = 2) -> Plan:
    """Snap the window edges to retained bucket boundaries (see data.timeutil)."""
    if timeframe not in TIMEFRAMES:
        raise QueryError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
    T = TIMEFRAMES[timeframe]
    horizon = -(-(now + skew_ms) // HOUR_MS) * HOUR_MS
    if end_ms is None:
        e = snap(now, now, up=True)
    else:
        if end_ms > now + skew_ms:
            raise QueryError("end is in the future")
        e = snap(end_ms, now)
    bounds = [e]
    for _ in range(depth):
        prev = snap(bounds[-1] - T, now)
        if not retained(prev, now):
            break
        bounds.append(prev)
    if len(bounds) < 2:
        raise QueryError("end is older than the retained rollups (90 days)")
    return Plan(timeframe, bounds, horizon, now)


WORKFLOW_INFO_MAX = 200_000
WORKFLOW_INFO_TTL_S = 300


class Kept:
    """Results computed from one data version, kept in this process (as rollups.SpanCache
    keeps families' buckets): exact for that version, and a page's draw may take one computed
    less than `stale_ms` ago — what the page may show anyway — which the page's other filters
    then share. Values are read-only for the callers."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._d: OrderedDict[Any, tuple[int, int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, version: int, now: int, stale_ms: float, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._d.get(key)
            if hit is not None and (hit[0] == version or 0 <= now - hit[1] < stale_ms):
                self._d.move_to_end(key)
                return hit[2]
        value = compute()
        with self._lock:
            self._d[key] = (version, now, value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value


class Engine:
    def __init__(self, r: redis.Redis, keys: Keys, *, sla_hours: float = 8.0, max_future_skew_s: int = 900,
                 cache_ttl_s: int = 300, series_points: int = 500, series_ttl_s: float = 0.0) -> None:
        self.r = r
        self.k = keys
        self.skew_ms = max_future_skew_s * 1000
        self.cache_ttl_s = cache_ttl_s
        self.series_points = series_points
        self.sla_hours = sla_hours
        self.series_ttl_s = series_ttl_s     # 0: no series cache (exact at every call)
        # A page's series share their families' buckets; so do the pages of a timeframe within
        # their staleness: room for every dashboard's families at every timeframe and tiling.
        self.spans = rollups.SpanCache(size=192)
        self.kept = Kept()                   # dashboards.computed: window scans shared by filters
        self.gate_chunks = GateChunks(max_age_ms=WORKFLOW_INFO_TTL_S * 1000)   # code quality, test coverage
        # dashboards.computed.workflow_info: (author, team, repository) of workflows whose
        # pr_created is known, for WORKFLOW_INFO_TTL_S (it changes only if an earlier
        # pr_created of the same workflow comes later).
        self.workflow_info = TTLCache(maxsize=WORKFLOW_INFO_MAX, ttl=WORKFLOW_INFO_TTL_S)
        self._info_lock = threading.Lock()
        self._names_kept: tuple[int, tuple[dict[str, list[str]], int | None, int | None]] | None = None
        self._users_kept: tuple[int, frozenset[str]] | None = None

    def workflows_known(self, ids: Any) -> dict[str, Any]:
        """Of these workflow ids, those kept in `workflow_info` and their (author, team,
        repository); the others None."""
        with self._info_lock:
            return {w: self.workflow_info.get(w) for w in ids}

    def know_workflows(self, found: dict[str, Any]) -> None:
        if found:
            with self._info_lock:
                self.workflow_info.update(found)

    @classmethod
    def from_settings(cls, r: redis.Redis, settings: Any) -> "Engine":
        return cls(r, Keys.from_settings(r, settings), sla_hours=settings.sla_hours,
                   max_future_skew_s=settings.max_future_skew_s, cache_ttl_s=settings.cache_ttl_s,
                   series_points=settings.series_points, series_ttl_s=settings.series_cache_s)

    def version(self) -> int:
        """The data version (data.partition.data_version): caches are keyed by it."""
        return partition.data_version(self.r, self.k)[0]

    def names(self) -> dict[str, list[str]]:
        """The registries (gates, queues, categories, teams, users, agents, types, repositories),
        kept for the current data version in this process: a page's layout and its filter
        pickers read them, and the users registry alone holds every author and reviewer."""
        return self._names_daily(self.version())[0]

    def names_daily(self) -> tuple[dict[str, list[str]], int | None]:
        """The registries and the day from which daily buckets may be read (rollups.fetch
        `daily`), kept for the current data version in this process."""
        names, daily, _ = self._names_daily(self.version())
        return names, daily

    def daily_from(self, version: int) -> int | None:
        """From which day a read may take daily buckets (rollups.daily_from), kept for `version`
        in this process: a window read without it tiles its whole days with hours (a 30-day
        window: ~720 hashes a family instead of ~60)."""
        return self._names_daily(version)[1]

    def known_users(self, version: int) -> frozenset[str]:
        """The users registry (every author of a pull request and reviewer of a review) as a
        set, kept for `version` in this process: whom personal sources can find anything of."""
        kept = self._users_kept
        if kept is None or kept[0] != version:
            kept = self._users_kept = (version, frozenset(self._names_daily(version)[0].get("users", ())))
        return kept[1]

    def _names_daily(self, version: int | None = None) -> tuple[dict[str, list[str]], int | None, int | None]:
        """The registries, and from which day daily and summed buckets may be read
        (rollups.daily_from, rollups.summed_from). Given the data version read before, kept for
        it in this process (read after it, they are at least that version's): a page's cards
        each read them for their sparkline. Read-only for the callers."""
        kept = self._names_kept
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        found = self._read_names_daily()
        if version is not None:
            self._names_kept = (version, found)
        return found

    def _read_names_daily(self) -> tuple[dict[str, list[str]], int | None, int | None]:
        with self.r.pipeline(transaction=False) as p:
            kinds = ("gates", "queues", "categories", "teams", "users", "agents", "types", "repositories")
            for kind in kinds:
                p.smembers(self.k.registry(kind))
            p.hmget(self.k.meta, [rollups.DAILY_FROM, rollups.SUMMED_FROM])
            res = p.execute()
        daily, summed = (None if x is None else int(x) for x in res[-1])
        return {kind: sorted(m.decode() for m in members) for kind, members in zip(kinds, res)}, daily, summed

    def team_of(self, user: str) -> str | None:
        raw = self.r.hget(self.k.authors, user)
        return orjson.loads(raw)[2] if raw else None

    def dashboard(self, name: str, timeframe: str = "24h", end_ms: int | None = None,
                  user: str | None = None, only: set[str] | None = None,
                  scope: str | None = None) -> dict[str, Any]:
        """The `data` and `metadata` of the API envelope for one dashboard. With a scope
        (data.scopes.label: one repository or team), the KPIs that can be filtered are, and
        the others are marked `"filtered": false`."""
        if name not in kpis.DASHBOARDS:
            raise QueryError(f"unknown dashboard {name!r}")
        if name == "developer" and not user:
            raise QueryError("the developer dashboard needs a user")
        started = time.perf_counter()
        now = now_ms()
        p = plan(timeframe, end_ms, now, self.skew_ms, depth=3 if name == "developer" else 2)
        version, last_batch = partition.data_version(self.r, self.k)
        cache_key = self.k.cache(f"{name}:{timeframe}:{p.bounds[0]}:{user or ''}:{version}:{scope or ''}")
        cached = cache_io.get(self.r, cache_key)
        if cached is not None:
            data = orjson.loads(cached)
            status = "hit"
        else:
            data = self._compute(name, p, user, scope, version)
            cache_io.set(self.r, cache_key, orjson.dumps(data), ex=self.cache_ttl_s)
            status = "miss"
        if only:
            data = {**data, "widgets": [w for w in data["widgets"] if w["id"] in only]}
        freshness = None if last_batch is None else max(0, (now - int(last_batch)) // 1000)
        meta = {"cache_status": status, "processing_time": round((time.perf_counter() - started) * 1000, 1),
                "data_freshness": freshness}
        return {"data": data, "metadata": meta}

    def _compute(self, name: str, p: Plan, user: str | None, scope: str | None = None,
                 version: int | None = None) -> dict[str, Any]:
        names, daily, summed = self._names_daily(version)
        points = list(p.bounds)
        only = None
        team = self.team_of(user) if user else None
        if name == "developer":
            points += [day_start(p.bounds[0]), day_start(p.bounds[1])]
            only = kpis.developer_fields(user or "", team, names)   # one user's, not every user's
        fams = kpis.FAMILIES[name] + ((SCOPE,) if scope else ())
        span = rollups.fetch(self.r, self.k, fams, points, p.horizon, p.now, daily, only, kpis.MERGED, kpis.CUT, summed)
        table = kpis.kpis_for(name, names)
        values = kpis.compute(table, Win(span, p.bounds, 0, user, team, names))
        if scope:
            scoped = {k: v for k, v in table.items() if k in scopes.SCOPED_KPIS}
            values.update(kpis.compute(scoped, Win(scopes.view(span, scope), p.bounds, 0, user, team, names)))
            widgets = [{"id": kpi_id, "type": "kpi_card", "data": v, "filtered": kpi_id in scoped}
                       for kpi_id, v in values.items()]
        else:
            widgets = [{"id": kpi_id, "type": "kpi_card", "data": v} for kpi_id, v in values.items()]
        data: dict[str, Any] = {
            "dashboard_id": name, "last_updated": fmt_ms(p.now), "timeframe": p.timeframe,
            "window": {"start": fmt_ms(p.bounds[1]), "end": fmt_ms(p.bounds[0])},
            "previous_window": {"start": fmt_ms(p.bounds[2]), "end": fmt_ms(p.bounds[1])} if len(p.bounds) > 2 else None,
            "widgets": widgets,
        }
        if user:
            data["user"] = user
        if scope:
            data["scope"] = scope
        return data

    def breakdown(self, fam: str, timeframe: str = "24h", end_ms: int | None = None) -> dict[str, dict[str, int]]:
        """A family's counters summed over the window, split by their 'dimension:' prefix
        (e.g. the defect family: {"sev": {...}, "cat": {...}, "stage": {...}})."""
        now = now_ms()
        p = plan(timeframe, end_ms, now, self.skew_ms, depth=1)
        span = rollups.fetch(self.r, self.k, (fam,), p.bounds, p.horizon, now, self.daily_from(self.version()))
        out: dict[str, dict[str, int]] = {}
        for name, value in span.sums(fam, p.bounds[1], p.bounds[0]).items():
            dim, _, key = name.partition(":")
            if value and key:
                out.setdefault(dim, {})[key] = value
        return out

    def cost_by_scope(self, timeframe: str = "24h", end_ms: int | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """Reviews and review cost in the window per team and per repository (data.scopes)."""
        now = now_ms()
        p = plan(timeframe, end_ms, now, self.skew_ms, depth=1)
        # Read the whole scope family of the window once per data version, not once per
        # executive page refresh (the family holds every repository's and team's fields).
        version = self.version()
        cache_key = self.k.cache(f"cost-by-scope:{timeframe}:{p.bounds[0]}:{version}")
        cached = cache_io.get(self.r, cache_key)
        if cached is not None:
            return orjson.loads(cached)
        span = rollups.fetch(self.r, self.k, (SCOPE,), p.bounds, p.horizon, now, self.daily_from(version))
        found = scopes.cost_by_scope(span, p.bounds[1], p.bounds[0])
        cache_io.set(self.r, cache_key, orjson.dumps(found), ex=self.cache_ttl_s)
        return found

    def window_sums(self, fam: str, fields: list[str], timeframe: str = "24h",
                    end_ms: int | None = None) -> dict[str, int]:
        """Plain counters of a family summed over the window (e.g. reviews and their cost)."""
        now = now_ms()
        p = plan(timeframe, end_ms, now, self.skew_ms, depth=1)
        span = rollups.fetch(self.r, self.k, (fam,), p.bounds, p.horizon, now, self.daily_from(self.version()))
        sums = span.sums(fam, p.bounds[1], p.bounds[0])
        return {f: sums.get(f, 0) for f in fields}

    def series(self, kpi_id: str, timeframe: str = "24h", end_ms: int | None = None, points: int | None = None,
               user: str | None = None, scope: str | None = None, shared: bool = False,
               aligned: bool = False, stale_ms: float = 0.0) -> dict[str, Any]:
        """A KPI over time: the window cut into at most `points` equal steps of whole buckets.
        `shared`: a chart's series, which may be up to series_ttl_s old (see below); the
        API asks for exact ones. `aligned`: a dashboard chart's — steps on the clock's own
        boundaries (whole hours, five minutes), the first and last shorter and one point more
        at most; a whole-hour step reads one hourly bucket, where a step from the window's
        start (10:07–11:07) reads a dozen five-minute and one-minute ones.

        Window KPIs give the formula over each step; state KPIs the state at each step's end.
        A scope filters the KPIs of data.scopes.SCOPED_KPIS and is ignored by the others
        (the result says `"filtered"`). `stale_ms`: a page's draw, which may read buckets read
        that long ago (rollups.SpanCache).
        """
        dash = kpis.dashboard_of(kpi_id)
        if dash is None:
            raise QueryError(f"unknown metric {kpi_id!r}")
        if dash == "developer" and not user:
            raise QueryError("developer metrics need a user")
        limit = min(points or self.series_points, self.series_points)
        if limit < 1:
            raise QueryError("points must be at least 1")
        now = now_ms()
        p = plan(timeframe, end_ms, now, self.skew_ms, depth=1)
        # Charts are shared for a few seconds (series_ttl_s), not per data version: under
        # continuous ingest every batch is a new version, and every open page redraws its
        # charts after a push — per version, each page would compute them again.
        cache_key = self.k.cache(f"series:{kpi_id}:{timeframe}:{p.bounds[0]}:{limit}:{user or ''}:{scope or ''}"
                                 + (":a" if aligned else ""))
        shared = shared and self.series_ttl_s > 0
        cached = cache_io.get(self.r, cache_key) if shared else None
        if cached is not None:
            return orjson.loads(cached)
        found = self._series(dash, kpi_id, p, limit, now, user, scope, aligned, stale_ms)
        if shared:
            cache_io.set(self.r, cache_key, orjson.dumps(found), px=int(self.series_ttl_s * 1000))
        return found

    def _series(self, dash: str, kpi_id: str, p: Plan, limit: int, now: int, user: str | None,
                scope: str | None, aligned: bool = False, stale_ms: float = 0.0) -> dict[str, Any]:
        e, s = p.bounds[0], p.bounds[1]
        timeframe = p.timeframe
        version = self.version()
        names, daily, _ = self._names_daily(version)
        table = kpis.kpis_for(dash, names)
        if kpi_id not in table:
            raise QueryError(f"unknown metric {kpi_id!r}")
        unit, fn = table[kpi_id]
        if aligned:
            step, cuts = _aligned_cuts(s, e, limit, now)
        else:
            step = _series_step(s, e, limit, now)
            cuts = list(range(s, e, step)) + [e]
        scoped = bool(scope) and kpi_id in scopes.SCOPED_KPIS
        span = self.spans.fetch(self.r, self.k, kpis.FAMILIES[dash] + ((SCOPE,) if scoped else ()),
                                cuts + ([day_start(c) for c in cuts] if dash == "developer" else []), p.horizon,
                                now, version, daily, stale_ms)
        if scoped:
            span = scopes.view(span, scope or "")
        team = self.team_of(user) if user else None
        out = []
        for a, b in zip(cuts, cuts[1:]):
            w = Win(span, [b, a], 0, user, team, names)
            out.append({"t": fmt_ms(a), "end": fmt_ms(b), "value": fn(w)})
        found = {"metric": kpi_id, "unit": unit, "timeframe": timeframe, "window": {"start": fmt_ms(s), "end": fmt_ms(e)},
                 "step_seconds": step // 1000, "points": out}
        if scope:
            found["filtered"] = scoped
        return found


def _aligned_cuts(s: int, e: int, limit: int, now: int) -> tuple[int, list[int]]:
    """Cuts of [s, e) on multiples of the coarsest resolution that fits a step of up to twice
    the even one (whole days, hours, five minutes, else the finest retained at s): s, every
    multiple of the step inside, e — at most `limit` steps and about half as many at least
    (the first one, from s, takes in the next when there would be more). Each step then reads
    one bucket: 48 points over 30 days are 30 days, not 48 runs of 15 hourly buckets (720
    hashes per family for one chart), and over 24 hours 24 hours, not 48 half hours of six
    five-minute buckets each."""
    base = finest_step_at(s, now)
    raw = max(base, -(-(e - s) // limit))
    res = max((r.step_ms for r in RESOLUTIONS if base <= r.step_ms <= 2 * raw), default=base)
    step = res * -(-raw // res)
    first = -(-s // step) * step
    inside = [c for c in range(first, e, step) if c > s]
    return step, [s] + inside[max(0, len(inside) + 1 - limit):] + [e]


def _series_step(s: int, e: int, limit: int, now: int) -> int:
    """A multiple of the finest step retained at s (so every cut is a bucket boundary)
    giving at most `limit` points; the last point may be shorter."""
    base = finest_step_at(s, now)
    return base * max(1, -(-(e - s) // (base * limit)))
