"""What each data source reads, before sanitisation: one function per source kind and name,
`fn(ctx, req) -> Raw`. dashboards.sources caches a Raw per data version, sanitises it for
the caller and makes the frame.

A Raw is JSON (it is cached in Redis): {"rows": [...], "attrs": {...}, "frames": {name:
[rows]}, "events": [...]} — rows are flat dicts whose instants are ISO 8601 strings;
`frames` are the extra frames of frame.attrs (spark, suggested reviews, per-person rows);
`events` are raw events a source turns into rows only after sanitising them (drill-downs,
annotations).

The reads are bounded: window views read the rollups (O(buckets)); views made from raw
events read only the window's events of their types, at most MAX_EVENTS of them (newest
first; `attrs["truncated"]` says when more were left out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from data import drilldown, entcodec, entity_reader, gate_chunks, rawstore, rollups, scopes, views
from data.contrib import DEFECTS, MAIN, SCOPE, TYPES, USER, user_field
from data.engine import Plan, plan
from data.events import GATE_TYPES
from data.health import health
from data.kpis import dashboard_of
from data.timeutil import DAY_MS, MINUTE_MS, finest_step_at, fmt_ms, parse_iso

Raw = dict[str, Any]
SERIES_POINTS = 48          # a series source without `points`
SPARK_POINTS = 24           # a KPI card's sparkline
VIEW_POINTS = 24            # steps of the computed views over time
DRILL_ROWS = 100            # a drill-down source without transform.limit
DRILL_MAX = 1000
MAX_EVENTS = 50_000         # raw events one computed view reads at most
ACHIEVEMENT_LOOKBACK = "30d"
REVIEW_DONE = "workflow.review_completed"
CONFIG_CHANGED = "system.configuration_changed"


@dataclass(frozen=True)
class Request:
    """One fetch, resolved: the source's name, its timeframe and filters (merged with the
    dashboard's), the caller (personal sources), the window planned once."""

    kind: str
    name: str                      # the KPI id (kpi, series, drilldown) or the source's name
    timeframe: str
    filters: dict[str, str]
    user: str | None
    plan: Plan
    now: int
    points: int | None = None
    limit: int | None = None
    flags: dict[str, Any] = field(default_factory=dict)    # e.g. {"alerts": True}: what the caller may add

    @property
    def e(self) -> int:
        return self.plan.bounds[0]

    @property
    def s(self) -> int:
        return self.plan.bounds[1]

    @property
    def scope(self) -> str | None:
        """The repository/team filter as the engine names it (data.scopes.label)."""
        dim = next((d for d in scopes.DIMENSIONS if self.filters.get(d)), None)
        return scopes.label(dim, self.filters[dim]) if dim else None

    @property
    def scope_pair(self) -> tuple[str, str] | None:
        dim = next((d for d in scopes.DIMENSIONS if self.filters.get(d)), None)
        return (dim, self.filters[dim]) if dim else None

    def window(self) -> dict[str, str]:
        return {"start": fmt_ms(self.s), "end": fmt_ms(self.e)}


def _raw(rows: list[dict[str, Any]], **attrs: Any) -> Raw:
    return {"rows": rows, "attrs": attrs}


def _kpis(ctx: Any, req: Request, dash: str, user: str | None = None) -> dict[str, Any]:
    """A dashboard's KPI values for the request's window ({id: {"current_value", …}}), from
    the engine's cache (one computation per data version for every source reading it)."""
    out = ctx.engine.dashboard(dash, req.timeframe, req.e, user=user, scope=req.scope)["data"]
    return {w["id"]: {**w["data"], "filtered": w.get("filtered")} for w in out["widgets"]}


# --- kpi, series, drill-down ------------------------------------------------------------------

def _user_for(metric: str, req: Request) -> str | None:
    return req.user if dashboard_of(metric) == "developer" else None


