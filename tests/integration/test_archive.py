"""The event archive on a real Redis: raw events older than the hot window move to Parquet
files (data.archive_move), and drill-downs, their exports, entity pages and the reviewer
ledger read across Redis and the archive exactly as they read Redis alone before the move —
the same bytes, the same order, the same cursors and counts."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

import pytest

from data import archive, archive_move, contrib
from data.aggregator import Aggregator
from data.keys import Keys
from data.simulator import Simulator
from data.timeutil import DAY_MS, HOUR_MS, fmt_ms, now_ms, parse_iso, to_datetime

NOW = now_ms() // HOUR_MS * HOUR_MS
START = NOW - 4 * DAY_MS + 3 * HOUR_MS          # history over five event days
HOT_H = 40                                       # the hot window of these tests: the events of 40 h ago and older move
K = Keys("qms")
KPIS = ("gate_pass_rate", "sla_adherence", "time_to_merge", "average_review_cycle_time", "defect_resolution_time",
        "defect_prevention_rate", "audit_readiness_score", "critical_defects", "total_active_reviews",
        "agent_utilization_rate",
        "total_gates_executed")


@pytest.fixture(scope="module")
def simulated() -> list[dict[str, Any]]:
    return list(Simulator(seed=11, rate=0.03, start=to_datetime(START)).events_between(
        to_datetime(START), to_datetime(NOW - 60_000)))


@pytest.fixture
def loaded(app: Any, r: Any, simulated: list[dict[str, Any]]) -> Iterator[tuple[Any, archive.Archive]]:
    svc = app.server.extensions["qms"]
    for i in range(0, len(simulated), 5000):
        res = svc.ingestor.ingest(simulated[i:i + 5000], origin="test")
        assert res.rejected == 0, res.errors[:3]
    Aggregator(r, K).drain(120)
    arch = archive.of(svc.keys)
    assert arch is not None
    yield svc, arch
    archive.forget(svc.keys)


def data_of(res: Any) -> Any:
    assert res.status_code == 200, res.data[:300]
    return res.json["response"]["data"]


def moved_days(arch: archive.Archive) -> list[int]:
    return arch.days()


def snapshot(client: Any, simulated: list[dict[str, Any]]) -> dict[str, Any]:
    """Every answer that reads raw events: drill-down pages walked by cursor (7 days), their
    CSV and JSON Lines exports, workflow and agent pages, a reviewer's ledger rows."""
    out: dict[str, Any] = {}
    end = fmt_ms(NOW)
    for kpi in KPIS:
        pages, cursor = [], None
        while True:
            url = f"/api/metrics/{kpi}/events?timeframe=7d&end={end}&limit=300" + (f"&cursor={cursor}" if cursor else "")
            data = data_of(client.get(url))
            data.pop("scope", None)
            pages.append(data)
            cursor = data["next_cursor"]
            if not cursor:
                break
        out[kpi] = pages
        for fmt in ("csv", "jsonl"):
            res = client.get(f"/api/metrics/{kpi}/events?timeframe=7d&end={end}&format={fmt}")
            assert res.status_code == 200
            out[f"{kpi}.{fmt}"] = res.data
    wfs = Counter(e["data"]["workflow_id"] for e in simulated if "workflow_id" in e["data"]
                  and parse_iso(e["timestamp"]) < START + DAY_MS)
    for wf, _ in wfs.most_common(6):
        out["wf:" + wf] = data_of(client.get(f"/api/entities/workflow/{wf}"))
    agents = sorted({e["data"]["agent_id"] for e in simulated if e["data"].get("agent_id")})[:4]
    for ag in agents:
        out["ag:" + ag] = data_of(client.get(f"/api/entities/agent/{ag}?timeframe=7d&end={end}&limit=5000"))
    reviewers = Counter(e["data"]["reviewer"] for e in simulated if e["data"].get("reviewer"))
    for rv, _ in reviewers.most_common(2):
        out["rv:" + rv] = data_of(client.get(f"/api/reviewers/{rv}?timeframe=7d&end={end}"))
    return out


def raw_counts(r: Any, day: int) -> tuple[int, int]:
    """(raw bodies, raw index members) Redis holds for a day."""
    idx = sum(r.zcard(k) for k in r.scan_iter(match=f"qms:rawidx:*:{day}"))
    return r.hlen(K.raw(day)), idx


