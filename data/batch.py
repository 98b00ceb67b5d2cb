"""The pieces of one aggregator batch that need no loop state: the per-batch accumulator of
contributions, the batched Lua writes, the display-state rows and the stream-entry helpers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from data import contrib
from data.contrib import INTEGRAL, SUMMED_FAMILIES, Contribution
from data.ledger_contrib import LEDGER, scoped_family
from data.timeutil import RESOLUTIONS, SUMMED, fmt_ms, parse_iso

ENTITY_TTL_S = 90 * 86_400 + 86_400
STEP = {r.name: r.step_ms for r in RESOLUTIONS + SUMMED}
RETENTION = {r.name: r.retention_ms for r in RESOLUTIONS + SUMMED}
_WITH_SUMMED = RESOLUTIONS + SUMMED      # a SUMMED_FAMILIES family's resolutions

# A batch is written by ONE script, in two phases: first it checks that every key it will
# write holds the type the write needs and that every field it will add to holds an integer
# HINCRBY accepts (what Python validated cannot fail otherwise), then it writes. A check that
# fails returns an error before anything is written; Redis refuses a script over maxmemory at
# its first write. So a batch is written whole or not at all, and the marks "applied" and the
# XACK come last.
# (A MULTI/EXEC would not do: Redis runs the rest of a transaction when one command fails.)
#
# ARGV[1]: JSON {"i": increments, "o": ops, "c": carry set key}; ARGV[2..]: blobs that ops
# name by their ARGV index (JSON numbers; every literal is a JSON string).
# "i": [key, expire-at ms (0: none), n, field1, delta1, ... fieldn, deltan, key, ...]
# "o": [[command, key, arg, ...], ...] run as they are ("*command" when some arguments are
# blobs), plus MSETPX [ttl ms, key, value]* and ["SEEN"]: where the seen marks go (below).
# "s" (optional): the batch's seen marks, [hash key, n, expire-at ms, ...]: the next n 8-byte
# fingerprints of blob "sb" (ARGV index) are set to 1 in that hash, then it expires at the
# time given. One blob for all of them rather than a blob and an op per bucket: a batch of
# 2,000 ids touches ~900 of a day's 1,024 buckets, and those ops were ~20 % of the script.
#
# Rollup fields cannot overflow: a field that reaches ±2^62 hands 2^62 to the same field of
# the sibling hash "<key>:carry" (listed in the carry set), and readers add carry × 2^62.
# Every delta is < 2^61 (checked in Python), so a field stays below 2^62 + 2^61 < 2^63. A
# field found at ±2^62 or beyond (a sum written before carries existed) is carried first.
APPLY = r"""
local plan = cjson.decode(ARGV[1])
local inc, ops, carryset = plan.i, plan.o, plan.c
-- Fencing: the batch was computed under the apply lock plan.f[1] holding token plan.f[2]; if
-- the lock expired and changed hands since, nothing is written (the caller recomputes).
if plan.f and redis.call('GET', plan.f[1]) ~= plan.f[2] then
  return redis.error_reply('QMSFENCE the apply lock ' .. plan.f[1] .. ' changed hands; nothing written')
end
local LIM = 4611686018427387904
local want = {HSET = 'hash', HDEL = 'hash', HINCRBY = 'hash', SADD = 'set', ZADD = 'zset',
              ZREMRANGEBYSCORE = 'zset', XADD = 'stream', XACK = 'stream'}
local checked = {}
local function wrong(key, kind)
  if checked[key] then return nil end
  local got = redis.call('TYPE', key).ok
  checked[key] = got
  if got ~= 'none' and got ~= kind then return key .. ' is a ' .. got .. ', not a ' .. kind end
  return nil
