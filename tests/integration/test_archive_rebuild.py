"""`cli.py rebuild --from DATE` (data.archive_rebuild) on a real Redis: rollups recomputed
from the archive and the hot raw events, after a change of the SLA target, are byte for byte
those of a straight aggregation of the same events under the new target; buckets before
DATE are left as they were; events aggregated while the rebuild runs are counted once; with
K = 2 partitions the same, and a batch cut short after writing its raw copies is counted once."""
from __future__ import annotations

import time
from typing import Any, Iterator

import orjson
import pytest
import redis

from data import archive, archive_move, archive_rebuild
from data.aggregator import Aggregator
from data.ingest import Ingestor
from data.keys import Keys
from data.simulator import Simulator
from data.timeutil import DAY_MS, HOUR_MS, fmt_ms, now_ms, parse_iso, to_datetime

NOW = now_ms() // HOUR_MS * HOUR_MS
FIXED_NOW = NOW + 30 * 60_000             # every aggregation of a test runs "at" this instant
START = NOW - 4 * DAY_MS + 3 * HOUR_MS
FROM = (START // DAY_MS + 2) * DAY_MS       # rebuild from the third event day on
K = Keys("qms")


@pytest.fixture(scope="module")
def simulated() -> list[dict[str, Any]]:
    return list(Simulator(seed=23, rate=0.02, start=to_datetime(START)).events_between(
        to_datetime(START), to_datetime(NOW - 60_000)))


@pytest.fixture
def live(app: Any, r: Any, simulated: list[dict[str, Any]], monkeypatch: Any) -> Iterator[Any]:
    """The events aggregated live (SLA 8 h), the two oldest days moved to the archive."""
    import data.aggregator
    monkeypatch.setattr(data.aggregator, "now_ms", lambda: FIXED_NOW)
    svc = app.server.extensions["qms"]
    for i in range(0, len(simulated), 5000):
        assert svc.ingestor.ingest(simulated[i:i + 5000], origin="test").rejected == 0
    Aggregator.from_settings(r, svc.settings).drain(120)
    arch = archive.of(svc.keys)
    assert arch is not None
    assert archive_move.move(r, K, arch, hot_hours=40, retention_days=30, now=NOW).written > 0
    yield svc
    archive.forget(svc.keys)


def straight(r: Any, settings: Any, prefix: str, events: list[dict[str, Any]]) -> Keys:
    """A straight aggregation with the settings' partitions: the events in (timestamp, id) order
    onto a fresh prefix's (root) stream."""
    keys = Keys(prefix, partitions=settings.aggregation_partitions)
    with r.pipeline(transaction=False) as p:
        for ev in sorted(events, key=lambda e: (parse_iso(e["timestamp"]), e["id"])):
            p.xadd(keys.inbox, {"e": orjson.dumps(ev)})
        p.execute()
    Aggregator.from_settings(r, settings.replace(key_prefix=prefix)).drain(120)
    return keys


def buckets(r: Any, prefix: str, dump: bool = True) -> dict[bytes, Any]:
    """Every rollup bucket and total of a prefix (every partition's), by its name under `qms`:
    DUMP bytes, or (dump=False) the non-zero fields — a +1 and a -1 applied in different
    batches leave a 0 field that one batch would not write: the sums are what must be equal."""
    out: dict[bytes, Any] = {}
    for pattern in (":r:*", ":tot:*", ":{*}:r:*", ":{*}:tot:*"):
        for k in r.scan_iter(match=prefix + pattern, count=10_000):
            if dump:
                out[b"qms" + k[len(prefix):]] = r.dump(k)
            else:
                fields = {f: v for f, v in r.hgetall(k).items() if v != b"0"}
                if fields:
                    out[b"qms" + k[len(prefix):]] = fields
    return out


def contents(r: Any, prefix: str) -> dict[bytes, dict[bytes, bytes]]:
    return buckets(r, prefix, dump=False)


def start_of(key: bytes) -> int | None:
    parts = [x for x in key.split(b":") if not x.startswith(b"{")]   # qms[:{i}]:r:<res>:<fam>:<start>
    return int(parts[4]) if parts[1] == b"r" else None


def rebuilt_like_straight(r: Any, settings: Any, keys: Keys, simulated: list[dict[str, Any]]) -> Any:
    """After an SLA change, a rebuild from FROM gives byte for byte the buckets of a straight
    aggregation from FROM on, leaves older ones as they were, takes the entity states."""
    before = buckets(r, "qms")
    new = settings.replace(sla_hours=4.0)
    ref = buckets(r, straight(r, new, "ref", simulated).p)
    later = [k for k in ref if start_of(k) is None or start_of(k) >= FROM]     # type: ignore[operator]
    assert any(before.get(k) != ref[k] for k in later)          # the SLA change matters: the test can fail
    r.hset(keys.meta, mapping={"daily_from": FROM + 2 * DAY_MS,   # as if days were written only since then
                               "summed_from": FROM + 3 * DAY_MS})  # and the summed buckets later still
    report = archive_rebuild.rebuild(r, new, FROM)
    assert report.events == len(simulated) and report.caught_up == 0
    assert int(r.hget(keys.meta, "daily_from")) == FROM          # the replayed days are whole now
    assert int(r.hget(keys.meta, "summed_from")) == FROM         # and the summed buckets
    after = buckets(r, "qms")
    for k in later:
        assert after.get(k) == ref[k], k
    assert {k for k in after if start_of(k) is None or start_of(k) >= FROM} == set(later)
    for k, dump in before.items():                              # before DATE: as they were
        if start_of(k) is not None and start_of(k) < FROM:      # type: ignore[operator]
            assert after[k] == dump, k
    ents = [k for pattern in ("ref:ent:*", "ref:{*}:ent:*") for k in r.scan_iter(match=pattern)]
    assert ents
    for k in ents:                                              # entity states: the new target's
        assert r.get(b"qms" + k[3:]) == r.get(k), k
    assert not list(r.scan_iter(match="qms~rebuild:*"))          # the shadow is gone
    assert all(int(r.hget(pk.meta, "version")) > 0 for pk in keys.parts())
    assert not any(r.exists(pk.lock) for pk in keys.parts())     # the aggregators' locks given back
    return before


def test_arb001_rebuild_after_an_sla_change_equals_a_straight_aggregation_byte_for_byte(
        r: Any, live: Any, simulated: list[dict[str, Any]]) -> None:
    rebuilt_like_straight(r, live.settings, K, simulated)


def test_arb002_a_full_rebuild_with_events_arriving_meanwhile_counts_each_once(
        app: Any, r: Any, live: Any, simulated: list[dict[str, Any]]) -> None:
    svc = live
    extra = [{"id": f"meanwhile-{i}", "type": "workflow.quality_gate_executed",
              "timestamp": fmt_ms(START + HOUR_MS + i * 60_000), "source": "ci",   # a day already replayed
              "data": {"workflow_id": f"W-m{i}", "gate_name": "lint", "passed": i % 2 == 0,
                       "agent_id": "qms-agent-m", "execution_time": 5 + i}} for i in range(6)]
    calls = []

    def meanwhile(_n: int) -> None:            # the live aggregator applies a batch mid-rebuild
        if not calls:
            assert svc.ingestor.ingest(extra, origin="test").accepted == len(extra)
            Aggregator.from_settings(r, svc.settings).drain(60)
        calls.append(_n)
    report = archive_rebuild.rebuild(r, svc.settings, 0, progress=meanwhile, feed=500)
    assert calls and report.caught_up == len(extra)
    ref = contents(r, straight(r, svc.settings, "ref", simulated + extra).p)
    got = contents(r, "qms")
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == ref[k], k


# --- K = 2 partitions --------------------------------------------------------------------

K2 = Keys("qms", partitions=2)


@pytest.fixture
def live2(r: Any, settings: Any, simulated: list[dict[str, Any]], monkeypatch: Any) -> Iterator[Any]:
    """The events aggregated live by K = 2 partitions (SLA 8 h), the two oldest days archived."""
    import data.aggregator
    monkeypatch.setattr(data.aggregator, "now_ms", lambda: FIXED_NOW)
    s2 = settings.replace(aggregation_partitions=2)
    for i in range(0, len(simulated), 5000):
        assert Ingestor(r, K2).ingest(simulated[i:i + 5000]).rejected == 0
    Aggregator.from_settings(r, s2).drain(120)
    arch = archive.configure(K2, s2)
    assert archive_move.move(r, K2, arch, hot_hours=40, retention_days=30, now=NOW).written > 0
    yield s2
    archive.forget(K2)


def test_arb003_two_partitions_rebuild_equals_a_straight_two_partition_aggregation_byte_for_byte(
        r: Any, live2: Any, simulated: list[dict[str, Any]]) -> None:
    before = rebuilt_like_straight(r, live2, K2, simulated)
    assert {k.split(b":")[1] for k in before} == {b"{0}", b"{1}"}       # both partitions hold buckets


class CutShort(Aggregator):
    """An aggregator whose process dies after a batch's global writes (raw store, indexes)
    and before its script: the raw copies are there, the events are not applied."""

    def _global_writes(self, g: Any, latest: Any) -> None:
        super()._global_writes(g, latest)
        raise redis.ConnectionError("cut short after the global writes")


def test_arb004_raw_copies_of_a_batch_cut_short_are_counted_once(
        r: Any, live2: Any, simulated: list[dict[str, Any]]) -> None:
    """A batch wrote its raw copies, then its process died: the rebuild must not count those
    events (they are not applied); the live aggregator applies them after the swap, once.
    Before this, the raw store was the rebuild's truth and they were counted twice."""
    extra = [{"id": f"cut-{i}", "type": "workflow.quality_gate_executed",
              "timestamp": fmt_ms(NOW - 2 * HOUR_MS + i * 60_000), "source": "ci",
              "data": {"workflow_id": f"W-cut{i}", "gate_name": "lint", "passed": i % 2 == 0,
                       "agent_id": "qms-agent-c", "execution_time": 3 + i}} for i in range(8)]
    assert Ingestor(r, K2).ingest(extra).accepted == len(extra)
    cut = CutShort.from_settings(r, live2, lock_ms=200)
    day = (NOW - 2 * HOUR_MS) // DAY_MS
    crashes = 0
    for _ in range(8):
        try:
            cut.step(block_ms=0)
        except redis.ConnectionError:
            crashes += 1
        if all(r.hexists(K2.raw(d), ev["id"]) for ev in extra for d in {parse_iso(ev["timestamp"]) // DAY_MS}):
            break
    assert crashes >= 1
    assert all(r.hexists(K2.raw(parse_iso(ev["timestamp"]) // DAY_MS), ev["id"]) for ev in extra)
    assert day >= FROM // DAY_MS
    time.sleep(0.3)                                            # the dead process's locks expire
    new = live2.replace(sla_hours=4.0)
    report = archive_rebuild.rebuild(r, new, 0)
    assert report.events == len(simulated)                     # the cut-short batch's events wait
    Aggregator.from_settings(r, new).drain(60)                 # re-delivered and applied, once
    ref = buckets(r, straight(r, new, "ref", simulated + extra).p, dump=False)
    got = buckets(r, "qms", dump=False)
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == ref[k], k


def test_arb005_the_archive_keeps_its_retention_and_a_rebuild_refuses_a_pruned_history(
        r: Any, live: Any, simulated: list[dict[str, Any]]) -> None:
    """The mover prunes archived days past the retention and says so in the archive's meta;
    a rebuild (which needs every event of every entity) refuses that archive unless told."""
    arch = archive.of(live.keys)
    days = arch.days()
    assert len(days) >= 2
    keep = NOW // DAY_MS - days[1]                         # the oldest archived day falls out
    report = archive_move.move(r, K, arch, hot_hours=40, retention_days=30, now=NOW, keep_days=keep)
    assert report.pruned == days[:1] and arch.days() == days[1:]
    assert int(r.hget("qms:archive:meta", "pruned_before")) == days[1]
    with pytest.raises(ValueError, match="retention removed the days before"):
        archive_rebuild.rebuild(r, live.settings, FROM)
    lost = sum(1 for ev in simulated if parse_iso(ev["timestamp"]) // DAY_MS < days[1])
    report2 = archive_rebuild.rebuild(r, live.settings, FROM, allow_pruned=True)
    assert lost > 0 and report2.events == len(simulated) - lost
