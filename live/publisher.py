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
from data.keys import Keys
from data.timeutil import now_ms

log = logging.getLogger("qms.live")

SHARED = ("executive", "operational", "qa")      # the same numbers for everyone who may see them
# Every round computes the default view (24h) and sends it at once; the other short
# timeframes follow at most every `fast_every_s`, the long ones every `slow_every_s`: each
# computation is a full dashboard, and under continuous ingest every batch is a new version.
FAST = ("24h", "1h", "4h")
SLOW = ("7d", "30d")
LAST_TTL_S = 24 * 3600
# The series the provisioned dashboards' charts draw (config/dashboards/*.yaml, `points: 48`),
# warmed for each data version so the first chart redraw after it reads them from the cache.
TREND_POINTS = 48
CHART_SERIES = ("overall_quality_score", "gate_pass_rate", "compliance_adherence", "cost_per_review",
                "error_rate", "defects_found")


def card_texts(widgets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """KPI widgets as the browser shows them: formatted once here, not in every browser."""
    out = {}
    for w in widgets:
        d = w["data"]
        out[w["id"]] = {"text": format_value(d.get("current_value"), d.get("unit")), "trend": d.get("trend"),
                        "rounded": format_value(d.get("current_value"), d.get("unit"), round_money=True),
                        "previous_text": f"previous: {format_value(d.get('previous_value'), d.get('unit'))}"}
    return out


def message(channel: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "data_update", "channel": channel, "data": data, "timestamp": now_ms()})


class Publisher:
    def __init__(self, r: redis.Redis, keys: Keys, engine: Engine, *, slow_every_s: float = 60.0,
                 fast_every_s: float = 1.0, claim_ttl_s: int = 60) -> None:
        self.r = r
        self.k = keys
        self.engine = engine
        self.slow_every_s = slow_every_s
        self.fast_every_s = fast_every_s
        self.claim_ttl_s = claim_ttl_s
        self._slow_at = 0.0
        self._fast_at = 0.0
        self._warmed: dict[str, float] = {}
        self.rounds = 0

    def version(self) -> int:
        return int(self.r.hget(self.k.meta, "version") or 0)

    def claim(self, version: int) -> bool:
        return bool(self.r.set(self.k.live_claim(version), b"1", nx=True, ex=self.claim_ttl_s))

    def publish_round(self, version: int) -> int:
        """Compute and publish every shared channel for `version`; returns messages sent.
        Each message costs a send per subscribed browser, so timeframes are grouped: the
        default one alone (latency), the other fast ones together, the slow ones rarely."""
        # The default view first, on its own: it is what most pages show, and it should not
        # wait for the other timeframes' computations. Then the other fast timeframes in one.
        sent = self._publish(version, FAST[:1], "first")
        if time.monotonic() - self._fast_at >= self.fast_every_s:
            sent += self._publish(version, FAST[1:], "fast")
            self._fast_at = time.monotonic()
        # The developer dashboard is per user: its browsers are told there is new data and
        # ask for their own numbers (cached per user and version).
        self.r.publish(self.k.live("dashboard.developer"),
                       message("dashboard.developer", {"version": version, "timeframes": {}}))
        sent += 1
        if time.monotonic() - self._slow_at >= self.slow_every_s:
            sent += self._publish(version, SLOW, "slow")
            self._slow_at = time.monotonic()
        self.rounds += 1
        return sent

    def _publish(self, version: int, timeframes: tuple[str, ...], group: str) -> int:
        cards: dict[str, dict[str, Any]] = {name: {} for name in SHARED}
        for tf in timeframes:
            for name in SHARED:
                cards[name][tf] = {"kpis": card_texts(self.engine.dashboard(name, tf)["data"]["widgets"])}
        with self.r.pipeline(transaction=False) as p:
            for name in SHARED:
                channel = f"dashboard.{name}"
                payload = message(channel, {"version": version, "timeframes": cards[name]})
                p.publish(self.k.live(channel), payload)
                p.hset(self.k.live_last(channel), group, payload)
                p.expire(self.k.live_last(channel), LAST_TTL_S)
            p.execute()
        # Then warm the series the charts draw (after the message, which must not wait for
        # them; the engine keeps them a few seconds), at most once per series lifetime.
        now = time.monotonic()
        for tf in timeframes:
            if now - self._warmed.get(tf, 0.0) >= self.engine.series_ttl_s:
                self._warmed[tf] = now
                for metric in CHART_SERIES:
                    self.engine.series(metric, tf, points=TREND_POINTS, shared=True)
        return len(SHARED)

    def run(self, stop: threading.Event) -> None:
        """Wait for new versions (pub/sub wake-up, or a 1 s poll if a message was missed)."""
        last = -1
        while not stop.is_set():
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.k.live_applied)
                while not stop.is_set():
                    pubsub.get_message(timeout=1.0)
                    # Drain what piled up while we computed: one round for all of it.
                    while pubsub.get_message(timeout=0):
                        pass
                    version = self.version()
                    if version != last:
                        last = version
                        if self.claim(version):
                            started = time.monotonic()
                            self.publish_round(version)
                            # Share the process with the aggregator: after a round that took
                            # d, rest 2d, so publishing never takes more than a third of the
                            # CPU (a bulk load's batches coalesce; a trickle is still at once).
                            stop.wait(2 * (time.monotonic() - started))
            except redis.RedisError as exc:
                log.warning("live publisher: %s; retrying", exc)
                stop.wait(1.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
