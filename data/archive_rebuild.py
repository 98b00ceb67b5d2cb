"""`cli.py rebuild --from DATE`: rollups recomputed from the archive and the hot raw events.

Why: a change of the SLA target or of a metric's definition applies only to events
aggregated after it; this recomputes what is already there, through the SAME aggregator.

How:
  1. Every kept event that the live aggregators have APPLIED — the archive's days and Redis's
     raw days, each day ordered by (timestamp, id), an event in both once — is XADDed to the
     stream of a shadow key prefix (`<prefix>~rebuild`) and aggregated there by
     `Aggregator.from_settings` (the current settings: the new SLA target, the same K
     partitions) with `drain()`, a day or so at a time. All of history is replayed whatever
     DATE is: an entity's contributions need all its events. "Applied": a batch writes its
     raw copies as plain commands BEFORE its script (data.aggregator `_global_writes`), so a
     raw event may belong to a batch in flight or cut short by a crash, which the live
     aggregator will apply (again) later; a raw event of Redis counts as applied when its
     fingerprint is 1 in its primary partition's `seen` hash of its day (or it is in that
     day's legacy applied set; days past the dedup retention, and the archive's, are taken
     as applied). The others wait.
  2. The live aggregators are stopped at a batch boundary: the rebuild takes every
     partition's apply lock (`{p}[:{i}]:agg:lock`, the lock the batch script's fence checks)
     and holds it through steps 3-4; a batch that read before loses its fence and is
     recomputed after. The archiver is kept out (its lock is held) throughout.
  3. Catch-up, locks held: the raw events applied since they were read (and those that were
     waiting and are applied now) are fed to the shadow and drained. Nothing can be applied
     meanwhile, so the shadow holds exactly the live deployment's applied events.
  4. Swap, in ONE MULTI/EXEC under WATCH of the meta hashes (anything bumped since step 3
     aborts it, and 3-4 run again): the live rollup buckets (every partition's) starting at
     or after DATE are deleted and the shadow's RENAMEd in (same bytes, same TTL), as are the
     totals, the entity states (their `_v`, the basis of the contributions a later event
     retracts, must match the new buckets), the timelines and the display state; the data
     version is bumped (caches, live pages). Then the locks are released.
  5. The shadow prefix is deleted.
Events arriving while it runs are therefore counted once: in the shadow if applied before
the locks were taken, by the live aggregator into the new buckets after the swap (an event
whose raw copy was written by a batch that had not applied it is applied then, once).
Buckets before DATE keep the old definition; a state read before DATE is the new total minus
those old deltas. One Redis, K >= 1 partitions; not Redis Cluster (the swap is one
MULTI/EXEC across every partition's slot).
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
from data.archive import ARCHIVE_LOCK, ARCHIVE_META, Archive
from data.keys import Keys, fingerprint, seen_buckets
from data.partition import route
from data.timeutil import DAY_MS, RESOLUTIONS, SUMMED, fmt_ms, now_ms, parse_iso

log = logging.getLogger("qms.rebuild")
FEED = 20_000                 # events XADDed to the shadow between two drains
LOCK_MS = 600_000
APPLY_LOCK_MS = 120_000       # the aggregators' apply locks, held for the catch-up and the swap (renewed)
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


class Applied:
    """Which raw events of Redis the live aggregators have applied (step 1 of the module doc):
    the fingerprint 1 in the seen hash of the event's day in its primary partition, or the id in
    that day's legacy applied set. Days whose seen hashes are past the dedup retention count
    as applied (nothing of theirs can be in flight)."""

    def __init__(self, r: redis.Redis, keys: Keys, settings: Any, now: int) -> None:
        self.r, self.keys = r, keys
        self.parts = keys.parts()
        self.k = keys.partitions if keys.partitioned else 1
        self.buckets = seen_buckets(r, keys, settings.dedup_buckets)
        # The seen hashes of day d expire at (d + 1) days + the retention at the earliest.
        self.kept_from = (now - settings.dedup_retention_days * DAY_MS) // DAY_MS - 1

    def flags(self, day: int, bodies: list[tuple[str, bytes]]) -> list[bool]:
        if day < self.kept_from:
            return [True] * len(bodies)
        with self.r.pipeline(transaction=False) as p:
            for ident, body in bodies:
                pk = self.parts[route(orjson.loads(body), self.k)] if self.k > 1 else self.parts[0]
                bucket, fp = fingerprint(ident, self.buckets)
                p.hget(pk.seen(day, bucket), fp)
                p.sismember(pk.applied(day), ident)
            got = p.execute()
        return [got[2 * n] == b"1" or bool(got[2 * n + 1]) for n in range(len(bodies))]


def _day_events(r: redis.Redis, keys: Keys, arch: Archive | None, day: int,
                applied: Applied) -> tuple[list[tuple[int, str, bytes]], set[str], set[str]]:
    """(ts, id, JSON) of every kept and applied event of a day, by (ts, id), an event in both
    stores once; the ids of Redis's raw day fed, and those not applied yet (waiting)."""
    got: dict[str, tuple[int, str, bytes]] = {}
    if arch is not None:
        for ident, ts, body in arch.day_rows(day):
            got[ident] = (ts, ident, body)
    rest = [(ident.decode(), body) for ident, body in r.hgetall(keys.raw(day)).items()]
    fed: set[str] = set()
    waiting: set[str] = set()
    for pos in range(0, len(rest), 10_000):
        part = rest[pos:pos + 10_000]
        for (i, body), ok in zip(part, applied.flags(day, part)):
            if not ok:
                waiting.add(i)
                continue
            fed.add(i)
            if i not in got:
                got[i] = (parse_iso(orjson.loads(body)["timestamp"]), i, body)
    return sorted(got.values()), fed, waiting