def kpi(ctx: Any, req: Request) -> Raw:
    metric, user = req.name, _user_for(req.name, req)
    args = (dashboard_of(metric), req.timeframe, req.e, user, req.scope)
    memo = getattr(ctx, "memo", {})
    found = memo.get(("dashboard", *args))
    if found is None:                  # once for all the page's cards (one data version for all)
        found = memo[("dashboard", *args)] = ctx.engine.dashboard(args[0], args[1], args[2], user=user,
                                                                  scope=args[4])["data"]
    w = next((w for w in found["widgets"] if w["id"] == metric), None)
    d = w["data"] if w else {}
    row = {"metric": metric, "value": d.get("current_value"), "previous": d.get("previous_value"),
           "trend": d.get("trend"), "unit": d.get("unit") or views.unit_of(metric), "direction": views.direction(metric),
           "sample": sample(ctx, req, metric, user), "filtered": w.get("filtered") if w and req.scope else None}
    spark = [] if w is None else _points(ctx.engine.series(metric, req.timeframe, req.e, points=SPARK_POINTS,
                                                           user=user, scope=req.scope, shared=True, aligned=True,
                                                           stale_ms=page_stale(ctx, req.timeframe)),
                                         req.now)
    return {"rows": [row], "attrs": {"window": found["window"], "previous_window": found.get("previous_window"),
                                     "unit": row["unit"]},
            "frames": {"spark": spark}}


def sample(ctx: Any, req: Request, metric: str, user: str | None) -> int | None:
    """How many events the KPI's value is made of (its denominator's rollup counter over the
    window, filtered like the value); None for counts and states."""
    found = views.sample_field(metric, user)
    if found is None:
        return None
    fam, name = found
    scoped = bool(req.scope) and fam == MAIN and metric in scopes.SCOPED_KPIS
    # Through the engine's SpanCache (exact per data version): a page's cards share a family.
    version = ctx.engine.version()
    span = ctx.engine.spans.fetch(ctx.redis, ctx.keys, (SCOPE,) if scoped else (fam,), [req.e, req.s],
                                  req.plan.horizon, req.now, version, ctx.engine.daily_from(version),
                                  stale_ms=page_stale(ctx, req.timeframe))
    if scoped:
        span = scopes.view(span, req.scope or "")
    return span.window(fam, name, req.s, req.e)


# A page's draws (SourceContext.page) reuse a source's result, and a drawn body, across data
# versions and a moved window end for QMS_BODY_CACHE_S times this factor of their timeframe:
# a 7-day chart moves by a pixel in a minute, so computing it again for every one-second
# version (every batch under live ingest) spends the cores on nothing a viewer can see. The
# live channel keeps the KPI cards exact meanwhile (7d/30d cards: each minute); the page
# names these periods to the browser (live-config data-redraw), which asks no more often.
# REST reads and exports (page=False) stay exact per version.
STALE_FACTOR = {"1h": 1, "4h": 2, "24h": 3, "7d": 12, "30d": 12}


def page_stale_ms(settings: Any, timeframe: str | None) -> float:
    """How long a page may show a source's result or a drawn body of this timeframe after it
    was computed, though newer data came (0: per data version and window only)."""
    return max(0.0, float(getattr(settings, "body_cache_s", 0) or 0)) * 1000 * STALE_FACTOR.get(timeframe or "", 1)


def page_stale(ctx: Any, timeframe: str | None) -> float:
    """How old what a request's sources read may be: `page_stale_ms` for a page's draw
    (SourceContext.page), 0 for REST reads and exports (exact)."""
    return page_stale_ms(ctx.settings, timeframe) if getattr(ctx, "page", False) else 0.0


def _points(series: dict[str, Any], now: int) -> list[dict[str, Any]]:
    return [{"metric": series["metric"], "unit": series["unit"], "t": p["t"], "end": p["end"], "value": p["value"],
             "partial": parse_iso(p["end"]) > now} for p in series["points"]]


def series(ctx: Any, req: Request) -> Raw:
    if req.name.startswith(("gate.", "queue_depth.")) and req.name not in _kpis(ctx, req, dashboard_of(req.name)):
        return _raw([], window=req.window(), unit=views.unit_of(req.name))   # a gate or queue never seen: no data
    found = ctx.engine.series(req.name, req.timeframe, req.e, points=req.points or SERIES_POINTS,
                              user=_user_for(req.name, req), scope=req.scope, shared=True, aligned=True,
                              stale_ms=page_stale(ctx, req.timeframe))
    return _raw(_points(found, req.now), window=found["window"], unit=found["unit"],
                step_seconds=found["step_seconds"], filtered=found.get("filtered"))