end
-- What HINCRBY accepts as a stored integer (Redis' string2ll): 0, or no leading zero, in int64.
local function int64(s)
  if s == '0' then return true end
  local neg, digits = string.match(s, '^(%-?)([1-9]%d*)$')
  if not digits or #digits > 19 then return false end
  return #digits < 19 or digits <= (neg == '-' and '9223372036854775808' or '9223372036854775807')
end
-- Fields inc[first], inc[first + 2], ... (n of them) of key: nil when HINCRBY can add to each.
-- A legacy sum at ±2^62 or beyond is noted in pre (carried before the increment); in a carry
-- hash (legacy = false) it is refused, as carries are small counts.
local pre = {}
local function unfit(key, first, n, legacy)
  for c = 0, n - 1, 400 do
    local names = {}
    for m = c, math.min(c + 400, n) - 1 do names[#names + 1] = inc[first + 2 * m] end
    local got = redis.call('HMGET', key, unpack(names))
    for m = 1, #names do
      local s = got[m]
      if s then
        local v = int64(s) and tonumber(s)
        if v and (v >= LIM or v <= -LIM) then
          if not legacy then v = nil else pre[first + 2 * (c + m - 1)] = v > 0 and 1 or -1 end
        end
        if not v then return key .. ' ' .. names[m] .. ' holds ' .. string.sub(s, 1, 32) .. ', not a summable integer' end
      end
    end
  end
  return nil
end
local bad = wrong(carryset, 'set')
local seen = plan.s or {}
for j = 1, #seen, 3 do
  if bad then break end
  bad = wrong(seen[j], 'hash')
end
local i = 1
while not bad and i <= #inc do
  local key, n = inc[i], tonumber(inc[i + 2])
  bad = wrong(key, 'hash') or wrong(key .. ':carry', 'hash') or unfit(key, i + 3, n, true)
  if not bad and checked[key .. ':carry'] == 'hash' then bad = unfit(key .. ':carry', i + 3, n, false) end
  i = i + 3 + 2 * n
end
for _, op in ipairs(ops) do
  if bad then break end
  local cmd = op[1]
  local kind = want[string.byte(cmd) == 42 and string.sub(cmd, 2) or cmd]
  if kind then bad = wrong(op[2], kind) end
  if not bad and cmd == 'HINCRBY' then
    local s = redis.call('HGET', op[2], op[3])
    if s and not (int64(s) and math.abs(tonumber(s)) < LIM) then
      bad = op[2] .. ' ' .. op[3] .. ' holds ' .. string.sub(s, 1, 32) .. ', not a summable integer'
    end
  end
end
if bad then return redis.error_reply('QMSCHECK nothing written: ' .. bad) end

local function carry(key, f, sign, exp)
  redis.call('HINCRBY', key, f, sign > 0 and '-4611686018427387904' or '4611686018427387904')
  redis.call('HINCRBY', key .. ':carry', f, sign)
  redis.call('SADD', carryset, key)
  if exp > 0 then redis.call('PEXPIREAT', key .. ':carry', exp) end
end
i = 1
while i <= #inc do
  local key, exp, n = inc[i], tonumber(inc[i + 1]), tonumber(inc[i + 2])
  local j = i + 3
  for _ = 1, n do
    local f = inc[j]
    if pre[j] then carry(key, f, pre[j], exp) end
    local v = redis.call('HINCRBY', key, f, inc[j + 1])
    if v >= LIM or v <= -LIM then carry(key, f, v > 0 and 1 or -1, exp) end
    j = j + 2
  end
  if exp > 0 then redis.call('PEXPIREAT', key, exp) end
  i = j
end
local function marks()
  local fps, pos = ARGV[plan.sb], 1
  for j = 1, #seen, 3 do
    local a = {}
    for m = 1, tonumber(seen[j + 1]) do
      a[2 * m - 1] = string.sub(fps, pos, pos + 7)
      a[2 * m] = '1'
      pos = pos + 8
    end
    redis.call('HSET', seen[j], unpack(a))
    redis.call('PEXPIREAT', seen[j], seen[j + 2])
  end
end
for _, op in ipairs(ops) do
  local cmd = op[1]
  if cmd == 'SEEN' then
    marks()
  elseif cmd == 'MSETPX' then
    for j = 3, #op, 2 do redis.call('SET', op[j], ARGV[op[j + 1]], 'PX', op[2]) end
  elseif string.byte(cmd) == 42 then        -- "*CMD": some arguments are blobs (ARGV indexes)
    local args = {string.sub(cmd, 2)}
    for j = 2, #op do
      local a = op[j]
      if type(a) == 'number' then args[j] = ARGV[a] else args[j] = a end
    end
    redis.call(unpack(args))
  else
    redis.call(unpack(op))
  end
end
return #ops
"""
CARRY = 1 << 62
MAX_DELTA = 1 << 61
_CHUNK = 400          # items per command: Lua's unpack() is bounded by its C stack


class DeltaTooLarge(ValueError):
    """A field's change in one batch is too large to add safely: the batch is bisected and the
    event behind it dead-lettered."""


class Writes:
    """Every write of one batch, for APPLY. Methods mirror redis-py's; bytes go as blobs
    (ARGV), everything else as JSON strings."""

    def __init__(self, carry_set: str) -> None:
        self.carry_set = carry_set
        self.inc: list[str] = []
        self.ops: list[list[Any]] = []
        self.blobs: list[bytes] = []
        self.fence: list[str] | None = None      # [lock key, token]: APPLY writes only while it holds
        self.seen: list[str] = []                # [hash key, n, expire-at ms, ...] (APPLY's "s")
        self.seen_fps: list[bytes] = []          # their fingerprints, in order (8 bytes each)

    def commands(self) -> Iterable[list[Any]]:
        """The ops as plain commands (blobs put back), for a pipeline instead of APPLY: the
        partitions' global, idempotent writes (raw store, indexes, registries, display rows)."""
        if self.inc:
            raise ValueError("increments go through APPLY")
        blobs = self.blobs
        for op in self.ops:
            cmd = op[0]
            if cmd[0] == "*":
                yield [cmd[1:], *(blobs[a - 2] if type(a) is int else a for a in op[1:])]
            else:
                yield op

    def _op(self, cmd: str, args: list[Any], blobs_before: int) -> None:
        """One command; marked "*" when an argument is a blob (the blob list grew since
        `blobs_before`), so the script walks only those arguments."""
        self.ops.append([("*" + cmd) if len(self.blobs) > blobs_before else cmd, *args])

    def _args(self, items: Iterable[Any]) -> list[Any]:
        """Bytes become blobs, named by their ARGV index (ARGV[1] is the plan); anything else
        a string. Per event (a batch's raw events, ids, scores), so written as one loop."""
        blobs = self.blobs
        out: list[Any] = []
        append = out.append
        for v in items:
            t = type(v)
            if t is str:
                append(v)
            elif t is bytes:
                blobs.append(v)
                append(len(blobs) + 1)
            else:
                append(str(v))
        return out

    def _chunked(self, cmd: str, key: str, head: list[Any], items: list[Any], per: int) -> None:
        before = len(self.blobs)
        args = self._args(items)
        step = _CHUNK * per
        for n in range(0, len(args), step):
            self._op(cmd, [key, *head, *args[n:n + step]], before)

    def increments(self, key: str, expire_at: int, fields: dict[str, int]) -> None:
        nonzero = [(f, v) for f, v in fields.items() if v]
        if not nonzero:
            return
        inc = self.inc
        inc += [key, str(expire_at), str(len(nonzero))]
        for f, v in nonzero:
            if not -MAX_DELTA < v < MAX_DELTA:
                raise DeltaTooLarge(f"{key} {f}: a change of {v} in one batch")
            inc += [f, str(v)]

    def mset_px(self, ttl_ms: int, pairs: list[tuple[str, bytes]]) -> None:
        for n in range(0, len(pairs), _CHUNK):
            self.ops.append(["MSETPX", str(ttl_ms), *self._args(x for kv in pairs[n:n + _CHUNK] for x in kv)])

    def hset(self, key: str, mapping: dict[str, Any]) -> None:
        self._chunked("HSET", key, [], [x for kv in mapping.items() for x in kv], 2)

    def hdel(self, key: str, *fields: str) -> None:
        self._chunked("HDEL", key, [], list(fields), 1)

    def sadd(self, key: str, *members: str) -> None:
        self._chunked("SADD", key, [], list(members), 1)

    def zadd(self, key: str, mapping: dict[Any, int]) -> None:
        self._chunked("ZADD", key, [], [x for m, score in mapping.items() for x in (score, m)], 2)

    def xack(self, stream: str, group: str, *ids: bytes) -> None:
        for n in range(0, len(ids), _CHUNK):
            self.ops.append(["XACK", stream, group, *(i.decode() for i in ids[n:n + _CHUNK])])

    def xadd(self, key: str, fields: dict[str, Any], maxlen: int) -> None:
        before = len(self.blobs)
        self._op("XADD", [key, "MAXLEN", "~", str(maxlen), "*", *self._args(x for kv in fields.items() for x in kv)], before)

    def command(self, *args: Any) -> None:
        """Any other write, as it is (PEXPIREAT, EXPIRE, ZREMRANGEBYSCORE, HINCRBY, PUBLISH, DEL)."""
        before = len(self.blobs)
        cmd, *rest = self._args(args)
        self._op(cmd, rest, before)

    def marks(self, key: str, fps: list[bytes], expire_at: int) -> None:
        """Fingerprints (8 bytes each) set to 1 in the seen hash `key`, which then expires at
        `expire_at`; written where `marks_here` put them (APPLY's "s")."""
        for n in range(0, len(fps), _CHUNK):
            part = fps[n:n + _CHUNK]
            if any(len(fp) != 8 for fp in part):
                raise ValueError("a seen fingerprint is 8 bytes")
            self.seen += (key, str(len(part)), str(expire_at))
            self.seen_fps += part

    def marks_here(self) -> None:
        """The seen marks are written at this point of the ops."""
        self.ops.append(["SEEN"])

    def script_args(self) -> list[Any]:
        plan: dict[str, Any] = {"i": self.inc, "o": self.ops, "c": self.carry_set}
        if self.fence:
            plan["f"] = self.fence
        if not self.seen:
            return [orjson.dumps(plan), *self.blobs]
        plan["s"] = self.seen
        plan["sb"] = len(self.blobs) + 2          # the fingerprints' blob: after the others
        return [orjson.dumps(plan), *self.blobs, b"".join(self.seen_fps)]


class Commands:
    """Idempotent writes sent as plain commands (data.redis_conn.raw_pipeline), not through
    APPLY: the raw store, its indexes, the registries (and, partitioned, the display rows and
    forwarded copies). Writing the same values again changes nothing, so they go BEFORE the
    batch's script, every reply checked: a crash or an error in between leaves the batch
    unacknowledged and it is written again. Natively Redis runs them at a fraction of a
    redis.call's cost. Methods mirror Writes'."""

    __slots__ = ("cmds",)

    def __init__(self) -> None:
        self.cmds: list[tuple[Any, ...]] = []

    def hset(self, key: str, mapping: dict[str, Any]) -> None:
        if mapping:
            self.cmds.append(("HSET", key, *[x for kv in mapping.items() for x in kv]))

    def hdel(self, key: str, *fields: str) -> None:
        if fields:
            self.cmds.append(("HDEL", key, *fields))

    def sadd(self, key: str, *members: str) -> None:
        if members:
            self.cmds.append(("SADD", key, *members))

    def zadd(self, key: str, mapping: dict[Any, int]) -> None:
        if mapping:
            self.cmds.append(("ZADD", key, *[x for m, score in mapping.items() for x in (score, m)]))

    def command(self, *args: Any) -> None:
        self.cmds.append(args)

    def checks(self) -> list[tuple[tuple[str, str], str]]:
        """(TYPE command, the type the writes need) for every key written here: checked
        before anything is written, so a key of the wrong type stops the batch with no
        trace (as APPLY's own checks do)."""
        seen: dict[str, str] = {}
        for cmd in self.cmds:
            kind = _NEEDS.get(cmd[0])
            if kind is not None and cmd[1] not in seen:
                seen[cmd[1]] = kind
        return [(("TYPE", key), kind) for key, kind in seen.items()]


_NEEDS = {"HSET": "hash", "HDEL": "hash", "SADD": "set", "ZADD": "zset", "ZREMRANGEBYSCORE": "zset",
          "XADD": "stream"}


RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Partitioned: an author's latest pr_created [ts, id, team] wins whichever partition writes
# it (partitions run concurrently, so a read-then-HSET could put an older one back).
# ARGV: author, JSON, author, JSON, ...
AUTHORS_MAX = """
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local new = cjson.decode(ARGV[i + 1])
  local old = cur and cjson.decode(cur)
  if not old or new[1] > old[1] or (new[1] == old[1] and new[2] > old[2]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""

# Partitioned: after a partition's batch, the deployment-wide meta the web processes read
# (last_batch_ms for freshness; on a cluster also the version that wakes and versions the
# live publisher, and the wake-up — on one Redis those two are in the batch's own script, so
# a crash between the two scripts cannot leave the publisher's copy behind the data).
# KEYS[1] = meta; ARGV: now, last event ms (or ""), channel, message, "1": bump and publish.
BUMP = """
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'version', 1) end
redis.call('HSET', KEYS[1], 'last_batch_ms', ARGV[1])
if ARGV[2] ~= '' then
  local cur = tonumber(redis.call('HGET', KEYS[1], 'last_event_ms') or '0')
  if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], 'last_event_ms', ARGV[2]) end
