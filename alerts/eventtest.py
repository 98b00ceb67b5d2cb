"""Rule tests driven by events (the layer over alerts.ruletest's snapshots): a test's events
are ingested in time order under a throwaway key prefix, aggregated by the real aggregator,
and each evaluation reads its snapshot from the real KPI engine — so a rule test checks
the whole path a production alert takes, formulas included.

    tests:
      - name: queue backs up
        events:                              # `at` from the start; ids and source are filled in
          - {at: 0m, type: system.queue_depth_updated, data: {queue: code_review, depth: 22}}
          - {at: 9m, type: system.queue_depth_updated, data: {queue: code_review, depth: 2}}
        expect:
          - {at: 6m, rule: High Queue Depth, alerts: [{labels: {queue: code_review}, state: firing}]}
"""
from __future__ import annotations

import uuid
from typing import Any, Mapping

import redis

from alerts import snapshot as snapshots
from alerts.rules import RuleError
from data.aggregator import Aggregator
from data.engine import Engine
from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import MINUTE_MS, fmt_ms, now_ms, parse_duration


class EventWorld:
    """Events on a private key prefix; snapshots at test times from the real engine."""

    def __init__(self, r: redis.Redis, events: Any, horizon_ms: int, where: str) -> None:
        if not isinstance(events, list):
            raise RuleError(f"{where}: 'events' must be a list")
        self.r = r
        self.prefix = f"qms-ruletest-{uuid.uuid4().hex[:12]}"
        self.keys = Keys.of(r, self.prefix)
        self.engine = Engine(r, self.keys)
        self.ingestor = Ingestor(r, self.keys)
        self.aggregator = Aggregator(r, self.keys)
        # The test's time 0 lies far enough in the past that its last evaluation is "now".
        self.base = (now_ms() - horizon_ms - MINUTE_MS) // MINUTE_MS * MINUTE_MS
        self.pending: list[tuple[int, dict[str, Any]]] = []
        for i, raw in enumerate(events):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
                raise RuleError(f"{where}: event #{i + 1} needs at, type and data")
            try:
                at = parse_duration(str(raw.get("at", "0s")))
            except ValueError:
                raise RuleError(f"{where}: event #{i + 1}: bad 'at' {raw.get('at')!r}") from None
            self.pending.append((at, {"id": raw.get("id") or f"ruletest-{i}", "type": raw["type"], "source": "ruletest",
                                      "timestamp": fmt_ms(self.base + at), "data": dict(raw.get("data") or {})}))
        self.pending.sort(key=lambda p: p[0])
        self.last = -1

    def snapshot(self, t: int) -> dict[str, Any]:
        due = [ev for at, ev in self.pending if at <= t]
        self.pending = [(at, ev) for at, ev in self.pending if at > t]
        if due:
            res = self.ingestor.ingest(due)
            if res.rejected:
                raise RuleError(f"events refused by the contract: {res.errors}")
            self.aggregator.drain()
        since = self.base + self.last if self.last >= 0 else self.base - 1
        self.last = t
        # "+ 1": an event at exactly t has happened by the evaluation at t.
        return snapshots.build(self.engine, self.base + t + 1, since)

    def close(self) -> None:
        batch = []
        for key in self.r.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                self.r.unlink(*batch)
                batch = []
        if batch:
            self.r.unlink(*batch)
