"""How long `cli.py serve`'s loop is held by the work it runs beside the pages.

    python bench/serve_stalls.py [--mode demo|backlog|ingest] [--seconds 60] [--events 100000]
                                 [--post-batch 3000] [--interval 0.02] [--set QMS_NAME=VALUE ...]
                                 [--redis-url redis://127.0.0.1:6379/14]

`cli.py serve` runs on gevent: one loop serves every connection, and the web process's own
workers (the aggregator thread of QMS_RUN_AGGREGATOR, the demo's simulator, the live
publisher) are greenlets on that same loop. Whatever one of them computes between two waits
on I/O, no page is answered. This bench starts the server as a user would and asks it for
`GET /login` (a page that reads nothing: its time is the loop's availability) every
--interval s from one client, for --seconds:
- `--mode demo`: `cli.py serve --demo` on a flushed database, as `./run` does: the simulator
  fills 3 days of history (QMS_DEMO_BACKFILL) while the aggregator applies it, then goes live;
- `--mode backlog`: --events simulated events waiting in the stream (as the ingest writes
  them), then `cli.py serve` (no demo) and its aggregator catching up — a small deployment
  restarted after a pause;
- `--mode ingest`: `cli.py serve` without its aggregator (QMS_RUN_AGGREGATOR=0) while one
  producer POSTs --events to /api/events, --post-batch a request, one request after another
  (a request's body may be up to 1 MiB, QMS_MAX_BODY_BYTES: ~3,000 of these events).
Prints p50 / p95 / p99 / max and the answers over 50 and 100 ms, overall and per 10 s (and,
backlog, when the last event was applied, counted from the server's start).
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, Child, _child_env, applied, auth_headers, connect, flush, free_port,  # noqa: E402
                     generate, load_stream, pct, print_machine, table)


def wait_up(child: Child, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the server did not answer /login")


def probe(port: int, seconds: float, interval: float) -> tuple[list[tuple[float, float]], int]:
    """(seconds since the start, ms) of each 200; and how many requests failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[tuple[float, float]] = []
    failed = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        try:
            conn.request("GET", "/login")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                out.append((s - t0, (time.perf_counter() - s) * 1000))
            else:
                failed += 1
        except (OSError, http.client.HTTPException):
            conn.close()
            failed += 1
        time.sleep(interval)
    return out, failed


def watch_applied(r, n: int, t0: float, stop: threading.Event, out: dict[str, float]) -> None:
    """When `applied` reached n, in seconds since t0 (the server's start)."""
    while not stop.is_set():
        if applied(r) >= n:
            out["drained_s"] = time.perf_counter() - t0
            return
        stop.wait(0.05)


def produce(port: int, bodies: list[bytes], headers: dict[str, str], out: dict[str, Any]) -> None:
    """POST each body in turn; how many events were accepted and how long the POSTs took."""
    try:
        _produce(port, bodies, headers, out)
    except Exception as exc:      # reported by main, which fails the run
        out["error"] = repr(exc)


def _produce(port: int, bodies: list[bytes], headers: dict[str, str], out: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    accepted = 0
    for body in bodies:
        conn.request("POST", "/api/events", body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 202:
            raise RuntimeError(f"POST /api/events answered {resp.status}: {payload[:300]!r}")
        accepted += int(orjson.loads(payload)["accepted"])
    out["post_s"] = time.perf_counter() - t0
    out["accepted"] = accepted


def row(label: str, ms: list[float]) -> list[str]:
    s = sorted(ms)
    return [label, str(len(s)), f"{pct(s, 50):.1f}", f"{pct(s, 95):.1f}", f"{pct(s, 99):.1f}",
            f"{max(s) if s else float('nan'):.1f}", str(sum(1 for x in s if x > 50)), str(sum(1 for x in s if x > 100))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("demo", "backlog", "ingest"), default="demo")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--events", type=int, default=100_000, help="--mode backlog: events waiting in the stream")
    ap.add_argument("--post-batch", type=int, default=3000, help="--mode ingest: events a request")
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--set", action="append", default=[], metavar="QMS_NAME=VALUE",
                    help="a setting of the server (e.g. QMS_ARCHIVE_INTERVAL_S=30: the embedded archiver's "
                         "first move, of the demo's oldest day, within the probe)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = ap.parse_args()
    r = connect(args.redis_url)
    print_machine(r)
    flush(r)
    if args.mode == "backlog":
        load_stream(r, generate(args.events, 200.0), as_ingest=True)
    bodies: list[bytes] = []
    headers: dict[str, str] = {}
    if args.mode == "ingest":
        events = generate(args.events, 200.0)
        bodies = [b"\n".join(events[i:i + args.post_batch]) for i in range(0, len(events), args.post_batch)]
        headers = {"Content-Type": "application/x-ndjson", **auth_headers(r, ("producer",))}
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="bench-stalls-")
    cmd = [sys.executable, str(ROOT / "cli.py"), "serve"] + (["--demo"] if args.mode == "demo" else [])
    t0 = time.perf_counter()
    env = {"QMS_PORT": str(port), "QMS_SECRET_KEY": "bench-serve-stalls", "QMS_DATA_DIR": data_dir}
    if args.mode == "ingest":
        env["QMS_RUN_AGGREGATOR"] = "0"
    for kv in args.set:
        name, _, value = kv.partition("=")
        if not name.startswith("QMS_"):
            raise SystemExit(f"--set {kv}: a QMS_ setting")
        env[name] = value
    server = Child("serve", cmd, _child_env(args.redis_url, env))
    drain: dict[str, Any] = {}
    stop = threading.Event()
    if args.mode == "backlog":
        threading.Thread(target=watch_applied, args=(connect(args.redis_url), args.events, t0, stop, drain),
                         daemon=True).start()
    try:
        wait_up(server, port)
        if args.mode == "ingest":
            threading.Thread(target=produce, args=(port, bodies, headers, drain), daemon=True).start()
        cpu0 = server.cpu()
        got, failed = probe(port, args.seconds, args.interval)
        cpu = server.cpu() - cpu0
        done = applied(r)
    finally:
        stop.set()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        flush(r)
    if "error" in drain:
        raise SystemExit(f"the producer failed: {drain['error']}")
    print(f"cli.py serve{' --demo' if args.mode == 'demo' else ''}: {len(got)} answers to GET /login in "
          f"{args.seconds:g} s, {failed} failed; the server used {cpu:.1f} s of CPU; {done:,} events applied"
          + (f" of {args.events:,}" if args.mode == "backlog" else "")
          + (f", all of them {drain['drained_s']:.1f} s after the server was started" if "drained_s" in drain else "")
          + (f"; {drain['accepted']:,} events POSTed, {args.post_batch:,} a request, in {drain['post_s']:.1f} s"
             if "post_s" in drain else ""))
    rows = [row("all", [ms for _, ms in got])]
    for lo in range(0, int(args.seconds), 10):
        rows.append(row(f"{lo}-{lo + 10} s", [ms for t, ms in got if lo <= t < lo + 10]))
    print(table(["window", "answers", "p50 ms", "p95", "p99", "max", "> 50 ms", "> 100 ms"], rows))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
