"""The one dashboard engine in the browser: any definition (the four provisioned role
dashboards, shared and personal ones alike) laid out by pages.dashboard.board, and ONE
refresh callback that fills every widget of the page from its data sources.

Each widget refreshes at its own `refresh_interval` (the page's one clock, passed on through
the `w-due` store), on new data
("live": the live channel bumps `live-tick`), and when the timeframe or a filter changes;
a single request per trigger carries every widget that is due, so a page costs one round
trip per refresh however many widgets it has, and every source is computed once per data
version (dashboards.sources caches it).

Authorisation is per widget, by its data sources' permissions (dashboards.sources.allowed):
the page draws a forbidden widget as "not permitted" with no body to refresh, and the
refresh callback's permission is that of every source of every widget it is asked for.
The definition comes with the request (the `dash-def` store, typed by the schema), so an
unsaved edit previews the same way; a hand-made definition gains nothing, since each
source is authorised on its own.
"""
from __future__ import annotations

import _socket
import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from typing import Any
from urllib.parse import urlencode

import orjson
import redis
from cachetools import LRUCache

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask import current_app, request
from werkzeug.exceptions import HTTPException

from auth.guard import callback_input, secure_callback, secure_clientside
from callbacks.inputs import Choice, Due, Flag, Ignored, Theme, TimeframeValue
from auth.principal import Principal, audit, authorize, current_principal
from components import editor
from components.share import share_dialog
from components import render as renderer
from components import static_html
from callbacks.draw_stats import DrawStats, view_name
from components.json_out import to_json
from dashboards import sources
from dashboards.schema import Dashboard, DataSource, Widget
from dashboards.schema import parsed as schema_parsed
from data import cache_io, partition
from data.engine import QueryError, plan
from data.kpis import dashboard_of
from data.timeutil import fmt_ms, now_ms
from pages import dashboard as page

log = logging.getLogger("qms.dashboard")

FILTER_INPUTS = ("dash-timeframe", "dash-scope", "dash-gate", "dash-agent")
ANNOTATIONS = DataSource(source="computed", name="annotations")


def widget_permissions(widget: Widget, principal: Principal | None) -> tuple[str, ...]:
    """What the guard checks for a widget: per source, the permission of its any-of set that
    the viewer holds (else the first, which they lack)."""
    out = []
    for ds in widget.data_sources:
        options = sources.permissions(ds)
        out.append(next((p for p in options if authorize(principal, p)), options[0]))
    return tuple(dict.fromkeys(out))


def denied_permission(widget: Widget, principal: Principal | None) -> str | None:
    """The first permission of the widget's sources the viewer lacks (None: all allowed)."""
    for ds in widget.data_sources:
        if not sources.allowed(ds, principal):
            return sources.permission(ds)
    return None


def _asked_widgets(body: dict[str, Any]) -> list[str]:
    outputs = body.get("outputs")
    first = outputs[0] if isinstance(outputs, list) and outputs else None
    return [str(o.get("id", {}).get("w")) for o in (first if isinstance(first, list) else [])
            if isinstance(o, dict) and isinstance(o.get("id"), dict)]


def _refresh_permission(body: dict[str, Any]) -> tuple[str, ...] | str:
    """Every source of every widget the request asks for (the guard has typed the body)."""
    raw = callback_input(body, "dash-def", "data")
    try:
        defn = schema_parsed(raw)
    except Exception:        # the schema check ran first; anything else is no permission
        return ""
    needed: list[str] = []
    principal = current_principal()
    for wid in _asked_widgets(body):
        widget = defn.widget(wid)
        if widget is None:
            return ""
        needed += widget_permissions(widget, principal)
    return tuple(dict.fromkeys(needed)) or "authenticated"


def view_from(timeframe: str | None, scope: str | None, gate: str | None, agent: str | None,
              controls: list[str], fixed: dict[str, str] | None = None) -> dict[str, str]:
    """The view of a refresh: the pickers the dashboard offers, over its own filters for the
    ones it offers no picker for (a dashboard fixed to one team stays on that team)."""
    view = {"timeframe": timeframe or "24h"}
    for key, value in (fixed or {}).items():
        if (key in ("repository", "team") and "scope" not in controls) or (key in ("gate", "agent")
                                                                          and key not in controls):
            view[key] = value
    if scope and "scope" in controls and "=" in scope:
        dim, value = scope.split("=", 1)
        if dim in ("repository", "team") and value:
            view[dim] = value
    if gate and "gate" in controls:
        view["gate"] = str(gate)
    if agent and "agent" in controls:
        view["agent"] = str(agent)
    return view


GRID_INPUTS = {f"{i}.value" for i in FILTER_INPUTS} | {"w-due.data", "live-tick.data", "dash-def-key.data"}


