"""Role dashboards in a real browser: time from navigation to "all KPIs visible".

    python bench/pages.py [--days 7] [--rate 2] [--runs 10] [--warmup 1] [--modes warm,cold]
                          [--redis-url redis://127.0.0.1:6379/13] [--timeframe 24h] [--skip-fill] [--keep]

A benchmark that prints numbers (not a test). Steps:

1. Fill: FLUSHDB the database of --redis-url, then simulate --days of history at --rate
   events/s (data.simulator.Simulator, ending now), pushed with pipelined
   `XADD qms:events * e <json>` while ONE aggregator process (`python cli.py aggregate`)
   drains the stream. Progress is printed every few seconds; the aggregator is stopped
   once it has processed every pushed event, so the data version is stable afterwards.
2. Users: one per role with data.users.UserStore (executive, operations, qa_lead, and a
   developer whose name is a simulated author, data.simulator.DEVELOPERS[0]).
3. Server: `python cli.py serve` with the settings in the environment (REDIS_URL,
   QMS_SECRET_KEY, QMS_RUN_AGGREGATOR=0, QMS_DATA_DIR = a temp dir, QMS_HOST, QMS_PORT).
4. Per role: a fresh headless Chromium signs in through the real /login form; the number
   of KPI widgets is taken from GET /api/dashboard/<name>?timeframe=<tf> with the browser's
   session cookie. Then --warmup + --runs full page loads (driver.get) of the role's
   dashboard. After each load, a script in the page waits (MutationObserver + 5 ms poll)
   until every `[data-kpi] .kpi-value` is present, visible and non-empty and their count
   equals the API's widget count, and returns performance.now() at that moment: the time
   from navigation start to all KPIs visible. The wall time around driver.get + the wait
   (adds WebDriver round trips) and the page's load-event time are reported too.
   After each load the same request is made to the API (same user, session cookie, same
   timeframe) and its metadata.processing_time / cache_status recorded.

Modes (--modes):
  warm  the aggregator is stopped, so the engine's Redis cache (keyed by the data version)
        holds the dashboard after the first load: page loads and API requests are cache hits
        (cache entries also roll over each minute, so an occasional miss is counted).
  cold  HINCRBY qms:meta version 1 before each page load and again before the API request,
        as every aggregator batch does under live ingest: both recompute from the rollups.

The database is FLUSHDB'd at the start and at the end (unless --keep). Target: < 1 s per page.

Dashboards of N widgets (issue 11): `--widgets 12,24,48 [--hours 24] [--rate 2] [--cpu-reps 10] [--split]`
  instead of the role dashboards. History: --hours at --rate through the real ingest and
  aggregator (bench/_common.load_simulated, FLUSHDB first); the app served like bench/_serve.py
  (bench/_common.start_server); one admin user; per size a shared definition of a realistic
  mix (widget_block: KPI cards, trends, breakdowns, state lists, tables, gauges, computed views;
  distinct sources per block) created with POST /api/dashboards?scope=shared. Per size and mode,
  a fresh Chromium signs in, then --warmup + --runs loads of /dashboards/<id>: time from
  navigation start to every `[id*="w-body"]` body holding its content (no "loading…") and
  every chart in it drawn by Plotly (.main-svg); a fetch hook installed before the page's
  scripts times the page request (`_dash-layout`, which brings the page drawn whole; the
  router's request when the page is drawn after the layout) and counts
  the refresh requests that carried bodies (a 204 — Dash's call when the grid enters the
  page — does not). Then a refresh of every widget (the request the page sends on a change
  of timeframe, set back to 24h) is replayed --cpu-reps times per mode: the server process's
  CPU (/proc) per refresh and per widget. --split times each
  data source and renderer of the refresh in-process (Flask test client, time.process_time).
  cold = a new data version and the {p}:cache:* keys deleted before each load or replay;
  warm = the same page again. Target: p95 < 1 s for 24 widgets.
"""
from __future__ import annotations