def drill(ctx: Any, req: Request) -> Raw:
    """The newest events behind the KPI (as its drill-down lists them), at most `limit`."""
    metric = req.name
    sp = drilldown.spec(metric)
    q, applied = drilldown.make_query(ctx.engine, metric, req.timeframe, req.e, user=_user_for(metric, req),
                                      scope=req.scope_pair, gate=req.filters.get("gate"),
                                      agent=req.filters.get("agent"), now=req.now)
    start, end = drilldown.window(q)
    attrs = {"window": {"start": fmt_ms(start), "end": fmt_ms(end)}, "unit": sp.unit, "applied_filters": applied}
    if sp.kind == "composite":       # no rows of its own: its parts have them
        return {"rows": [], "events": [], "attrs": {**attrs, "parts": list(sp.parts)}}
    page = drilldown.page(drilldown.Ctx(ctx.redis, ctx.keys), q, limit=min(req.limit or DRILL_ROWS, DRILL_MAX),
                          count=False)
    rows = [{"role": row.role, "value": row.value if not isinstance(row.value, float) or math.isfinite(row.value)
             else None} for row in page.rows]
    return {"rows": rows, "events": [row.event for row in page.rows],
            "attrs": {**attrs, "more": page.next is not None}}


# --- breakdowns -------------------------------------------------------------------------------

DEFECT_DIMS = {"defects_by_severity": ("sev", "severity"), "defects_by_category": ("cat", "category"),
               "defects_by_stage": ("stage", "stage")}


def _only(rows: list[dict[str, Any]], dim: str, req: Request) -> list[dict[str, Any]]:
    wanted = req.filters.get(dim)
    return [r for r in rows if r["name"] == wanted] if wanted else rows


def breakdown(ctx: Any, req: Request) -> Raw:
    name, eng = req.name, ctx.engine
    filtered: bool | None = None
    if name == "merged_by_team":
        counts = eng.breakdown(USER, req.timeframe, req.e).get("tm", {})
        rows = _only([{"dimension": "team", "name": k, "value": v} for k, v in sorted(counts.items())], "team", req)
        filtered = bool(req.filters.get("team")) if req.scope else None
    elif name in ("cost_by_team", "cost_by_repository"):
        dim = name.rsplit("_", 1)[1]
        split = eng.cost_by_scope(req.timeframe, req.e).get(dim, {})
        rows = []
        for k, v in sorted(split.items()):
            cost = v["cost"] / 1_000_000
            rows.append({"dimension": dim, "name": k, "value": cost, "reviews": v["rc"], "cost_usd": cost,
                         "cost_per_review_usd": cost / v["rc"] if v["rc"] else None})
        rows = _only(rows, dim, req)
        filtered = bool(req.filters.get(dim)) if req.scope else None
    elif name in DEFECT_DIMS:
        prefix, dim = DEFECT_DIMS[name]
        counts = eng.breakdown(DEFECTS, req.timeframe, req.e).get(prefix, {})
        rows = [{"dimension": dim, "name": k, "value": v} for k, v in sorted(counts.items())]
        filtered = False if req.scope else None
    elif name == "events_by_type":
        types = eng.names()["types"]
        sums = eng.window_sums(TYPES, types, req.timeframe, req.e) if types else {}
        rows = [{"dimension": "type", "name": t, "value": n} for t, n in sorted(sums.items()) if n]
        filtered = False if req.scope else None
    else:
        raise KeyError(name)
    return _raw(rows, window=req.window(), unit="usd" if name.startswith("cost_") else "count", filtered=filtered)


# --- state lists ------------------------------------------------------------------------------

def state_rows(ctx: Any, kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in ctx.redis.hvals(ctx.keys.state(kind))]


def _workflow_scope(rows: list[dict[str, Any]], req: Request) -> list[dict[str, Any]]:
    """Active-workflow rows (they carry repository and team) passing the repository/team filter."""
    return [r for r in rows if views.in_scope((r.get("author"), r.get("team"), r.get("repository")), req.filters)]


def _by(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) or "", r.get("workflow_id") or ""))


