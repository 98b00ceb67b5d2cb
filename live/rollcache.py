"""The shared dashboards' rollups read incrementally: the publisher keeps the buckets it
read, and each round reads from Redis only those a batch changed since.

The aggregator's wake-up on `{n}:live-applied` names the rollup families its batch
changed and the first and last minute it changed in each (data.aggregator.live_hint); the copy
forgets those buckets, and one server-side script per round reads the data version, the
registries and the buckets the copy lacks — one atomic read, so the version and the
numbers of a round belong together. Under live traffic that is the newest minute, five
minutes and hour of a few families instead of the ~200 hashes per dashboard and timeframe
of a full read. The numbers are the engine's: the same tiling (data.rollups.fetch), the
same formulas (data.kpis); only the hashes come from the copy.

Exact, not probably right. Each batch adds one to the version and publishes one wake-up,
in one script, so the copy is exact at version b + n once the n wake-ups after b are
applied. Before each read the publisher PINGs its subscription and reads up to the PONG:
every wake-up published before that is then in hand. If the read finds a newer version
than b + n (a batch committed between the PONG and the read), the same script compares
every bucket of the copy with Redis by SHA-1 instead and sends back those that differ;
the wake-ups of those batches, which arrive later, are skipped. A wake-up that names
nothing (an older aggregator's "1") and a new subscription do the same until a read is
followed by an empty subscription. A registry only grows: its size is its digest.

Partitioned on one Redis (data.keys, K > 1): every partition holds its own increments of
the same buckets (data.partition), so the copy keeps a bucket by its unpartitioned name and
the script reads the K partitions' hashes of it (with each one's carries) as one: their
contents are summed, their digest is the digest of all K. The version and the wake-ups are
the deployment's (`{p}:meta`, bumped and published in each partition's batch script). On a
Redis Cluster the K hashes live in different slots, which one script cannot read: the
publisher computes through the engine there (`supported`).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable

import orjson
import redis

from data import kpis
from data.batch import CARRY
from data.engine import Plan
from data.keys import Keys
from data.rollups import Span
from data.timeutil import MINUTE_MS, RESOLUTIONS, Bucket, cover

_RES_NAME = {r.step_ms: r.name for r in RESOLUTIONS}
REGISTRIES = ("gates", "queues", "categories", "teams", "users", "agents", "types", "repositories")

# KEYS: meta, the K partitions' carry sets, the registries (ARGV[1] of them), then K rollup
# hashes (one per partition, in partition order) for each bucket of the copy. ARGV[2]: the
# version the copy is exact at once its wake-ups are applied, or -1: compare every hash
# given; ARGV[3]: K; ARGV[3 + i]: the copy's digest of registry or bucket i ("" = not in
# the copy). Returns {version, 2, daily} when the version is not the expected one (nothing
# read), else {version, full, daily, i, digest, content, ...} for every registry and bucket
# that differs (daily: meta's `daily_from`, "" when unset):
# in a round in step, the buckets given are those the copy lacks. A bucket's content is its
# K hashes' fields, each hash's carries after '~carry', the hashes apart by '~part'.
READ = """
local nsets, K = tonumber(ARGV[1]), tonumber(ARGV[3])
local version = redis.call('HGET', KEYS[1], 'version') or '0'
local daily = redis.call('HGET', KEYS[1], 'daily_from') or ''
local full = ARGV[2] == '-1'
if not full and version ~= ARGV[2] then return {version, 2, daily} end
local out = {version, full and 1 or 0, daily}
local carried = {}
for p = 1, K do carried[p] = redis.call('SCARD', KEYS[1 + p]) > 0 end
local first = 2 + K
for i = 1, nsets do
  local known = ARGV[3 + i]
  local n = tostring(redis.call('SCARD', KEYS[first + i - 1]))
  if n ~= known then
    out[#out + 1] = i; out[#out + 1] = n; out[#out + 1] = redis.call('SMEMBERS', KEYS[first + i - 1])
  end
end
local nb = (#KEYS - first + 1 - nsets) / K
for j = 1, nb do
  local h, any = {}, false
  for p = 1, K do
    local key = KEYS[first + nsets + (j - 1) * K + p - 1]
    if p > 1 then h[#h + 1] = '~part' end
    for _, v in ipairs(redis.call('HGETALL', key)) do h[#h + 1] = v; any = true end
    if carried[p] and redis.call('SISMEMBER', KEYS[1 + p], key) == 1 then
      h[#h + 1] = '~carry'
      for _, v in ipairs(redis.call('HGETALL', key .. ':carry')) do h[#h + 1] = v end
    end
  end
  local d = '-'
  if any then d = redis.sha1hex(table.concat(h, '\\n')) end
  if d ~= ARGV[3 + nsets + j] then
    out[#out + 1] = nsets + j; out[#out + 1] = d; out[#out + 1] = h
  end
end
return out
"""
KEEP_S = 10.0             # a bucket no round asked for this long leaves the copy


def supported(keys: Keys) -> bool:
    """One Redis, partitioned or not (a cluster's partitions are in different slots)."""
    return not getattr(keys, "cluster", False)


def tiling(p: Plan, daily: int | None = None) -> list[Bucket]:
    """The buckets data.rollups.fetch reads for a plan's windows (same cuts, same now, days
    from `daily` on)."""
    pts = sorted({b for b in p.bounds if b < p.horizon} | {p.horizon})
    buckets: list[Bucket] = []
    for a, b in zip(pts, pts[1:]):
        buckets += cover(a, b, p.now, daily)
    return buckets


def hint(payload: bytes | str) -> dict[str, tuple[int, int]] | None:
    """A wake-up's {family: (first, last changed minute)} (data.aggregator.live_hint), or
    None when it does not say."""
    try:
        found = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(found, dict):
        return None
    out = {}
    for fam, span in found.items():
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)):
            return None
        out[fam] = (span[0], span[1])
    return out


def _content(flat: list[bytes]) -> dict[str, int]:
    """A hash's fields as ints, its carried excess (after '~carry') added back."""
    out: dict[str, int] = {}
    it = iter(flat)
    carry = False
    for f in it:
        if f == b"~carry":
            carry = True
            continue
        if f == b"~part":           # the next partition's hash of the bucket
            carry = False
            continue
        v = int(next(it))
        name = f.decode()
        out[name] = out.get(name, 0) + (v * CARRY if carry else v)
    return out


class _Span(Span):
    """A Span whose window sums carry over from round to round: a bucket whose hash did not
    change is the same object in the copy, so only the changed ones are taken out of the
    last round's sum and put in again (exact integer sums, whatever the tiling)."""

    def __init__(self, buckets: list[Bucket], values: dict[str, list[dict[str, int]]],
                 totals: dict[str, dict[str, int]], memo: dict[tuple[str, int, int], Any]) -> None:
        super().__init__(buckets, values, totals)
        self._carried = memo
        self._sums: dict[tuple[str, int, int], dict[str, int]] = {}

    def sums(self, fam: str, s: int, e: int) -> dict[str, int]:
        key = (fam, s, e)
        found = self._sums.get(key)
        if found is not None:
            return found
        rows = self.values.get(fam, [])[self._index(s):self._index(e) if e < self.end else len(self.buckets)]
        last = self._carried.get(key)
        out: dict[str, int] | None = None
        if last is not None and len(last[0]) == len(rows):
            changed = [(old, new) for old, new in zip(last[0], rows) if old is not new]
            if not changed:
                out = last[1]
            elif 4 * len(changed) < len(rows):
                out = defaultdict(int, last[1])
                for old, new in changed:
                    for f, v in old.items():
                        out[f] -= v
                    for f, v in new.items():
                        out[f] += v
        if out is None:
            out = defaultdict(int)
            for row in rows:
                for f, v in row.items():
                    out[f] += v
        self._carried[key] = (rows, out)
        self._sums[key] = out
        return out


class RollupCache:
    """The publisher's copy of the rollup hashes and registries it reads, by key."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.k = keys
        self._read = r.register_script(READ)
        # key -> (digest, content, family, start and end of its bucket: None for totals)
        self._copy: dict[str, tuple[str, Any, str, int | None, int | None]] = {}
        self._used: dict[str, float] = {}
        self._sets = [keys.registry(kind) for kind in REGISTRIES]
        self._layouts: dict[tuple[Any, ...], tuple[tuple[str, ...], list[Bucket], list[str]]] = {}
        self._info: dict[str, tuple[str, int | None, int | None]] = {}    # key -> family, bucket start, end
        self._parts = keys.parts()       # [keys] when not partitioned
        self._phys: dict[str, list[str]] = {}     # a bucket's name -> its hash in each partition
        self._sums: dict[tuple[str, int, int], Any] = {}     # (family, s, e) -> (rows, their sum): _Span
        self._swept = time.monotonic()
        self.synced = False       # the copy is exact at `base` plus the wake-ups heard since
        self.base = -1
        self.skip = 0             # wake-ups still to come for batches a full read already covered
        self.version = -1
        # Days are tiled from the `daily_from` the last read saw (rollups.daily_from): a mark
        # only moves back (rebuild), and a later one than Redis's is exact (hours instead).
        self.daily: int | None = None
        self.full_reads = 0       # for the benchmark's account
        self.changed = 0          # hashes sent back by the last read

    def _forget(self, touched: dict[str, tuple[int, int]]) -> None:
        """Drop the copied buckets a batch changed: its families' totals and every bucket
        that holds one of the minutes from its first to its last."""
        gone = [key for key, (_, _, fam, start, end) in self._copy.items()
                if fam in touched and (end is None or (start <= touched[fam][1] and end > touched[fam][0]))]
        for key in gone:
            del self._copy[key]

    def heard(self, payloads: list[bytes]) -> None:
        """Wake-ups read from the subscription, in the order they were published."""
        if not self.synced:
            return
        for payload in payloads:
            if self.skip:
                self.skip -= 1
                continue
            touched = hint(payload)
            if touched is None:
                self.synced = False
                return
            self._forget(touched)
            self.base += 1

    def _layout(self, name: str, p: Plan) -> tuple[tuple[str, ...], list[Bucket], list[str]]:
        """A dashboard's families, the plan's buckets and their keys, totals first: the same
        for every round of a minute (the tiling changes only when `now` crosses one)."""
        memo = (name, tuple(p.bounds), p.horizon, p.now // MINUTE_MS, self.daily)
        found = self._layouts.get(memo)
        if found is None:
            fams = kpis.FAMILIES[name]
            buckets = tiling(p, self.daily)
            names = [self.k.totals(f) for f in fams]
            for f in fams:
                self._info[self.k.totals(f)] = (f, None, None)
                self._phys[self.k.totals(f)] = [pk.totals(f) for pk in self._parts]
            for f in fams:
                for bk in buckets:
                    res = _RES_NAME[bk.step_ms]
                    key = self.k.rollup(res, f, bk.start)
                    names.append(key)
                    self._info[key] = (f, bk.start, bk.start + bk.step_ms)
                    self._phys[key] = [pk.rollup(res, f, bk.start) for pk in self._parts]
            found = self._layouts[memo] = (fams, buckets, names)
        return found

    def read(self, plans: list[tuple[str, Plan]],
             drain: Callable[[], list[bytes]] | None = None) -> tuple[int, dict[str, list[str]], list[Span]]:
        """(version, registries, a Span per (dashboard, plan)), all from one atomic read.
        `drain` returns the wake-ups published up to now (PING/PONG on the subscription);
        without it every read compares the whole copy."""
        if drain is not None:
            self.heard(drain())
        else:
            self.synced = False
        if len(self._layouts) > 64:         # the layouts of minutes gone by
            self._layouts.clear()
            self._info.clear()
            self._phys.clear()
        if len(self._sums) > 4096:          # window sums of minutes gone by
            self._sums.clear()
        daily = self.daily
        jobs = [self._layout(name, p) for name, p in plans]
        wanted: dict[str, None] = {}
        for _, _, names in jobs:
            wanted.update(dict.fromkeys(names))
        sets = self._sets
        version, full, res = -1, True, None
        if self.synced:
            # In step: only the hashes the copy lacks (new buckets, those batches changed).
            missing = [key for key in wanted if key not in self._copy]
            res = self._call(sets + missing, self.base)
            version = int(res[0])
            full = res[1] == 2
            if full and version < self.base:     # older than expected: cannot be in step, start again
                self.synced = False
        if full:
            all_keys = sets + list(wanted)
            res = self._call(all_keys, -1)
            version = int(res[0])
            self.full_reads += 1
            if self.synced:
                # Batches committed between the PONG and this read: it covers them; their
                # wake-ups, still to come, are skipped.
                self.skip += version - self.base
        else:
            all_keys = sets + missing
        assert res is not None
        if version < self.version:           # a new or flushed Redis: the copy is of another history
            self._copy.clear()
            self.synced, self.version, self.skip = False, -1, 0
            return self.read(plans)
        found = None if res[2] == b"" else int(res[2])
        if found != daily:
            self.daily = found
            if daily is not None and (found is None or found > daily):
                # Days read that Redis does not hold whole (another database): read again.
                self._copy.clear()
                self.synced, self.version, self.skip = False, -1, 0
                return self.read(plans)
        self.version = version
        self.changed = 0
        for i in range(3, len(res), 3):
            idx, digest, flat = int(res[i]) - 1, res[i + 1].decode(), res[i + 2]
            key = all_keys[idx]
            if idx < len(sets):
                self._copy[key] = (digest, sorted(m.decode() for m in flat), "", None, None)
            else:
                self._copy[key] = (digest, _content(flat), *self._info[key])
                self.changed += 1
        if full:
            if self.synced:
                self.base = version
            elif drain is not None and not drain():
                # Nothing was published since the PONG before the read: every wake-up of a
                # batch it covers is in hand, and each later one is a later batch.
                self.synced, self.base, self.skip = True, version, 0
        else:
            self.base = version
        self._keep(sets + list(wanted))
        registries = {kind: self._copy[key][1] for kind, key in zip(REGISTRIES, sets)}
        spans = []
        for fams, buckets, names in jobs:
            contents = [self._copy[n][1] for n in names]
            totals = {f: contents[i] for i, f in enumerate(fams)}
            values, pos = {}, len(fams)
            for f in fams:
                values[f] = contents[pos:pos + len(buckets)]
                pos += len(buckets)
            spans.append(_Span(buckets, values, totals, self._sums))
        return version, registries, spans

    def _call(self, keys: list[str], expected: int) -> Any:
        """`keys`: the registries, then buckets by their unpartitioned names."""
        nsets = len(self._sets)
        phys = [h for key in keys[nsets:] for h in self._phys[key]]
        return self._read(keys=[self.k.meta, *(pk.carry for pk in self._parts), *keys[:nsets], *phys],
                          args=[nsets, expected, len(self._parts), *(self._copy[key][0] if key in self._copy else ""
                                                                     for key in keys)])

    def _keep(self, used: list[str]) -> None:
        """Buckets that left every window (the minutes of an hour ago) leave the copy."""
        now = time.monotonic()
        for key in used:
            self._used[key] = now
        if now - self._swept >= KEEP_S:
            self._swept = now
            for key in [k for k, t in self._used.items() if now - t >= KEEP_S]:
                del self._used[key]
                self._copy.pop(key, None)
