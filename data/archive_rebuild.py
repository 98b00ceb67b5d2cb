"""`cli.py rebuild --from DATE`: rollups recomputed from the archive and the hot raw events.

Why: a change of the SLA target or of a metric's definition applies only to events
aggregated after it; this recomputes what is already there, through the SAME aggregator.

How:
  1. Every kept event — the archive's days and Redis's raw days, each day ordered by
     (timestamp, id), an event in both once — is XADDed to the stream of a shadow key
     prefix (`<prefix>~rebuild`) and aggregated there by `Aggregator.from_settings` (the
     current settings: the new SLA target) with `drain()`, a day or so at a time. All of
     history is replayed whatever DATE is: an entity's contributions need all its events.
  2. Catch-up: the live aggregator goes on meanwhile. Every batch it applies writes its
     events' raw copies and bumps `{p}:meta` `version` in one script, and the archiver is kept
     out (its lock is held), so the raw days' sizes say whether events arrived since they
     were read; those are fed to the shadow too.
  3. Swap, in ONE MULTI/EXEC under WATCH of `{p}:meta` (a batch applied since step 2 aborts it,
     and steps 2-3 run again): the live rollup buckets starting at or after DATE are deleted
     and the shadow's RENAMEd in (same bytes, same TTL), as are the totals, the entity states
     (their `_v`, the basis of the contributions a later event retracts, must match the new buckets), the
     timelines and the display state; the data version is bumped (caches, live pages).
  4. The shadow prefix is deleted.
Events arriving while it runs are therefore counted once: in the shadow if applied before
the swap, by the live aggregator into the new buckets after it. Buckets before DATE keep
the old definition; a state read before DATE is the new total minus those old deltas.
Not partitioned deployments only (data.keys partitions: each partition would need its own swap).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson
import redis

from data import archive as archive_mod
from data import rollups
from data.archive import ARCHIVE_LOCK, Archive
from data.keys import Keys
from data.timeutil import DAY_MS, RESOLUTIONS, now_ms, parse_iso

log = logging.getLogger("qms.rebuild")
FEED = 20_000                 # events XADDed to the shadow between two drains
LOCK_MS = 600_000
REPLACED = ("ent", "tl", "state")   # besides rollups and totals: whole families replaced by the shadow's


@dataclass
class RebuildReport:
    events: int = 0
    caught_up: int = 0
    buckets: int = 0
    removed: int = 0
    others: int = 0
    attempts: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"replayed {self.events} events (+{self.caught_up} arrived meanwhile); replaced {self.buckets} "
                f"rollup buckets (removed {self.removed} the new definition leaves empty) and {self.others} totals, "
                f"entities, timelines and display rows in {self.attempts} swap attempt(s), {self.seconds:.1f} s")


def _scan(r: redis.Redis, pattern: str) -> Iterator[bytes]:
    yield from r.scan_iter(match=pattern, count=10_000)


def _glob(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def _delete_prefix(r: redis.Redis, prefix: str) -> None:
    batch: list[bytes] = []
    for key in _scan(r, _glob(prefix) + ":*"):
        batch.append(key)
        if len(batch) >= 1000:
            r.delete(*batch)
            batch = []
    if batch:
        r.delete(*batch)


def _day_events(r: redis.Redis, keys: Keys, arch: Archive | None, day: int) -> list[tuple[int, str, bytes]]:
    """(ts, id, JSON) of every kept event of a day, by (ts, id), an event in both stores once."""
    got: dict[str, tuple[int, str, bytes]] = {}
    if arch is not None:
        for ident, ts, body in arch.day_rows(day):
            got[ident] = (ts, ident, body)
    for ident, body in r.hgetall(keys.raw(day)).items():
        i = ident.decode()
        if i not in got:
            got[i] = (parse_iso(orjson.loads(body)["timestamp"]), i, body)
    return sorted(got.values())


def _bucket_start(key: bytes, prefix: str) -> int | None:
    """The start of a rollup bucket key `<prefix>:r:<res>:<fam>:<start>[:carry]`."""
    parts = key.decode()[len(prefix) + 3:].split(":")
    try:
        return int(parts[2])
    except (IndexError, ValueError):
        return None


def rebuild(r: redis.Redis, settings: Any, from_ms: int, *, now: int | None = None,
            progress: Callable[[int], None] | None = None, max_attempts: int = 50, feed: int = FEED) -> RebuildReport:
    from data.aggregator import Aggregator
    started = time.monotonic()
    keys = Keys.from_settings(r, settings)
    if keys.partitioned:
        raise ValueError("rebuild: partitioned deployments are not supported yet (one swap per partition)")
    p = keys.p
    shadow = p + "~rebuild"
    arch = archive_mod.of(keys) or archive_mod.configure(keys, settings)
    lock = ARCHIVE_LOCK.format(p=p)
    token = "rebuild-" + uuid.uuid4().hex
    if not r.set(lock, token, nx=True, px=LOCK_MS):
        raise RuntimeError(f"the archiver is running (lock {lock}); try again when it is done")
    report = RebuildReport()
    try:
        _delete_prefix(r, shadow)
        skeys = Keys.of(r, shadow)
        agg = Aggregator.from_settings(r, settings.replace(key_prefix=shadow, raw_retention_days=1))
        agg.ensure_group()
        now = now_ms() if now is None else now
        last_day = now // DAY_MS + 1
        first_raw = last_day - settings.raw_retention_days - 2
        days = sorted(set(arch.days()) | set(range(first_raw, last_day + 1)))
        fed: dict[int, set[str]] = {}       # ids fed per day read from Redis (catch-up compares)
        pending = 0
        cleaned = days[0]                   # the shadow's seen ids are dropped from here on
        for day in days:
            evs = _day_events(r, keys, arch, day)
            if r.exists(keys.raw(day)):
                fed[day] = {i.decode() for i in r.hkeys(keys.raw(day))}
            pending += _feed(r, skeys, evs)
            report.events += len(evs)
            if pending >= feed:
                _drain(r, agg, skeys, cleaned, day)
                cleaned = max(cleaned, day - 1)
                if progress:
                    progress(pending)
                pending = 0
                r.pexpire(lock, LOCK_MS)
        agg.drain(timeout_s=3600)
        while True:
            report.attempts += 1
            if report.attempts > max_attempts:
                raise RuntimeError(f"rebuild: batches kept landing during {max_attempts} swap attempts")
            r.pexpire(lock, LOCK_MS)
            if _swap(r, keys, shadow, from_ms, fed, days, report, agg, skeys):
                break
        _delete_prefix(r, shadow)
    finally:
        r.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
               1, lock, token)
    report.seconds = time.monotonic() - started
    return report


def _drain(r: redis.Redis, agg: Any, skeys: Keys, first: int, day: int) -> None:
    """Aggregate what was fed, then drop what the shadow no longer needs: the stream's entries
    (all acknowledged) and the seen ids of days already fed whole (never fed again), so the
    shadow holds rollups and entities, not a second copy of the dedup hashes."""
    agg.drain(timeout_s=3600)
    r.xtrim(skeys.stream, maxlen=0)
    old = [skeys.seen(d, b) for d in range(first, day - 1) for b in range(agg.buckets)]
    for pos in range(0, len(old), 1000):
        r.delete(*old[pos:pos + 1000])


def _feed(r: redis.Redis, skeys: Keys, evs: list[tuple[int, str, bytes]]) -> int:
    with r.pipeline(transaction=False) as pipe:
        for _ts, _i, body in evs:
            pipe.xadd(skeys.stream, {"e": body})
        pipe.execute()
    return len(evs)


def _swap(r: redis.Redis, keys: Keys, shadow: str, from_ms: int, fed: dict[int, set[str]], days: list[int],
          report: RebuildReport, agg: Any, skeys: Keys) -> bool:
    """Catch up, then the swap; False when a live batch landed in between (try again)."""
    p, pb, sl = keys.p, keys.p.encode(), len(shadow)
    with r.pipeline(transaction=True) as tx:
        tx.watch(keys.meta)
        # Catch-up: a raw day grown since it was read holds events the shadow has not seen.
        with r.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.hlen(keys.raw(d))
            sizes = pipe.execute()
        grown = [d for d, n in zip(days, sizes) if n != len(fed.get(d, ()))]
        if grown:
            tx.unwatch()
            for d in grown:
                have = fed.setdefault(d, set())
                new = {i.decode(): b for i, b in r.hgetall(keys.raw(d)).items() if i.decode() not in have}
                evs = sorted((parse_iso(orjson.loads(b)["timestamp"]), i, b) for i, b in new.items())
                _feed(r, skeys, evs)
                have.update(new)
                report.caught_up += len(evs)
            agg.drain(timeout_s=3600)
            return False
        shadow_buckets = list(_scan(r, _glob(shadow) + ":r:*"))
        new_keys = [k for k in shadow_buckets if (_bucket_start(k, shadow) or -1) >= from_ms]
        families = {k[sl + 3:].split(b":")[1].decode() for k in shadow_buckets}
        families |= {k[len(pb) + 3:].split(b":")[1].decode() for k in _scan(r, _glob(p) + ":r:*")}
        old_keys = _live_buckets(r, p, families, from_ms)
        others = [k for fam in ("tot", *REPLACED) for k in _scan(r, _glob(shadow) + f":{fam}:*")]
        target = {pb + k[sl:] for k in [*new_keys, *others]}
        live_whole = [*_scan(r, _glob(p) + ":tot:*"), *_scan(r, _glob(p) + ":state:*")]
        gone = [k for k in [*old_keys, *live_whole] if k not in target]
        carry = [m for m in r.smembers(shadow + ":carry") if pb + m[sl:] in target]
        tx.multi()
        for k in gone:
            tx.delete(k)
        if old_keys or live_whole:
            tx.srem(keys.carry, *old_keys, *live_whole)
        for k in [*new_keys, *others]:
            tx.rename(k, pb + k[sl:])
        if carry:
            tx.sadd(keys.carry, *[pb + m[sl:] for m in carry])
        # Daily buckets are whole from DATE's next midnight on now (those of older days, if any, not).
        marked = r.hget(keys.meta, rollups.DAILY_FROM)
        whole_from = -(-from_ms // DAY_MS) * DAY_MS
        if marked is None or int(marked) > whole_from:
            tx.hset(keys.meta, rollups.DAILY_FROM, whole_from)
        tx.hincrby(keys.meta, "version", 1)
        tx.publish(keys.live_applied, "1")
        try:
            replies = tx.execute()
        except redis.WatchError:
            return False
    bad = [x for x in replies if isinstance(x, Exception)]
    if bad:
        raise RuntimeError(f"rebuild: the swap failed part way: {bad[:3]}")
    report.buckets += len(new_keys)
    report.removed += len(gone)
    report.others += len(others)
    return True


def _live_buckets(r: redis.Redis, p: str, families: set[str], from_ms: int) -> list[bytes]:
    """The live rollup buckets (and their carry hashes) starting at or after from_ms, by name:
    every retained start of every resolution and family, asked with EXISTS in one pipeline."""
    now = now_ms()
    names: list[str] = []
    for res in RESOLUTIONS:
        first = max(from_ms, now - res.retention_ms - 2 * res.step_ms) // res.step_ms * res.step_ms
        if first < from_ms:
            first += res.step_ms
        for start in range(first, now + DAY_MS, res.step_ms):
            for fam in families:
                base = f"{p}:r:{res.name}:{fam}:{start}"
                names += [base, base + ":carry"]
    out: list[bytes] = []
    for pos in range(0, len(names), 20_000):
        part = names[pos:pos + 20_000]
        with r.pipeline(transaction=False) as pipe:
            for n in part:
                pipe.exists(n)
            out += [n.encode() for n, there in zip(part, pipe.execute()) if there]
    return out
