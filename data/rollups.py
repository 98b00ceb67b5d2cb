"""Reading rollups: one pipelined fetch of the buckets covering a span, then window sums,
the value of a state function at an instant, and exact time integrals — all from
buckets, so a query's cost depends on the span and resolution, not on how many raw
events were stored.
"""
from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict, defaultdict
from typing import Any, Iterable

import redis

from data.batch import CARRY
from data.contrib import SUMMED_FAMILIES
from data.keys import Keys
from data.redis_conn import first_error, raw_ordered
from data.timeutil import DAY_MS, RES_NAME, Bucket, cover, day_start


class Span:
    """Bucket values of several families over [start, horizon), plus the all-time totals."""

    def __init__(self, buckets: list[Bucket], values: dict[str, list[dict[str, int]]],
                 totals: dict[str, dict[str, int]], memo: dict[str, dict[Any, Any]] | None = None) -> None:
        self.buckets = buckets
        self.starts = [b.start for b in buckets]
        self.values = values
        self.totals = totals
        # Per family, what was derived from its buckets: window sums by (s, e), and `derived`
        # values. A SpanCache read hands every Span made of it the same dict per family, so
        # the cards of a page that cut the same window sum each step once, not once each.
        self._memo: dict[str, dict[Any, Any]] = dict(memo) if memo else {}
        self.extra: dict[Any, Any] = {}     # derived per-window data that formulas share (histograms)

    def _fam_memo(self, fam: str) -> dict[Any, Any]:
        found = self._memo.get(fam)
        if found is None:
            found = self._memo[fam] = {}
        return found

    def derived(self, fam: str, key: Any, make: Any) -> Any:
        """`make()`, kept with the family's buckets (shared by the Spans of one cached read):
        for what is made of those buckets alone, as a scope's view of them."""
        memo = self._fam_memo(fam)
        found = memo.get(("derived", key))
        if found is None:
            found = memo[("derived", key)] = make()
        return found

    def _index(self, t: int) -> int:
        i = bisect_left(self.starts, t)
        if i < len(self.starts) and self.starts[i] != t and t != self.end:
            raise ValueError(f"{t} is not a bucket boundary of this span")
        return i

    @property
    def end(self) -> int:
        return self.buckets[-1].end if self.buckets else 0

    def sums(self, fam: str, s: int, e: int) -> dict[str, int]:
        """Every field of a family summed over [s, e)."""
        memo = self._fam_memo(fam)
        cached = memo.get((s, e))
        if cached is not None:
            return cached
        out: dict[str, int] = defaultdict(int)
        rows = self.values.get(fam, [])
        for i in range(self._index(s), self._index(e) if e < self.end else len(self.buckets)):
            for f, v in rows[i].items():
                out[f] += v
        memo[(s, e)] = out
        return out

    def window(self, fam: str, field: str, s: int, e: int) -> int:
        return self.sums(fam, s, e).get(field, 0)

    def at(self, fam: str, field: str, t: int) -> int:
        """A step field's state at instant t: totals minus every delta at or after t."""
        return self.totals.get(fam, {}).get(field, 0) - self.sums(fam, t, self.end).get(field, 0)

    def integral(self, fam: str, field: str, s: int, e: int) -> int:
        """∫ over [s, e) of a step field with moments (value × ms)."""
        total = self.at(fam, field, s) * (e - s)
        rows = self.values.get(fam, [])
        for i in range(self._index(s), self._index(e) if e < self.end else len(self.buckets)):
            d = rows[i].get(field, 0)
            m = rows[i].get("~" + field, 0)
            if d or m:
                total += d * (e - self.buckets[i].start) - m
        return total

    def series_points(self) -> list[int]:
        return self.starts + [self.end]


DAILY_FROM = "daily_from"    # {p}:meta field: the first day (ms) whose daily buckets hold every event
SUMMED_FROM = "summed_from"  # {p}:meta field: the same for the summed buckets (timeutil.SUMMED)


