"""The live publisher's incremental rounds (live.rollcache) against the engine: real Redis,
the real aggregator and its wake-ups, the real publisher loop. Every pushed card must be
the card GET /api/dashboard/<name> gives for the same data version, whichever way the
round read its buckets (the aggregator's hints, a full comparison, a batch that lands
between the PONG and the read)."""
from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest

from data.aggregator import Aggregator, live_hint
from data.batch import Acc
from data.timeutil import HOUR_MS, MINUTE_MS, fmt_ms, now_ms
from live.publisher import FAST, SHARED, Publisher, card_texts
from live.rollcache import RollupCache, hint


def _events(tag: str, n: int, ago_ms: int, passed: bool = True) -> list[dict[str, Any]]:
    ts = fmt_ms(now_ms() - ago_ms)
    return [{"id": f"inc-{tag}-{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
             "data": {"workflow_id": f"W{tag}{i}", "gate_name": f"gate-{tag}", "passed": passed,
                      "execution_time": 10 + i}} for i in range(n)]


def _apply(svc: Any, r: Any, events: list[dict[str, Any]]) -> int:
    """Ingest and aggregate one batch; returns the new data version."""
    svc.ingestor.ingest(events)
    Aggregator(r, svc.keys).drain()
    return int(r.hget(svc.keys.meta, "version"))


def _engine_cards(svc: Any, timeframes: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(name, tf): card_texts(svc.engine.dashboard(name, tf)["data"]["widgets"])
            for tf in timeframes for name in SHARED}


def _same_minute_compare(svc: Any, pub: Publisher, drain: Any = None) -> tuple[int, int]:
    """The publisher's cards == the engine's, at the same version and the same minute (the
    windows move with the clock); returns (version, hashes the round read)."""
    for _ in range(5):
        minute = now_ms() // MINUTE_MS
        version, cards = pub.compute(FAST, -1, drain)
        ref = _engine_cards(svc, FAST)
        if now_ms() // MINUTE_MS != minute:
            continue
        assert int(svc.redis.hget(svc.keys.meta, "version")) == version
        for key, c in cards.items():
            assert c == ref[key], (key, {k: (c.get(k), ref[key].get(k)) for k in set(c) | set(ref[key])
                                         if c.get(k) != ref[key].get(k)})
        return version, pub.cache.changed if pub.cache else 0
    raise AssertionError("the minute kept changing")


def _subscribe(r: Any, svc: Any) -> tuple[Any, Any]:
    """A subscription to the aggregator's wake-ups and the publisher's drain on it: the
    wake-ups published up to a PONG."""
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(svc.keys.live_applied)
    marks = iter(range(10 ** 6))

    def drain() -> list[bytes]:
        mark = f"m{next(marks)}".encode()
        sub.ping(mark)
        out = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = sub.get_message(timeout=1)
            if msg and msg["type"] == "message":
                out.append(msg["data"])
            elif msg and msg["type"] == "pong" and msg["data"] == mark:
                return out
        raise AssertionError("no PONG")
    return sub, drain


def test_live_inc001_hint_names_families_and_earliest_minute() -> None:
    from data.contrib import direct
    acc = Acc()
    now = now_ms()
    for ev in _events("h", 2, 3 * HOUR_MS) + _events("k", 1, 0):
        ev["data"]["passed"] = True
        for c in direct(ev, now - 3 * HOUR_MS if ev["id"].startswith("inc-h") else now):
            acc.add(c)
    touched = hint(live_hint(acc))
    assert touched is not None and touched
    assert set(touched) == {fam for fam, _ in acc.buckets} | set(acc.totals)
    for fam, (lo, hi) in touched.items():
        mins = [b for f, b in acc.buckets if f == fam]
        assert (lo, hi) == ((min(mins), max(mins)) if mins else (2 ** 62, 2 ** 62))
    assert min(lo for lo, _ in touched.values()) <= now - 3 * HOUR_MS
    assert max(hi for _, hi in touched.values() if hi < 2 ** 62) >= now - MINUTE_MS
    assert hint(b"1") is None and hint(b"{not json") is None and hint(b'{"main": 5}') is None


