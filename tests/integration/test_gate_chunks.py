"""The window's gate sums from kept quarter hours (data.gate_chunks) on a real Redis: equal to
those of the window's runs read whole, and reading again only the quarters whose
runs changed — a late run, a new one — while a late pr_created moves runs to their
repository without reading them again."""
from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import pytest

from dashboards import computed
from data import rawstore, views
from data.aggregator import Aggregator
from data.engine import Engine
from data.events import GATE_TYPES
from data.gate_chunks import CHUNK_MS, GateChunks, chunks_of, digest, fold
from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, fmt_ms, now_ms
from tests.helpers import busy_events

KEYS = Keys("qms")
GATE = "workflow.quality_gate_executed"


@pytest.fixture
def loaded(r: Any) -> dict[str, Any]:
    end = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    events = busy_events(6, end, 11, 0.3, after_ms=30 * MINUTE_MS)
    Ingestor(r, KEYS).ingest(events)
    Aggregator(r, KEYS, batch=1000).drain()
    ctx = SimpleNamespace(redis=r, keys=Keys.of(r, "qms"), engine=Engine(r, KEYS))
    return {"r": r, "end": end, "ctx": ctx}


def plain(ctx: Any, cuts: list[int]) -> views.GateSums:
    hits, more = rawstore.window(ctx.redis, ctx.keys, GATE_TYPES, cuts[0], cuts[-1], 10**6)
    assert not more
    runs = [(ts, ev) for ts, _, ev in hits]
    info = computed.workflow_info(ctx, [(ev.get("data") or {}).get("workflow_id") for _, ev in runs])
    return fold([digest(runs, info, 0)], cuts, info)


def same(got: views.GateSums | None, want: views.GateSums) -> bool:
    assert got is not None
    assert got.keys() == want.keys()
    for k, (v, n) in want.items():
        assert got[k][1] == n, k
        assert math.isclose(got[k][0], v, rel_tol=1e-12, abs_tol=1e-9), (k, got[k], v)
    return True


