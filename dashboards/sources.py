"""Every widget data source as a pandas DataFrame, authorised, sanitised and cached once per
data version (issue 11, "the frame contract" of the shared design).

    ctx = SourceContext.for_request(svc, principal, "24h", {"team": "payments"})
    if allowed(ds, ctx.principal):
        frame = fetch(ds, ctx)          # NotPermitted if not

What a fetch does, in order:
1. **Authorise** — `permissions(ds)`: the permissions any one of which opens the source (the
   one check the page, the callbacks, CSV exports and the live channel use: `allowed`);
   `permission(ds)` names the first, for a "not permitted" message.
2. **Resolve** — the source's timeframe overrides the dashboard's; its filters combine with
   the dashboard's (the source's win; a source's repository replaces a dashboard's team and
   the other way round); the window is planned once (data.engine.plan).
3. **Compute once per data version** (dashboards.computed): the *unsanitised* result is
   cached in Redis under `{p}:cache:src:<sha1 of the source, window end, filters, points,
   the user for personal sources>`, with the aggregator's data version (`{p}:meta`
   `version`); a later fetch of the same source by anyone reuses it while the version is
   unchanged (views made from raw events also for `QMS_SERIES_CACHE_S` after it changes,
   like the charts' shared series). TTL: `QMS_CACHE_TTL_S`, at most 120 s.
4. **Sanitise** for the caller, exactly once per list of rows (auth.sanitize: hidden fields,
   pseudonyms, team scope); what the team scope did goes to `frame.attrs["scope"]` and its
   sentence to `frame.attrs["scope_note"]`.
5. **Frame**: the source's columns (also when empty), instants as tz-aware UTC Timestamps,
   missing numbers NaN (never 0 for "no data"); then the transform (sort, columns, limit).

`frames_to_rows(frame)` turns a frame into JSON-safe (columns, rows) for CSV/JSON exports.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import numpy as np
import orjson
import pandas as pd
import redis
from pandas.api.internals import create_dataframe_from_blocks

from auth.rbac import DASHBOARD_PERMISSION
from auth.sanitize import Sanitizer
from auth.teams import ScopeCount
from dashboards import computed
from data import cache_io, partition
from dashboards.computed import STALE_FACTOR, Request, Spec, page_stale, page_stale_ms  # noqa: F401 (re-exported)
from dashboards.schema import NEEDS_METRIC, DataSource, Filters, Transform, Widget
from data import scopes, views
from data.engine import plan
from data.kpis import dashboard_of
from data.rawstore import flat_row
from data.timeutil import fmt_ms, now_ms

# Text columns as Python strings (pandas' "str" dtype, python storage). With pyarrow installed
# (for the archive) pandas stores text as Arrow arrays, which cost five times as much to build
# and ninety times as much to read back as Python objects, as every renderer and export does:
# some thirty small frames a page's draw, where Arrow's speed on large columns never pays.
pd.set_option("mode.string_storage", "python")
# That dtype resolved once (its name is looked up in pandas' registry on every use: a tenth of
# a frame's construction), and its array class.
TEXT = pd.api.types.pandas_dtype("str")
_TEXT_ARRAY = TEXT.construct_array_type()

COST = "view:cost_analysis"
OPERATIONAL, QA, DEVELOPER, EXECUTIVE = (DASHBOARD_PERMISSION[d] for d in ("operational", "qa", "developer",
                                                                           "executive"))
ALERTS = "view:alerts"
# Cost figures need view:cost_analysis whatever dashboard shows them.
COST_KPIS = frozenset({"cost_per_review"})
# Named sources: the permissions any one of which opens them.
PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("breakdown", "merged_by_team"): (EXECUTIVE, "view:team_metrics"),
    ("breakdown", "cost_by_team"): (COST,),
    ("breakdown", "cost_by_repository"): (COST,),
    ("breakdown", "defects_by_severity"): (QA,),
    ("breakdown", "defects_by_category"): (QA,),
    ("breakdown", "defects_by_stage"): (QA,),
    ("breakdown", "events_by_type"): (OPERATIONAL,),
    ("state", "agents"): (OPERATIONAL,),
    ("state", "queues"): (OPERATIONAL,),
    ("state", "health"): (OPERATIONAL,),
    ("state", "active_workflows"): (OPERATIONAL,),
    ("state", "violations"): (QA,),
    ("state", "my_reviews"): (DEVELOPER,),
    ("state", "my_pull_requests"): (DEVELOPER,),
    ("state", "suggested_reviews"): (DEVELOPER,),
    ("computed", "roi"): (COST,),
    ("computed", "risks"): (QA, EXECUTIVE),
    ("computed", "pipeline"): (OPERATIONAL,),
    ("computed", "gates"): (QA,),
    ("computed", "team_collaboration"): ("view:team_metrics", EXECUTIVE),
    ("computed", "code_quality"): ("view:quality_metrics", DEVELOPER),
    ("computed", "test_coverage"): ("view:quality_metrics", DEVELOPER),
    ("computed", "achievements"): (DEVELOPER,),
    ("computed", "skill_development"): (DEVELOPER,),
    # Every dashboard's charts carry them: anyone who may open a dashboard (not a producer).
    ("computed", "annotations"): (EXECUTIVE, OPERATIONAL, QA, DEVELOPER),
    ("computed", "alerts"): (ALERTS,),
}
# Sources a developer sees for their own team only when they lack the wider permission.
TEAM_SCOPED = {("computed", "code_quality"): "view:quality_metrics",
               ("computed", "test_coverage"): "view:quality_metrics"}
STALE_MAX_TTL_S = 120
TIME_COLUMNS = frozenset({"t", "end", "since", "step_since", "created", "at", "timestamp"})


class NotPermitted(PermissionError):
    """The caller lacks every permission that opens the source (`permission`: the first)."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(f"this data needs the permission {permission}")


