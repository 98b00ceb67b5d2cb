"""Each test carries a short id unique across the suite (`test_<letters><digits>_…`, as Dash's
own tests do), so a failure named by its id points at one test."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ID = re.compile(r"^(?:async )?def (test_([a-z]+\d+[a-z]?)_\w*)\(", re.M)


def test_ids001_every_test_id_is_used_once() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(TESTS.rglob("test_*.py")):
        for m in ID.finditer(path.read_text(encoding="utf-8")):
            where[m.group(2)].append(f"{path.relative_to(TESTS)}::{m.group(1)}")
    assert len(where) > 500
    twice = {i: places for i, places in where.items() if len(places) > 1}
    assert not twice, twice