def daily_from(r: redis.Redis, keys: Keys) -> int | None:
    raw = r.hget(keys.meta, DAILY_FROM)
    return None if raw is None else int(raw)


def summed_from(r: redis.Redis, keys: Keys) -> int | None:
    raw = r.hget(keys.meta, SUMMED_FROM)
    return None if raw is None else int(raw)


def mark_daily(r: redis.Redis, keys: Keys, latest_ms: int) -> None:
    """Say from which day the daily (and the summed) buckets are whole, once each: from the
    start on a database no batch has been applied to, else from the day after `latest_ms`
    (now plus the accepted clock skew: no event of that day or later was aggregated by a
    version that did not write them). `cli.py rebuild --from DATE` moves both back to DATE
    (data.archive_rebuild)."""
    marks = (DAILY_FROM, SUMMED_FROM)
    unset = [m for m, got in zip(marks, r.hmget(keys.meta, list(marks))) if got is None]
    if not unset:
        return
    with r.pipeline(transaction=False) as p:
        for pk in keys.parts():
            p.hexists(pk.meta, "applied")
        used = any(p.execute())
    for m in unset:
        r.hsetnx(keys.meta, m, day_start(latest_ms) + DAY_MS if used else 0)


# Sums every field of consecutive runs of hashes in Redis: KEYS the hashes, ARGV[1] the number
# of runs, then per run how many hashes form it and its cut: "" sums every field; a number sums
# the fields "<prefix>:<ms>" whose ms is below it into "<prefix>:0" and leaves out the others.
# Returns per run [field, sum, ...] (sums as integers: exact below 2^53, and a run with a
# carried key is never merged, see `fetch`).
MERGE = """
local out, pos = {}, 1
for w = 1, tonumber(ARGV[1]) do
  local n, cut = tonumber(ARGV[2 * w]), tonumber(ARGV[2 * w + 1])
  local acc, flat = {}, {}
  for i = pos, pos + n - 1 do
    local h = redis.call('HGETALL', KEYS[i])
    if cut then
      for j = 1, #h, 2 do
        local f = h[j]
        local c = string.find(f, ':', 1, true)
        local ms = c and tonumber(string.sub(f, c + 1))
        if ms and ms < cut then
          f = string.sub(f, 1, c) .. '0'
          acc[f] = (acc[f] or 0) + tonumber(h[j + 1])
        end
      end
    else
      for j = 1, #h, 2 do acc[h[j]] = (acc[h[j]] or 0) + tonumber(h[j + 1]) end
    end
  end
  pos = pos + n
  for k, v in pairs(acc) do
    if v ~= 0 then flat[#flat + 1] = k; flat[#flat + 1] = v end
  end
  out[w] = flat
end
return out
"""