def _grid_arrived() -> bool:
    """The call Dash makes when a grid enters the page (whatever prevent_initial_call says: its
    outputs match a pattern): it names every input as changed, where a user's change, a tick
    or an edit names one; or its initial call, naming none, when the page came with the
    layout (callbacks/pages.py first_page)."""
    changed = {t.get("prop_id") for t in (ctx.triggered or [])} - {".", None}
    return not changed or GRID_INPUTS <= changed


def _due(defn: Dashboard, asked: list[str], ticked: dict[str, Any] | None) -> set[str]:
    """The widgets this trigger refreshes: the view or the definition changed, all of them;
    a live tick, the live ones; their own intervals (`w-due`), those."""
    triggered = [t["prop_id"] for t in (ctx.triggered or []) if t.get("prop_id") not in (None, ".")]
    if not triggered or any(p.split(".")[0] in FILTER_INPUTS or p.startswith("dash-def-key") for p in triggered):
        return set(asked)
    due: set[str] = set()
    for prop in triggered:
        if prop.startswith("live-tick"):
            due |= {w.id for w in defn.widgets if w.refresh_interval == "live"}
        elif prop.startswith("w-due"):
            due |= {str(w) for w in (ticked or {}).get("w") or []}
    return due & set(asked)


# The widgets whose own period came round on the page's one clock (`w-clock` ticks at the
# largest step dividing every period in `w-every`, pages.dashboard.widget_clock), as one store
# the refresh listens to. This clientside step (no request) names only the widgets due.
DUE_JS = """function (n, every, tick) {
  var nu = window.dash_clientside.no_update;
  if (!n || !every || !tick) { return nu; }
  var t = n * tick, ids = Object.keys(every).filter(function (w) { return t % every[w] === 0; });
  return ids.length ? {w: ids, t: Date.now()} : nu;
}"""


STALE_FACTOR = sources.STALE_FACTOR        # by timeframe: how much longer than QMS_BODY_CACHE_S


