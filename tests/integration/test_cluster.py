"""Partitioned aggregation on a real Redis Cluster: three masters started here with
`redis-server --cluster-enabled yes` and joined by `redis-cli --cluster create`. Ingest puts
events in their partitions (each partition's keys in one slot, `{k}`), two aggregators work
them, the KPIs equal the reference; a partition's consumer killed mid-batch loses and doubles
nothing."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from typing import Any, Iterator

import orjson
import pytest

from data.aggregator import Aggregator
from data.ingest import Ingestor
from data.keys import Keys
from data.partition import meta_sums
from data.redis_conn import start_local_cluster, stop_local_cluster
from tests.integration.test_aggregator_faults import simulated
from tests.integration.test_partition import ROOT, assert_kpis_match_reference, rollups_by_bucket, run_aggregators


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    # Skipped only where there is no Redis to make a cluster of; a cluster that does not form
    # is an error, not a skip (the full suite once skipped both tests, silently).
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("a Redis Cluster needs redis-server and redis-cli 7.x on PATH")
    procs, url, dirs = start_local_cluster()
    yield url
    stop_local_cluster(procs, dirs)


@pytest.fixture
def rc(cluster_url: str) -> Iterator[Any]:
    from redis.cluster import RedisCluster
    client = RedisCluster.from_url(cluster_url)
    client.flushall()
    yield client
    client.close()


def _client(url: str) -> Any:
    from redis.cluster import RedisCluster
    return RedisCluster.from_url(url)


def test_clu001_two_aggregators_on_a_cluster_equal_the_reference(rc: Any, cluster_url: str) -> None:
    keys = Keys.of(rc, "qms", partitions=2)
    assert keys.partitioned
    slots = {rc.keyslot(pk.stream) for pk in keys.parts()}
    nodes = {rc.get_node_from_key(pk.stream).name for pk in keys.parts()}
    assert len(slots) == 2 and len(nodes) == 2, "the two partitions live on two masters"
    for pk in keys.parts():
        assert rc.keyslot(pk.meta) == rc.keyslot(pk.rollup("1m", "m", 0)) == rc.keyslot(pk.stream)
    events, end_ms = simulated(hours=6, rate=0.2, seed=31)
    split = len(events) - 200
    assert Ingestor(rc, keys).ingest(events[:split]).accepted == split
    with rc.pipeline() as p:            # a producer's direct XADDs, routed by the aggregators
        for e in events[split:]:
            p.xadd(keys.inbox, {"e": orjson.dumps(e)})
        p.execute()
    aggs = [Aggregator(_client(cluster_url), Keys.of(rc, "qms", partitions=2), batch=200, consumer=f"agg-{i}")
            for i in range(2)]
    handled = run_aggregators(aggs)
    assert all(handled), f"both aggregators took work: {handled}"
    assert meta_sums(rc, keys, ["applied"])["applied"] == len(events)
    assert_kpis_match_reference(rc, keys, events, end_ms)


CRASHING = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from redis.cluster import RedisCluster
    from data.aggregator import Aggregator
    from data.keys import Keys
    r = RedisCluster.from_url({url!r})
    agg = Aggregator(r, Keys.of(r, "qms", partitions=2), batch=300, consumer="doomed", lock_ms=1000,
                     partitions=[{part}])
    agg.ensure_group()
    agg.before_commit = lambda: os._exit(17)   # killed after computing and the global writes, before the script
    agg.step(block_ms=100)
""")


def test_clu002_a_partition_consumer_killed_mid_batch_on_a_cluster(rc: Any, cluster_url: str) -> None:
    keys = Keys.of(rc, "qms", partitions=2)
    events, end_ms = simulated(hours=6, rate=0.2, seed=32)
    assert Ingestor(rc, keys).ingest(events).accepted == len(events)
    proc = subprocess.run([sys.executable, "-c", CRASHING.format(root=str(ROOT), url=cluster_url, part=1)],
                          timeout=60, capture_output=True)
    assert proc.returncode == 17, proc.stderr.decode()
    pk = keys.part(1)
    assert rc.xpending(pk.stream, keys.group)["pending"] == 300
    assert not rc.exists(pk.totals("m")), "nothing of the crashed batch was counted"
    survivor = Aggregator(_client(cluster_url), keys, batch=500, reclaim_idle_ms=0, consumer="survivor")
    survivor.drain(120)
    assert meta_sums(rc, keys, ["applied"])["applied"] == len(events)
    assert_kpis_match_reference(rc, keys, events, end_ms)
    before = rollups_by_bucket(rc, keys)
    for p in keys.parts():                      # everything again: nothing doubles
        rc.xgroup_setid(p.stream, keys.group, "0")
    survivor.drain(120)
    assert rollups_by_bucket(rc, keys) == before


def test_clu003_a_node_that_loses_its_port_gets_the_cluster_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between `_cluster_port`'s check and a node's start another process may take the port
    (a parallel test run): the node exits, and the cluster is started again on other ports."""
    import socket

    from data import redis_conn
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("a Redis Cluster needs redis-server and redis-cli 7.x on PATH")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real = redis_conn._cluster_port
    handed: list[int] = []

    def port() -> int:
        handed.append(taken.getsockname()[1] if not handed else real())
        return handed[-1]
    monkeypatch.setattr(redis_conn, "_cluster_port", port)
    try:
        procs, url, dirs = start_local_cluster()
    finally:
        taken.close()
    try:
        assert len(handed) == 3 + 3, handed       # the first attempt's three ports, then three more
        from redis.cluster import RedisCluster
        client = RedisCluster.from_url(url)
        assert len(client.get_primaries()) == 3
        client.close()
    finally:
        stop_local_cluster(procs, dirs)


def test_clu004_idempotent_writes_follow_a_slot_that_moved(rc: Any, cluster_url: str) -> None:
    """`write_all` (the aggregator's global writes, the archiver's deletions) packs commands per
    master from the client's slot table. A slot that moved since answers MOVED: the writes go
    again through redis-py's cluster pipeline, which follows the redirect."""
    import redis as redis_lib

    from data.redis_conn import write_all
    key = "qms:moved-slot-test"
    slot = rc.keyslot(key)
    old = rc.get_node_from_key(key)
    new = next(n for n in rc.get_primaries() if n.name != old.name)
    new_id = redis_lib.Redis(host=new.host, port=new.port).cluster("myid")
    new_id = new_id.decode() if isinstance(new_id, bytes) else new_id
    for n in rc.get_primaries():        # the slot is empty: handing it over needs no migration
        redis_lib.Redis(host=n.host, port=n.port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)
    assert rc.get_node_from_key(key).name == old.name, "the client's table still has the old owner"
    write_all(rc, [("SET", key, "1"), ("SET", key, "1")])
    assert redis_lib.Redis(host=new.host, port=new.port).get(key) == b"1"
