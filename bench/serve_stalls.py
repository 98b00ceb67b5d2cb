"""How long `cli.py serve`'s loop is held by the work it runs beside the pages.

    python bench/serve_stalls.py [--mode demo|backlog|ingest|draws] [--seconds 60] [--events 100000]
                                 [--post-batch 3000] [--interval 0.02] [--set QMS_NAME=VALUE ...]
                                 [--server-log PATH]
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
- `--mode draws`: `cli.py serve --demo` once its history is applied (the aggregator's backlog
  0), bodies kept per data version only (QMS_BODY_CACHE_S=0), while one signed-in admin asks
  for the four role dashboards drawn whole (`GET /_dash-layout`, as a browser opening
  /dashboards/<name>?timeframe=X does), one after another, cycling timeframes: every draw
  cold, as at a page's first visit after new data.
Prints p50 / p95 / p99 / max and the answers over 50 and 100 ms, overall and per 10 s (and,
backlog, when the last event was applied, counted from the server's start; draws, how many
pages were drawn and how long each took).
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


DASHBOARDS = ("executive", "operational", "qa", "developer")
TIMEFRAMES = ("1h", "4h", "24h", "7d", "30d")


def sign_in(port: int, user: str, password: str) -> Any:
    import re

    import requests
    s = requests.Session()
    base = f"http://127.0.0.1:{port}"
    page = s.get(base + "/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    res = s.post(base + "/login", data={"username": user, "password": password,
                                        "csrf_token": token.group(1) if token else ""}, allow_redirects=False, timeout=30)
    if res.status_code != 302:
        raise RuntimeError(f"sign-in as {user}: HTTP {res.status_code}")
    return s


def demo_password(server: Child, role: str) -> tuple[str, str]:
    """The demo's sign-in of `role` as `cli.py serve --demo` prints it (role, user, password)."""
    for line in Path(server.log.name).read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == role:
            return parts[1], parts[2]
    raise RuntimeError(f"no demo sign-in for {role} in the server's output")


def wait_applied_all(port: int, timeout: float = 300.0) -> None:
    """Until the aggregator's backlog is 0 twice in a row, a second apart (the history applied)."""
    import requests
    deadline, zero = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        got = requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()
        zero = zero + 1 if got["checks"]["aggregator"].get("backlog") == 0 else 0
        if zero >= 2:
            return
        time.sleep(1.0)
    raise TimeoutError("the demo's history was not applied in time")


def draw_pages(port: int, session: Any, stop: threading.Event, out: list[tuple[str, float]]) -> None:
    """Whole dashboards drawn one after another until stopped: (dashboard/timeframe, ms) each."""
    base = f"http://127.0.0.1:{port}"
    i = 0
    while not stop.is_set():
        dash, tf = DASHBOARDS[i % len(DASHBOARDS)], TIMEFRAMES[(i // len(DASHBOARDS)) % len(TIMEFRAMES)]
        i += 1
        s = time.perf_counter()
        res = session.get(base + "/_dash-layout", headers={"Referer": f"{base}/dashboards/{dash}?timeframe={tf}"},
                          timeout=120)
        if res.status_code != 200 or dash not in res.text:
            raise RuntimeError(f"{dash} {tf}: HTTP {res.status_code}")
        out.append((f"{dash}/{tf}", (time.perf_counter() - s) * 1000))


def row(label: str, ms: list[float]) -> list[str]:
    s = sorted(ms)
    return [label, str(len(s)), f"{pct(s, 50):.1f}", f"{pct(s, 95):.1f}", f"{pct(s, 99):.1f}",
            f"{max(s) if s else float('nan'):.1f}", str(sum(1 for x in s if x > 50)), str(sum(1 for x in s if x > 100))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("demo", "backlog", "ingest", "draws"), default="demo")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--events", type=int, default=100_000, help="--mode backlog: events waiting in the stream")
    ap.add_argument("--post-batch", type=int, default=3000, help="--mode ingest: events a request")
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--set", action="append", default=[], metavar="QMS_NAME=VALUE",
                    help="a setting of the server (e.g. QMS_ARCHIVE_INTERVAL_S=30: the embedded archiver's "
                         "first move, of the demo's oldest day, within the probe)")
    ap.add_argument("--server-log", metavar="PATH",
                    help="keep the server's output there (e.g. with GEVENT_MONITOR_THREAD_ENABLE=1 "
                         "GEVENT_MAX_BLOCKING_TIME=0.05 in the environment: what held the loop, and where)")
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
    demo = args.mode in ("demo", "draws")
    cmd = [sys.executable, str(ROOT / "cli.py"), "serve"] + (["--demo"] if demo else [])
    t0 = time.perf_counter()
    env = {"QMS_PORT": str(port), "QMS_SECRET_KEY": "bench-serve-stalls", "QMS_DATA_DIR": data_dir}
    if args.mode == "ingest":
        env["QMS_RUN_AGGREGATOR"] = "0"
    if args.mode == "draws":
        env["QMS_BODY_CACHE_S"] = "0"
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
            threading.Thread(target=_catching, args=(produce, drain, port, bodies, headers, drain),
                             daemon=True).start()
        drawn: list[tuple[str, float]] = []
        drawer = None
        if args.mode == "draws":
            wait_applied_all(port)
            session = sign_in(port, *demo_password(server, "admin"))
            drawer = threading.Thread(target=lambda: _catching(draw_pages, drain, port, session, stop, drawn),
                                      daemon=True)
            drawer.start()
        cpu0 = server.cpu()
        got, failed = probe(port, args.seconds, args.interval)
        cpu = server.cpu() - cpu0
        stop.set()
        if drawer is not None:
            drawer.join(timeout=130)
        done = applied(r)
    finally:
        stop.set()
        if args.server_log:
            server.proc.terminate()
            server.proc.wait(15)
            shutil.copyfile(server.log.name, args.server_log)
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        flush(r)
    if "error" in drain:
        raise SystemExit(f"the producer or the drawer failed: {drain['error']}")
    print(f"cli.py serve{' --demo' if demo else ''}: {len(got)} answers to GET /login in "
          f"{args.seconds:g} s, {failed} failed; the server used {cpu:.1f} s of CPU; {done:,} events applied"
          + (f" of {args.events:,}" if args.mode == "backlog" else "")
          + (f", all of them {drain['drained_s']:.1f} s after the server was started" if "drained_s" in drain else "")
          + (f"; {drain['accepted']:,} events POSTed, {args.post_batch:,} a request, in {drain['post_s']:.1f} s"
             if "post_s" in drain else ""))
    rows = [row("all", [ms for _, ms in got])]
    for lo in range(0, int(args.seconds), 10):
        rows.append(row(f"{lo}-{lo + 10} s", [ms for t, ms in got if lo <= t < lo + 10]))
    print(table(["window", "answers", "p50 ms", "p95", "p99", "max", "> 50 ms", "> 100 ms"], rows))
    if args.mode == "draws":
        print(f"pages drawn whole (GET /_dash-layout, cold) while probing: {len(drawn)}")
        print(table(["pages", "n", "p50 ms", "p95", "p99", "max", "> 50 ms", "> 100 ms"],
                    [row("all", [ms for _, ms in drawn])]
                    + [row(d, [ms for k, ms in drawn if k.startswith(d + "/")]) for d in DASHBOARDS]))


def _catching(fn: Any, out: dict[str, Any], *args: Any) -> None:
    """fn(*args) on a thread of the bench: its failure in out["error"]."""
    try:
        fn(*args)
    except Exception as exc:      # reported by main, which fails the run
        out["error"] = repr(exc)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
