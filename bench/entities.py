"""What an entity page costs to assemble: `read_workflow` for sampled workflows and
`read_agent` for the busiest agent (the linter runs a gate on almost every pull request)
over each timeframe that fits the loaded history.

    python bench/entities.py [--hours 24] [--rate 5] [--workflows 50] [--repeat 3]
                             [--redis-url redis://127.0.0.1:6379/14]

Fills the database (FLUSHDB) with --hours of simulated activity at --rate events/s through
the real ingest and aggregator, then times the reads (best and median of --repeat).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from bench._common import load_simulated, print_machine  # noqa: E402
from data.entity_reader import read_agent, read_workflow  # noqa: E402
from data.keys import Keys  # noqa: E402
from data.timeutil import TIMEFRAMES, now_ms  # noqa: E402

SLA_MS = 8 * 3_600_000


def timed(fn, repeat: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times), statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--rate", type=float, default=5)
    ap.add_argument("--workflows", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = ap.parse_args()
    r = redis.Redis.from_url(args.redis_url)
    keys = Keys.of(r, "qms")
    events = load_simulated(r, args.hours, args.rate)
    wfs = sorted({e["data"]["workflow_id"] for e in events if e["type"] == "workflow.pr_created"})
    sample = random.Random(1).sample(wfs, min(args.workflows, len(wfs)))
    print_machine(r)
    print(f"{len(events):,} events over {args.hours:g} h at {args.rate:g} ev/s; {len(wfs):,} workflows")
    per_wf = []
    for wf in sample:
        best, _med, doc = timed(lambda: read_workflow(r, keys, wf, now_ms(), SLA_MS), args.repeat)
        per_wf.append((best, doc["counts"]["events"]))  # type: ignore[index]
    per_wf.sort()
    print(f"read_workflow: {len(per_wf)} workflows, best-of-{args.repeat} median {per_wf[len(per_wf) // 2][0]:.1f} ms,"
          f" max {per_wf[-1][0]:.1f} ms (events per workflow: median {sorted(n for _, n in per_wf)[len(per_wf) // 2]})")
    stop = now_ms()
    for agent in ("qms-style-linter", "qms-code-reviewer"):
        for tf, span in TIMEFRAMES.items():
            if span > args.hours * 3_600_000 * 1.5 and tf != "1h":
                continue
            best, med, doc = timed(lambda: read_agent(r, keys, agent, stop - span, stop, stop), args.repeat)
            c = doc["counts"]  # type: ignore[index]
            indexed = r.zcount(keys.entity_events("ac", agent), stop - span, f"({stop}")
            print(f"read_agent {agent:<20} {tf:>3}: best {best:7.1f} ms, median {med:7.1f} ms "
                  f"({indexed:,} indexed events; {c['gate_runs']:,} gate runs, {c['reviews_completed']:,} reviews)")


if __name__ == "__main__":
    main()
