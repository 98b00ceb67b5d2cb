"""What the archive mover pays to skip ids a day's parts already hold (data/archive_move.py):
every id of the day (`Archive.ids(day)`) against only a slice's (`Archive.ids(day, among)`).
The day the hot window starts in is moved in many parts, one per run, so a run that read the
whole day would read more as the day goes on. Synthetic rows written by the mover's own
`_write_part`, one day in 8 parts.

    .venv/bin/python bench/archive_ids.py [--per-day 864000] [--slice 10000 100000]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))     # _common puts the project first

from _common import speed_check  # noqa: E402
from data.archive import Archive  # noqa: E402
from data.archive_move import _write_part  # noqa: E402
from data.timeutil import DAY_MS, fmt_ms  # noqa: E402

DAY = 20_000
PARTS = 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-day", type=int, default=864_000, help="events in the day (864,000: 10 events/s)")
    ap.add_argument("--slice", type=int, nargs="+", default=[10_000, 100_000], help="ids asked about at once")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cpu, Python {sys.version.split()[0]}; speed check {speed_check():.2f} s", flush=True)
    n, t0 = args.per_day, DAY * DAY_MS
    root = Path(tempfile.mkdtemp(prefix="bench-arch-ids-"))
    try:
        arch = Archive(root, "qms")
        for part in range(PARTS):
            rows = []
            for i in range(part * n // PARTS, (part + 1) * n // PARTS):
                ts = t0 + i * DAY_MS // n
                e = {"id": f"sim-5-1796412363-{i:09d}", "type": "workflow.quality_gate_executed",
                     "timestamp": fmt_ms(ts), "data": {"workflow_id": f"W{i % 5000}"}}
                rows.append((e["id"], e["type"], ts, e, orjson.dumps(e)))
            _write_part(arch, DAY, rows)
        print(f"{n:,} events of one day in {PARTS} parts")
        cases = [("every id of the day", None)] + [
            (f"a slice of {k:,} ids (90 % archived)", [f"sim-5-1796412363-{i:09d}" for i in range(n - k * 9 // 10, n + k // 10)])
            for k in args.slice]
        for label, among in cases:
            took = []
            for _ in range(3):
                t = time.perf_counter()
                got = arch.ids(DAY, among)
                took.append(time.perf_counter() - t)
            print(f"  {label}: {len(got):,} found, best of 3 {min(took) * 1000:.0f} ms")
        print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
