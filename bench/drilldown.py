"""What a drill-down costs: the first page (counts over the whole window + 100 rows) of
every KPI of the four dashboards, and a complete CSV export of the largest, in-process
(data.drilldown and data.exports, no HTTP, an admin's view: nothing to sanitise).

    python bench/drilldown.py [--hours 24] [--rate 2] [--timeframe 24h] [--repeat 3]
                              [--redis-url redis://127.0.0.1:6379/14]

Fills the database (FLUSHDB) with --hours of simulated activity at --rate events/s through
the real ingest and aggregator, then for each KPI times `page(limit=100)` --repeat times
(best and median), and streams the export of the KPI with the most rows, measuring rows/s
and the peak memory Python allocated while streaming it (tracemalloc).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from bench._common import print_machine, table  # noqa: E402
from data import drilldown, exports, kpis  # noqa: E402
from data.aggregator import Aggregator  # noqa: E402
from data.drilldown import Ctx  # noqa: E402
from data.engine import Engine  # noqa: E402
from data.ingest import Ingestor  # noqa: E402
from data.keys import Keys  # noqa: E402
from data.simulator import Simulator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--rate", type=float, default=2)
    ap.add_argument("--timeframe", default="24h")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = ap.parse_args()
    r = redis.Redis.from_url(args.redis_url)
    print_machine(r)
    keys = Keys.of(r, "qms")
    r.flushdb()
    end = datetime.now(timezone.utc).replace(microsecond=0)
    events = list(Simulator(seed=5, rate=args.rate).events_between(end - timedelta(hours=args.hours), end))
    t0 = time.perf_counter()
    ingest = Ingestor(r, keys)
    for i in range(0, len(events), 5000):
        ingest.ingest(events[i:i + 5000], origin="simulator")
    Aggregator(r, keys).drain(600)
    print(f"{len(events):,} events ingested and aggregated in {time.perf_counter() - t0:.1f} s")
    engine = Engine(r, keys)
    names = engine.names()
    user = sorted(names["users"])[0]
    ids = [k for d in kpis.DASHBOARDS for k in kpis.kpis_for(d, names)]
    rows = []
    largest = ("", 0)
    for kpi in ids:
        q, _ = drilldown.make_query(engine, kpi, args.timeframe, user=user)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            got = drilldown.page(Ctx(r, keys), q, 100)
            times.append((time.perf_counter() - t) * 1000)
        rows.append([kpi, f"{got.total:,}", f"{min(times):.1f}", f"{statistics.median(times):.1f}"])
        if got.total > largest[1]:
            largest = (kpi, got.total)
    rows.sort(key=lambda x: -float(x[3]))
    print(f"\nfirst page (counts over the {args.timeframe} window + 100 rows), slowest first:")
    print(table(["kpi", "rows in window", "best ms", "median ms"], rows))
    kpi = largest[0]
    q, _ = drilldown.make_query(engine, kpi, args.timeframe, user=user)
    sp = drilldown.spec(kpi)
    tracemalloc.start()
    t = time.perf_counter()
    size = lines = 0
    for piece in exports.drilldown_csv(sp, ((row, row.event, row.context) for row in drilldown.rows(Ctx(r, keys), q))):
        size += len(piece)
        lines += piece.count("\n")
    took = time.perf_counter() - t
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nCSV export of {kpi}: {lines - 1:,} rows, {size / 1e6:.1f} MB in {took:.2f} s "
          f"({(lines - 1) / took:,.0f} rows/s, under tracemalloc), peak {peak / 1e6:.1f} MB allocated")
    r.flushdb()


if __name__ == "__main__":
    main()
