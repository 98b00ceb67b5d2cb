"""The aggregator under faults: a crash between reading and acknowledging, re-delivery of
everything, two aggregators on one stream, and producers writing the stream directly."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from data import reference
from data.aggregator import Aggregator
from data.engine import Engine
from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import HOUR_MS, now_ms, to_datetime
from tests.helpers import busy_events

K = Keys("qms")
ROOT = Path(__file__).resolve().parents[2]


def simulated(hours: int = 6, rate: float = 0.2, seed: int = 11) -> tuple[list[dict[str, Any]], int]:
    end_ms = now_ms() // HOUR_MS * HOUR_MS
    return busy_events(hours, end_ms, seed, rate), end_ms


def snapshot(r: Any) -> dict[bytes, Any]:
    """Every rollup, total, state and entity: what a re-delivery must leave unchanged."""
    out: dict[bytes, Any] = {}
    for pattern in ("qms:r:*", "qms:tot:*", "qms:state:*", "qms:ent:*", "qms:tl:*"):
        for key in r.scan_iter(pattern, count=1000):
            kind = r.type(key)
            out[key] = (r.hgetall(key) if kind == b"hash" else r.get(key) if kind == b"string"
                        else r.zrange(key, 0, -1, withscores=True))
    return out


def watch(obj: Any, name: str, note: Any) -> None:
    """obj.name replaced by a wrapper that calls note(*args) first, then the original."""
    original = getattr(obj, name)

    def watched(*args: Any) -> Any:
        note(*args)
        return original(*args)
    setattr(obj, name, watched)


def assert_matches_reference(r: Any, events: list[dict[str, Any]], end_ms: int) -> None:
    eng = Engine(r, K)
    for dash in ("executive", "operational", "qa"):
        got = {w["id"]: w["data"] for w in eng.dashboard(dash, "4h", end_ms)["data"]["widgets"]}
        want = reference.compute_dashboard(events, dash, to_datetime(end_ms), timedelta(hours=4))
        for kpi, ref in want.items():
            for field in ("current_value", "previous_value"):
                a, b = got[kpi][field], ref[field]
                assert reference.agrees(kpi, a, b), f"{dash}.{kpi}.{field}: engine {a} reference {b}"


CRASHING_AGGREGATOR = textwrap.dedent("""
    import os, sys, redis
    sys.path.insert(0, {root!r})
    from data.aggregator import Aggregator
    from data.keys import Keys
    agg = Aggregator(redis.Redis.from_url({url!r}), Keys("qms"), batch=300, consumer="doomed", lock_ms=1000)
    agg.ensure_group()
    agg.before_commit = lambda: os._exit(17)   # killed after reading and computing, before EXEC/XACK
    agg.step(block_ms=100)
