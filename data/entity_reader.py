"""Reads one workflow's or one agent's events from Redis for the entity pages and hands them to
the pure assembly in data/entities.py.

Sources (data/keys.py): the aggregator's per-entity index `eix:<wf|ac>:<id>` (event ids scored
by timestamp), the raw bodies `raw:<day>`, the agent status timeline `tl:ag:<id>`, the agents'
display state and the defect entities `ent:df:<id>`, whose resolution times find the
`defect_resolved` events (they name no workflow, so no workflow index holds them) through the
type index `rawidx:workflow.defect_resolved:<day>` at exactly those timestamps.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator, Sequence

import orjson
import redis

from auth.sanitize import AGENT_PREFIX
from data import archive, entcodec, entities, rawstore
from data.batch import member
from data.events import MAX_NAME
from data.keys import Keys
from data.timeutil import DAY_MS, parse_iso

CHUNK = 2000            # raw bodies fetched per round trip


def _bodies(r: redis.Redis, keys: Keys, hits: Sequence[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """The raw events of (event id, ts[, JSON from the archive]) hits, in the given order, a
    chunk at a time (constant memory however long the window); ids kept nowhere are skipped."""
    for pos in range(0, len(hits), CHUNK):
        part = hits[pos:pos + CHUNK]
        refs = [(h[1], h[0].decode()) for h in part if len(h) < 3]
        found = iter(rawstore.fetch_raw(r, keys, refs))
        for h in part:
            body = h[2] if len(h) > 2 else next(found)
            if body is not None:
                yield orjson.loads(body)


def entity_hits(r: redis.Redis, keys: Keys, kind: str, ident: str, lo: int | None, hi: int | None,
                limit: int | None = None) -> list[tuple[Any, ...]]:
    """A workflow's or actor's events with lo <= ts < hi (None: unbounded), newest first:
    (id, ts) from the Redis index, (id, ts, JSON) from the archive, an event in both once.
    `limit`: at most that many of the newest (the archive is asked for no more)."""
    hits: list[tuple[Any, ...]] = list(_index(r, keys.entity_events(kind, ident), "-inf" if lo is None else lo,
                                              "+inf" if hi is None else hi))
    arch = archive.of(keys)
    if arch is not None and arch.days_between(lo, hi):
        older = arch.entity(kind, ident, lo, hi, None if limit is None else limit + 1)
        seen = {(h[0], h[1]) for h in hits}
        hits += [h for h in older if (h[0], h[1]) not in seen]
        hits.sort(key=lambda h: (h[1], h[0]), reverse=True)
    return hits


def events_of(r: redis.Redis, keys: Keys, kind: str, ident: str, lo: int, hi: int) -> list[tuple[int, dict[str, Any]]]:
    """(ts, event) of a workflow's or actor's events with lo <= ts < hi, newest first, from
    Redis and the archive (a short window: a panel's, not a page of any size)."""
    hits = entity_hits(r, keys, kind, ident, lo, hi)
    return [(parse_iso(ev["timestamp"]), ev) for ev in _bodies(r, keys, hits)]


# ZRANGEBYSCORE at many exact scores in one round trip (one command each would cost more in
# the client than in Redis). ARGV: key1, score1, key2, score2, ...; one list of ids per pair.
_AT_SCORES = """
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = redis.call('ZRANGEBYSCORE', ARGV[i], ARGV[i + 1], ARGV[i + 1]) end
return out
"""


def resolutions(r: redis.Redis, keys: Keys, defect_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """{defect id: its defect_resolved events}, found from the defect entity's resolution times."""
    ids = sorted({d for d in defect_ids if isinstance(d, str)})
    wanted: list[tuple[str, int]] = []
    for pos in range(0, len(ids), CHUNK):
        part = ids[pos:pos + CHUNK]
        for d, raw in zip(part, r.mget([keys.entity("df", d) for d in part])):
            for ts in sorted(set((entcodec.decode(raw) if raw else {}).get("r", []))):
                wanted.append((d, int(ts)))
    hits: dict[tuple[bytes, int], bytes | None] = {}
    for pos in range(0, len(wanted), CHUNK):
        part = wanted[pos:pos + CHUNK]
        args: list[Any] = []
        for _d, ts in part:
            args += [keys.raw_index("workflow.defect_resolved", ts // DAY_MS), ts]
        for (_d, ts), eids in zip(part, r.eval(_AT_SCORES, 0, *args)):
            hits.update(((eid, ts), None) for eid in eids)
    arch = archive.of(keys)
    if arch is not None and wanted and arch.days():
        for eid, ts, body in arch.of_type_at("workflow.defect_resolved", {ts for _d, ts in wanted}):
            hits[(eid, ts)] = body
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    want = set(ids)
    ordered = sorted(hits.items(), key=lambda h: h[0][1])
    for ev in _bodies(r, keys, [(i, ts) if b is None else (i, ts, b) for (i, ts), b in ordered]):
        d = (ev.get("data") or {}).get("defect_id")
        if d in want:
            out[d].append(ev)
    return dict(out)


def _index(r: redis.Redis, key: str, lo: int | str, hi: int | str) -> list[tuple[bytes, int]]:
    """Members of an entity index with lo <= ts < hi, newest first. Asked as a plain ZRANGE:
    ZREVRANGEBYSCORE's reply handling in redis-py cost twice the command itself. Depending on
    the redis-py version the reply is pairs or flat (member, score, ...)."""
    reply = r.execute_command("ZRANGE", key, f"({hi}" if isinstance(hi, int) else hi, lo, "BYSCORE", "REV",
                              "WITHSCORES")
    if reply and isinstance(reply[0], (list, tuple)):
        return [(m, int(s)) for m, s in reply]
    it = iter(reply)
    return [(m, int(float(s))) for m, s in zip(it, it)]


def read_workflow(r: redis.Redis, keys: Keys, workflow_id: str, now: int, sla_ms: int) -> dict[str, Any] | None:
    """The workflow page's data, or None for a workflow nobody has reported."""
    if not workflow_id or len(workflow_id) > MAX_NAME:
        return None
    index = keys.entity_events("wf", workflow_id)
    if not r.exists(index, keys.entity("wf", workflow_id)):
        return None
    evs = list(_bodies(r, keys, entity_hits(r, keys, "wf", workflow_id, None, None)))
    found = [e["data"].get("defect_id") for e in evs if e.get("type") == "workflow.defect_found"]
    return entities.workflow_doc(workflow_id, evs, resolutions(r, keys, found), now, sla_ms)


def agent_known(r: redis.Redis, keys: Keys, agent_id: str) -> bool:
    """An agent: announced by a status event, or an agent-named actor with indexed events.
    People (reviewers, finders) have indexes too but no agent page."""
    if not agent_id or len(agent_id) > MAX_NAME:
        return False
    if r.sismember(keys.registry("agents"), agent_id):
        return True
    return agent_id.startswith(AGENT_PREFIX) and bool(r.exists(keys.entity_events("ac", agent_id),
                                                              keys.timeline("ag", agent_id)))


def read_agent(r: redis.Redis, keys: Keys, agent_id: str, start: int, end: int, now: int,
               limit: int = 500) -> dict[str, Any] | None:
    """The agent page's data for [start, end), or None for an unknown agent."""
    if not agent_known(r, keys, agent_id):
        return None
    tl = keys.timeline("ag", agent_id)
    with r.pipeline(transaction=False) as p:
        p.hget(keys.state("agents"), agent_id)
        p.zrangebyscore(tl, start, f"({end}")
        p.zrevrangebyscore(tl, f"({start}", "-inf", start=0, num=1)
        current, points_raw, before_raw = p.execute()
    points = [member(m) for m in points_raw]
    before = None
    if before_raw:
        ts, eid, status = member(before_raw[0])
        [body] = rawstore.fetch_raw(r, keys, [(ts, eid)])
        load = (orjson.loads(body).get("data") or {}).get("load") if body else None
        before = (ts, eid, status, load)
    hits = entity_hits(r, keys, "ac", agent_id, start, end)
    return entities.agent_doc(agent_id, orjson.loads(current) if current else None, points, before,
                              _bodies(r, keys, hits), lambda ids: resolutions(r, keys, ids), start, end, now, limit)
