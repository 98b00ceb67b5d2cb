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
"""
from __future__ import annotations

import argparse
import http.client
import secrets
import shutil
import socket
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
    connect,
    exit_on_sigterm,
    flush,
    pct,
    print_machine,
    simulated_until_now,
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
    return _child_env(redis_url, {"QMS_SECRET_KEY": secret, "QMS_RUN_AGGREGATOR": "0", "QMS_DATA_DIR": data_dir,
                                  **(extra or {})})


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

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("warm", "cold") for m in modes):
        sys.exit("--modes: warm and/or cold")
    if args.runs < 1:
        sys.exit("--runs: at least 1")

    exit_on_sigterm()
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