class BodyCache:
    """Drawn widget bodies, shared by this deployment's web processes. A body depends only on
    the widget's definition, what its sources return (their identity — timeframe, window,
    filters, the caller for personal sources — and the data version), the viewer's class
    (roles and permissions: what sanitising and the sources allow; the viewer too where team
    scope applies), the theme and the page's context. A body is reused for its data version
    and window, and for `stale_ms_for(timeframe)` after it was drawn though newer versions and
    windows came (under live ingest every batch is a version: without this, every draw of
    every user would be drawn anew — the 500-user load test's limit); the live channel keeps
    KPI cards exact meanwhile. Bodies are kept as JSON: in Redis (`{p}:cache:body:<key>`,
    serialised once by the process that drew it, read by the others) and parsed in this
    process's LRU."""

    def __init__(self, size: int = 1024, stale_s: float = 0.0, r: Any = None, keys: Any = None,
                 max_age_s: float = 0.0) -> None:
        self._bodies: LRUCache[str, tuple[int, str, int, Any]] = LRUCache(maxsize=size)
        self._lock = threading.Lock()
        self._drawing: dict[str, list[Any]] = {}        # key -> [lock, holders and waiters]
        self.stale_ms = max(0.0, float(stale_s or 0)) * 1000
        self.max_age_ms = max(0.0, float(max_age_s or 0)) * 1000
        self.r = r
        self.keys = keys

    def stale_ms_for(self, timeframe: str | None) -> float:
        """How long a body of this window is reused across data versions."""
        return self.stale_ms * STALE_FACTOR.get(timeframe or "", 1)

    def redraw_ms(self) -> dict[str, int]:
        """Per timeframe, how often a live page need ask for its bodies again (at least the
        live client's own 2 s)."""
        return {tf: max(2000, int(self.stale_ms_for(tf))) for tf in STALE_FACTOR}

    @contextlib.contextmanager
    def drawing(self, key: str | None) -> Any:
        """One draw of a key at a time (single flight): the requests that miss the same key
        meanwhile wait for it and take its body instead of drawing it again — under load,
        every request for a view whose body expired drew it while the first draw was running."""
        if key is None:
            yield
            return
        with self._lock:
            entry = self._drawing.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    self._drawing.pop(key, None)

    @staticmethod
    def key(widget: Widget, sctx: Any, mode: str, context: dict[str, Any], annotated: bool) -> tuple[str, str] | None:
        """(key, exact): `key` names the body whatever the window's end (a body is reused across
        the minute its window moved by while it is fresh), `exact` its sources' windows too (a
        body of the same version is current only for the same windows). None: not kept."""
        ident = sources.cacheable_identity(widget, sctx)
        if ident is None:
            return None
        p = sctx.principal
        scoped = getattr(sctx.sanitizer, "other_teams", None) is not None      # the viewer's team matters
        viewer = ["anyone allowed"] if viewer_neutral(widget) else [
            sorted(p.roles) if p else [], sorted(getattr(p, "permissions", ()) or ()) if p else [],
            (p.name if p else None) if scoped else None]
        # A body of scope-free sources only is the same for every repository or team filter:
        # the renderers use the filter's query only for the links of filtered numbers.
        if context.get("scope_query") and all(sources.scope_free(ds.source, ds.metric or ds.name or "")
                                              for ds in widget.data_sources):
            context = {**context, "scope_query": "*"}
        # Markers are drawn on time series only: a card's body is the same on a page with a chart.
        head = [widget.model_dump(mode="json"), mode, context, annotated and widget.type in renderer.TIME_SERIES,
                viewer]
        moving = getattr(sctx, "end_ms", None) is None          # a fixed end is part of the name
        key = hashlib.sha1(orjson.dumps([*head, [sources.windowless(i) if moving else i for i in ident]],
                                        option=orjson.OPT_SORT_KEYS)).hexdigest()
        return key, hashlib.sha1("\x00".join(ident).encode()).hexdigest()

    @staticmethod
    def _valid(entry: tuple[int, str, int, Any], exact: str, version: int, now: int, stale_ms: float) -> bool:
        drawn_version, drawn_exact, at, _ = entry
        return (drawn_version == version and drawn_exact == exact) or 0 <= now - at < stale_ms

    def get(self, key: tuple[str, str] | None, version: int, now: int, stale_ms: float | None = None) -> Any:
        if key is None:
            return None
        name, exact = key
        stale = self.stale_ms if stale_ms is None else stale_ms
        with self._lock:
            found = self._bodies.get(name)
        if found is not None and self._valid(found, exact, version, now, stale):
            return found[3]
        found = self._stored(name)
        if found is None or not self._valid(found, exact, version, now, stale):
            return None
        with self._lock:
            self._bodies[name] = found
        return found[3]

    def _stored(self, name: str) -> tuple[int, str, int, Any] | None:
        """The entry the web processes keep in Redis under this name (None: none, or no Redis)."""
        if self.r is None:
            return None
        try:
            raw = cache_io.get(self.r, self.keys.cache("body:" + name))
        except redis.RedisError:
            return None
        if raw is None:
            return None
        entry = orjson.loads(raw)
        return int(entry["v"]), str(entry["x"]), int(entry["at"]), entry["b"]

    @staticmethod
    def overload_ms(stale_ms: float) -> float:
        """How old a body may be shown while the draw gate is busy (`recent`): four times its
        staleness, at least 30 s — none when bodies are kept per data version only."""
        return max(OVERLOAD_MIN_MS, OVERLOAD_FACTOR * stale_ms) if stale_ms > 0 else 0.0

    def congested_ms(self, stale_ms: float) -> float:
        """How old a body may be shown while draws queue past QMS_DRAW_MAX_WAIT_S: up to
        QMS_OVERLOAD_MAX_AGE_S (at least `overload_ms`) — none when bodies are kept per data
        version only."""
        return max(self.overload_ms(stale_ms), self.max_age_ms) if stale_ms > 0 else 0.0

    def recent(self, key: tuple[str, str] | None, now: int, max_age_ms: float) -> tuple[Any, int] | None:
        """(body, drawn at) of the newest body kept under `key` if drawn less than `max_age_ms`
        ago, whatever its data version: what an overloaded server shows instead of queueing the
        draw (fill). None: none that young."""
        if key is None or max_age_ms <= 0:
            return None
        with self._lock:
            found = self._bodies.get(key[0])
        stored = self._stored(key[0])
        if stored is not None and (found is None or stored[2] > found[2]):
            found = stored
        if found is None or not 0 <= now - found[2] < max_age_ms:
            return None
        return found[3], found[2]

    def prefetch(self, wanted: list[tuple[tuple[str, str] | None, float]], version: int, now: int,
                 fresh: bool = False) -> None:
        """Within a page's batch (data.cache_io), read from Redis in one pipeline the bodies
        (key, stale_ms) this process does not hold valid; `fresh`: again, though read before
        (after the wait at the draw gate, what the other processes drew meanwhile)."""
        if self.r is None:
            return
        names = []
        with self._lock:
            for key, stale in wanted:
                if key is None:
                    continue
                found = self._bodies.get(key[0])
                if found is None or not self._valid(found, key[1], version, now, stale):
                    names.append(self.keys.cache("body:" + key[0]))
        try:
            cache_io.prefetch(self.r, names, fresh=fresh)
        except redis.RedisError:
            pass                         # each get asks again, and fails alike: drawn

    def put(self, key: tuple[str, str] | None, version: int, now: int, body: Any, stale_ms: float | None = None) -> Any:
        """`body` as plain JSON, kept under `key` (None: not kept) here and for the other
        processes (serialised once)."""
        text = to_json(body)
        plain = orjson.loads(text)
        if key is not None:
            name, exact = key
            with self._lock:
                self._bodies[name] = (version, exact, now, plain)
            if self.r is not None:
                stale = self.stale_ms if stale_ms is None else stale_ms
                ttl = max(BODY_TTL_MIN_S, int(self.congested_ms(stale) / 1000) + 1)
                try:
                    cache_io.set(self.r, self.keys.cache("body:" + name),
                                 f'{{"v":{int(version)},"x":"{exact}","at":{int(now)},"b":{text}}}', ex=ttl)
                except redis.RedisError:
                    pass                 # kept in this process; the data store's outage shows elsewhere
        return plain

    def clear(self) -> None:
        with self._lock:
            self._bodies.clear()


