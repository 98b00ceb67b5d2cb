"""KPI API latency over a filled history.

    python bench/kpi_api.py [--days 7] [--rate 100] [--requests 200]
                            [--redis-url redis://127.0.0.1:6379/14] [--skip-fill] [--keep] [--force]
                            [--only qa ...] [--add-summed]

1. Fill: FLUSHDB, then simulate --days of history at --rate events/s (Simulator, ending now)
   and push it straight onto the stream with pipelined XADD while ONE aggregator process
   (`python cli.py aggregate`) drains it. The producer waits whenever more than --backlog
   events are not yet aggregated, and caps the stream (XADD MAXLEN ~ 2*backlog) so already
   aggregated entries do not pile up. Prints progress, the fill rate and, after the fill,
   INFO memory (server-wide) plus this database's own MEMORY USAGE by key family.
   The fill is refused when its memory estimate exceeds half of MemAvailable (--force).
2. Queries: the aggregator is stopped (so the data version is stable) and the Flask app is
   served by werkzeug's threaded server (bench/_serve.py). For each case, --requests
   sequential GET /api/dashboard/<name>?timeframe=X over one keep-alive connection:
     cold = cache miss: HINCRBY qms:meta version 1 before each request (what every
            aggregator batch does), so the engine recomputes from the rollups;
     warm = cache hit: the same request repeated (one priming request first).
   Client-side wall times; the server's metadata.processing_time is shown too. Each
   answer's metadata.cache_status is checked (warm requests that missed because the
   minute rolled over are left out and counted).
"""
from __future__ import annotations

import argparse
import http.client
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from _common import (  # noqa: E402
    DEFAULT_REDIS_URL,
    META,
    STREAM,
    auth_headers,
    connect,
    exit_on_sigterm,
    flush,
    human,
    pct,
    print_db_memory,
    print_machine,
    redis_cpu,
    simulated_until_now,
    start_aggregator,
    start_server,
    table,
    used_memory,
    wait_group,
)
from tqdm import tqdm  # noqa: E402

TARGET_P95_MS = 50.0
EST_BYTES_PER_EVENT = 810      # measured by the 7-day fill: raw store + index + dedup set + entities
EST_AGG_RATE = 20_000          # events/s one aggregator sustained here while the simulator ran
TIMEFRAMES = ("1h", "4h", "24h", "7d", "30d")
CASES = [(name, tf) for name in ("executive", "operational", "qa", "developer") for tf in TIMEFRAMES]


def processed(r: Any) -> int:
    a, d, j = r.hmget(META, ["applied", "duplicates", "rejected"])
    return int(a or 0) + int(d or 0) + int(j or 0)


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) * 1024
    return 0


def fill(args: argparse.Namespace, r: Any) -> int:
    from data.simulator import Simulator
    from data.timeutil import DAY_MS, now_ms, to_datetime

    expected = int(args.rate * args.days * 86_400)
    est_mem = expected * EST_BYTES_PER_EVENT
    print(f"\n== fill: {args.days:g} days at {args.rate:g} events/s ~ {expected:,} events; estimated "
          f"{human(est_mem)} in Redis and ~{expected / EST_AGG_RATE / 60:.0f} min with one aggregator", flush=True)
    avail = mem_available()
    if est_mem > avail / 2 and not args.force:
        fit = avail / 2 / EST_BYTES_PER_EVENT / (args.days * 86_400)
        sys.exit(f"refusing: the estimate exceeds half of MemAvailable ({human(avail)}); "
                 f"use --rate {max(1, int(fit))} or lower, or --force")
    flush(r)
    agg = start_aggregator(args.redis_url, args.agg_batch)
    cap = max(2 * args.backlog, 100_000)
    try:
        wait_group(r, agg)
        start = now_ms() - int(args.days * DAY_MS)
        sim = Simulator(seed=args.seed, rate=args.rate, start=to_datetime(start))
        pushed = 0
        cpu_r0, cpu_a0 = redis_cpu(r), agg.cpu()
        t0 = time.perf_counter()
        bar = tqdm(total=expected, unit="ev", desc="fill", mininterval=1.0, file=sys.stderr)
        buf: list[bytes] = []
        waited = 0.0

        def push() -> None:
            nonlocal pushed, waited
            with r.pipeline(transaction=False) as p:
                for e in buf:
                    p.xadd(STREAM, {"e": e}, maxlen=cap, approximate=True)
                p.execute()
            pushed += len(buf)
            buf.clear()
            done = processed(r)
            if pushed - done > args.backlog:
                tw = time.perf_counter()
                while pushed - done > args.backlog // 2:
                    agg.check()
                    time.sleep(0.1)
                    done = processed(r)
                    if done < bar.n or not r.exists(META):
                        raise RuntimeError(f"{META} went back or vanished: someone else flushed this database")
                waited += time.perf_counter() - tw
            bar.update(done - bar.n)
            bar.set_postfix_str(f"pushed {pushed:,}", refresh=False)

        for raw in simulated_until_now(sim, start):
            buf.append(raw)
            if len(buf) >= args.batch:
                push()
        if buf:
            push()
        t_pushed = time.perf_counter()
        while processed(r) < pushed:
            agg.check()
            if processed(r) < bar.n:
                raise RuntimeError(f"{META} went back: someone else flushed this database")
            time.sleep(0.05)
            bar.update(processed(r) - bar.n)
        t_done = time.perf_counter()
        bar.close()
        cpu_a, cpu_r = agg.cpu() - cpu_a0, redis_cpu(r) - cpu_r0
    finally:
        agg.stop()
    meta = {k.decode(): v.decode() for k, v in r.hgetall(META).items()}
    print(f"filled {pushed:,} events in {t_done - t0:.0f}s = {pushed / (t_done - t0):,.0f} ev/s aggregated "
          f"(producer waited {waited:.0f}s for the aggregator; {t_done - t_pushed:.1f}s drain after the last XADD); "
          f"aggregator CPU {cpu_a:.0f}s, Redis CPU {cpu_r:.0f}s; meta applied={meta.get('applied')} "
          f"duplicates={meta.get('duplicates')} rejected={meta.get('rejected')}", flush=True)
    mem = used_memory(r)
    print(f"INFO memory (whole server, all databases): used_memory_human={mem['used_memory_human']} "
          f"used_memory_peak_human={mem['used_memory_peak_human']}")
    print_db_memory(r, pushed)
    return pushed


