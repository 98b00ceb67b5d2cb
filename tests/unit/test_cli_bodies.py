"""cli.py simulate --url: batches go out in request bodies the server accepts (≤ 1 MiB)."""
from __future__ import annotations

import orjson

from cli import _bodies


def test_cli_bodies001_a_big_batch_is_split_under_the_limit_and_loses_nothing() -> None:
    batch = [{"id": f"e{i}", "type": "workflow.pr_created", "data": {"title": "x" * 300}} for i in range(5000)]
    bodies = list(_bodies(batch, limit=100_000))
    assert len(bodies) > 10 and all(len(b) <= 100_000 + 20 for b in bodies)
    ids = [ev["id"] for b in bodies for ev in orjson.loads(b)["events"]]
    assert ids == [ev["id"] for ev in batch]


def test_cli_bodies002_a_small_batch_is_one_body_and_an_empty_one_none() -> None:
    assert [orjson.loads(b) for b in _bodies([{"id": "a"}, {"id": "b"}])] == [{"events": [{"id": "a"}, {"id": "b"}]}]
    assert list(_bodies([])) == []
