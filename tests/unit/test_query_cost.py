"""Bounded query cost: the gate-time histogram's bins and their stated error, and the daily
buckets' tiling (issue 13 part 5)."""
from __future__ import annotations

import random

from data import kpis, reference
from data.contrib import HIST_BITS, HIST_ERROR, hist_bin
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, cover


def test_qc001_a_bin_is_within_the_stated_error_keeps_the_order_and_is_its_own_bin() -> None:
    rng = random.Random(13)
    values = list(range(0, 70_000)) + [rng.randrange(0, 604_800_000) for _ in range(50_000)] + [604_800_000]
    worst = 0.0
    for ms in values:
        b = hist_bin(ms)
        assert hist_bin(b) == b
        assert abs(b - ms) <= HIST_ERROR * ms, (ms, b)
        if ms:
            worst = max(worst, abs(b - ms) / ms)
    assert worst == HIST_ERROR                      # the bound is reached: it is the right one to state
    assert [hist_bin(ms) for ms in range(2 ** HIST_BITS)] == list(range(2 ** HIST_BITS))   # small ones exact
    ordered = sorted(values)
    bins = [hist_bin(ms) for ms in ordered]
    assert bins == sorted(bins)
    # One doubling holds 2**(HIST_BITS-1) bins: a gate's fields stay few however many runs it has.
    assert len({hist_bin(ms) for ms in range(2 ** 16, 2 ** 17)}) == 2 ** (HIST_BITS - 1)
    # Every whole second up to the longest run accepted (7 days, 30 bits of ms): under 64 per doubling.
    assert len({hist_bin(s * 1000) for s in range(1, 7 * 86_400)}) <= 64 * (30 - 9)