class Client:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.headers = headers
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def get(self, path: str) -> tuple[float, dict[str, Any]]:
        for attempt in range(2):
            t = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=self.headers)
                resp = self.conn.getresponse()
                body = resp.read()
                dt = time.perf_counter() - t
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
        return dt, orjson.loads(body)["response"]["metadata"]


def add_summed(r: Any) -> None:
    """A database filled before the summed buckets existed (timeutil.SUMMED): write them as the
    aggregator would — each the sum of the whole hours or days it spans (hours are kept as long,
    days are whole from `daily_from` 0 on a fresh fill) — and mark them whole from the same day.
    For an A/B on one history; the aggregator must not run meanwhile (the bench stops it)."""
    from collections import defaultdict

    from data import rollups
    from data.batch import RETENTION, STEP
    from data.contrib import SUMMED_FAMILIES
    from data.keys import Keys
    from data.timeutil import DAY_MS, EXPIRY_SLACK_MS, SUMMED
    k = Keys("qms")
    if rollups.daily_from(r, k) != 0:
        sys.exit("--add-summed: the daily buckets are not whole from the start (daily_from is not 0)")
    t0 = time.perf_counter()
    n = 0
    for fam in sorted(SUMMED_FAMILIES):
        for res in SUMMED:
            src = "1d" if res.step_ms % DAY_MS == 0 else "1h"
            acc: dict[int, dict[bytes, int]] = defaultdict(lambda: defaultdict(int))
            for key in r.scan_iter(match=k.rollup(src, fam, "*"), count=1000):
                if key.endswith(b":carry"):
                    sys.exit(f"--add-summed: {key!r}: a carried field (past 2^62) is not expected in a bench")
                start = int(key.rsplit(b":", 1)[1])
                for f, v in r.hgetall(key).items():
                    acc[start // res.step_ms * res.step_ms][f] += int(v)
            with r.pipeline(transaction=False) as p:
                for start, fields in acc.items():
                    name = k.rollup(res.name, fam, start)
                    p.delete(name)
                    p.hset(name, mapping={f: v for f, v in fields.items() if v})
                    p.pexpireat(name, start + STEP[res.name] + RETENTION[res.name] + EXPIRY_SLACK_MS)
                p.execute()
            n += len(acc)
    r.hset(k.meta, rollups.SUMMED_FROM, 0)
    print(f"added {n:,} summed buckets from the hours and days in {time.perf_counter() - t0:.1f}s", flush=True)


def busiest_user(r: Any) -> str:
    """A developer to ask the developer dashboard for: the first registered user (by name)
    who authored a pull request and is not an agent."""
    from data.keys import Keys
    k = Keys("qms")
    users = sorted(m.decode() for m in r.smembers(k.registry("users")))
    authors = {m.decode() for m in r.hkeys(k.authors)}
    return next((u for u in users if u in authors and not u.startswith("qms-")), users[0] if users else "nobody")


def stats(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {"n": len(s), "mean": sum(s) / len(s) if s else float("nan"), "p50": pct(s, 50), "p95": pct(s, 95),
            "p99": pct(s, 99), "max": s[-1] if s else float("nan")}


def measure(args: argparse.Namespace, r: Any) -> list[dict[str, Any]]:
    print(f"\n== queries: {args.requests} sequential requests per case, one keep-alive connection", flush=True)
    server, base = start_server(args.redis_url)
    rows: list[dict[str, Any]] = []
    try:
        c = Client(base, auth_headers(r))
        c.get("/api/dashboard/executive?timeframe=1h")      # warm the process (imports, first connection)
        user = busiest_user(r)
        print(f"  developer dashboard of {user!r}", flush=True)
        cases = [c_ for c_ in CASES if not args.only or c_[0] in args.only]
        for name, tf in cases:
            path = f"/api/dashboard/{name}?timeframe={tf}" + (f"&user={quote(user)}" if name == "developer" else "")
            for mode in ("cold", "warm"):
                wall: list[float] = []
                server_ms: list[float] = []
                off = 0
                if mode == "warm":
                    c.get(path)
                for _ in range(args.requests):
                    if mode == "cold":
                        r.hincrby(META, "version", 1)
                    dt, meta = c.get(path)
                    want = "miss" if mode == "cold" else "hit"
                    if meta.get("cache_status") != want:
                        off += 1
                        continue
                    wall.append(dt * 1000)
                    server_ms.append(float(meta.get("processing_time", 0)))
                st, sv = stats(wall), stats(server_ms)
                rows.append({"dashboard": name, "timeframe": tf, "mode": mode, **st, "srv_p50": sv["p50"],
                             "srv_p95": sv["p95"], "off": off})
                print(f"  {name:11s} {tf:>3s} {mode}: p50 {st['p50']:6.1f} ms  p95 {st['p95']:6.1f} ms  "
                      f"p99 {st['p99']:6.1f} ms  mean {st['mean']:6.1f} ms  (server p50 {sv['p50']:.1f} ms"
                      + (f"; {off} excluded: cache status not {want}" if off else "") + ")", flush=True)
    finally:
        server.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--rate", type=float, default=100.0, help="simulated events/s (weekly mean)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--requests", type=int, default=200, help="requests per case and mode")
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--batch", type=int, default=5000, help="events per XADD pipeline during the fill")
    ap.add_argument("--backlog", type=int, default=200_000, help="max events pushed but not yet aggregated")
    ap.add_argument("--agg-batch", type=int, help="QMS_AGGREGATOR_BATCH for the aggregator (default: settings)")
    ap.add_argument("--skip-fill", action="store_true", help="query the data already in the database")
    ap.add_argument("--keep", action="store_true", help="do not FLUSHDB at the end")
    ap.add_argument("--force", action="store_true", help="fill even if the memory estimate is too high")
    ap.add_argument("--only", nargs="*", help="dashboards to query (default: all four)")
    ap.add_argument("--add-summed", action="store_true",
                    help="with --skip-fill: first write the summed buckets of a history filled before they existed")
    args = ap.parse_args()

    exit_on_sigterm()
    r = connect(args.redis_url)
    print_machine(r)
    if not args.skip_fill:
        fill(args, r)
    elif not r.exists(META):
        sys.exit("--skip-fill: the database holds no aggregated data")
    if args.add_summed:
        add_summed(r)
    rows = measure(args, r)

    print(f"\n== summary: GET /api/dashboard/<name>?timeframe=X, {args.requests} requests each, "
          f"client wall time in ms (target p95 <= {TARGET_P95_MS:g} ms)")
    print(table(["dashboard", "timeframe", "cache", "n", "mean", "p50", "p95", "p99", "max", "server p50", "server p95",
                 "p95 <= 50"],
                [[x["dashboard"], x["timeframe"], x["mode"], x["n"], f"{x['mean']:.1f}", f"{x['p50']:.1f}",
                  f"{x['p95']:.1f}", f"{x['p99']:.1f}", f"{x['max']:.1f}", f"{x['srv_p50']:.1f}", f"{x['srv_p95']:.1f}",
                  "yes" if x["p95"] <= TARGET_P95_MS else "NO"] for x in rows]))
    if not args.keep and not args.skip_fill:
        flush(r)


if __name__ == "__main__":
    main()