def rebuild(r: redis.Redis, settings: Any, from_ms: int, *, now: int | None = None,
            progress: Callable[[int], None] | None = None, max_attempts: int = 50, feed: int = FEED,
            allow_pruned: bool = False) -> RebuildReport:
    from data.aggregator import Aggregator
    started = time.monotonic()
    keys = Keys.from_settings(r, settings)
    if keys.cluster:
        raise ValueError("rebuild: not on Redis Cluster (its swap is one MULTI/EXEC across every partition's slot)")
    p = keys.p
    pruned = r.hget(ARCHIVE_META.format(p=p), "pruned_before")
    if pruned is not None and not allow_pruned:
        raise ValueError(f"rebuild: the archive's retention removed the days before {fmt_ms(int(pruned) * DAY_MS)[:10]}: "
                         "every entity's contributions need all its events (an open workflow begun before then "
                         "would be lost); --allow-pruned rebuilds from what is kept")
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
        applied = Applied(r, keys, settings, now)
        fed: dict[int, set[str]] = {}       # ids fed per day read from Redis (catch-up compares)
        waiting: dict[int, set[str]] = {}   # ids in Redis's raw days not applied yet when read
        pending = 0
        cleaned = days[0]                   # the shadow's seen ids are dropped from here on
        for day in days:
            evs, fed[day], waiting[day] = _day_events(r, keys, arch, day, applied)
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
        locks = [pk.lock for pk in keys.parts()]
        _take(r, locks, token)
        try:
            while True:
                report.attempts += 1
                if report.attempts > max_attempts:
                    raise RuntimeError(f"rebuild: the meta hashes kept changing during {max_attempts} swap attempts")
                r.pexpire(lock, LOCK_MS)
                _renew(r, locks, token)
                if _swap(r, keys, shadow, from_ms, fed, waiting, days, report, agg, skeys, applied):
                    break
        finally:
            _give_back(r, locks, token)
        _delete_prefix(r, shadow)
    finally:
        r.eval(_RELEASE, 1, lock, token)
    report.seconds = time.monotonic() - started
    return report


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = ("for i, k in ipairs(KEYS) do if redis.call('GET', k) ~= ARGV[1] then return 0 end end "
          "for i, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[2]) end return 1")