def test_qc002_nearest_rank_over_bins_is_the_exact_percentiles_bin() -> None:
    """The card's p95 (kpis.nearest_rank over the binned histogram) against the reference's
    exact nearest rank, on skewed samples of every size from 1 to 400."""
    rng = random.Random(5)
    for n in range(1, 401):
        xs = [int(rng.lognormvariate(11, 1.2)) for _ in range(n)]
        hist: dict[int, int] = {}
        for x in xs:
            hist[hist_bin(x)] = hist.get(hist_bin(x), 0) + 1
        exact = sorted(xs)[(95 * n + 99) // 100 - 1]
        got = kpis.nearest_rank(hist, 0.95)
        assert got == hist_bin(exact)
        assert reference.agrees("gate.g.p95_time", got / MINUTE_MS, exact / MINUTE_MS)


def test_qc003_the_reference_states_the_histogram_s_error() -> None:
    assert reference.P95_REL_ERROR == HIST_ERROR
    assert reference.agrees("gate.g.p95_time", 2.0 * (1 + HIST_ERROR), 2.0)
    assert not reference.agrees("gate.g.p95_time", 2.0 * (1 + 2 * HIST_ERROR), 2.0)
    assert not reference.agrees("gate_pass_rate", 50.0 * (1 + 1e-6), 50.0)     # everything else exact
    # A trend that bins could flip: both accepted near the 0.5 % threshold, never far from it.
    near = {"current_value": 1.005, "previous_value": 1.0, "trend": "up"}
    assert reference.trend_agrees("gate.g.p95_time", "flat", near)
    far = {"current_value": 1.2, "previous_value": 1.0, "trend": "up"}
    assert not reference.trend_agrees("gate.g.p95_time", "flat", far)
    assert not reference.trend_agrees("gate_pass_rate", "flat", near)


def test_qc004_days_tile_a_long_window_only_from_daily_from() -> None:
    now = 1_700_000_000_000 // DAY_MS * DAY_MS + 13 * HOUR_MS + 7 * MINUTE_MS
    a, b = now // HOUR_MS * HOUR_MS - 30 * DAY_MS, now // HOUR_MS * HOUR_MS
    hours = cover(a, b, now)
    assert DAY_MS not in {x.step_ms for x in hours} and len(hours) == 30 * 24      # unmarked: hours, as before
    days = cover(a, b, now, 0)
    assert [x.step_ms for x in days].count(DAY_MS) == 29 and len(days) == 29 + 24
    assert [(x.start, x.end) for x in days][0][0] == a and days[-1].end == b
    assert all(x.end == y.start for x, y in zip(days, days[1:]))
    later = cover(a, b, now, b // DAY_MS * DAY_MS - 10 * DAY_MS)     # marked whole from 10 days ago
    assert [x.step_ms for x in later].count(DAY_MS) == 10
    assert sum(x.step_ms for x in later) == b - a


def test_qc005_summed_buckets_tile_a_window_with_a_few_histograms_only_from_summed_from() -> None:
    """The gate-time histogram's summed buckets (3h … 16d, aligned on the epoch): a 30-day
    window and a 60-day span tile with at most two of each finer level, exactly, from the
    summed mark on; before it, as without them."""
    from data.timeutil import RESOLUTIONS, SUMMED
    now = 1_700_000_000_000 // DAY_MS * DAY_MS + 13 * HOUR_MS + 7 * MINUTE_MS
    e = now // MINUTE_MS * MINUTE_MS
    for back in (30, 60):
        a = e // HOUR_MS * HOUR_MS - back * DAY_MS - 5 * HOUR_MS
        plain = cover(a, e, now, 0)
        tiles = cover(a, e, now, 0, 0)
        assert tiles[0].start == a and tiles[-1].end == e
        assert all(x.end == y.start for x, y in zip(tiles, tiles[1:]))
        assert all(x.start % x.step_ms == 0 for x in tiles)
        steps = [x.step_ms for x in tiles]
        # At most two of each level at the edges, the coarsest as many as fit in the middle.
        assert all(steps.count(r.step_ms) <= 2 for r in SUMMED[:-1] + RESOLUTIONS[2:]), steps
        assert steps.count(SUMMED[-1].step_ms) <= back // 16 + 1, steps
        assert len(tiles) <= 20 and len(plain) >= back + 20, (len(tiles), len(plain))
        # Before the mark: no summed bucket starts there; the same tiling as without them.
        mark = a // DAY_MS * DAY_MS + 20 * DAY_MS
        later = cover(a, e, now, 0, mark)
        assert [x for x in later if x.end <= mark] == [x for x in plain if x.end <= mark]
        summed_steps = {r.step_ms for r in SUMMED}
        assert not any(x.step_ms in summed_steps and x.start < mark for x in later)
        assert sum(x.step_ms for x in later) == e - a
    assert cover(a, e, now, None, None) == cover(a, e, now)
    # The summed hours are kept 61 days: a window's edge older than that reads hours, exactly.
    a = e // HOUR_MS * HOUR_MS - 75 * DAY_MS - 5 * HOUR_MS
    old = cover(a, a + 2 * DAY_MS, now, 0, 0)
    assert [x.step_ms for x in old[:3]] == [HOUR_MS] * 3 and sum(x.step_ms for x in old) == 2 * DAY_MS
    recent = cover(a + 20 * DAY_MS, a + 22 * DAY_MS, now, 0, 0)
    assert {3 * HOUR_MS, 12 * HOUR_MS} <= {x.step_ms for x in recent}


def test_qc006_the_histogram_is_also_rolled_into_the_summed_buckets_the_others_are_not() -> None:
    from data.batch import Acc, RETENTION, STEP
    from data.contrib import HIST, MAIN
    from data.timeutil import SUMMED
    now = 1_700_000_000_000 // DAY_MS * DAY_MS + 13 * HOUR_MS
    ts = now - 2 * HOUR_MS - 5 * MINUTE_MS
    acc = Acc()
    acc.add((HIST, "g|1000", ts, 1, False))
    acc.add((MAIN, "gtn", ts, 1, False))
    rolled = acc.rolled(now)
    hist = {res: start for res, fam, start in rolled if fam == HIST}
    main = {res for res, fam, _ in rolled if fam == MAIN}
    assert main == {"1m", "5m", "1h", "1d"}
    assert set(hist) == main | {r.name for r in SUMMED}
    for r in SUMMED:
        assert hist[r.name] == ts // r.step_ms * r.step_ms and STEP[r.name] == r.step_ms
        assert RETENTION[r.name] == (90 if r.step_ms % DAY_MS == 0 else 61) * DAY_MS
        assert rolled[(r.name, HIST, hist[r.name])] == {"g|1000": 1}
