"""Retraction without stored contributions: an entity keeps the basis of what it last wrote
(`_v`: the definitions' version and the SLA target), and the aggregator recomputes those
contributions from the stored state to retract them on the entity's next event. These tests
fail if a recomputation ever differs from what was written: the rollups would keep a residue."""
from __future__ import annotations

import random
from typing import Any

import orjson

from data import contrib
from data.entcodec import decode
from data.aggregator import Aggregator
from data.batch import Acc
from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import HOUR_MS, now_ms, to_datetime
from tests.helpers import busy_events

HOURS = [1 * HOUR_MS, 8 * HOUR_MS, 30 * 60_000, 3 * HOUR_MS]


def simulated(hours: int = 6, seed: int = 21) -> list[dict[str, Any]]:
    return busy_events(hours, now_ms() // HOUR_MS * HOUR_MS, seed, 0.2)


def rollups(r: Any, prefix: str) -> dict[bytes, dict[bytes, int]]:
    """Every rollup bucket and total by name after the prefix, zero fields left out."""
    out = {}
    for pattern in (f"{prefix}:r:*", f"{prefix}:tot:*"):
        for key in r.scan_iter(pattern, count=1000):
            row = {f: int(v) for f, v in r.hgetall(key).items() if int(v)}
            if row:
                out[key[len(prefix):]] = row
    return out


def entity_states(r: Any, prefix: str) -> dict[bytes, dict[str, Any]]:
    return {key[len(prefix):]: decode(r.get(key)) for key in r.scan_iter(f"{prefix}:ent:*", count=1000)}


def test_ret001_batches_out_of_order_under_changing_sla_leave_no_residue(r: Any) -> None:
    """The events shuffled, in small batches, the SLA target changing between batches, some
    entries delivered twice: the rollups equal one straight aggregation of the same events
    plus, for each workflow whose last write was under another target, exactly the change of
    its contributions between the two targets."""
    events = simulated()
    shuffled = events[:]
    random.Random(5).shuffle(shuffled)
    ka, kb = Keys("qms"), Keys("qmsb")
    Ingestor(r, ka).ingest(shuffled)
    Ingestor(r, kb).ingest(events)
    agg = Aggregator(r, ka, batch=37)
    agg.ensure_group()
    turn = 0
    while agg.step(block_ms=10):
        turn += 1
        agg.sla_ms = HOURS[turn % len(HOURS)]
        if turn % 7 == 0:                  # a direct producer re-sends a few: duplicates
            for ev in shuffled[turn:turn + 3]:
                r.xadd(ka.stream, {"e": orjson.dumps(ev)})
    agg.sla_ms = HOURS[1]
    agg.drain()
    Aggregator(r, kb, batch=100_000, sla_hours=8).drain()
    assert int(r.hget(ka.meta, "applied")) == len(events)

    states = entity_states(r, "qms")
    sla_used = {v["_v"][1] for k, v in states.items() if k.startswith(b":ent:wf:")}
    assert len(sla_used) > 1, "the test must end with workflows written under different targets"
    fix = Acc()
    for key, state in states.items():
        kind, ident = key.decode().split(":", 3)[2:]
        written, exact = contrib.written(kind, ident, state, HOURS[1])
        assert exact
        if kind == "wf" and written:
            fix.add_diff(contrib.entity_contributions(kind, ident, state, HOURS[1]), written)
    want = rollups(r, "qmsb")
    fixes = [(f":r:{res}:{fam}:{start}", fields) for (res, fam, start), fields in fix.rolled(now_ms()).items()]
    for name, fields in fixes + [(f":tot:{fam}", fields) for fam, fields in fix.totals.items()]:
        row = want.setdefault(name.encode(), {})
        for f, v in fields.items():
            row[f.encode()] = row.get(f.encode(), 0) + v
            if not row[f.encode()]:
                del row[f.encode()]
    want = {k: v for k, v in want.items() if v}
    got = rollups(r, "qms")
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key
    assert not r.hget(ka.meta, "stale_entities")


def test_ret002_entities_keep_their_basis_not_their_contributions(r: Any) -> None:
    k = Keys("qms")
    Ingestor(r, k).ingest(simulated(hours=2))
    Aggregator(r, k, sla_hours=2).drain()
    states = entity_states(r, "qms")
    assert {key.split(b":")[2] for key in states} >= {b"wf", b"df", b"rv"}
    for key, state in states.items():
        assert "_c" not in state
        assert state["_v"] == ([contrib.VERSION, 2 * HOUR_MS] if key.startswith(b":ent:wf:") else contrib.VERSION)


def _created_workflow(r: Any) -> tuple[Keys, Aggregator, str, dict[str, Any]]:
    """W1 created and aggregated: its keys, aggregator, entity key and stored state."""
    k = Keys("qms")
    created = {"id": "e1", "source": "test", "type": "workflow.pr_created",
               "timestamp": to_datetime(now_ms() - HOUR_MS).isoformat(),
               "data": {"workflow_id": "W1", "author": "ann", "repository": "api", "pr_number": 1}}
    Ingestor(r, k).ingest([created])
    agg = Aggregator(r, k)
    agg.drain()
    key = k.entity("wf", "W1")
    return k, agg, key, decode(r.get(key))


def _complete(r: Any, k: Keys, agg: Aggregator) -> None:
    done = {"id": "e2", "source": "test", "type": "workflow.completed",
            "timestamp": to_datetime(now_ms() - 60_000).isoformat(), "data": {"workflow_id": "W1", "outcome": "merged"}}
    Ingestor(r, k).ingest([done])
    agg.drain()


def test_ret003_an_entity_stored_with_its_contributions_is_retracted_by_them(r: Any) -> None:
    """Entities written before the basis (`_c`: the contributions themselves) are retracted by
    exactly those, whatever the current definitions give: a made-up stored contribution is
    taken back, and the entity is rewritten with its basis."""
    k, agg, key, state = _created_workflow(r)
    ts = state["c"][0]
    old = contrib.written("wf", "W1", dict(state), 0)[0]
    state.pop("_v")
    state["_c"] = old + [["m", "legacy", ts, 5, False]]
    r.set(key, orjson.dumps(state))
    bucket = k.rollup("1h", "m", ts // HOUR_MS * HOUR_MS)
    r.hincrby(bucket, "legacy", 5)
    _complete(r, k, agg)
    assert int(r.hget(bucket, "legacy") or 0) == 0
    assert "_c" not in decode(r.get(key)) and decode(r.get(key))["_v"][0] == contrib.VERSION
    assert not r.hget(k.meta, "stale_entities")


def test_ret004_an_entity_of_other_definitions_is_counted_stale(r: Any) -> None:
    k, agg, key, state = _created_workflow(r)
    state["_v"] = [contrib.VERSION - 1, state["_v"][1]]
    r.set(key, orjson.dumps(state))
    _complete(r, k, agg)
    assert int(r.hget(k.meta, "stale_entities")) == 1
    assert decode(r.get(key))["_v"][0] == contrib.VERSION