# --- authorisation --------------------------------------------------------------------------

def permissions(ds: DataSource) -> tuple[str, ...]:
    """The permissions any one of which opens this source (most are one permission).

    kpi / series / drilldown: the KPI's dashboard's `view:<name>_dashboard`, except cost
    figures (`cost_per_review`): view:cost_analysis. Named sources: PERMISSIONS."""
    if ds.source in NEEDS_METRIC:
        metric = ds.metric or ""
        if metric in COST_KPIS:
            return (COST,)
        dash = dashboard_of(metric)
        return (DASHBOARD_PERMISSION[dash],) if dash else ("view:no_such_metric",)
    return PERMISSIONS.get((ds.source, ds.name or ""), ("view:no_such_source",))


def permission(ds: DataSource) -> str:
    """The permission a source needs (the first of `permissions`, for messages)."""
    return permissions(ds)[0]


def allowed(ds: DataSource, principal: Any) -> bool:
    """May this principal read this source? The one per-source check (page, callbacks, CSV,
    live channel). No principal: never."""
    if principal is None:
        return False
    return any(principal.can(p) for p in permissions(ds))


# --- the context ------------------------------------------------------------------------------

FILTER_KEYS = ("repository", "team", "gate", "agent")


def clean_filters(filters: Filters | Mapping[str, Any] | None) -> dict[str, str]:
    """A view's filters as {repository|team, gate, agent: value}, empty values left out."""
    if filters is None:
        return {}
    found = filters.active() if isinstance(filters, Filters) else dict(filters)
    return {k: str(v) for k, v in found.items() if k in FILTER_KEYS and v}


def merge_filters(dashboard: Mapping[str, str], source: Filters | Mapping[str, Any] | None) -> dict[str, str]:
    """The dashboard's filters overridden by the source's. Repository and team are one choice:
    a source that names either replaces the dashboard's repository *and* team."""
    own = clean_filters(source)
    out = dict(dashboard)
    if "repository" in own or "team" in own:
        out.pop("repository", None)
        out.pop("team", None)
    out.update(own)
    return out


