"""Raw events as the aggregator keeps them: bodies in `{p}:raw:<day>` (id -> JSON), indexed
by type and day (`{p}:rawidx:<type>:<day>`) and by workflow or actor (`{p}:eix:<wf|ac>:<id>`),
each index a sorted set of ids scored by timestamp; past the hot window, in the archive
(data.archive: Parquet by day), which every reader here merges in transparently.

Reads are lazy and paged: `scan` walks a window newest first in chunks of ids, so a
drill-down or an export of any size holds one chunk at a time. Also the CSV escaping every
export uses (`csv_cell`).
"""
from __future__ import annotations

import csv
import heapq
import io
from typing import Any, Iterable, Iterator

import orjson
import redis

from data import archive
from data.keys import Keys
from data.pace import request_paced
from data.timeutil import DAY_MS

CHUNK = 1000
Ref = tuple[int, str]                       # (timestamp ms, event id): rows are ordered by it
Hit = tuple[int, str, dict[str, Any]]       # (timestamp ms, event id, event)


def _zrev(r: redis.Redis, key: str, lo: int, hi: int, below: Ref | None, chunk: int) -> Iterator[tuple[int, bytes]]:
    """(score, member) of one index with lo <= score < hi and (score, member) < below,
    newest first, read `chunk` at a time. Members sharing a score are read apart so a
    page boundary inside them neither repeats nor skips one."""
    if below is not None and below[0] < hi:
        top, tie = below[0], below[1].encode()
    else:
        top, tie = hi, None
    while True:
        if tie is not None and top >= lo:
            same = r.zrangebyscore(key, top, top)
            for m in sorted((m for m in same if m < tie), reverse=True):
                yield top, m
        got = r.zrevrangebyscore(key, f"({top}", lo, start=0, num=chunk, withscores=True)
        for m, score in got:
            yield int(score), m
        if len(got) < chunk:
            return
        top, tie = int(got[-1][1]), got[-1][0]