# A body kept in Redis for its data version outlives its staleness this long (a quiet system
# keeps its version: the next viewer finds the body instead of drawing it), and at least as
# long as an overloaded server may show it (BodyCache.overload_ms).
BODY_TTL_MIN_S = 60
OVERLOAD_FACTOR = 4
OVERLOAD_MIN_MS = 30_000.0


def bodies_cache() -> BodyCache:
    """This app's body cache (one per app: two apps in one process — tests — share nothing in
    memory; in Redis, by database)."""
    found = current_app.extensions.get("qms_bodies")
    if found is None:
        svc = current_app.extensions["qms"]
        found = current_app.extensions.setdefault(
            "qms_bodies", BodyCache(stale_s=svc.settings.body_cache_s, r=svc.redis, keys=svc.keys,
                                    max_age_s=svc.settings.overload_max_age_s))
    return found


def viewer_neutral(widget: Widget) -> bool:
    """A body the same for every viewer allowed to see it: KPI cards, gauges and bars of `kpi`
    sources (aggregates: nothing in them is sanitised, the caller is in a personal source's
    identity, the renderer reads no permission) and no annotation markers. Its key names no
    viewer class, so the executive and the admin share the executive page's cards; who may see
    it is checked before a body is looked up (`body_key`), as before."""
    return bool(widget.data_sources) and all(ds.source == "kpi" for ds in widget.data_sources) \
        and widget.type not in renderer.TIME_SERIES


class DrawGate:
    """At most `n` fills that draw bodies at once in this process, the others waiting their
    turn in order of arrival (0: no limit). Under gevent one loop serves every request of a
    process: with no limit, a hundred CPU-bound draws share the loop with the cheap requests
    (the sign-in form, `/_dash-dependencies`, a socket's handshake, a body already drawn), so
    each of those waited for a slice of every draw in progress — the 500-user load test's
    timeouts. Waiting at the gate takes no CPU; a request whose bodies are all drawn
    (`BodyCache`) never waits, and one that waited finds what the draws before it drew."""

    def __init__(self, n: int) -> None:
        self.n = max(0, int(n or 0))
        self._sem: Any = None
        self._lock = threading.Lock()
        self.active = 0                  # fills drawing now
        self.waiting = 0                 # fills waiting for their turn
        self.wait_s = 0.0                # how long fills waited for their turn lately (moving average)

    def busy(self) -> bool:
        """Whether a draw asked now would wait for its turn."""
        return bool(self.n) and (self.waiting > 0 or self.active >= self.n)

    def expected_wait_s(self) -> float:
        """About how long a draw asked now would wait: as long as fills waited lately (0 when
        a turn is free). Observed waits, not the queue times a turn's length: under overload
        many turns end at once (their client left, ClientLeft), which says nothing of the wait."""
        return self.wait_s if self.busy() else 0.0

    @contextlib.contextmanager
    def turn(self) -> Any:
        if not self.n:
            yield
            return
        if self._sem is None:
            with self._lock:
                if self._sem is None:
                    # Made at first use, in a request: under gevent, after its patches (a gevent
                    # semaphore, which wakes its waiters in order).
                    self._sem = threading.BoundedSemaphore(self.n)
        with self._lock:
            self.waiting += 1
        asked = time.perf_counter()
        try:
            self._sem.acquire()
        finally:
            waited = time.perf_counter() - asked
            with self._lock:
                self.waiting -= 1
                self.wait_s = 0.8 * self.wait_s + 0.2 * waited
        with self._lock:
            self.active += 1
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1
            self._sem.release()


def peer_socket(environ: dict[str, Any]) -> Any:
    """The request's TCP connection, where the server says (gunicorn's workers; gevent's
    pywsgi through its input file), else None (Werkzeug's threads, test clients)."""
    found = environ.get("gunicorn.socket")
    if found is not None:
        return found
    rfile = getattr(environ.get("wsgi.input"), "rfile", None)
    return getattr(getattr(rfile, "raw", None), "_sock", None)


