"""No event can harm another: out-of-bounds events are dead-lettered by name while the rest
of their batch applies; a batch is written whole or not at all (its marks and XACK only
after every write); a poison event is isolated by bisecting its batch; rollup sums cannot
overflow; and random batches of valid and extreme events keep the 1m, 5m and 1h rollups
consistent and equal to the reference calculator."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import contrib, reference
from data.aggregator import Aggregator
from data.batch import APPLY, MAX_DELTA, Writes
from data.engine import Engine
from data.ingest import Ingestor, dead_letters
from data.keys import Keys
from data.rollups import fetch
from data.timeutil import HOUR_MS, fmt_ms, now_ms, to_datetime
from tests.integration.test_aggregator_faults import assert_matches_reference, simulated, snapshot

K = Keys("qms")


def _ev(i: int, type_: str, data: dict[str, Any], ts: int) -> dict[str, Any]:
    return {"id": f"e{i}", "type": type_, "timestamp": fmt_ms(ts), "source": "test", "data": data,
            "metadata": {"priority": "normal"}}


def _xadd(r: redis.Redis, events: list[Any]) -> None:
    with r.pipeline(transaction=False) as p:
        for ev in events:
            p.xadd(K.stream, {"e": ev if isinstance(ev, bytes) else orjson.dumps(ev)})
        p.execute()


def _gates_at(r: redis.Redis, start: int, end: int) -> dict[str, int]:
    """gx (gates executed) summed over [start, end) at each resolution, from the raw buckets."""
    out = {}
    for res, step in (("1m", 60_000), ("5m", 300_000), ("1h", HOUR_MS)):
        total = 0
        for b in range(start // step * step, end, step):
            v = r.hget(K.rollup(res, "m", b), "gx")
            total += int(v or 0)
        out[res] = total
    return out


def test_agi001_an_out_of_bounds_cost_is_dead_lettered_and_its_batch_still_counts(r: redis.Redis) -> None:
    """Seen: one review with cost_usd 1e13 among 50 gate runs made the batch's rollup script
    fail, yet the ids were marked applied and acknowledged: the 50 gate runs were lost."""
    t0 = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    events = [_ev(i, "workflow.quality_gate_executed", {"workflow_id": f"W{i}", "gate_name": "lint",
                                                           "passed": i % 2 == 0, "execution_time": 5}, t0 + i * 1000)
              for i in range(50)]
    events.insert(25, _ev(99, "workflow.review_completed", {"workflow_id": "W1", "reviewer": "bot",
                                                            "verdict": "approved", "cost_usd": 1e13}, t0 + 500))
    _xadd(r, events)
    Aggregator(r, K, batch=100).drain()
    assert _gates_at(r, t0, t0 + HOUR_MS) == {"1m": 50, "5m": 50, "1h": 50}
    dead = dead_letters(r, K)
    assert len(dead) == 1 and "data.cost_usd" in dead[0]["reason"] and b'"e99"' in dead[0]["raw"].encode()
    assert dead[0]["id"] == "e99", "operators find a rejected event by its id, whichever way it came"
    assert r.xpending(K.stream, K.group)["pending"] == 0


def test_agi002_a_cost_just_under_the_old_limit_no_longer_blocks_later_batches(r: redis.Redis) -> None:
    """Seen: a review with cost_usd just under 2^63 micro-dollars made every later batch with a
    review cost in that hour fail, and cost_per_review read 9.2 billion."""
    t0 = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    poison = _ev(0, "workflow.review_completed", {"workflow_id": "W0", "reviewer": "bot", "verdict": "approved",
                                                  "cost_usd": 9.2e12}, t0 + 1000)
    _xadd(r, [poison])
    agg = Aggregator(r, K, batch=100)
    agg.drain()
    later = [_ev(i, "workflow.review_completed", {"workflow_id": f"W{i}", "reviewer": "bot", "verdict": "approved",
                                                  "cost_usd": 1.25 * i}, t0 + 2000 + i) for i in range(1, 11)]
    _xadd(r, later)
    agg.drain()
    end = t0 + HOUR_MS
    got = Engine(r, K).dashboard("executive", "1h", end)["data"]["widgets"]
    cost = next(w["data"]["current_value"] for w in got if w["id"] == "cost_per_review")
    assert cost == pytest.approx(sum(1.25 * i for i in range(1, 11)) / 10)
    assert "data.cost_usd" in dead_letters(r, K)[0]["reason"]


def test_agi003_rollup_sums_cannot_overflow(r: redis.Redis) -> None:
    """The largest change one batch may make, applied again and again to one field, sums past
    2^64 without an error, and every reader gets the exact total."""
    t0 = now_ms() // HOUR_MS * HOUR_MS
    key = K.rollup("1h", "m", t0)
    script = r.register_script(APPLY)
    want = {"cost": 0, "neg": 0}
    for n in range(12):
        w = Writes(K.carry)
        big = MAX_DELTA - 1 - n
        w.increments(key, t0 + 10 * HOUR_MS, {"cost": big, "neg": -big})
        w.increments(K.totals("m"), 0, {"cost": big})
        script(keys=[], args=w.script_args())
        want["cost"] += big
        want["neg"] -= big
    assert want["cost"] > 1 << 64
    span = fetch(r, K, ["m"], [t0], t0 + HOUR_MS, t0 + 2 * HOUR_MS)
    assert span.window("m", "cost", t0, t0 + HOUR_MS) == want["cost"]
    assert span.window("m", "neg", t0, t0 + HOUR_MS) == want["neg"]
    assert span.totals["m"]["cost"] == want["cost"]
    with pytest.raises(ValueError):
        Writes(K.carry).increments(key, 0, {"cost": MAX_DELTA})


def test_agi004_a_batch_that_cannot_be_written_is_neither_marked_nor_acknowledged(r: redis.Redis) -> None:
    """A write that would fail inside the transaction (here: a key of the wrong type that the
    batch writes) leaves no trace at all; once the key is repaired, every event counts once."""
    events, end = simulated(hours=3, rate=0.1, seed=5)
    Ingestor(r, K).ingest(events, origin="test")
    r.set(K.registry("gates"), "not a set")          # the batch SADDs gate names here
    before = snapshot(r)
    agg = Aggregator(r, K, batch=10_000, reclaim_idle_ms=0)
    agg.ensure_group()
    with pytest.raises(redis.ResponseError, match="nothing written"):
        agg.step(block_ms=50)
    assert snapshot(r) == before
    assert not [k for k in r.scan_iter("qms:seen:*:*") if b"1" in r.hvals(k)] and not list(r.scan_iter("qms:raw:*"))
    assert r.xpending(K.stream, K.group)["pending"] == len(events)
    assert r.hget(K.meta, "version") is None
    r.delete(K.registry("gates"))
    agg.drain()
    assert_matches_reference(r, events, end)
    assert r.xpending(K.stream, K.group)["pending"] == 0


def _poison(monkeypatch: Any, event_id: str) -> None:
    """Make the aggregation of one event raise, as a bug or a corrupted entity would."""
    real = contrib.direct

    def direct(ev: dict[str, Any], ts: int) -> Any:
        if ev["id"] == event_id:
            raise KeyError("boom")
        return real(ev, ts)
    monkeypatch.setattr(contrib, "direct", direct)


def test_agi005_a_poison_event_is_isolated_and_the_rest_of_its_batch_applies(r: redis.Redis, monkeypatch: Any) -> None:
    """An event that makes the aggregation itself fail (a bug, a corrupted entity) is found by
    bisecting its batch and dead-lettered with the reason; every other event applies."""
    events, end = simulated(hours=3, rate=0.1, seed=6)
    poison = events[len(events) // 2]["id"]
    _poison(monkeypatch, poison)
    Ingestor(r, K).ingest(events, origin="test")
    Aggregator(r, K, batch=10_000).drain()
    dead = dead_letters(r, K)
    assert [d["id"] for d in dead] == [poison] and dead[0]["reason"].startswith("aggregation failed: KeyError")
    assert_matches_reference(r, [e for e in events if e["id"] != poison], end)
    assert r.xpending(K.stream, K.group)["pending"] == 0


# --- property: random valid and extreme events ------------------------------------------------

WFS = [f"WF-{n}" for n in range(6)]
AGENTS = ["qms-a", "qms-b"]
NOW = (now_ms() - 60_000) // 60_000 * 60_000     # a whole minute, already past when the test runs
SPAN_MS = 20 * HOUR_MS

offsets = st.integers(0, SPAN_MS - 1)
wf = st.sampled_from(WFS)
cost = st.one_of(st.just(0), st.just(1_000_000), st.floats(0, 1_000_000, allow_nan=False).map(lambda x: round(x, 6)))
seconds = st.one_of(st.just(0), st.just(604_800), st.integers(0, 604_800))


def _gen(kind: str, **fields: Any) -> Any:
    return st.fixed_dictionaries({"type": st.just(kind), "at": offsets, "data": st.fixed_dictionaries(fields)})


VALID = st.one_of(
    _gen("workflow.pr_created", workflow_id=wf, pr_number=st.sampled_from([1, 2_147_483_647, 42]),
         repository=st.sampled_from(["api", "web"]), author=st.sampled_from(["ann", "bob"]),
         team=st.sampled_from(["core", "edge"])),
    _gen("workflow.step_entered", workflow_id=wf, step=st.sampled_from(["dor_validation", "code_review",
                                                                       "dod_validation", "final_approval"])),
    _gen("workflow.review_started", workflow_id=wf, reviewer=st.sampled_from(["ann", "qms-a"])),
    _gen("workflow.review_completed", workflow_id=wf, reviewer=st.sampled_from(["ann", "qms-a"]),
         verdict=st.sampled_from(["approved", "changes_requested"]), cost_usd=cost),
    _gen("workflow.quality_gate_executed", workflow_id=wf, gate_name=st.sampled_from(["lint", "cov"]),
         passed=st.booleans(), execution_time=seconds),
    _gen("workflow.defect_found", workflow_id=wf, defect_id=st.sampled_from(["D1", "D2", "D3"]),
         severity=st.sampled_from(["critical", "major", "minor"]), stage=st.sampled_from(["review", "production"])),
    _gen("workflow.defect_resolved", defect_id=st.sampled_from(["D1", "D2", "D3"]),
         resolution=st.sampled_from(["fixed", "false_positive"])),
    _gen("workflow.compliance_checked", workflow_id=wf, policy=st.just("sox"), passed=st.booleans()),
    _gen("workflow.completed", workflow_id=wf, outcome=st.sampled_from(["merged", "rejected"])),
    _gen("system.agent_status_changed", agent_id=st.sampled_from(AGENTS),
         status=st.sampled_from(["active", "idle", "overloaded", "down"]), load=st.sampled_from([0, 1, 0.5])),
    _gen("system.queue_depth_updated", queue=st.just("review"), depth=st.sampled_from([0, 10_000_000, 7])),
    _gen("user.survey_submitted", user=st.just("ann"), score=st.sampled_from([1, 5, 3.5])),
)
INVALID = st.one_of(
    _gen("workflow.review_completed", workflow_id=wf, reviewer=st.just("x"), verdict=st.just("approved"),
         cost_usd=st.sampled_from([1e13, 1_000_000.5, -1])),
    _gen("workflow.quality_gate_executed", workflow_id=wf, gate_name=st.just("lint"), passed=st.just(True),
         execution_time=st.sampled_from([604_801, 1e18])),
    _gen("system.queue_depth_updated", queue=st.just("review"), depth=st.sampled_from([10_000_001, 1 << 62])),
    _gen("workflow.pr_created", workflow_id=wf, pr_number=st.sampled_from([0, 1 << 40]), repository=st.just("r"),
         author=st.just("a")),
)


def _consistent(r: redis.Redis) -> None:
    """Each 5m, 1h and 1d bucket (and the histogram's summed ones, timeutil.SUMMED) equals the
    sum of the 1m buckets it covers, field by field."""
    from data.contrib import SUMMED_FAMILIES
    from data.timeutil import SUMMED
    fine: dict[tuple[str, str, int], dict[bytes, int]] = defaultdict(lambda: defaultdict(int))
    coarse: dict[tuple[str, str, int], dict[bytes, int]] = {}
    for key in r.scan_iter("qms:r:*", count=1000):
        _, _, res, fam, start = key.decode().split(":")
        values = {f: int(v) for f, v in r.hgetall(key).items()}
        if res == "1m":
            parents = [("5m", 300_000), ("1h", HOUR_MS), ("1d", 24 * HOUR_MS)]
            if fam in SUMMED_FAMILIES:
                parents += [(x.name, x.step_ms) for x in SUMMED]
            for parent, step in parents:
                bucket = fine[(parent, fam, int(start) // step * step)]
                for f, v in values.items():
                    if not f.startswith(b"~"):         # moments are relative to their own bucket start
                        bucket[f] += v
        else:
            coarse[(res, fam, int(start))] = {f: v for f, v in values.items() if not f.startswith(b"~")}
    for where, values in fine.items():
        assert {f: v for f, v in values.items() if v} == {f: v for f, v in coarse.get(where, {}).items() if v}, where
    assert set(coarse) <= set(fine)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid=st.lists(VALID, min_size=1, max_size=120), invalid=st.lists(INVALID, max_size=6),
       batch=st.integers(1, 60), seed=st.integers(0, 1000))
def test_agi006_random_valid_and_extreme_batches_keep_rollups_exact(r: redis.Redis, valid: list[dict[str, Any]],
                                                                   invalid: list[dict[str, Any]], batch: int,
                                                                   seed: int) -> None:
    r.flushdb()
    start = NOW - SPAN_MS
    good = [_ev(n, g["type"], g["data"], start + g["at"]) for n, g in enumerate(valid)]
    bad = [_ev(10_000 + n, g["type"], g["data"], start + g["at"]) for n, g in enumerate(invalid)]
    rng = random.Random(seed)
    delivery = good + bad + rng.sample(good, k=min(len(good), 5))   # some delivered twice
    rng.shuffle(delivery)
    _xadd(r, delivery)
    Aggregator(r, K, batch=batch).drain()

    assert len(dead_letters(r, K, 1000)) == len(bad)
    assert r.xpending(K.stream, K.group)["pending"] == 0
    _consistent(r)
    eng = Engine(r, K)
    end = to_datetime(NOW)
    for dash in ("executive", "operational", "qa"):
        got = {w["id"]: w["data"] for w in eng.dashboard(dash, "24h", NOW)["data"]["widgets"]}
        want = reference.compute_dashboard(good, dash, end, timedelta(hours=24))
        for kpi, ref in want.items():
            for field in ("current_value", "previous_value"):
                a, b = got[kpi][field], ref[field]
                assert reference.agrees(kpi, a, b), f"{dash}.{kpi}.{field}: engine {a} reference {b}"


def test_agi007_a_full_redis_refuses_the_whole_batch_not_half_of_it() -> None:
    """Over maxmemory, Redis refuses the script at its first write: nothing of the batch is
    written or acknowledged, and once memory is available again every event counts once."""
    from tests.conftest import start_redis_server
    proc, url = start_redis_server()
    try:
        r = redis.Redis.from_url(url)
        events, end = simulated(hours=2, rate=0.1, seed=8)
        Ingestor(r, K).ingest(events, origin="test")
        agg = Aggregator(r, K, batch=10_000, reclaim_idle_ms=0)
        agg.ensure_group()
        r.config_set("maxmemory-policy", "noeviction")
        # Memory runs out between computing the batch and writing it (the lock is taken by then).
        agg.before_commit = lambda: r.config_set("maxmemory", int(r.info("memory")["used_memory"]) // 2)
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            agg.step(block_ms=50)
        agg.before_commit = None
        assert not list(r.scan_iter("qms:r:*")) and not list(r.scan_iter("qms:ent:*"))
        assert r.xpending(K.stream, K.group)["pending"] == len(events)
        r.config_set("maxmemory", 0)
        agg.drain()
        assert_matches_reference(r, events, end)
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("stored", [str((1 << 63) - 1_000), str(-(1 << 63) + 1_000), "12.5", "x", "007"])
def test_agi008_a_rollup_field_the_script_cannot_add_to_stops_the_batch_before_any_write(r: redis.Redis,
                                                                                       stored: str) -> None:
    """A field left near 2^63 (the old overflow bug wrote such sums) or holding what is not an
    integer made HINCRBY fail halfway through the script: the 1m and 5m increments before it
    were written, the batch stayed pending, and each retry added them again. Now a legacy sum
    is carried first and the batch applies once; anything else refuses the whole batch."""
    t0 = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    events = [_ev(i, "workflow.review_completed", {"workflow_id": f"W{i}", "reviewer": "bot", "verdict": "approved",
                                                   "cost_usd": 2}, t0 + 60_000 * i) for i in range(1, 6)]
    r.hset(K.rollup("1h", "m", t0), "cost", stored)
    _xadd(r, events)
    agg = Aggregator(r, K, batch=100, reclaim_idle_ms=0)
    agg.ensure_group()
    if stored.lstrip("-").isdigit() and not stored.startswith("0"):
        for _ in range(3):                # re-deliveries change nothing
            agg.drain()
            agg.r.xadd(K.stream, {"e": orjson.dumps(events[0])})
        agg.drain()
        span = fetch(r, K, ["m"], [t0], t0 + HOUR_MS, t0 + 2 * HOUR_MS)
        assert span.window("m", "cost", t0, t0 + HOUR_MS) == int(stored) + 5 * 2_000_000
        assert _gates_at(r, t0, t0 + HOUR_MS) == {"1m": 0, "5m": 0, "1h": 0}
        assert sum(int(r.hget(K.rollup("1m", "m", t0 + 60_000 * i), "rc") or 0) for i in range(60)) == 5
        assert r.xpending(K.stream, K.group)["pending"] == 0
        return
    for _ in range(3):
        with pytest.raises(redis.ResponseError, match="nothing written"):
            agg.step(block_ms=50)
        agg.reclaim_idle_ms = 0
        agg._last_reclaim = 0.0
    assert not list(r.scan_iter("qms:r:1m:*")) and not list(r.scan_iter("qms:r:5m:*"))
    assert r.hgetall(K.rollup("1h", "m", t0)) == {b"cost": stored.encode()}
    assert r.xpending(K.stream, K.group)["pending"] == len(events)


def test_agi009_a_poison_event_is_acknowledged_only_with_its_dead_letter(r: redis.Redis, monkeypatch: Any) -> None:
    """The lone event a bisection isolates was dead-lettered by a plain MULTI/EXEC: when the
    dead-letter XADD failed there (here: the key is not a stream), the XACK still ran and the
    event was gone without a trace. Its dead letter, count and XACK are one script too."""
    events, _ = simulated(hours=1, rate=0.05, seed=9)
    poison = events[0]["id"]
    _poison(monkeypatch, poison)
    Ingestor(r, K).ingest(events[:1], origin="test")
    r.set(K.deadletter, "not a stream")
    agg = Aggregator(r, K, batch=10, reclaim_idle_ms=0)
    agg.ensure_group()
    with pytest.raises(redis.ResponseError, match="nothing written"):
        agg.step(block_ms=50)
    assert r.xpending(K.stream, K.group)["pending"] == 1 and r.hget(K.meta, "rejected") is None
    r.delete(K.deadletter)
    agg.drain()
    assert [d["id"] for d in dead_letters(r, K)] == [poison]
    assert r.hget(K.meta, "rejected") == b"1" and r.xpending(K.stream, K.group)["pending"] == 0


def test_agi010_a_stream_entry_id_in_the_future_does_not_let_future_events_in(r: redis.Redis) -> None:
    """The aggregator judged "in the future" against the entry id's time. One producer writing
    the stream with an explicit id ten days ahead moved every later entry's id there too (XADD
    * only goes forward), so events dated days ahead counted from then on, for everyone."""
    now = now_ms()
    early = _ev(1, "workflow.quality_gate_executed", {"workflow_id": "W1", "gate_name": "lint", "passed": True},
                now - HOUR_MS)
    ahead = _ev(2, "workflow.quality_gate_executed", {"workflow_id": "W2", "gate_name": "lint", "passed": True},
                now + 2 * 24 * HOUR_MS)
    r.xadd(K.stream, {"e": orjson.dumps(early)}, id=f"{now + 10 * 24 * HOUR_MS}-0")
    _xadd(r, [ahead])
    Aggregator(r, K, batch=10).drain()
    dead = dead_letters(r, K)
    assert len(dead) == 1 and b'"e2"' in dead[0]["raw"].encode() and "in the future" in dead[0]["reason"]
    assert int(r.hget(K.meta, "applied")) == 1


def test_agi011_names_holding_the_separators_keep_their_events_apart(r: redis.Redis) -> None:
    """Names may hold any printable character, but entity ids and fields joined two names with
    "|" or ":": reviewer "ann|x" on W9 and reviewer "ann" on "x|W9" were one review (the first
    one's completion closed ann's pending review and credited ann with its feedback time),
    workflow "W9" policy "a|p" and workflow "W9|a" policy "p" one compliance record, and
    author "ann:ops"'s defect categories showed as ann's skill areas."""
    t0 = NOW - HOUR_MS
    def ev(i: int, type_: str, data: dict[str, Any], dt: int) -> dict[str, Any]:
        return _ev(i, type_, data, t0 + dt)
    events = [
        ev(1, "workflow.pr_created", {"workflow_id": "W9", "pr_number": 1, "repository": "api", "author": "ann",
                                      "team": "core"}, 0),
        ev(2, "workflow.pr_created", {"workflow_id": "x|W9", "pr_number": 2, "repository": "api",
                                      "author": "ann:ops", "team": "core"}, 0),
        ev(3, "workflow.review_started", {"workflow_id": "W9", "reviewer": "ann|x"}, 1_000),
        ev(4, "workflow.review_started", {"workflow_id": "x|W9", "reviewer": "ann"}, 2_000),
        ev(5, "workflow.review_completed", {"workflow_id": "W9", "reviewer": "ann|x", "verdict": "approved"}, 60_000),
        ev(6, "workflow.compliance_checked", {"workflow_id": "W9", "policy": "a|p", "passed": False}, 10_000),
        ev(7, "workflow.compliance_checked", {"workflow_id": "W9|a", "policy": "p", "passed": False}, 20_000),
        ev(8, "workflow.violation_remediated", {"workflow_id": "W9|a", "policy": "p"}, 30_000),
        ev(9, "workflow.defect_found", {"workflow_id": "x|W9", "defect_id": "D1", "severity": "minor",
                                        "category": "sec"}, 40_000),
    ]
    _xadd(r, events)
    Aggregator(r, K).drain()
    assert not dead_letters(r, K)
    eng = Engine(r, K)
    end = to_datetime(NOW)
    views = [("developer", u) for u in ("ann", "ann|x", "ann:ops")] + [(d, None) for d in ("executive", "qa")]
    for dash, user in views:
        got = {w["id"]: w["data"] for w in eng.dashboard(dash, "24h", NOW, user=user)["data"]["widgets"]}
        want = reference.compute_dashboard(events, dash, end, timedelta(hours=24), user=user)
        for kpi, ref in want.items():
            a, b = got[kpi]["current_value"], ref["current_value"]
            assert reference.agrees(kpi, a, b), f"{dash}/{user} {kpi}: {a} != {b}"


def test_agi012_an_ingest_that_cannot_add_to_the_stream_marks_nothing_seen(r: redis.Redis) -> None:
    """Ingest marked an id seen (SADD) and then failed to XADD it (here: the stream key is not
    a stream): the event was in no stream, and sending it again counted it as a duplicate, so
    it was lost for good. The script now checks its keys first and writes nothing if one is
    wrong; once repaired, the same request is accepted."""
    ev = _ev(1, "workflow.quality_gate_executed", {"workflow_id": "W1", "gate_name": "lint", "passed": True},
             now_ms() - 60_000)
    r.set(K.stream, "not a stream")
    with pytest.raises(redis.ResponseError, match="nothing written"):
        Ingestor(r, K).ingest([ev], origin="test")
    assert not list(r.scan_iter("qms:seen:*:*")) and r.hget(K.meta, "ingested") is None
    r.delete(K.stream)
    assert Ingestor(r, K).ingest([ev], origin="test").accepted == 1
    assert r.xlen(K.stream) == 1


def test_agi013_a_bucket_that_cannot_be_read_fails_the_read(r: redis.Redis) -> None:
    """The buckets are read in one raw pipeline (error replies come back as values): a bucket
    Redis refuses to read (here a key of the wrong type) raises, never reads as zero."""
    t0 = now_ms() // HOUR_MS * HOUR_MS
    r.hset(K.rollup("1h", "m", t0), "cost", 5)
    assert fetch(r, K, ["m"], [t0], t0 + HOUR_MS, t0 + 2 * HOUR_MS).window("m", "cost", t0, t0 + HOUR_MS) == 5
    r.delete(K.rollup("1h", "m", t0))
    r.set(K.rollup("1h", "m", t0), "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        fetch(r, K, ["m"], [t0], t0 + HOUR_MS, t0 + 2 * HOUR_MS)


def test_agi014_the_registries_are_read_once_per_data_version(r: redis.Redis) -> None:
    """Engine.names() (every page layout and filter picker reads it) keeps the registries for
    the data version it read them at, and reads them again once a batch made a new one."""
    from data.engine import Engine
    t0 = now_ms() - 60_000
    Ingestor(r, K).ingest([{"id": "n1", "type": "workflow.pr_created", "timestamp": fmt_ms(t0), "source": "t",
                            "data": {"workflow_id": "W1", "pr_number": 1, "repository": "api", "author": "ann"}}])
    Aggregator(r, K).drain()
    engine = Engine(r, K)
    assert engine.names()["repositories"] == ["api"]
    r.sadd(K.registry("repositories"), "web")            # not through a batch: no new version
    assert engine.names()["repositories"] == ["api"], "kept for the version it was read at"
    Ingestor(r, K).ingest([{"id": "n2", "type": "workflow.pr_created", "timestamp": fmt_ms(t0 + 1), "source": "t",
                            "data": {"workflow_id": "W2", "pr_number": 2, "repository": "db", "author": "ann"}}])
    Aggregator(r, K).drain()
    assert engine.names()["repositories"] == ["api", "db", "web"]
