"""Where a cold page draw's CPU goes: the four role dashboards drawn whole, in-process, for
every timeframe and a mix of scopes, each from a new data version with no cached body or
source — what the 500-user load test's draws cost the web workers (bench/load).

    .venv/bin/python bench/profile_draws.py --redis-url redis://127.0.0.1:6379/12 [--hours 4]
        [--history-rate 2] [--reps 2] [--profile out.pstats] [--skip-fill] [--top 25] [--by-widget]

Prints CPU ms per page (time.process_time, the `fill` the page's layout and its refresh
call) and its Redis round trips (a command or a pipeline), per dashboard, and with --profile
the cumulative share of the hot functions.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import connect, load_simulated, print_machine  # noqa: E402
from bench.pages import flush_cache  # noqa: E402

ROLES = {"executive": ("executive",), "operational": ("operations",), "qa": ("qa_lead",),
         "developer": ("developer",)}
TIMEFRAMES = ("1h", "4h", "24h", "7d", "30d")
SCOPES: list[dict[str, str]] = [{}, {"repository": "payments-service"}, {"team": "platform"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--history-rate", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=2, help="cold draws of each page")
    ap.add_argument("--skip-fill", action="store_true", help="the history already in the database")
    ap.add_argument("--profile", help="write cProfile stats of the draws here and print the top")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--dashboards", default=",".join(ROLES))
    ap.add_argument("--by-widget", action="store_true", help="also the CPU split by widget type")
    ap.add_argument("--filter-sweep", type=int, default=0, metavar="N",
                    help="instead: each page at each timeframe filtered to N repositories and N teams in "
                         "turn, bodies and sources kept between them (one data version): what the filters "
                         "of a page's viewers cost together")
    args = ap.parse_args()

    os.environ.setdefault("QMS_LOG_LEVEL", "WARNING")
    r = connect(args.redis_url)
    if r.connection_pool.connection_kwargs.get("db", 0) in (14, 15):
        sys.exit("refusing database 14/15 (other benchmarks, tests)")
    print_machine(r)
    if not args.skip_fill:      # the load test's history: 4 h at 2 events/s
        t = time.time()
        events = load_simulated(r, args.hours, args.history_rate)
        print(f"history: {len(events):,} events over {args.hours:g} h in {time.time() - t:.1f} s", flush=True)

    import callbacks.dashboard as board
    from auth.principal import Principal
    from factory import create_app
    from settings import Settings

    settings = Settings.from_env({}, redis_url=args.redis_url, run_aggregator=False, demo=False,
                                 data_dir=tempfile.mkdtemp(prefix="bench-draws-"), body_cache_s=0)
    app = create_app(settings)
    svc = app.server.extensions["qms"]
    user = {"developer": "diana.ivanova"}
    prof = cProfile.Profile() if args.profile else None
    # Redis round trips of the draws: a command, or a pipeline, is one write to the socket.
    import redis.connection
    trips = [0, False]
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        if trips[1]:
            trips[0] += 1
        return send(self, command, check_health)
    redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    per_dash: dict[str, list[float]] = {}
    per_trips: dict[str, int] = {}
    by_type: dict[str, float] = {}
    if args.by_widget:                   # each widget's draw (sources, render, keeping) timed
        plain_draw = board._draw

        def timed(widget: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.process_time()
            try:
                return plain_draw(widget, *a, **kw)
            finally:
                by_type[widget.type] = by_type.get(widget.type, 0.0) + time.process_time() - t0
        board._draw = timed
    if args.filter_sweep:
        sweep(app, r, board, Principal, args)
        return
    for dash_id in args.dashboards.split(","):
        roles = ROLES[dash_id]
        principal = Principal(user.get(dash_id, f"bench-{dash_id}"), roles, svc.rbac.permissions_for(roles))
        found = svc.dashboards.get(dash_id, principal)
        assert found is not None, dash_id
        defn = found.dashboard
        ids = [w.id for w in defn.widgets]
        times: list[float] = []
        for tf in TIMEFRAMES:
            for scope in SCOPES:
                view = {"timeframe": tf, **scope}
                for _ in range(args.reps):
                    flush_cache(r)
                    with app.server.test_request_context("/"):
                        board.bodies_cache().clear()
                        t = time.process_time()
                        trips[1] = True
                        if prof:
                            prof.enable()
                        out = board.fill(defn, ids, view, principal, "light")
                        if prof:
                            prof.disable()
                        times.append((time.process_time() - t) * 1000)
                        trips[1] = False
                    assert len(out.bodies) == len(ids)
        per_dash[dash_id] = times
        per_trips[dash_id], trips[0] = trips[0], 0
        print(f"{dash_id:12s} {len(ids):2d} widgets: cold page draw CPU median {statistics.median(times):6.1f} ms, "
              f"mean {statistics.mean(times):6.1f}, max {max(times):6.1f} ({len(times)} draws); "
              f"{per_trips[dash_id] / len(times):.0f} Redis round trips a draw", flush=True)
    every = [t for ts in per_dash.values() for t in ts]
    print(f"all: mean {statistics.mean(every):.1f} ms per cold page draw over {len(every)} draws, "
          f"{sum(per_trips.values()) / len(every):.0f} Redis round trips a draw", flush=True)
    if by_type:
        total = sum(by_type.values())
        print("by widget type, share of the widgets' draw CPU: " + ", ".join(
            f"{t} {100 * v / total:.1f} %" for t, v in sorted(by_type.items(), key=lambda kv: -kv[1])), flush=True)
    if prof:
        prof.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(args.top)


def sweep(app: Any, r: Any, board: Any, principal_cls: Any, args: Any) -> None:
    """--filter-sweep: per page and timeframe, a cold cache, then the page filtered to each of N
    repositories and N teams in turn (as many viewers' filters would ask it): CPU and bodies drawn."""
    svc = app.server.extensions["qms"]
    names = svc.engine.names()
    scopes = ([{"repository": v} for v in sorted(names["repositories"])[:args.filter_sweep]]
              + [{"team": v} for v in sorted(names["teams"])[:args.filter_sweep]])
    drawn = [0]
    plain = board.renderer.render

    def counted(widget: Any, *a: Any, **kw: Any) -> Any:
        drawn[0] += 1
        return plain(widget, *a, **kw)
    board.renderer.render = counted
    print(f"filters: {len(scopes)} ({args.filter_sweep} repositories, {args.filter_sweep} teams) per page and timeframe")
    total_cpu, total_drawn, total_bodies = 0.0, 0, 0
    for dash_id in args.dashboards.split(","):
        if dash_id == "developer":
            continue                      # no filter on the developers' own page
        roles = ROLES[dash_id]
        principal = principal_cls(f"bench-{dash_id}", roles, svc.rbac.permissions_for(roles))
        defn = svc.dashboards.get(dash_id, principal).dashboard
        ids = [w.id for w in defn.widgets]
        cpu, n0 = 0.0, drawn[0]
        for tf in TIMEFRAMES:
            flush_cache(r)
            with app.server.test_request_context("/"):
                board.bodies_cache().clear()
            for scope in scopes:
                with app.server.test_request_context("/"):
                    t = time.process_time()
                    board.fill(defn, ids, {"timeframe": tf, **scope}, principal, "light")
                    cpu += time.process_time() - t
        bodies = len(ids) * len(TIMEFRAMES) * len(scopes)
        print(f"{dash_id:12s} {len(ids):2d} widgets x {len(TIMEFRAMES)} timeframes x {len(scopes)} filters: "
              f"CPU {cpu:6.2f} s, bodies drawn {drawn[0] - n0:,} of {bodies:,}", flush=True)
        total_cpu, total_drawn, total_bodies = total_cpu + cpu, total_drawn + drawn[0] - n0, total_bodies + bodies
    print(f"all: CPU {total_cpu:.2f} s, bodies drawn {total_drawn:,} of {total_bodies:,}")


if __name__ == "__main__":
    main()
