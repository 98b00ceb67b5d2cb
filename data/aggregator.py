"""The aggregator: reads the ingest stream through a consumer group, in batches, and keeps
the rollups, totals, entity states and display state up to date.

One batch: take the apply lock, read the entities and timelines the batch touches (and
which event ids were already applied), compute, write the batch's idempotent effects (raw
store, indexes, registries: the same values again change nothing) as plain commands with
every reply checked, then ONE script (data.batch.APPLY, fenced by the lock's token) checks,
writes every other effect, marks the ids applied and XACKs the entries, all or nothing. A
crash before the script leaves the entries pending (another consumer reclaims them with
XAUTOCLAIM); after it they are acknowledged. An id already applied is skipped, so
re-delivery never double-counts. Several aggregators can share the stream: if the lock
changed hands meanwhile, the script writes nothing and the batch is recomputed.

Not partitioned, batches overlap (Aggregator._apply_overlapped): the next batch is read
before this one's global writes and parsed while Redis writes them (it is pending under this
consumer until its own script); its applied ids and entities are read before this batch's
script — only what the script does not write: the entities it writes are taken as the bytes
it computed, the ids it marks as applied — and its entities are folded while the script
runs. The script keeps the lock for it (the next fence says no one wrote between); its
timelines and authors are read behind the script. A failed script: none of it is used and
the next batch reads for itself.

Partitioned (K = `aggregation_partitions` > 1, or Redis Cluster; data.partition): each
partition has its own stream, consumer group, applied-id sets, rollups, totals, meta and
apply lock, in one hash slot, and owns its entities and timelines. An aggregator serves the
partitions it is given (default: all), taking a partition's lock before reading a batch from
it, so K partitions let K processes work at once. The global, idempotent writes of a batch
(raw store, indexes, registries, display rows, forwarded copies, authors) go before the
script, on a cluster grouped per master; a crash re-writes the same values. Producers'
direct XADDs to the root stream are moved to their partitions by the router step every
aggregator runs.
"""
from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import orjson
import redis

from data import contrib, rollups
from data.batch import (
    APPLY,
    AUTHORS_MAX,
    BUMP,
    ENTITY_TTL_S,
    RELEASE,
    RETENTION,
    STEP,
    Acc,
    Commands,
    VALIDATED,
    Parsed,
    Head,
    Prep,
    Writes,
    display_row,
    entry_ms,
    member,
    trusted,
)
from data.contrib import TIMELINE_KINDS
from data.entcodec import decode, encode
from data.events import item_id, validate
from data.keys import ROUTER_GROUP, Keys, fingerprint, seen_buckets
from data.pace import Pause, paced
from data.partition import FORWARDED, owner, partition_of, route, route_raw, targets
from data.redis_conn import Script, Sent, first_error, node_for, raw_ordered, raw_pipeline, write_all
from data.timeutil import DAY_MS, EXPIRY_SLACK_MS, RESOLUTIONS, fmt_ms, now_ms

log = logging.getLogger("qms.aggregator")

# Which ids of a batch were applied already: 1/0 per id, in order. ARGV, per day: the day's
# legacy applied-id set (data.keys APPLIED, read until it expires) or "" when it has none, the
# id count, then (seen hash, fingerprint[, id when a legacy set]) per id. KEYS[1]: the
# partition's meta (the call's slot).
SEEN_APPLIED_GET = """
local out = {}
local i = 1
while i <= #ARGV do
  local legacy, n = ARGV[i], tonumber(ARGV[i + 1])
  local old = legacy ~= '' and redis.call('EXISTS', legacy) == 1
  local stride = legacy ~= '' and 3 or 2
  i = i + 2
  for _ = 1, n do
    if redis.call('HGET', ARGV[i], ARGV[i + 1]) == '1' or (old and redis.call('SISMEMBER', legacy, ARGV[i + 2]) == 1) then
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
    i = i + stride
  end
end
return out
"""
LEGACY_RECHECK_S = 300      # how long "this day has no legacy applied-id set" is believed
# An aggregator process's collector (Collector: `run` in the main thread, as in `cli.py
# aggregate`): no collection while a batch runs, a full one between batches every GC_EVERY_S, or
# sooner once GC_YOUNG_MAX more objects are alive than at the last. A batch's objects are freed
# by their reference counts, so a collection in the middle of a batch only scans them: with the
# thresholds (50,000, 20, 20) it had until stop 37, a 100,000-event drain ran 13, 165 ms of its
# 3.5 s, and they freed 6 objects.
GC_EVERY_S = 10.0
GC_YOUNG_MAX = 1_000_000
APPLY_SCRIPT = Script(APPLY)


class Collector:
    """Garbage collection between an aggregator process's batches (GC_EVERY_S): at the start
    a full one, and what is alive then is left out of later ones (gc.freeze); `close` gives
    back the collector's settings (not the freeze)."""

    def __init__(self, every_s: float = GC_EVERY_S) -> None:
        self.every_s = every_s
        self._saved = (gc.isenabled(), gc.get_threshold())
        gc.collect()
        gc.freeze()
        gc.disable()
        self._due = time.monotonic() + every_s

    def between_batches(self) -> None:
        now = time.monotonic()
        if now >= self._due or gc.get_count()[0] > GC_YOUNG_MAX:
            gc.collect()
            self._due = now + self.every_s

    def close(self) -> None:
        enabled, threshold = self._saved
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()