""")


def test_agg001_crash_between_read_and_ack_loses_and_doubles_nothing(r: Any, redis_url: str) -> None:
    events, end_ms = simulated()
    assert Ingestor(r, K).ingest(events).accepted == len(events)
    script = CRASHING_AGGREGATOR.format(root=str(ROOT), url=redis_url)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert proc.returncode == 17, proc.stderr.decode()
    group = r.xinfo_groups(K.stream)[0]
    # Its batch and the next, read ahead while it was computed, are pending, unacknowledged.
    assert group["pending"] == 2 * 300, "the dead consumer's batches are pending, unacknowledged"
    assert not r.exists(K.totals("m")), "nothing of the crashed batch was written"
    survivor = Aggregator(r, K, batch=500, reclaim_idle_ms=0, consumer="survivor")
    survivor.drain()
    assert r.xinfo_groups(K.stream)[0]["pending"] == 0
    assert int(r.hget(K.meta, "applied")) == len(events)
    assert_matches_reference(r, events, end_ms)


def test_agg002_redelivering_everything_changes_nothing(r: Any) -> None:
    events, end_ms = simulated(hours=3)
    Ingestor(r, K).ingest(events)
    agg = Aggregator(r, K, batch=400)
    agg.drain()
    before = snapshot(r)
    assert before
    r.xgroup_setid(K.stream, K.group, "0")         # as if no entry had ever been acknowledged
    agg.drain()
    assert int(r.hget(K.meta, "duplicates")) == len(events)
    assert snapshot(r) == before


def test_agg003_two_aggregators_share_one_stream(r: Any) -> None:
    events, end_ms = simulated(hours=6, seed=12)
    Ingestor(r, K).ingest(events)
    workers = [Aggregator(r, K, batch=150, consumer=f"agg-{i}") for i in range(2)]
    workers[0].ensure_group()
    processed = [0, 0]

    def run(i: int) -> None:
        while True:
            n = workers[i].step(block_ms=50)
            processed[i] += n
            if n == 0:
                return
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(processed), f"both aggregators took work: {processed}"
    workers[0].drain()
    assert int(r.hget(K.meta, "applied")) == len(events)
    assert_matches_reference(r, events, end_ms)


def test_agg004_direct_stream_producers_are_validated_and_deduplicated(r: Any) -> None:
    events, end_ms = simulated(hours=2, seed=13)
    with r.pipeline(transaction=False) as p:
        for e in events + events[:50]:                  # 50 duplicates
            p.xadd(K.stream, {"e": orjson.dumps(e)})
        p.xadd(K.stream, {"e": b"{not json"})
        p.xadd(K.stream, {"e": orjson.dumps({"id": "no-type", "timestamp": "2025-01-01T00:00:00Z"})})
        p.xadd(K.stream, {"wrong_field": b"1"})
        p.execute()
    Aggregator(r, K, batch=500).drain()
    meta = {k.decode(): int(v) for k, v in r.hgetall(K.meta).items() if k != b"last_batch_ms" and k != b"last_event_ms"}
    assert meta["applied"] == len(events)
    assert meta["duplicates"] == 50
    assert meta["rejected"] == 3
    reasons = [f[b"reason"].decode() for _, f in r.xrange(K.deadletter)]
    assert reasons[0] == "not JSON" and "type: required" in reasons[1]
    assert all(f[b"origin"] == b"stream" for _, f in r.xrange(K.deadletter))
    assert_matches_reference(r, events, end_ms)


def test_agg005_unacknowledged_work_of_a_live_consumer_is_not_stolen_early(r: Any) -> None:
    events, _ = simulated(hours=1, seed=14)
    Ingestor(r, K).ingest(events[:100])
    slow = Aggregator(r, K, batch=100, consumer="slow")
    slow.ensure_group()
    r.xreadgroup(K.group, "slow", {K.stream: ">"}, count=100)      # read, not yet processed
    other = Aggregator(r, K, batch=100, consumer="other", reclaim_idle_ms=60_000)
    assert other.reclaim() == 0, "entries idle less than reclaim_idle_ms stay with their consumer"


def test_agg006_changing_the_sla_target_never_corrupts_rollups(r: Any) -> None:
    """Contributions written under one SLA target are retracted as written, not as recomputed."""
    events, end_ms = simulated(hours=6, seed=15)
    completions = [e for e in events if e["type"] == "workflow.completed"]
    others = [e for e in events if e["type"] != "workflow.completed"]
    Ingestor(r, K).ingest(completions)           # completions first: their pr_created arrives later
    Aggregator(r, K, sla_hours=8).drain()
    Ingestor(r, K).ingest(others)
    Aggregator(r, K, sla_hours=0.5).drain()      # a restart with a new target
    for key in r.scan_iter("qms:r:*:m:*"):
        row = {k.decode(): int(v) for k, v in r.hgetall(key).items()}
        assert row.get("sla_n", 0) >= row.get("sla_ok", 0) >= 0, (key, row)
    created = {e["data"]["workflow_id"] for e in events if e["type"] == "workflow.pr_created"}
    with_creation = {e["data"]["workflow_id"] for e in completions} & created
    total = sum(int(r.hget(key, "sla_n") or 0) for key in r.scan_iter("qms:r:1h:m:*"))
    assert total == len(with_creation)


def test_agg007_trim_drops_only_acknowledged_entries(r: Any) -> None:
    events, _ = simulated(hours=1, seed=16)
    Ingestor(r, K).ingest(events)
    agg = Aggregator(r, K, batch=100)
    agg.ensure_group()
    agg.step(block_ms=10)                                          # one batch applied
    r.xreadgroup(K.group, "other", {K.stream: ">"}, count=50)      # 50 more delivered, still pending
    before = r.xlen(K.stream)
    agg.trim()
    first_left = r.xrange(K.stream, count=1)[0][0]
    pending_min = r.xpending(K.stream, K.group)["min"]
    assert r.xlen(K.stream) <= before
    assert tuple(map(int, first_left.split(b"-"))) <= tuple(map(int, pending_min.split(b"-"))), \
        "an entry still pending must never be trimmed"
    agg.reclaim_idle_ms = 0
    agg.drain()
    assert int(r.hget(K.meta, "applied")) == len(events)


def test_agg008_every_event_is_indexed_under_its_workflow_and_actors(r: Any) -> None:
    events, _ = simulated(hours=2)
    Ingestor(r, K).ingest(events, origin="test")
    Aggregator(r, K, batch=500).drain()
    want: dict[tuple[str, str], set[str]] = {}
    for ev in events:
        d = ev["data"]
        if "workflow_id" in d:
            want.setdefault(("wf", d["workflow_id"]), set()).add(ev["id"])
        for name in ("agent_id", "reviewer", "found_by"):
            if name in d:
                want.setdefault(("ac", d[name]), set()).add(ev["id"])
    assert want
    for (kind, ident), ids in want.items():
        got = {m.decode() for m in r.zrange(K.entity_events(kind, ident), 0, -1)}
        assert got == ids, (kind, ident)


def test_agg009_states_read_behind_the_script_equal_the_plain_path(r: Any) -> None:
    """The next batch's lock and reads go out behind this batch's script (read ahead): the
    states it finds are the ones the script wrote. Same rollups, totals, states, entities and
    timelines as batches read one after the other; a script that fails (here: the lock taken
    by another holder just before it) uses nothing read behind it and recomputes."""
    events, end_ms = simulated(hours=6, seed=13)
    Ingestor(r, K).ingest(events)
    plain = Aggregator(r, K, batch=100)
    plain.overlap = False
    plain.drain()
    want = snapshot(r)
    r.flushdb()

    Ingestor(r, K).ingest(events)
    agg = Aggregator(r, K, batch=100, lock_ms=1000)
    used: list[bool] = []
    watch(agg, "_apply", lambda parsed, now: used.append(parsed.ready is not None))
    calls = [0]

    def steal() -> None:      # every 7th batch: another holder's lock, gone after 100 ms
        calls[0] += 1
        if calls[0] % 7 == 0:
            r.set(K.lock, "someone-else", px=100)
    agg.before_commit = steal
    agg.drain()
    assert int(r.hget(K.meta, "applied")) == len(events)
    assert sum(used) > len(events) // 100 // 2, f"states read ahead in {sum(used)} of {len(used)} batches"
    assert not all(used[1:]), "some batches read their states themselves (after a failed script)"
    assert snapshot(r) == want
    assert_matches_reference(r, events, end_ms)


def test_agg010_the_next_batch_folded_during_the_script_equals_batches_one_after_the_other(r: Any) -> None:
    """Not partitioned, the next batch's entities are folded while this batch's script runs
    (Aggregator._apply_overlapped): the entities this batch writes taken as the bytes it
    computed, the others and the applied ids read before its script, its ids taken as
    applied, the lock kept from one script to the next. Byte for byte the rollups, totals,
    states, entities, timelines and counters of batches applied one after the other, with
    events repeated a batch later and scripts failing in the middle: the lock taken by
    another holder (fence), the script flushed (NOSCRIPT), a counter the script cannot add to
    (check)."""
    events, end_ms = simulated(hours=12, rate=0.4, seed=17)
    entries = []
    for i, e in enumerate(events):
        entries.append(e)
        if i >= 80 and i % 9 == 0:
            entries.append(events[i - 80])          # a repeat, about one batch after the first
    repeats = len(entries) - len(events)

    def load() -> None:
        with r.pipeline(transaction=False) as p:
            for e in entries:
                p.xadd(K.stream, {"e": orjson.dumps(e)})
            p.execute()

    def counters() -> dict[str, bytes]:
        return {f: r.hget(K.meta, f) for f in ("applied", "duplicates", "rejected", "version")}

    load()
    plain = Aggregator(r, K, batch=100)
    plain.overlap = False
    plain.drain()
    want, want_counters = snapshot(r), counters()
    assert int(want_counters["duplicates"]) == repeats
    r.flushdb()

    load()
    agg = Aggregator(r, K, batch=100, lock_ms=1000, reclaim_idle_ms=600_000)
    heads: list[bool] = []
    taken: list[int] = []
    watch(agg, "_apply", lambda parsed, now: heads.append(parsed.head is not None))
    watch(agg, "_merged", lambda prep, early, written, marked: taken.append(sum(1 for key in prep.ent_keys if key in written)))
    calls = [0]
    kept: list[bytes] = []

    def fail() -> None:
        calls[0] += 1
        if calls[0] % 11 == 3:
            r.set(K.lock, "someone-else", px=100)            # fence: recomputed at once
        elif calls[0] % 11 == 6:
            r.script_flush()                                  # NOSCRIPT: EVAL instead
        elif calls[0] % 11 == 9:
            kept.append(r.hget(K.meta, "applied") or b"0")
            r.hset(K.meta, "applied", "x")                    # check: nothing written
    agg.before_commit = fail
    agg.ensure_group()
    while True:
        try:
            if agg.step(block_ms=10) == 0:
                break
        except redis.ResponseError as exc:
            assert str(exc).startswith("QMSCHECK"), exc
            r.hset(K.meta, "applied", kept.pop())
            agg.reclaim_idle_ms = 0                           # the failed batch again, before the next
            agg.reclaim()
            agg.reclaim_idle_ms = 600_000
    assert r.xpending(K.stream, K.group)["pending"] == 0
    assert calls[0] > 30
    assert sum(heads) > len(heads) // 2, f"folded during the previous script in {sum(heads)} of {len(heads)} batches"
    assert not all(heads[1:]), "some batches read their states themselves (after a failed script)"
    assert sum(taken) > 0, "no entity taken from the previous batch's bytes"
    assert counters() == want_counters
    assert snapshot(r) == want
    assert_matches_reference(r, events, end_ms)


def test_agg011_a_backlog_is_read_in_growing_batches_and_live_work_in_base_ones(r: Any) -> None:
    """Catching up (a read that came back full) the next read asks for twice as many entries,
    up to batch_max; a read short of the base size means caught up, and the next asks for the
    base size again. Bigger batches sum more increments per rollup field (fewer writes, less
    Python per event) while only a backlog waits on them. The result is byte for byte that of
    base-size batches (but for fields at 0, below)."""
    events, end_ms = simulated(hours=6, seed=19)
    first, rest = events[:700], events[700:]
    Ingestor(r, K).ingest(first)
    plain = Aggregator(r, K, batch=50)
    plain.drain()
    Ingestor(r, K).ingest(rest)
    plain.drain()
    want = snapshot(r)
    r.flushdb()

    Ingestor(r, K).ingest(first)
    agg = Aggregator(r, K, batch=50, batch_max=200)
    sizes: list[int] = []
    watch(agg, "process", lambda entries, *_: sizes.append(len(entries)))
    agg.drain()
    assert sizes == [50, 100, 200, 200, 150], sizes
    sizes.clear()
    Ingestor(r, K).ingest(rest[:30])
    agg.drain()
    Ingestor(r, K).ingest(rest[30:])
    agg.drain()
    assert sizes[:3] == [30, 50, 100], sizes
    assert sum(sizes) == len(rest)
    # Equal sums: a field whose changes net to zero within one batch is never written, where
    # split over batches it is written and comes back to 0.
    assert nonzero(snapshot(r)) == nonzero(want)
    assert_matches_reference(r, events, end_ms)


def nonzero(snap: dict[bytes, Any]) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for key, value in snap.items():
        if isinstance(value, dict):
            value = {f: v for f, v in value.items() if v != b"0"}
            if not value:
                continue
        out[key] = value
    return out


def test_agg012_the_stream_is_trimmed_as_often_by_entries_when_batches_grow(r: Any) -> None:
    """The stream's processed entries are trimmed every 50 batches, and at least every 50 base
    batches' worth of entries: batches grown for a backlog (agg011) must not keep four times as
    many processed entries in Redis between two trims."""
    events, _ = simulated(hours=6, seed=23)
    events = events[:1200]
    Ingestor(r, K).ingest(events)
    agg = Aggregator(r, K, batch=10, batch_max=40)
    trims: list[int] = []
    watch(agg, "trim", lambda: trims.append(int(r.hget(K.meta, "applied") or 0)))
    agg.drain()
    assert int(r.hget(K.meta, "applied")) == len(events)
    # 50 x 10 entries apart at most (batches of 40 reach 500 entries in 13 batches, not 50).
    assert len(trims) >= 2, trims
    assert all(b - a <= 500 + 40 for a, b in zip([0, *trims], trims)), trims


def test_agg013_the_web_process_s_aggregator_keeps_its_batches_at_the_base_size(r: Any, redis_url: str) -> None:
    """Under `cli.py serve` (gevent) the embedded aggregator's thread is a greenlet on the web
    server's loop: a batch's computation holds the loop, so it never grows there (8000 events
    held it ~4x as long as 2000); `cli.py aggregate`, a process of its own, grows its batches."""
    from types import SimpleNamespace

    from data import workers
    from settings import Settings
    settings = Settings.from_env({}, redis_url=redis_url, aggregator_batch=500, aggregator_batch_max=4000)
    embedded = workers.embedded_aggregator(SimpleNamespace(redis=r, settings=settings))
    assert (embedded.batch, embedded.batch_max) == (500, 500)
    alone = Aggregator.from_settings(r, settings)
    assert (alone.batch, alone.batch_max) == (500, 4000)
