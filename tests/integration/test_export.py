"""The analyst's journey: a 24 h drill-down of 100,000 events exports as 100,000 rows,
streamed from Redis a chunk at a time (memory bounded, whatever the size of the window)."""
from __future__ import annotations

import csv
import io
import tracemalloc
from typing import Any, Iterator

import orjson
import pytest
import redis

from data.aggregator import Aggregator
from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import HOUR_MS, fmt_ms, now_ms
from tests.helpers import admin_test_client

N = 100_000
END = now_ms() // HOUR_MS * HOUR_MS


@pytest.fixture(scope="module")
def big(redis_url: str, tmp_path_factory: Any) -> Iterator[Any]:
    """100,000 gate runs over 23 hours of one 24 h window, ingested and aggregated."""
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    keys = Keys("qms")
    ing = Ingestor(r, keys)
    span = 23 * HOUR_MS
    for start in range(0, N, 10_000):
        batch = [{"id": f"run-{i:06d}", "type": "workflow.quality_gate_executed", "source": "ci",
                  "timestamp": fmt_ms(END - 60_000 - span * i // N),
                  "data": {"workflow_id": f"WF-{i % 2000}", "gate_name": f"gate-{i % 5}", "passed": i % 4 != 0,
                           "agent_id": f"qms-agent-{i % 7}", "execution_time": 10 + i % 300,
                           "metrics": {"errors": i % 3}}}
                 for i in range(start, start + 10_000)]
        assert ing.ingest(batch).accepted == len(batch)
    Aggregator(r, keys, batch=5000).drain(600)
    client = admin_test_client(redis_url, str(tmp_path_factory.mktemp("data")), "analyst")
    yield client
    r.flushdb()


URL = f"/api/metrics/total_gates_executed/events?timeframe=24h&end={fmt_ms(END)}"


def test_exp001_a_24h_drill_down_of_100000_events_exports_100000_rows(big: Any) -> None:
    card = big.get(f"/api/dashboard/qa?timeframe=24h&end={fmt_ms(END)}&metrics=total_gates_executed").json
    assert card["response"]["data"]["widgets"][0]["data"]["current_value"] == N
    res = big.get(URL + "&format=csv")
    assert res.status_code == 200 and res.is_streamed
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert len(rows) == N and len({row["id"] for row in rows}) == N
    assert rows[0]["id"] == "run-000000" and rows[-1]["id"] == f"run-{N - 1:06d}", "newest first, to the oldest"
    assert rows[0]["data.metrics"] == '{"errors":0}' and rows[0]["data.gate_name"] == "gate-0"
    lines = big.get(URL + "&format=jsonl").get_data().splitlines()
    assert len(lines) == N and orjson.loads(lines[-1])["id"] == f"run-{N - 1:06d}"
    page = big.get(URL + "&limit=5").json["response"]["data"]
    assert page["counts"] == {"counted": N} and page["total"] == N and len(page["events"]) == 5


def _streamed(client: Any, url: str) -> tuple[int, int, int]:
    """(rows, bytes, peak bytes allocated) of an export consumed piece by piece, as a client reads it."""
    res = client.get(url)
    assert res.is_streamed
    tracemalloc.start()
    try:
        size = rows = 0
        for chunk in res.iter_encoded():
            size += len(chunk)
            rows += chunk.count(b"\n")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rows, size, peak


def test_exp002_the_export_is_produced_lazily_in_bounded_memory(big: Any) -> None:
    rows, size, peak = _streamed(big, URL + "&format=csv")
    small_rows, _small_size, small_peak = _streamed(big, URL.replace("24h", "4h") + "&format=csv")
    assert rows == N + 1 and 10_000 < small_rows < N / 4
    assert peak < size / 3, f"peak {peak / 1e6:.1f} MB while streaming {size / 1e6:.1f} MB"
    # Constant, not proportional: six times the rows, about the same peak (one chunk of events).
    assert peak < 1.5 * small_peak + 1_000_000, f"{peak / 1e6:.1f} MB for {rows:,} rows, " \
                                                f"{small_peak / 1e6:.1f} MB for {small_rows:,}"
