"""Background work inside the web process for the embedded default: the aggregator and
the demo simulator as daemon threads (deployments run `cli.py aggregate` instead)."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, TypeVar

from data.aggregator import Aggregator
from data.pace import Pause, loop_pause, paced
from data.timeutil import now_ms, parse_duration, to_datetime

log = logging.getLogger("qms.workers")
T = TypeVar("T")


class Worker:
    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=target, args=(self.stop_event,), name=name, daemon=True)

    def start(self) -> "Worker":
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def embedded_aggregator(services: Any) -> Aggregator:
    """The web process's aggregator. Under gevent (`cli.py serve`) its thread is a greenlet on the
    server's loop: its loops give way to the pages every ~2 ms (data.pace), and its batches stay
    at the base size (a batch grown to 8000 for a backlog would hold Redis ~2.3x as long)."""
    s = services.settings
    return Aggregator.from_settings(services.redis, s, batch_max=s.aggregator_batch, pause=loop_pause())


def start_aggregator(services: Any) -> Worker:
    return Worker("qms-aggregator", embedded_aggregator(services).run).start()


def start_archiver(services: Any) -> Worker:
    """The event archiver (data/archive_move.py) with the embedded aggregator: raw events older
    than the hot window move to Parquet every `archive_interval_s`. Under gevent (`cli.py
    serve`) each move runs on a native thread of its own (`off_loop_runner`): a first move of
    `./run`'s history held the server's loop 1.2 s."""
    from data import archive_move
    s = services.settings
    keys, arch = archive_move.from_settings(services.redis, s)
    return Worker("qms-archiver", lambda stop: archive_move.run(
        services.redis, keys, arch, hot_hours=s.raw_hot_hours, retention_days=s.raw_retention_days,
        interval_s=s.archive_interval_s, stop=stop, keep_days=s.archive_retention_days,
        runner=off_loop_runner(services))).start()


def off_loop_runner(services: Any) -> Callable[[Callable[[Any], T]], T] | None:
    """Under gevent, a runner that calls fn(client) on a native thread — the pyarrow writes,
    DuckDB checks and row building of a move, off the loop that answers the pages — with a
    Redis client made in that thread and closed after (gevent's sockets belong to the thread
    that made them); the calling greenlet waits without holding the loop. Else None (call it
    here). Not for Redis Cluster, whose client is not made again here: None."""
    from gevent import monkey
    if not monkey.is_module_patched("threading") or services.settings.redis_cluster:
        return None
    from gevent.threadpool import ThreadPool

    from data.redis_conn import client_for
    s = services.settings
    url = s.redis_url or services.embedded.url
    pool = ThreadPool(1)

    def call(fn: Callable[[Any], T]) -> T:
        def in_thread() -> T:
            client = client_for(url, connect_timeout_s=s.redis_connect_timeout_s,
                                socket_timeout_s=s.redis_socket_timeout_s)
            try:
                return fn(client)
            finally:
                client.close()
        return pool.apply(in_thread)
    return call


def start_publisher(services: Any) -> Worker:
    """Live updates: compute each new data version once and publish it (live.publisher)."""
    from live.publisher import Publisher
    pub = Publisher(services.redis, services.keys, services.engine)
    return Worker("qms-live-publisher", pub.run).start()


def simulate_into(ingest: Callable[[list[dict[str, Any]]], Any], *, rate: float, seed: int, backfill_ms: int,
                  stop: threading.Event, live: bool = True, chunk: int = 5000,
                  progress: Callable[[int], None] | None = None, epoch_ms: int | None = None,
                  resume_ms: int | None = None, on_cursor: Callable[[int], None] | None = None,
                  pause: Pause | None = None) -> int:
    """Backfill `backfill_ms` of history, then (if live) stream in real time. Returns events sent.

    With `epoch_ms`/`resume_ms` the simulation restarts from its epoch and replays, without
    sending, up to `resume_ms`: the same seed then yields the same ids and the same open
    workflows, so a restarted demo continues its history instead of adding a second one.
    """
    from data.simulator import Simulator
    start = epoch_ms if epoch_ms is not None else now_ms() - backfill_ms
    sim = Simulator(seed=seed, rate=rate, start=to_datetime(start))
    cursor = start
    if resume_ms is not None and resume_ms > start:
        while cursor < resume_ms and not stop.is_set():
            step_end = min(resume_ms, cursor + 6 * 3_600_000)
            for _ in paced(sim.events_between(to_datetime(cursor), to_datetime(step_end)), pause):
                pass
            cursor = step_end
    sent = 0
    batch: list[dict[str, Any]] = []
    while not stop.is_set():
        upto = now_ms()
        step_end = min(upto, cursor + 3_600_000)      # backfill an hour of simulated time at a time
        for ev in paced(sim.events_between(to_datetime(cursor), to_datetime(step_end)), pause):
            batch.append(ev)
            if len(batch) >= chunk:
                ingest(batch)
                sent += len(batch)
                if progress:
                    progress(len(batch))
                batch = []
        cursor = step_end
        if batch:
            ingest(batch)
            sent += len(batch)
            if progress:
                progress(len(batch))
            batch = []
        if on_cursor:
            on_cursor(cursor)
        if cursor >= upto:
            if not live:
                break
            stop.wait(1.0)
    return sent


def start_demo(services: Any) -> Worker:
    """The demo's simulated traffic. Its epoch, seed, rate and progress live in Redis, so a
    restart resumes the same simulated history rather than simulating a second one; its beat
    (the time it last wrote) tells the shell a backfill is running (data/backfill.py)."""
    s = services.settings
    r, key = services.redis, services.keys.demo

    def run(stop: threading.Event) -> None:
        try:
            state = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
            now = now_ms()
            if state and int(state["seed"]) == s.demo_seed and float(state["rate"]) == s.demo_rate:
                epoch, resume = int(state["epoch"]), int(state["cursor"])
            else:
                # New settings continue the timeline from where the old demo stopped (no overlap).
                epoch = int(state["cursor"]) if state else now - parse_duration(s.demo_backfill)
                resume = epoch
                r.hset(key, mapping={"epoch": epoch, "cursor": epoch, "seed": s.demo_seed, "rate": s.demo_rate})
            # The beat says a simulator is running (data/backfill.py: the "history still
            # loading" notice); a stopped one leaves an old beat, so no notice stays behind.
            r.hset(key, "beat", now_ms())
            if resume > epoch:
                log.info("demo: resuming the simulation of %s from %s", to_datetime(epoch), to_datetime(resume))
            # Under gevent (`cli.py serve`) the simulator shares the pages' loop: it gives way
            # while it generates, and hands the ingest (which validates a chunk at once) 500
            # events at a time rather than 5000.
            pause = loop_pause()
            n = simulate_into(lambda b: services.ingestor.ingest(b, origin="simulator"), rate=s.demo_rate,
                              seed=s.demo_seed, backfill_ms=0, stop=stop, epoch_ms=epoch, resume_ms=resume,
                              on_cursor=lambda c: r.hset(key, mapping={"cursor": c, "beat": now_ms()}),
                              pause=pause, chunk=5000 if pause is None else 500)
            log.info("simulator stopped after %d events", n)
        except Exception:
            log.exception("simulator failed")
    return Worker("qms-simulator", run).start()


__all__ = ["Worker", "start_aggregator", "start_archiver", "start_demo", "simulate_into"]