def test_arc001_a_drilldown_spanning_redis_and_the_archive_reads_as_before_the_move(
        client: Any, r: Any, loaded: Any, simulated: list[dict[str, Any]]) -> None:
    svc, arch = loaded
    before = snapshot(client, simulated)
    assert sum(len(p["events"]) for p in before["gate_pass_rate"]) > 100
    from data import rawstore
    from data.events import GATE_TYPES
    week = (NOW - 7 * DAY_MS, NOW)
    window_before = rawstore.window(r, svc.keys, GATE_TYPES, *week, 10**6)
    eix_before = sum(r.zcard(k) for k in r.scan_iter(match="qms:eix:*"))
    report = archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    edge = NOW - HOT_H * HOUR_MS           # the hot window is hours: the day it starts in moves in part
    moved = [e for e in simulated if parse_iso(e["timestamp"]) < edge]
    by_day = Counter(parse_iso(e["timestamp"]) // DAY_MS for e in simulated)
    old = sorted({parse_iso(e["timestamp"]) // DAY_MS for e in moved})
    assert len(old) >= 2 and report.days == old and moved_days(arch) == old
    assert report.written == report.removed == len(moved)
    assert arch.stats()["rows"] == report.written
    for d in by_day:                       # gone from Redis: bodies, type indexes, entity indexes
        if d < edge // DAY_MS:
            assert raw_counts(r, d) == (0, 0)
    kept = Counter(parse_iso(e["timestamp"]) // DAY_MS for e in simulated if parse_iso(e["timestamp"]) >= edge)
    assert all(raw_counts(r, d) == (kept[d], kept[d]) for d in by_day if d >= edge // DAY_MS)
    eix_after = sum(r.zcard(k) for k in r.scan_iter(match="qms:eix:*"))
    refs = sum(len(contrib.entity_refs(e)) for e in moved)
    assert eix_before - eix_after == refs
    after = snapshot(client, simulated)
    assert after.keys() == before.keys()
    assert rawstore.window(r, svc.keys, GATE_TYPES, *week, 10**6) == window_before    # read through scan now
    assert len(window_before[0]) > 100 and window_before[1] is False
    for key in before:
        assert after[key] == before[key], key


def test_arc002_a_late_event_for_an_archived_day_is_read_and_goes_to_a_further_part(
        app: Any, client: Any, r: Any, loaded: Any, simulated: list[dict[str, Any]]) -> None:
    svc, arch = loaded
    archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    day = arch.days()[0]
    late = {"id": "late-gate-1", "type": "workflow.quality_gate_executed", "timestamp": fmt_ms(day * DAY_MS + 5 * HOUR_MS),
            "source": "ci", "data": {"workflow_id": "W-late", "gate_name": "lint", "passed": False,
                                     "agent_id": "qms-agent-late", "execution_time": 12}}
    assert svc.ingestor.ingest([late], origin="test").accepted == 1
    Aggregator(r, K).drain(60)
    assert r.hexists(K.raw(day), "late-gate-1")

    def ids() -> list[str]:
        data = data_of(client.get(f"/api/metrics/total_gates_executed/events?timeframe=7d&end={fmt_ms(NOW)}&limit=10000"))
        return [e["id"] for e in data["events"]]
    seen = ids()
    assert seen.count("late-gate-1") == 1
    report = archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    assert (report.written, report.removed, report.parts) == (1, 1, 1)
    assert [p.name for p in arch.parts(day)] == ["part-00000.parquet", "part-00001.parquet"]
    assert ids() == seen
    assert data_of(client.get("/api/entities/workflow/W-late"))["events"][0]["id"] == "late-gate-1"


def test_arc003_a_crash_between_writing_and_deleting_doubles_nothing(
        client: Any, r: Any, loaded: Any, simulated: list[dict[str, Any]]) -> None:
    svc, arch = loaded
    before = snapshot(client, simulated)
    cutoff = archive_move.hot_cutoff(NOW, HOT_H)
    keys = [k for d in range(cutoff - 6, cutoff + 1) for k in [K.raw(d).encode(), *r.scan_iter(match=f"qms:rawidx:*:{d}")]
            if r.exists(k)] + list(r.scan_iter(match="qms:eix:*"))
    dumps = {k: (r.dump(k), r.pttl(k)) for k in keys}
    first = archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    for k, (dump, ttl) in dumps.items():          # as if the process died before its deletes ran
        r.restore(k, max(ttl, 0), dump, replace=True)
    # ... and a write cut short left a temporary file behind
    (arch.day_dir(arch.days()[0]) / ".part-00001.deadbeef.tmp").write_bytes(b"PAR1 half a file")
    arch.day_dir(cutoff).mkdir(parents=True, exist_ok=True)                                 # the split day
    (arch.day_dir(cutoff) / ".part-00001.cafebabe.tmp").write_bytes(b"PAR1 half a file")
    assert snapshot(client, simulated) == before         # both copies: each event read once
    again = archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    assert again.written == 0 and again.removed == first.removed and again.parts == 0
    assert arch.stats()["rows"] == first.written
    assert not [p for d in arch.days() for p in arch.day_dir(d).iterdir() if p.name.endswith(".tmp")]
    assert snapshot(client, simulated) == before


def test_arc004_one_archiver_at_a_time(r: Any, loaded: Any) -> None:
    svc, arch = loaded
    r.set("qms:archive:lock", "someone-else", px=60_000)
    with pytest.raises(archive_move.ArchiveBusy):
        archive_move.move(r, K, arch, hot_hours=HOT_H, retention_days=30, now=NOW)
    assert arch.days() == []
    assert r.get("qms:archive:lock") == b"someone-else"


def test_arc005_cli_archive_then_rebuild(r: Any, redis_url: str, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    evs = [{"id": f"c{i}", "type": "workflow.quality_gate_executed", "timestamp": fmt_ms(NOW - 3 * DAY_MS + i * 60_000),
            "source": "ci", "data": {"workflow_id": f"W{i % 3}", "gate_name": "lint", "passed": i % 4 != 0,
                                     "agent_id": "qms-agent-c", "execution_time": 3}} for i in range(40)]
    with r.pipeline(transaction=False) as p:
        for ev in evs:
            p.xadd(K.stream, {"e": __import__("orjson").dumps(ev)})
        p.execute()
    Aggregator(r, K).drain(60)
    env = {**os.environ, "REDIS_URL": redis_url, "QMS_DATA_DIR": str(tmp_path), "QMS_RAW_HOT_HOURS": "24"}

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, str(root / "cli.py"), *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    before = {k: r.hgetall(k) for k in r.scan_iter(match="qms:r:1h:*")}
    out = cli("archive")
    assert "archived 40 events in 1 part file(s) over 1 day(s); 40 removed from Redis" in out, out
    assert (tmp_path / "archive" / "qms" / "events").is_dir()
    assert not list(r.scan_iter(match="qms:raw:*"))
    assert "archived 0 events" in cli("archive")
    out = cli("rebuild", "--from", fmt_ms(NOW - 4 * DAY_MS)[:10], "--quiet")
    assert "replayed 40 events" in out, out
    assert {k: r.hgetall(k) for k in r.scan_iter(match="qms:r:1h:*")} == before


def test_arc006_the_hot_window_is_hours_events_before_it_move_from_the_day_it_starts_in(
        client: Any, r: Any, loaded: Any, simulated: list[dict[str, Any]]) -> None:
    """The hot window is QMS_RAW_HOT_HOURS, not the whole days around it: the day the window
    starts in moves up to its edge (its Redis share would otherwise hold up to a day more than
    the window, and Redis's bytes per event move with the hour of the day). Each later run
    moves what has crossed the edge since, into a further part of that day."""
    svc, arch = loaded
    before = snapshot(client, simulated)
    edge = (NOW // DAY_MS - 2) * DAY_MS + 12 * HOUR_MS          # noon two days ago
    hot = (NOW - edge) / HOUR_MS
    ts = [parse_iso(e["timestamp"]) for e in simulated]
    day = edge // DAY_MS

    def split(at: int) -> tuple[int, int]:
        return sum(1 for t in ts if t // DAY_MS == day and t < at), sum(1 for t in ts if t // DAY_MS == day and t >= at)

    first = archive_move.move(r, K, arch, hot_hours=hot, retention_days=30, now=NOW)
    assert first.written == sum(1 for t in ts if t < edge)
    older, newer = split(edge)
    assert older > 0 and newer > 0
    assert raw_counts(r, day) == (newer, newer)
    assert arch.ids(day) == {e["id"] for e, t in zip(simulated, ts) if t // DAY_MS == day and t < edge}
    assert snapshot(client, simulated) == before          # read across the split day as before
    later = archive_move.move(r, K, arch, hot_hours=hot, retention_days=30, now=NOW + 3 * HOUR_MS)
    crossed = sum(1 for t in ts if edge <= t < edge + 3 * HOUR_MS)
    assert crossed > 0 and (later.written, later.removed, later.parts) == (crossed, crossed, 1)
    assert raw_counts(r, day) == (split(edge + 3 * HOUR_MS)[1],) * 2
    assert [p.name for p in arch.parts(day)] == ["part-00000.parquet", "part-00001.parquet"]
    again = archive_move.move(r, K, arch, hot_hours=hot, retention_days=30, now=NOW + 3 * HOUR_MS)
    assert (again.written, again.removed, again.parts, again.days) == (0, 0, 0, [])
    assert snapshot(client, simulated) == before
    # A crash between a slice's HDEL and its ZREMs leaves index entries whose bodies are gone
    # (already archived): the next run drops them instead of reading them on every run, and
    # counts no day it moved nothing of. An entry without a body that the archive does not
    # hold (on a cluster, a late event's index entry written before its body) stays.
    gone = [(e, t) for e, t in zip(simulated, ts) if t // DAY_MS == day and t < edge][:3]
    for e, t in gone:
        r.zadd(K.raw_index(e["type"], day), {e["id"]: t})
    r.zadd(K.raw_index(gone[0][0]["type"], day), {"late-body-on-its-way": edge - 1})
    assert raw_counts(r, day)[1] == split(edge + 3 * HOUR_MS)[1] + 4
    healed = archive_move.move(r, K, arch, hot_hours=hot, retention_days=30, now=NOW + 3 * HOUR_MS)
    assert (healed.written, healed.removed, healed.parts, healed.days) == (0, 0, 0, [])
    assert raw_counts(r, day) == (split(edge + 3 * HOUR_MS)[1], split(edge + 3 * HOUR_MS)[1] + 1)
    assert r.zscore(K.raw_index(gone[0][0]["type"], day), "late-body-on-its-way") == edge - 1
    r.zrem(K.raw_index(gone[0][0]["type"], day), "late-body-on-its-way")
    assert snapshot(client, simulated) == before
