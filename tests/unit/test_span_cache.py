"""data.rollups.SpanCache: exact per data version; a page's draw (stale_ms > 0) also takes a
read less than stale_ms old, whatever its version — what the page may show anyway."""
from __future__ import annotations

from typing import Any

from data import rollups
from data import scopes
from data.contrib import MAIN, SCOPE
from data.rollups import Span, SpanCache
from data.timeutil import Bucket

HOUR = 3_600_000
NOW = 1_000 * HOUR + 30 * 60_000


def _counting(monkeypatch: Any) -> list[tuple[str, ...]]:
    reads: list[tuple[str, ...]] = []

    def fake(r: Any, keys: Any, families: Any, points: Any, horizon: int, now: int, daily: Any = None) -> Span:
        reads.append(tuple(families))
        return Span([], {f: [{"n": len(reads)}] for f in families}, {f: {"n": len(reads)} for f in families})
    monkeypatch.setattr(rollups, "fetch", fake)
    return reads


def test_spc001_exact_reads_are_per_data_version(monkeypatch: Any) -> None:
    reads = _counting(monkeypatch)
    cache = SpanCache()
    a = cache.fetch(None, None, ["main", "scope"], [NOW - HOUR, NOW], NOW + HOUR, NOW, version=7)
    b = cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW + 1_000, version=7)
    assert reads == [("main", "scope")] and b.values["main"] == a.values["main"]
    c = cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW + 2_000, version=8)
    assert reads == [("main", "scope"), ("main",)] and c.values["main"] == [{"n": 2}]


def test_spc002_a_page_takes_a_read_younger_than_its_staleness_of_any_version(monkeypatch: Any) -> None:
    reads = _counting(monkeypatch)
    cache = SpanCache()
    cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW, version=7)
    page = cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW + 14_000, version=9, stale_ms=15_000)
    assert len(reads) == 1 and page.values["main"] == [{"n": 1}]
    old = cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW + 16_000, version=9, stale_ms=15_000)
    assert len(reads) == 2 and old.values["main"] == [{"n": 2}]           # older than 15 s: read again
    exact = cache.fetch(None, None, ["main"], [NOW - HOUR, NOW], NOW + HOUR, NOW + 17_000, version=10)
    assert len(reads) == 3 and exact.values["main"] == [{"n": 3}]         # an exact read ignores its age
    other = cache.fetch(None, None, ["main"], [NOW - 2 * HOUR, NOW], NOW + HOUR, NOW + 17_000, version=10,
                        stale_ms=15_000)
    assert len(reads) == 4 and other.values["main"] == [{"n": 4}]         # another tiling: its own read


def _bucketed(monkeypatch: Any) -> list[int]:
    """A fake fetch of two one-hour buckets per family (MAIN, and SCOPE with two scopes' fields)."""
    reads: list[int] = []

    def fake(r: Any, keys: Any, families: Any, points: Any, horizon: int, now: int, daily: Any = None) -> Span:
        reads.append(1)
        buckets = [Bucket(HOUR, NOW - 2 * HOUR), Bucket(HOUR, NOW - HOUR)]
        rows = {MAIN: [{"n": 1}, {"n": 2}], SCOPE: [{"t:a|n": 1, "t:b|n": 5}, {"t:a|n": 3}]}
        return Span(buckets, {f: rows[f] for f in families}, {f: {} for f in families})
    monkeypatch.setattr(rollups, "fetch", fake)
    return reads


def test_spc003_the_cards_of_a_read_share_its_window_sums(monkeypatch: Any) -> None:
    """Every KPI card of a page cuts the same window the same way from one cached read; each used
    to sum each step's buckets again (Span.sums, its own Span per card)."""
    _bucketed(monkeypatch)
    cache = SpanCache()
    one = cache.fetch(None, None, [MAIN], [NOW - 2 * HOUR, NOW], NOW, NOW, version=7)
    two = cache.fetch(None, None, [MAIN], [NOW - 2 * HOUR, NOW], NOW, NOW, version=7)
    assert one is not two and one.sums(MAIN, NOW - 2 * HOUR, NOW) == {"n": 3}
    assert two.sums(MAIN, NOW - 2 * HOUR, NOW) is one.sums(MAIN, NOW - 2 * HOUR, NOW)
    newer = cache.fetch(None, None, [MAIN], [NOW - 2 * HOUR, NOW], NOW, NOW, version=8)
    assert newer.sums(MAIN, NOW - 2 * HOUR, NOW) is not one.sums(MAIN, NOW - 2 * HOUR, NOW)   # a new read


def test_spc004_a_scope_view_of_a_read_is_made_once(monkeypatch: Any) -> None:
    _bucketed(monkeypatch)
    cache = SpanCache()
    one = scopes.view(cache.fetch(None, None, [SCOPE], [NOW - 2 * HOUR, NOW], NOW, NOW, version=7), "t:a")
    two = scopes.view(cache.fetch(None, None, [SCOPE], [NOW - 2 * HOUR, NOW], NOW, NOW, version=7), "t:a")
    assert one.values[MAIN] == [{"n": 1}, {"n": 3}] and two.values[MAIN] is one.values[MAIN]
    assert two.sums(MAIN, NOW - 2 * HOUR, NOW) is one.sums(MAIN, NOW - 2 * HOUR, NOW) == {"n": 4}
    other = scopes.view(cache.fetch(None, None, [SCOPE], [NOW - 2 * HOUR, NOW], NOW, NOW, version=7), "t:b")
    assert other.values[MAIN] == [{"n": 5}, {}] and other.sums(MAIN, NOW - 2 * HOUR, NOW) == {"n": 5}
