"""The shared test helpers that tests' correctness leans on."""
from __future__ import annotations

from data.timeutil import DAY_MS, MINUTE_MS, day_start
from tests.helpers import busy_events, today_ago


def test_hlp001_today_ago_keeps_instants_today_and_in_order_near_midnight() -> None:
    """CI ran test_brw001 at 00:24 UTC: its three reviews "30 minutes ago" fell yesterday and
    completed_today showed "no data". Near midnight the offsets shrink into today, order kept;
    later in the day they are plain now minus the offset."""
    offsets = [30 * MINUTE_MS, 29 * MINUTE_MS, 28 * MINUTE_MS, 20 * MINUTE_MS, 0]
    for since_midnight in (2_000, 24 * MINUTE_MS, 29 * MINUTE_MS + 59_999):
        now = 20_000 * DAY_MS + since_midnight
        at = [today_ago(30 * MINUTE_MS, now)(o) for o in offsets]
        assert all(day_start(t) == day_start(now) and t <= now for t in at), (since_midnight, at)
        assert at == sorted(set(at)), (since_midnight, at)
    noon = 20_000 * DAY_MS + DAY_MS // 2
    assert [today_ago(30 * MINUTE_MS, noon)(o) for o in offsets] == [noon - o for o in offsets]


def test_hlp002_busy_events_are_the_same_whatever_the_hour() -> None:
    """A night's end and an afternoon's end get the same events, moved: as many, same ids, each
    at the same distance from the end, none after it but the `after_ms` asked for."""
    from data.timeutil import HOUR_MS, parse_iso
    night = parse_iso("2026-12-04T03:00:00Z")            # a Friday's small hours
    noon = parse_iso("2026-12-06T12:00:00Z")             # a Sunday
    a = busy_events(1, night, seed=16, rate=0.2)
    b = busy_events(1, noon, seed=16, rate=0.2, after_ms=HOUR_MS // 2)
    assert len(a) > 150, len(a)                          # a busy hour, not the 98 of 03:00 on a Friday
    assert [e["id"] for e in a] == [e["id"] for e in b[:len(a)]]
    assert [night - parse_iso(e["timestamp"]) for e in a] == [noon - parse_iso(e["timestamp"]) for e in b[:len(a)]]
    assert all(night - HOUR_MS <= parse_iso(e["timestamp"]) <= night for e in a)
    assert max(parse_iso(e["timestamp"]) for e in b) > noon
