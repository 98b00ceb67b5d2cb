"""data/backfill.py: the demo's "history still loading" state from its hash and the backlog."""
from __future__ import annotations

from typing import Any

from data.backfill import BACKLOG_MIN, BEAT_STALE_MS, LIVE_SLACK_MS, assess, backfill_status
from data.keys import Keys

NOW = 1_800_000_000_000
DAY = 86_400_000


def test_bf001_a_running_backfill_says_how_far_it_is() -> None:
    found = assess({"epoch": str(NOW - 4 * DAY), "cursor": str(NOW - 3 * DAY), "beat": str(NOW - 1000)}, NOW)
    assert found is not None and found.simulating
    assert found.fraction == 0.25 and found.target_ms == NOW


def test_bf002_no_backfill_once_live_without_a_beat_or_with_a_stale_one() -> None:
    live = {"epoch": NOW - 4 * DAY, "cursor": NOW - LIVE_SLACK_MS + 1000, "beat": NOW}
    assert assess(live, NOW) is None, "simulated up to now: live, not loading"
    behind = {"epoch": NOW - 4 * DAY, "cursor": NOW - 3 * DAY}
    assert assess(behind, NOW) is None, "no beat (an older demo hash): no simulator known to run"
    assert assess({**behind, "beat": NOW - BEAT_STALE_MS - 1}, NOW) is None, "a stopped simulator"
    assert assess({**behind, "beat": "x"}, NOW) is None


def test_bf003_simulated_but_not_yet_aggregated_is_still_loading() -> None:
    live = {"epoch": NOW - 4 * DAY, "cursor": NOW, "beat": NOW}
    assert assess(live, NOW, BACKLOG_MIN - 1) is None
    found = assess(live, NOW, BACKLOG_MIN)
    assert found is not None and not found.simulating and found.fraction == 1.0 and found.backlog == BACKLOG_MIN


def test_bf004_read_from_the_demo_hash(r: Any) -> None:
    keys = Keys("qms")
    assert backfill_status(r, keys, NOW) is None, "no demo"
    r.hset(keys.demo, mapping={"epoch": NOW - 2 * DAY, "cursor": NOW - DAY, "seed": 42, "rate": 0.5, "beat": NOW})
    found = backfill_status(r, keys, NOW)
    assert found is not None and found.fraction == 0.5 and found.backlog is None, "no stream yet: backlog unknown"
    r.hset(keys.demo, "cursor", NOW)
    assert backfill_status(r, keys, NOW) is None


def test_bf005_simulated_but_the_aggregator_behind_the_stream_is_still_loading(r: Any) -> None:
    """Redis 6.2 has no group lag: the ids (arrival times) say how far behind the aggregator is."""
    keys = Keys("qms")
    r.hset(keys.demo, mapping={"epoch": NOW - 2 * DAY, "cursor": NOW, "beat": NOW})
    for i in range(5):                                  # entries arrived over 100 s
        r.xadd(keys.stream, {"e": "{}"}, id=f"{NOW - 100_000 + i * 25_000}-0")
    r.xgroup_create(keys.stream, keys.group, id=f"{NOW - 100_000 + 25_000}-0")   # delivered up to the 2nd
    found = backfill_status(r, keys, NOW)
    assert found is not None and not found.simulating and found.aggregating
    assert found.behind_ms == 75_000 and found.aggregated == 0.25
    r.xgroup_setid(keys.stream, keys.group, id=f"{NOW - 100_000 + 4 * 25_000}-0")  # caught up
    assert backfill_status(r, keys, NOW) is None
