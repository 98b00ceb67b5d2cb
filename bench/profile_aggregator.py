"""Where one aggregator spends its time: Aggregator.drain over N pre-loaded stream entries.

    python bench/profile_aggregator.py [--events 200000] [--rate 200] [--redis-url ...]
                                       [--profiler cprofile|py-spy|none] [--py-spy PATH] [--top 25]
                                       [--agg-batch N] [--agg-batch-max N]
                                       [--partitions K] [--as-ingest] [--native]

FLUSHDB, XADD N simulated events (no aggregator running), then drain them in this process
with Aggregator.from_settings(...).drain(). Always prints the split wall / aggregator CPU /
Redis CPU and the Redis commands' server time (INFO commandstats delta, server-wide);
then, with --profiler cprofile (default), the top functions by own time and by cumulative
time; with py-spy (sampling, low overhead; `pip install py-spy`), the drain runs in a child
process under `py-spy record --format raw` and the samples are summed per function (own and
inclusive %, restricted to samples under Aggregator.drain). `none` gives the plain rate.
The aggregation path runs compiled when built (data/native.py; the `code:` line says): its
functions are then C, invisible to cProfile, and seen by py-spy only with `--native`.
QMS_NATIVE=0 runs the source instead.
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (DEFAULT_REDIS_URL, ROOT, connect, flush, generate, load_stream, print_machine,  # noqa: E402
                     redis_cpu)


def drain(url: str, batch: int | None, partitions: int = 1, batch_max: int | None = None) -> None:
    """The measured part (also the py-spy child's entry point), with the garbage collected
    as in `cli.py aggregate` (Aggregator.run: data.aggregator.Collector, between batches;
    stops 26-36 thresholds (50,000, 20, 20); before stop 26 Python's default)."""
    from data.aggregator import Aggregator, Collector
    from settings import Settings
    overrides = {"redis_url": url, "aggregation_partitions": partitions}
    if batch:
        overrides["aggregator_batch"] = batch
    if batch_max:
        overrides["aggregator_batch_max"] = batch_max
    settings = Settings.from_env({}, **overrides)
    r = connect(url)
    agg = Aggregator.from_settings(r, settings)
    agg.drain(timeout_s=3600, collector=Collector())


def commandstats(r) -> dict[str, tuple[int, int]]:
    return {k: (int(v["calls"]), int(v["usec"])) for k, v in r.info("commandstats").items()}


def spy_report(raw: str, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(raw).read_text().splitlines():
        stack, n_s = line.rsplit(" ", 1)
        frames = stack.split(";")
        start = next((i for i, f in enumerate(frames) if f.startswith("Aggregator.drain ")), None)
        if start is None:         # compiled (data/native.py): no Python frame of its own
            start = next((i + 1 for i, f in enumerate(frames) if f.startswith("drain (")
                          and "profile_aggregator" in f), None)
        if start is None:
            continue
        names = [re.sub(r":\d+\)$", ")", f) for f in frames[start:]]
        n = int(n_s)
        total += n
        own[names[-1]] += n
        for f in set(names):
            incl[f] += n
    print(f"\npy-spy: {total} samples under Aggregator.drain (compiled: under the bench's drain; on-CPU only)")
    by_file: collections.Counter[str] = collections.Counter()
    for f, n in own.items():
        where = f.rsplit(" (", 1)[-1].rstrip(")")
        by_file[re.sub(r"-[0-9a-f]{16}\.cpython.*", " (compiled)", where.rsplit("/", 1)[-1])] += n
    print("own time by file:")
    for f, n in by_file.most_common(min(top, 15)):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("own time:")
    for f, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("inclusive time:")
    for f, n in incl.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--agg-batch", type=int, help="aggregator batch size (default: settings)")
    ap.add_argument("--agg-batch-max", type=int,
                    help="what a backlog's batches grow to (default: settings; --agg-batch's size: never grow)")
    ap.add_argument("--profiler", choices=("cprofile", "py-spy", "none"), default="cprofile")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="path of the py-spy binary")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--native", action="store_true",
                    help="py-spy: C frames too (the compiled modules' functions, orjson, hiredis; data/native.py)")
    ap.add_argument("--partitions", type=int, default=1, help="K partitions, all drained by the one aggregator")
    ap.add_argument("--as-ingest", action="store_true", help="entries as the ingest writes them (validated, field v)")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        drain(args.redis_url, args.agg_batch, args.partitions, args.agg_batch_max)
        return

    r = connect(args.redis_url)
    print_machine(r)
    flush(r)
    events = generate(args.events, args.rate, args.seed)
    load_stream(r, events, args.partitions, args.as_ingest)
    print(f"stream loaded with {len(events):,} entries; draining with one Aggregator ({args.profiler})", flush=True)
    cs0, rc0 = commandstats(r), redis_cpu(r)
    prof = None
    if args.profiler == "py-spy":
        raw = tempfile.NamedTemporaryFile(prefix="bench-spy-", suffix=".txt", delete=False).name
        cmd = [args.py_spy, "record", "--format", "raw", "--rate", "200", "--output", raw,
               *(["--native"] if args.native else []), "--",
               sys.executable, str(Path(__file__).resolve()), "--_child", "--redis-url", args.redis_url,
               "--partitions", str(args.partitions)]
        if args.agg_batch:
            cmd += ["--agg-batch", str(args.agg_batch)]
        if args.agg_batch_max:
            cmd += ["--agg-batch-max", str(args.agg_batch_max)]
        t0 = time.perf_counter()
        before = os.times()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = os.times()
        cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        if args.profiler == "cprofile":
            prof = cProfile.Profile()
            prof.enable()
        drain(args.redis_url, args.agg_batch, args.partitions, args.agg_batch_max)
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rc = redis_cpu(r) - rc0
    cs1 = commandstats(r)
    n = len(events)
    print(f"\n{n:,} events drained in {wall:.1f}s = {n / wall:,.0f} ev/s (profiler: {args.profiler}); "
          f"aggregator CPU {cpu:.1f}s ({100 * cpu / wall:.0f}% of wall), Redis CPU {rc:.1f}s ({100 * rc / wall:.0f}%)")
    delta = {k: (c - cs0.get(k, (0, 0))[0], u - cs0.get(k, (0, 0))[1]) for k, (c, u) in cs1.items()}
    delta = {k: v for k, v in delta.items() if v[0] > 0}
    tot = sum(u for _, u in delta.values()) or 1
    print("Redis server time by command (commandstats delta, server-wide):")
    for k, (c, u) in sorted(delta.items(), key=lambda x: -x[1][1])[:12]:
        print(f"  {k.replace('cmdstat_', ''):20s} {u / 1e6:7.2f}s {100 * u / tot:5.1f}%  calls {c:>9,}  "
              f"{u / max(c, 1):8.1f} us/call")
    if prof:
        for key in ("tottime", "cumulative"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats(key).print_stats(args.top)
            text = s.getvalue()
            print(f"\ncProfile, top {args.top} by {key} (cProfile inflates per-call overhead):")
            print(text[text.find("   ncalls"):].rstrip())
    elif args.profiler == "py-spy":
        spy_report(raw, args.top)
        os.unlink(raw)
    flush(r)


if __name__ == "__main__":
    main()
