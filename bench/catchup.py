"""Requests while the aggregator catches up on a backlog: their latency by how big its batches grow.

    python bench/catchup.py [--events 200000] [--max 2000,8000] [--redis-url redis://127.0.0.1:6379/14]
                            [--interval 0.02] [--rate 200]

A backlog drains faster in bigger batches (data/aggregator.py, Aggregator._sized), but each
batch's script holds Redis longer, and every request that reads Redis waits behind it. For each
QMS_AGGREGATOR_BATCH_MAX of --max (QMS_AGGREGATOR_BATCH stays 2000): FLUSHDB, XADD --events
simulated events as the ingest writes them (validated, field v), serve the app (werkzeug's
threaded server, bench/_serve.py, no aggregator thread), probe it idle, then start one
`cli.py aggregate` and probe it every --interval s until every event is applied. Two probes,
one after the other, from one client thread:
- `GET /health`: Redis PING and the aggregator's meta, nothing computed (what waiting on Redis
  alone costs; its 503, "unhealthy" while no aggregator runs or a backlog waits, is an answer);
- `GET /api/dashboard/operational?timeframe=1h`: a dashboard's KPIs (each batch is a new data
  version, so mostly computed afresh).
Reports the drain's rate, its number of batches (the data version's increments), each probe's
p50 / p95 / p99 / max, idle and while draining, and the answers other than 200 by status.
"""
from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (auth_headers, connect, flush, generate, load_stream, pct, print_machine,  # noqa: E402
                     start_aggregator, start_server, table, wait_applied)

PROBES = ("/health", "/api/dashboard/operational?timeframe=1h")


class Prober:
    """One keep-alive connection; each round GETs every probe path once and records its time."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        u = urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.headers = headers
        self.times: dict[str, list[float]] = {p: [] for p in PROBES}
        self.errors: dict[str, int] = {}      # "path status" -> count

    def round(self) -> None:
        for path in PROBES:
            t0 = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=self.headers)
                resp = self.conn.getresponse()
                resp.read()
                status = str(resp.status)
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                status = type(exc).__name__
            if status == "200" or (path == "/health" and status == "503"):     # 503: its verdict
                self.times[path].append((time.perf_counter() - t0) * 1000)
            else:
                key = f"{path.split('?')[0]} {status}"
                self.errors[key] = self.errors.get(key, 0) + 1

    def until(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            self.round()
            stop.wait(interval)


def summary(xs: list[float]) -> str:
    s = sorted(xs)
    return f"{pct(s, 50):.1f} / {pct(s, 95):.1f} / {pct(s, 99):.1f} / {max(s) if s else float('nan'):.1f}"


def run(args: argparse.Namespace, r, events: list[bytes], batch_max: int) -> list[str]:
    flush(r)
    load_stream(r, events, as_ingest=True)
    server, base = start_server(args.redis_url)
    agg = None
    try:
        headers = auth_headers(r)
        idle = Prober(base, headers)
        for _ in range(int(2.0 / max(args.interval, 0.001))):
            idle.round()
            time.sleep(args.interval)
        busy = Prober(base, headers)
        batches0 = int(r.hget("qms:meta", "version") or 0)
        stop = threading.Event()
        probe = threading.Thread(target=busy.until, args=(stop, args.interval), daemon=True)
        t0 = time.perf_counter()
        agg = start_aggregator(args.redis_url, None, batch_max)
        probe.start()
        done = wait_applied(r, len(events), agg, timeout=1800)
        stop.set()
        probe.join()
        batches = int(r.hget("qms:meta", "version") or 0) - batches0
        rate = len(events) / (done - t0)
        row = [f"{batch_max:,}", f"{rate:,.0f}", f"{batches}"]
        for path in PROBES:
            row += [summary(idle.times[path]), summary(busy.times[path])]
        errors = {k: idle.errors.get(k, 0) + busy.errors.get(k, 0) for k in {*idle.errors, *busy.errors}}
        row.append(", ".join(f"{k}: {n}" for k, n in sorted(errors.items())) or "0")
        print(f"QMS_AGGREGATOR_BATCH_MAX={batch_max}: drained {len(events):,} at {rate:,.0f} ev/s; "
              f"{len(busy.times[PROBES[0]])} probe rounds while draining", flush=True)
        return row
    finally:
        if agg is not None:
            agg.stop()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--max", default="2000,8000", help="QMS_AGGREGATOR_BATCH_MAX values, run in this order")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--interval", type=float, default=0.02, help="pause between probe rounds (s)")
    ap.add_argument("--rate", type=float, default=200.0, help="the simulated events' rate (events/s)")
    args = ap.parse_args()
    r = connect(args.redis_url)
    print_machine(r)
    events = generate(args.events, args.rate)
    rows = [run(args, r, events, int(m)) for m in args.max.split(",")]
    flush(r)
    headers = ["batch max", "drain ev/s", "batches"]
    for path in PROBES:
        short = "health" if path == "/health" else "dashboard"
        headers += [f"{short} idle p50/95/99/max ms", f"{short} draining p50/95/99/max ms"]
    headers.append("errors")
    print()
    print(table(headers, rows))


if __name__ == "__main__":
    main()