def fetch(r: redis.Redis, keys: Keys, families: Iterable[str], points: Iterable[int], horizon: int,
          now: int, daily: int | None = None, only: dict[str, list[str]] | None = None,
          merged: Iterable[str] = (), cut: Iterable[str] = (), summed: int | None = None) -> Span:
    """Fetch the buckets tiling [min(points), horizon) so that every point is a boundary;
    days from `daily` on (see `daily_from`); of a family in `only`, just those fields.

    A family in `merged` (many fields per bucket: the gate-time histogram) is summed in Redis
    between consecutive points, and each sum is put in the first bucket between them: its
    window sums and states at the points are exact, its single buckets are not (no integrals,
    no SpanCache). Such a family that has summed buckets (contrib.SUMMED_FAMILIES) reads them
    from `summed` on (see `summed_from`): the fewest histograms that tile each window. Of a
    merged family also in `cut` (late readiness: a field "<prefix>:<ms>" counts in a window
    only when ms is before the window's end, kpis._late), Redis sums per window only the
    fields before its end, as "<prefix>:0". Not on Redis Cluster, nor for a run holding a
    carried key (read as usual)."""
    pts = sorted({p for p in points if p < horizon} | {horizon})
    buckets: list[Bucket] = []
    runs: list[int] = []
    for a, b in zip(pts, pts[1:]):
        tiles = cover(a, b, now, daily)
        buckets += tiles
        runs.append(len(tiles))
    fams = list(families)
    parts = keys.parts()
    lump = set() if keys.cluster else set(merged) & set(fams)
    tiling: dict[str, list[list[Bucket]]] = {}
    for fam in lump:
        if fam in SUMMED_FAMILIES and summed is not None:
            tiling[fam] = [cover(a, b, now, daily, summed) for a, b in zip(pts, pts[1:])]
        else:
            tiling[fam] = [buckets[sum(runs[:i]):sum(runs[:i + 1])] for i in range(len(runs))]
    if lump:
        carried = set()
        with r.pipeline(transaction=False) as p:
            for pk in parts:
                p.smembers(pk.carry)
            for found in p.execute():
                carried |= found
        if carried:        # rare: a field past 2^62 somewhere; those families read bucket by bucket
            lump = {fam for fam in lump if not any(pk.rollup(RES_NAME[bk.step_ms], fam, bk.start).encode() in carried
                                                   for pk in parts for run in tiling[fam] for bk in run)}
    if lump:
        rest = fetch(r, keys, [f for f in fams if f not in lump], pts, horizon, now, daily, only)
        script = r.register_script(MERGE)
        cuts = set(cut)
        with r.pipeline(transaction=False) as p:
            for pk in parts:
                for fam in sorted(lump):
                    p.hgetall(pk.totals(fam))
                    args: list[Any] = [len(pts) - 1]
                    for run, b in zip(tiling[fam], pts[1:]):
                        args += [len(run), b if fam in cuts else ""]
                    script(keys=[pk.rollup(RES_NAME[bk.step_ms], fam, bk.start) for run in tiling[fam] for bk in run],
                           args=args, client=p)
            res = iter(p.execute())
        for pk in parts:
            for fam in sorted(lump):
                tot = _ints(next(res))
                lumped: list[dict[str, int]] = []
                for n, flat in zip(runs, next(res)):
                    lumped += [{flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}] + [{} for _ in range(n - 1)]
                if fam not in rest.values:
                    rest.values[fam], rest.totals[fam] = lumped, tot
                    continue
                for acc, h in zip([rest.totals[fam], *rest.values[fam]], [tot, *lumped]):
                    for f, v in h.items():
                        acc[f] = acc.get(f, 0) + v
        return rest
    # Partitioned: every partition holds its own increments of the same buckets; a bucket's
    # value is their sum (commutative increments, data.partition), read in one pipeline.
    per_part = [[pk.totals(fam) for fam in fams]
                + [pk.rollup(RES_NAME[bk.step_ms], fam, bk.start) for fam in fams for bk in buckets]
                for pk in parts]
    subset = [(only or {}).get(fam) for fam in fams]
    subset += [subset[i] for i in range(len(fams)) for _ in buckets]
    # Packed and read by hiredis without redis-py's layers per command (data.redis_conn): a
    # cold page reads some 1,500 bucket hashes, and those layers were a third of the client's
    # CPU for them.
    cmds: list[tuple[Any, ...]] = [("SMEMBERS", pk.carry) for pk in parts]
    for names in per_part:
        for name, fields in zip(names, subset):
            cmds.append(("HGETALL", name) if fields is None else ("HMGET", name, *fields) if fields
                        else ("EXISTS", name))       # nothing asked: a placeholder reply
    res = raw_ordered(r, cmds)
    err = first_error(res)
    if err is not None:
        raise err
    n = len(per_part[0])
    hashes: list[dict[str, int]] = []
    for j, names in enumerate(per_part):
        part_hashes = [_ints(h) if fields is None else _picked(fields, h)
                       for h, fields in zip(res[len(parts) + j * n:len(parts) + (j + 1) * n], subset)]
        if res[j]:
            _add_carries(r, [name.encode() for name in names], part_hashes, set(res[j]))
        if not hashes:
            hashes = part_hashes
            continue
        for acc, h in zip(hashes, part_hashes):
            for f, v in h.items():
                acc[f] = acc.get(f, 0) + v
    totals = {fam: hashes[i] for i, fam in enumerate(fams)}
    values: dict[str, list[dict[str, int]]] = {}
    pos = len(fams)
    for fam in fams:
        values[fam] = hashes[pos:pos + len(buckets)]
        pos += len(buckets)
    return Span(buckets, values, totals)