def test_live_inc002_rounds_equal_the_engine_and_read_only_what_changed(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    _apply(svc, r, _events("a", 5, 30 * MINUTE_MS) + _events("b", 3, 20 * HOUR_MS, passed=False))
    pub = Publisher(r, svc.keys, svc.engine)
    assert pub.cache is not None
    sub, drain = _subscribe(r, svc)
    try:
        _same_minute_compare(svc, pub, drain)            # the first read: everything
        _same_minute_compare(svc, pub, drain)            # an empty drain after it: in step
        assert pub.cache.synced
        full = pub.cache.full_reads
        # Live events, a late one (20 h ago), a new gate, a failed run: each batch is read
        # through its hint, and the numbers stay the engine's.
        for tag, n, ago, passed in (("c", 2, 0, True), ("d", 1, 20 * HOUR_MS + 7 * MINUTE_MS, False),
                                    ("e", 4, 2 * HOUR_MS, True), ("f", 1, 0, False)):
            version = _apply(svc, r, _events(tag, n, ago, passed))
            got, changed = _same_minute_compare(svc, pub, drain)
            assert got == version
            assert 0 < changed < 100, f"a batch's round read {changed} hashes"
        assert pub.cache.full_reads == full, "rounds that had every hint compared the whole copy"
        # A batch that lands between the PONG and the read: that read compares everything,
        # and the batch's own wake-up, which comes later, is skipped.
        _apply(svc, r, _events("g", 1, 0))
        late = _events("h", 2, 5 * HOUR_MS)

        def drain_then_commit() -> list[bytes]:
            out = drain()
            _apply(svc, r, late)
            return out
        _same_minute_compare(svc, pub, drain_then_commit)
        assert pub.cache.full_reads == full + 1 and pub.cache.skip == 1
        _same_minute_compare(svc, pub, drain)
        assert pub.cache.skip == 0 and pub.cache.synced
        version = _apply(svc, r, _events("i", 1, 0))
        assert _same_minute_compare(svc, pub, drain)[0] == version
        # A wake-up that does not say what changed (an older aggregator): everything again.
        r.publish(svc.keys.live_applied, b"1")
        r.hincrby(svc.keys.meta, "version", 1)
        _same_minute_compare(svc, pub, drain)
        assert pub.cache.full_reads == full + 2
    finally:
        sub.close()


def test_live_inc003_the_publisher_loop_pushes_the_engines_numbers(app: Any, r: Any) -> None:
    """The loop as it runs in a process: every snapshot it leaves equals the engine's
    cards at the snapshot's version, batch after batch, late events included."""
    svc = app.server.extensions["qms"]
    _apply(svc, r, _events("a", 3, 10 * MINUTE_MS))
    pub = Publisher(r, svc.keys, svc.engine, slow_every_s=3600)
    stop = threading.Event()
    t = threading.Thread(target=pub.run, args=(stop,), daemon=True)
    t.start()
    try:
        for tag, ago in (("b", 0), ("c", 23 * HOUR_MS), ("d", 50 * MINUTE_MS), ("e", 0)):
            deadline = time.monotonic() + 10
            version = _apply(svc, r, _events(tag, 2, ago, passed=tag != "c"))
            while pub.published < version and time.monotonic() < deadline:
                time.sleep(0.02)
            assert pub.published >= version
            for _ in range(5):
                minute = now_ms() // MINUTE_MS
                snaps = {name: orjson.loads(svc.redis.hget(svc.keys.live_last(f"dashboard.{name}"), "24h"))
                         for name in SHARED}
                ref = _engine_cards(svc, ("24h",))
                if now_ms() // MINUTE_MS == minute and snaps["qa"]["data"]["version"] == version:
                    break
                time.sleep(0.05)
            # Every batch changes the QA cards (gate counts); a channel whose cards stayed the
            # same was not sent again, and its snapshot still holds them.
            assert snaps["qa"]["data"]["version"] == version
            for name, snap in snaps.items():
                assert snap["data"]["version"] <= version
                assert snap["data"]["timeframes"]["24h"]["kpis"] == ref[(name, "24h")]
        assert pub.cache is not None and pub.cache.synced
    finally:
        stop.set()
        t.join(10)


def test_live_inc004_a_flushed_store_starts_the_copy_again(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    for tag in ("a", "b", "c"):
        _apply(svc, r, _events(tag, 2, 0))
    cache = RollupCache(r, svc.keys)
    pub = Publisher(r, svc.keys, svc.engine)
    pub.cache = cache
    _same_minute_compare(svc, pub)
    r.flushdb()
    _apply(svc, r, _events("z", 1, 0, passed=False))
    version, _ = _same_minute_compare(svc, pub)
    assert version == 1
    cards = pub.compute(("24h",), -1)[1][("qa", "24h")]
    assert (cards["total_gates_executed"]["text"], cards["gates_passed"]["text"]) == ("1", "0")


def test_live_inc005_partitioned_rounds_sum_the_partitions(settings: Any, r: Any) -> None:
    """K = 2 on one Redis: every bucket is two hashes (one per partition), and the copy
    must read both — reading the unpartitioned names finds nothing. Rounds through the
    wake-ups stay the engine's (which sums the partitions) batch after batch."""
    from dataclasses import replace

    from factory import create_app
    from live import rollcache
    app = create_app(replace(settings, aggregation_partitions=2))
    svc = app.server.extensions["qms"]
    assert svc.keys.partitioned and rollcache.supported(svc.keys)
    pub = Publisher(r, svc.keys, svc.engine)
    assert pub.cache is not None
    sub, drain = _subscribe(r, svc)
    try:
        _apply(svc, r, _events("a", 8, 30 * MINUTE_MS) + _events("b", 5, 20 * HOUR_MS, passed=False))
        counts = [len(list(r.scan_iter(pk.rollup("*", "*", "*")))) for pk in svc.keys.parts()]
        assert all(counts), f"the events did not reach both partitions: {counts}"
        _same_minute_compare(svc, pub, drain)
        _same_minute_compare(svc, pub, drain)
        assert pub.cache.synced
        full = pub.cache.full_reads
        cards = pub.compute(("24h",), -1, drain)[1][("qa", "24h")]
        assert cards["total_gates_executed"]["text"] == "13"
        for tag, n, ago, passed in (("c", 6, 0, True), ("d", 3, 2 * HOUR_MS, False)):
            version = _apply(svc, r, _events(tag, n, ago, passed))
            got, changed = _same_minute_compare(svc, pub, drain)
            assert got == version and 0 < changed < 100
        assert pub.cache.full_reads == full, "rounds that had every hint compared the whole copy"
        cards = pub.compute(("24h",), -1, drain)[1][("qa", "24h")]
        assert cards["total_gates_executed"]["text"] == "22"
    finally:
        sub.close()


def test_live_inc006_the_copy_tiles_whole_days_with_daily_buckets_as_the_engine(app: Any, r: Any) -> None:
    """The copy reads a window's whole days from the daily buckets from `daily_from` on, as
    the engine does (the mark comes with each read): over 7d and 30d windows the cards equal
    the engine's, and the copy holds days, not those days' hours. A mark that moves later
    than the one the copy tiled with (another database) makes it read again, from hours."""
    from data import rollups
    from data.timeutil import DAY_MS
    svc = app.server.extensions["qms"]
    _apply(svc, r, _events("a", 4, 3 * DAY_MS) + _events("b", 3, 9 * DAY_MS, passed=False) + _events("c", 2, 0))
    assert rollups.daily_from(r, svc.keys) == 0
    pub = Publisher(r, svc.keys, svc.engine)
    assert pub.cache is not None

    def same(timeframes: tuple[str, ...]) -> None:
        for _ in range(5):
            minute = now_ms() // MINUTE_MS
            cards = pub.compute(timeframes, -1)[1]
            ref = _engine_cards(svc, timeframes)
            if now_ms() // MINUTE_MS == minute:
                assert cards == ref
                return
        raise AssertionError("the minute kept changing")

    same(("7d", "30d"))          # the first read learns the mark (tiled with hours)
    assert pub.cache.daily == 0
    same(("7d", "30d"))
    days = [key for key in pub.cache._copy if ":r:1d:" in key]
    assert len(days) >= 2 * 28, len(days)
    assert pub.compute(("30d",), -1)[1][("qa", "30d")]["total_gates_executed"]["text"] == "9"
    r.hset(svc.keys.meta, rollups.DAILY_FROM, now_ms() // DAY_MS * DAY_MS + DAY_MS)
    same(("7d", "30d"))
    assert pub.cache.daily == now_ms() // DAY_MS * DAY_MS + DAY_MS
    assert pub.compute(("30d",), -1)[1][("qa", "30d")]["total_gates_executed"]["text"] == "9"


def test_live_inc007_a_part_holds_only_the_changed_cards_on_top_of_the_snapshot_s_version(app: Any, r: Any) -> None:
    """A channel's part for a timeframe carries only the cards that changed, with the version
    they change ("base"), where the snapshot holds exactly that version; the snapshot stays
    whole, each part with its own version ("v"). After another publisher's message (or with
    a card gone) the part goes whole."""
    from live.hub import Hub
    svc = app.server.extensions["qms"]
    k = svc.keys
    a, b = Publisher(r, k, svc.engine), Publisher(r, k, svc.engine)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(k.live("dashboard.qa"))

    def heard() -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = sub.get_message(timeout=1)
            if msg and msg["type"] == "message":
                return orjson.loads(msg["data"])
        raise AssertionError("nothing published")

    def card(text: str) -> dict[str, Any]:
        return {"text": text, "trend": None, "rounded": text, "previous_text": "previous: 0"}
    hub = Hub(r, k)
    try:
        a._send(5, {("qa", "24h"): {"x": card("1"), "y": card("2")}, ("qa", "1h"): {"x": card("9")}})
        first = heard()
        assert first["data"]["version"] == 5
        assert first["data"]["timeframes"] == {"24h": {"kpis": {"x": card("1"), "y": card("2")}},
                                               "1h": {"kpis": {"x": card("9")}}}          # nothing before: whole
        a._send(6, {("qa", "24h"): {"x": card("1"), "y": card("3")}, ("qa", "1h"): {"x": card("9")}})
        second = heard()
        assert second["data"] == {"version": 6, "timeframes": {"24h": {"kpis": {"y": card("3")}, "base": 5}}}
        stored = r.hgetall(k.live_last("dashboard.qa"))
        assert stored[b"v:24h"] == b"6" and stored[b"v:1h"] == b"5"
        snap24 = orjson.loads(stored[b"24h"])
        assert snap24 == {"type": "data_update", "channel": "dashboard.qa", "timestamp": snap24["timestamp"],
                          "data": {"version": 6, "timeframes": {"24h": {"kpis": {"x": card("1"), "y": card("3")}}}}}
        snap = orjson.loads(hub._read_snapshot("dashboard.qa"))
        assert snap["data"]["version"] == 6
        assert snap["data"]["timeframes"] == {"24h": {"kpis": {"x": card("1"), "y": card("3")}, "v": 6},
                                              "1h": {"kpis": {"x": card("9")}, "v": 5}}
        # Another publisher's round (its first: whole), then this one's next part is whole too:
        # the snapshot no longer holds the version it would be a delta of.
        b._send(7, {("qa", "24h"): {"x": card("4"), "y": card("3")}})
        assert heard()["data"]["timeframes"]["24h"] == {"kpis": {"x": card("4"), "y": card("3")}}
        a._send(8, {("qa", "24h"): {"x": card("5"), "y": card("3")}})
        assert heard()["data"]["timeframes"]["24h"] == {"kpis": {"x": card("5"), "y": card("3")}}
        a._send(9, {("qa", "24h"): {"x": card("6"), "y": card("3")}})
        assert heard()["data"]["timeframes"]["24h"] == {"kpis": {"x": card("6")}, "base": 8}
        # A card gone: whole (a delta only adds and replaces).
        a._send(10, {("qa", "24h"): {"x": card("6")}})
        assert heard()["data"]["timeframes"]["24h"] == {"kpis": {"x": card("6")}}
    finally:
        sub.close()
        hub.stop()
