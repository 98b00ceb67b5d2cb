"""Is the demo still loading its history? The demo simulator (data/workers.start_demo) first
simulates its backfill — from its epoch up to now, an hour of simulated time at a time — then
goes live. Its hash `{p}:demo` says how far it is: `epoch` (the start of the history),
`cursor` (simulated up to here) and `beat` (when the simulator last wrote; a stopped one does
not, so an old hash never shows a backfill that is not running). Pure of UI: the shell turns
this into the navbar's "history still loading" notice.
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


@dataclass(frozen=True)
class Backfill:
    epoch_ms: int
    cursor_ms: int
    target_ms: int                  # now: the backfill ends when the simulation catches up with it
    backlog: int | None = None      # events on the stream not yet aggregated (None: not known)

    @property
    def fraction(self) -> float:
        """How much of the history is simulated, 0..1."""
        span = self.target_ms - self.epoch_ms
        return 1.0 if span <= 0 else min(1.0, max(0.0, (self.cursor_ms - self.epoch_ms) / span))

    @property
    def simulating(self) -> bool:
        return self.target_ms - self.cursor_ms > LIVE_SLACK_MS


def assess(state: Mapping[str, Any], now: int, backlog: int | None = None) -> Backfill | None:
    """The backfill in progress, from the demo hash's fields (strings or numbers) and the
    aggregator's backlog; None when none is: no demo, a stale beat, or simulated up to now
    with the aggregator caught up."""
    try:
        epoch, cursor, beat = int(state["epoch"]), int(state["cursor"]), int(state["beat"])
    except (KeyError, TypeError, ValueError):
        return None
    if now - beat > BEAT_STALE_MS:
        return None
    found = Backfill(epoch_ms=epoch, cursor_ms=cursor, target_ms=now, backlog=backlog)
    if found.simulating or (backlog or 0) >= BACKLOG_MIN:
        return found
    return None


def backfill_status(r: redis.Redis, keys: Keys, now: int | None = None) -> Backfill | None:
    """Read the demo hash (one HGETALL) and, only while it looks like loading, the backlog."""
    raw = r.hgetall(keys.demo)
    if not raw:
        return None
    state = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in raw.items()}
    now = now_ms() if now is None else now
    if assess(state, now) is None and assess(state, now, BACKLOG_MIN) is None:
        return None                 # not running at all (stale or missing beat): no stream read
    return assess(state, now, _backlog(r, keys))


def _backlog(r: redis.Redis, keys: Keys) -> int | None:
    try:
        groups = r.xinfo_groups(keys.stream)
    except redis.ResponseError:
        return None
    # "lag" (Redis 7+) counts entries not yet delivered; "pending" those delivered, not acked.
    return sum(int(g.get("lag") or 0) + int(g.get("pending") or 0) for g in groups)


__all__ = ["Backfill", "assess", "backfill_status", "LIVE_SLACK_MS", "BEAT_STALE_MS", "BACKLOG_MIN"]