def _take(r: redis.Redis, locks: list[str], token: str, timeout_s: float = 300.0) -> None:
    """Every partition's apply lock, one after the other (an aggregator holds one for a batch
    at most; once taken, the partition applies nothing until they are given back)."""
    deadline = time.monotonic() + timeout_s
    for lock in locks:
        delay = 0.001
        while not r.set(lock, token, nx=True, px=APPLY_LOCK_MS):
            if time.monotonic() > deadline:
                _give_back(r, locks, token)
                raise RuntimeError(f"rebuild: the aggregators' lock {lock} stayed taken for {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _renew(r: redis.Redis, locks: list[str], token: str) -> None:
    if not r.eval(_RENEW, len(locks), *locks, token, APPLY_LOCK_MS):
        raise RuntimeError("rebuild: an apply lock expired while held (the swap was not done)")


def _give_back(r: redis.Redis, locks: list[str], token: str) -> None:
    for lock in locks:
        r.eval(_RELEASE, 1, lock, token)


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


def _split(key: bytes, prefix: bytes) -> tuple[bytes, bytes, bytes] | None:
    """A key under `prefix` as (partition part `{i}:` or b"", family, rest after the family)."""
    if not key.startswith(prefix + b":"):
        return None
    rest = key[len(prefix) + 1:]
    part = b""
    if rest.startswith(b"{"):
        close = rest.find(b"}:")
        if close < 0:
            return None
        part, rest = rest[:close + 2], rest[close + 2:]
    fam, _, tail = rest.partition(b":")
    return part, fam, tail


def _bucket_of(key: bytes, prefix: bytes) -> tuple[bytes, int] | None:
    """(family name, start) of a rollup bucket key `<prefix>[:{i}]:r:<res>:<fam>:<start>[:carry]`."""
    got = _split(key, prefix)
    if got is None or got[1] != b"r":
        return None
    parts = got[2].split(b":")
    try:
        return parts[1], int(parts[2])
    except (IndexError, ValueError):
        return None


def _catch_up(r: redis.Redis, keys: Keys, skeys: Keys, days: list[int], fed: dict[int, set[str]],
              waiting: dict[int, set[str]], applied: Applied, agg: Any) -> int:
    """Feed the shadow the raw events applied since they were read (locks held: nothing can
    be applied meanwhile). A day is looked at again only if its size changed or it has
    waiting ids."""
    with r.pipeline(transaction=False) as pipe:
        for d in days:
            pipe.hlen(keys.raw(d))
        sizes = pipe.execute()
    n = 0
    for d, size in zip(days, sizes):
        have, wait = fed.setdefault(d, set()), waiting.setdefault(d, set())
        if size == len(have) + len(wait) and not wait:
            continue
        ids = {i.decode() for i in r.hkeys(keys.raw(d))} - have if size != len(have) + len(wait) else set(wait)
        todo = sorted(ids)
        bodies = [(i, b) for i, b in zip(todo, r.hmget(keys.raw(d), todo) if todo else []) if b is not None]
        evs = []
        for (i, body), ok in zip(bodies, applied.flags(d, bodies)):
            if ok:
                evs.append((parse_iso(orjson.loads(body)["timestamp"]), i, body))
                have.add(i)
                wait.discard(i)
            else:
                wait.add(i)
        evs.sort()
        n += _feed(r, skeys, evs)
    if n:
        agg.drain(timeout_s=3600)
    return n


def _swap(r: redis.Redis, keys: Keys, shadow: str, from_ms: int, fed: dict[int, set[str]],
          waiting: dict[int, set[str]], days: list[int], report: RebuildReport, agg: Any, skeys: Keys,
          applied: Applied) -> bool:
    """Catch up, then the swap (the apply locks held); False when a meta hash changed in
    between (try again)."""
    p, pb, sb = keys.p, keys.p.encode(), shadow.encode()
    parts = keys.parts()
    metas = list(dict.fromkeys([keys.meta, *(pk.meta for pk in parts)]))
    with r.pipeline(transaction=True) as tx:
        tx.watch(*metas)
        report.caught_up += _catch_up(r, keys, skeys, days, fed, waiting, applied, agg)
        shadow_keys = list(_scan(r, _glob(shadow) + ":*"))
        new_keys, others, families = [], [], set()
        for k in shadow_keys:
            got = _split(k, sb)
            if got is None:
                continue
            if got[1] == b"r":
                b = _bucket_of(k, sb)
                if b is not None:
                    families.add(b[0].decode())
                    if b[1] >= from_ms:
                        new_keys.append(k)
            elif got[1] in (b"tot", *(f.encode() for f in REPLACED)):
                others.append(k)
        prefixes = [pk.p for pk in parts]
        for pre in prefixes:
            for k in _scan(r, _glob(pre) + ":r:*"):
                b = _bucket_of(k, pb)
                if b is not None:
                    families.add(b[0].decode())
        old_keys = [k for pre in prefixes for k in _live_buckets(r, pre, families, from_ms)]
        target = {pb + k[len(sb):] for k in [*new_keys, *others]}
        live_whole = [*(k for pre in prefixes for k in _scan(r, _glob(pre) + ":tot:*")),
                      *_scan(r, _glob(p) + ":state:*")]
        gone = [k for k in [*old_keys, *live_whole] if k not in target]
        carries = []
        for pk in parts:
            scarry = shadow + pk.carry[len(p):]
            carries.append((pk.carry, [pb + m[len(sb):] for m in r.smembers(scarry) if pb + m[len(sb):] in target]))
        tx.multi()
        for k in gone:
            tx.delete(k)
        if old_keys or live_whole:
            for pk in parts:
                tx.srem(pk.carry, *old_keys, *live_whole)
        for k in [*new_keys, *others]:
            tx.rename(k, pb + k[len(sb):])
        for carry_key, members in carries:
            if members:
                tx.sadd(carry_key, *members)
        # Daily buckets are whole from DATE's next midnight on now (those of older days, if any, not).
        whole_from = -(-from_ms // DAY_MS) * DAY_MS
        for mark in (rollups.DAILY_FROM, rollups.SUMMED_FROM):       # and the summed ones likewise
            marked = r.hget(keys.meta, mark)
            if marked is None or int(marked) > whole_from:
                tx.hset(keys.meta, mark, whole_from)
        for m in metas:
            tx.hincrby(m, "version", 1)
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
    for res in RESOLUTIONS + SUMMED:
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
