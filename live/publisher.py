"""Compute once, fan out: after the aggregator applies a batch, one publisher per data
version computes each dashboard channel's KPI cards and PUBLISHes them on Redis pub/sub;
every web process relays them to its own sockets (live.hub). No per-client computation.

The aggregator announces each new data version on `{p}:live-applied`. Whichever
publisher claims the version first (`SET NX EX`) computes it, so two aggregator processes
or two web processes never compute or send it twice; versions that arrive while a round
is running are coalesced into the next round. The last payload of each channel and
timeframe is kept in `{p}:live-last:<channel>` for clients that (re)subscribe: pub/sub
has no delivery guarantee, so a client starts from that snapshot, then takes deltas.

A timeframe's part of a message holds only the cards that changed, with `base`: the
version of the part it changes (a gate event changes 4-7 of the QA dashboard's 15 cards:
~0.6 KB a message for every subscriber instead of ~1.8 KB). A part is a delta only where
the snapshot holds exactly that base — checked and written in one script (SEND), so with
two publishers, or after a lost write, a part goes whole. A client applies a delta only on
top of its base (live.js), and asks for the snapshot again when it missed one.

A round is cheap, so it can run for every version: the short timeframes are computed from
the publisher's copy of the rollups (live.rollcache: one atomic read that returns only the
buckets a batch changed), and a channel gets one message per round holding only the
timeframes whose cards changed. The long timeframes (a full read of weeks of buckets) and
the warming of the charts' series run beside the rounds, in a thread of their own, so they
never hold a round up.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Callable

import orjson
import redis

from components.kpi import format_value
from data import kpis
from data.engine import Engine, plan
from data.keys import Keys
from data.kpis import Win
from data.timeutil import now_ms
from live import rollcache
from live.rollcache import RollupCache

log = logging.getLogger("qms.live")

SHARED = ("executive", "operational", "qa")      # the same numbers for everyone who may see them
# Every round computes the default view (24h); the other short timeframes join a round at
# most every `fast_every_s` (under continuous ingest every batch is a new version); the long
# ones are computed beside the rounds every `slow_every_s`.
FAST = ("24h", "1h", "4h")
SLOW = ("7d", "30d")
LAST_TTL_S = 24 * 3600
# One channel's message and snapshot, atomically: per timeframe, the delta part where the
# snapshot's version of that timeframe is the delta's base, else the whole part; the snapshot
# field (the whole part) and its version (`v:<timeframe>`) written; then PUBLISH.
# KEYS[1] = live-last hash; ARGV: pub/sub channel, message head, message tail, version, TTL s,
# then per timeframe: name, base ('' = none), delta fragment, whole fragment, snapshot message.
SEND = """
local parts = {}
for i = 6, #ARGV, 5 do
  local tf, base = ARGV[i], ARGV[i + 1]
  if base ~= '' and redis.call('HGET', KEYS[1], 'v:' .. tf) == base then
    parts[#parts + 1] = ARGV[i + 2]
  else
    parts[#parts + 1] = ARGV[i + 3]
  end
  redis.call('HSET', KEYS[1], tf, ARGV[i + 4], 'v:' .. tf, ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. table.concat(parts, ',') .. ARGV[3])
return #parts
"""
# The series the provisioned dashboards' charts draw (config/dashboards/*.yaml, `points: 48`,
# on the clock's boundaries as dashboards.computed asks), warmed every series lifetime so
# the first chart redraw after a push reads them from the cache.
TREND_POINTS = 48
CHART_SERIES = ("overall_quality_score", "gate_pass_rate", "compliance_adherence", "cost_per_review",
                "error_rate", "defects_found")


def card_texts(widgets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """KPI widgets as the browser shows them: formatted once here, not in every browser."""
    return texts_of({w["id"]: w["data"] for w in widgets})


def texts_of(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """KPI values (data.kpis.compute: id -> current/previous value, trend, unit) as cards."""
    out = {}
    for kpi_id, d in values.items():
        out[kpi_id] = {"text": format_value(d.get("current_value"), d.get("unit")), "trend": d.get("trend"),
                       "rounded": format_value(d.get("current_value"), d.get("unit"), round_money=True),
                       "previous_text": f"previous: {format_value(d.get('previous_value'), d.get('unit'))}"}
    return out


def message(channel: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "data_update", "channel": channel, "data": data, "timestamp": now_ms()})


def delta(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any] | None:
    """The cards of `after` that differ from `before`; None when it cannot be a delta (nothing
    before, or a card gone: a delta only adds and replaces)."""
    if before is None or not before.keys() <= after.keys():
        return None
    return {k: v for k, v in after.items() if before.get(k) != v}


def _fragment(tf: str, part: dict[str, Any]) -> bytes:
    return orjson.dumps(tf) + b":" + orjson.dumps(part)


class Publisher:
    def __init__(self, r: redis.Redis, keys: Keys, engine: Engine, *, slow_every_s: float = 60.0,
                 fast_every_s: float = 1.0, claim_ttl_s: int = 60) -> None:
        self.r = r
        self.k = keys
        self.engine = engine
        self.slow_every_s = slow_every_s
        self.fast_every_s = fast_every_s
        self.claim_ttl_s = claim_ttl_s
        self.cache = RollupCache(r, keys) if rollcache.supported(keys) else None
        self._fast_at = 0.0
        # (dashboard, timeframe) -> (cards last sent, the version they were sent at)
        self._sent: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self._send_script = r.register_script(SEND)
        self._lock = threading.Lock()          # rounds and the side thread's long timeframes both publish
        self.rounds = 0
        self.published = -1                    # the newest data version a round published

    def forget(self) -> None:
        """Send every channel in full again (the data store lost or replaced its history)."""
        with self._lock:
            self._sent.clear()
        self.published = -1

    def version(self) -> int:
        return int(self.r.hget(self.k.meta, "version") or 0)

    def claim(self, version: int) -> bool:
        return bool(self.r.set(self.k.live_claim(version), b"1", nx=True, ex=self.claim_ttl_s))

    def publish_round(self, version: int, drain: Callable[[], list[bytes]] | None = None) -> int:
        """Compute the short timeframes of every shared channel and publish what changed;
        returns messages sent. One message per channel: its 24h cards (what most pages
        show), and the 1h and 4h ones when they are due (at most every `fast_every_s`)."""
        due = time.monotonic() - self._fast_at >= self.fast_every_s
        timeframes = FAST if due else FAST[:1]
        if due:
            self._fast_at = time.monotonic()
        version, cards = self.compute(timeframes, version, drain)
        # The developer dashboard is per user: its browsers are told there is new data and
        # ask for their own numbers (cached per user and version).
        sent = self._send(version, cards, also=(("dashboard.developer", {"version": version, "timeframes": {}}),))
        self.rounds += 1
        self.published = max(self.published, version)
        return sent

    def compute(self, timeframes: tuple[str, ...], version: int, drain: Callable[[], list[bytes]] | None = None,
                ) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
        """(the data version, cards per (dashboard, timeframe)): from the rollup copy — one
        atomic read, so the version is the one the numbers are of; `drain` gives it the
        aggregator's wake-ups (live.rollcache) — or, where the copy cannot be used, from the
        engine at `version`."""
        if self.cache is None:
            return version, {(name, tf): card_texts(self.engine.dashboard(name, tf)["data"]["widgets"])
                             for tf in timeframes for name in SHARED}
        now = now_ms()
        plans = [(name, plan(tf, None, now, self.engine.skew_ms)) for tf in timeframes for name in SHARED]
        version, names, spans = self.cache.read(plans, drain)
        cards = {}
        for (name, p), span in zip(plans, spans):
            values = kpis.compute(kpis.kpis_for(name, names), Win(span, p.bounds, 0, None, None, names))
            cards[(name, p.timeframe)] = texts_of(values)
        return version, cards

    def _send(self, version: int, cards: dict[tuple[str, str], dict[str, Any]],
              also: tuple[tuple[str, dict[str, Any]], ...] = (), refresh: bool = False) -> int:
        """One message per channel with the timeframes whose cards changed since they were
        last sent, each only its changed cards on top of the version last sent (SEND decides
        whether the snapshot still holds that base), and the `also` messages. The snapshot
        (`live-last`: one field per timeframe, always whole) is written with its message in
        one script, so a snapshot read is never older than the messages a subscriber may
        already have been relayed."""
        changed: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any] | None, int | None]]] = {}
        with self._lock:
            for (name, tf), c in cards.items():
                before, sent_at = self._sent.get((name, tf), (None, None))
                if before != c:
                    d = delta(before, c)
                    changed.setdefault(name, {})[tf] = (c, d, sent_at if d is not None else None)
                    self._sent[(name, tf)] = (c, version)
        if not changed and not also and not refresh:
            return 0
        stamp = now_ms()
        with self.r.pipeline(transaction=True) as p:
            for channel, data in also:
                p.publish(self.k.live(channel), message(channel, data))
            if refresh:                  # snapshots of channels whose cards stay the same do not expire
                for name in SHARED:
                    p.expire(self.k.live_last(f"dashboard.{name}"), LAST_TTL_S)
            for name, tfs in changed.items():
                channel = f"dashboard.{name}"
                head = (b'{"type":"data_update","channel":' + orjson.dumps(channel)
                        + b',"data":{"version":' + str(version).encode() + b',"timeframes":{')
                tail = b'}},"timestamp":' + str(stamp).encode() + b"}"
                args: list[Any] = [self.k.live(channel), head, tail, version, LAST_TTL_S]
                for tf, (whole, d, base) in tfs.items():
                    full = _fragment(tf, {"kpis": whole})       # serialised once: the part and its snapshot
                    args += [tf, "" if base is None else base,
                             _fragment(tf, {"kpis": d, "base": base}) if d is not None else b"",
                             full, head + full + tail]
                self._send_script(keys=[self.k.live_last(channel)], args=args, client=p)
            p.execute()
        return len(changed) + len(also)

    def publish_slow(self) -> int:
        """The long timeframes of every shared channel (through the engine: weeks of buckets
        are read once a minute, not kept)."""
        version = self.version()
        cards = {(name, tf): card_texts(self.engine.dashboard(name, tf)["data"]["widgets"])
                 for tf in SLOW for name in SHARED}
        return self._send(version, cards, refresh=True)

    def warm_series(self) -> None:
        """The charts' series of the short timeframes, into the engine's shared cache."""
        for tf in FAST:
            for metric in CHART_SERIES:
                self.engine.series(metric, tf, points=TREND_POINTS, shared=True, aligned=True)

    def _beside(self, stop: threading.Event) -> None:
        """The side thread: long timeframes every `slow_every_s`, series every series lifetime."""
        slow_at = warm_at = -1e9
        while not stop.is_set():
            try:
                if time.monotonic() - slow_at >= self.slow_every_s:
                    slow_at = time.monotonic()
                    self.publish_slow()
                ttl = self.engine.series_ttl_s
                if ttl > 0 and time.monotonic() - warm_at >= ttl:
                    warm_at = time.monotonic()
                    self.warm_series()
            except redis.RedisError as exc:
                log.warning("live publisher (long timeframes): %s; retrying", exc)
            stop.wait(1.0)

    def run(self, stop: threading.Event) -> None:
        """Wait for new versions (pub/sub wake-up, or a 1 s poll if a message was missed)."""
        beside = threading.Thread(target=self._beside, args=(stop,), name="qms-live-publisher-slow", daemon=True)
        beside.start()
        try:
            self._rounds(stop)
        finally:
            beside.join(5)

    def _rounds(self, stop: threading.Event) -> None:
        while not stop.is_set():
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            heard: list[bytes] = []
            marks = itertools.count()

            def listen(timeout: float) -> None:
                msg = pubsub.get_message(timeout=timeout)
                while msg is not None:
                    if msg["type"] == "message":
                        heard.append(msg["data"])
                    msg = pubsub.get_message(timeout=0)

            def drain() -> list[bytes]:
                """The wake-ups published up to now, in order: PING on the subscription and
                read up to its PONG (live.rollcache)."""
                mark = f"qms-live-{next(marks)}".encode()
                pubsub.ping(mark)
                deadline = time.monotonic() + 5.0
                while True:
                    msg = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                    if msg is None:
                        if time.monotonic() >= deadline:
                            raise redis.TimeoutError("no PONG on the live-applied subscription")
                    elif msg["type"] == "message":
                        heard.append(msg["data"])
                    elif msg["type"] == "pong" and msg["data"] == mark:
                        out = heard[:]
                        heard.clear()
                        return out
            try:
                pubsub.subscribe(self.k.live_applied)
                if self.cache is not None:
                    self.cache.synced = False          # wake-ups were missed while not subscribed
                while not stop.is_set():
                    # Wait for a wake-up (or poll once a second, if one was missed); what piled
                    # up while we computed makes one round.
                    listen(1.0)
                    version = self.version()
                    if version < self.published:
                        self.forget()            # a new or flushed Redis: another history
                    # A version this publisher's last round already covered (its read is
                    # atomic and may have seen newer batches) is not computed again.
                    if version > self.published and self.claim(version):
                        self.publish_round(version, drain if self.cache is not None else None)
                    else:
                        self.published = max(self.published, version)
                        if self.cache is not None:        # another publisher's round: keep the copy exact
                            self.cache.heard(heard[:])
                        heard.clear()
            except redis.RedisError as exc:
                log.warning("live publisher: %s; retrying", exc)
                stop.wait(1.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
