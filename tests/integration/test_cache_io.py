"""data.cache_io: a page's cache traffic batched — reads ahead in one pipeline, writes at the
end in one, the data version read once — and plain Redis commands outside a batch."""
from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from data import cache_io, partition
from data.keys import Keys


class Counting(redis.Redis):
    """A client that counts its round trips (a pipeline is one)."""

    trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        Counting.trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        Counting.trips += 1
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
def c(r: redis.Redis) -> Any:
    client = Counting(connection_pool=r.connection_pool)
    Counting.trips = 0
    return client


def test_cio001_outside_a_batch_commands_go_straight_to_redis(c: Any, r: redis.Redis) -> None:
    cache_io.set(c, "k", b"v", ex=30)
    assert r.get("k") == b"v" and 0 < r.ttl("k") <= 30
    assert cache_io.get(c, "k") == b"v"
    cache_io.prefetch(c, ["k"])                  # nothing to do outside a batch
    assert Counting.trips == 2


def test_cio002_writes_wait_for_the_end_of_the_batch_and_are_read_back_meanwhile(c: Any, r: redis.Redis) -> None:
    keys = Keys("t")
    with cache_io.batched(c, keys):
        cache_io.set(c, "a", b"1", ex=30)
        cache_io.set(c, "b", b"2", px=20_000)
        assert r.get("a") is None and r.get("b") is None           # not written yet
        assert cache_io.get(c, "a") == b"1"                          # but read back
        trips = Counting.trips
    assert Counting.trips == trips + 1                               # one pipeline for both
    assert r.get("a") == b"1" and r.get("b") == b"2"
    assert 0 < r.ttl("a") <= 30 and 0 < r.pttl("b") <= 20_000


def test_cio003_reads_ahead_in_one_pipeline(c: Any, r: redis.Redis) -> None:
    r.set("x", b"X")
    r.set("y", b"Y")
    with cache_io.batched(c, Keys("t")):
        cache_io.prefetch(c, ["x", "y", "z", "x"])
        assert Counting.trips == 1
        assert [cache_io.get(c, k) for k in ("x", "y", "z")] == [b"X", b"Y", None]
        assert Counting.trips == 1                                   # answered from the read
        r.set("x", b"X2")
        cache_io.prefetch(c, ["x"])                                  # read already: not again
        assert cache_io.get(c, "x") == b"X" and Counting.trips == 1
        cache_io.prefetch(c, ["x"], fresh=True)                      # unless asked fresh
        assert cache_io.get(c, "x") == b"X2" and Counting.trips == 2
        assert cache_io.get(c, "w") is None and Counting.trips == 3  # not read ahead: asked


def test_cio004_the_data_version_is_read_once_per_batch(c: Any, r: redis.Redis) -> None:
    keys = Keys("t")
    r.hset(keys.meta, mapping={"version": 5, "last_batch_ms": 1000})
    with cache_io.batched(c, keys):
        assert partition.data_version(c, keys) == (5, 1000)
        r.hincrby(keys.meta, "version", 1)                           # a batch lands meanwhile
        assert partition.data_version(c, keys) == (5, 1000)
        assert partition.data_version(c, Keys("t")) == (5, 1000)     # another Keys of the same prefix
        assert partition.data_version(c, Keys("other")) == (0, None)  # not of this batch
        assert partition.data_version(r, keys) == (6, 1000)          # another client: not batched
    assert partition.data_version(c, keys) == (6, 1000)


def test_cio005_a_failing_write_costs_itself_only_and_is_logged(c: Any, r: redis.Redis,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="data.cache_io"):
        with cache_io.batched(c, Keys("t")):
            cache_io.set(c, "good", b"1", ex=30)
            cache_io.set(c, "bad", b"2", px=0)                       # ERR invalid expire time
            cache_io.set(c, "also", b"3", ex=30)
    assert r.get("good") == b"1" and r.get("also") == b"3" and r.get("bad") is None
    assert "1 of 3 cache writes of a page failed" in caplog.text


def test_cio006_writes_are_flushed_when_the_draw_fails_and_batches_nest(c: Any, r: redis.Redis) -> None:
    with pytest.raises(RuntimeError):
        with cache_io.batched(c, Keys("t")) as outer:
            cache_io.set(c, "a", b"1", ex=30)
            with cache_io.batched(c, Keys("t")) as inner:
                assert inner is outer
                cache_io.set(c, "b", b"2", ex=30)
            assert r.get("b") is None                                # the outer batch goes on
            raise RuntimeError("a widget failed")
    assert r.get("a") == b"1" and r.get("b") == b"2"
    assert cache_io.current(c) is None


def test_cio007_an_unavailable_redis_loses_the_writes_quietly(r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="data.cache_io"):
        with cache_io.batched(dead, Keys("t")):
            cache_io.set(dead, "a", b"1", ex=30)
    assert "cache writes of a page lost" in caplog.text