def workflow_info(ctx: Any, ids: list[str]) -> dict[str, views.WorkflowInfo | None]:
    """(author, team, repository) of each workflow from its entity's pr_created (None: not
    known), in MGETs of 1,000 of those this process has not read in the last
    WORKFLOW_INFO_TTL_S (data.engine): a window's gate runs name a few thousand workflows,
    each read and decoded on every scan was as dear as the scan itself. A workflow without a
    pr_created is read again next time, so its runs join their repository as soon as it comes."""
    out: dict[str, views.WorkflowInfo | None] = ctx.engine.workflows_known({i for i in ids if isinstance(i, str)})
    missing = sorted(w for w, found in out.items() if found is None)
    got: dict[str, views.WorkflowInfo] = {}
    for i in range(0, len(missing), 1000):
        chunk = missing[i:i + 1000]
        for w, raw in zip(chunk, ctx.redis.mget([ctx.keys.entity("wf", w) for w in chunk])):
            c = entcodec.creation(raw) if raw else None
            if c:
                got[w] = out[w] = (c[1], c[2], c[3])
    ctx.engine.know_workflows(got)
    return out


def state(ctx: Any, req: Request) -> Raw:
    name, user = req.name, req.user
    if name == "agents":
        rows = [r for r in state_rows(ctx, "agents") if not req.filters.get("agent")
                or r.get("agent_id") == req.filters["agent"]]
        rows = sorted(rows, key=lambda r: r.get("agent_id") or "")
    elif name == "queues":
        rows = sorted(state_rows(ctx, "queues"), key=lambda r: r.get("queue") or "")
    elif name == "violations":
        rows = state_rows(ctx, "violations")
        if req.scope:
            info = workflow_info(ctx, [r.get("workflow_id") for r in rows])
            rows = [r for r in rows if views.in_scope(info.get(r.get("workflow_id")), req.filters)]
        rows = _by(rows, "since")
    elif name == "active_workflows":
        rows = _by(_workflow_scope(state_rows(ctx, "active"), req), "created")
    elif name == "my_pull_requests":
        rows = _by([r for r in state_rows(ctx, "active") if r.get("author") == user], "created")
    elif name == "suggested_reviews":
        rows = suggested(ctx, req)
    elif name == "my_reviews":
        rows = _by([r for r in state_rows(ctx, "reviews") if r.get("reviewer") == user], "since")
    elif name == "health":
        found = health(ctx.redis, ctx.keys)
        rows = [{"check": k, "status": c.get("status"),
                 "detail": ", ".join(f"{f}={v}" for f, v in c.items() if f != "status")}
                for k, c in sorted(found["checks"].items())]
    else:
        raise KeyError(name)
    return _raw(rows)


def suggested(ctx: Any, req: Request) -> list[dict[str, Any]]:
    """Active workflows in code review that nobody has started reviewing, not the caller's
    own, waiting longest first (the suggested_reviews KPI counts them, the caller's included)."""
    rows = [r for r in _workflow_scope(state_rows(ctx, "active"), req)
            if r.get("step") == "code_review" and not r.get("review_started") and r.get("author") != req.user]
    return _by(rows, "step_since")


# --- computed views -------------------------------------------------------------------------

def window_events(ctx: Any, types: tuple[str, ...], s: int, e: int) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """(timestamp, event) of the window's events of these types, newest first, at most
    MAX_EVENTS; and whether more were left out."""
    hits, more = rawstore.window(ctx.redis, ctx.keys, types, s, e, MAX_EVENTS)
    return [(ts, ev) for ts, _id, ev in hits], more


