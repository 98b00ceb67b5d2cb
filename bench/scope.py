"""What team scope costs a drill-down: sanitising N events for an admin (nothing to do), an
executive (pseudonyms, hidden fields) and a developer (team scope: one MGET of the rows'
workflows, then per row own team or another's).

    python bench/scope.py [--hours 6] [--rate 5] [--rows 10000] [--repeat 5]
                          [--redis-url redis://127.0.0.1:6379/14]

Fills the database (FLUSHDB) with --hours of simulated activity of five teams at --rate
events/s through the real aggregator, reads the newest --rows events of the workflow
types, then times `Sanitizer.events` on them --repeat times per role (best and median,
each with a fresh sanitiser, as each request builds one). Prints how many rows the
developer saw of other teams.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
import redis  # noqa: E402

from auth.rbac import load_rbac  # noqa: E402
from auth.scope import sanitizer_for  # noqa: E402
from data.keys import Keys  # noqa: E402
from bench._common import load_simulated  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=6)
    ap.add_argument("--rate", type=float, default=5)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = ap.parse_args()
    r = redis.Redis.from_url(args.redis_url)
    keys = Keys.of(r, "qms")
    events = load_simulated(r, args.hours, args.rate)
    rows = [e for e in reversed(events) if e["type"].startswith("workflow.")][:args.rows]
    latest = {a.decode(): orjson.loads(v)[2] for a, v in r.hgetall(keys.authors).items()}
    viewer = sorted(a for a, t in latest.items() if t == "platform")[0]
    rbac = load_rbac()
    print(f"{len(events):,} events aggregated; sanitising {len(rows):,} workflow events as each role")
    for role in ("admin", "executive", "developer"):
        times = []
        for _ in range(args.repeat):
            san = sanitizer_for(rbac, r, keys, b"k" * 32, [role], viewer)
            t0 = time.perf_counter()
            san.events(rows)
            times.append((time.perf_counter() - t0) * 1000)
        extra = f"  ({san.scope_info()['note']})" if role == "developer" else ""
        print(f"{role:10s} best {min(times):7.1f} ms  median {statistics.median(times):7.1f} ms{extra}")
    r.flushdb()


if __name__ == "__main__":
    main()