def peer_left(environ: dict[str, Any]) -> bool:
    """Whether the client closed its connection: no one is waiting for the answer (a browser
    that navigated away, a client past its timeout). A look at the socket without reading or
    waiting (MSG_PEEK | MSG_DONTWAIT on the same descriptor): end of stream or an error means
    gone; bytes (the next request) or nothing yet means still there."""
    sock = peer_socket(environ)
    try:
        fd = sock.fileno() if sock is not None else -1
    except OSError:
        return True
    if fd < 0:
        return sock is not None      # a closed socket object
    probe = _socket.socket(fileno=fd)    # the descriptor itself, not gevent's cooperative wrapper
    try:
        return probe.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True                      # reset by the peer
    finally:
        probe.detach()


class ClientLeft(HTTPException):
    """A draw abandoned because its client left (nginx's 499 "client closed request"): the
    answer could reach no one, and the draws queued behind it are for clients still waiting."""
    code = 499
    description = "client closed request"


def give_up_if_left() -> None:
    """Before a draw that waited at the gate, and between its widgets: under overload the
    queue's oldest requests are often past their client's timeout (the 500-user load test's
    30 s), and every body drawn for them was CPU taken from the requests still waiting."""
    try:
        environ = request.environ
    except RuntimeError:             # no request (a page drawn outside one: benchmarks)
        return
    if peer_left(environ):
        log.info("a draw abandoned: its client left (%s)", request.path)
        draw_stats().gave_up()
        raise ClientLeft()


def _per_app(name: str, make: Any) -> Any:
    """This app's one `name` object, made from its settings at first use."""
    found = current_app.extensions.get(name)
    if found is None:
        found = current_app.extensions.setdefault(name, make(current_app.extensions["qms"].settings))
    return found


def draw_stats() -> DrawStats:
    """This app's draw counters (QMS_DRAW_STATS_S)."""
    return _per_app("qms_draw_stats", lambda st: DrawStats(st.draw_stats_s))


def draw_gate() -> DrawGate:
    """This app's gate (QMS_DRAW_CONCURRENCY)."""
    return _per_app("qms_draw_gate", lambda st: DrawGate(st.draw_concurrency))


def _timeframe_of(widget: Widget, context: dict[str, Any]) -> str:
    """The shortest window among the widget's sources (a source may pin its own)."""
    tfs = [ds.timeframe or context.get("timeframe") or "24h" for ds in widget.data_sources] or [context.get("timeframe")]
    return min(tfs, key=lambda tf: STALE_FACTOR.get(tf or "", 1))


def body_key(widget: Widget, sctx: Any, mode: str, context: dict[str, Any],
             annotated: bool) -> tuple[str, str] | None:
    """The widget's key in the BodyCache (None: never looked up — not kept, or not allowed:
    drawn, and refused with NotPermitted, as before)."""
    if not all(sources.allowed(ds, sctx.principal) for ds in widget.data_sources):
        return None
    return bodies_cache().key(widget, sctx, mode, context, annotated)


def light(widget: Widget, principal: Principal | None) -> bool:
    """A widget drawn without a turn at the gate: each of its sources is a live read never kept
    (their Spec's `cache` False: health, alert state) or refused to this viewer."""
    return bool(widget.data_sources) and widget.type not in renderer.TIME_SERIES and all(
        not sources.spec(ds).cache or not sources.allowed(ds, principal) for ds in widget.data_sources)


def draw(widget: Widget, sctx: Any, mode: str, context: dict[str, Any], annotations: Any,
         version: int, key: tuple[str, str] | None, stale: float, stats_view: str = "") -> Any:
    """One widget's body that the BodyCache did not hold under `key` (valid for `stale` ms):
    unless another request drew it meanwhile, drawn now; a failing source or renderer costs
    that widget, not the page. `annotations`: a callable giving the markers' frame (fetched
    only if a body is drawn), or None."""
    cache, now = bodies_cache(), now_ms()
    with cache.drawing(key[0] if key else None):
        cached = cache.get(key, version, now, stale)      # drawn by another request meanwhile
        if cached is not None:
            draw_stats().found_shared()
            return cached
        if callable(annotations):
            annotations = annotations()
        t0 = time.perf_counter()
        try:
            return _draw(widget, sctx, mode, context, annotations, version, key, now, stale)
        finally:
            draw_stats().drew(stats_view, time.perf_counter() - t0)


