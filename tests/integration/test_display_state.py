"""The operational views' rows (the display state: active workflows, open defects, pending
violations, reviews in progress) as the aggregator keeps them, batch after batch, equal those
of each entity's events folded at once."""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import orjson

from data import contrib
from data.aggregator import Aggregator
from data.batch import display_row
from data.keys import Keys
from data.timeutil import HOUR_MS, now_ms, parse_iso
from tests.helpers import busy_events


def _rows(kind: str, ident: str, state: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    """data.batch.display_row of one entity's state: {view: {id: row}}."""
    display: dict[str, dict[str, bytes]] = defaultdict(dict)
    display_row(kind, ident, state, display, defaultdict(list))
    return display


def test_dsp003_the_aggregated_display_rows_are_those_of_each_entity_folded_at_once(r: Any) -> None:
    """The operational views' rows after the aggregator applied 6 hours of events shuffled,
    in batches of 40 (most entities touched in many batches, out of order), are those of each
    entity's events folded in one go."""
    k = Keys("qms")
    events = busy_events(6, now_ms() // HOUR_MS * HOUR_MS, 4, 0.2)
    random.Random(4).shuffle(events)
    with r.pipeline(transaction=False) as p:
        for ev in events:
            p.xadd(k.stream, {"e": orjson.dumps(ev)})
        p.execute()
    Aggregator(r, k, batch=40).drain()
    states: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for ev in sorted(events, key=lambda e: e["timestamp"]):
        for kind, ident in contrib.entity_keys(ev):
            if kind not in contrib.TIMELINE_KINDS:
                contrib.fold(kind, states[(kind, ident)], ev, parse_iso(ev["timestamp"]))
    want: dict[str, dict[bytes, bytes]] = defaultdict(dict)
    for (kind, ident), state in states.items():
        for name, rows in _rows(kind, ident, state).items():
            want[name].update({i.encode(): v for i, v in rows.items()})
    for name in ("active", "defects", "violations", "reviews"):
        assert r.hgetall(k.state(name)) == want[name], name
    assert len(want["active"]) > 20 and len(want["reviews"]) > 5
