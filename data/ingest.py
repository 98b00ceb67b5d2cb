"""Ingest: validated events onto the stream, exactly once per event id; the rejected into
the dead-letter store. One Lua call per request does the de-duplication and the XADDs
atomically, so an accepted event is never lost between the two and a retry of the same
request counts its events as duplicates.

Partitioned (data.partition): each event goes to its primary partition's stream, de-duplicated
in that partition's seen sets by the same script (one call per partition, each in one hash
slot). An id is de-duplicated within its routing entity: the same id sent again about another
workflow is another event to the partitions.
"""
from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
import redis

from data.events import check_item, item_id, item_raw
from data.keys import Keys, fingerprint, seen_buckets
from data.pace import Pause, loop_pause, paced
from data.partition import route
from data.timeutil import DAY_MS, fmt_ms, now_ms

# Each entry carries `v` = 1: validated here (data.batch.VALIDATED; the aggregator does not
# validate it again, as it does what direct producers XADD).
# An id is marked seen as a field (its fingerprint, value 0: accepted) of its day's bucket hash
# (data.keys.fingerprint); the aggregators set it to 1 when applied.
# Keys of the wrong type are refused before anything is written: an id marked seen whose XADD
# then failed would be in no stream, and a resend would count it as a duplicate.
_LUA = """
local function wrong(key, kind)
  local got = redis.call('TYPE', key).ok
  if got ~= 'none' and got ~= kind then return key .. ' is a ' .. got .. ', not a ' .. kind end
  return nil
end
local bad = wrong(KEYS[1], 'stream') or wrong(KEYS[2], 'hash')
local checked = {}
for i = 1, #ARGV - 2, 4 do
  if bad then break end
  if not checked[ARGV[i]] then
    checked[ARGV[i]] = true
    bad = wrong(ARGV[i], 'hash')
  end
end
if bad then return redis.error_reply('QMSCHECK nothing written: ' .. bad) end
local out = {}
local expired = {}
for i = 1, #ARGV - 2, 4 do
  local seen = ARGV[i]
  if redis.call('HSETNX', seen, ARGV[i + 1], '0') == 1 then
    if not expired[seen] then
      redis.call('PEXPIREAT', seen, ARGV[i + 3])
      expired[seen] = true
    end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[#ARGV - 1], '*', 'e', ARGV[i + 2], 'v', '1')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
local added = 0
for _, f in ipairs(out) do added = added + f end
redis.call('HINCRBY', KEYS[2], 'ingested', added)
return out
"""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                "errors": self.errors}

    def merge(self, other: "IngestResult", offset: int = 0) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        for e in other.errors:
            self.errors.append({**e, "index": e["index"] + offset})


