"""Where a cold dashboard request spends its time (in-process, no HTTP), on data already filled
(e.g. by `python bench/kpi_api.py --keep`).

    python bench/profile_engine.py [--dashboard qa] [--timeframe 7d] [--runs 20] [--redis-url ...] [--top 20]
                                   [--user NAME]   (developer: default the one bench/kpi_api.py asks for)

Each run bumps qms:meta version (cache miss) and calls Engine.dashboard(). Prints the mean
wall time, a split fetch (rollups.fetch: the Redis pipeline + int decoding) / compute
(the KPI functions) / rest, the number of buckets and hash fields fetched per family, and
cProfile's top functions by own time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_REDIS_URL, META, connect  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dashboard", default="qa")
    ap.add_argument("--timeframe", default="7d")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--user", help="the developer dashboard's user")
    args = ap.parse_args()

    from data import kpis, rollups
    from data.engine import Engine
    from settings import Settings

    r = connect(args.redis_url)
    if not r.exists(META):
        sys.exit("no aggregated data in this database (fill it with bench/kpi_api.py --keep)")
    engine = Engine.from_settings(r, Settings.from_env({}, redis_url=args.redis_url))
    user = None
    if args.dashboard == "developer":
        from kpi_api import busiest_user
        user = args.user or busiest_user(r)
        print(f"developer dashboard of {user!r}")
    timings = {"fetch": 0.0, "compute": 0.0}
    fetched: dict[str, list[int]] = {}
    last_buckets: list = []
    orig_fetch, orig_compute = rollups.fetch, kpis.compute

    def fetch(*a, **kw):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        span = orig_fetch(*a, **kw)
        timings["fetch"] += time.perf_counter() - t
        for fam, rows in span.values.items():
            fetched[fam] = [len(rows), sum(len(x) for x in rows)]
        last_buckets[:] = span.buckets
        return span

    def compute(*a, **kw):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = orig_compute(*a, **kw)
        timings["compute"] += time.perf_counter() - t
        return out

    rollups.fetch, kpis.compute = fetch, compute
    prof = cProfile.Profile()
    total = 0.0
    for i in range(args.runs + 1):
        r.hincrby(META, "version", 1)
        if i == 1:                      # the first run warms imports and connections
            timings = {"fetch": 0.0, "compute": 0.0}
            prof.enable()
        t = time.perf_counter()
        out = engine.dashboard(args.dashboard, args.timeframe, user=user)
        if i:
            total += time.perf_counter() - t
        assert out["metadata"]["cache_status"] == "miss"
    prof.disable()
    n = args.runs
    print(f"{args.dashboard} {args.timeframe} cold, {n} runs under cProfile: mean {1000 * total / n:.1f} ms = "
          f"fetch {1000 * timings['fetch'] / n:.1f} ms + compute {1000 * timings['compute'] / n:.1f} ms + rest")
    for fam, (buckets, fields) in sorted(fetched.items()):
        print(f"  family {fam!r}: {buckets} buckets, {fields:,} fields fetched")
    if fetched:
        from collections import Counter
        steps = Counter(b.step_ms // 60_000 for b in last_buckets)
        print("  buckets by step: " + ", ".join(f"{n} x {m} min" for m, n in sorted(steps.items())))
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
    text = s.getvalue()
    print(text[text.find("   ncalls"):].rstrip())


if __name__ == "__main__":
    main()