end
if ARGV[5] == '1' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
"""


class Acc:
    """Per-batch accumulator of contributions at 1-minute granularity."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, c: Contribution, sign: int = 1) -> None:
        fam, field, ts, value, step = c
        value *= sign
        b = ts // 60_000 * 60_000
        h = self.buckets[(fam, b)]
        h[field] += value
        if step:
            self.totals[fam][field] += value
            if field in INTEGRAL:
                h["~" + field] += value * (ts - b)

    def add_all(self, cs: Iterable[Contribution], sign: int = 1) -> None:
        for c in cs:
            self.add(c, sign)

    def add_core(self, core: Iterable[Contribution], scopes: tuple[str, ...], sign: int = 1) -> None:
        """contrib.expand(core, scopes), added: `add` of each item (but SCOPED_ONLY ones) and of
        its `contrib.copies`, written out in one loop (an entity's items and copies are most of
        a batch's few hundred thousand contributions; a call per copy was a tenth of the
        aggregator's CPU)."""
        buckets, totals = self.buckets, self.totals
        only, main, late, ledger, scope = contrib.SCOPED_ONLY, contrib.MAIN, contrib.LATE, LEDGER, contrib.SCOPE
        for fam, f, ts, value, step in core:
            value *= sign
            b = ts // 60_000 * 60_000
            if fam != only:
                h = buckets[(fam, b)]
                h[f] += value
                if step:
                    totals[fam][f] += value
                    if f in INTEGRAL:
                        h["~" + f] += value * (ts - b)
            if not scopes:
                continue
            if fam == main or fam == only or fam == late:
                names = [f"{sc}|{f}" for sc in scopes] if fam != late else [f"{sc}|L|{f}" for sc in scopes]
                h = buckets[(scope, b)]
                if step:
                    tot = totals[scope]
                    for name in names:
                        h[name] += value
                        tot[name] += value
                        if name in INTEGRAL:
                            h["~" + name] += value * (ts - b)
                else:
                    for name in names:
                        h[name] += value
            elif fam == ledger:       # copies in a family per scope, never steps
                for sc in scopes:
                    buckets[(scoped_family(sc), b)][f] += value

    def add_core_diff(self, old: list[Any], new: list[Contribution], scopes: tuple[str, ...]) -> None:
        """expand(new) − expand(old) under the same scopes: the core items' difference,
        expanded (a copy is a linear function of its item, so this is exact). An entity's
        items change little from one event to the next: when neither list repeats an item
        (the usual case) the difference is two set differences (in C); else items are
        netted by (family, field, ts, step)."""
        so, sn = set(map(tuple, old)), set(new)
        if len(so) == len(old) and len(sn) == len(new):
            self.add_core(sn - so, scopes)
            self.add_core(so - sn, scopes, -1)
            return
        net: dict[tuple[str, str, int, bool], int] = defaultdict(int)
        for fam, name, ts, value, step in new:
            net[(fam, name, ts, step)] += value
        for fam, name, ts, value, step in old:
            net[(fam, name, ts, step)] -= value
        self.add_core([(fam, name, ts, value, step) for (fam, name, ts, step), value in net.items() if value], scopes)

    def add_diff(self, old: Iterable[Any], new: list[Contribution]) -> None:
        net: dict[tuple[str, str, int, bool], int] = defaultdict(int)
        for fam, name, ts, value, step in new:
            net[(fam, name, ts, step)] += value
        for fam, name, ts, value, step in old:
            net[(fam, name, ts, step)] -= value
        for (fam, name, ts, step), value in net.items():
            if value:
                self.add((fam, name, ts, value, step))

    def rolled(self, now: int) -> dict[str, dict[str, int]]:
        """{redis key suffix (res, fam, start): {field: delta}} for every retained resolution."""
        out: dict[tuple[str, str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (fam, b), fields in self.buckets.items():
            for res in (_WITH_SUMMED if fam in SUMMED_FAMILIES else RESOLUTIONS):
                start = b // res.step_ms * res.step_ms
                if start + res.step_ms + res.retention_ms < now:
                    continue        # older than this resolution keeps: it would expire at once
                h = out[(res.name, fam, start)]
                for f, v in fields.items():
                    if not v:
                        continue
                    h[f] += v
                    if f[0] == "~" or start == b:
                        continue
                    if f in INTEGRAL:
                        h["~" + f] += v * (b - start)
        return out  # type: ignore[return-value]


VALIDATED = b"v"   # stream field: the ingest (or a primary partition) validated this entry's event


def trusted(fields: dict[bytes, bytes], obj: Any) -> int | None:
    """The timestamp of an event the ingest already validated and normalised (field `v`),
    else None (validate it)."""
    if fields.get(VALIDATED) != b"1" or type(obj) is not dict or type(obj.get("id")) is not str:
        return None
    try:
        return parse_iso(obj["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None


def entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


@dataclass
class Parsed:
    entry_ids: list[bytes]
    events: list[tuple[dict[str, Any], int]]
    dead: list[tuple[str, bytes, str]]          # reason, raw, event id
    dups: int
    raws: dict[str, bytes] = field(default_factory=dict)   # event id -> bytes as received
    direct: set[str] | None = None    # ids that came in an entry not forwarded by another partition (None: all)
    prep: "Prep | None" = None        # grouped and keyed ahead (Aggregator._prepare)
    ready: tuple[str, list[Any]] | None = None    # read ahead: (the lock's token, the reads' replies)
    head: "Head | None" = None        # its entities computed ahead (Aggregator._head), with `ready`


@dataclass
class Prep:
    """A batch grouped per entity and day, its keys and read commands (Aggregator._prepare)."""
    part: int                         # the partition it was prepared for
    by_entity: dict[tuple[str, str], list[tuple[dict[str, Any], int]]]
    days: dict[int, list[str]]
    secondary: set[str]
    ent_list: list[tuple[str, str]]
    tl_list: list[tuple[str, str]]
    ent_keys: list[str]
    tl_keys: list[str]
    author_list: list[str]
    fps: dict[str, tuple[int, bytes]]
    reads: list[tuple[Any, ...]]
    late: int                         # reads[late:] (timelines, authors) are written by a batch's script,
    #                                   reads[:late] (applied ids, entities) only by its seen marks and MSETPX


@dataclass
class Head:
    """The first part of a batch's computation (Aggregator._head): which ids are new, the
    direct contributions, and the entities folded and encoded into `w` (with their rollup
    changes in `acc`, their display rows in `display` and `hide`)."""
    fresh: list[tuple[dict[str, Any], int]]
    own: list[tuple[dict[str, Any], int]]
    dups: int
    fresh_ids: set[str] | None
    acc: "Acc"
    display: dict[str, dict[str, bytes]]
    hide: dict[str, list[str]]
    w: Writes
    written: dict[str, bytes]         # key -> the bytes the batch's script sets it to




def display_row(kind: str, ident: str, s: dict[str, Any], display: dict[str, dict[str, bytes]],
             hide: dict[str, list[str]]) -> None:
    """Current state for the operational views (as of the latest events)."""
    if kind == "wf":
        c = s.get("c")
        if c and not s.get("done"):
            steps = s.get("st", [])
            latest = steps[-1] if steps else None
            display["active"][ident] = orjson.dumps({
                "workflow_id": ident, "author": c[1], "team": c[2], "repository": c[3], "pr_number": c[4],
                "created": fmt_ms(c[0]), "step": latest[2] if latest else None,
                "step_since": fmt_ms(latest[0]) if latest else None,
                "review_started": s.get("rs", contrib.NEVER) != contrib.NEVER})
        else:
            hide["active"].append(ident)
    elif kind == "df":
        f = s.get("f")
        if f and not s.get("r"):
            display["defects"][ident] = orjson.dumps(
                {"defect_id": ident, "severity": f[1], "workflow_id": f[2], "found": fmt_ms(f[0])})
        else:
            hide["defects"].append(ident)
    elif kind == "cp":
        rems = s.get("r", [])
        pending = [c for c in s.get("f", []) if not any(r > c for r in rems)]
        if pending:
            wf, policy = contrib.pair_of(ident)
            display["violations"][ident] = orjson.dumps(
                {"workflow_id": wf, "policy": policy, "failed_checks": len(pending), "since": fmt_ms(min(pending))})
        else:
            hide["violations"].append(ident)
    elif kind == "rv":
        starts, comps = s.get("s", []), s.get("c", [])
        last = max(starts) if starts else None
        if last is not None and not any(c > last for c in comps):
            reviewer, wf = contrib.pair_of(ident)
            display["reviews"][ident] = orjson.dumps({"reviewer": reviewer, "workflow_id": wf, "since": fmt_ms(last)})
        else:
            hide["reviews"].append(ident)


def member(m: bytes) -> tuple[int, str, str]:
    s = m.decode()
    ts, rest = s.split("|", 1)
    eid, value = rest.rsplit("|", 1)
    return int(ts), eid, value