def _draw(widget: Widget, sctx: Any, mode: str, context: dict[str, Any], annotations: Any, version: int,
          key: tuple[str, str] | None, now: int, stale_ms: float | None = None) -> Any:
    cache = bodies_cache()
    try:
        frames = sources.fetch_all(widget, sctx)
        # A gate chart's clicks open the gate's page (callbacks.pages.open_gate).
        kind = "w-gates" if widget.type == "gate_performance" else "w-view"
        body = renderer.render(widget, frames, mode=mode, context=context, annotations=annotations,
                               id={"type": kind, "w": widget.id})
        # Static parts (tiles, rows, cards) as HTML: a fraction of the components for the page
        # to mount (components/static_html.py).
        return cache.put(key, version, now, static_html.staticize(with_scope_notes(body, frames)), stale_ms)
    except QueryError as exc:
        return html.Div(str(exc), className="small text-warning-emphasis p-2 widget-error")
    except Exception:                       # noqa: BLE001 - logged; the page keeps its other widgets
        log.exception("widget %s failed", widget.id)
        return html.Div("This widget could not be drawn (logged).", className="small text-danger p-2 widget-error")


def with_scope_notes(body: Any, frames: list[Any]) -> Any:
    """Team scope (config/rbac.yaml other_teams): a widget whose rows lost names or rows says
    how many under its body (the sources' `scope_note`), as the REST twin's `scope` does."""
    said = list(dict.fromkeys(n for f in frames if f is not None and (n := f.attrs.get("scope_note"))))
    if not said:
        return body
    return html.Div([html.Div(body, style={"flex": "1 1 auto", "minHeight": 0}),
                     *(html.Div(n, className="small text-body-secondary mt-1 scope-note", style={"flex": "none"})
                       for n in said)], className="d-flex flex-column")


# (dash-def-key, dash-def-seen): the key changes only when what the widgets' bodies depend on
# changes; the first call of a page only records the key it was drawn from.
DEF_KEY_JS = """function (def, seen) {
  var nu = window.dash_clientside.no_update;
  if (!def) { return [nu, nu]; }
  var key = JSON.stringify([def.id, def.filters, (def.widgets || []).map(function (w) {
    return [w.id, w.type, w.title, w.data_sources, w.display_options, w.alert_thresholds, w.refresh_interval];
  })]);
  if (seen === null || seen === undefined) { return [nu, key]; }
  return key === seen ? [nu, nu] : [key, key];
}"""


def register(app: Dash) -> None:
    # The bodies depend on the definition's widgets, not on positions: a drag or a resize in
    # the edit mode changes `dash-def` but not this key, so no widget is redrawn for it. The
    # first call (the page arriving, drawn whole) only remembers the key it was drawn from.
    secure_clientside(app, lambda body: None, DEF_KEY_JS, Output("dash-def-key", "data"),
                      Output("dash-def-seen", "data"), Input("dash-def", "data"), State("dash-def-seen", "data"))

    secure_clientside(app, lambda body: None, DUE_JS, Output("w-due", "data"),
                      Input("w-clock", "n_intervals"), State("w-every", "data"), State("w-clock", "interval"))

    @secure_callback(app, _refresh_permission,
                     Output({"type": "w-body", "w": ALL}, "children"), Output("dash-window", "children"),
                     Output("dash-freshness", "children"), Output("url-sync", "search"),
                     Output("dash-export", "href"),
                     Input("w-due", "data"), Input("dash-timeframe", "value"),
                     Input("dash-scope", "value"), Input("dash-gate", "value"), Input("dash-agent", "value"),
                     Input("live-tick", "data"), Input("dash-def-key", "data"), State("dash-def", "data"),
                     State("theme", "data"), State("dash-drawn", "data"),
                     inputs={"w-due.data": Due, "dash-timeframe.value": TimeframeValue,
                             "dash-scope.value": Choice, "dash-gate.value": Choice, "dash-agent.value": Choice,
                             "live-tick.data": Ignored, "dash-def-key.data": Ignored, "dash-def.data": Dashboard,
                             "theme.data": Theme, "dash-drawn.data": Flag},
                     twin="GET /api/dashboards/<dash_id>/widgets/<widget_id>/data")
    def refresh(ticked: dict[str, Any] | None, timeframe: str | None, scope: str | None, gate: str | None, agent: str | None,
                _live: Any, _def_key: Any, raw_def: dict[str, Any], mode: str | None,
                drawn: bool | None) -> tuple[Any, ...]:
        if drawn and _grid_arrived():
            raise PreventUpdate          # the page came with its bodies (a grid without them is filled)
        principal = current_principal()
        defn = schema_parsed(raw_def)
        asked = [o["id"]["w"] for o in ctx.outputs_list[0]]
        due = _due(defn, asked, ticked)
        view = view_from(timeframe, scope, gate, agent, defn.filter_controls, defn.filters.active())
        if ctx.triggered_id in FILTER_INPUTS:
            audit("user.filter_applied", dashboard=defn.id, **view)
        out = fill(defn, [w for w in asked if w in due], view, principal, mode)
        bodies = [out.bodies.get(w, no_update) for w in asked]
        search = f"?{urlencode(view)}" if ctx.triggered_id in FILTER_INPUTS else no_update
        return bodies, out.window, out.freshness, search, out.export_href


