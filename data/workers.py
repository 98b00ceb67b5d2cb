"""Background work inside the web process for the embedded default: the aggregator and
the demo simulator as daemon threads (deployments run `cli.py aggregate` instead)."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any, Callable

from data.aggregator import Aggregator
from data.timeutil import now_ms, parse_duration, to_datetime

log = logging.getLogger("qms.workers")


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


def start_aggregator(services: Any) -> Worker:
    agg = Aggregator.from_settings(services.redis, services.settings)
    return Worker("qms-aggregator", agg.run).start()


def simulate_into(ingest: Callable[[list[dict[str, Any]]], Any], *, rate: float, seed: int, backfill_ms: int,
                  stop: threading.Event, live: bool = True, chunk: int = 5000,
                  progress: Callable[[int], None] | None = None) -> int:
    """Backfill `backfill_ms` of history, then (if live) stream in real time. Returns events sent."""
    from data.simulator import Simulator
    start = now_ms() - backfill_ms
    sim = Simulator(seed=seed, rate=rate, start=to_datetime(start))
    sent = 0
    cursor = start
    batch: list[dict[str, Any]] = []
    while not stop.is_set():
        upto = now_ms()
        step_end = min(upto, cursor + 3_600_000)      # backfill an hour of simulated time at a time
        for ev in sim.events_between(to_datetime(cursor), to_datetime(step_end)):
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
        if cursor >= upto:
            if not live:
                break
            stop.wait(1.0)
    return sent


def start_demo(services: Any) -> Worker:
    s = services.settings

    def run(stop: threading.Event) -> None:
        try:
            n = simulate_into(lambda b: services.ingestor.ingest(b, origin="simulator"), rate=s.demo_rate,
                              seed=s.demo_seed, backfill_ms=parse_duration(s.demo_backfill), stop=stop)
            log.info("simulator stopped after %d events", n)
        except Exception:
            log.exception("simulator failed")
    return Worker("qms-simulator", run).start()


__all__ = ["Worker", "start_aggregator", "start_demo", "simulate_into", "timedelta", "time"]