@dataclass
class SourceContext:
    """What every fetch of one request shares: the services, who asks (principal and their
    sanitiser — one per request: it counts what team scope did), the dashboard's timeframe
    and filters, and optionally a fixed window end (`end_ms`, tests and exports) and the
    alert service (the `alerts` source; without it the alert state is read from Redis)."""

    engine: Any
    redis: Any
    keys: Any
    settings: Any
    principal: Any
    sanitizer: Sanitizer
    timeframe: str = "24h"
    filters: dict[str, str] = field(default_factory=dict)
    end_ms: int | None = None
    alerts: Any = None
    page: bool = False                  # drawn for a page: results reused within page_stale_ms
    # What the sources of one request compute alike (a page's KPI cards all read their
    # dashboard's values): computed once per request.
    memo: dict[Any, Any] = field(default_factory=dict)

    @classmethod
    def for_request(cls, svc: Any, principal: Any, timeframe: str = "24h",
                    filters: Filters | Mapping[str, Any] | None = None, *, end_ms: int | None = None,
                    alerts: Any = None) -> "SourceContext":
        """The context of one request from the app's services (data.services.Services)."""
        if alerts is None:
            alerts = _app_alerts()
        roles = principal.roles if principal else ()
        sanitizer = svc.sanitizer_for(roles, principal.name if principal else None)
        return cls(svc.engine, svc.redis, svc.keys, svc.settings, principal, sanitizer, timeframe,
                   clean_filters(filters), end_ms, alerts)

    @property
    def user(self) -> str | None:
        return self.principal.name if self.principal is not None else None

    def can(self, perm: str) -> bool:
        return self.principal is not None and self.principal.can(perm)


def _app_alerts() -> Any:
    try:
        from flask import current_app
        return current_app.extensions.get("qms_alerts")
    except RuntimeError:             # no app context (tests, workers)
        return None


# --- fetching ---------------------------------------------------------------------------------

def spec(ds: DataSource) -> Spec:
    return computed.spec_of(ds.source, ds.name or "")


def personal(ds: DataSource) -> bool:
    """Whether the source is the caller's own (its cache key holds the caller's name)."""
    if ds.source in NEEDS_METRIC:
        return dashboard_of(ds.metric or "") == "developer"
    return spec(ds).personal


def request(ds: DataSource, ctx: SourceContext, now: int | None = None) -> Request:
    """The source resolved for this context: timeframe, merged filters, the caller, the window."""
    now = now_ms() if now is None else now
    timeframe = ds.timeframe or ctx.timeframe
    filters = merge_filters(ctx.filters, ds.filters)
    key = (ds.source, ds.name or "")
    flags: dict[str, Any] = {}
    if key in TEAM_SCOPED and not ctx.can(TEAM_SCOPED[key]):
        # A developer sees gate metrics of their own team's pull requests only.
        from auth.scope import viewer_team
        team = viewer_team(ctx.redis, ctx.keys, ctx.user)
        filters["team"] = team if team else "\x00no team"
        flags["team_scoped"] = team
    if key == ("computed", "annotations"):
        flags["alerts"] = ctx.can(ALERTS)
    p = plan(timeframe, ctx.end_ms, now, ctx.engine.skew_ms, depth=1)
    return Request(ds.source, ds.metric or ds.name or "", timeframe, filters, ctx.user if personal(ds) else None,
                   p, now, ds.points, ds.transform.limit if ds.transform else None, flags)


def fetch(ds: DataSource, ctx: SourceContext) -> pd.DataFrame:
    """The source's frame for the context's caller: authorised (NotPermitted otherwise),
    computed once per data version, sanitised, transformed."""
    if not allowed(ds, ctx.principal):
        raise NotPermitted(permission(ds))
    sp = spec(ds)
    req = request(ds, ctx)
    raw, status = _cached(ctx, sp, req)
    frame = _finish(ctx, sp, req, raw)
    frame.attrs.update({"source": ds.source, "name": req.name, "timeframe": req.timeframe,
                        "filters": req.filters if "team_scoped" not in req.flags
                        else {**req.filters, "team": req.flags["team_scoped"]},
                        "cache": status})
    frame.attrs.setdefault("window", req.window() if sp.windowed else None)
    if "team_scoped" in req.flags:
        team = req.flags["team_scoped"]
        frame.attrs["scope_note"] = (f"Your team's pull requests only ({team})" if team else
                                     "Your team is not known (it is the team of your latest pull request): no rows")
    return apply_transform(frame, ds.transform)


