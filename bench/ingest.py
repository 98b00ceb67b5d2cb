"""Ingest and aggregation throughput, through HTTP and straight into the stream.

    python bench/ingest.py [--events 1000000] [--batch 5000] [--clients 4]
                           [--redis-url redis://127.0.0.1:6379/14] [--rate 200] [--agg-batch N] [--agg-batch-max N]
                           [--only http|stream|partitions] [--sequential] [--keep]
                           [--partitions 2] [--aggregators 1,2] [--no-cluster]

Pre-generates N simulated events (Simulator, ~--rate events/s, ending now, so they fall in
the retained 1-minute buckets), then measures:

(a) http:   POST /api/events in batches of --batch from --clients threads against the Flask
            app served by werkzeug's threaded server (a subprocess, bench/_serve.py), while ONE
            aggregator process (`python cli.py aggregate`) drains the stream. Reports the
            ingest-only rate (all POSTs answered) and the end-to-end rate (first POST ->
            HGET qms:meta applied == N).
(b) stream: pipelined `XADD qms:events * e <json>` from this process, the same aggregator
            draining. Reports the raw XADD rate and the aggregated rate (first XADD ->
            applied == N), and their ratio.

(c) partitions: the aggregators alone (docs/INTERNALS.md, "Partitions"): the N events are
            first XADDed to their partitions' streams (data.partition.route) as the ingest
            writes them (marked validated, field v), then 1 or 2
            `cli.py aggregate --partitions …` processes start (aggregator j of n serves the
            partitions p with p mod n = j) and the rate is N / (first start -> applied == N,
            summed over the partitions' meta). Rows: today's single stream (K = 1) with one
            aggregator; K = --partitions with each count of --aggregators on the single Redis
            of --redis-url; the same on a Redis Cluster of three masters this script starts on
            free ports (redis-server --cluster-enabled yes; skipped with --no-cluster).

--sequential starts the aggregator only after everything is ingested, so the two phases do
not share the CPU; the aggregated rate is then the aggregator's alone (from its start).
The database of --redis-url is FLUSHDB'd before each part (and at the end unless --keep).
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from tqdm import tqdm  # noqa: E402

import redis  # noqa: E402
from _common import (DEFAULT_REDIS_URL, ROOT, STREAM, Child, _child_env, auth_headers, chunks,  # noqa: E402
                     connect, exit_on_sigterm, flush, generate, human, pct, print_db_memory, print_machine,
                     redis_cpu, start_aggregator, start_server, table, used_memory, wait_applied, wait_group)

TARGET = 50_000
DEFAULT_MAX_BODY = 1024 * 1024


def _start_agg(args: argparse.Namespace, r: Any) -> tuple[Child, float]:
    agg = start_aggregator(args.redis_url, args.agg_batch, args.agg_batch_max)
    wait_group(r, agg)
    return agg, time.perf_counter()


def run_http(args: argparse.Namespace, r: Any, events: list[bytes]) -> dict[str, Any]:
    print("\n== (a) HTTP POST /api/events -> stream -> one aggregator process", flush=True)
    flush(r)
    bodies = [b'{"events":[' + b",".join(c) + b"]}" for c in chunks(events, args.batch)]
    biggest = max(map(len, bodies))
    max_body = None
    if biggest > DEFAULT_MAX_BODY:
        max_body = biggest + 1024
        print(f"note: a batch of {args.batch} events is up to {biggest:,} bytes, above the default "
              f"max_body_bytes ({DEFAULT_MAX_BODY:,}); the served app gets max_body_bytes={max_body:,}", flush=True)
    server, base = start_server(args.redis_url, max_body)
    headers = {"Content-Type": "application/json", **auth_headers(r)}
    agg: Child | None = None
    try:
        agg_ready = 0.0
        if not args.sequential:
            agg, agg_ready = _start_agg(args, r)
        u = urlsplit(base)
        counter = itertools.count()
        lock = threading.Lock()
        totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0}
        latencies: list[float] = []
        bar = tqdm(total=len(events), unit="ev", desc="POST", mininterval=0.5, file=sys.stderr)

        def client() -> None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            while True:
                i = next(counter)
                if i >= len(bodies):
                    break
                body = bodies[i]
                for attempt in range(3):
                    t = time.perf_counter()
                    try:
                        conn.request("POST", "/api/events", body=body, headers=headers)
                        resp = conn.getresponse()
                        payload = resp.read()
                        status = resp.status
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
                        if attempt == 2:
                            raise
                dt = time.perf_counter() - t
                if status != 202 and not totals["errors"]:
                    print(f"\nPOST /api/events answered {status}: {payload[:300]!r}", file=sys.stderr)
                res = orjson.loads(payload)
                with lock:
                    latencies.append(dt)
                    if status != 202:
                        totals["errors"] += 1
                    for k in ("accepted", "duplicates", "rejected"):
                        totals[k] += int(res.get(k, 0))
                    bar.update(min(args.batch, len(events) - i * args.batch))
            conn.close()

        cpu_r0, cpu_s0, cpu_a0 = redis_cpu(r), server.cpu(), (agg.cpu() if agg else 0.0)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t_ingested = time.perf_counter()
        bar.close()
        cpu_s1 = server.cpu()
        if totals["accepted"] != len(events):
            print(f"WARNING: accepted {totals['accepted']:,} of {len(events):,} "
                  f"(duplicates {totals['duplicates']:,}, rejected {totals['rejected']:,}, "
                  f"non-202 answers {totals['errors']})", flush=True)
        if args.sequential:
            agg, agg_ready = _start_agg(args, r)
            cpu_a0 = agg.cpu()
        assert agg is not None
        abar = tqdm(total=totals["accepted"], unit="ev", desc="aggregated", mininterval=0.5, file=sys.stderr)
        t_done = wait_applied(r, totals["accepted"], agg, args.timeout, abar)
        abar.close()
        cpu_a, cpu_r = agg.cpu() - cpu_a0, redis_cpu(r) - cpu_r0
        mem = used_memory(r)
    finally:
        if agg:
            agg.stop()
        server.stop()
    lat = sorted(latencies)
    n = totals["accepted"]
    agg_start = agg_ready if args.sequential else t0
    out = {
        "path": "HTTP POST", "events": n, "ingest_s": t_ingested - t0, "ingest_rate": n / (t_ingested - t0),
        "agg_s": t_done - agg_start, "agg_rate": n / (t_done - agg_start),
        "lag_s": t_done - t_ingested, "agg_cpu": cpu_a, "redis_cpu": cpu_r, "server_cpu": cpu_s1 - cpu_s0,
        "post_p50_ms": pct(lat, 50) * 1000, "post_p95_ms": pct(lat, 95) * 1000, "memory": mem["used_memory_human"],
        **totals,
    }
    print(f"accepted {n:,} (duplicates {totals['duplicates']}, rejected {totals['rejected']}) in "
          f"{out['ingest_s']:.1f}s = {out['ingest_rate']:,.0f} ev/s ingest-only "
          f"(POST of {args.batch} events: p50 {out['post_p50_ms']:.0f} ms, p95 {out['post_p95_ms']:.0f} ms; "
          f"web process CPU {out['server_cpu']:.1f}s)")
    label = "aggregator start" if args.sequential else "first POST"
    print(f"all aggregated {out['agg_s']:.1f}s after {label} = {out['agg_rate']:,.0f} ev/s end-to-end; "
          f"{out['lag_s']:.1f}s after the last POST; aggregator CPU {cpu_a:.1f}s "
          f"({n / max(cpu_a, 1e-9):,.0f} ev per CPU-second), Redis CPU {cpu_r:.1f}s; "
          f"Redis used_memory (whole server) {mem['used_memory_human']}",
          flush=True)
    out["db_bytes"] = print_db_memory(r, n)
    return out


def run_stream(args: argparse.Namespace, r: Any, events: list[bytes]) -> dict[str, Any]:
    print("\n== (b) pipelined XADD qms:events -> one aggregator process", flush=True)
    flush(r)
    agg: Child | None = None
    try:
        agg_ready = 0.0
        if not args.sequential:
            agg, agg_ready = _start_agg(args, r)
        cpu_r0, cpu_a0 = redis_cpu(r), (agg.cpu() if agg else 0.0)
        bar = tqdm(total=len(events), unit="ev", desc="XADD", mininterval=0.5, file=sys.stderr)
        t0 = time.perf_counter()
        with r.pipeline(transaction=False) as p:
            for c in chunks(events, args.batch):
                for e in c:
                    p.xadd(STREAM, {"e": e})
                p.execute()
                bar.update(len(c))
        t_added = time.perf_counter()
        bar.close()
        if args.sequential:
            agg, agg_ready = _start_agg(args, r)
            cpu_a0 = agg.cpu()
        assert agg is not None
        abar = tqdm(total=len(events), unit="ev", desc="aggregated", mininterval=0.5, file=sys.stderr)
        t_done = wait_applied(r, len(events), agg, args.timeout, abar)
        abar.close()
        cpu_a, cpu_r = agg.cpu() - cpu_a0, redis_cpu(r) - cpu_r0
        mem = used_memory(r)
    finally:
        if agg:
            agg.stop()
    n = len(events)
    agg_start = agg_ready if args.sequential else t0
    out = {
        "path": "XADD", "events": n, "ingest_s": t_added - t0, "ingest_rate": n / (t_added - t0),
        "agg_s": t_done - agg_start, "agg_rate": n / (t_done - agg_start), "lag_s": t_done - t_added,
        "agg_cpu": cpu_a, "redis_cpu": cpu_r, "memory": mem["used_memory_human"],
    }
    label = "aggregator start" if args.sequential else "first XADD"
    print(f"XADD {n:,} in {out['ingest_s']:.1f}s = {out['ingest_rate']:,.0f} ev/s raw pipelined XADD")
    print(f"all aggregated {out['agg_s']:.1f}s after {label} = {out['agg_rate']:,.0f} ev/s "
          f"(ratio aggregated/XADD {out['agg_rate'] / out['ingest_rate']:.2f}); aggregator CPU {cpu_a:.1f}s "
          f"({n / max(cpu_a, 1e-9):,.0f} ev per CPU-second), Redis CPU {cpu_r:.1f}s; "
          f"Redis used_memory (whole server) {mem['used_memory_human']}",
          flush=True)
    out["db_bytes"] = print_db_memory(r, n)
    return out


# --- (c) partitions -----------------------------------------------------------------------------

def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_of_redis(clients: list[Any]) -> float:
    return sum(redis_cpu(c) for c in clients)


def run_partitioned(label: str, url: str, r: Any, nodes: list[Any], events: list[bytes], k: int, n_aggs: int,
                    args: argparse.Namespace, cluster: bool) -> dict[str, Any]:
    from data.keys import Keys
    from data.partition import meta_sums, route
    keys = Keys.of(r, "qms", partitions=k)
    if cluster:
        r.flushall()
    else:
        flush(r)
    print(f"\n== (c) {label}: K={k}, {n_aggs} aggregator process(es); load average before {_loadavg()}", flush=True)
    t0 = time.perf_counter()
    with r.pipeline(transaction=False) as p:
        for c in chunks(events, args.batch):
            for e in c:
                p.xadd(keys.part(route(orjson.loads(e), k)).stream if keys.partitioned else keys.stream,
                       {"e": e, "v": b"1"})
            p.execute()
    print(f"XADD {len(events):,} to {len(keys.parts())} stream(s) in {time.perf_counter() - t0:.1f}s", flush=True)
    env = {"QMS_PARTITIONS": str(k), "QMS_LIVE": "0"}
    if cluster:
        env["QMS_REDIS_CLUSTER"] = "1"
    if args.agg_batch:
        env["QMS_AGGREGATOR_BATCH"] = str(args.agg_batch)
    if args.agg_batch_max:
        env["QMS_AGGREGATOR_BATCH_MAX"] = str(args.agg_batch_max)
    aggs = []
    for j in range(n_aggs):
        mine = ",".join(str(p) for p in range(k) if p % n_aggs == j)
        aggs.append(Child(f"aggregator-{j}", [sys.executable, str(ROOT / "cli.py"), "aggregate", "--name", f"bench-{j}",
                                              "--partitions", mine], _child_env(url, env)))
    try:
        # The clock starts when every process has imported and connected ("aggregator … reading"):
        # process start-up is not aggregation. Entries applied before then are subtracted.
        while not all("reading" in a.tail() for a in aggs):
            for a in aggs:
                a.check()
            time.sleep(0.01)
        cpu_r0 = _cpu_of_redis(nodes)
        cpu_a0 = sum(a.cpu() for a in aggs)
        t_start = time.perf_counter()
        head = meta_sums(r, keys, ["applied"])["applied"]
        bar = tqdm(total=len(events), unit="ev", desc="aggregated", mininterval=0.5, file=sys.stderr)
        done = 0
        deadline = time.monotonic() + args.timeout
        while done < len(events):
            for a in aggs:
                a.check()
            now_done = meta_sums(r, keys, ["applied"])["applied"]
            bar.update(now_done - done)
            done = now_done
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done:,} of {len(events):,} aggregated")
            time.sleep(0.05)
        t_done = time.perf_counter()
        bar.close()
        cpu_a = sum(a.cpu() for a in aggs) - cpu_a0
        cpu_r = _cpu_of_redis(nodes) - cpu_r0
    finally:
        for a in aggs:
            a.stop()
    wall = t_done - t_start
    n = len(events) - head
    out = {"label": label, "k": k, "aggs": n_aggs, "rate": n / wall, "events": n, "wall": wall, "agg_cpu": cpu_a,
           "redis_cpu": cpu_r, "load_after": _loadavg()}
    print(f"aggregated {n:,} in {wall:.1f}s = {out['rate']:,.0f} ev/s (from every aggregator connected, "
          f"{head:,} applied before); aggregator CPU {cpu_a:.1f}s ({n / max(cpu_a, 1e-9):,.0f} ev per "
          f"CPU-second), Redis CPU {cpu_r:.1f}s; load average after {out['load_after']}", flush=True)
    return out


def run_partitions(args: argparse.Namespace, r: Any, events: list[bytes]) -> list[dict[str, Any]]:
    counts = [int(x) for x in args.aggregators.split(",")]
    rows = [run_partitioned("single Redis, one stream (K=1)", args.redis_url, r, [r], events, 1, 1, args, False)]
    for n in counts:
        rows.append(run_partitioned("single Redis", args.redis_url, r, [r], events, args.partitions, n, args, False))
    flush(r)
    if not args.no_cluster:
        from redis.cluster import RedisCluster
        from data.redis_conn import start_local_cluster, stop_local_cluster
        procs, url, dirs = start_local_cluster()
        try:
            rc = RedisCluster.from_url(url)
            nodes = [redis.Redis(host=n.host, port=n.port) for n in rc.get_primaries()]
            for n in counts:
                rows.append(run_partitioned("Redis Cluster, 3 masters", url, rc, nodes, events, args.partitions, n,
                                            args, True))
        finally:
            stop_local_cluster(procs, dirs)
    print(f"\n== summary (c): {len(events):,} events already in the streams, aggregators started after")
    print(table(["Redis", "K", "aggregators", "aggregated ev/s", "wall s", "agg CPU s", "ev per agg CPU-s",
                 "Redis CPU s", "load after"],
                [[o["label"], o["k"], o["aggs"], f"{o['rate']:,.0f}", f"{o['wall']:.1f}", f"{o['agg_cpu']:.1f}",
                  f"{o['events'] / max(o['agg_cpu'], 1e-9):,.0f}", f"{o['redis_cpu']:.1f}", o["load_after"]]
                 for o in rows]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000, help="events per POST / per XADD pipeline")
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP client threads")
    ap.add_argument("--rate", type=float, default=200.0, help="simulated events/s (sets the history span)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("--agg-batch", type=int, help="QMS_AGGREGATOR_BATCH for the aggregator (default: settings)")
    ap.add_argument("--agg-batch-max", type=int, help="QMS_AGGREGATOR_BATCH_MAX for the aggregator (default: settings)")
    ap.add_argument("--only", choices=("http", "stream", "partitions"))
    ap.add_argument("--partitions", type=int, default=2, help="(c): K partitions")
    ap.add_argument("--aggregators", default="1,2", help="(c): aggregator process counts to measure")
    ap.add_argument("--no-cluster", action="store_true", help="(c): only the single Redis")
    ap.add_argument("--sequential", action="store_true", help="start the aggregator after ingest completes")
    ap.add_argument("--timeout", type=float, default=3600.0, help="max seconds to wait for aggregation")
    ap.add_argument("--keep", action="store_true", help="do not FLUSHDB at the end")
    args = ap.parse_args()

    exit_on_sigterm()
    r = connect(args.redis_url)
    print_machine(r)
    flush(r)
    events = generate(args.events, args.rate, args.seed)
    results = []
    if args.only in (None, "http"):
        results.append(run_http(args, r, events))
    if args.only in (None, "stream"):
        results.append(run_stream(args, r, events))
    if args.only in (None, "partitions"):
        run_partitions(args, r, events)
        if args.only == "partitions":
            if not args.keep:
                flush(r)
            return

    mode = "sequential (aggregator started after ingest)" if args.sequential else "concurrent"
    print(f"\n== summary: {args.events:,} events, batch {args.batch}, {args.clients} HTTP clients, "
          f"one aggregator, {mode}")
    rows = []
    for o in results:
        rows.append([o["path"], f"{o['events']:,}", f"{o['ingest_rate']:,.0f}", f"{o['agg_rate']:,.0f}",
                     f"{o['agg_rate'] / max(o['ingest_rate'], 1e-9):.2f}", f"{o['agg_s']:.1f}", f"{o['agg_cpu']:.1f}",
                     f"{o['events'] / max(o['agg_cpu'], 1e-9):,.0f}", f"{o['redis_cpu']:.1f}", human(o["db_bytes"]),
                     "yes" if o["agg_rate"] >= TARGET else "NO"])
    print(table(["path", "events", "ingest ev/s", "aggregated ev/s", "agg/ingest", "agg wall s", "agg CPU s",
                 "ev per agg CPU-s", "Redis CPU s", "db memory", f">= {TARGET // 1000}k/s"], rows))
    if not args.keep:
        flush(r)


if __name__ == "__main__":
    main()
