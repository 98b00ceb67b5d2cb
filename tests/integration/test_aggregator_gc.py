"""An aggregator process (`cli.py aggregate`: Aggregator.run in the main thread) collects
garbage between batches, not while one is applied: a batch's objects are freed by their
reference counts, and a collection in the middle of a batch scans them all for nothing."""
from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import orjson
import redis

from data.aggregator import Aggregator
from data.keys import Keys
from tests.integration.test_aggregator_faults import simulated

K = Keys("qms")


class _Node:
    pass


def _load(r: redis.Redis, events: list[dict[str, Any]]) -> None:
    with r.pipeline(transaction=False) as p:
        for ev in events:
            p.xadd(K.stream, {"e": orjson.dumps(ev)})
        p.execute()


def test_agc001_no_collection_runs_while_a_batch_is_applied(r: redis.Redis) -> None:
    """Seen (bench/profile_aggregator.py, 100,000 events): 13 collections in the drain,
    165 ms of its 3.5 s, which found 6 objects to free; with none during the batches the same
    drain ran 3-7 % faster."""
    events, _ = simulated(hours=6, rate=0.5, seed=5)
    _load(r, events)
    agg = Aggregator(r, K, batch=3000, block_ms=50)
    agg.gc_every_s = 0.0          # a full collection after every batch, to see it run
    in_batch = [False]
    seen: list[tuple[bool, int]] = []
    kept: list[Any] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append((in_batch[0], info["generation"]))

    def flagged(entries: Any, parsed: Any = None) -> None:
        in_batch[0] = True
        node = _Node()
        node.me = node           # garbage only a collection can free
        kept.append(weakref.ref(node))
        del node
        try:
            process(entries, parsed)
        finally:
            in_batch[0] = False
        if int(r.hget(K.meta, "applied") or 0) >= len(events):
            stop.set()

    stop = threading.Event()
    process = agg.process
    agg.process = flagged        # type: ignore[method-assign]
    before = (gc.isenabled(), gc.get_threshold())
    gc.callbacks.append(callback)
    try:
        agg.run(stop)            # in this, the main, thread: as `cli.py aggregate`
    finally:
        gc.callbacks.remove(callback)
    assert len(events) > 2 * 3000
    assert [s for s in seen if s[0]] == []           # none inside a batch
    assert (False, 2) in seen                        # full ones between batches
    assert len(kept) >= 3 and all(ref() is None for ref in kept[:-1])
    # The collector's settings are given back (what was alive at the start stays frozen).
    assert (gc.isenabled(), gc.get_threshold()) == before
    assert int(r.hget(K.meta, "applied")) == len(events)


def test_agc002_a_thread_other_than_the_main_one_leaves_the_collector_alone(r: redis.Redis) -> None:
    """The aggregator inside a web process (data.workers) shares it with the pages: its
    collector is the web process's (factory.create_app), untouched by the aggregator."""
    events, _ = simulated(hours=1, rate=0.2, seed=6)
    _load(r, events)
    agg = Aggregator(r, K, batch=500, block_ms=50)
    states: list[Any] = []
    stop = threading.Event()
    process = agg.process

    def watched(entries: Any, parsed: Any = None) -> None:
        states.append((gc.isenabled(), gc.get_threshold()))
        process(entries, parsed)
        if int(r.hget(K.meta, "applied") or 0) >= len(events):
            stop.set()

    agg.process = watched        # type: ignore[method-assign]
    before = (gc.isenabled(), gc.get_threshold())
    t = threading.Thread(target=agg.run, args=(stop,))
    t.start()
    t.join(60)
    assert not t.is_alive()
    assert states and set(states) == {before}