def fetch_all(widget: Widget, ctx: SourceContext) -> list[pd.DataFrame]:
    """Every data source of a widget, in order (NotPermitted if any is not allowed: a widget
    is shown whole or not at all)."""
    for ds in widget.data_sources:
        if not allowed(ds, ctx.principal):
            raise NotPermitted(permission(ds))
    return [fetch(ds, ctx) for ds in widget.data_sources]


# The sources beside KPIs and series that no repository or team filter changes: the agents and
# the queues, the gates' figures (gate.* KPIs, which data.scopes cannot split), the defects'
# breakdowns and the events by type (marked `filtered: False` under a filter).
SCOPE_FREE = frozenset({("state", "agents"), ("state", "queues"), ("computed", "gates"),
                        *(("breakdown", n) for n in (*computed.DEFECT_DIMS, "events_by_type"))})


def scope_free(kind: str, name: str) -> bool:
    """Whether a source's result is the same whichever repository or team the page is filtered
    by: a KPI or a KPI's series that data.scopes cannot split (the engine gives its unfiltered
    numbers, marked `filtered: False`: only whether a filter is on shows), and SCOPE_FREE.
    Such a result, and a body drawn from such results only, is kept once for every
    filter value (`identity`, callbacks.dashboard.BodyCache.key) instead of once per value."""
    if kind in ("kpi", "series"):
        return name not in scopes.SCOPED_KPIS
    return (kind, name) in SCOPE_FREE


def _filters_named(req: Request) -> dict[str, str]:
    """The request's filters as its cache names them: a scope-free source's repository or team
    value as "*" (present, any value)."""
    f = req.filters
    if not any(f.get(d) for d in scopes.DIMENSIONS) or not scope_free(req.kind, req.name):
        return f
    return {k: ("*" if k in scopes.DIMENSIONS and v else v) for k, v in f.items()}


def identity(sp: Spec, req: Request, with_end: bool = True) -> str:
    """What a cached result depends on (beside the data version); `with_end=False`: whatever
    the window's end (a live window's results are told apart by their entry's `e`)."""
    return orjson.dumps({"k": req.kind, "n": req.name, "tf": req.timeframe,
                         "e": req.e if sp.windowed and with_end else None,
                         "f": _filters_named(req), "p": req.points, "l": req.limit if req.kind == "drilldown" else None,
                         "u": req.user, "x": {k: v for k, v in req.flags.items() if k != "team_scoped"}},
                        option=orjson.OPT_SORT_KEYS).decode()


def windowless(ident: str) -> str:
    """An `identity` without its window's end: the same source over the window as it moves
    (a drawn body is reused across a minute boundary while it is fresh)."""
    try:
        found = orjson.loads(ident)
    except orjson.JSONDecodeError:
        return ident
    if isinstance(found, dict):
        found.pop("e", None)
        return orjson.dumps(found, option=orjson.OPT_SORT_KEYS).decode()
    return ident


def data_version(ctx: SourceContext) -> int:
    """The aggregator's data version: what a cached result (a source's, a drawn body's) is
    valid for (partitioned: the sum of the partitions' versions, data.partition)."""
    return partition.data_version(ctx.redis, ctx.keys)[0]


def cacheable_identity(widget: Widget, ctx: SourceContext) -> list[str] | None:
    """What a widget's sources return depends on beside the data version and the caller (see
    `identity`), or None when a source is not cached per version (its result can change
    between two versions: health, live alert state)."""
    out = []
    for ds in widget.data_sources:
        sp = spec(ds)
        if not sp.cache:
            return None
        out.append(identity(sp, request(ds, ctx)))
    return out


