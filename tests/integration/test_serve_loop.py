"""`cli.py serve` runs on gevent: its aggregator thread and the demo's simulator are greenlets
on the loop that answers every page. A stretch of computation between two waits on I/O holds
every request (bench/serve_stalls.py: GET /login p95 ~110 ms, max ~140–270 ms during `./run`'s
backfill). Under gevent those workers pause for the loop while they compute; elsewhere (the
`cli.py aggregate` process, Werkzeug's threads) they do not.

Each check runs in a child process patched as `cli.py serve` patches itself. A greenlet that
only yields (`ticker`) counts how often it ran *inside* a stretch of pure computation: a
batch's entity folds, its parse, a simulated hour's events (with an ingest that does no I/O).
Without pauses it can never run there; no time is measured.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys
from data.services import Services
from data.workers import embedded_aggregator
from settings import Settings
from tests.helpers import busy_events
from tests.loop_ticker import Ticker

url, data_dir = sys.argv[1], sys.argv[2]
settings = Settings.from_env({}, redis_url=url, run_aggregator=True, demo=False, secret_key="k" * 48,
                             data_dir=data_dir)
svc = Services.build(settings)
r = svc.redis
r.flushdb()
START = 1_793_779_200_000      # 2026-11-04T08:00Z: a working morning (tests.helpers.busy_events)
events = busy_events(2, START + 2 * 3_600_000, seed=5, rate=2.0)
svc.ingestor.ingest(events, origin="test")

tick = Ticker("parse", "_entities", "simulate", "validate")
inside = tick.inside
agg = embedded_aggregator(svc)
tick.watch(agg, "parse")
tick.watch(agg, "_entities")
tick.start()
agg.drain(120)
applied = int(r.hget(svc.keys.meta, "applied") or 0)

# The demo's simulator as start_demo runs it, with an ingest that does no I/O and no cursor
# writes: only the generation of 3 hours of events runs between its start and its end.
import data.workers as workers
orig = workers.simulate_into
demo = {"sent": 0}
def count(batch):
    demo["sent"] += len(batch)
def captured(ingest, **kw):
    demo["pause"] = kw.get("pause") is not None
    demo["chunk"] = kw.get("chunk")
    inside["simulate"] = True
    try:
        return orig(count, **{**kw, "live": False, "on_cursor": None})
    finally:
        inside["simulate"] = False
workers.simulate_into = captured
svc.settings = settings.replace(demo=True, demo_backfill="3h", demo_rate=2.0, demo_seed=3)
workers.start_demo(svc).thread.join(120)

# One request's worth of events through the ingest (as POST /api/events hands them over): the
# flag is up from the first event's validation until the ingest's script goes to Redis.
import data.ingest as ingest_mod
orig_check = ingest_mod.check_item
def check(*a, **kw):
    inside["validate"] = True
    return orig_check(*a, **kw)
ingest_mod.check_item = check
orig_script = svc.ingestor._script
def script(*a, **kw):
    inside["validate"] = False
    return orig_script(*a, **kw)
svc.ingestor._script = script
more = busy_events(3, START + 27 * 3_600_000, seed=6, rate=2.0)[:5000]
ingested = svc.ingestor.ingest(more, origin="test").accepted
inside["validate"] = False
tick.stop()
print(json.dumps({"events": len(events), "applied": applied, "ran": tick.ran, "demo": demo, "ingested": ingested,
                  "ingest_paused": getattr(svc.ingestor, "pause", None) is not None,
                  "paused": getattr(agg, "pause", None) is not None}))
"""


def _child(redis_url: str, tmp_path: Any) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, redis_url, str(tmp_path / "data")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loop001_embedded_workers_pause_for_the_pages_under_gevent(redis_url: str, r: Any, tmp_path: Any) -> None:
    got = _child(redis_url, tmp_path)
    assert got["applied"] == got["events"] > 1000, got
    # The aggregator computed batches of 2000: other greenlets ran in the middle of its parse
    # and of its entity folds, not only at its Redis round trips.
    assert got["ran"]["parse"] > 0, got
    assert got["ran"]["_entities"] > 0, got
    # The demo's simulator generating 3 hours of events (its ingest does no I/O), in chunks of
    # 500 for the ingest, which validates a chunk at once.
    assert got["demo"]["sent"] > 1000, got
    assert got["ran"]["simulate"] > 0, got
    assert got["demo"]["pause"] and got["demo"]["chunk"] == 500, got
    # The ingest validating one request of 5000 events (a request may carry 10,000).
    assert got["ingested"] == 5000, got
    assert got["ran"]["validate"] > 0, got
    assert got["ingest_paused"], got
    assert got["paused"], "the web process's aggregator under gevent has a pause"


def test_loop002_no_pause_outside_gevent(settings: Any, r: Any) -> None:
    """`cli.py aggregate` and Werkzeug's threads: nothing to give way to, no pause (the
    aggregator process's own loops and the ingest stay as they are)."""
    from data.aggregator import Aggregator
    from data.services import Services
    from data.workers import embedded_aggregator
    svc = Services.build(settings)
    assert embedded_aggregator(svc).pause is None
    assert Aggregator.from_settings(svc.redis, settings).pause is None
    assert svc.ingestor.pause is None


