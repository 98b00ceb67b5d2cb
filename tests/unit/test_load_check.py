"""The load test's content check (bench/load/run.py check_kpis): a card may show any value the API
gave between its reads before and after the page's draw, as the card formats it, and no other."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "load"))

from components.kpi import format_value  # noqa: E402
from dashjson import texts_between  # noqa: E402


def pct(v: object) -> str:
    return format_value(v, "percentage")


def test_lck001_a_value_that_moved_with_the_clock_matches_any_rounding_between() -> None:
    # Stop 26's flake: the card drawn at 87.5 %, the API read later at 87.3 %.
    texts = texts_between(pct, 87.52, 87.31)
    assert texts == {"87.5%", "87.4%", "87.3%"}
    assert "87.6%" not in texts and "87.2%" not in texts


def test_lck002_a_value_that_did_not_move_allows_only_itself() -> None:
    assert texts_between(pct, 40.0, 40.0) == {"40.0%"}
    assert texts_between(pct, None, None) == {"no data"}
    assert texts_between(pct, None, 12.0) == {"no data", "12.0%"}


def test_lck003_counts_step_by_whole_numbers() -> None:
    count = lambda v: format_value(v, "count")          # noqa: E731
    assert texts_between(count, 3, 5) == {"3", "4", "5"}
    assert texts_between(count, 1200, 1200) == {"1,200"}