def cache_key(ctx: SourceContext, sp: Spec, req: Request) -> str:
    """One entry per source whatever a live window's end (the entry says which end it is of);
    a fixed end (`ctx.end_ms`) is part of the name."""
    return ctx.keys.cache("src:" + hashlib.sha1(identity(sp, req, with_end=ctx.end_ms is not None).encode()).hexdigest())


def _cached(ctx: SourceContext, sp: Spec, req: Request) -> tuple[computed.Raw, str]:
    """The source's unsanitised result: from the cache when it was computed for this data
    version and window end (or, for raw-event views, less than series_cache_s ago; for a
    page's draw, less than page_stale_ms ago), else computed and kept."""
    if not sp.cache:
        return sp.fn(ctx, req), "none"
    key = cache_key(ctx, sp, req)
    end = req.e if sp.windowed else None
    version, cached = data_version(ctx), cache_io.get(ctx.redis, key)
    if cached is not None:
        entry = orjson.loads(cached)
        stale_ms = float(getattr(ctx.settings, "series_cache_s", 0) or 0) * 1000 if sp.stale else 0
        stale_ms = max(stale_ms, page_stale(ctx, req.timeframe))
        if (entry["v"] == version and entry.get("e") == end) or (stale_ms and 0 <= req.now - entry["at"] < stale_ms):
            return entry["raw"], "hit"
    raw = sp.fn(ctx, req)
    ttl = max(5, min(int(getattr(ctx.settings, "cache_ttl_s", 60) or 60), STALE_MAX_TTL_S))
    cache_io.set(ctx.redis, key, orjson.dumps({"v": version, "e": end, "at": req.now, "raw": raw}), ex=ttl)
    return raw, "miss"


def prefetch(widgets: list[Widget], ctx: SourceContext) -> None:
    """Within a page's batch (data.cache_io), read the cached results of these widgets'
    sources in one pipeline (each `_cached` would read its own)."""
    names = []
    for w in widgets:
        for ds in w.data_sources:
            sp = spec(ds)
            if sp.cache and allowed(ds, ctx.principal):
                names.append(cache_key(ctx, sp, request(ds, ctx)))
    try:
        cache_io.prefetch(ctx.redis, names)
    except redis.RedisError:
        pass                             # each source asks again, and fails as it would have


# --- sanitising and framing ----------------------------------------------------------------

class _Counter:
    """What team scope did across the sanitiser calls of one fetch."""

    def __init__(self, clean: Sanitizer) -> None:
        self.clean = clean
        self.start = clean.scoped_total
        self.used = False

    def info(self, extra: ScopeCount | None = None) -> dict[str, Any]:
        now = self.clean.scoped_total
        count = ScopeCount(now.shown_without_names - self.start.shown_without_names,
                           now.left_out - self.start.left_out)
        return self.clean.scope_info(count + extra if extra else count)


def _finish(ctx: SourceContext, sp: Spec, req: Request, raw: computed.Raw) -> pd.DataFrame:
    clean = ctx.sanitizer
    counter = _Counter(clean)
    extra = ScopeCount()
    rows = list(raw.get("rows") or [])
    frames = {k: list(v) for k, v in (raw.get("frames") or {}).items()}
    columns = list(sp.columns)
    if req.kind == "drilldown":
        rows, columns = _drill_rows(clean, rows, raw.get("events") or [], columns)
        counter.used = True
    elif req.name == "annotations" and req.kind == "computed":
        kept = clean.events(raw.get("events") or [])
        counter.used = True
        rows = sorted(views.configuration_annotations(kept) + rows, key=lambda r: (r["t"] or "", r.get("id") or ""))
    elif sp.people:
        rows = clean.rows(rows, kind=sp.people)
        counter.used = True
    if "suggested" in frames:
        frames["suggested"] = clean.rows(frames["suggested"], kind="workflows")
        counter.used = True
    if "people" in frames:
        frames["people"], extra = _people_rows(clean, frames["people"])
        counter.used = True
    frame = to_frame(rows, columns, strict=req.kind != "drilldown")
    attrs = dict(raw.get("attrs") or {})
    for name, items in frames.items():
        attrs[name] = to_frame(items, list(computed.FRAME_COLUMNS.get(name, ())))
    if counter.used:
        info = counter.info(extra)
        attrs["scope"] = info
        attrs["scope_note"] = info.get("note")
    frame.attrs.update(attrs)
    return frame


