"""Compute once, fan out: after the aggregator applies a batch, one publisher per data
version computes each dashboard channel's KPI cards and PUBLISHes them on Redis pub/sub;
every web process relays them to its own sockets (live.hub). No per-client computation.

The aggregator announces each new data version on `{p}:live-applied`. Whichever
publisher claims the version first (`SET NX EX`) computes it, so two aggregator processes
or two web processes never compute or send it twice; versions that arrive while a round
is running are coalesced into the next round. The last payload of each channel and
timeframe is kept in `{p}:live-last:<channel>` for clients that (re)subscribe: pub/sub
has no delivery guarantee, so a client starts from that snapshot, then takes deltas.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
import redis

from components.kpi import format_value
from data.engine import Engine
from data.panels import CHART_SERIES, TREND_POINTS
from data.keys import Keys
from data.timeutil import now_ms

log = logging.getLogger("qms.live")

SHARED = ("executive", "operational", "qa")      # the same numbers for everyone who may see them
FAST = ("24h", "1h", "4h")                       # every round, the default view first
SLOW = ("7d", "30d")                             # at most every `slow_every_s`: costly, slow to move
LAST_TTL_S = 24 * 3600


def card_texts(widgets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """KPI widgets as the browser shows them: formatted once here, not in every browser."""
    out = {}
    for w in widgets:
        d = w["data"]
        out[w["id"]] = {"text": format_value(d.get("current_value"), d.get("unit")), "trend": d.get("trend"),
                        "previous_text": f"previous: {format_value(d.get('previous_value'), d.get('unit'))}"}
    return out


def message(channel: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "data_update", "channel": channel, "data": data, "timestamp": now_ms()})


class Publisher:
    def __init__(self, r: redis.Redis, keys: Keys, engine: Engine, *, slow_every_s: float = 15.0,
                 claim_ttl_s: int = 60) -> None:
        self.r = r
        self.k = keys
        self.engine = engine
        self.slow_every_s = slow_every_s
        self.claim_ttl_s = claim_ttl_s
        self._slow_at = 0.0
        self.rounds = 0

    def version(self) -> int:
        return int(self.r.hget(self.k.meta, "version") or 0)

    def claim(self, version: int) -> bool:
        return bool(self.r.set(self.k.live_claim(version), b"1", nx=True, ex=self.claim_ttl_s))

    def publish_round(self, version: int) -> int:
        """Compute and publish every shared channel for `version`; returns messages sent."""
        sent = 0
        for tf in FAST:
            sent += self._publish_timeframe(version, tf)
        # The developer dashboard is per user: its browsers are told there is new data and
        # ask for their own numbers (cached per user and version).
        self.r.publish(self.k.live("dashboard.developer"),
                       message("dashboard.developer", {"version": version, "timeframes": {}}))
        sent += 1
        if time.monotonic() - self._slow_at >= self.slow_every_s:
            for tf in SLOW:
                sent += self._publish_timeframe(version, tf)
            self._slow_at = time.monotonic()
        self.rounds += 1
        return sent

    def _publish_timeframe(self, version: int, tf: str) -> int:
        # Warm the series the dashboards' charts draw, so each browser's redraw after this
        # message is a cache read, not a computation.
        for metric in CHART_SERIES:
            self.engine.series(metric, tf, points=TREND_POINTS)
        for name in SHARED:
            widgets = self.engine.dashboard(name, tf)["data"]["widgets"]
            channel = f"dashboard.{name}"
            payload = message(channel, {"version": version, "timeframes": {tf: {"kpis": card_texts(widgets)}}})
            with self.r.pipeline(transaction=False) as p:
                p.publish(self.k.live(channel), payload)
                p.hset(self.k.live_last(channel), tf, payload)
                p.expire(self.k.live_last(channel), LAST_TTL_S)
                p.execute()
        return len(SHARED)

    def run(self, stop: threading.Event) -> None:
        """Wait for new versions (pub/sub wake-up, or a 5 s poll if a message was missed)."""
        last = -1
        while not stop.is_set():
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.k.live_applied)
                while not stop.is_set():
                    pubsub.get_message(timeout=5.0)
                    # Drain what piled up while we computed: one round for all of it.
                    while pubsub.get_message(timeout=0):
                        pass
                    version = self.version()
                    if version != last:
                        last = version
                        if self.claim(version):
                            self.publish_round(version)
            except redis.RedisError as exc:
                log.warning("live publisher: %s; retrying", exc)
                stop.wait(1.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
