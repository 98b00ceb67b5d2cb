"""What one move of the event archiver costs (data/archive_move.py): raw events past the hot
window from Redis to a Parquet part, and their keys removed.

    python bench/mover.py [--events 150000] [--rate 3] [--runs 1] [--redis-url redis://127.0.0.1:6379/14]

Per run: FLUSHDB, --events simulated events ending 4 days ago (past the 48 h hot window, kept
raw: the retention is set to 10 years), XADDed as the ingest writes them and applied by one
aggregator (untimed); then one `move` into a temporary archive, timed: wall and this process's
CPU (the mover runs here; Redis' own CPU is printed apart). Under `cli.py serve` the embedded
archiver runs this on a thread of its own, and its Python takes the interpreter's lock from
the pages in turns: its CPU is what the pages share.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import connect, flush, generate, load_stream, print_machine, redis_cpu, table  # noqa: E402

from data import archive, archive_move  # noqa: E402
from data.aggregator import Aggregator  # noqa: E402
from data.keys import Keys  # noqa: E402
from data.timeutil import DAY_MS, now_ms  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--rate", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = ap.parse_args()
    r = connect(args.redis_url)
    print_machine(r)
    events = generate(args.events, args.rate, end_ms=now_ms() - 4 * DAY_MS)
    rows = []
    for run in range(args.runs):
        flush(r)
        load_stream(r, events, as_ingest=True)
        keys = Keys("qms")
        Aggregator(r, keys, raw_retention_days=3650).drain(600)
        root = tempfile.mkdtemp(prefix="bench-mover-")
        try:
            arch = archive.Archive(root, keys.p)
            c0, t0, rc0 = time.process_time(), time.perf_counter(), redis_cpu(r)
            rep = archive_move.move(r, keys, arch, hot_hours=48, retention_days=3650)
            wall, cpu, rcpu = time.perf_counter() - t0, time.process_time() - c0, redis_cpu(r) - rc0
            on_disk = sum(f.stat().st_size for f in Path(root).rglob("*.parquet"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append([str(run + 1), f"{rep.written:,}", f"{rep.parts}", f"{wall:.2f}", f"{cpu:.2f}", f"{rcpu:.2f}",
                     f"{cpu / max(rep.written, 1) * 1e6:.1f}", f"{on_disk / max(rep.written, 1):.1f}"])
    flush(r)
    print(table(["run", "events moved", "parts", "wall s", "mover CPU s", "Redis CPU s", "mover µs/event",
                 "archive B/event"], rows))


if __name__ == "__main__":
    main()
