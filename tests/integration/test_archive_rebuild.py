"""`cli.py rebuild --from DATE` (data.archive_rebuild) on a real Redis: rollups recomputed
from the archive and the hot raw events, after a change of the SLA target, are byte for byte
those of a straight aggregation of the same events under the new target; buckets before
DATE are left as they were; events aggregated while the rebuild runs are counted once."""
from __future__ import annotations

from typing import Any, Iterator

import orjson
import pytest

from data import archive, archive_move, archive_rebuild
from data.aggregator import Aggregator
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
    """A straight aggregation: the events in (timestamp, id) order onto a fresh prefix's stream."""
    keys = Keys(prefix)
    with r.pipeline(transaction=False) as p:
        for ev in sorted(events, key=lambda e: (parse_iso(e["timestamp"]), e["id"])):
            p.xadd(keys.stream, {"e": orjson.dumps(ev)})
        p.execute()
    Aggregator.from_settings(r, settings.replace(key_prefix=prefix)).drain(120)
    return keys


def buckets(r: Any, prefix: str) -> dict[bytes, bytes]:
    """Every rollup bucket and total of a prefix, by its name under `qms`, as DUMP bytes."""
    out = {}
    for pattern in (":r:*", ":tot:*"):
        for k in r.scan_iter(match=prefix + pattern, count=10_000):
            out[b"qms" + k[len(prefix):]] = r.dump(k)
    return out


def contents(r: Any, prefix: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every bucket's and total's non-zero fields (a +1 and a -1 applied in different batches
    leave a 0 field that one batch would not write: the sums are what must be equal)."""
    out = {}
    for pattern in (":r:*", ":tot:*"):
        for k in r.scan_iter(match=prefix + pattern, count=10_000):
            fields = {f: v for f, v in r.hgetall(k).items() if v != b"0"}
            if fields:
                out[b"qms" + k[len(prefix):]] = fields
    return out


def start_of(key: bytes) -> int | None:
    parts = key.split(b":")
    return int(parts[4]) if parts[1] == b"r" else None


def test_arb001_rebuild_after_an_sla_change_equals_a_straight_aggregation_byte_for_byte(
        r: Any, live: Any, simulated: list[dict[str, Any]]) -> None:
    before = buckets(r, "qms")
    new = live.settings.replace(sla_hours=4.0)
    ref = buckets(r, straight(r, new, "ref", simulated).p)
    later = [k for k in ref if start_of(k) is None or start_of(k) >= FROM]     # type: ignore[operator]
    assert any(before.get(k) != ref[k] for k in later)          # the SLA change matters: the test can fail
    r.hset(K.meta, "daily_from", FROM + 2 * DAY_MS)               # as if days were written only since then
    report = archive_rebuild.rebuild(r, new, FROM)
    assert report.events == len(simulated) and report.caught_up == 0
    assert int(r.hget(K.meta, "daily_from")) == FROM              # the replayed days are whole now
    after = buckets(r, "qms")
    for k in later:
        assert after.get(k) == ref[k], k
    assert {k for k in after if start_of(k) is None or start_of(k) >= FROM} == set(later)
    for k, dump in before.items():                              # before DATE: as they were
        if start_of(k) is not None and start_of(k) < FROM:      # type: ignore[operator]
            assert after[k] == dump, k
    for k in r.scan_iter(match="ref:ent:*"):                    # entity states: the new target's
        assert r.get(b"qms" + k[3:]) == r.get(k), k
    assert not list(r.scan_iter(match="qms~rebuild:*"))          # the shadow is gone
    assert int(r.hget(K.meta, "version")) > 0


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