class Aggregator:
    def __init__(self, r: redis.Redis, keys: Keys, *, sla_hours: float = 8.0, batch: int = 2000,
                 block_ms: int = 1000, reclaim_idle_ms: int = 30_000, max_future_skew_s: int = 900,
                 raw_retention_days: int = 30, dedup_retention_days: int = 90, consumer: str | None = None,
                 lock_ms: int = 10_000, partitions: list[int] | None = None, dedup_buckets: int = 1024,
                 batch_max: int | None = None, pause: Pause | None = None) -> None:
        self.r = r
        self.k = keys
        self.parts = keys.parts()
        self.mine = list(range(len(self.parts))) if partitions is None else sorted(set(partitions))
        if not self.mine or not all(0 <= i < len(self.parts) for i in self.mine):
            raise ValueError(f"partitions {partitions} not in 0..{len(self.parts) - 1}")
        self.pk = self.parts[self.mine[0]]      # the partition of the batch at hand
        self._held: str | None = None           # its lock's token, when taken before reading
        self._rr = 0
        self.sla_ms = int(sla_hours * 3_600_000)
        self.batch = batch
        # Catching up, batches grow to batch_max (Aggregator._sized): a backlog drains faster,
        # live work keeps the base size, and with it how long one script holds Redis.
        self.batch_max = batch if batch_max is None else max(batch, batch_max)
        self._count: dict[int, int] = {}        # per partition: the next read's COUNT
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.skew_ms = max_future_skew_s * 1000
        self.raw_ttl_ms = raw_retention_days * DAY_MS
        self.dedup_ttl_ms = dedup_retention_days * DAY_MS
        self.wanted_buckets = dedup_buckets
        self.buckets = 0              # the deployment's seen buckets, read at the first batch (data.keys)
        self._legacy: dict[tuple[int, int], bool] = {}      # (partition, day): has a legacy applied set
        self._legacy_until = 0.0
        self._seen_cache: dict[tuple[int, int], list[str]] = {}     # (partition, day): seen hash names by bucket
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"
        self.lock_ms = lock_ms
        self._release_script = r.register_script(RELEASE)
        self._authors_script = r.register_script(AUTHORS_MAX)
        self._bump_script = r.register_script(BUMP)
        self._last_reclaim = 0.0                       # not partitioned
        self._part_reclaim: dict[int, float] = {}      # partitioned: per partition
        self._batches = 0
        self._untrimmed = 0                     # entries processed since the last trim
        # Not partitioned: the next batch, read and parsed while this one's script runs.
        self.overlap = True
        self._next: tuple[list[Any], Parsed | None] | None = None
        # Sharing gevent's loop with the pages (the web process's own aggregator under `cli.py
        # serve`, data.workers.embedded_aggregator): its long loops give way (data.pace). None: not.
        self.pause = pause
        # Test hook: called after compute, before EXEC (the crash test kills the process here).
        self.before_commit: Any = None
        self.gc_every_s = GC_EVERY_S            # run in the main thread: Collector

    @classmethod
    def from_settings(cls, r: redis.Redis, settings: Any, **kw: Any) -> "Aggregator":
        kw.setdefault("batch_max", settings.aggregator_batch_max)
        return cls(r, Keys.from_settings(r, settings), sla_hours=settings.sla_hours, batch=settings.aggregator_batch,
                   block_ms=settings.aggregator_block_ms, reclaim_idle_ms=settings.reclaim_idle_ms,
                   max_future_skew_s=settings.max_future_skew_s, raw_retention_days=settings.raw_retention_days,
                   dedup_retention_days=settings.dedup_retention_days, dedup_buckets=settings.dedup_buckets, **kw)

    def ensure_group(self) -> None:
        rollups.mark_daily(self.r, self.k, now_ms() + self.skew_ms)    # daily buckets: whole from when
        streams = [(self.parts[i].stream, self.k.group) for i in self.mine]
        if self.k.partitioned:
            streams.append((self.k.inbox, ROUTER_GROUP))
        for stream, group in streams:
            try:
                self.r.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # --- loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Batches until `stop`. In the main thread (an aggregator process) the garbage is
        collected between batches (Collector); in another (a web process's) it is left to the
        process."""
        collector = Collector(self.gc_every_s) if threading.current_thread() is threading.main_thread() else None
        try:
            self._run(stop, collector)
        finally:
            if collector is not None:
                collector.close()

    def _run(self, stop: threading.Event, collector: Collector | None) -> None:
        self.ensure_group()
        log.info("aggregator %s reading %s", self.consumer, ", ".join(self.parts[i].stream for i in self.mine))
        while not stop.is_set():
            try:
                self.step()
            except redis.ConnectionError as exc:
                log.warning("redis unavailable (%s); retrying", exc)
                stop.wait(1.0)
            except Exception:  # a bug must not kill the loop; the entries stay pending
                log.exception("batch failed; entries stay pending and will be reclaimed")
                stop.wait(1.0)
            if collector is not None:
                collector.between_batches()
        if self._next is not None:     # read ahead: apply it rather than leave it to a reclaim
            try:
                self.step(block_ms=0)
            except Exception:
                log.exception("the batch read ahead stays pending and will be reclaimed")

    def _reclaim_due(self) -> bool:
        last = self._part_reclaim.get(self.pk.index, 0.0) if self.k.partitioned else self._last_reclaim
        return time.monotonic() - last > max(self.reclaim_idle_ms / 3000, 0.2)

    def _xread(self, block_ms: int | None) -> tuple[Any, ...]:
        """XREADGROUP of new entries of the partition at hand, as a plain command."""
        block = () if block_ms is None else ("BLOCK", block_ms)
        return ("XREADGROUP", "GROUP", self.k.group, self.consumer, "COUNT", self._count.get(self.pk.index, self.batch),
                *block, "STREAMS", self.pk.stream, ">")

    def _sized(self, n: int) -> None:
        """The next read's size, after a read of n new entries of the partition at hand. A read
        that came back full means a backlog: the next asks for twice as many, up to batch_max
        (increments to the same rollup field within a batch are summed before they are written,
        so a batch of 8000 costs ~13 % less aggregator CPU and ~35 % less Redis CPU an event than
        four of 2000, and its script holds Redis ~2.3x as long). A read short of the base size
        means caught up: back to the base size."""
        i = self.pk.index
        cur = self._count.get(i, self.batch)
        if n >= cur:
            self._count[i] = min(cur * 2, self.batch_max)
        elif n < self.batch:
            self._count[i] = self.batch

    @staticmethod
    def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """An XREADGROUP reply of one stream as [(entry id, {field: value})]."""
        if isinstance(reply, redis.ResponseError):
            raise reply
        if not reply:
            return []
        got = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]     # RESP3: a map
        return [(eid, dict(zip(flat[::2], flat[1::2])) if flat else {}) for eid, flat in got]

    def _next_entries(self, block_ms: int | None) -> list[Any]:
        """Reclaimed entries first (when due), else new ones (block_ms None: do not block)."""
        i = self.pk.index
        if self._reclaim_due():
            if self.k.partitioned:
                self._part_reclaim[i] = time.monotonic()
            else:
                self._last_reclaim = time.monotonic()
            live = self._claim()
            if live:
                return live
        entries = self._entries(raw_pipeline(node_for(self.r, self.pk.stream), [self._xread(block_ms)])[0])
        self._sized(len(entries))
        return entries

    def _claim(self, stream: str | None = None, group: str | None = None) -> list[Any]:
        """Take over entries another consumer read but never acknowledged (it crashed or stalled)."""
        stream, group = stream or self.pk.stream, group or self.k.group
        res = self.r.xautoclaim(stream, group, self.consumer, self.reclaim_idle_ms, "0-0", count=self.batch)
        entries, deleted = res[1], (res[2] if len(res) > 2 else [])
        if deleted:
            self.r.xack(stream, group, *deleted)
        live = [e for e in entries if e[1]]
        if live:
            log.info("reclaimed %d pending entries of %s", len(live), stream)
        return live

    def step(self, block_ms: int | None = None) -> int:
        """Process one batch synchronously. Returns entries handled."""
        block = self.block_ms if block_ms is None else block_ms
        if self.k.partitioned:
            return self._step_partitioned(block)
        if self._next is not None:
            entries, parsed = self._next
            self._next = None
            self.process(entries, parsed)
        else:
            entries = self._next_entries(block)
            if entries:
                self.process(entries)
        if entries:
            self._after_batch(len(entries))
        return len(entries)

    def _overlapping(self) -> bool:
        """Whether this batch reads the next one ahead (_read_ahead): not partitioned, not
        when a reclaim is due (the next step claims first)."""
        return not (self.k.partitioned or not self.overlap or self._next is not None or self._reclaim_due())

    def _read_ahead(self) -> Sent:
        """Not partitioned: ask for the next batch as soon as this one's reads are in, so that
        Redis reads it while this one is computed, it is parsed while Redis writes this one's
        global writes, and computed while its script runs."""
        return Sent(node_for(self.r, self.pk.stream), [self._xread(None)])

    def _take_ahead(self, sent: Sent) -> None:
        """The read-ahead batch's entries, parsed (None when parsing failed: `process`
        parses again and isolates the cause). They are pending under this consumer either way."""
        entries = self._entries(sent.replies()[0])
        self._sized(len(entries))
        if not entries:
            return
        try:
            parsed: Parsed | None = self.parse(entries)
        except Exception:
            parsed = None
        self._next = (entries, parsed)

    def _apply_overlapped(self, ahead: Sent, w: Writes, g: Commands, token: str, written: dict[str, bytes],
                          marked: set[tuple[int, int, bytes]]) -> None:
        """Not partitioned: the batch's global writes and script, with the next batch (its
        XREADGROUP went out just before) computed up to its entities while the script runs.

        While Redis writes the global writes, the next batch is parsed and prepared; its
        applied-id and entity reads go out behind them, BEFORE the script, and only for what
        the script does not write: every entity this batch writes is taken as the bytes this
        batch computed, every id it marks as applied (the script writes exactly those or
        nothing). The script keeps the lock (SET ... PX instead of DEL), so the next batch's
        fence says no one wrote between; its timelines and authors are read behind the script
        (they see its writes). Then, while the script runs, the next batch's entities are
        folded (Aggregator._head). A failed script (fence, check, NOSCRIPT) or failed reads:
        none of it is used (Parsed.ready, Parsed.head stay None; a lock kept is released) and
        the next batch reads for itself."""
        pk = self.pk
        try:
            self._check_types(g)
            wrote = Sent(self.r, g.cmds)
        except BaseException:
            ahead.discard()
            raise
        nxt: Parsed | None = None
        try:
            self._take_ahead(ahead)       # parsed while Redis writes (a failed read discards it)
            nxt = self._next[1] if self._next is not None else None
            if nxt is not None:
                try:
                    nxt.prep = self._prepare(nxt)
                except Exception:     # bad events: the batch goes the plain way (and is bisected)
                    nxt.prep = None
            prep = nxt.prep if nxt is not None else None
            early: list[tuple[Any, ...]] = []
            if prep is not None:
                early = [prep.reads[0]]
                unknown = [key for key in prep.ent_keys if key not in written]
                if unknown:
                    early.append(("MGET", *unknown))
                wrote.more(early)
        except BaseException:
            wrote.discard()
            raise
        replies = wrote.replies()
        err = first_error(replies[:len(g.cmds)])
        if err is not None:
            raise err
        got_early = replies[len(g.cmds):]
        keep = prep is not None and first_error(got_early) is None
        w.command(*(("SET", pk.lock, token, "PX", self.lock_ms) if keep else ("DEL", pk.lock)))
        args = w.script_args()
        sent = Sent(self.r, [("EVALSHA", APPLY_SCRIPT.sha, 1, pk.lock, *args), *(prep.reads[prep.late:] if keep else ())])
        head: Head | None = None
        states: list[Any] = []
        try:
            if keep:
                assert nxt is not None and prep is not None
                states = self._merged(prep, got_early, written, marked)
                try:
                    head = self._head(nxt, prep, states[0], states[1] if prep.ent_keys else [])
                except Exception:     # bad events: the batch goes the plain way (and is bisected)
                    head = None
        except BaseException:
            sent.discard()
            raise
        replies = sent.replies()
        got = replies[0]
        if isinstance(got, redis.exceptions.NoScriptError):
            got = raw_pipeline(self.r, [("EVAL", APPLY_SCRIPT.body, 1, pk.lock, *args)])[0]
            if keep and not isinstance(got, redis.ResponseError):
                self._release(token)      # the reads behind ran before it: not used
            keep = False
        if isinstance(got, redis.ResponseError):
            raise got
        if not keep:
            return
        if first_error(replies[1:]) is not None:
            self._release(token)
            return
        assert nxt is not None
        nxt.ready = (token, [*states, *replies[1:]])
        nxt.head = head

    def _merged(self, prep: Prep, early: list[Any], written: dict[str, bytes],
                marked: set[tuple[int, int, bytes]]) -> list[Any]:
        """The next batch's applied-id flags and entity states (`prep.reads[:prep.late]`'s
        replies) as they are after this batch's script: its marks and entities put in."""
        fps = prep.fps
        flags = [1 if f or (day, *fps[ident]) in marked else 0
                 for f, (day, ident) in zip(early[0], ((d, i) for d, idents in prep.days.items() for i in idents))]
        if not prep.ent_keys:
            return [flags]
        got = iter(early[1]) if len(early) > 1 else iter(())
        return [flags, [written[key] if key in written else next(got) for key in prep.ent_keys]]

    def _after_batch(self, n: int) -> None:
        """Every 50 batches, and at least every 50 base batches' worth of entries (batches
        grown for a backlog would otherwise keep up to batch_max / batch times as many
        processed entries in the stream between two trims), the stream is trimmed."""
        self._batches += 1
        self._untrimmed += n
        if self._batches % 50 == 0 or self._untrimmed >= 50 * self.batch:
            self._untrimmed = 0
            self.trim()

    def _step_partitioned(self, block_ms: int) -> int:
        """One batch of the first of my partitions (in turn) that is free and has work: its
        lock is taken BEFORE reading, so two aggregators never wait on one partition while
        another has work. Idle: route the root stream, else wait a little."""
        routed = self.route_inbox()
        n = len(self.mine)
        order = [self.mine[(self._rr + j) % n] for j in range(n)]
        self._rr = (self._rr + 1) % n
        for i in order:
            self.pk = self.parts[i]
            token = uuid.uuid4().hex
            if not self.r.set(self.pk.lock, token, nx=True, px=self.lock_ms):
                continue
            self._held = token
            try:
                entries = self._next_entries(None)
                if entries:
                    self.process(entries)
                    self._after_batch(len(entries))
                    return len(entries)
            finally:
                if self._held is not None:        # not used by a batch's script
                    self._release(self._held)
                    self._held = None
        if not routed and block_ms:
            time.sleep(min(block_ms, 20) / 1000)
        return 0

    def route_inbox(self, reclaim: bool = False) -> int:
        """The router step: entries producers XADDed to the root stream go to their primary
        partition's stream (data.partition.route_raw), then are acknowledged. A crash between
        the two re-routes them: the partition's applied ids make the copy a duplicate."""
        k = self.k
        if not k.partitioned:
            return 0
        if reclaim:
            entries = self._claim(k.inbox, ROUTER_GROUP)
        else:
            resp = self.r.xreadgroup(ROUTER_GROUP, self.consumer, {k.inbox: ">"}, count=self.batch)
            entries = resp[0][1] if resp else []
        if not entries:
            return 0
        with self.r.pipeline(transaction=False) as p:
            for _, fields in entries:
                if fields:
                    p.xadd(self.parts[route_raw(fields.get(b"e"), k.partitions)].stream, fields)
            p.execute()
        self.r.xack(k.inbox, ROUTER_GROUP, *(e[0] for e in entries))
        return len(entries)

    def _streams(self) -> list[tuple[str, str]]:
        out = [(self.parts[i].stream, self.k.group) for i in self.mine]
        if self.k.partitioned:
            out.append((self.k.inbox, ROUTER_GROUP))
        return out

    def trim(self) -> None:
        """Drop stream entries every group has been given and none still holds pending:
        their effects are committed, so keeping them would only cost memory."""
        for stream, _ in self._streams():
            groups = self.r.xinfo_groups(stream)
            floors = []
            for g in groups:
                last = g["last-delivered-id"]
                floors.append(last if isinstance(last, bytes) else str(last).encode())
                if g["pending"]:
                    summary = self.r.xpending(stream, g["name"])
                    if summary.get("min"):
                        floors.append(summary["min"])
            if floors:
                floor = min(floors, key=lambda i: tuple(int(x) for x in i.split(b"-")))
                # An approximate trim removes whole nodes, at most `limit` entries a call:
                # once ran behind (more added between two trims), it never caught up.
                for _ in range(1000):
                    if not self.r.xtrim(stream, minid=floor, approximate=True, limit=10_000):
                        break
        for i in self.mine:
            carry = self.parts[i].carry
            for key in self.r.smembers(carry):   # buckets with carries that have expired since
                if not self.r.exists(key):
                    self.r.srem(carry, key)

    def reclaim(self) -> int:
        n = self.route_inbox(reclaim=True)
        for i in self.mine:
            self.pk = self.parts[i]
            live = self._claim()
            if live:
                self.process(live)
                n += len(live)
        return n

    def _backlog(self) -> tuple[int, int]:
        """(pending, not yet delivered) over my streams' groups."""
        pending = lag = 0
        for stream, name in self._streams():
            info = self.r.xinfo_groups(stream)
            group = next((g for g in info if g["name"] in (name, name.encode())), None)
            if group is not None:
                pending += group["pending"]
                lag += group.get("lag", 0) or 0
        return pending, lag

    def drain(self, timeout_s: float = 30.0, collector: Collector | None = None) -> None:
        """Process until the groups have nothing pending or new (tests, replay, bench;
        `collector`: as `run` in an aggregator process)."""
        self.ensure_group()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = self.step(block_ms=50)
            if collector is not None:
                collector.between_batches()
            if n == 0:
                pending, lag = self._backlog()
                if pending == 0 and lag == 0:
                    return
                if pending:
                    self._last_reclaim = 0.0
                    self._part_reclaim.clear()
                    old = self.reclaim_idle_ms
                    self.reclaim_idle_ms = 0
                    try:
                        self.reclaim()
                    finally:
                        self.reclaim_idle_ms = old
        raise TimeoutError("aggregator did not drain the stream in time")

    # --- one batch ----------------------------------------------------------------------
    def process(self, entries: list[tuple[bytes, dict[bytes, bytes]]], parsed: Parsed | None = None) -> None:
        """Apply a batch (`parsed`: already parsed). If computing it fails, the batch is split
        in halves until the event that makes it fail stands alone; that one goes to the
        dead-letter store and the rest apply, so one poison event never holds up (or takes
        down) the others. Redis errors are not the events' fault: they propagate and the
        entries stay pending."""
        try:
            self.apply(parsed if parsed is not None else self.parse(entries))
        except (redis.RedisError, redis.exceptions.RedisClusterException):
            raise
        except Exception as exc:
            if len(entries) == 1:
                self._dead_letter_entry(entries[0], exc)
                return
            log.warning("a batch of %d entries failed (%s: %s); splitting it to isolate the cause",
                        len(entries), type(exc).__name__, exc)
            mid = len(entries) // 2
            self.process(entries[:mid])
            self.process(entries[mid:])

    def _dead_letter_entry(self, entry: tuple[bytes, dict[bytes, bytes]], exc: Exception) -> None:
        entry_id, fields = entry
        raw = fields.get(b"e") or b""
        try:
            ident = item_id(orjson.loads(raw)) or ""
        except orjson.JSONDecodeError:
            ident = ""
        reason = f"aggregation failed: {type(exc).__name__}: {exc}"[:1000]
        log.error("event %r (entry %s) cannot be aggregated and goes to the dead-letter store: %s",
                  ident, entry_id.decode(), reason)
        pk = self.pk
        w = Writes(pk.carry)      # through APPLY too: no XACK unless the dead letter is written
        w.xadd(pk.deadletter, {"reason": reason, "raw": raw, "origin": "stream", "at": fmt_ms(now_ms()),
                               "id": ident}, 100_000)
        w.command("HINCRBY", pk.meta, "rejected", 1)
        w.xack(pk.stream, self.k.group, entry_id)
        self.r.eval(APPLY, 1, pk.meta, *w.script_args())

    def parse(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> "Parsed":
        """Decode and validate a batch (no Redis): valid events, dead letters, in-batch repeats."""
        events: list[tuple[dict[str, Any], int]] = []
        dead: list[tuple[str, bytes, str]] = []      # reason, raw, event id ("" when none)
        seen: set[str] = set()
        raws: dict[str, bytes] = {}
        direct: set[str] = set()                     # ids that came in an entry not forwarded
        dups = 0
        now = now_ms()
        for entry_id, fields in paced(entries, self.pause):
            raw = fields.get(b"e")
            try:
                obj = orjson.loads(raw) if raw is not None else None
            except orjson.JSONDecodeError:
                dead.append(("not JSON", raw or b"", ""))
                continue
            # "In the future" counts from when the entry was added (a re-delivery is judged
            # alike), but never from later than now: a producer may XADD an id of its choosing.
            ts = trusted(fields, obj)
            if ts is not None:                # validated by the ingest: not again (~1/5 of our CPU)
                ev, errors = obj, []
            else:
                ev, ts, errors = validate(obj, min(entry_ms(entry_id), now), self.skew_ms)
            if ev is None:
                dead.append(("; ".join(errors), raw or b"", item_id(obj) or ""))
                continue
            if FORWARDED not in fields:
                direct.add(ev["id"])
            if ev["id"] in seen:
                dups += 1
                continue
            seen.add(ev["id"])
            events.append((ev, ts))
            if ev is obj:                 # unchanged by validation: store the bytes as they came
                raws[ev["id"]] = raw
        return Parsed([e[0] for e in entries], events, dead, dups, raws, direct)

    def apply(self, parsed: "Parsed") -> None:
        while True:
            try:
                self._apply(parsed, now_ms())
                return
            except redis.ResponseError as exc:
                if not str(exc).startswith("QMSFENCE"):
                    raise
                log.debug("the apply lock changed hands mid-batch; recomputing")

    def _acquire(self) -> str:
        """The partition's apply lock: one aggregator writes a partition at a time (reading
        and parsing run in parallel). Taken before reading in partitioned mode (`_held`).

        The batch's script writes only while the token is still there (fencing): if the lock
        expires and another aggregator takes it, the late holder writes nothing and
        recomputes, so a stalled process never writes stale state.
        """
        if self._held is not None:
            token, self._held = self._held, None
            return token
        token = uuid.uuid4().hex
        delay = 0.001
        while not self.r.set(self.pk.lock, token, nx=True, px=self.lock_ms):
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return token

    def _release(self, token: str) -> None:
        self._release_script(keys=[self.pk.lock], args=[token])

    def _prepare(self, parsed: Parsed) -> "Prep":
        """What a batch needs before its reads (no state of Redis but the legacy-set check of
        a new day): its events grouped per entity and day, the keys, fingerprints, and the
        read commands themselves."""
        k, pk = self.k, self.pk
        part = k.partitioned
        me, nparts = pk.index, k.partitions
        by_entity: dict[tuple[str, str], list[tuple[dict[str, Any], int]]] = defaultdict(list)
        days: dict[int, list[str]] = defaultdict(list)
        authors: set[str] = set()
        # Partitioned: this partition folds only the entities it owns, and does an event's
        # direct effects only when it is the event's primary partition (data.partition).
        secondary: set[str] = set()
        for ev, ts in paced(parsed.events, self.pause):
            primary = not part or route(ev, nparts) == me
            for ent in contrib.entity_keys(ev):
                if not part or partition_of(owner(*ent), nparts) == me:
                    by_entity[ent].append((ev, ts))
            days[ts // DAY_MS].append(ev["id"])
            if not primary:
                secondary.add(ev["id"])
            elif ev["type"] == "workflow.pr_created":
                authors.add(ev["data"]["author"])
        ent_list = [e for e in by_entity if e[0] not in TIMELINE_KINDS]
        tl_list = [e for e in by_entity if e[0] in TIMELINE_KINDS]
        ent_keys = [k.entity(kind, ident) for kind, ident in ent_list]
        tl_keys = [k.timeline(kind, ident) for kind, ident in tl_list]
        author_list = sorted(authors)

        if not self.buckets:
            self.buckets = seen_buckets(self.r, k, self.wanted_buckets)
        fps = {ident: fingerprint(ident, self.buckets) for idents in days.values() for ident in idents}
        reads: list[tuple[Any, ...]] = [("EVAL", SEEN_APPLIED_GET, 1, pk.meta, *self._seen_args(days, fps))]
        if ent_keys:
            reads.append(("MGET", *ent_keys))      # one partition's keys: one slot
        late = len(reads)
        for (kind, ident), key in zip(tl_list, tl_keys):
            lo = min(ts for _, ts in by_entity[(kind, ident)])
            reads.append(("ZREVRANGEBYSCORE", key, f"({lo}", "-inf", "LIMIT", 0, 1))
            reads.append(("ZRANGEBYSCORE", key, lo, "+inf"))
        if author_list:
            reads.append(("HMGET", k.authors, *author_list))
        return Prep(pk.index, by_entity, days, secondary, ent_list, tl_list, ent_keys, tl_keys, author_list, fps,
                    reads, late)

    def _head(self, parsed: Parsed, prep: Prep, flags: list[Any], ent_states: list[Any]) -> Head:
        """The batch's first part, from which of its ids were applied (`flags`, per id in
        `prep.days` order) and its entities' states: the new events, their direct
        contributions, the entities folded and encoded. Not partitioned, it runs while the
        previous batch's script runs (Aggregator._apply_overlapped)."""
        events, dups, secondary = parsed.events, parsed.dups, prep.secondary
        days = prep.days
        applied = {ident for ident, flag in zip((i for d in days for i in days[d]), flags) if flag}
        fresh = [(ev, ts) for ev, ts in events if ev["id"] not in applied] if applied else events
        if secondary:
            dups += sum(1 for ev, _ in events if ev["id"] in applied and ev["id"] not in secondary)
            own = [(ev, ts) for ev, ts in fresh if ev["id"] not in secondary]
        else:
            dups += len(events) - len(fresh)
            own = fresh
        fresh_ids = {ev["id"] for ev, _ in fresh} if applied else None
        acc = Acc()
        add = acc.add
        for ev, ts in paced(own, self.pause):
            for c in contrib.direct(ev, ts):
                add(c)
        display: dict[str, dict[str, bytes]] = defaultdict(dict)
        hide: dict[str, list[str]] = defaultdict(list)
        w = Writes(self.pk.carry)
        pairs = self._entities(w, acc, prep.ent_list, prep.ent_keys, ent_states, prep.by_entity, fresh_ids,
                               display, hide)
        return Head(fresh, own, dups, fresh_ids, acc, display, hide, w, dict(pairs))

    def _apply(self, parsed: Parsed, now: int) -> None:
        k, pk = self.k, self.pk
        part = k.partitioned
        entry_ids, dead = parsed.entry_ids, parsed.dead
        prep = parsed.prep if parsed.prep is not None and parsed.prep.part == pk.index else self._prepare(parsed)
        parsed.prep = None
        by_entity, days = prep.by_entity, prep.days
        tl_list, ent_keys, tl_keys = prep.tl_list, prep.ent_keys, prep.tl_keys
        author_list, fps = prep.author_list, prep.fps
        # Read ahead (data.batch.Parsed.ready, Aggregator._apply_overlapped): the lock kept by
        # the previous batch's script, the reads as they are after it, maybe its entities
        # computed while it ran (Parsed.head).
        ready, parsed.ready = parsed.ready, None
        head, parsed.head = parsed.head, None
        token = ready[0] if ready is not None else self._acquire()
        committed = False
        ahead: Sent | None = None
        try:
            res = ready[1] if ready is not None else raw_ordered(self.r, prep.reads)
            err = first_error(res)
            if err is not None:
                raise err
            # The next batch is asked for now (it goes pending under this consumer): Redis reads
            # it while this one is computed, and it is parsed while this one's global writes run.
            overlapped = self._overlapping()
            if overlapped:
                ahead = self._read_ahead()
            pos = 1
            ent_states: list[Any] = []
            if ent_keys:
                ent_states = res[pos]
                pos += 1
            tl_segments = []
            for _ in tl_list:
                tl_segments.append((res[pos], res[pos + 1]))
                pos += 2
            author_vals = res[pos] if author_list else []
            if head is None:
                head = self._head(parsed, prep, res[0], ent_states)
            fresh, own, dups, fresh_ids = head.fresh, head.own, head.dups, head.fresh_ids
            acc, display, hide, w = head.acc, head.display, head.hide, head.w
            # The global, idempotent writes (raw store, indexes, registries; partitioned also
            # the display rows, outside the partition's slot): plain commands before the script.
            g = Commands()
            shown: Writes | Commands = g if part else w
            self._timelines(w, acc, tl_list, tl_keys, tl_segments, by_entity, fresh_ids, display)
            for kind, mapping in display.items():
                shown.hset(k.state(kind), mapping)
            for kind, idents in hide.items():
                shown.hdel(k.state(kind), *idents)
            latest = self._registries_and_raw(g, w, own, author_list, author_vals, now, parsed.raws)
            if part:
                self._forward(g, fresh, parsed.direct)
            for (res_name, fam, start), fields in paced(acc.rolled(now).items(), self.pause):
                w.increments(pk.rollup(res_name, fam, start),
                             start + STEP[res_name] + RETENTION[res_name] + EXPIRY_SLACK_MS, fields)
            for fam, fields in acc.totals.items():
                w.increments(pk.totals(fam), 0, fields)
            for reason, raw, ident in dead:
                w.xadd(pk.deadletter, {"reason": reason, "raw": raw, "origin": "stream", "at": fmt_ms(now),
                                       "id": ident}, 100_000)
            w.command("HINCRBY", pk.meta, "version", 1)
            if not k.cluster:
                if part:      # the deployment's version, with the batch (live.rollcache)
                    w.command("HINCRBY", k.meta, "version", 1)
                w.command("PUBLISH", k.live_applied, live_hint(acc))   # wakes the live publisher; what changed (live.rollcache)
            w.command("HINCRBY", pk.meta, "applied", len(own))
            w.command("HINCRBY", pk.meta, "duplicates", dups)
            w.command("HINCRBY", pk.meta, "rejected", len(dead))
            w.command("HSET", pk.meta, "last_batch_ms", now)
            last_event = max(ts for _, ts in fresh) if fresh else None
            if last_event is not None:
                w.command("HSET", pk.meta, "last_event_ms", last_event)
            # Last: the marks that say "done". They run only if every write before them did.
            marked = self._mark_applied(w, days, fresh_ids, fps, now)
            w.xack(pk.stream, k.group, *entry_ids)
            w.fence = [pk.lock, token]
            if overlapped and self.before_commit is not None:
                self.before_commit()      # before the global writes (they overlap the next batch's parse)
            if ahead is None:
                w.command("DEL", pk.lock)
                self._global_writes(g, latest if part else {})
                if self.before_commit is not None and not overlapped:
                    self.before_commit()
                APPLY_SCRIPT(self.r, [pk.lock], w.script_args())
            else:
                taken, ahead = ahead, None      # read or discarded there
                self._apply_overlapped(taken, w, g, token, head.written, marked)
            committed = True
        finally:
            if ahead is not None:
                try:
                    self._take_ahead(ahead)
                except Exception:
                    ahead.discard()
                    log.warning("the batch read ahead stays pending and will be reclaimed")
            if not committed:
                self._release(token)
        if part:
            # The deployment-wide meta (freshness, the live publisher's version) and its wake-up.
            self._bump_script(keys=[k.meta], args=[now, "" if last_event is None else last_event,
                                                   k.live_applied, live_hint(acc) if k.cluster else b"",
                                                   "1" if k.cluster else "0"])

    def _mark_applied(self, w: Writes, days: dict[int, list[str]], fresh_ids: set[str] | None,
                      fps: dict[str, tuple[int, bytes]], now: int) -> set[tuple[int, int, bytes]]:
        """The batch's new ids set to 1 (applied) in their days' seen hashes: per hash an HSET
        and a PEXPIREAT (a batch touches most of a day's buckets), passed to APPLY as one list
        and one blob of fingerprints (Writes.marks), written at this point of the batch.
        Returns what it marks: (day, bucket, fingerprint)."""
        pk = self.pk
        marked: set[tuple[int, int, bytes]] = set()
        for day, idents in days.items():
            by_bucket: dict[int, list[bytes]] = defaultdict(list)
            for i in paced(idents, self.pause, 256):
                if fresh_ids is None or i in fresh_ids:
                    bucket, fp = fps[i]
                    by_bucket[bucket].append(fp)
                    marked.add((day, bucket, fp))
            expire = max((day + 1) * DAY_MS, now) + self.dedup_ttl_ms
            names = self._seen_names(day)
            for bucket, fields in by_bucket.items():
                w.marks(names[bucket], fields, expire)
        w.marks_here()
        return marked

    def _seen_args(self, days: dict[int, list[str]], fps: dict[str, tuple[int, bytes]]) -> list[Any]:
        """SEEN_APPLIED_GET's arguments: per day, its legacy set (or ""), the count, (hash,
        field[, id]) each. The ids go only for days that have a legacy set: one EXISTS per new
        day, believed for LEGACY_RECHECK_S (only code before the seen hashes writes them)."""
        pk = self.pk
        if time.monotonic() > self._legacy_until:
            self._legacy.clear()
            self._legacy_until = time.monotonic() + LEGACY_RECHECK_S
        unknown = [d for d in days if (pk.index, d) not in self._legacy]
        if unknown:
            with self.r.pipeline(transaction=False) as p:
                for d in unknown:
                    p.exists(pk.applied(d))
                for d, there in zip(unknown, p.execute()):
                    self._legacy[(pk.index, d)] = bool(there)
        args: list[Any] = []
        for day, idents in days.items():
            legacy = self._legacy[(pk.index, day)]
            args += [pk.applied(day) if legacy else "", len(idents)]
            names = self._seen_names(day)
            for i in idents:
                bucket, fp = fps[i]
                args += [names[bucket], fp, i] if legacy else [names[bucket], fp]
        return args

    def _seen_names(self, day: int) -> list[str]:
        """The names of the partition's seen hashes of `day`, by bucket (kept for a few days:
        a batch names ~2,000 of them twice)."""
        key = (self.pk.index, day)
        names = self._seen_cache.get(key)
        if names is None:
            if len(self._seen_cache) >= 8 * len(self.mine):
                self._seen_cache.clear()
            pk = self.pk
            names = self._seen_cache[key] = [pk.seen(day, b) for b in range(self.buckets)]
        return names

    def _forward(self, g: Commands, fresh: list[tuple[dict[str, Any], int]], direct: set[str] | None) -> None:
        """Copies of the events this partition received first (not forwarded to it) for the
        other partitions that own an entity they change (a defect_found's defect)."""
        me, nparts, parts = self.pk.index, self.k.partitions, self.parts
        for ev, _ in fresh:
            if direct is not None and ev["id"] not in direct:
                continue
            for i in targets(ev, nparts):
                if i != me:
                    g.command("XADD", parts[i].stream, "*", "e", orjson.dumps(ev), FORWARDED, b"1", VALIDATED, b"1")

    def _global_writes(self, g: Commands, latest: dict[str, bytes]) -> None:
        """The batch's idempotent writes (raw store, indexes, registries; partitioned also
        display rows and forwarded copies), before its script: plain commands, packed by
        hiredis, one write per Redis (on a cluster per master, all masters at once), every
        reply checked. First the type of every key they write is checked (one round trip): a
        key of the wrong type stops the batch before anything is written. A crash or an error
        before the script leaves the batch unacknowledged: its re-delivery writes the same
        values again, nothing is lost or doubled. Authors (partitioned) go through a
        latest-wins script (partitions write them concurrently)."""
        if g.cmds:
            self._check_types(g)
            write_all(self.r, g.cmds)     # a moved slot: all again, redirects followed (idempotent)
        if latest:
            self._authors_script(keys=[self.k.authors], args=[x for kv in latest.items() for x in kv])

    def _check_types(self, g: Commands) -> None:
        """The type of every key `g` writes (one round trip): a key of the wrong type stops
        the batch before anything is written."""
        checks = g.checks()
        if not checks:
            return
        types = raw_ordered(self.r, [cmd for cmd, _ in checks])
        for (cmd, kind), got in zip(checks, types):
            if isinstance(got, redis.ResponseError):
                raise got
            got = got.decode() if isinstance(got, bytes) else str(got)
            if got not in ("none", kind):
                raise redis.ResponseError(f"QMSCHECK nothing written: {cmd[1]} is a {got}, not a {kind}")

    def _entities(self, w: Writes, acc: Acc, ent_list: list[tuple[str, str]], ent_keys: list[str],
                  ent_states: list[Any], by_entity: dict[tuple[str, str], list[tuple[dict[str, Any], int]]],
                  fresh_ids: set[str] | None, display: dict[str, dict[str, bytes]],
                  hide: dict[str, list[str]]) -> list[tuple[str, bytes]]:
        """Each entity's events folded into its state, its contributions' change added to
        `acc`, its display row; the states written by MSETPX. Returns (key, bytes) written."""
        pairs: list[tuple[str, bytes]] = []
        sla = self.sla_ms
        fold = contrib.fold
        core_of = contrib.entity_core
        written = contrib.written_core
        expand = contrib.expand
        bases = {kind: contrib.basis(kind, sla) for kind in ("wf", "df", "rv", "cp")}
        stale = 0
        for (kind, ident), key, raw in paced(zip(ent_list, ent_keys, ent_states), self.pause):
            evs = by_entity[(kind, ident)]
            if fresh_ids is not None:
                evs = [(ev, ts) for ev, ts in evs if ev["id"] in fresh_ids]
                if not evs:
                    continue
            # The entity keeps the basis of the contributions it last wrote ("_v": the SLA
            # target among them), so they are recomputed from its state and retracted exactly
            # even if that setting changed since (its JSON is ~8x smaller than with them).
            # Retract and add as core items and scopes (contrib.wf_core): a third of the
            # items, their copies made only for what changed.
            new = decode(raw) if raw else {}
            before, was, exact = written(kind, ident, new, sla) if new else ([], (), True)
            if not exact:
                stale += 1
            created = new.get("c")
            for ev, ts in evs:
                fold(kind, new, ev, ts)
            after, scopes = core_of(kind, ident, new, sla)
            if not before:            # a new entity: nothing to retract
                acc.add_core(after, scopes)
            elif was == scopes:
                acc.add_core_diff(before, after, scopes)
            else:                     # its repository or team changed (or became known)
                acc.add_diff(expand(before, was), expand(after, scopes))
            display_row(kind, ident, new, display, hide)
            if not new and not raw:
                continue              # no facts (a passed compliance check): nothing to keep
            new["_v"] = bases[kind]
            pairs.append((key, encode(kind, new)))
            if kind == "wf" and new.get("c") and (created is None or created[2] != new["c"][2]):
                # A workflow's team on its own, written when it becomes known or changes (team
                # scope looks up many rows' teams at once; past its TTL readers use the entity).
                pairs.append((self.k.workflow_team(ident), (new["c"][2] or "").encode()))
        w.mset_px(ENTITY_TTL_S * 1000, pairs)
        if stale:
            log.warning("%d entities were written under other contribution definitions (contrib.VERSION); "
                        "their old contributions were retracted as the current ones: run `cli.py rebuild`", stale)
            w.command("HINCRBY", self.pk.meta, "stale_entities", stale)
        return pairs

    def _timelines(self, w: Writes, acc: Acc, tl_list: list[tuple[str, str]], tl_keys: list[str],
                   segments: list[tuple[list[bytes], list[bytes]]],
                   by_entity: dict[tuple[str, str], list[tuple[dict[str, Any], int]]], fresh_ids: set[str] | None,
                   display: dict[str, dict[str, bytes]]) -> None:
        for (kind, ident), key, (pred, after) in paced(zip(tl_list, tl_keys, segments), self.pause):
            evs = by_entity[(kind, ident)]
            if fresh_ids is not None:
                evs = [(ev, ts) for ev, ts in evs if ev["id"] in fresh_ids]
                if not evs:
                    continue
            prev_value = member(pred[0])[2] if pred else None
            old_pts = [member(m) for m in after]
            added: dict[bytes, tuple[int, str, str]] = {}
            for ev, ts in evs:
                value = ev["data"]["status"] if kind == "ag" else str(ev["data"]["depth"])
                m = f"{ts:013d}|{ev['id']}|{value}".encode()
                added[m] = (ts, ev["id"], value)
            existing = set(after)
            new_members = {m: v for m, v in added.items() if m not in existing}
            if not new_members:
                continue
            new_pts = sorted(old_pts + list(new_members.values()))
            acc.add_diff(contrib.timeline_steps(kind, ident, prev_value, [(p[0], p[2]) for p in old_pts]),
                         contrib.timeline_steps(kind, ident, prev_value, [(p[0], p[2]) for p in new_pts]))
            w.zadd(key, {m: v[0] for m, v in new_members.items()})
            w.command("ZREMRANGEBYSCORE", key, "-inf", now_ms() - RESOLUTIONS[-1].retention_ms)
            w.command("EXPIRE", key, ENTITY_TTL_S)
            latest = new_pts[-1]
            if not old_pts or latest > old_pts[-1]:
                ev = next(e for e, _ in evs if e["id"] == latest[1])
                d = ev["data"]
                if kind == "ag":
                    display["agents"][ident] = orjson.dumps(
                        {"agent_id": ident, "status": d["status"], "load": d.get("load"),
                         "skills": d.get("skills"), "since": ev["timestamp"]})
                else:
                    display["queues"][ident] = orjson.dumps(
                        {"queue": ident, "depth": d["depth"], "since": ev["timestamp"]})

    def _registries_and_raw(self, g: Commands, w: Writes, fresh: list[tuple[dict[str, Any], int]], authors: list[str],
                            author_vals: list[Any], now: int, raws: dict[str, bytes]) -> dict[str, bytes]:
        """Registries, raw store and indexes (idempotent: `g`), authors (not partitioned: the
        batch's script `w`). Returns the authors whose latest pr_created changed when
        partitioned (written by the caller's latest-wins script)."""
        k = self.k
        regs: dict[str, set[str]] = defaultdict(set)
        raw_by_day: dict[int, dict[str, bytes]] = defaultdict(dict)
        idx: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        ent_idx: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        latest_author: dict[str, tuple[int, str, str | None]] = {}
        for a, val in zip(authors, author_vals):
            if val:
                ts, eid, team = orjson.loads(val)
                latest_author[a] = (ts, eid, team)
        changed_authors: set[str] = set()
        for ev, ts in paced(fresh, self.pause):
            t = ev["type"]
            d = ev.get("data") or {}
            regs["types"].add(t)
            if t in contrib.GATE_TYPES:
                regs["gates"].add(d["gate_name"])
            elif t == "workflow.pr_created":
                regs["users"].add(d["author"])
                regs["repositories"].add(d["repository"])
                if d.get("team"):
                    regs["teams"].add(d["team"])
                cur = latest_author.get(d["author"])
                if cur is None or (ts, ev["id"]) > (cur[0], cur[1]):
                    latest_author[d["author"]] = (ts, ev["id"], d.get("team"))
                    changed_authors.add(d["author"])
            elif t in ("workflow.review_started", "workflow.review_completed"):
                regs["users"].add(d["reviewer"])
            elif t == "workflow.defect_found" and d.get("category"):
                regs["categories"].add(d["category"])
            elif t == "system.agent_status_changed":
                regs["agents"].add(d["agent_id"])
            elif t == "workflow.agent_assigned":       # a known agent to the reviewer ledger
                regs["assigned"].add(d["agent_id"])
            elif t == "system.queue_depth_updated":
                regs["queues"].add(d["queue"])
            day = ts // DAY_MS
            if (day + 1) * DAY_MS + self.raw_ttl_ms > now:
                raw_by_day[day][ev["id"]] = raws.get(ev["id"]) or orjson.dumps(ev)
                idx[(t, day)][ev["id"]] = ts
                for ref in contrib.entity_refs(ev):
                    ent_idx[ref][ev["id"]] = ts
        for name, members in regs.items():
            g.sadd(k.registry(name), *members)
        latest = {a: orjson.dumps(list(latest_author[a])) for a in changed_authors}
        if latest and not k.partitioned:
            w.hset(k.authors, latest)
        for day, mapping in raw_by_day.items():
            g.hset(k.raw(day), mapping)
            g.command("PEXPIREAT", k.raw(day), (day + 1) * DAY_MS + self.raw_ttl_ms)
        for (t, day), mapping in idx.items():
            g.zadd(k.raw_index(t, day), mapping)
            g.command("PEXPIREAT", k.raw_index(t, day), (day + 1) * DAY_MS + self.raw_ttl_ms)
        # An entity's events (its page): kept as long as the raw events they point to.
        horizon = now - self.raw_ttl_ms - DAY_MS
        trim = self._batches % 20 == 0       # workflows' indexes expire; agents' live on and are trimmed now and then
        for (kind, ident), mapping in ent_idx.items():
            key = k.entity_events(kind, ident)
            g.zadd(key, mapping)
            if trim:
                g.command("ZREMRANGEBYSCORE", key, "-inf", f"({horizon}")
            g.command("PEXPIREAT", key, now + self.raw_ttl_ms + DAY_MS)
        return latest


# The live publisher's wake-up (issue 13, live push; a separate addition — keep it when editing).
def live_hint(acc: Any) -> bytes:
    """{rollup family: [first, last minute the batch changed]}, its totals' families included:
    the live publisher re-reads only those buckets of its copy (live.rollcache)."""
    touched = {fam: [2 ** 62, 2 ** 62] for fam in acc.totals}       # totals only: no bucket
    for fam, minute in acc.buckets:
        lo, hi = touched.get(fam, (minute, minute))
        touched[fam] = [min(lo, minute), max(hi, minute) if hi < 2 ** 62 else minute]
    return orjson.dumps(touched)
