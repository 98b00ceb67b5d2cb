"""callbacks/draw_stats.py: a web process's draw counters and the line it logs."""
from __future__ import annotations

import logging
from typing import Any

from callbacks.draw_stats import DrawStats, line, view_name


def test_dst001_counters_sum_and_log_once_per_period(caplog: Any) -> None:
    now = [100.0]
    s = DrawStats(60, clock=lambda: now[0])
    s.fill("qa 24h", kept=3, recent=0)
    s.waited(10)
    s.drew("qa 24h", 0.05)
    s.drew("qa 24h", 0.05)
    s.fill("qa 7d+scope", kept=0, recent=2, oldest_ms=95_400)
    s.found_shared()
    s.gave_up()
    assert s.maybe_log() is None                     # the period is not over
    now[0] += 61
    with caplog.at_level(logging.INFO, logger="qms.draws"):
        snap = s.maybe_log()
    assert snap is not None
    assert (snap["fills"], snap["kept"], snap["recent"], snap["drawn"], snap["shared"], snap["abandoned"]) \
        == (2, 3, 2, 2, 1, 1)
    assert snap["by_view"] == {"qa 24h": 2} and snap["draw_s"] == 0.1 and snap["wait_p95_ms"] == 10
    said = [r.getMessage() for r in caplog.records]
    assert said == [line(snap, 61)]
    assert said[0].startswith("draws 61s: 2 fills, bodies 3 kept / 2 recent / 2 drawn / 1 shared "
                            "(drawn 0.1 s wall, recent up to 95 s old)")
    assert s.snapshot()["fills"] == 0                # reset
    now[0] += 61
    with caplog.at_level(logging.INFO, logger="qms.draws"):
        s.maybe_log()                                # nothing drawn: nothing logged
    assert len(caplog.records) == 1


def test_dst002_a_view_is_named_by_dashboard_timeframe_filter_and_owner() -> None:
    assert view_name("qa", {"timeframe": "24h"}, False) == "qa 24h"
    assert view_name("executive", {"timeframe": "1h", "team": "core"}, False) == "executive 1h+scope"
    assert view_name("developer", {"timeframe": "7d"}, True) == "developer 7d (own)"
    assert DrawStats(0).maybe_log() is None          # 0: never logged
