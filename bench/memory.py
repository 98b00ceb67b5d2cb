"""Redis memory per event over 30 days of history at a steady rate, before and after the
event archive (issue 13 part 4: target <= 250 B per event), and the archive's bytes per event.

    /work/tools/qbench .venv/bin/python bench/memory.py --redis-url redis://127.0.0.1:6379/5 \
        [--days 30] [--rate 1] [--hot-hours 48]

1. FLUSHDB, then `--days` of simulated activity (data/simulator.py) at `--rate` events/s,
   through the real ingest and aggregator, a simulated day at a time (the events are never
   all in memory).
2. MEMORY USAGE of every key (SAMPLES 0: exact), summed by key family -> bytes per event;
   the rollups also by family letter over every resolution (minutes, hours, days and the
   summed histogram levels), with how many of their hashes Redis keeps as a hash table
   rather than a listpack (over `hash-max-listpack-entries` fields, or one field or value
   longer than `hash-max-listpack-value`: ~3x the bytes a field).
3. The archiver (data/archive_move.py) with a `--hot-hours` window, then the same again, and
   the archive's files: bytes per event on disk.
The figure is one run's, every key counted: rollups grow with time and with the distinct
names per bucket, not in proportion to events, so the rate matters. (Stop 19's projection
from a few dense hours left out the daily and summed buckets, whose fields a few hours do
not show: it is gone.)
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from _common import connect, flush, human, print_machine

from data import archive_move
from data.aggregator import Aggregator
from data.archive import Archive
from data.ingest import Ingestor
from data.keys import Keys
from data.simulator import Simulator
from data.timeutil import DAY_MS, HOUR_MS, now_ms, to_datetime

# Families that grow with events (bytes per event hold at any rate); the rest grow with time.
PER_EVENT = ("stream", "raw", "rawidx", "eix:wf", "eix:ac", "seen", "seen:in", "seen:agg", "ent:wf", "ent:df", "ent:rv",
             "ent:cp", "wft", "tl:ag", "tl:q")
OWNER = {"stream": "H-AGG", "seen": "H-AGG", "seen:in": "H-AGG", "seen:agg": "H-AGG", "ent:wf": "H-AGG",
         "ent:df": "H-AGG", "ent:rv": "H-AGG", "ent:cp": "H-AGG", "wft": "H-AGG", "tl:ag": "H-AGG", "tl:q": "H-AGG",
         "raw": "archive", "rawidx": "archive", "eix:wf": "archive", "eix:ac": "archive"}


def family(key: bytes, prefix: str) -> str:
    parts = key.decode(errors="replace")[len(prefix) + 1:].split(":")
    head = parts[0]
    if head == "events":
        return "stream"
    if head == "seen" and len(parts) > 2 and parts[1] not in ("in", "agg"):
        return "seen"                      # {p}:seen:{day}:{bucket}, ingest and aggregators
    if head in ("r", "seen", "ent", "eix", "tl") and len(parts) > 1:
        return f"{head}:{parts[1]}"
    return head


def measure(r: Any, prefix: str = "qms") -> dict[str, list[int]]:
    """{family: [keys, bytes]} by MEMORY USAGE ... SAMPLES 0 of every key."""
    fams: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    batch: list[bytes] = []

    def flush_batch() -> None:
        with r.pipeline(transaction=False) as p:
            for k in batch:
                p.memory_usage(k, samples=0)
            for k, n in zip(batch, p.execute()):
                f = fams[family(k, prefix)]
                f[0] += 1
                f[1] += int(n or 0)
        batch.clear()
    for key in r.scan_iter(match=prefix + ":*", count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            flush_batch()
    flush_batch()
    return dict(fams)


def load(r: Any, keys: Keys, start: int, end: int, rate: float, seed: int,
         tick: Callable[[int, int], None] | None = None) -> int:
    """Simulated events in [start, end) through the real ingest and aggregator, a day at a time,
    with the seen hashes sized to the rate as the `dedup_buckets` setting says (events a day / 100)."""
    sim = Simulator(seed=seed, rate=rate, start=to_datetime(start))
    buckets = max(16, math.ceil(rate * 86_400 / 100))
    ingest = Ingestor(r, keys, dedup_buckets=buckets)
    agg = Aggregator(r, keys, batch=5000, dedup_buckets=buckets)
    n = 0
    cursor = start
    while cursor < end:
        step = min(end, cursor + DAY_MS)
        evs = list(sim.events_between(to_datetime(cursor), to_datetime(step)))
        for pos in range(0, len(evs), 5000):
            res = ingest.ingest(evs[pos:pos + 5000], origin="simulator")
            if res.rejected:
                sys.exit(f"the simulator's events were rejected: {res.errors[:3]}")
        agg.drain(timeout_s=1800)
        agg.trim()           # as the live aggregator does every 50 batches (a day here is ~4)
        n += len(evs)
        cursor = step
        if tick:
            tick(cursor, n)
    return n


def table(fams: dict[str, list[int]], events: int) -> tuple[int, list[str]]:
    total = sum(v[1] for v in fams.values())
    lines = [f"  {'family':12s} {'keys':>9s} {'bytes':>11s} {'B/event':>8s}  owner"]
    for fam, (n, size) in sorted(fams.items(), key=lambda x: -x[1][1]):
        lines.append(f"  {fam:12s} {n:>9,} {human(size):>11s} {size / max(events, 1):8.1f}  {OWNER.get(fam, '')}")
    lines.append(f"  {'total':12s} {sum(v[0] for v in fams.values()):>9,} {human(total):>11s} "
                 f"{total / max(events, 1):8.1f}")
    return total, lines


def rollup_families(r: Any, events: int, prefix: str = "qms") -> list[str]:
    """The rollups by family letter (a scope's ledger family "w<crc>" counted as "w*") over every
    resolution: keys, bytes, B/event, fields, bytes a field, and hashes kept as hash tables."""
    fams: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, defaultdict(int)])
    batch: list[bytes] = []

    def flush_batch() -> None:
        with r.pipeline(transaction=False) as p:
            for k in batch:
                p.memory_usage(k, samples=0)
                p.hlen(k)
                p.object("encoding", k)
            got = p.execute()
        for i, k in enumerate(batch):
            parts = k.decode(errors="replace").split(":")
            fam = parts[3] if len(parts) > 3 else "?"
            fam = "w*" if fam.startswith("w") and len(fam) > 1 else fam
            f = fams[fam]
            f[0] += 1
            f[1] += int(got[3 * i] or 0)
            f[2] += int(got[3 * i + 1] or 0)
            if got[3 * i + 2] == b"hashtable":
                f[3] += 1
            f[4][parts[2]] += int(got[3 * i] or 0)
        batch.clear()
    for key in r.scan_iter(match=prefix + ":r:*", count=2000):
        if key.endswith(b":carry"):
            continue
        batch.append(key)
        if len(batch) >= 1000:
            flush_batch()
    flush_batch()
    lines = [f"  {'family':6s} {'keys':>7s} {'bytes':>11s} {'B/event':>8s} {'fields':>10s} {'B/field':>8s} "
             f"{'hashtables':>10s}  by resolution (B/event)"]
    for fam, (n, size, fields, tables, by_res) in sorted(fams.items(), key=lambda x: -x[1][1]):
        res = ", ".join(f"{k} {v / max(events, 1):.1f}" for k, v in sorted(by_res.items(), key=lambda x: -x[1])[:5])
        lines.append(f"  {fam:6s} {n:>7,} {human(size):>11s} {size / max(events, 1):8.1f} {fields:>10,} "
                     f"{size / max(fields, 1):8.1f} {tables:>10,}  {res}")
    return lines


def read_costs(r: Any, keys: Keys, arch: Archive) -> None:
    """What reading beyond the hot window costs: a workflow's events (every archived day asked),
    and a 7-day drill-down's gate events walked newest first (rawstore.scan over both stores)."""
    from data import archive, rawstore
    from data.events import GATE_TYPES
    days = arch.days()
    if not days:
        return
    wfs = [w for (w,) in archive.connection().execute(
        f"SELECT DISTINCT workflow_id FROM read_parquet({archive._sql_list(arch.files(days[-3:]))}) "
        "WHERE workflow_id IS NOT NULL ORDER BY workflow_id LIMIT 20").fetchall()]
    took = []
    for wf in wfs:
        t = time.perf_counter()
        arch.entity("wf", wf, None, None)
        took.append(time.perf_counter() - t)
    took.sort()
    print(f"\nreads beyond the hot window: a workflow's archived events over {len(days)} days: "
          f"median {1000 * took[len(took) // 2]:.0f} ms, max {1000 * took[-1]:.0f} ms ({len(took)} workflows)")
    archive._configured[keys.n] = arch
    try:
        end = now_ms()
        t = time.perf_counter()
        n = sum(len(c) for c in rawstore.scan(r, keys, sorted(GATE_TYPES), end - 7 * DAY_MS, end))
        print(f"  a 7-day scan of gate events, newest first across Redis and the archive: {n:,} events in "
              f"{time.perf_counter() - t:.2f} s")
    finally:
        archive.forget(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--rate", type=float, default=1.0, help="simulated events per second (weekly mean)")
    ap.add_argument("--hot-hours", type=float, default=48)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--archive-dir", help="default: a temporary folder, removed at the end")
    args = ap.parse_args()
    r = connect(args.redis_url)
    print_machine(r)
    t0 = time.monotonic()
    flush(r)
    while r.dbsize():
        time.sleep(0.2)
    keys = Keys.of(r, "qms")
    end = now_ms() // HOUR_MS * HOUR_MS
    start = end - int(args.days * DAY_MS)

    def tick(cursor: int, n: int) -> None:
        print(f"  simulated up to {to_datetime(cursor):%Y-%m-%d %H:%M}: {n:,} events, "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    events = load(r, keys, start, end, args.rate, args.seed, tick)
    print(f"history: {args.days:g} days at {args.rate:g} events/s (weekly mean): {events:,} events, "
          f"loaded in {time.monotonic() - t0:.0f} s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    before = measure(r)
    total_before, lines = table(before, events)
    print("\nRedis before archiving (MEMORY USAGE, SAMPLES 0):")
    print("\n".join(lines))
    root = Path(args.archive_dir or tempfile.mkdtemp(prefix="qms-archive-bench-"))
    arch = Archive(root, "qms")
    t1 = time.monotonic()
    report = archive_move.move(r, keys, arch, hot_hours=args.hot_hours, retention_days=int(args.days) + 2)
    moved_s = time.monotonic() - t1
    after = measure(r)
    total_after, lines = table(after, events)
    st = arch.stats()
    print(f"\narchiver (hot window {args.hot_hours:g} h): {report.line()} in {moved_s:.1f} s")
    print(f"archive: {st['rows']:,} events, {st['files']} files over {st['days']} days, {human(st['bytes'])} = "
          f"{st['bytes'] / max(st['rows'], 1):.1f} B/event on disk (zstd Parquet)")
    print("\nRedis after archiving:")
    print("\n".join(lines))
    print("\nrollups by family (every resolution; hash tables: hashes Redis keeps unpacked):")
    print("\n".join(rollup_families(r, events)))
    read_costs(r, keys, arch)
    print(f"\nRedis per event: {total_before / events:.0f} B before, {total_after / events:.0f} B after "
          f"({events:,} events over {args.days:g} days at {args.rate:g}/s)")
    per_event = sum(v[1] for f, v in after.items() if f in PER_EVENT) / events
    rollups = sum(v[1] for f, v in after.items() if f.startswith("r:") or f == "tot")
    print(f"  families that grow with events: {per_event:.0f} B/event; rollups and totals "
          f"{human(rollups)} ({rollups / events:.0f} B/event at this rate, grow with time)")
    flush(r)
    if not args.archive_dir:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ndone in {time.monotonic() - t0:.0f} s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