class Ingestor:
    def __init__(self, r: redis.Redis, keys: Keys, *, max_future_skew_s: int = 900, dedup_retention_days: int = 90,
                 stream_maxlen: int = 5_000_000, dedup_buckets: int = 1024, pause: Pause | None = None) -> None:
        self.r = r
        self.k = keys
        self.skew_ms = max_future_skew_s * 1000
        self.dedup_ms = dedup_retention_days * DAY_MS
        self.maxlen = stream_maxlen
        self.wanted_buckets = dedup_buckets
        self.buckets = 0                 # the deployment's, read at the first ingest (data.keys.seen_buckets)
        self._script = r.register_script(_LUA)
        # A web process under gevent (cli.py serve, gunicorn -k gevent): validating a request
        # (a 1 MiB body holds ~3,000 events, ~50 ms of checks) gives way to the other sockets
        # (data.pace).
        self.pause = pause

    @classmethod
    def from_settings(cls, r: redis.Redis, settings: Any) -> "Ingestor":
        return cls(r, Keys.from_settings(r, settings), max_future_skew_s=settings.max_future_skew_s,
                   dedup_retention_days=settings.dedup_retention_days, stream_maxlen=settings.stream_maxlen,
                   dedup_buckets=settings.dedup_buckets, pause=loop_pause())

    def ingest(self, items: Iterable[Any], origin: str = "api") -> IngestResult:
        """Validate raw items; add the valid, new ones to the stream; dead-letter the rest."""
        now = now_ms()
        result = IngestResult()
        args: dict[int, list[Any]] = {}
        k = self.k
        dead: list[dict[str, Any]] = []
        batch_ids: set[str] = set()
        if not self.buckets:
            self.buckets = seen_buckets(self.r, k, self.wanted_buckets)
        buckets = self.buckets
        for index, item in enumerate(paced(items, self.pause)):
            ev, ts, errors = check_item(item, now, self.skew_ms)
            if ev is None:
                result.rejected += 1
                err = {"index": index, "id": item_id(item), "errors": errors}
                result.errors.append(err)
                dead.append({"reason": "; ".join(errors), "raw": _dump(item_raw(item)), "origin": origin,
                             "at": fmt_ms(now), "id": err["id"] or ""})
                continue
            if ev["id"] in batch_ids:      # a repeat inside one request is a duplicate too
                result.duplicates += 1
                continue
            batch_ids.add(ev["id"])
            day = ts // DAY_MS
            i = route(ev, k.partitions) if k.partitioned else 0
            bucket, fp = fingerprint(ev["id"], buckets)
            args.setdefault(i, []).extend(
                [k.part(i).seen(day, bucket), fp, orjson.dumps(ev), max((day + 1) * DAY_MS, now) + self.dedup_ms])
        failed: redis.ResponseError | None = None
        for i, part_args in args.items():
            pk = k.part(i)
            try:
                flags = self._script(keys=[pk.stream, pk.meta], args=part_args + [self.maxlen, 0])
            except redis.ResponseError as exc:     # another partition's events may still go in
                failed = failed or exc
                continue
            added = sum(int(f) for f in flags)
            result.accepted += added
            result.duplicates += len(flags) - added
        if dead:
            with self.r.pipeline(transaction=False) as p:
                for d in dead:
                    p.xadd(self.k.deadletter, d, maxlen=100_000, approximate=True)
                p.hincrby(self.k.meta, "ingest_rejected", len(dead))
                p.execute()
        if failed is not None:
            raise failed
        return result


    def dead_letter_body(self, body: bytes, reason: str, origin: str = "api") -> None:
        """Keep a request body that could not be read at all (truncated to 64 KiB)."""
        self.r.xadd(self.k.deadletter, {"reason": reason, "raw": body[:65536], "origin": origin,
                                        "at": fmt_ms(now_ms()), "id": ""}, maxlen=100_000, approximate=True)
        self.r.hincrby(self.k.meta, "ingest_rejected", 1)


_SHALLOW = reprlib.Repr()
_SHALLOW.maxlevel, _SHALLOW.maxstring, _SHALLOW.maxother = 32, 4096, 4096


def _dump(raw: Any) -> bytes:
    if raw is None:
        return b""
    try:
        return orjson.dumps(raw)
    except TypeError:
        # Not JSON-serialisable, or nested past orjson's 255 levels: reprlib's depth-limited
        # repr (plain repr recurses and fails on an event nested ~1,000 levels deep).
        return _SHALLOW.repr(raw).encode()


def dead_letters(r: redis.Redis, keys: Keys, count: int = 100) -> list[dict[str, Any]]:
    """Newest rejected events first, for operators."""
    out = []
    streams = [keys.deadletter] + ([pk.deadletter for pk in keys.parts()] if keys.partitioned else [])
    for stream in streams:     # partitioned: the aggregators' rejections are in their partitions
        for entry_id, fields in r.xrevrange(stream, count=count):
            row = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
            row["entry"] = entry_id.decode()
            out.append(row)
    if len(streams) > 1:
        out.sort(key=lambda row: tuple(int(x) for x in row["entry"].split("-")), reverse=True)
    return out[:count]