# Both children below: a process patched as `cli.py serve` patches itself, with a fixed morning a
# month back applied, its raw events kept (retention 10 years) and past the 48 h hot window.
APPLIED_MORNING = r"""
from gevent import monkey
monkey.patch_all()
import json, sys
from data.aggregator import Aggregator
from data.services import Services
from settings import Settings
from tests.helpers import busy_events
from tests.loop_ticker import Ticker

url, data_dir = sys.argv[1], sys.argv[2]
settings = Settings.from_env({}, redis_url=url, run_aggregator=True, demo=False, secret_key="k" * 48,
                             data_dir=data_dir, raw_retention_days=3650)
svc = Services.build(settings)
r = svc.redis
r.flushdb()
START = 1_793_779_200_000      # 2026-11-04T08:00Z
events = busy_events(4, START + 4 * 3_600_000, seed=5, rate=2.0)
svc.ingestor.ingest(events, origin="test")
Aggregator.from_settings(r, settings).drain(120)
"""

ARCHIVER_CHILD = APPLIED_MORNING + r"""
from data import archive_move
from data.workers import off_loop_runner

tick = Ticker("write")
tick.watch(archive_move, "_write_part", "write")     # a part written: pyarrow, no Redis
keys, arch = archive_move.from_settings(r, settings)
runner = off_loop_runner(svc)
once = lambda client: archive_move.move(client, keys, arch, hot_hours=48, retention_days=3650)
tick.start()
report = once(r) if runner is None else runner(once)
tick.stop()
print(json.dumps({"events": len(events), "written": report.written, "ran": tick.ran, "off_loop": runner is not None,
                  "archived": sum(1 for _ in arch.base.rglob("*.parquet"))}))
"""


def test_loop003_the_embedded_archiver_moves_off_the_loop(redis_url: str, r: Any, tmp_path: Any) -> None:
    """A move writes Parquet (pyarrow) and checks it (DuckDB): `./run`'s first move of its
    history held the server's loop 1.2 s. Under gevent each move runs on a native thread with
    a Redis client of its own; a request waiting on its socket is served while the part is
    written."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", ARCHIVER_CHILD, redis_url, str(tmp_path / "data")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["off_loop"], got
    assert got["written"] == got["events"] > 1000, got
    assert got["archived"] >= 1, got
    assert got["ran"]["write"] > 0, got


VIEWS_CHILD = APPLIED_MORNING + r"""
from data import gate_chunks, rawstore, views
from dashboards.computed import GATE_TYPES, REVIEW_DONE

tick = Ticker("parse", "collaboration", "digest")
tick.watch(rawstore, "_parsed", "parse")            # bodies read: parsed, no I/O
tick.watch(views, "collaboration")
tick.watch(gate_chunks, "digest")
tick.start()
runs, _ = rawstore.window(r, svc.keys, GATE_TYPES, START, START + 4 * 3_600_000, 50_000)
reviews, _ = rawstore.window(r, svc.keys, (REVIEW_DONE,), START, START + 4 * 3_600_000, 50_000)
# The heavier halves of team collaboration and code quality over many windows' worth of rows.
evs = [ev for _, _, ev in reviews] * 20
team_rows, _ = views.collaboration(evs, {}, {})
digested = gate_chunks.digest([(ts, ev) for ts, _, ev in runs] * 20, {}, START + 4 * 3_600_000)
tick.stop()
print(json.dumps({"runs": len(runs), "reviews": len(reviews), "counted": sum(row["reviews"] for row in team_rows),
                  "ran": tick.ran}))
"""


def test_loop004_a_computed_view_s_long_loops_give_way_under_gevent(redis_url: str, r: Any, tmp_path: Any) -> None:
    """Team collaboration and code quality read up to 50,000 raw events of their window and
    fold them in Python: gevent's monitor caught them holding `cli.py serve`'s loop, up to ~250 ms
    while pages were drawn (bench/serve_stalls.py --mode draws). Under gevent the parse of the
    bodies read and the two folds give way to the loop."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", VIEWS_CHILD, redis_url, str(tmp_path / "data")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runs"] > 1000 and got["reviews"] > 300, got
    assert got["counted"] == 20 * got["reviews"], got
    assert got["ran"]["parse"] > 0, got
    assert got["ran"]["collaboration"] > 0, got
    assert got["ran"]["digest"] > 0, got


GC_CHILD = r"""
import gc, json, sys
from settings import Settings
from tests.helpers import make_app

url, data_dir = sys.argv[1], sys.argv[2]
make_app(Settings.from_env({}, redis_url=url, run_aggregator=False, demo=False, live=False, alerts=False,
                           secret_key="k" * 48, data_dir=data_dir))
full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)
# What one computed view holds while it folds its window: 50,000 parsed events, alive until done.
for _ in range(3):
    window = [{"id": f"e{i}", "type": "review_completed", "timestamp": "2026-11-04T08:00:00Z",
               "data": {"workflow_id": f"wf{i % 900}", "reviewer": "ana", "metrics": {"x": [i]}}}
              for i in range(50_000)]
    del window
print(json.dumps({"full_collections": len(full), "threshold": gc.get_threshold()}))
"""


def test_loop005_a_request_s_transient_objects_start_no_full_collection(redis_url: str, r: Any,
                                                                        tmp_path: Any) -> None:
    """A computed view holds up to 50,000 parsed events while it folds them. With Python's
    collector thresholds (700, 10, 10) those young objects were promoted until a full
    collection ran over the whole heap, collecting nothing: 55 of them in 40 s of
    `bench/serve_stalls.py --mode draws`, 40–94 ms each, with the loop held. The web process
    now collects with factory.GC_THRESHOLD: none while a request's objects are alive."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", GC_CHILD, redis_url, str(tmp_path / "data")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["full_collections"] == 0, got