def view_cuts(s: int, e: int, now: int, points: int = VIEW_POINTS, aligned: bool = False) -> list[int]:
    """Steps of a view over time: about `points` of them, whole minutes (whole retained
    buckets when `aligned`, for views read from rollups)."""
    base = finest_step_at(s, now) if aligned else MINUTE_MS
    step = base * max(1, -(-(e - s) // (base * points)))
    return views.cuts_of(s, e, step)


def roi(ctx: Any, req: Request) -> Raw:
    if req.scope_pair:
        dim, value = req.scope_pair
        found = ctx.engine.cost_by_scope(req.timeframe, req.e).get(dim, {}).get(value, {"rc": 0, "cost": 0})
        rc, cost = found["rc"], found["cost"]
    else:
        sums = ctx.engine.window_sums(MAIN, ["rc", "cost"], req.timeframe, req.e)
        rc, cost = sums["rc"], sums["cost"]
    assumptions = dict((getattr(ctx.settings, "extra", None) or {}).get("roi") or {})
    return _raw([views.roi_row(rc, cost, assumptions)], window=req.window(), unit="usd",
                filtered=True if req.scope else None)


def risks(ctx: Any, req: Request) -> Raw:
    return _raw(views.quality_risks(_kpis(ctx, req, "qa")), window=req.window())


def pipeline(ctx: Any, req: Request) -> Raw:
    return _raw(views.pipeline_rows(_kpis(ctx, req, "operational")), window=req.window())


def gates(ctx: Any, req: Request) -> Raw:
    return _raw(views.gate_rows(_kpis(ctx, req, "qa"), only=req.filters.get("gate")), window=req.window())


def team_collaboration(ctx: Any, req: Request) -> Raw:
    found, more = window_events(ctx, (REVIEW_DONE,), req.s, req.e)
    evs = [ev for _, ev in found]
    info = workflow_info(ctx, [(ev.get("data") or {}).get("workflow_id") for ev in evs])
    people = sorted({r for ev in evs if isinstance(r := (ev.get("data") or {}).get("reviewer"), str)
                     and not r.startswith(views.AGENT_PREFIX)})
    teams: dict[str, str | None] = {}
    if people:
        for name, raw in zip(people, ctx.redis.hmget(ctx.keys.authors, people)):
            teams[name] = orjson.loads(raw)[2] if raw else None
    team_rows, person_rows = views.collaboration(evs, info, teams, req.filters)
    return {"rows": team_rows, "frames": {"people": person_rows},
            "attrs": {"window": req.window(), "unit": "count", "truncated": more}}


def _gate_sums(ctx: Any, req: Request) -> tuple[views.GateSums, list[int], bool]:
    """The window's gate runs summed per step, gate, metric and workflow scope (data.gate_chunks),
    the steps' cuts, and whether the window held more than MAX_EVENTS: read once per data
    version for code quality and test coverage under every filter, kept in this process
    (data.engine.Kept; a page's draw takes sums less than its staleness old). Each filter
    scanned the window's runs and read their workflows again, the QA page's costliest widgets
    under load."""
    def compute() -> tuple[views.GateSums, list[int], bool]:
        cuts = view_cuts(req.s, req.e, req.now)
        # Quarter hours read once while their runs are the same (data.gate_chunks); the window
        # whole when that does not apply (archived days, over MAX_EVENTS runs).
        sums = ctx.engine.gate_chunks.sums(ctx.redis, ctx.keys, GATE_TYPES, cuts, req.now, MAX_EVENTS,
                                           lambda s, e: window_events(ctx, GATE_TYPES, s, e),
                                           lambda ids: workflow_info(ctx, ids))
        if sums is not None:
            return sums, cuts, False
        runs, more = window_events(ctx, GATE_TYPES, req.s, req.e)
        info = workflow_info(ctx, [(ev.get("data") or {}).get("workflow_id") for _, ev in runs])
        return gate_chunks.fold([gate_chunks.digest(runs, info, req.now)], cuts, info), cuts, more
    return ctx.engine.kept.get(("gate_sums", req.s, req.e), ctx.engine.version(), req.now,
                               page_stale(ctx, req.timeframe), compute)


def code_quality(ctx: Any, req: Request) -> Raw:
    sums, cuts, more = _gate_sums(ctx, req)
    rows = views.quality_of(sums, cuts, req.filters.get("gate"), req.filters)
    return _raw(rows, window=req.window(), truncated=more)


def coverage(ctx: Any, req: Request) -> Raw:
    sums, cuts, more = _gate_sums(ctx, req)
    rows = views.coverage_of(sums, cuts, req.filters)
    return _raw(rows, window=req.window(), unit="percentage", truncated=more)


def achievements(ctx: Any, req: Request) -> Raw:
    """The caller's milestones over the last 30 days (whatever the widget's timeframe): their
    reviews from their actor index, gate runs on their pull requests per UTC day from the
    per-user rollups."""
    user = req.user or ""
    p = plan(ACHIEVEMENT_LOOKBACK, req.e, req.now, ctx.engine.skew_ms, depth=1)
    s, e = p.bounds[1], p.bounds[0]
    reviews = [ts for ts, ev in entity_reader.events_of(ctx.redis, ctx.keys, "ac", user, s, e)
               if ev and ev.get("type") == REVIEW_DONE and (ev.get("data") or {}).get("reviewer") == user]
    cuts = views.day_cuts(s, e)
    # The family holds every developer's fields in one hash per bucket: the caller's two only,
    # and whole days from their daily buckets (30 of them, not 720 hourly ones).
    span = rollups.fetch(ctx.redis, ctx.keys, (USER,), cuts, p.horizon, req.now,
                         daily=ctx.engine.names_daily()[1], only={USER: ["gx:" + user, "gp:" + user]})
    days = [(a, b, span.window(USER, "gx:" + user, a, b), span.window(USER, "gp:" + user, a, b))
            for a, b in zip(cuts, cuts[1:])]
    rows = views.achievements(reviews, days, e)
    return _raw(rows, window={"start": fmt_ms(s), "end": fmt_ms(e)}, lookback=ACHIEVEMENT_LOOKBACK)


def skill_development(ctx: Any, req: Request) -> Raw:
    user = req.user or ""
    cuts = view_cuts(req.s, req.e, req.now, aligned=True)
    # The caller's defect fields only, one per category of the registry (which holds every
    # category a field names), not every developer's fields of every bucket.
    names, daily = ctx.engine.names_daily()
    mine = [user_field("dc", user, c) for c in names.get("categories", [])]
    span = rollups.fetch(ctx.redis, ctx.keys, (USER,), cuts, req.plan.horizon, req.now, daily=daily, only={USER: mine})
    prefix = user_field("dc", user, "")
    per_step = [{f[len(prefix):]: v for f, v in span.sums(USER, a, b).items() if f.startswith(prefix) and v > 0}
                for a, b in zip(cuts, cuts[1:])]
    return {"rows": views.skill_rows(per_step, cuts), "frames": {"suggested": suggested(ctx, req)},
            "attrs": {"window": req.window(), "unit": "count"}}


def annotations(ctx: Any, req: Request) -> Raw:
    """Configuration changes of the window (rows made after sanitising the events), and alert
    firings from the alerts history when the caller may see alerts."""
    evs, more = rawstore.events_between(ctx.redis, ctx.keys, (CONFIG_CHANGED,), req.s, req.e, 500)
    fired: list[dict[str, Any]] = []
    if req.flags.get("alerts"):
        key = f"{ctx.keys.p}:alerts:history"          # alerts.service.AlertKeys.history
        entries = ctx.redis.xrevrange(key, max=f"{req.e}-0", min=f"{max(req.s - DAY_MS, 0)}-0", count=2000)
        fired = views.alert_annotations([orjson.loads(f[b"e"]) for _, f in entries], req.s, req.e)
    return {"rows": fired, "events": evs, "attrs": {"window": req.window(), "truncated": more}}


def alerts(ctx: Any, req: Request) -> Raw:
    """The alert instances that are not inactive, as the alerts page lists them."""
    if ctx.alerts is not None:
        found = ctx.alerts.alerts()
    else:
        raw = ctx.redis.get(f"{ctx.keys.p}:alerts:state")
        found = []
        for rec in (orjson.loads(raw) if raw else {}).values():
            if rec.get("rule") is None or rec.get("state") in (None, "inactive"):
                continue
            shown = "acknowledged" if rec["state"] == "firing" and rec.get("acknowledged") else rec["state"]
            found.append({**rec, "status": shown})
        order = {"firing": 0, "acknowledged": 1, "pending": 2, "no_data": 3, "resolved": 4}
        found.sort(key=lambda a: (order.get(a["status"], 9), -(a.get("since") or 0)))
    rows = [{"id": a.get("id"), "rule": a.get("rule"), "severity": a.get("severity"), "status": a.get("status"),
             "since": fmt_ms(a["since"]) if isinstance(a.get("since"), int) else None, "value": a.get("value"),
             "labels": a.get("labels") or {}, "acknowledged_by": (a.get("acknowledged") or {}).get("by"),
             "condition": a.get("condition"), "dashboard": a.get("dashboard"), "description": a.get("description")}
            for a in found]
    return _raw(rows)


@dataclass(frozen=True)
class Spec:
    """How a source is computed and kept: `columns` (the frame's, also when empty),
    `personal` (the caller's own: the cache key holds their name), `windowed` (reads a
    window: the key holds its end), `cache` (per data version; False: read every time),
    `stale_s` (may serve a result this many seconds older than the data version, for views
    made from raw events: under continuous ingest every batch is a new version), `people`
    (the row kind auth.sanitize decides on, None: rows name nobody)."""

    fn: Callable[[Any, Request], Raw]
    columns: tuple[str, ...]
    personal: bool = False
    windowed: bool = True
    cache: bool = True
    stale: bool = False
    people: str | None = None


STATE_WF = ("workflow_id", "repository", "author", "pr_number", "step", "step_since", "created")
KPI_COLUMNS = ("metric", "value", "previous", "trend", "unit", "direction", "sample", "filtered")
SERIES_COLUMNS = ("metric", "unit", "t", "end", "value", "partial")
DRILL_COLUMNS = ("timestamp", "type", "id", "source", "workflow_id", "role", "value")
BREAKDOWN_COLUMNS = ("dimension", "name", "value")
COST_COLUMNS = ("dimension", "name", "value", "reviews", "cost_usd", "cost_per_review_usd")

SPECS: dict[tuple[str, str], Spec] = {
    ("breakdown", "merged_by_team"): Spec(breakdown, BREAKDOWN_COLUMNS),
    ("breakdown", "cost_by_team"): Spec(breakdown, COST_COLUMNS),
    ("breakdown", "cost_by_repository"): Spec(breakdown, COST_COLUMNS),
    **{("breakdown", n): Spec(breakdown, BREAKDOWN_COLUMNS) for n in (*DEFECT_DIMS, "events_by_type")},
    ("state", "agents"): Spec(state, ("agent_id", "status", "load", "skills", "since"), windowed=False),
    ("state", "queues"): Spec(state, ("queue", "depth", "since"), windowed=False),
    ("state", "violations"): Spec(state, ("workflow_id", "policy", "failed_checks", "since"), windowed=False,
                                  people="violations"),
    ("state", "active_workflows"): Spec(state, STATE_WF, windowed=False, people="workflows"),
    ("state", "my_pull_requests"): Spec(state, STATE_WF, personal=True, windowed=False, people="workflows"),
    ("state", "suggested_reviews"): Spec(state, STATE_WF, personal=True, windowed=False, people="workflows"),
    ("state", "my_reviews"): Spec(state, ("workflow_id", "since"), personal=True, windowed=False, people="reviews"),
    ("state", "health"): Spec(state, ("check", "status", "detail"), windowed=False, cache=False),
    ("computed", "roi"): Spec(roi, ("reviews", "cost_usd", "saved_usd", "roi_pct",
                                    *(f"assumption_{k}" for k in views.DEFAULT_ROI))),
    ("computed", "risks"): Spec(risks, ("name", "kpi", "value", "likelihood", "impact", "status")),
    ("computed", "pipeline"): Spec(pipeline, ("step", "active_workflows")),
    ("computed", "gates"): Spec(gates, ("gate", "pass_rate", "executions", "p95_time")),
    ("computed", "team_collaboration"): Spec(team_collaboration, ("reviewer_team", "author_team", "reviews",
                                                                  "cross_team"), stale=True),
    ("computed", "code_quality"): Spec(code_quality, ("t", "end", "gate", "metric", "value", "runs"), stale=True),
    ("computed", "test_coverage"): Spec(coverage, ("t", "end", "repository", "coverage", "runs"), stale=True),
    ("computed", "achievements"): Spec(achievements, ("milestone", "description", "achieved", "progress", "target",
                                                      "at"), personal=True, stale=True),
    ("computed", "skill_development"): Spec(skill_development, ("t", "end", "category", "defects"), personal=True),
    ("computed", "annotations"): Spec(annotations, ("t", "kind", "title", "who", "what", "id", "severity"),
                                      stale=True),
    ("computed", "alerts"): Spec(alerts, ("id", "rule", "severity", "status", "since", "value", "labels",
                                          "acknowledged_by", "condition", "dashboard", "description"),
                                 windowed=False, cache=False),
}
METRIC_SPECS: dict[str, Spec] = {
    "kpi": Spec(kpi, KPI_COLUMNS),
    "series": Spec(series, SERIES_COLUMNS),
    "drilldown": Spec(drill, DRILL_COLUMNS, stale=True),
}
# Extra frames in frame.attrs: their columns (kept when empty).
FRAME_COLUMNS = {"spark": SERIES_COLUMNS, "suggested": STATE_WF,
                 "people": ("reviewer", "author", "reviewer_team", "author_team", "reviews")}


def spec_of(kind: str, name: str) -> Spec:
    if kind in METRIC_SPECS:
        return METRIC_SPECS[kind]
    return SPECS[(kind, name)]