def _drill_rows(clean: Sanitizer, rows: list[dict[str, Any]], events: list[dict[str, Any]],
                columns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Drill-down rows as flat event rows (data.rawstore.flat_row) plus their role and value,
    each event sanitised once (rows of other teams the rule omits are left out)."""
    clean.prepare(events)
    out: list[dict[str, Any]] = []
    data_cols: set[str] = set()
    for row, ev in zip(rows, events):
        kept = clean.events([ev])
        if not kept:
            continue
        flat = flat_row(kept[0])
        flat["workflow_id"] = flat.get("data.workflow_id")
        flat.update(row)
        data_cols.update(k for k in flat if k.startswith("data."))
        out.append(flat)
    return out, columns + sorted(data_cols) + ["priority"]


def _people_rows(clean: Sanitizer, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ScopeCount]:
    """Per-person collaboration rows (reviewer, author) for this caller. They belong to no
    one workflow, so team scope is decided here: a row is the caller's team's when both
    sides are of the caller's team (or the caller is one of them); other rows go through the
    role's view of other teams (pseudonymised, or left out when it omits reviews)."""
    keys = ("reviewer", "author")
    base = Sanitizer(clean.hidden_fields, clean.pseudonymize, clean.secret)
    other = clean.other_teams
    if other is None:
        return base.rows(rows, person_keys=keys), ScopeCount()
    scope = clean.scope
    team = scope.team if scope is not None else None
    viewer = scope.viewer if scope is not None else None
    strict = Sanitizer(other.hidden_fields, other.pseudonymize, clean.secret)
    out, count = [], ScopeCount()
    for r in rows:
        own = (viewer is not None and viewer in (r.get("reviewer"), r.get("author"))) or (
            team is not None and r.get("author_team") == team
            and r.get("reviewer_team") in (team, views.AGENTS_TEAM))
        if own:
            out += base.rows([r], person_keys=keys)
        elif "reviews" in other.omit:
            count.left_out += 1
        else:
            count.shown_without_names += 1
            out += strict.rows([r], person_keys=keys)
    return out, count


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))


def to_frame(rows: list[dict[str, Any]], columns: list[str], strict: bool = True) -> pd.DataFrame:
    """Rows as a frame with these columns (also when there are no rows; `strict=False`: and
    any other key the rows hold, after them): instants (TIME_COLUMNS, ISO 8601 text) as UTC
    Timestamps, numeric columns with None as NaN, a key a row lacks as NaN; the rest as pandas
    infers them (text as its string dtype)."""
    cols = list(columns) if strict else list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    if not rows:
        return pd.DataFrame({c: pd.to_datetime(pd.Series([], dtype=object), utc=True) if c in TIME_COLUMNS
                             else pd.Series([], dtype=object) for c in cols}, columns=cols)
    # Column by column from the rows, each typed once, and one constructor: half the CPU of
    # from_records and a setitem per column (each of which copied the frame's blocks).
    data: dict[str, Any] = {}
    for c in cols:
        values = [r.get(c, np.nan) for r in rows]
        if c in TIME_COLUMNS:
            data[c] = _times(values)
        elif all(_is_number(v) for v in values) and any(v is not None for v in values):
            plain = np.array([np.nan if v is None else v for v in values])
            data[c] = plain if plain.dtype.kind in "if" else \
                pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy()
        else:
            data[c] = values
    found = _from_columns(data, cols, len(rows))
    return found if found is not None else pd.DataFrame(data, columns=cols)


def _is_iso_z(v: Any) -> bool:
    """ISO 8601 text as data.timeutil.fmt_ms writes it: '2025-08-17T06:00:00Z' or with '.250'."""
    return isinstance(v, str) and len(v) in (20, 24) and v[10] == "T" and v[-1] == "Z"


