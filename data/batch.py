"""The pieces of one aggregator batch that need no loop state: the per-batch accumulator of
contributions, the batched Lua writes, the display-state rows and the stream-entry helpers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from data import contrib
from data.contrib import INTEGRAL, Contribution
from data.timeutil import RESOLUTIONS, fmt_ms

ENTITY_TTL_S = 90 * 86_400 + 86_400
STEP = {r.name: r.step_ms for r in RESOLUTIONS}
RETENTION = {r.name: r.retention_ms for r in RESOLUTIONS}

# Batched writes: one EVAL instead of thousands of commands (EVAL, not EVALSHA, because a
# NOSCRIPT error inside MULTI would not abort the rest of the transaction).
# ARGV: (key, expire-at ms or 0, n, field1, delta1, ... fieldn, deltan)*
MINCR = """
local a = cjson.decode(ARGV[1])
local i = 1
while i <= #a do
  local key, exp, n = a[i], tonumber(a[i + 1]), tonumber(a[i + 2])
  local j = i + 3
  for _ = 1, n do
    redis.call('HINCRBY', key, a[j], a[j + 1])
    j = j + 2
  end
  if exp > 0 then redis.call('PEXPIREAT', key, exp) end
  i = j
end
return 1
"""
# MINCR's one argument: a JSON array of strings [key, expire-at ms (0: none), n, field, delta, ...].
# One string instead of ~100k arguments: redis-py packed each argument in Python (~10 % of
# the aggregator's time); values stay strings so HINCRBY gets exact integers, never a Lua
# number printed as 1e+15.
# ARGV: ttl ms, (key, value)*
MSETPX = """
for i = 2, #ARGV, 2 do redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', ARGV[1]) end
return 1
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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
            for res in RESOLUTIONS:
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


def entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


@dataclass
class Parsed:
    entry_ids: list[bytes]
    events: list[tuple[dict[str, Any], int]]
    dead: list[tuple[str, bytes]]
    dups: int
    raws: dict[str, bytes] = field(default_factory=dict)   # event id -> bytes as received




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
            wf, policy = ident.split("|", 1)
            display["violations"][ident] = orjson.dumps(
                {"workflow_id": wf, "policy": policy, "failed_checks": len(pending), "since": fmt_ms(min(pending))})
        else:
            hide["violations"].append(ident)
    elif kind == "rv":
        starts, comps = s.get("s", []), s.get("c", [])
        last = max(starts) if starts else None
        if last is not None and not any(c > last for c in comps):
            reviewer, wf = ident.split("|", 1)
            display["reviews"][ident] = orjson.dumps({"reviewer": reviewer, "workflow_id": wf, "since": fmt_ms(last)})
        else:
            hide["reviews"].append(ident)


def member(m: bytes) -> tuple[int, str, str]:
    s = m.decode()
    ts, rest = s.split("|", 1)
    eid, value = rest.rsplit("|", 1)
    return int(ts), eid, value
