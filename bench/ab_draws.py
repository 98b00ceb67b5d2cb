"""Cold page draws of two checkouts, interleaved draw by draw: what a change did to a page's
draw CPU on a machine whose speed drifts more between runs than the change is worth.

    .venv/bin/python bench/ab_draws.py --base /tmp/base --redis-url redis://127.0.0.1:6379/12
        [--rounds 2] [--dashboards executive,operational,qa,developer] [--new-runs N]

Two worker processes, one per checkout (this one and --base, e.g. `git worktree add --detach
/tmp/base <commit>` with a .venv), draw the same pages in turn — every dashboard of
bench/profile_draws.py at every timeframe and scope, each from a new data version with no
cached body or source — the base first on even rounds, this checkout first on odd ones. Prints
the mean and median CPU ms (time.process_time around `fill`) of each side, per dashboard and in
all. The history must be in the database (bench/profile_draws.py without --skip-fill writes it).
With --new-runs N, N gate runs stamped now are ingested and aggregated (here, untimed) before
each page is drawn by both sides: as under live ingest, the newest minutes' runs are new at
every draw, where a bare new version leaves every event as it was.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
# The pages profile_draws draws, and its cache flush: bench modules that import no app module,
# so each worker still imports the app from its own checkout.
from bench.pages import flush_cache  # noqa: E402
from bench.profile_draws import ROLES, SCOPES, TIMEFRAMES  # noqa: E402


def worker(root: str, url: str) -> None:
    """Draw the pages asked on stdin (JSON [dashboard, view]) with the code of `root`; answer
    each with its CPU ms on stdout."""
    sys.path.insert(0, root)
    os.chdir(root)
    os.environ.setdefault("QMS_LOG_LEVEL", "WARNING")
    import redis
    import callbacks.dashboard as board
    from auth.principal import Principal
    from factory import create_app
    from settings import Settings
    r = redis.Redis.from_url(url)
    app = create_app(Settings.from_env({}, redis_url=url, run_aggregator=False, demo=False,
                                       data_dir=tempfile.mkdtemp(prefix="bench-ab-"), body_cache_s=0))
    svc = app.server.extensions["qms"]
    user = {"developer": "diana.ivanova"}
    pages: dict[str, Any] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        dash_id, view = json.loads(line)
        if dash_id not in pages:
            roles = ROLES[dash_id]
            principal = Principal(user.get(dash_id, f"bench-{dash_id}"), roles, svc.rbac.permissions_for(roles))
            defn = svc.dashboards.get(dash_id, principal).dashboard
            pages[dash_id] = (defn, [w.id for w in defn.widgets], principal)
        defn, ids, principal = pages[dash_id]
        flush_cache(r)
        with app.server.test_request_context("/"):
            board.bodies_cache().clear()
            t = time.process_time()
            out = board.fill(defn, ids, view, principal, "light")
            ms = (time.process_time() - t) * 1000
        assert len(out.bodies) == len(ids)
        print(json.dumps(ms), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="the other checkout (with its .venv)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dashboards", default=",".join(ROLES))
    ap.add_argument("--new-runs", type=int, default=0, help="gate runs ingested now before each page")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.redis_url)
    if not args.base:
        sys.exit("--base DIR: the checkout to compare with")
    import redis
    db = redis.Redis.from_url(args.redis_url).connection_pool.connection_kwargs.get("db", 0)
    if db in (14, 15):
        sys.exit("refusing database 14/15 (other benchmarks, tests)")
    sides = {}
    for name, root in (("base", Path(args.base).resolve()), ("this", HERE)):
        python = root / ".venv" / "bin" / "python"
        sides[name] = subprocess.Popen([str(python), str(Path(__file__).resolve()), "--worker", str(root),
                                        "--redis-url", args.redis_url],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert sides[name].stdout.readline().strip() == "ready", name
    for name, root in (("base", args.base), ("this", str(HERE))):
        head = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        print(f"{name}: {root} {head.stdout.strip()[:90]}")
    new_runs = _runs_maker(args.redis_url) if args.new_runs else None
    got: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
    by_tf: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
    for rnd in range(args.rounds):
        order = ("base", "this") if rnd % 2 == 0 else ("this", "base")
        for dash_id in args.dashboards.split(","):
            for tf in TIMEFRAMES:
                for scope in SCOPES:
                    if new_runs:
                        new_runs(args.new_runs)
                    for name in order:
                        p = sides[name]
                        p.stdin.write(json.dumps([dash_id, {"timeframe": tf, **scope}]) + "\n")
                        p.stdin.flush()
                        ms = json.loads(p.stdout.readline())
                        got[name].setdefault(dash_id, []).append(ms)
                        by_tf[name].setdefault(tf, []).append(ms)
    for p in sides.values():
        p.stdin.close()
        p.wait()
    for dash_id in args.dashboards.split(","):
        b, t = got["base"][dash_id], got["this"][dash_id]
        print(f"{dash_id:12s} base mean {statistics.mean(b):6.1f} median {statistics.median(b):6.1f} ms | "
              f"this mean {statistics.mean(t):6.1f} median {statistics.median(t):6.1f} ms ({len(t)} draws each)")
    print("by timeframe, mean ms base / this: " + ", ".join(
        f"{tf} {statistics.mean(by_tf['base'][tf]):.1f} / {statistics.mean(by_tf['this'][tf]):.1f}" for tf in TIMEFRAMES))
    b = [x for v in got["base"].values() for x in v]
    t = [x for v in got["this"].values() for x in v]
    print(f"all: base mean {statistics.mean(b):.1f} ms, this mean {statistics.mean(t):.1f} ms "
          f"({100 * (statistics.mean(t) / statistics.mean(b) - 1):+.1f} %), medians {statistics.median(b):.1f} / "
          f"{statistics.median(t):.1f} ms, {len(t)} cold page draws each, interleaved")


def _runs_maker(url: str) -> Any:
    """fn(n): n gate runs of a known workflow, stamped now, ingested and aggregated."""
    import redis
    from data.aggregator import Aggregator
    from data.ingest import Ingestor
    from data.keys import Keys
    from data.timeutil import fmt_ms, now_ms
    r = redis.Redis.from_url(url)
    keys = Keys.of(r, "qms")
    ing, agg = Ingestor(r, keys), Aggregator(r, keys, batch=1000)
    wf = r.hkeys(keys.state("active"))[0].decode()
    seq = [0]

    def make(n: int) -> None:
        evs = []
        for _ in range(n):
            seq[0] += 1
            evs.append({"id": f"ab-run-{os.getpid()}-{seq[0]}", "type": "workflow.quality_gate_executed",
                        "timestamp": fmt_ms(now_ms()), "source": "bench",
                        "data": {"workflow_id": wf, "gate_name": "code-coverage-gate", "passed": True,
                                 "execution_time": 1.5, "metrics": {"coverage_percentage": 81.0}}})
        ing.ingest(evs)
        agg.drain()
    return make


if __name__ == "__main__":
    main()