def _times(values: list[Any]) -> pd.DatetimeIndex:
    """ISO 8601 texts (or None / NaN: NaT) as UTC instants. The texts the data layer writes
    (fmt_ms) are parsed by numpy, a third of pandas' ISO 8601 parser's time; any other text
    goes to pandas."""
    if any(isinstance(v, str) for v in values) and \
            all(v is None or _is_iso_z(v) or (isinstance(v, float) and v != v) for v in values):
        plain = np.array([v[:-1] if isinstance(v, str) else None for v in values], dtype="datetime64[us]")
        return pd.DatetimeIndex(plain).tz_localize("UTC")
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _from_columns(data: dict[str, Any], cols: list[str], n: int) -> pd.DataFrame | None:
    """The frame `pd.DataFrame(data, columns=cols)` gives, made from one block per column with
    pandas' public `create_dataframe_from_blocks` (a fifth of the constructor's time, which
    infers and checks every column again: a page's draw makes some thirty frames). None when
    a column is not numbers, instants, text, booleans or only None (lists, dicts, mixed
    values): the constructor infers those."""
    blocks: list[tuple[Any, np.ndarray]] = []
    for i, c in enumerate(cols):
        v = data[c]
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "if":
            block: Any = v.reshape(1, -1)
        elif isinstance(v, pd.DatetimeIndex):
            block = v.array
        elif not isinstance(v, list):
            return None
        elif all(x is None for x in v):
            block = np.array(v, dtype=object).reshape(1, -1)     # pandas: an object column of None
        elif all(type(x) is bool for x in v):
            block = np.array(v, dtype=bool).reshape(1, -1)
        elif any(isinstance(x, str) for x in v) and \
                all(isinstance(x, str) or x is None or (isinstance(x, float) and x != x) for x in v):
            block = _TEXT_ARRAY._from_sequence(v, dtype=TEXT)
        else:
            return None
        blocks.append((block, np.array([i])))
    return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n),
                                        columns=pd.Index(cols, dtype=TEXT if cols and all(isinstance(c, str) for c in cols)
                                                         else None))


def apply_transform(frame: pd.DataFrame, t: Transform | None) -> pd.DataFrame:
    """Sort (missing values last; a column the frame lacks is ignored), keep `columns` (in
    that order, those the frame has), then the first `limit` rows."""
    if t is None:
        return frame
    attrs = dict(frame.attrs)
    out = frame
    if t.sort_by and t.sort_by in out.columns:
        try:
            out = out.sort_values(t.sort_by, ascending=not t.descending, na_position="last", kind="stable")
        except TypeError:            # unorderable cells (lists): by their text
            order = out[t.sort_by].map(lambda v: "" if v is None else str(v))
            out = out.loc[order.sort_values(ascending=not t.descending, kind="stable").index]
    if t.columns:
        out = out[[c for c in t.columns if c in out.columns]]
    if t.limit:
        out = out.head(t.limit)
    out = out.reset_index(drop=True)
    out.attrs = attrs
    return out


# --- export -----------------------------------------------------------------------------------

def _json_value(v: Any) -> Any:
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return fmt_ms(int(v.tz_convert("UTC").value // 1_000_000) if v.tzinfo else int(v.value // 1_000_000))
    if isinstance(v, datetime):
        return fmt_ms(int(v.timestamp() * 1000))
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) or math.isinf(v) else float(v)
    if isinstance(v, np.ndarray):
        return [_json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def frames_to_rows(frame: pd.DataFrame | None) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of a frame for CSV / JSON: instants as ISO 8601 UTC ('…Z'), NaN and
    NaT as None, numpy scalars as plain Python numbers."""
    if frame is None:
        return [], []
    columns = [str(c) for c in frame.columns]
    rows = [{c: _json_value(v) for c, v in zip(columns, values)}
            for values in frame.itertuples(index=False, name=None)]
    return columns, rows


__all__ = ["NotPermitted", "PERMISSIONS", "SourceContext", "allowed", "apply_transform",
           "clean_filters", "fetch", "fetch_all", "frames_to_rows", "merge_filters", "permission", "permissions",
           "request", "to_frame"]