class SpanCache:
    """Families' buckets fetched recently: the KPI cards and trends of one page cut the same
    window the same way, so each family is read once for all of them (ten sparklines read
    ~9,000 hashes a page cold, most of them the same ones again). Exact per data version: an
    entry holds one read of a family's buckets for one tiling (cuts, horizon, minute of `now`,
    which decides the resolutions), and is used for that version; a page's draw may also take
    one read less than `stale_ms` ago (dashboards.computed.page_stale_ms: what the page may show
    anyway), which the other scopes and dashboards of a timeframe then share. Spans built from
    it are read-only views."""

    def __init__(self, size: int = 48) -> None:
        self.size = size
        # (family, tiling) -> (version, read at, buckets, values, totals, memo of what is derived)
        self._d: OrderedDict[tuple[Any, ...], tuple[int, int, list[Bucket], list[dict[str, int]], dict[str, int],
                                                    dict[Any, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, r: redis.Redis, keys: Keys, families: Iterable[str], points: Iterable[int], horizon: int,
              now: int, version: int, daily: int | None = None, stale_ms: float = 0.0) -> Span:
        fams = list(dict.fromkeys(families))
        pts = sorted(set(points))
        base = (tuple(pts), horizon, now // 60_000, daily)
        found: dict[str, tuple[int, int, list[Bucket], list[dict[str, int]], dict[str, int], dict[Any, Any]]] = {}
        with self._lock:
            for fam in fams:
                hit = self._d.get((fam, *base))
                if hit is not None and (hit[0] == version or 0 <= now - hit[1] < stale_ms):
                    self._d.move_to_end((fam, *base))
                    found[fam] = hit
        missing = [fam for fam in fams if fam not in found]
        if missing:
            span = fetch(r, keys, missing, pts, horizon, now, daily)
            with self._lock:
                for fam in missing:
                    found[fam] = (version, now, span.buckets, span.values[fam], span.totals[fam], {})
                    self._d[(fam, *base)] = found[fam]
                while len(self._d) > self.size:
                    self._d.popitem(last=False)
        buckets = found[fams[0]][2] if fams else []
        return Span(buckets, {fam: found[fam][3] for fam in fams}, {fam: found[fam][4] for fam in fams},
                    {fam: found[fam][5] for fam in fams})


def _add_carries(r: redis.Redis, names: list[bytes], hashes: list[dict[str, int]], carried: set[bytes]) -> None:
    """Fields that passed ±2^62 keep the excess as a count of 2^62 in "<key>:carry" (see
    data.batch.APPLY): add it back, so a sum is exact however large it grows."""
    which = [i for i, n in enumerate(names) if n in carried]
    if not which:
        return
    with r.pipeline(transaction=False) as p:
        for i in which:
            p.hgetall(names[i] + b":carry")
        extra = p.execute()
    for i, h in zip(which, extra):
        for f, c in _ints(h).items():
            hashes[i][f] = hashes[i].get(f, 0) + c * CARRY


def _picked(fields: list[str], got: Any) -> dict[str, int]:
    if not fields:
        return {}
    return {f: int(v) for f, v in zip(fields, got) if v is not None}


def _ints(h: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in h.items()}
