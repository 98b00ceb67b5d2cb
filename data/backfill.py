"""Is the demo still loading its history? The demo simulator (data/workers.start_demo) first
simulates its backfill — from its epoch up to now, an hour of simulated time at a time — then
goes live. Its hash `{p}:demo` says how far it is: `epoch` (the start of the history),
`cursor` (simulated up to here) and `beat` (when the simulator last wrote; a stopped one does
not, so an old hash never shows a backfill that is not running). Pure of UI: the shell turns
this into the navbar's "history still loading" notice.

The simulated events then still have to be aggregated: until the aggregator has caught up
with the stream the dashboards show gaps too, so that counts as loading — by the backlog
(Redis 7's group `lag` + `pending`) or, on Redis 6.2 which has no `lag`, by how far the
group's last delivered id is behind the stream's last id (ids are the times entries came in).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import redis

from data.keys import Keys
from data.timeutil import now_ms

LIVE_SLACK_MS = 5 * 60_000       # a cursor this close to now: live traffic, not a backfill
BEAT_STALE_MS = 5 * 60_000       # no beat for this long: no simulator is running
BACKLOG_MIN = 1_000              # events ingested but not yet aggregated that still count as loading
BEHIND_MIN_MS = 30_000           # ... or the aggregator this far behind the stream's newest entry


@dataclass(frozen=True)
class Backfill:
    epoch_ms: int
    cursor_ms: int
    target_ms: int                  # now: the backfill ends when the simulation catches up with it
    backlog: int | None = None      # events on the stream not yet aggregated (None: not known)
    behind_ms: int | None = None    # the aggregator's last delivered entry behind the newest (None: not known)
    aggregated: float | None = None  # share of the stream's span aggregated, 0..1 (None: not known)

    @property
    def fraction(self) -> float:
        """How much of the history is simulated, 0..1."""
        span = self.target_ms - self.epoch_ms
        return 1.0 if span <= 0 else min(1.0, max(0.0, (self.cursor_ms - self.epoch_ms) / span))

    @property
    def simulating(self) -> bool:
        return self.target_ms - self.cursor_ms > LIVE_SLACK_MS

    @property
    def aggregating(self) -> bool:
        return (self.backlog or 0) >= BACKLOG_MIN or (self.behind_ms or 0) >= BEHIND_MIN_MS


def running(state: Mapping[str, Any], now: int) -> tuple[int, int] | None:
    """(epoch, cursor) of a demo simulator that is running (a fresh beat), else None."""
    try:
        epoch, cursor, beat = int(state["epoch"]), int(state["cursor"]), int(state["beat"])
    except (KeyError, TypeError, ValueError):
        return None
    return None if now - beat > BEAT_STALE_MS else (epoch, cursor)


def assess(state: Mapping[str, Any], now: int, backlog: int | None = None, behind_ms: int | None = None,
           aggregated: float | None = None) -> Backfill | None:
    """The backfill in progress, from the demo hash's fields (strings or numbers) and the
    aggregator's progress; None when none is: no demo, a stale beat, or simulated up to now
    with the aggregator caught up."""
    found = running(state, now)
    if found is None:
        return None
    out = Backfill(epoch_ms=found[0], cursor_ms=found[1], target_ms=now, backlog=backlog, behind_ms=behind_ms,
                   aggregated=aggregated)
    return out if out.simulating or out.aggregating else None


def backfill_status(r: redis.Redis, keys: Keys, now: int | None = None) -> Backfill | None:
    """Read the demo hash (one HGETALL) and, only while a simulator runs, the stream's progress."""
    raw = r.hgetall(keys.demo)
    if not raw:
        return None
    state = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in raw.items()}
    now = now_ms() if now is None else now
    if running(state, now) is None:
        return None                 # no simulator (stale or missing beat): no stream read
    return assess(state, now, *_aggregation(r, keys))


def _id_ms(entry_id: Any) -> int | None:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    try:
        return int(str(entry_id).split("-", 1)[0])
    except ValueError:
        return None


def _aggregation(r: redis.Redis, keys: Keys) -> tuple[int | None, int | None, float | None]:
    """(backlog, behind_ms, aggregated share) of the aggregators' group on the event stream."""
    try:
        stream = r.xinfo_stream(keys.stream)
        groups = [g for g in r.xinfo_groups(keys.stream) if (g.get("name") or b"") in (keys.group, keys.group.encode())]
    except redis.ResponseError:         # no stream or no group yet
        return None, None, None
    if not groups:
        return None, None, None
    group = groups[0]
    # "lag" (Redis 7+) counts entries not yet delivered; "pending" those delivered, not acked.
    backlog = int(group["lag"]) + int(group.get("pending") or 0) if group.get("lag") is not None else None
    newest, delivered = _id_ms(stream.get("last-generated-id")), _id_ms(group.get("last-delivered-id"))
    first = stream.get("first-entry")
    oldest = _id_ms(first[0]) if first else None
    if newest is None or delivered is None:
        return backlog, None, None
    behind = max(0, newest - delivered)
    span = newest - oldest if oldest is not None else 0
    share = None if oldest is None else (1.0 if span <= 0 else min(1.0, max(0.0, (delivered - oldest) / span)))
    return backlog, behind, share


__all__ = ["Backfill", "assess", "backfill_status", "running", "LIVE_SLACK_MS", "BEAT_STALE_MS", "BACKLOG_MIN",
           "BEHIND_MIN_MS"]