# The viewer a page draws for when no pull request or review names the signed-in one: no
# user can sign in under this name (data.users.NAME_RE), no event can name it (ingest refuses
# control characters): its personal sources find nothing, as for any viewer without data.
STAND_IN = "\x00no events"


def drawn_for(svc: Any, principal: Principal | None, version: int) -> Principal | None:
    """Whom a page's bodies are drawn for: the viewer, or, when no pull request or review
    names them (the users registry, which holds every author and reviewer: all that personal
    sources and the team scope read of a viewer), a stand-in of the same roles and
    permissions. Their personal widgets show nothing of theirs, the same for every such
    viewer, and their team is unknown: drawn for the stand-in, one body serves them all
    instead of one drawn per viewer (in the 500-user load test nearly half the bodies drawn
    were developer pages of viewers without data). Rows that name such a viewer in another
    field (a defect they found) are shown to them as to anyone outside their team."""
    if principal is None or principal.name in svc.engine.known_users(version):
        return principal
    return dataclasses.replace(principal, name=STAND_IN)


def fill(defn: Dashboard, widget_ids: list[str], view: dict[str, str], principal: Principal | None,
         mode: str | None) -> page.Drawn:
    """The bodies of these widgets for this view and viewer, with the page's window line,
    freshness and export link: what the refresh sends, and what a page is first drawn with."""
    svc = current_app.extensions["qms"]
    widgets = [w for wid in widget_ids if (w := defn.widget(wid)) is not None]
    # Markers for the time series among them (render draws them where its TIME_SERIES and the
    # widget's display options say), fetched once and only if a body is drawn.
    annotated = any(w.type in renderer.TIME_SERIES for w in widgets) and sources.allowed(ANNOTATIONS, principal)
    markers: list[Any] = []

    def annotations() -> Any:
        if not markers:
            try:
                markers.append(sources.fetch(ANNOTATIONS, sctx))
            except Exception:            # noqa: BLE001 - markers are an extra, never a failure
                log.exception("annotations failed")
                markers.append(None)
        return markers[0]

    scope_query = urlencode({k: v for k, v in view.items() if k in ("repository", "team")})
    context = {"timeframe": view["timeframe"], "scope_query": scope_query, "dashboard": defn.id}
    export = urlencode({k: v for k, v in view.items() if k in ("timeframe", "repository", "team")})
    mode = mode or "light"
    older: list[int] = []                # ages of the bodies shown from before, under load
    cache = bodies_cache()
    # The page's cache traffic in a few round trips (data.cache_io): the version read once,
    # the kept bodies and the sources' results read ahead, what is drawn written at the end.
    with cache_io.batched(svc.redis, svc.keys):
        version, last_batch = partition.data_version(svc.redis, svc.keys)
        sctx = sources.SourceContext.for_request(svc, drawn_for(svc, principal, version), view["timeframe"],
                                                 {k: v for k, v in view.items() if k != "timeframe"})
        sctx.page = True             # its sources' results within their timeframe's staleness
        now = now_ms()
        stale = {w.id: cache.stale_ms_for(_timeframe_of(w, context)) for w in widgets}
        keys = {w.id: body_key(w, sctx, mode, context, annotated) for w in widgets}
        cache.prefetch([(keys[w.id], stale[w.id]) for w in widgets], version, now)
        bodies = {w.id: cache.get(keys[w.id], version, now, stale[w.id]) for w in widgets}
        missing = [w for w in widgets if bodies[w.id] is None]
        stats = draw_stats()
        stats_view = view_name(defn.id, view, any(sources.personal(ds) for w in missing for ds in w.data_sources))
        kept = len(widgets) - len(missing)
        gate = draw_gate()
        if missing and gate.busy():
            # Overloaded: a body drawn a little longer ago (BodyCache.overload_ms) now, rather
            # than a place in the queue of draws; while the queue is longer than
            # QMS_DRAW_MAX_WAIT_S, any kept body up to QMS_OVERLOAD_MAX_AGE_S old
            # (congested_ms). The page says which are older and how old (freshness); the KPI
            # cards' values stay exact through the live channel.
            congested = gate.expected_wait_s() > svc.settings.draw_max_wait_s
            for w in missing:
                limit = cache.congested_ms(stale[w.id]) if congested else cache.overload_ms(stale[w.id])
                shown = cache.recent(keys[w.id], now, limit)
                if shown is not None:
                    bodies[w.id] = shown[0]
                    older.append(now - shown[1])
            missing = [w for w in missing if bodies[w.id] is None]
        stats.fill(stats_view, kept, len(older), max(older, default=0))
        # Live reads (health, alert state: sources never kept) and refusals are drawn at once:
        # they cost a few Redis reads, and queueing them made every page with one wait its turn.
        for w in [w for w in missing if light(w, principal)]:
            bodies[w.id] = draw(w, sctx, mode, context, None, version, keys[w.id], stale[w.id], stats_view)
        missing = [w for w in missing if bodies[w.id] is None]
        if missing:
            asked_at = time.perf_counter()
            with gate.turn():                # the draws in order, cheap requests beside them
                stats.waited((time.perf_counter() - asked_at) * 1000)
                give_up_if_left()
                # What the other processes drew while this request waited, and the sources'
                # kept results, each read once.
                cache.prefetch([(keys[w.id], stale[w.id]) for w in missing], version, now_ms(), fresh=True)
                sources.prefetch([w for w in missing if keys[w.id] is not None], sctx)
                for i, w in enumerate(missing):
                    if i:
                        give_up_if_left()
                    bodies[w.id] = draw(w, sctx, mode, context, annotations if annotated else None, version,
                                        keys[w.id], stale[w.id], stats_view)
    stats.maybe_log()
    freshness = freshness_text(last_batch)
    if older:
        age = max(older) // 1000
        freshness += (f" · server busy: {len(older)} widget{'s' if len(older) > 1 else ''} drawn up to "
                      + (f"{age}s ago" if age < 120 else f"{age // 60} min ago"))
    return page.Drawn(bodies=bodies,
                      window=window_text(svc, view), freshness=freshness,
                      export_href=f"/api/export/{defn.id}.csv?{export}")


