"""500 users (seed §11.2): the deployment shape under locust, reported per request type.

    python bench/load/run.py [--users 500] [--spawn-rate 5] [--run-time 5m] [--workers 2]
                             [--hours 4] [--ingest-rate 5] [--capture] [--no-live-refresh]
                             [--redis-url redis://127.0.0.1:6379/9] [--json out.json]
    python bench/load/run.py --smoke          # 5 users, every action once (tests/integration/test_load_smoke.py)

A benchmark that prints numbers (not a test). Steps:

1. History: FLUSHDB the database of --redis-url, then --hours of simulated activity at
   --history-rate events/s through the real ingest and aggregator (bench/_common.load_simulated).
2. Accounts: --users accounts made with data.users.UserStore (Argon2id, as in production),
   dealt round-robin over the roles of config/rbac.yaml that open dashboards (executive,
   qa_lead, developer, operations, admin); bench/load/stack.py.
3. The deployment: `gunicorn -k gevent -w --workers app:server` (QMS_RUN_AGGREGATOR=0), one
   `cli.py aggregate` (it publishes the live channels), and `cli.py simulate --url` posting
   --ingest-rate events/s to /api/events with a producer token.
4. Payloads: with --capture (or when --payloads does not exist) a headless Chromium records
   what the browser sends per action (bench/load/capture.py); otherwise the recorded file
   (default bench/load/payloads.json) is used.
5. Load: locust (bench/load/locustfile.py, via bench/load/locust_main.py) runs --users users,
   started --spawn-rate a second, for --run-time, headless. Meanwhile the CPU of locust,
   gunicorn (master + workers), the aggregator, the producer and redis-server is sampled from
   /proc (psutil) every second, and the machine's load average before and after is printed.
6. Check: the producer stopped and the aggregator drained, one executive opens the executive
   dashboard as the browser does; every KPI card's value must be the API's value
   (GET /api/dashboard/executive, read before and after the page: a KPI that moves with the
   clock may show any value between the two) formatted as the card formats it.
7. Report: per request type count, errors, p50/p95/p99 (locust's stats), the error rate, the
   websocket messages received, the CPU split, and the verdict against p95 < 200 ms and < 1 %
   errors. --json writes it all for a test to read.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import stack  # noqa: E402
from dashjson import Dependencies, kpi_texts, set_input, texts_between  # noqa: E402
from _common import (  # noqa: E402
    connect,
    exit_on_sigterm,
    load_simulated,
    print_machine,
    speed_check,
    table,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEFAULT_PAYLOADS = HERE / "payloads.json"
TARGET_P95_MS = 200.0
TARGET_ERRORS = 0.01
OVERDUE_S = 20            # past --run-time (locust's --stop-timeout is 5 s): locust is stopped


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--spawn-rate", type=float, default=5.0, help="users started per second")
    ap.add_argument("--run-time", default="5m", help="locust's -t (e.g. 30s, 5m)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--worker-connections", type=int, default=2000, help="gunicorn --worker-connections")
    ap.add_argument("--hours", type=float, default=4.0, help="history before the run")
    ap.add_argument("--history-rate", type=float, default=2.0, help="events/s of the history")
    ap.add_argument("--ingest-rate", type=float, default=5.0, help="live events/s POSTed during the run")
    ap.add_argument("--wait", default="5,15", help="think time between a user's actions, min,max seconds")
    ap.add_argument("--no-live-refresh", action="store_true",
                    help="do not redraw live widgets on data_update (live.js does; for comparison)")
    ap.add_argument("--capture", action="store_true", help="record the browser's requests first (Chromium)")
    ap.add_argument("--payloads", default=str(DEFAULT_PAYLOADS))
    ap.add_argument("--locust-processes", type=int, default=1, help="locust --processes (1: one process)")
    ap.add_argument("--smoke", action="store_true",
                    help="5 users (one per role), 30 min of history, one web worker: each does every action once, "
                         "then the run ends (tests/integration/test_load_smoke.py)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the database's history and accounts from a previous run (same --users)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.smoke:
        # Every user does every action once, then the run ends (run-time is only a bound).
        args.users, args.spawn_rate, args.run_time, args.hours = 5, 5.0, "150s", 0.5
        args.wait = "1,2"
        args.workers = 1         # one gevent worker serves 5 users; a second only doubles the start-up
    from urllib.parse import urlsplit
    u = urlsplit(args.redis_url)
    db = int(u.path.strip("/") or 0) if u.path.strip("/").isdigit() else 0
    if (u.port or 6379) == 6379 and db in (14, 15):
        ap.error("databases 14 and 15 of the shared Redis belong to the lead and the test suite; "
                 "use another --redis-url")
    return args


# --- CPU ------------------------------------------------------------------------------------------

class CpuSampler(threading.Thread):
    """CPU seconds per group of processes, sampled every second (processes that come and go,
    such as gunicorn workers, keep what they used while seen), and the machine's busy time."""

    def __init__(self, groups: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.groups = groups            # name -> callable returning pids
        self.seen: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.stop_flag = threading.Event()
        self.marks: dict[str, tuple[float, dict[str, float], float, float]] = {}

    def sample(self) -> None:
        import psutil
        for g, pids in self.groups.items():
            for pid in pids():
                try:
                    t = psutil.Process(pid).cpu_times()
                    self.seen[g][pid] = t.user + t.system
                except psutil.Error:
                    pass

    def totals(self) -> dict[str, float]:
        return {g: sum(v.values()) for g, v in self.seen.items()}

    def mark(self, name: str) -> None:
        import psutil
        self.sample()
        ct = psutil.cpu_times()
        busy = ct.user + ct.nice + ct.system + ct.irq + ct.softirq + ct.steal
        self.marks[name] = (time.monotonic(), self.totals(), busy, ct.idle + ct.iowait)

    def run(self) -> None:
        while not self.stop_flag.wait(1.0):
            self.sample()

    def split(self, a: str, b: str) -> dict[str, Any]:
        t0, c0, busy0, idle0 = self.marks[a]
        t1, c1, busy1, idle1 = self.marks[b]
        wall = t1 - t0
        ours = {g: (c1.get(g, 0) - c0.get(g, 0)) / wall for g in c1}
        machine = (busy1 - busy0) / wall
        return {"seconds": wall, "cores": ours, "machine_busy_cores": machine,
                "others_cores": max(0.0, machine - sum(ours.values())),
                "idle_cores": (idle1 - idle0) / wall}


# --- locust -----------------------------------------------------------------------------------------

def run_locust(args: argparse.Namespace, base: str, users_file: str, out_dir: str) -> tuple[subprocess.Popen, str]:
    prefix = os.path.join(out_dir, "locust")
    wmin, wmax = (x.strip() for x in args.wait.split(","))
    env = {**os.environ, "LOAD_USERS": users_file, "LOAD_PAYLOADS": args.payloads,
           "LOAD_OUT": os.path.join(out_dir, "extra.json"), "LOAD_LIVE_REFRESH": "0" if args.no_live_refresh else "1",
           "LOAD_WAIT_MIN": wmin, "LOAD_WAIT_MAX": wmax, "LOAD_TOUR": "1" if args.smoke else "0",
           # A request still unanswered after this is a failure (smoke: correctness, not speed).
           "LOAD_TIMEOUT": "120" if args.smoke else str(args.timeout), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    cmd = [sys.executable, str(HERE / "locust_main.py"), "-f", str(HERE / "locustfile.py"), "--headless",
           "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time, "--host", base,
           "--csv", prefix, "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING",
           "--exit-code-on-error", "0"]
    if args.locust_processes > 1:
        cmd += ["--processes", str(args.locust_processes)]
    log = open(os.path.join(out_dir, "locust.log"), "w")
    proc = subprocess.Popen(cmd, cwd=stack.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, prefix


def read_stats(prefix: str) -> list[dict[str, Any]]:
    rows = []
    with open(prefix + "_stats.csv") as fh:
        for row in csv.DictReader(fh):
            def num(k: str) -> float:
                v = row.get(k) or "0"
                return float(v) if v.replace(".", "", 1).isdigit() else float("nan")
            rows.append({"type": row["Type"], "name": row["Name"], "count": int(row["Request Count"]),
                         "errors": int(row["Failure Count"]), "p50": num("50%"), "p95": num("95%"),
                         "p99": num("99%"), "max": num("Max Response Time"), "rps": num("Requests/s"),
                         "avg_bytes": num("Average Content Size")})
    return rows


def read_failures(prefix: str) -> list[dict[str, Any]]:
    path = prefix + "_failures.csv"
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [{"name": r["Name"], "error": r["Error"][:300], "count": int(r["Occurrences"])}
                for r in csv.DictReader(fh)]


# --- the content check ---------------------------------------------------------------------------------

def check_kpis(base: str, account: dict[str, Any], payloads: dict[str, Any], r: Any) -> dict[str, Any]:
    """The executive dashboard as the browser gets it vs GET /api/dashboard/executive, on data
    that no longer moves: every card's text must be the API's value as the card formats it."""
    import requests

    from components.kpi import format_value
    s = requests.Session()
    form = s.get(base + "/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    resp = s.post(base + "/login", data={"csrf_token": csrf, "next": "/", "username": account["name"],
                                         "password": account["password"]}, allow_redirects=False, timeout=30)
    if resp.status_code != 302:
        return {"ok": False, "why": f"sign-in answered {resp.status_code}"}
    # The API read before and after the page's draw: a KPI that moves with the clock (agent
    # utilisation integrates the agents' states up to now) may take any value between the two.
    before = s.get(base + "/api/dashboard/executive?timeframe=24h", timeout=60)
    if before.status_code != 200:
        return {"ok": False, "why": f"API {before.status_code}"}
    html = s.get(base + "/dashboards/executive", timeout=30).text
    # The page as the browser gets it: drawn in /_dash-layout (its Referer is the page), or
    # else by the router's callback.
    layout = s.get(base + "/_dash-layout", headers={"Referer": base + "/dashboards/executive"}, timeout=60)
    drawn = layout.json() if layout.status_code == 200 else None
    if drawn is None or not kpi_texts(drawn):
        end_id = json.loads(re.search(r'id="_dash-config" type="application/json">(.*?)</script>', html, re.S)
                            .group(1)).get("end_id", "")  # type: ignore[union-attr]
        router = next((p["body"] for p in payloads["executive"]["open"]["posts"]
                       if "page.children" in p["body"]["output"]),
                      next(p["body"] for p in payloads["executive"]["drilldown"]["posts"]
                           if "page.children" in p["body"]["output"]))
        deps = Dependencies(s.get(base + "/_dash-dependencies", timeout=30).json())
        router = deps.reshape(router, {("route-path", "data"): "/dashboards/executive",
                                       ("url", "pathname"): "/dashboards/executive", ("url", "search"): "",
                                       ("theme", "data"): "light"})
        set_input(router, "route-path", "data", "/dashboards/executive")
        set_input(router, "url", "pathname", "/dashboards/executive")
        page = s.post(base + f"/_dash-update-component?endId={end_id}", json=router, timeout=60,
                      headers={"X-CSRFToken": s.cookies.get("_csrf_token", "")})
        if page.status_code != 200:
            return {"ok": False, "why": f"router {page.status_code}"}
        drawn = page.json()["response"]["page"]["children"]
    api = s.get(base + "/api/dashboard/executive?timeframe=24h", timeout=60)
    if api.status_code != 200:
        return {"ok": False, "why": f"API {api.status_code}"}
    texts = kpi_texts(drawn)
    first = {w["id"]: w["data"] for w in before.json()["response"]["data"]["widgets"]}
    widgets = {w["id"]: w["data"] for w in api.json()["response"]["data"]["widgets"]}
    compared, mismatches = 0, []
    for kpi, text in texts:
        d, d0 = widgets.get(kpi), first.get(kpi)
        if d is None or d0 is None:
            continue
        want = set()
        for money in (False, True):
            want |= texts_between(lambda v, m=money: format_value(v, d.get("unit"), round_money=m),
                                  d0.get("current_value"), d.get("current_value"))
        compared += 1
        if text not in want:
            mismatches.append({"kpi": kpi, "page": text, "api": [format_value(x.get("current_value"), x.get("unit"))
                                                                 for x in (d0, d)]})
    return {"ok": compared > 0 and not mismatches, "compared": compared, "cards": len(texts),
            "mismatches": mismatches, "example": texts[:3]}


def quiesce(st: stack.Stack, r: Any, timeout: float = 60.0) -> None:
    """Stop the producer and wait until the aggregator has applied everything (meta stable)."""
    if st.producer is not None:
        st.producer.stop()
    deadline = time.monotonic() + timeout
    last, stable = None, 0
    while time.monotonic() < deadline and stable < 3:
        cur = (r.xlen("qms:events"), r.hget("qms:meta", "applied"), r.hget("qms:meta", "version"))
        stable = stable + 1 if cur == last else 0
        last = cur
        time.sleep(1.0)


def wait_live(st: stack.Stack, r: Any, history: int, timeout: float = 90.0) -> None:
    """Until the producer's first events are aggregated (and so published): the live channels
    then hold a snapshot for every socket that subscribes."""
    deadline = time.monotonic() + timeout
    while int(r.hget("qms:meta", "applied") or 0) <= history:
        st.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no live event aggregated {timeout:.0f} s after the deployment started")
        time.sleep(0.2)


# --- report ---------------------------------------------------------------------------------------------

def fmt_ms(x: float) -> str:
    return "-" if x != x else f"{x:,.0f}"


def report(rows: list[dict[str, Any]], failures: list[dict[str, Any]], extra: dict[str, Any],
           cpu: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    per_type = [r for r in rows if r["name"] != "Aggregated"]
    total = next((r for r in rows if r["name"] == "Aggregated"), None)
    print("\nper request type (ms; locust's percentiles, rounded as locust rounds them):")
    print(table(["request type", "count", "errors", "p50", "p95", "p99", "max", "req/s"],
                [[r["name"], f"{r['count']:,}", f"{r['errors']:,}", fmt_ms(r["p50"]), fmt_ms(r["p95"]),
                  fmt_ms(r["p99"]), fmt_ms(r["max"]), f"{r['rps']:.1f}"] for r in sorted(per_type, key=lambda x: x["name"])]
                + ([["all", f"{total['count']:,}", f"{total['errors']:,}", fmt_ms(total["p50"]), fmt_ms(total["p95"]),
                     fmt_ms(total["p99"]), fmt_ms(total["max"]), f"{total['rps']:.1f}"]] if total else [])))
    err_rate = (total["errors"] / total["count"]) if total and total["count"] else float("nan")
    over = [r["name"] for r in per_type if r["p95"] > TARGET_P95_MS]
    print(f"\nerror rate {100 * err_rate:.2f} % ({total['errors'] if total else 0:,} of "
          f"{total['count'] if total else 0:,}); target < 1 %: {'met' if err_rate < TARGET_ERRORS else 'NOT met'}")
    print(f"p95 < {TARGET_P95_MS:.0f} ms per type: {'met' if not over else 'NOT met by ' + ', '.join(over)}")
    if failures:
        print("failures:")
        for f in sorted(failures, key=lambda x: -x["count"])[:15]:
            print(f"  {f['count']:6,}  {f['name']}: {f['error']}")
    c = extra.get("counts", {})
    lat = extra.get("push_latency_ms", {})
    print(f"\nwebsockets: {c.get('ws_opened', 0):,} opened, {c.get('ws_failed', 0):,} failed, "
          f"{c.get('ws_closed_by_server', 0):,} closed by the server; {c.get('ws_messages', 0):,} messages "
          f"({c.get('ws_data_updates', 0):,} data_update of which {c.get('ws_live_updates', 0):,} live, {c.get('ws_alerts', 0):,} alert, "
          f"{c.get('ws_errors', 0):,} error); live refreshes sent {c.get('live_refreshes', 0):,}; "
          f"push latency (server timestamp -> locust) p50 {lat.get('p50')} p95 {lat.get('p95')} ms")
    print("\nCPU (cores busy, 1.0 = one core; the machine has "
          f"{os.cpu_count()}):")
    for phase, split in cpu.items():
        parts = ", ".join(f"{g} {v:.2f}" for g, v in sorted(split["cores"].items(), key=lambda x: -x[1]))
        print(f"  {phase:8s} ({split['seconds']:.0f} s): {parts}; other processes {split['others_cores']:.2f}; "
              f"machine busy {split['machine_busy_cores']:.2f}, idle {split['idle_cores']:.2f}")
    print(f"\ncontent check (executive cards vs GET /api/dashboard/executive): "
          f"{'ok' if check.get('ok') else 'FAILED'} — {check}")
    return {"per_type": per_type, "total": total, "error_rate": err_rate, "over_p95": over, "failures": failures,
            "extra": extra, "cpu": cpu, "check": check}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    exit_on_sigterm()
    r = connect(args.redis_url)
    print_machine(r)
    print(f"uptime before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    t0 = time.perf_counter()
    if args.reuse:
        # The previous run's history and accounts (accounts made before Argon2id was the
        # default are hashed again at their first sign-in: a run on them pays that once).
        users = stack.user_list(args.users)
        from data.keys import Keys
        if not r.exists(Keys.of(r, "qms").user(users[-1]["name"])):
            sys.exit(f"--reuse: {args.redis_url} holds no accounts of a previous run with --users {args.users}")
        events = [None] * int(r.hget("qms:meta", "applied") or 0)
        print(f"reusing the database: {len(events):,} events aggregated so far, {len(users)} accounts", flush=True)
    else:
        events = load_simulated(r, args.hours, args.history_rate)
        print(f"history: {len(events):,} events over {args.hours:g} h, aggregated in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    users = users if args.reuse else stack.make_users(r, args.users)
    print(f"accounts: {len(users)} ({', '.join(f'{n} {k}' for k, n in _count_roles(users).items())}) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)
    out_dir = tempfile.mkdtemp(prefix="qms-load-out-")
    users_file = os.path.join(out_dir, "users.json")
    Path(users_file).write_text(json.dumps(users))
    running: list[subprocess.Popen] = []
    # Smoke: the pages' redraw period at its 2 s floor (QMS_BODY_CACHE_S 0.5: 24h 1.5 s), so the
    # last page soon shows a live refresh; a load run keeps the deployment's default.
    body_cache_s = 0.5 if args.smoke else 5.0          # QMS_BODY_CACHE_S of the web workers (5: the default)
    st = stack.start_stack(args.redis_url, r, workers=args.workers, worker_connections=args.worker_connections,
                           ingest_rate=args.ingest_rate, web_env={**({"QMS_BODY_CACHE_S": str(body_cache_s)} if args.smoke else {}),
                                    # the workers' draw counters logged every few seconds (summed in the report)
                                    "QMS_DRAW_STATS_S": "2" if args.smoke else "10"})
    print(f"deployment: gunicorn -k gevent -w {args.workers} --worker-connections {args.worker_connections} "
          f"app:server at {st.base}; one `cli.py aggregate`; producer `cli.py simulate --url` at "
          f"{args.ingest_rate:g} events/s", flush=True)
    try:
        wait_live(st, r, len(events))
        if args.capture or not os.path.exists(args.payloads):
            import capture
            t0 = time.perf_counter()
            Path(args.payloads).write_text(json.dumps(capture.capture(st.base, users, live_ingest=st.live_ingest),
                                                      indent=1) + "\n")
            print(f"payloads recorded with Chromium in {time.perf_counter() - t0:.0f} s -> {args.payloads}", flush=True)
        payloads = json.loads(Path(args.payloads).read_text())["dashboards"]
        redis_pid = int(r.info("server").get("process_id") or 0)
        holder: dict[str, Any] = {}
        sampler = CpuSampler({
            "locust": lambda: stack.pids_of(holder["locust"]) if "locust" in holder else [],
            "gunicorn": lambda: stack.pids_of(st.web),
            "aggregator": lambda: [st.aggregator.pid],
            "producer": lambda: [st.producer.pid] if st.producer else [],
            "redis-server": lambda: [redis_pid] if redis_pid else [],
        })
        print(f"\n== locust: {args.users} users, {args.spawn_rate:g}/s, {args.run_time}, think time {args.wait} s, "
              f"live refresh {'off' if args.no_live_refresh else 'on'}", flush=True)
        proc, prefix = run_locust(args, st.base, users_file, out_dir)
        holder["locust"] = _Pid(proc.pid)
        running.append(proc)
        sampler.start()
        sampler.mark("start")
        ramp = args.users / args.spawn_rate
        steady_marked = False
        while proc.poll() is None:
            time.sleep(1.0)
            st.check()
            if not steady_marked and time.monotonic() - sampler.marks["start"][0] >= ramp:
                sampler.mark("steady")
                steady_marked = True
            if steady_marked and "end-steady" not in sampler.marks and _locust_near_end(args, sampler):
                sampler.mark("end-steady")
            if _locust_overdue(args, sampler) and proc.poll() is None:
                # Locust idle past its run time, never quitting (stop 19 once; stop 30 in seven of
                # nine 500-user runs, never in a 100-user one): SIGTERM makes it write its
                # statistics and stop. A run that quits does so within a second of its time.
                proc.send_signal(signal.SIGUSR1)          # its greenlets' stacks first (locustfile)
                time.sleep(2)
                print(f"locust still running {OVERDUE_S} s past --run-time: stopped with SIGTERM; its greenlets "
                      f"then: {os.path.join(out_dir, 'extra.json.greenlets.txt')}", flush=True)
                proc.terminate()
                proc.wait(60)
        sampler.mark("end")
        sampler.stop_flag.set()
        print(Path(out_dir, "locust.log").read_text()[-3000:] if proc.returncode else "", end="")
        cpu = {"whole": sampler.split("start", "end")}
        if steady_marked and "end-steady" in sampler.marks:
            cpu["steady"] = sampler.split("steady", "end-steady")
        quiesce(st, r)
        # A drawn body is reused up to QMS_BODY_CACHE_S x the 24h view's factor after it was drawn
        # (dashboards/computed.py STALE_FACTOR): wait that out, so the page compared with the API
        # is drawn from the data that no longer moves (it missed by 0.1 point now and then).
        from dashboards.sources import STALE_FACTOR
        time.sleep(body_cache_s * STALE_FACTOR.get("24h", 1) + 0.5)
        exec_user = next(u for u in users if u["role"] == "executive")
        try:
            check = check_kpis(st.base, exec_user, payloads, r)
        except Exception as exc:        # noqa: BLE001 - a server still drowning in the backlog
            check = {"ok": False, "why": f"{type(exc).__name__}: {exc}"[:300]}
        extra = json.loads(Path(out_dir, "extra.json").read_text()) if Path(out_dir, "extra.json").exists() else {}
        result = report(read_stats(prefix), read_failures(prefix), extra, cpu, check)
        result["producer_restarts"] = [{"at": t, "why": why} for t, why in st.producer_exits]
        if st.producer_exits:
            print(f"the producer gave up {len(st.producer_exits)} time(s) (a POST /api/events timed out after "
                  f"60 s) and was restarted; last: {st.producer_exits[-1][1].splitlines()[-1:]}")
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
        draws = keep_server_log(st, out_dir)
        st.stop()
    result["draws"] = draws
    print(f"uptime after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}; "
          f"speed check {speed_check():.2f} s", flush=True)
    result["args"] = vars(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


def keep_server_log(st: Any, out_dir: str) -> dict[str, Any] | None:
    """The web server's output (its log is deleted when it stops) copied next to locust's, with
    how many tracebacks it holds: a run's 500s are read there."""
    try:
        text = Path(st.web.log.name).read_text(errors="replace")
    except OSError:
        return None
    kept = Path(out_dir, "gunicorn.log")
    kept.write_text(text)
    print(f"server log: {kept} ({text.count('Traceback (most recent call last)'):,} tracebacks)", flush=True)
    draws = draw_lines(text)
    if draws["lines"]:
        views = ", ".join(f"{k} {n:,}" for k, n in list(draws["by_view"].items())[:15])
        print(f"draws (the web workers' qms.draws lines, {draws['lines']}): {draws['fills']:,} fills; bodies "
              f"{draws['kept']:,} kept, {draws['recent']:,} recent (up to {draws['oldest_s']:,} s old), {draws['drawn']:,} drawn "
              f"({draws['draw_s']:,.1f} s wall), {draws['shared']:,} shared; {draws['abandoned']:,} abandoned; "
              f"drawn most: {views}", flush=True)
    return draws


DRAW_LINE = re.compile(r"draws \d+s: (\d+) fills, bodies (\d+) kept / (\d+) recent / (\d+) drawn / (\d+) shared "
                       r"\(drawn ([\d.]+) s wall, recent up to (\d+) s old\).*?, (\d+) abandoned; "
                       r"drawn by view: (.*)$", re.M)


def draw_lines(text: str) -> dict[str, Any]:
    """The sum of the web workers' draw counters (callbacks/draw_stats.py) in a server log;
    `by_view` sums each line's most drawn views (a line names its top 12)."""
    out: dict[str, Any] = {"lines": 0, "fills": 0, "kept": 0, "recent": 0, "drawn": 0, "shared": 0,
                           "abandoned": 0, "draw_s": 0.0, "oldest_s": 0, "by_view": {}}
    for m in DRAW_LINE.finditer(text):
        out["lines"] += 1
        for i, k in enumerate(("fills", "kept", "recent", "drawn", "shared"), 1):
            out[k] += int(m.group(i))
        out["draw_s"] += float(m.group(6))
        out["oldest_s"] = max(out["oldest_s"], int(m.group(7)))
        out["abandoned"] += int(m.group(8))
        for part in m.group(9).split(", "):
            name, _, n = part.rpartition(" ")
            if name and n.isdigit():
                out["by_view"][name] = out["by_view"].get(name, 0) + int(n)
    out["by_view"] = dict(sorted(out["by_view"].items(), key=lambda kv: -kv[1]))
    return out


class _Pid:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def _locust_near_end(args: argparse.Namespace, sampler: CpuSampler) -> bool:
    from data.timeutil import parse_duration
    return time.monotonic() - sampler.marks["start"][0] >= parse_duration(args.run_time) / 1000 - 2


def _locust_overdue(args: argparse.Namespace, sampler: CpuSampler) -> bool:
    from data.timeutil import parse_duration
    return time.monotonic() - sampler.marks["start"][0] >= parse_duration(args.run_time) / 1000 + OVERDUE_S


def _count_roles(users: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for u in users:
        out[u["role"]] = out.get(u["role"], 0) + 1
    return out


if __name__ == "__main__":
    main()