import argparse
import http.client
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from _common import (  # noqa: E402
    META,
    ROOT,
    STREAM,
    Child,
    _child_env,
    auth_headers,
    connect,
    exit_on_sigterm,
    flush,
    free_port,
    load_simulated,
    pct,
    print_machine,
    redis_cpu,
    simulated_until_now,
    start_server,
    table,
    used_memory,
    wait_group,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
TARGET_MS = 1000.0
PASSWORD = "bench-pages-password-1"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--window-size=1280,900"]

# Resolves with {ok, t (performance.now(), ms since navigation start), n, empty, load}.
WAIT_KPIS_JS = r"""
const expected = arguments[0], timeoutMs = arguments[1], done = arguments[arguments.length - 1];
const visible = (el) => (typeof el.checkVisibility === 'function')
  ? el.checkVisibility({opacityProperty: true, visibilityProperty: true})
  : el.getClientRects().length > 0;
function state() {
  const els = document.querySelectorAll('[data-kpi] .kpi-value');
  let empty = 0;
  for (const el of els) { if (!el.textContent.trim() || !visible(el)) empty++; }
  return {n: els.length, empty: empty};
}
const nav = performance.getEntriesByType('navigation')[0];
let finished = false, obs = null, timer = null;
const t0 = performance.now();
function finish(ok, s) {
  if (finished) return;
  finished = true;
  const t = performance.now();
  if (obs) obs.disconnect();
  if (timer) clearTimeout(timer);
  const slow = performance.getEntriesByType('resource').filter((e) => e.duration > 200)
    .sort((a, b) => b.duration - a.duration).slice(0, 3)
    .map((e) => ({name: e.name.replace(location.origin, ''), start: e.startTime, dur: e.duration,
                  ttfb: e.responseStart > 0 ? e.responseStart - e.requestStart : null}));
  done({ok: ok, t: t, n: s.n, empty: s.empty, load: nav ? nav.loadEventEnd : null,
        html: nav ? nav.responseEnd : null, slow: slow});
}
function check() {
  if (finished) return;
  const s = state();
  if (s.n === expected && s.empty === 0) { finish(true, s); return; }
  if (performance.now() - t0 > timeoutMs) { finish(false, s); return; }
  timer = setTimeout(check, 5);
}
obs = new MutationObserver(() => { const s = state(); if (s.n === expected && s.empty === 0) finish(true, s); });
obs.observe(document.documentElement, {childList: true, subtree: true, characterData: true, attributes: true});
check();
"""

ROLES = [  # (role, dashboard, user name; None = bench-<role>)
    ("executive", "executive", None),
    ("operations", "operational", None),
    ("qa_lead", "qa", None),
    ("developer", "developer", "DEVELOPERS[0]"),
]


def processed(r: Any) -> int:
    a, d, j = r.hmget(META, ["applied", "duplicates", "rejected"])
    return int(a or 0) + int(d or 0) + int(j or 0)


def app_env(redis_url: str, data_dir: str, secret: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    # QMS_BODY_CACHE_S=0: a drawn body per data version only, so "cold" (a new version) draws
    # every widget anew — the worst case, not the reuse a live deployment gets for 5 s.
    return _child_env(redis_url, {"QMS_SECRET_KEY": secret, "QMS_RUN_AGGREGATOR": "0", "QMS_DATA_DIR": data_dir,
                                  "QMS_BODY_CACHE_S": "0", **(extra or {})})


# --- fill ---------------------------------------------------------------------------------------

def fill(args: argparse.Namespace, r: Any, env: dict[str, str]) -> int:
    from data.simulator import Simulator
    from data.timeutil import DAY_MS, now_ms, to_datetime

    expected = int(args.rate * args.days * 86_400)
    print(f"\n== fill: {args.days:g} days at {args.rate:g} events/s ~ {expected:,} events "
          f"(Simulator seed {args.seed}) -> pipelined XADD {STREAM} -> one `cli.py aggregate` process", flush=True)
    agg = Child("aggregator", [sys.executable, str(ROOT / "cli.py"), "aggregate", "--name", "bench-pages"], env)
    cap = max(2 * args.backlog, 100_000)
    pushed = 0
    waited = 0.0
    try:
        wait_group(r, agg)
        start = now_ms() - int(args.days * DAY_MS)
        sim = Simulator(seed=args.seed, rate=args.rate, start=to_datetime(start))
        t0 = time.perf_counter()
        last_print = t0
        buf: list[bytes] = []

        def progress(force: bool = False) -> None:
            nonlocal last_print
            now = time.perf_counter()
            if force or now - last_print >= args.progress_s:
                last_print = now
                done = processed(r)
                print(f"  fill {now - t0:6.0f}s: pushed {pushed:>10,}  aggregated {done:>10,} "
                      f"({100 * done / max(expected, 1):5.1f}% of ~{expected:,})  {done / max(now - t0, 1e-9):8,.0f} ev/s",
                      flush=True)

        def push() -> None:
            nonlocal pushed, waited
            with r.pipeline(transaction=False) as p:
                for e in buf:
                    p.xadd(STREAM, {"e": e}, maxlen=cap, approximate=True)
                p.execute()
            pushed += len(buf)
            buf.clear()
            done = processed(r)
            if pushed - done > args.backlog:      # let the aggregator catch up: bounded stream
                tw = time.perf_counter()
                while pushed - done > args.backlog // 2:
                    agg.check()
                    time.sleep(0.1)
                    done = processed(r)
                    if not r.exists(META):
                        raise RuntimeError(f"{META} vanished: someone else flushed this database")
                    progress()
                waited += time.perf_counter() - tw
            progress()

        for raw in simulated_until_now(sim, start):
            buf.append(raw)
            if len(buf) >= args.batch:
                push()
        if buf:
            push()
        t_pushed = time.perf_counter()
        deadline = time.monotonic() + 3600
        while processed(r) < pushed:
            agg.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {processed(r):,} of {pushed:,} events aggregated after an hour")
            time.sleep(0.05)
            progress()
        t_done = time.perf_counter()
        progress(force=True)
    finally:
        agg.stop()
    meta = {k.decode(): v.decode() for k, v in r.hgetall(META).items()}
    print(f"filled {pushed:,} events in {t_done - t0:.0f}s = {pushed / (t_done - t0):,.0f} ev/s aggregated "
          f"(producer waited {waited:.0f}s for the aggregator; {t_done - t_pushed:.1f}s drain after the last XADD); "
          f"meta applied={meta.get('applied')} duplicates={meta.get('duplicates')} rejected={meta.get('rejected')} "
          f"version={meta.get('version')}", flush=True)
    mem = used_memory(r)
    print(f"Redis: {r.dbsize():,} keys in this database; INFO used_memory (whole server) {mem['used_memory_human']}",
          flush=True)
    return pushed


# --- server and API -------------------------------------------------------------------------------

def start_app(redis_url: str, data_dir: str, secret: str) -> tuple[Child, str]:
    """`python cli.py serve` (werkzeug, threaded) with the settings in the environment."""
    port = free_port()
    env = app_env(redis_url, data_dir, secret, {"QMS_HOST": "127.0.0.1", "QMS_PORT": str(port)})
    child = Child("server", [sys.executable, str(ROOT / "cli.py"), "serve"], env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        child.check()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/login")
            resp = c.getresponse()
            resp.read()
            c.close()
            if resp.status == 200:
                return child, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        time.sleep(0.1)
    child.stop()
    raise TimeoutError("the server did not answer GET /login within 90 s")


class Api:
    """GET /api/... with the browser's session cookie, over one keep-alive connection."""

    def __init__(self, base: str, cookies: list[dict[str, Any]]) -> None:
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def get(self, path: str) -> dict[str, Any]:
        for attempt in range(2):
            try:
                self.conn.request("GET", path, headers={"Cookie": self.cookie, "Accept": "application/json"})
                resp = self.conn.getresponse()
                body = resp.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
        return orjson.loads(body)["response"]

    def close(self) -> None:
        self.conn.close()


# --- browser --------------------------------------------------------------------------------------

def new_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in CHROME_ARGS:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    return driver


def sign_in(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(base + "/login")
    wait = WebDriverWait(driver, 30)
    wait.until(ec.presence_of_element_located((By.ID, "username"))).send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: "/login" not in d.current_url)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#nav-links a")))
    if not any(c["name"] == "qms_session" for c in driver.get_cookies()):
        raise RuntimeError(f"signed in as {user} but the browser holds no qms_session cookie")


def measure_role(args: argparse.Namespace, r: Any, base: str, role: str, name: str, user: str,
                 mode: str) -> dict[str, Any]:
    driver = new_driver()
    try:
        sign_in(driver, base, user)
        api = Api(base, driver.get_cookies())
        api_path = f"/api/dashboard/{name}?timeframe={args.timeframe}"
        first = api.get(api_path)
        expected = len(first["data"]["widgets"])
        if expected == 0:
            raise RuntimeError(f"GET {api_path} as {user} returned no KPI widgets")
        url = f"{base}/dashboards/{name}" + (f"?timeframe={args.timeframe}" if args.timeframe != "24h" else "")
        driver.set_script_timeout(args.timeout + 10)
        rows: list[dict[str, Any]] = []
        for i in range(args.warmup + args.runs):
            if mode == "cold":
                r.hincrby(META, "version", 1)
            t0 = time.perf_counter()
            driver.get(url)
            res = driver.execute_async_script(WAIT_KPIS_JS, expected, args.timeout * 1000)
            wall = (time.perf_counter() - t0) * 1000
            if not res["ok"]:
                raise RuntimeError(f"{name} as {user}: after {args.timeout:g}s {res['n']} KPI values "
                                   f"({res['empty']} empty or hidden), expected {expected}")
            if mode == "cold":
                r.hincrby(META, "version", 1)
            api_resp = api.get(api_path)
            meta = api_resp["metadata"]
            n_api = len(api_resp["data"]["widgets"])
            if n_api != expected:
                raise RuntimeError(f"{name}: the API's widget count changed from {expected} to {n_api}")
            row = {"kpi_ms": float(res["t"]), "wall_ms": wall, "load_ms": float(res["load"] or 0),
                   "html_ms": float(res["html"] or 0), "srv_ms": float(meta.get("processing_time", 0)),
                   "cache": meta.get("cache_status", "?")}
            tag = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1:2d}"
            if args.verbose:
                slow = "; ".join(f"{x['name']} {x['dur']:.0f} ms from {x['start']:.0f}"
                                 + (f" (ttfb {x['ttfb']:.0f})" if x.get("ttfb") is not None else "")
                                 for x in res.get("slow") or [])
                print(f"    {name:11s} {mode} {tag}: KPIs {row['kpi_ms']:7.1f} ms (HTML {row['html_ms']:6.1f}, "
                      f"load event {row['load_ms']:6.1f}, wall {wall:7.1f}); API {row['srv_ms']:6.1f} ms {row['cache']}"
                      + (f"; resources > 200 ms: {slow}" if slow else ""), flush=True)
            if i >= args.warmup:
                rows.append(row)
        api.close()
    finally:
        driver.quit()
    kpi = sorted(x["kpi_ms"] for x in rows)
    srv = sorted(x["srv_ms"] for x in rows)
    caches: dict[str, int] = {}
    for x in rows:
        caches[x["cache"]] = caches.get(x["cache"], 0) + 1
    out = {"role": role, "dashboard": name, "user": user, "mode": mode, "kpis": expected, "n": len(rows),
           "p50": pct(kpi, 50), "p95": pct(kpi, 95), "max": kpi[-1],
           "load_p50": pct(sorted(x["load_ms"] for x in rows), 50),
           "wall_p50": pct(sorted(x["wall_ms"] for x in rows), 50),
           "srv_p50": pct(srv, 50), "srv_max": srv[-1],
           "api_cache": " ".join(f"{k} {v}" for k, v in sorted(caches.items()))}
    print(f"  {name:11s} {mode:4s} as {user:16s} {expected:2d} KPIs: p50 {out['p50']:6.1f} ms  p95 {out['p95']:6.1f} ms  "
          f"max {out['max']:6.1f} ms  (load event p50 {out['load_p50']:.1f}; API server p50 {out['srv_p50']:.1f} ms, "
          f"{out['api_cache']})", flush=True)
    return out


# --- dashboards of N widgets (issue 11) ------------------------------------------------------------

# KPI cards, gauges and trends draw from these (every role dashboard's KPIs but the developer's
# personal ones, which the benchmark's admin has no reviews for).
CARD_KPIS = ("overall_quality_score", "gate_pass_rate", "total_active_reviews", "defects_found",
             "sla_adherence", "cost_per_review", "active_agents", "average_gate_time", "defect_detection_rate",
             "pending_dor_validations", "critical_defects", "time_to_merge", "compliance_adherence",
             "overloaded_agents", "gates_failed", "workflow_completion_rate", "error_rate", "policy_violations",
             "average_review_cycle_time", "idle_agents", "defect_resolution_time", "false_positive_rate",
             "in_progress_reviews", "audit_readiness_score")
TREND_KPIS = ("gate_pass_rate", "defects_found", "error_rate", "cost_per_review", "overall_quality_score",
              "sla_adherence", "total_active_reviews", "average_gate_time")
GAUGES = (("sla_adherence", 95, 85), ("gate_pass_rate", 90, 80), ("compliance_adherence", 98, 95),
          ("agent_utilization_rate", None, None))


def _ds(source: str, ident: str, **kw: Any) -> dict[str, Any]:
    return {"source": source, ("metric" if source in ("kpi", "series", "drilldown") else "name"): ident, **kw}


def widget_block(b: int) -> list[dict[str, Any]]:
    """Twelve widgets, the mix of a real dashboard: five KPI cards, two trends, a breakdown,
    a state list, a table, a gauge and one computed view. Block b picks other KPIs and
    sources than block b-1, so a 48-widget dashboard reads ~40 distinct sources (a dashboard
    of one source repeated would be cheap for the wrong reason)."""
    k = lambda i: CARD_KPIS[(5 * b + i) % len(CARD_KPIS)]          # noqa: E731
    t = lambda i: TREND_KPIS[(2 * b + i) % len(TREND_KPIS)]        # noqa: E731
    breakdowns = [
        ("comparison_chart", "Review cost by team", [_ds("breakdown", "cost_by_team")], {"unit": "usd"}),
        ("defect_distribution", "Defects", [_ds("breakdown", n) for n in
                                            ("defects_by_severity", "defects_by_category", "defects_by_stage")], {}),
        ("comparison_chart", "Merged pull requests by team", [_ds("breakdown", "merged_by_team")], {}),
        ("comparison_chart", "Events by type", [_ds("breakdown", "events_by_type")], {}),
    ]
    states = [
        ("agent_status_grid", "Agents", [_ds("state", "agents")]),
        ("queue_monitor", "Queues", [_ds("state", "queues")]),
        ("table", "Active workflows", [_ds("state", "active_workflows",
                                           transform={"sort_by": "step_since", "descending": False, "limit": 50})]),
        ("compliance_status", "Compliance", [_ds("state", "violations"), _ds("kpi", "compliance_checks_passed"),
                                             _ds("kpi", "policy_violations")]),
    ]
    tables = [
        ("gate_table", "Gates", [_ds("computed", "gates")]),
        ("error_log_viewer", "Errors", [_ds("drilldown", "error_rate", transform={"limit": 50})]),
        ("risk_assessment", "Risks", [_ds("computed", "risks")]),
        ("table", "Review cost by repository", [_ds("breakdown", "cost_by_repository")]),
    ]
    others = [
        ("pipeline_visualizer", "Pipeline", [_ds("computed", "pipeline")]),
        ("stat_group", "Return on investment", [_ds("computed", "roi")]),
        ("code_quality", "Code quality", [_ds("computed", "code_quality")]),
        ("test_coverage", "Test coverage", [_ds("computed", "test_coverage")]),
    ]
    gauge = GAUGES[b % len(GAUGES)]
    bd, st, tb, ot = (x[b % len(x)] for x in (breakdowns, states, tables, others))
    out: list[dict[str, Any]] = []
    for i in range(5):
        out.append({"type": "kpi_card", "title": k(i), "size": (3, 2), "data_sources": [_ds("kpi", k(i))]})
    out.append({"type": "metric_trend", "title": f"{t(0)} trend", "size": (6, 5),
                "data_sources": [_ds("series", t(0), points=48)]})
    out.append({"type": "metric_trend", "title": f"{t(1)} and {t(2)}", "size": (6, 5),
                "data_sources": [_ds("series", t(1), points=48), _ds("series", t(2), points=48)],
                "display_options": {"chart": "area"}})
    out.append({"type": bd[0], "title": bd[1], "size": (6, 5), "data_sources": bd[2], "display_options": bd[3]})
    out.append({"type": st[0], "title": st[1], "size": (6, 5), "data_sources": st[2]})
    out.append({"type": tb[0], "title": tb[1], "size": (6, 5), "data_sources": tb[2]})
    warn, crit = gauge[1], gauge[2]
    out.append({"type": "gauge_chart", "title": gauge[0], "size": (3, 4), "data_sources": [_ds("kpi", gauge[0])],
                **({"alert_thresholds": {"warning": warn, "critical": crit, "direction": "below"}} if warn else {})})
    out.append({"type": ot[0], "title": ot[1], "size": (9, 5), "data_sources": ot[2]})
    return out


def widget_dashboard(n: int, role: str = "admin") -> dict[str, Any]:
    """A shared definition of n widgets (blocks of twelve; n need not be a multiple), laid out
    row by row on the 12-column grid."""
    specs = [w for b in range((n + 11) // 12) for w in widget_block(b)][:n]
    widgets, x, y, row_h = [], 0, 0, 0
    for i, w in enumerate(specs):
        width, height = w.pop("size")
        if x + width > 12:
            x, y, row_h = 0, y + row_h, 0
        widgets.append({"id": f"w{i + 1:02d}-{w['type'].replace('_', '-')}", "title": w.pop("title"),
                        "position": {"x": x, "y": y, "width": width, "height": height}, **w})
        x, row_h = x + width, max(row_h, height)
    return {"id": f"bench-{n}-widgets", "title": f"Benchmark: {n} widgets", "visibility": {"roles": [role]},
            "default_timeframe": "24h", "filter_controls": ["scope"], "tags": ["bench"], "widgets": widgets}


# Installed before any page script (CDP Page.addScriptToEvaluateOnNewDocument): every fetch of
# /_dash-update-component whose first output is the widget bodies is recorded (when sent,
# answered, how many widgets, the body the browser sent).
REFRESH_HOOK_JS = r"""
(() => {
  const orig = window.fetch;
  window.__qmsRefresh = [];
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : ((input && input.url) || '');
    let rec = null;
    if (url.indexOf('_dash-layout') >= 0) {        // the frame, and since stop 17 the page drawn in it
      rec = {kind: 'page', start: performance.now(), end: null, widgets: 0, status: null, body: null};
      window.__qmsRefresh.push(rec);
    } else if (url.indexOf('_dash-update-component') >= 0 && init && typeof init.body === 'string') {
      try {
        const b = JSON.parse(init.body);
        const first = Array.isArray(b.outputs) ? b.outputs[0] : null;
        if (Array.isArray(first) && first.length && first[0].id && first[0].id.type === 'w-body') {
          rec = {kind: 'refresh', start: performance.now(), end: null, widgets: first.length, status: null,
                 body: init.body};
        } else if (typeof b.output === 'string' && b.output.indexOf('page.children') >= 0) {
          rec = {kind: 'router', start: performance.now(), end: null, widgets: 0, status: null, body: null};
        }
        if (rec) window.__qmsRefresh.push(rec);
      } catch (e) { /* not ours */ }
    }
    const p = orig.apply(this, arguments);
    if (rec) p.then((resp) => { rec.end = performance.now(); rec.status = resp.status; }, () => { rec.status = -1; });
    return p;
  };
})();
"""

# Resolves with {ok, t, filled, n, pending, graphs, refresh: [...], load}: t = performance.now() when
# every widget body holds its content (no "loading…") and every chart in them is drawn by Plotly
# (.main-svg); filled = when the bodies first all held content (charts possibly still drawing).
WAIT_WIDGETS_JS = r"""
const expected = arguments[0], timeoutMs = arguments[1], done = arguments[arguments.length - 1];
const nav = performance.getEntriesByType('navigation')[0];
let finished = false, obs = null, timer = null, filled = null, plotly = null, firstGraph = null;
const t0 = performance.now();
function state() {
  const bodies = document.querySelectorAll('[id*="w-body"]');
  let pending = 0, graphs = 0, undrawn = 0;
  for (const b of bodies) {
    const text = b.textContent || '';
    const empty = !text.trim() && !b.querySelector('svg,canvas,img,table,.dash-graph,.ag-root-wrapper');
    if (empty || text.indexOf('loading\u2026') >= 0) { pending++; continue; }
    for (const g of b.querySelectorAll('.dash-graph')) { graphs++; if (!g.querySelector('.main-svg')) undrawn++; }
  }
  return {n: bodies.length, pending: pending, graphs: graphs, undrawn: undrawn};
}
function finish(ok, s) {
  if (finished) return;
  finished = true;
  const t = performance.now();
  if (obs) obs.disconnect();
  if (timer) clearTimeout(timer);
  const refresh = (window.__qmsRefresh || []).map((r) => ({kind: r.kind, start: r.start, end: r.end,
                                                           widgets: r.widgets, status: r.status}));
  done({ok: ok, t: t, filled: filled, plotly: plotly, first_graph: firstGraph, n: s.n, pending: s.pending,
        graphs: s.graphs, undrawn: s.undrawn, refresh: refresh, load: nav ? nav.loadEventEnd : null,
        html: nav ? nav.responseEnd : null});
}
function test() {
  if (plotly === null && window.Plotly) plotly = performance.now();
  const s = state();
  if (firstGraph === null && s.graphs > 0) firstGraph = performance.now();
  if (s.n === expected && s.pending === 0) {
    if (filled === null) filled = performance.now();
    if (s.undrawn === 0) { finish(true, s); return true; }
  }
  return false;
}
function check() {
  if (finished) return;
  if (test()) return;
  if (performance.now() - t0 > timeoutMs) { finish(false, state()); return; }
  timer = setTimeout(check, 50);     // a fallback: the observer checks each frame after a change
}
// Checked once a frame after DOM changes (and every 5 ms by check()), not on every mutation:
// walking 24 bodies' text on each of React's commits cost the page it measures ~50-100 ms.
let framed = false;
obs = new MutationObserver(() => {
  if (finished || framed) return;
  framed = true;
  requestAnimationFrame(() => { framed = false; if (!finished) test(); });
});
obs.observe(document.documentElement, {childList: true, subtree: true, characterData: true});
check();
"""


def flush_cache(r: Any) -> int:
    """A new data version (as every aggregator batch makes) and no cached response or source
    left: the next page load computes every source and KPI from the rollups."""
    r.hincrby(META, "version", 1)
    n = 0
    batch: list[bytes] = []
    for k in r.scan_iter(match="qms:cache:*", count=1000):
        batch.append(k)
        if len(batch) >= 500:
            n += r.unlink(*batch)
            batch.clear()
    if batch:
        n += r.unlink(*batch)
    return n


class Poster:
    """POST /_dash-update-component with the browser's session cookie and CSRF header, over
    one keep-alive connection (the replayed refresh of the CPU measurement)."""

    def __init__(self, base: str, cookies: list[dict[str, Any]]) -> None:
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.headers = {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies),
                        "Content-Type": "application/json", "Accept": "application/json"}
        csrf = next((c["value"] for c in cookies if c["name"] == "_csrf_token"), None)
        if csrf:
            self.headers["X-CSRFToken"] = csrf
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request("POST", path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def check_refresh_answer(raw: bytes, n: int) -> int:
    """The refresh answer holds a body for each of the n widgets; returns how many of them
    are the engine's error text ("could not be drawn") — a bench of failing widgets would
    measure the wrong thing."""
    resp = orjson.loads(raw)["response"]
    bodies = [k for k in resp if '"w-body"' in k]        # one key per widget: its id as JSON
    if len(bodies) != n:
        raise RuntimeError(f"the refresh answer holds {len(bodies)} widget bodies, expected {n}")
    return raw.count(b'widget-error"')


def new_logging_driver() -> Any:
    driver = new_driver()
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": REFRESH_HOOK_JS})
    return driver


def measure_widgets(args: argparse.Namespace, r: Any, base: str, server: Child, user: str, dash_id: str,
                    n: int, modes: list[str]) -> list[dict[str, Any]]:
    """Page loads of one dashboard (cold and warm), then the replayed refresh's server CPU."""
    driver = new_logging_driver()
    out: list[dict[str, Any]] = []
    try:
        sign_in(driver, base, user)
        url = f"{base}/dashboards/{dash_id}"
        driver.set_script_timeout(args.timeout + 10)
        refresh_body: str | None = None
        for mode in modes:
            rows: list[dict[str, Any]] = []
            for i in range(args.warmup + args.runs):
                if mode == "cold":
                    flush_cache(r)
                t0 = time.perf_counter()
                driver.get(url)
                res = driver.execute_async_script(WAIT_WIDGETS_JS, n, args.timeout * 1000)
                wall = (time.perf_counter() - t0) * 1000
                if not res["ok"]:
                    raise RuntimeError(f"{dash_id}: after {args.timeout:g}s {res['n']} widget bodies, "
                                       f"{res['pending']} still loading, {res['undrawn']} of {res['graphs']} "
                                       f"charts not drawn; expected {n} bodies")
                # The page comes drawn with its route request; a refresh answered 204 (its first
                # call, nothing to do) carried no bodies and is not counted.
                recs = res["refresh"] or []
                refresh = [x for x in recs if x["kind"] == "refresh" and x["status"] not in (204, None)]
                if refresh_body is None:
                    bodies = driver.execute_script("return (window.__qmsRefresh || []).map((r) => r.body);")
                    refresh_body = next((b for b in bodies if b), None)
                # The page's own request: the layout when it came drawn, else the router's.
                page_recs = [x for x in recs if x["kind"] in ("page", "router")]
                first = next((x for x in recs if x["kind"] == "router"), None) or next(
                    (x for x in page_recs), refresh[0] if refresh else {})
                row = {"t_ms": float(res["t"]), "filled_ms": float(res["filled"] or res["t"]), "wall_ms": wall,
                       "load_ms": float(res["load"] or 0), "requests": len(refresh),
                       "widgets_asked": sum(int(x["widgets"] or 0) for x in refresh),
                       "req_start": float(first.get("start") or 0),
                       "req_ms": float((first.get("end") or 0) - (first.get("start") or 0)) if first else 0.0,
                       "graphs": int(res["graphs"]), "plotly_ms": float(res["plotly"] or 0),
                       "first_graph_ms": float(res["first_graph"] or 0)}
                tag = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1:2d}"
                if args.verbose:
                    print(f"    {n:2d} widgets {mode} {tag}: all drawn {row['t_ms']:7.1f} ms (bodies filled "
                          f"{row['filled_ms']:7.1f}, HTML {float(res['html'] or 0):6.1f}, "
                          f"load event {row['load_ms']:6.1f}, "
                          f"wall {wall:7.1f}); refresh requests {row['requests']} ({row['widgets_asked']} widgets), "
                          f"first sent at {row['req_start']:6.1f} ms, answered in {row['req_ms']:6.1f} ms; "
                          f"{row['graphs']} charts (first chart element {row['first_graph_ms']:.0f} ms, "
                          f"Plotly loaded {row['plotly_ms']:.0f} ms)", flush=True)
                if i >= args.warmup:
                    rows.append(row)
            t = sorted(x["t_ms"] for x in rows)
            summary = {"widgets": n, "mode": mode, "n": len(rows), "p50": pct(t, 50), "p95": pct(t, 95),
                       "max": t[-1], "filled_p50": pct(sorted(x["filled_ms"] for x in rows), 50),
                       "req_start_p50": pct(sorted(x["req_start"] for x in rows), 50),
                       "req_p50": pct(sorted(x["req_ms"] for x in rows), 50),
                       "load_p50": pct(sorted(x["load_ms"] for x in rows), 50),
                       "plotly_p50": pct(sorted(x["plotly_ms"] for x in rows), 50),
                       "requests": sorted({x["requests"] for x in rows}),
                       "charts": rows[-1]["graphs"]}
            print(f"  {n:2d} widgets {mode:4s}: all drawn p50 {summary['p50']:7.1f} ms  p95 {summary['p95']:7.1f} ms  "
                  f"max {summary['max']:7.1f} ms (page request sent at p50 {summary['req_start_p50']:.0f} ms, "
                  f"answered in p50 {summary['req_p50']:.0f} ms; refresh requests per load "
                  f"{'/'.join(map(str, summary['requests']))})", flush=True)
            out.append(summary)
        if refresh_body is None:      # the page arrives drawn: a change of timeframe sends one
            refresh_body = refresh_request(driver, args.timeout)
        if refresh_body is None:
            raise RuntimeError(f"{dash_id}: the page sent no refresh request the hook saw")
        REPLAY[n] = full_refresh(refresh_body)
        cpu = measure_refresh_cpu(args, r, base, server, driver.get_cookies(), REPLAY[n], n)
        for s in out:
            s.update(cpu[s["mode"]] if s["mode"] in cpu else {})
        for mode in cpu:
            if mode not in modes:
                out.append({"widgets": n, "mode": mode, **cpu[mode]})
    finally:
        driver.quit()
    return out


# Per dashboard size, the refresh request its page sent (every widget redrawn): replayed for
# the server CPU, and again in-process by --split.
REPLAY: dict[int, bytes] = {}


def refresh_request(driver: Any, timeout: float) -> str | None:
    """The refresh request the page sends when its timeframe changes (4h clicked)."""
    driver.execute_script("document.querySelector('#dash-timeframe input[value=\"4h\"]').click();")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bodies = driver.execute_script("return (window.__qmsRefresh || []).map((r) => r.body).filter(Boolean);")
        if bodies:
            return bodies[0]
        time.sleep(0.05)
    return None


def full_refresh(body: str, timeframe: str = "24h") -> bytes:
    """A refresh request as a redraw of every widget for `timeframe` (a change of the view)."""
    doc = orjson.loads(body)
    for item in doc.get("inputs") or []:
        if isinstance(item, dict) and item.get("id") == "dash-timeframe":
            item["value"] = timeframe
    doc["changedPropIds"] = ["dash-timeframe.value"]
    return orjson.dumps(doc)


def measure_refresh_cpu(args: argparse.Namespace, r: Any, base: str, server: Child, cookies: list[dict[str, Any]],
                        body: bytes, n: int) -> dict[str, dict[str, Any]]:
    """The refresh request the browser sent (every widget due), replayed --cpu-reps times per
    mode: the server process's CPU (utime + stime from /proc, all its threads) and Redis's
    (INFO cpu, the whole server) around each POST, and its wall time."""
    poster = Poster(base, cookies)
    out: dict[str, dict[str, Any]] = {}
    try:
        status, raw = poster.post("/_dash-update-component", body)          # prime (warm) and check
        if status != 200:
            raise RuntimeError(f"replayed refresh: HTTP {status}: {raw[:300]!r}")
        errors = check_refresh_answer(raw, n)
        for mode in ("cold", "warm"):
            cpu, rcpu, walls = [], [], []
            for _ in range(args.cpu_reps):
                if mode == "cold":
                    flush_cache(r)
                c0, r0, t0 = server.cpu(), redis_cpu(r), time.perf_counter()
                status, raw = poster.post("/_dash-update-component", body)
                walls.append((time.perf_counter() - t0) * 1000)
                cpu.append((server.cpu() - c0) * 1000)
                rcpu.append((redis_cpu(r) - r0) * 1000)
                if status != 200:
                    raise RuntimeError(f"replayed refresh: HTTP {status}: {raw[:300]!r}")
            mean = sum(cpu) / len(cpu)
            out[mode] = {"cpu_ms": mean, "cpu_per_widget_ms": mean / n, "redis_cpu_ms": sum(rcpu) / len(rcpu),
                         "refresh_wall_p50": pct(sorted(walls), 50), "answer_kib": len(raw) / 1024,
                         "widget_errors": errors}
            print(f"  {n:2d} widgets {mode:4s} refresh replayed x{args.cpu_reps}: server CPU {mean:7.1f} ms "
                  f"= {mean / n:5.2f} ms per widget; Redis CPU {out[mode]['redis_cpu_ms']:6.1f} ms; wall p50 "
                  f"{out[mode]['refresh_wall_p50']:7.1f} ms; answer {len(raw) / 1024:.0f} KiB"
                  + (f"; {errors} widget(s) drawn as errors" if errors else ""), flush=True)
    finally:
        poster.close()
    return out


def split_in_process(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    """--split: where one refresh's server time goes, per data source and per renderer. The
    app (create_app) runs in this process; a Flask test client signs in as the bench admin
    and POSTs the refresh of every widget (the body refresh tests build), with
    dashboards.sources.fetch and the callback's renderer wrapped to time each call
    (time.process_time: this thread's process CPU, nothing else runs here)."""
    import collections
    import re

    import callbacks.dashboard as board_callbacks
    from dashboards import sources
    from factory import create_app
    from settings import Settings

    settings = Settings.from_env({}, redis_url=args.redis_url, run_aggregator=False, demo=False,
                                 data_dir=tempfile.mkdtemp(prefix="bench-split-"),
                                 body_cache_s=0)      # bodies per data version: "cold" is cold
    app = create_app(settings)
    r = app.server.extensions["qms"].redis
    c = app.server.test_client()
    page = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    res = c.post("/login", data={"username": "bench-admin", "password": PASSWORD,
                                 "csrf_token": token.group(1) if token else ""})
    if res.status_code != 302:
        raise RuntimeError(f"in-process sign-in: HTTP {res.status_code}")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if '"w-body"' in k]
    acc: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    fetch, render = sources.fetch, board_callbacks.renderer.render

    def timed_fetch(ds: Any, ctx: Any) -> Any:
        t = time.process_time()
        try:
            return fetch(ds, ctx)
        finally:
            a = acc[f"source {ds.source}" + (f":{ds.name}" if ds.name else "")]
            a[0] += time.process_time() - t
            a[1] += 1

    def timed_render(widget: Any, frames: Any, **kw: Any) -> Any:
        t = time.process_time()
        try:
            return render(widget, frames, **kw)
        finally:
            a = acc[f"render {widget.type}"]
            a[0] += time.process_time() - t
            a[1] += 1

    out: list[dict[str, Any]] = []
    sources.fetch, board_callbacks.renderer.render = timed_fetch, timed_render
    try:
        for n in sizes:
            # The request the page itself sent (its inputs are the callback's as registered now);
            # the request built here by hand went stale when the widgets' timers changed.
            body = REPLAY.get(n)
            if body is None:
                raise RuntimeError(f"--split: no refresh request of the {n}-widget page was recorded")
            for mode in ("cold", "warm"):
                c.post("/_dash-update-component", data=body, content_type="application/json",
                       headers={"X-CSRFToken": csrf})
                acc.clear()
                total = 0.0
                for _ in range(args.cpu_reps):
                    if mode == "cold":
                        flush_cache(r)
                    t = time.process_time()
                    res = c.post("/_dash-update-component", data=body, content_type="application/json",
                                 headers={"X-CSRFToken": csrf})
                    total += time.process_time() - t
                    if res.status_code != 200:
                        raise RuntimeError(f"in-process refresh: HTTP {res.status_code}: {res.data[:300]!r}")
                reps = args.cpu_reps
                parts = sorted(((k, v[0] / reps * 1000, int(v[1] / reps)) for k, v in acc.items()),
                               key=lambda x: -x[1])
                sources_ms = sum(p[1] for p in parts if p[0].startswith("source"))
                render_ms = sum(p[1] for p in parts if p[0].startswith("render"))
                row = {"widgets": n, "mode": mode, "total_ms": total / reps * 1000, "sources_ms": sources_ms,
                       "render_ms": render_ms, "parts": parts}
                print(f"  in-process {n:2d} widgets {mode:4s}: refresh CPU {row['total_ms']:6.1f} ms "
                      f"({row['total_ms'] / n:5.2f} per widget) = sources {sources_ms:6.1f} + renderers "
                      f"{render_ms:6.1f} + the rest (guard, Dash, JSON) "
                      f"{row['total_ms'] - sources_ms - render_ms:6.1f}", flush=True)
                for name, ms, calls in parts[:args.split_top]:
                    print(f"      {name:40s} x{calls:<3d} {ms:7.1f} ms", flush=True)
                out.append(row)
    finally:
        sources.fetch, board_callbacks.renderer.render = fetch, render
    return out


def open_bench(args: argparse.Namespace) -> tuple[Any, int]:
    """The benchmark's Redis database (never 14 or 15), and what runs where, printed."""
    r = connect(args.redis_url)
    db = r.connection_pool.connection_kwargs.get("db", 0)
    if db in (14, 15):
        sys.exit(f"refusing database {db} (14: other benchmarks, 15: tests); use another --redis-url")
    print_machine(r)
    try:
        chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        chromium = "?"
    print(f"browser: {chromium}, headless ({' '.join(CHROME_ARGS)})", flush=True)
    return r, db


def run_widgets(args: argparse.Namespace, r: Any) -> None:
    """The --widgets suite: simulated history (bench/_common.load_simulated), the app served
    like bench/_serve.py, dashboards of N widgets created through POST /api/dashboards."""
    sizes = [int(x) for x in args.widgets.split(",") if x.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    from data.keys import Keys
    from data.users import UserStore
    server: Child | None = None
    results: list[dict[str, Any]] = []
    try:
        if args.skip_fill:
            if not r.exists(META):
                sys.exit("--skip-fill: the database holds no aggregated data")
            events = processed(r)
        else:
            t0 = time.perf_counter()
            events = len(load_simulated(r, args.hours, args.rate, seed=args.seed))
            print(f"\n== history: {args.hours:g} h at {args.rate:g} events/s: {events:,} simulated events through "
                  f"the real ingest and aggregator (bench/_common.load_simulated) in {time.perf_counter() - t0:.0f}s",
                  flush=True)
        user = "bench-admin"
        users = UserStore(r, Keys("qms"))
        if users.get(user) is None:
            users.add(user, ["admin"], PASSWORD)
        # Bodies per data version only (as app_env): with the deployment's reuse of a drawn body
        # across versions (QMS_BODY_CACHE_S), "cold" loads took the server process's own copies
        # and were not cold — stop 19's cold figures were, in part, warm.
        server, base = start_server(args.redis_url, env={"QMS_BODY_CACHE_S": "0"})
        print(f"== server: bench/_serve.py (werkzeug, threaded) at {base}, pid {server.pid}", flush=True)
        headers = {**auth_headers(r, ("admin",)), "Content-Type": "application/json"}
        u = urlsplit(base)
        ids: dict[int, str] = {}
        for n in sizes:
            defn = widget_dashboard(n)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            c.request("POST", "/api/dashboards?scope=shared", body=orjson.dumps(defn), headers=headers)
            resp = c.getresponse()
            raw = resp.read()
            c.close()
            if resp.status != 201:
                raise RuntimeError(f"POST /api/dashboards ({n} widgets): HTTP {resp.status}: {raw[:500]!r}")
            ids[n] = orjson.loads(raw)["response"]["data"]["id"]
            kinds: dict[str, int] = {}
            for w in defn["widgets"]:
                kinds[w["type"]] = kinds.get(w["type"], 0) + 1
            distinct = len({orjson.dumps(ds, option=orjson.OPT_SORT_KEYS) for w in defn["widgets"]
                            for ds in w["data_sources"]})
            print(f"== dashboard {ids[n]!r}: {n} widgets, {distinct} distinct data sources; "
                  + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda x: -x[1])), flush=True)
        print(f"== pages: per dashboard, a fresh browser signs in as {user} (admin), then per mode {args.warmup} "
              f"warm-up + {args.runs} measured full page loads; then the page's refresh request replayed "
              f"{args.cpu_reps}x per mode", flush=True)
        for n in sizes:
            server.check()
            results += measure_widgets(args, r, base, server, user, ids[n], n, modes)
        if args.split:
            server.stop()
            server = None
            print("== where a refresh's server CPU goes (in-process, --split)", flush=True)
            split_in_process(args, sizes)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            flush(r)

    print(f"\n== summary: navigation start -> every widget body drawn (no 'loading…', every chart's Plotly SVG "
          f"present), ms, {args.runs} full page loads each after {args.warmup} warm-up; history {args.hours:g} h "
          f"at {args.rate:g} ev/s ({events:,} events), timeframe 24h; server CPU of one refresh (every widget), "
          f"mean of {args.cpu_reps} replays")
    rows = []
    for x in results:
        has_pages = "p50" in x
        rows.append([x["widgets"], x["mode"], x.get("n", "-"),
                     f"{x['p50']:.0f}" if has_pages else "-", f"{x['p95']:.0f}" if has_pages else "-",
                     f"{x['filled_p50']:.0f}" if has_pages else "-",
                     f"{x['req_start_p50']:.0f}" if has_pages else "-", f"{x['req_p50']:.0f}" if has_pages else "-",
                     f"{x['plotly_p50']:.0f}" if has_pages else "-", x.get("charts", "-"),
                     "/".join(map(str, x["requests"])) if has_pages else "-",
                     f"{x['cpu_ms']:.0f}" if "cpu_ms" in x else "-",
                     f"{x['cpu_per_widget_ms']:.2f}" if "cpu_ms" in x else "-",
                     f"{x['redis_cpu_ms']:.0f}" if "cpu_ms" in x else "-",
                     f"{x['answer_kib']:.0f}" if "cpu_ms" in x else "-",
                     ("yes" if x["p95"] < TARGET_MS else "NO") if has_pages and x["widgets"] == 24 else ""])
    print(table(["widgets", "cache", "loads", "all drawn p50", "p95", "bodies filled p50", "page request sent p50",
                 "page answered in p50", "Plotly loaded p50", "charts", "refresh requests / load",
                 "server CPU / refresh ms",
                 "CPU / widget ms", "Redis CPU ms", "answer KiB", f"p95 < {TARGET_MS:.0f} (24)"], rows))
    print("cold: a new data version and the {p}:cache:* keys deleted before each load/replay (every source and "
          "KPI recomputed); warm: the same page again (sources cached for this data version; windows roll over "
          "each minute, so an occasional miss is counted). Server CPU: utime+stime of the server process from "
          "/proc (10 ms ticks, all threads) around each replayed POST; Redis CPU: INFO cpu, whole server.")
    print_machine(r)


# --- main -------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2.0, help="simulated events/s (weekly mean)")
    ap.add_argument("--days", type=float, default=7.0, help="days of simulated history, ending now")
    ap.add_argument("--runs", type=int, default=10, help="measured page loads per dashboard and mode")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured page loads first")
    ap.add_argument("--modes", default="warm,cold", help="comma-separated: warm (cache hits), cold (misses)")
    ap.add_argument("--timeframe", default="24h", help="the dashboards' timeframe (the page default is 24h)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--batch", type=int, default=5000, help="events per XADD pipeline during the fill")
    ap.add_argument("--backlog", type=int, default=200_000, help="max events pushed but not yet aggregated")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a page's KPIs")
    ap.add_argument("--progress-s", type=float, default=5.0, help="seconds between fill progress lines")
    ap.add_argument("--skip-fill", action="store_true", help="use the data already in the database")
    ap.add_argument("--keep", action="store_true", help="do not FLUSHDB at the end")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every page load")
    ap.add_argument("--widgets", help="instead of the role dashboards: dashboards of these many widgets, "
                                      "e.g. 12,24,48 (history from --hours at --rate; see the docstring)")
    ap.add_argument("--hours", type=float, default=24.0, help="--widgets: hours of simulated history")
    ap.add_argument("--cpu-reps", type=int, default=10, help="--widgets: replays of the refresh request per mode")
    ap.add_argument("--split", action="store_true", help="--widgets: also time each data source and renderer "
                                                         "of the refresh, in-process")
    ap.add_argument("--split-top", type=int, default=8, help="--split: the costliest parts to print")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("warm", "cold") for m in modes):
        sys.exit("--modes: warm and/or cold")
    if args.runs < 1:
        sys.exit("--runs: at least 1")

    exit_on_sigterm()
    r, db = open_bench(args)
    if args.widgets:
        run_widgets(args, r)
        return

    from data.keys import Keys
    from data.simulator import DEVELOPERS
    from data.users import UserStore

    data_dir = tempfile.mkdtemp(prefix="bench-pages-")
    secret = secrets.token_hex(24)          # 48 characters
    env = app_env(args.redis_url, data_dir, secret)
    server: Child | None = None
    results: list[dict[str, Any]] = []
    events = 0
    try:
        if args.skip_fill:
            if not r.exists(META):
                sys.exit("--skip-fill: the database holds no aggregated data")
            events = processed(r)
            print(f"\n== using the data already in db {db}: {events:,} events processed", flush=True)
        else:
            flush(r)
            while r.dbsize():                  # FLUSHDB ASYNC: wait until the keyspace is empty
                time.sleep(0.05)
            events = fill(args, r, env)

        users = UserStore(r, Keys("qms"))
        plan: list[tuple[str, str, str]] = []
        for role, name, user in ROLES:
            uname = DEVELOPERS[0] if user == "DEVELOPERS[0]" else f"bench-{role.replace('_', '-')}"
            if users.get(uname) is None:
                users.add(uname, [role], PASSWORD)
            plan.append((role, name, uname))
        print(f"\n== users: {', '.join(f'{u} ({role})' for role, _, u in plan)}", flush=True)

        server, base = start_app(args.redis_url, data_dir, secret)
        print(f"== server: `python cli.py serve` at {base} (REDIS_URL db {db}, QMS_RUN_AGGREGATOR=0, "
              f"QMS_DATA_DIR={data_dir})", flush=True)
        print(f"== pages: per dashboard and mode, a fresh browser signs in, then {args.warmup} warm-up + "
              f"{args.runs} measured full page loads (timeframe {args.timeframe})", flush=True)
        for mode in modes:
            for role, name, uname in plan:
                server.check()
                results.append(measure_role(args, r, base, role, name, uname, mode))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep:
            flush(r)

    print(f"\n== summary: navigation start -> every [data-kpi] .kpi-value visible and non-empty "
          f"(count = the API's widgets), ms, {args.runs} full page loads each after {args.warmup} warm-up; "
          f"history {args.days:g} days at {args.rate:g} ev/s ({events:,} events), timeframe {args.timeframe}")
    print(table(["dashboard", "role", "user", "cache", "KPIs", "n", "p50", "p95", "max", "load event p50",
                 "wall p50", "API server p50", "API server max", "API cache", f"max < {TARGET_MS:.0f}"],
                [[x["dashboard"], x["role"], x["user"], x["mode"], x["kpis"], x["n"], f"{x['p50']:.1f}",
                  f"{x['p95']:.1f}", f"{x['max']:.1f}", f"{x['load_p50']:.1f}", f"{x['wall_p50']:.1f}",
                  f"{x['srv_p50']:.1f}", f"{x['srv_max']:.1f}", x["api_cache"],
                  "yes" if x["max"] < TARGET_MS else "NO"] for x in results]))
    print(f"p50/p95/max: nearest rank over the {args.runs} measured loads (p95 = max when there are fewer than 20); "
          "load event: performance navigation entry loadEventEnd; wall: driver.get + the wait, seen from Python "
          "(adds WebDriver round trips); API server: metadata.processing_time of GET /api/dashboard/<name> "
          "made right after each load with the same session and timeframe.")
    print_machine(r)


if __name__ == "__main__":
    main()
