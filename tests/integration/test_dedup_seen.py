"""Event ids remembered as fingerprints in small per-day hashes (data.keys SEEN), one structure
for the ingest (0: accepted) and the aggregators (1: applied)."""
from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from data.aggregator import Aggregator
from data.ingest import Ingestor
from data.keys import Keys, fingerprint
from data.timeutil import DAY_MS, HOUR_MS, now_ms, parse_iso
from tests.helpers import busy_events

K = Keys("qms")


def simulated(hours: int = 3) -> list[dict[str, Any]]:
    return busy_events(hours, now_ms() // HOUR_MS * HOUR_MS, 8, 0.2)


def test_sen001_the_bucket_count_is_pinned_so_every_process_finds_the_ids(r: Any) -> None:
    """The first process pins its bucket count; others configured otherwise use it too, so a
    re-send over HTTP, a direct producer's copy and a re-delivery are all duplicates."""
    events = simulated()
    assert Ingestor(r, K, dedup_buckets=16).ingest(events).accepted == len(events)
    assert Ingestor(r, K, dedup_buckets=4096).ingest(events[:40]).duplicates == 40
    agg = Aggregator(r, K, dedup_buckets=64)
    agg.drain()
    assert int(r.get(K.seen_buckets)) == 16
    keys = [k for k in r.scan_iter("qms:seen:*:*")]
    assert keys and all(0 <= int(k.split(b":")[-1]) < 16 for k in keys)
    assert {v for k in keys for v in r.hvals(k)} == {b"1"}, "every id is marked applied"
    for ev in events[:25]:
        r.xadd(K.stream, {"e": orjson.dumps(ev)})
    agg.drain()
    assert int(r.hget(K.meta, "applied")) == len(events) and int(r.hget(K.meta, "duplicates")) == 25
    assert Ingestor(r, K).ingest(events[-5:]).duplicates == 5


def test_sen002_an_id_in_the_sets_written_before_counts_as_applied(r: Any) -> None:
    """Ids applied before the seen hashes are in `seen:agg:<day>` sets: the aggregator still
    honours them until they expire, so an upgrade doubles nothing."""
    events = simulated(hours=1)
    old = events[:10]
    for ev in old:
        r.sadd(K.applied(parse_iso(ev["timestamp"]) // DAY_MS), ev["id"])
        r.xadd(K.stream, {"e": orjson.dumps(ev)})
    Ingestor(r, K).ingest(events[10:])
    Aggregator(r, K).drain()
    assert int(r.hget(K.meta, "applied")) == len(events) - 10
    assert int(r.hget(K.meta, "duplicates")) == 10


def test_sen003_seen_hashes_stay_compact_when_sized_to_the_rate(r: Any) -> None:
    """~64 ids a bucket: listpack-encoded hashes whose field is 8 bytes."""
    events = simulated(hours=6)
    per_day = Counter(parse_iso(ev["timestamp"]) // DAY_MS for ev in events)
    buckets = max(per_day.values()) // 64 + 1
    Ingestor(r, K, dedup_buckets=buckets).ingest(events)
    Aggregator(r, K).drain()
    keys = list(r.scan_iter("qms:seen:*:*"))
    assert {r.object("encoding", k) for k in keys} == {b"listpack"}
    ev = events[0]
    bucket, fp = fingerprint(ev["id"], buckets)
    assert len(fp) == 8 and r.hget(K.seen(parse_iso(ev["timestamp"]) // DAY_MS, bucket), fp) == b"1"
