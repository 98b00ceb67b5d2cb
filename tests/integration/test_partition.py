"""Partitioned aggregation on one Redis (K = 2): ingest and the router put events in their
partitions, two aggregators work them at once, the KPIs equal the reference and every
rollup equals a K = 1 aggregation of the same events; a partition's consumer killed
mid-batch loses and doubles nothing; re-delivering everything changes nothing."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from data import reference
from data.entcodec import decode
from data.aggregator import Aggregator
from data.engine import Engine
from data.ingest import Ingestor, dead_letters
from data.keys import Keys
from data.partition import meta_sums, route
from data.timeutil import to_datetime
from tests.integration.test_aggregator_faults import simulated

ROOT = Path(__file__).resolve().parents[2]
K2 = Keys("qms", partitions=2)


def assert_kpis_match_reference(r: Any, keys: Keys, events: list[dict[str, Any]], end_ms: int) -> None:
    eng = Engine(r, keys)
    for dash in ("executive", "operational", "qa"):
        got = {w["id"]: w["data"] for w in eng.dashboard(dash, "4h", end_ms)["data"]["widgets"]}
        want = reference.compute_dashboard(events, dash, to_datetime(end_ms), timedelta(hours=4))
        assert want
        for kpi, ref in want.items():
            for field in ("current_value", "previous_value"):
                a, b = got[kpi][field], ref[field]
                assert reference.agrees(kpi, a, b), f"{dash}.{kpi}.{field}: engine {a} reference {b}"


def rollups_by_bucket(r: Any, keys: Keys) -> dict[str, dict[bytes, int]]:
    """Every rollup bucket and total, summed over the partitions, by its unpartitioned name."""
    out: dict[str, dict[bytes, int]] = {}
    for pk in keys.parts():
        for pattern in (f"{pk.p}:r:*", f"{pk.p}:tot:*"):
            for key in r.scan_iter(pattern, count=1000):
                name = key.decode()[len(pk.p) + 1:]
                row = out.setdefault(name, {})
                for f, v in r.hgetall(key).items():
                    row[f] = row.get(f, 0) + int(v)
    return {name: {f: v for f, v in row.items() if v} for name, row in out.items()}


def _normal(v: Any) -> Any:
    """An entity's state whatever order its events were folded in (lists as multisets)."""
    if isinstance(v, dict):
        return {k: _normal(x) for k, x in v.items()}
    if isinstance(v, list):
        return sorted((_normal(x) for x in v), key=repr)
    return v


def entity_states(r: Any, keys: Keys) -> dict[str, Any]:
    out = {}
    for pk in keys.parts():
        for key in r.scan_iter(f"{pk.p}:ent:*", count=1000):
            out[key.decode()[len(pk.p) + 1:]] = _normal(decode(r.get(key)))
    return out


def run_aggregators(aggs: list[Aggregator]) -> list[int]:
    """Each aggregator in a thread until the streams are empty; returns entries each handled."""
    aggs[0].ensure_group()
    handled = [0] * len(aggs)

    def run(i: int) -> None:
        idle = 0
        while idle < 5:
            n = aggs[i].step(block_ms=20)
            handled[i] += n
            idle = 0 if n else idle + 1
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(aggs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    aggs[0].drain(60)
    return handled


def test_par001_two_partitions_two_aggregators_equal_the_reference_and_one_partition(r: Any) -> None:
    events, end_ms = simulated(hours=6, rate=0.2, seed=21)
    # Most through the ingest (straight to the partitions), some XADDed by a producer to the
    # root stream (the router moves them), and repeats both ways.
    split = len(events) * 3 // 4
    assert Ingestor(r, K2).ingest(events[:split]).accepted == split
    assert Ingestor(r, K2).ingest(events[:20]).duplicates == 20
    with r.pipeline(transaction=False) as p:
        for e in events[split:] + events[split:split + 30]:
            p.xadd(K2.inbox, {"e": orjson.dumps(e)})
        p.xadd(K2.inbox, {"e": b"{not json"})
        p.execute()
    parts = {route(e, 2) for e in events}
    assert parts == {0, 1}
    aggs = [Aggregator(r, K2, batch=150, consumer=f"agg-{i}") for i in range(2)]
    handled = run_aggregators(aggs)
    assert all(handled), f"both aggregators took work: {handled}"
    sums = meta_sums(r, K2, ["applied", "rejected"])
    assert sums["applied"] == len(events) and sums["rejected"] == 1
    assert [d["reason"] for d in dead_letters(r, K2)] == ["not JSON"]
    assert_kpis_match_reference(r, K2, events, end_ms)
    # The same events through one partition, under another prefix: identical numbers.
    one = Keys("one")
    Ingestor(r, one).ingest(events)
    Aggregator(r, one, batch=500).drain(120)
    assert rollups_by_bucket(r, K2) == rollups_by_bucket(r, one)
    assert entity_states(r, K2) == entity_states(r, one)
    assert r.hgetall(K2.authors) == r.hgetall(one.authors)
    for kind in ("active", "defects", "agents", "queues", "reviews", "violations"):
        assert r.hgetall(K2.state(kind)) == r.hgetall(one.state(kind)), kind


CRASHING = textwrap.dedent("""
    import os, sys, redis
    sys.path.insert(0, {root!r})
    from data.aggregator import Aggregator
    from data.keys import Keys
    agg = Aggregator(redis.Redis.from_url({url!r}), Keys("qms", partitions=2), batch=300, consumer="doomed",
                     lock_ms=1000, partitions=[{part}])
    agg.ensure_group()
    agg.before_commit = lambda: os._exit(17)   # killed after computing and the global writes, before the script
    agg.step(block_ms=100)
""")


def test_par002_a_partition_consumer_killed_mid_batch_loses_and_doubles_nothing(r: Any, redis_url: str) -> None:
    events, end_ms = simulated(hours=6, rate=0.2, seed=22)
    assert Ingestor(r, K2).ingest(events).accepted == len(events)
    for part in (0, 1):
        proc = subprocess.run([sys.executable, "-c", CRASHING.format(root=str(ROOT), url=redis_url, part=part)],
                              timeout=60, capture_output=True)
        assert proc.returncode == 17, proc.stderr.decode()
        pk = K2.part(part)
        assert r.xpending(pk.stream, K2.group)["pending"] == 300, "the dead consumer's batch is pending"
        assert not r.exists(pk.totals("m")), "nothing of the crashed batch was counted"
    survivor = Aggregator(r, K2, batch=500, reclaim_idle_ms=0, consumer="survivor")
    survivor.drain(120)
    for pk in K2.parts():
        assert r.xpending(pk.stream, K2.group)["pending"] == 0
    assert meta_sums(r, K2, ["applied"])["applied"] == len(events)
    assert_kpis_match_reference(r, K2, events, end_ms)


def test_par003_redelivering_every_partition_changes_nothing(r: Any) -> None:
    events, end_ms = simulated(hours=3, seed=23)
    Ingestor(r, K2).ingest(events)
    agg = Aggregator(r, K2, batch=400)
    agg.drain(60)
    before = (rollups_by_bucket(r, K2), entity_states(r, K2))
    assert before[0] and before[1]
    for pk in K2.parts():
        r.xgroup_setid(pk.stream, K2.group, "0")     # as if no entry had ever been acknowledged
    agg.drain(60)
    assert meta_sums(r, K2, ["duplicates"])["duplicates"] == len(events)
    assert (rollups_by_bucket(r, K2), entity_states(r, K2)) == before
    assert_kpis_match_reference(r, K2, events, end_ms)