def window_line(start: str, end: str) -> str:
    """The sentence under a dashboard's title (and the gate page's) naming its window."""
    return f"Window {start} → {end} (UTC), compared with the window before"


def window_text(svc: Any, view: dict[str, str]) -> str:
    try:
        p = plan(view["timeframe"], None, now_ms(), svc.engine.skew_ms, 1)
    except QueryError as exc:
        return str(exc)
    text = window_line(fmt_ms(p.bounds[1]), fmt_ms(p.bounds[0]))
    shown = [f"{k} {v}" for k, v in view.items() if k != "timeframe"]
    if shown:
        text += "; filtered to " + ", ".join(shown) + " (cards marked “all” are not split that way)"
    return text


def freshness_text(last: int | None) -> str:
    """How long ago the last batch was applied (the data version's `last_batch_ms`)."""
    if last is None:
        return "no data yet"
    return f"updated {max(0, (now_ms() - int(last)) // 1000)}s ago"


def layout(defn: Dashboard, principal: Principal | None, timeframe: str, view: dict[str, str],
           kind: str = "provisioned", notices: list[Any] | None = None, tools: list[Any] | None = None,
           mode: str | None = None) -> Any:
    """The page of one definition for this viewer, drawn whole (every body it may see, for the
    view its pickers start at — what the refresh would draw): forbidden widgets marked, live
    channels of the KPIs it may see, CSV links for those who may export."""
    svc = current_app.extensions["qms"]
    denied = {w.id: p for w in defn.widgets if (p := denied_permission(w, principal))}
    scope = next((f"{d}={view[d]}" for d in ("repository", "team") if view.get(d)), None)
    drawn = fill(defn, [w.id for w in defn.widgets if w.id not in denied],
                 view_from(timeframe, scope, view.get("gate"), view.get("agent"), defn.filter_controls,
                           defn.filters.active()), principal, mode)
    can_export = authorize(principal, "export:reports")
    query = urlencode({k: v for k, v in view.items()})
    csv = {w.id: f"/api/dashboards/{defn.id}/widgets/{w.id}/data?format=csv&{query}" for w in defn.widgets}
    # The role channels whose KPI cards this page shows (live.js pushes their values).
    channels = sorted({f"dashboard.{d}" for w in defn.widgets if w.id not in denied for ds in w.data_sources
                       if ds.source == "kpi" and (d := dashboard_of(ds.metric or "")) and d != "developer"})
    # No data channel (e.g. a developer's page): "live" widgets poll at the app's refresh, or
    # as seldom as a body of the page's window is drawn again (asking sooner gets it back).
    redraw = bodies_cache().redraw_ms()
    live_every_ms = None if channels else max(svc.settings.refresh_ms, redraw.get(timeframe, 0))
    if authorize(principal, "view:alerts"):
        channels.append("alerts")
    names = svc.engine.names()
    roles = sorted(svc.rbac.roles)
    if authorize(principal, "manage:dashboards"):
        tools = [*(tools or []), share_dialog(defn, roles, names.get("teams", []))]
    return page.board(defn, denied=denied, timeframe=timeframe, view=view, names=names, can_export=can_export,
                      csv_hrefs=csv, channels=channels, kind=kind, notices=notices, tools=tools,
                      live_every_ms=live_every_ms, drawn=drawn, redraw_ms=redraw,
                      editor=editor.toolbar(authorize(principal, "update:personal_settings"),
                                            authorize(principal, "manage:dashboards")))
