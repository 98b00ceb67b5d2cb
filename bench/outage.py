"""How long a request takes, and what it answers, while Redis is unavailable.

    .venv/bin/python bench/outage.py [--requests 5]

Starts its own redis-server (never touches a shared one), builds the app on it, makes an
API token and a session, then times authenticated requests — each from a fresh client, as
API clients rarely keep cookies — with Redis paused (SIGSTOP: it accepts connections and
never answers, like an overloaded server or a dead host behind a live proxy) and stopped
(connections refused). Prints status, content type and time per case.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import tempfile
import time

from _common import ROOT  # noqa: F401  (puts the repository first on sys.path)

import redis

from data.redis_conn import find_redis_server
from settings import Settings

CALLS = [("GET", "/api/dashboard/executive"), ("GET", "/api/metrics/gate_pass_rate/series?timeframe=24h"),
         ("GET", "/api/alerts")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5, help="requests per endpoint and case")
    args = ap.parse_args()
    from factory import create_app
    workdir = tempfile.mkdtemp(prefix="qms-outage-")
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([find_redis_server() or "redis-server", "--port", str(port), "--save", "",
                             "--dir", workdir], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.025)
    try:
        app = create_app(Settings.from_env({}, redis_url=url, run_aggregator=False, demo=False,
                                           secret_key="k" * 48, data_dir=workdir))
        app.server.logger.setLevel(logging.CRITICAL)       # one "redis error" line per request otherwise
        svc = app.server.extensions["qms"]
        svc.users.add("bench", ["admin"], "correct horse battery")
        token = svc.tokens.create("bench", ["admin"], "bench")[1]
        headers = {"Authorization": f"Bearer {token}"}
        s = svc.settings
        print(f"client: connect timeout {s.redis_connect_timeout_s:g} s, read timeout {s.redis_socket_timeout_s:g} s")
        print(f"{'Redis':<8} {'request':<52} {'answer':<28} {'median':>8} {'max':>8}")
        for case in ("paused", "stopped"):
            if case == "paused":
                os.kill(proc.pid, signal.SIGSTOP)
            else:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()
            for method, path in CALLS:
                times, answers = [], set()
                for _ in range(args.requests):
                    client = app.server.test_client()
                    t0 = time.monotonic()
                    res = client.open(path, method=method, headers=headers)
                    times.append(time.monotonic() - t0)
                    answers.add(f"{res.status_code} {res.mimetype}")
                print(f"{case:<8} {method + ' ' + path:<52} {', '.join(sorted(answers)):<28} "
                      f"{statistics.median(times):>7.3f}s {max(times):>7.3f}s")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()


if __name__ == "__main__":
    main()