class Reads:
    """GateChunks.sums' reads, counted: the spans of runs and the workflows asked."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.spans: list[tuple[int, int]] = []

    def read(self, s: int, e: int) -> Any:
        self.spans.append((s, e))
        return computed.window_events(self.ctx, GATE_TYPES, s, e)

    def info(self, ids: list[Any]) -> Any:
        return computed.workflow_info(self.ctx, ids)

    def sums(self, chunks: GateChunks, cuts: list[int], now: int | None = None, limit: int = 50_000) -> Any:
        return chunks.sums(self.ctx.redis, self.ctx.keys, GATE_TYPES, cuts, now or now_ms(), limit, self.read, self.info)


def test_gch001_equal_to_the_window_read_whole_for_any_window_and_steps(loaded: dict[str, Any]) -> None:
    ctx, end = loaded["ctx"], loaded["end"]
    chunks = GateChunks()
    reads = Reads(ctx)
    rnd = random.Random(5)
    for _ in range(12):
        s = end - rnd.randrange(10, 6 * 60) * MINUTE_MS
        e = min(end + 30 * MINUTE_MS, s + rnd.randrange(1, 8 * 60) * MINUTE_MS)
        step = rnd.choice([1, 2, 5, 7, 15, 30, 60]) * MINUTE_MS
        cuts = views.cuts_of(s, e, step)
        want = plain(ctx, cuts)
        assert want, (fmt_ms(s), fmt_ms(e))
        assert same(reads.sums(chunks, cuts), want)


def test_gch002_only_the_quarters_whose_runs_changed_are_read_again(loaded: dict[str, Any]) -> None:
    ctx, end, r = loaded["ctx"], loaded["end"], loaded["r"]
    chunks, reads = GateChunks(), Reads(ctx)
    cuts = views.cuts_of(end - 4 * HOUR_MS, end, 10 * MINUTE_MS)
    first = reads.sums(chunks, cuts)
    assert same(first, plain(ctx, cuts))
    assert len(reads.spans) == 1 and reads.spans[0][1] - reads.spans[0][0] >= 4 * HOUR_MS
    reads.spans.clear()
    assert same(reads.sums(chunks, cuts), first) and reads.spans == []      # nothing changed: nothing read
    # A late run two hours back, a new workflow's run near the end: their quarters only.
    late_ts = end - 2 * HOUR_MS - 7 * MINUTE_MS
    new_ts = end - 3 * MINUTE_MS
    Ingestor(r, KEYS).ingest([
        {"id": "late-run", "type": GATE, "timestamp": fmt_ms(late_ts), "source": "test",
         "data": {"workflow_id": "WF-elsewhere", "gate_name": "code-coverage-gate", "passed": True,
                  "metrics": {"coverage_percentage": 12.5}}},
        {"id": "new-run", "type": GATE, "timestamp": fmt_ms(new_ts), "source": "test",
         "data": {"workflow_id": "WF-unborn", "gate_name": "code-coverage-gate", "passed": True,
                  "metrics": {"coverage_percentage": 40.0, "threshold": 80.0}}}])
    Aggregator(r, KEYS, batch=1000).drain()
    got = reads.sums(chunks, cuts)
    assert same(got, plain(ctx, cuts))
    assert reads.spans == [(late_ts - late_ts % CHUNK_MS, late_ts - late_ts % CHUNK_MS + CHUNK_MS),
                           (new_ts - new_ts % CHUNK_MS, new_ts - new_ts % CHUNK_MS + CHUNK_MS)]
    i = len(cuts) - 2
    assert got[(i, "code-coverage-gate", "coverage_percentage", None, None)][1] >= 1
    # Its pr_created comes: the run joins its repository on the next read, none read again.
    reads.spans.clear()
    Ingestor(r, KEYS).ingest([{"id": "unborn-created", "type": "workflow.pr_created",
                               "timestamp": fmt_ms(end - 5 * HOUR_MS), "source": "test",
                               "data": {"workflow_id": "WF-unborn", "pr_number": 999, "repository": "late-repo",
                                        "author": "zed", "team": "late-team"}}])
    Aggregator(r, KEYS, batch=1000).drain()
    moved = reads.sums(chunks, cuts)
    assert reads.spans == []
    assert moved[(i, "code-coverage-gate", "coverage_percentage", "late-team", "late-repo")] == [40.0, 1]
    assert same(moved, plain(ctx, cuts))


def test_gch003_kept_quarters_age_out_and_large_windows_are_left_to_the_plain_read(
        loaded: dict[str, Any]) -> None:
    ctx, end = loaded["ctx"], loaded["end"]
    chunks, reads = GateChunks(max_age_ms=60_000), Reads(ctx)
    cuts = views.cuts_of(end - HOUR_MS, end, 5 * MINUTE_MS)
    now = now_ms()
    reads.sums(chunks, cuts, now)
    reads.sums(chunks, cuts, now + 59_000)
    assert len(reads.spans) == 1
    reads.sums(chunks, cuts, now + 61_000)                                  # a minute later: read again
    assert len(reads.spans) == 2
    n = sum(v[1] for v in plain(ctx, cuts).values())
    assert n and reads.sums(chunks, cuts, limit=10) is None                 # over the limit: not this way
    assert reads.sums(chunks, [cuts[0] + 1, cuts[-1]]) is None              # not on whole minutes
    small = GateChunks(max_entries=50)                                      # a bounded memory, same sums
    wide = views.cuts_of(end - 4 * HOUR_MS, end, 5 * MINUTE_MS)
    assert same(reads.sums(small, wide), plain(ctx, wide))
    assert small._entries <= 50 and small._entries == sum(d.size for d in small._d.values())


def test_gch004_whole_days_inside_the_window_are_one_chunk_each(loaded: dict[str, Any]) -> None:
    """A past day inside the window is counted and kept whole (one ZCOUNT per type, not 96);
    a late run in it reads that day again, and the sums stay those of the window read whole."""
    ctx, end, r = loaded["ctx"], loaded["end"], loaded["r"]
    day = (end // DAY_MS - 2) * DAY_MS
    s = day - 5 * HOUR_MS - 10 * MINUTE_MS
    spans = chunks_of(s, end)
    assert (day, day + DAY_MS) in spans and (day + DAY_MS, day + 2 * DAY_MS) in spans
    assert spans[0] == (s - s % CHUNK_MS, s - s % CHUNK_MS + CHUNK_MS) and spans[-1][1] >= end
    assert all(b - a == CHUNK_MS for a, b in spans if a < day or a >= day + 2 * DAY_MS)

    def run(i: int, ts: int, value: float) -> dict[str, Any]:
        return {"id": f"old-run-{i}", "type": GATE, "timestamp": fmt_ms(ts), "source": "test",
                "data": {"workflow_id": "WF-old", "gate_name": "lint-gate", "passed": False,
                         "metrics": {"errors": value}}}
    Ingestor(r, KEYS).ingest([run(i, day + i * 47 * MINUTE_MS, i / 3) for i in range(25)])
    Aggregator(r, KEYS, batch=1000).drain()
    chunks, reads = GateChunks(), Reads(ctx)
    cuts = views.cuts_of(s, end, 5 * HOUR_MS)
    assert same(reads.sums(chunks, cuts), plain(ctx, cuts))
    reads.spans.clear()
    Ingestor(r, KEYS).ingest([run(99, day + 20 * HOUR_MS + 1234, 7.0)])
    Aggregator(r, KEYS, batch=1000).drain()
    assert same(reads.sums(chunks, cuts), plain(ctx, cuts))
    assert reads.spans == [(day, day + DAY_MS)]