def scan(r: redis.Redis, keys: Keys, types: Iterable[str], s: int, e: int, below: Ref | None = None,
         chunk: int = CHUNK) -> Iterator[list[Hit]]:
    """Events of `types` with s <= timestamp < e (and below the cursor), newest first (by
    timestamp, then id), in chunks of at most `chunk`: from Redis and, for a day that has
    been moved to the archive (data.archive), from there too, merged."""
    types = list(types)
    if e <= s or not types:
        return
    arch = archive.of(keys)
    top_day = (e - 1) // DAY_MS
    if below is not None and below[0] < e:
        top_day = min(top_day, below[0] // DAY_MS)
    for day in range(top_day, s // DAY_MS - 1, -1):
        lo, hi = max(s, day * DAY_MS), min(e, (day + 1) * DAY_MS)
        merged: Iterator[Any] = heapq.merge(*(_zrev(r, keys.raw_index(t, day), lo, hi, below, chunk) for t in types),
                                            reverse=True)
        if arch is not None and arch.parts(day):
            merged = _union(merged, arch.rev(types, day, lo, hi, below, chunk))
        batch: list[tuple[Any, ...]] = []
        for hit in merged:
            batch.append(hit)
            if len(batch) >= chunk:
                yield _bodies(r, keys, day, batch)
                batch = []
        if batch:
            yield _bodies(r, keys, day, batch)


def window(r: redis.Redis, keys: Keys, types: Iterable[str], s: int, e: int, limit: int) -> tuple[list[Hit], bool]:
    """What `scan` gives over [s, e), at most `limit` hits, and whether more were left out —
    in three round trips whatever the window's days: how many of each type and day (ZCOUNT),
    the newest `limit` ids (ZREVRANGEBYSCORE), their bodies (HMGET), each in one pipeline,
    ordered by one sort. A computed view reading its whole window (test coverage, team
    collaboration) paid a round trip per type, day and thousand ids, and a Python merge per
    event. Days with archived parts are read by `scan`."""
    types = list(types)
    if e <= s or not types or limit <= 0:
        return [], False
    days = range((e - 1) // DAY_MS, s // DAY_MS - 1, -1)
    arch = archive.of(keys)
    if arch is not None and any(arch.parts(day) for day in days):
        out: list[Hit] = []
        for chunk in scan(r, keys, types, s, e):
            for hit in chunk:
                if len(out) >= limit:
                    return out, True
                out.append(hit)
        return out, False
    bounds = {day: (max(s, day * DAY_MS), min(e, (day + 1) * DAY_MS)) for day in days}
    with r.pipeline(transaction=False) as p:
        for day in days:
            lo, hi = bounds[day]
            for t in types:
                p.zcount(keys.raw_index(t, day), lo, f"({hi}")
        counts = p.execute()
    wanted: list[int] = []           # the days read, newest first, up to `limit` ids
    total, taken = sum(counts), 0
    for i, day in enumerate(days):
        n = sum(counts[i * len(types):(i + 1) * len(types)])
        if n:
            wanted.append(day)
            taken += n
            if taken >= limit:
                break
    if not wanted:
        return [], False
    with r.pipeline(transaction=False) as p:
        for day in wanted:
            lo, hi = bounds[day]
            for t in types:
                p.zrevrangebyscore(keys.raw_index(t, day), f"({hi}", lo, start=0, num=limit, withscores=True)
        got = p.execute()
    refs: list[tuple[int, bytes, int]] = []
    for i, day in enumerate(wanted):
        for rows in got[i * len(types):(i + 1) * len(types)]:
            refs.extend((int(score), m, day) for m, score in rows)
    refs.sort(reverse=True)          # newest first by (timestamp, id), as scan's merge
    more = len(refs) > limit or total > limit
    refs = refs[:limit]
    by_day: dict[int, list[bytes]] = {}
    for _, m, day in refs:
        by_day.setdefault(day, []).append(m)
    with r.pipeline(transaction=False) as p:
        for day, ids in by_day.items():
            p.hmget(keys.raw(day), ids)
        bodies = {(day, m): raw for (day, ids), raws in zip(by_day.items(), p.execute()) for m, raw in zip(ids, raws)}
    lost = [(ts, m.decode()) for ts, m, day in refs if bodies.get((day, m)) is None]
    if lost and arch is not None:    # the mover finished the day since the index read
        found = arch.bodies(lost)
        bodies.update(((ts // DAY_MS, i.encode()), b) for (ts, i) in lost if (b := found.get(i)) is not None)
    return _parsed(refs, bodies), more


def _parsed(refs: list[tuple[int, bytes, int]], bodies: dict[tuple[int, bytes], bytes]) -> list[Hit]:
    """The hits of `refs` whose bodies were found, parsed: up to a computed view's 50,000,
    paced so that a web process's loop serves its other requests meanwhile (data.pace)."""
    out = []
    for ts, m, day in request_paced(refs):
        raw = bodies.get((day, m))
        if raw is not None:
            out.append((ts, m.decode(), orjson.loads(raw)))
    return out


def _union(redis_hits: Iterator[tuple[int, bytes]], arch_hits: Iterator[tuple[int, bytes, bytes]]) \
        -> Iterator[tuple[Any, ...]]:
    """Two newest-first streams of hits as one, an event in both once (the archive's copy,
    which carries its body)."""
    last: tuple[int, bytes] | None = None
    pending: tuple[Any, ...] | None = None
    for hit in heapq.merge(redis_hits, arch_hits, key=lambda h: (h[0], h[1]), reverse=True):
        key = (hit[0], hit[1])
        if key == last:
            if len(hit) > 2:
                pending = hit
            continue
        if pending is not None:
            yield pending
        pending, last = hit, key
    if pending is not None:
        yield pending


def _bodies(r: redis.Redis, keys: Keys, day: int, batch: list[tuple[Any, ...]]) -> list[Hit]:
    """Hits with their events: Redis's bodies read in one HMGET, the archive's carried along;
    a body deleted from Redis between the index read and this one (the mover finished the
    day meanwhile) is read from the archive."""
    wanted = [h[1] for h in batch if len(h) == 2]
    raws = dict(zip(wanted, r.hmget(keys.raw(day), wanted))) if wanted else {}
    lost = [(h[0], h[1].decode()) for h in batch if len(h) == 2 and raws.get(h[1]) is None]
    if lost:
        arch = archive.of(keys)
        found = arch.bodies(lost) if arch is not None else {}
        raws.update((i.encode(), b) for i, b in found.items())
    out: list[Hit] = []
    for h in batch:
        raw = h[2] if len(h) > 2 else raws.get(h[1])
        if raw is not None:
            out.append((h[0], h[1].decode(), orjson.loads(raw)))
    return out


def fetch(r: redis.Redis, keys: Keys, refs: list[Ref]) -> list[dict[str, Any] | None]:
    """Events by (timestamp, id), from Redis or the archive; None for one no longer kept."""
    return [orjson.loads(raw) if raw is not None else None for raw in fetch_raw(r, keys, refs)]


def fetch_raw(r: redis.Redis, keys: Keys, refs: list[Ref]) -> list[bytes | None]:
    """The stored JSON of events by (timestamp, id); None for one kept nowhere."""
    if not refs:
        return []
    with r.pipeline(transaction=False) as p:
        for ts, ident in refs:
            p.hget(keys.raw(ts // DAY_MS), ident)
        raws: list[bytes | None] = p.execute()
    missing = [ref for ref, raw in zip(refs, raws) if raw is None]
    arch = archive.of(keys)
    if missing and arch is not None:
        found = arch.bodies(missing)
        raws = [raw if raw is not None else found.get(ref[1]) for ref, raw in zip(refs, raws)]
    return raws


def ids_at(r: redis.Redis, keys: Keys, wants: list[tuple[str, str, int]]) -> list[list[bytes]]:
    """For each (kind, id, ts): the ids of the events of that workflow or actor stamped
    exactly ts (the aggregator's entity index, and the archive's entity columns)."""
    return [sorted(found) for found in _at(r, keys, wants)]


def _at(r: redis.Redis, keys: Keys, wants: list[tuple[str, str, int]]) -> list[dict[bytes, bytes | None]]:
    """For each want: {event id: its JSON when the archive had it, else None}."""
    if not wants:
        return []
    with r.pipeline(transaction=False) as p:
        for kind, ident, ts in wants:
            p.zrangebyscore(keys.entity_events(kind, ident), ts, ts)
        out: list[dict[bytes, bytes | None]] = [dict.fromkeys(ids) for ids in p.execute()]
    arch = archive.of(keys)
    if arch is not None and any(arch.parts(d) for d in {ts // DAY_MS for _, _, ts in wants}):
        for found, extra in zip(out, arch.at(wants)):
            found.update(extra)
    return out


def entity_events_at(r: redis.Redis, keys: Keys, wants: list[tuple[str, str, int]]) -> list[list[dict[str, Any]]]:
    """For each (kind, id, ts): the events of that workflow or actor stamped exactly ts,
    oldest id first. Entity states keep times, not ids; this finds the events behind them."""
    if not wants:
        return []
    found = _at(r, keys, wants)
    refs = [(ts, m.decode()) for (_, _, ts), ids in zip(wants, found) for m, body in sorted(ids.items())
            if body is None]
    bodies = iter(fetch_raw(r, keys, refs))
    out: list[list[dict[str, Any]]] = []
    for ids in found:
        evs = []
        for _m, body in sorted(ids.items()):
            raw = body if body is not None else next(bodies)
            if raw is not None:
                evs.append(orjson.loads(raw))
        out.append(evs)
    return out


def events_between(r: redis.Redis, keys: Keys, types: Iterable[str], s: int, e: int, limit: int,
                   where: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """The `limit` newest events of `types` in [s, e) whose data matches `where`, oldest
    first (a short list for a panel or an alert). Returns (events, more were left out)."""
    out: list[dict[str, Any]] = []
    for chunk in scan(r, keys, types, s, e):
        for _ts, _id, ev in chunk:
            if where and any((ev.get("data") or {}).get(k) != v for k, v in where.items()):
                continue
            if len(out) >= limit:
                out.reverse()
                return out, True
            out.append(ev)
    out.reverse()
    return out, False


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    if text.startswith(_DANGEROUS):
        text = "'" + text
    return text


def flat_row(ev: dict[str, Any]) -> dict[str, Any]:
    """One event as a flat table row: id, type, timestamp, source, priority, data.<field>."""
    row: dict[str, Any] = {"id": ev.get("id"), "type": ev.get("type"), "timestamp": ev.get("timestamp"),
                           "source": ev.get("source"), "priority": (ev.get("metadata") or {}).get("priority")}
    for k, v in (ev.get("data") or {}).items():
        row["data." + k] = orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v
    return row


def csv_lines(rows: Iterable[list[Any]], per_chunk: int = 500) -> Iterator[str]:
    """Rows (the first is the header) as CSV text, a few hundred rows per piece, every cell
    escaped like csv_cell: what a streamed export yields."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n = 0
    for row in rows:
        w.writerow([csv_cell(c) for c in row])
        n += 1
        if n >= per_chunk:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            n = 0
    if buf.tell():
        yield buf.getvalue()


def rows_csv(rows: list[list[Any]]) -> str:
    """Rows (the first is the header) as one CSV text, every cell escaped like csv_cell."""
    return "".join(csv_lines(rows))

