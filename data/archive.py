"""The event archive: raw events past the hot window, as Parquet files by day, read with DuckDB.

Redis keeps the raw events of the hot window (`raw_hot_hours`, default 48 h) in `{p}:raw:<day>`
with their indexes (`{p}:rawidx:<type>:<day>`, `{p}:eix:<wf|ac>:<id>`); data.archive_move moves
older days here. Layout, one folder per event day (UTC)::

    <archive_dir>/<prefix>/events/day=YYYY-MM-DD/part-00000.parquet   (zstd, sorted by type, ts, id)

Columns: `id`, `type`, `ts` (ms, the index score), `workflow_id`, `agent_id`, `reviewer`,
`found_by` (the ids the entity-event index files an event under, data.contrib.entity_refs) and
`e`, the event JSON exactly as the raw store kept it — so a row read from here is byte for
byte the row Redis gave before the move.

Readers (data.rawstore, data.entity_reader) ask Redis and, for days that have a folder here,
this module, and merge the two newest first by (ts, id), dropping repeats: an event may be in
both for a moment (written here, not yet deleted there) or arrive late for a day already moved
(then it is in Redis until the next move adds a further part). Every query names its files and
is bounded (filters on type, day, ts, entity; LIMIT). One DuckDB connection per thread.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from data.keys import Keys
from data.timeutil import DAY_MS

ARCHIVE_LOCK = "{p}:archive:lock"   # string: the archiver's lock (token, PX): one mover at a time
ARCHIVE_META = "{p}:archive:meta"   # hash: last_run_ms, last_day, rows_written, rows_moved (data.archive_move)
COLUMNS = ("id", "type", "ts", "workflow_id", "agent_id", "reviewer", "found_by", "e")
ACTOR_FIELDS = ("agent_id", "reviewer", "found_by")
_PART = re.compile(r"^part-(\d+)\.parquet$")
_DAY = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")

_configured: dict[str, "Archive"] = {}
_local = threading.local()
_db: Any = None
_db_lock = threading.Lock()


def day_name(day: int) -> str:
    return "day=" + datetime.fromtimestamp(day * 86_400, tz=timezone.utc).strftime("%Y-%m-%d")


def day_of_name(name: str) -> int | None:
    m = _DAY.match(name)
    if not m:
        return None
    return int(datetime.strptime(m.group(1), "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()) // 86_400


def directory(settings: Any) -> Path:
    """Where the archive lives: `archive_dir`, else `<data_dir>/archive`."""
    return Path(settings.archive_dir or os.path.join(settings.data_dir, "archive"))


def configure(keys: Keys, settings: Any) -> "Archive":
    """Make the archive of this deployment (key prefix and database) known to every reader
    in the process (readers are handed a Redis client and Keys, nothing else)."""
    arch = Archive(directory(settings), keys.p)
    _configured[keys.n] = arch
    return arch


def of(keys: Keys) -> "Archive | None":
    """The archive configured for these keys, or None (Redis only, as before the archive)."""
    return _configured.get(keys.n)


def forget(keys: Keys) -> None:
    _configured.pop(keys.n, None)


def connection() -> Any:
    """This thread's (or greenlet's) DuckDB connection: a cursor of one in-memory database per
    process (cheap to make; a DuckDB connection must not be shared between threads). It only
    reads Parquet files."""
    con = getattr(_local, "con", None)
    if con is None:
        global _db
        with _db_lock:
            if _db is None:
                import duckdb
                _db = duckdb.connect(":memory:", config={"threads": 1})
            con = _db.cursor()
        _local.con = con
    return con


def _sql_list(items: Iterable[str]) -> str:
    return "[" + ", ".join("'" + str(i).replace("'", "''") + "'" for i in items) + "]"


class Archive:
    """One deployment's archive folder (`<root>/<prefix>/events`)."""

    def __init__(self, root: str | os.PathLike[str], prefix: str) -> None:
        self.base = Path(root) / prefix / "events"

    # --- layout ---------------------------------------------------------------------------------
    def day_dir(self, day: int) -> Path:
        return self.base / day_name(day)

    def parts(self, day: int) -> list[Path]:
        """The day's part files, in order (a folder without parts is no archived day)."""
        try:
            names = os.listdir(self.day_dir(day))
        except FileNotFoundError:
            return []
        return sorted((self.day_dir(day) / n for n in names if _PART.match(n)), key=lambda p: p.name)

    def days(self) -> list[int]:
        """Every archived day, oldest first."""
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return []
        days = [d for d in (day_of_name(n) for n in names) if d is not None]
        return sorted(d for d in days if self.parts(d))

    def files(self, days: Iterable[int]) -> list[str]:
        return [str(p) for d in days for p in self.parts(d)]

    def days_between(self, lo: int | None, hi: int | None) -> list[int]:
        """Archived days that may hold timestamps in [lo, hi) (None: unbounded)."""
        return [d for d in self.days() if (lo is None or (d + 1) * DAY_MS > lo) and (hi is None or d * DAY_MS < hi)]

    def prune(self, before: int) -> list[int]:
        """Remove the archived days before day `before` (the retention): each day's folder is
        first renamed out of the readers' sight in one step (`.pruned-day=…`, the folder
        fsynced), then deleted; leftovers of a crash between the two go at the next call."""
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return []
        gone: list[int] = []
        for name in names:
            day = day_of_name(name)
            if day is not None and day < before:
                os.rename(self.base / name, self.base / (".pruned-" + name))
                gone.append(day)
        if gone:
            fd = os.open(self.base, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for name in os.listdir(self.base):
            if name.startswith(".pruned-"):
                shutil.rmtree(self.base / name, ignore_errors=True)
        return sorted(gone)

    # --- queries --------------------------------------------------------------------------------
    def _query(self, files: Sequence[str], select: str, where: str, params: list[Any], tail: str = "") -> list[Any]:
        if not files:
            return []
        sql = f"SELECT {select} FROM read_parquet({_sql_list(files)}) WHERE {where} {tail}"
        return connection().execute(sql, params).fetchall()

    def rev(self, types: Sequence[str], day: int, lo: int, hi: int, below: tuple[int, str] | None,
            chunk: int) -> Iterator[tuple[int, bytes, bytes]]:
        """(ts, id, event JSON) of `types` on `day` with lo <= ts < hi and (ts, id) < below,
        newest first, `chunk` rows per query (keyset pages: no OFFSET)."""
        files = self.files([day])
        if not files or not types:
            return
        top: tuple[int, str] | None = below if below is not None and below[0] < hi else None
        while True:
            where = "type IN (SELECT unnest(?)) AND ts >= ? AND ts < ?"
            params: list[Any] = [list(types), lo, hi]
            if top is not None:
                where += " AND (ts < ? OR (ts = ? AND id < ?))"
                params += [top[0], top[0], top[1]]
            got = self._query(files, "ts, id, e", where, params, f"ORDER BY ts DESC, id DESC LIMIT {int(chunk)}")
            for ts, ident, body in got:
                yield ts, ident.encode(), bytes(body)
            if len(got) < chunk:
                return
            top = (got[-1][0], got[-1][1])

    def bodies(self, refs: Iterable[tuple[int, str]]) -> dict[str, bytes]:
        """{id: event JSON} of these (ts, id), where archived."""
        by_day: dict[int, set[str]] = {}
        for ts, ident in refs:
            by_day.setdefault(ts // DAY_MS, set()).add(ident)
        out: dict[str, bytes] = {}
        for day, ids in by_day.items():
            for pos in range(0, len(ids), 5000):
                part = sorted(ids)[pos:pos + 5000]
                for ident, body in self._query(self.files([day]), "id, e", "id IN (SELECT unnest(?))", [part]):
                    out[ident] = bytes(body)
        return out

    @staticmethod
    def _entity_where(kind: str) -> str:
        return "workflow_id = ?" if kind == "wf" else "(" + " OR ".join(f"{f} = ?" for f in ACTOR_FIELDS) + ")"

    @staticmethod
    def _entity_params(kind: str, ident: str) -> list[Any]:
        return [ident] if kind == "wf" else [ident] * len(ACTOR_FIELDS)

    def entity(self, kind: str, ident: str, lo: int | None, hi: int | None,
               limit: int | None = None) -> list[tuple[bytes, int, bytes]]:
        """(id, ts, event JSON) of one workflow's ("wf") or actor's ("ac") events with
        lo <= ts < hi, newest first (the entity-event index's order)."""
        files = self.files(self.days_between(lo, hi))
        where = self._entity_where(kind)
        params = self._entity_params(kind, ident)
        if lo is not None:
            where, params = where + " AND ts >= ?", params + [lo]
        if hi is not None:
            where, params = where + " AND ts < ?", params + [hi]
        tail = "ORDER BY ts DESC, id DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [(i.encode(), ts, bytes(b)) for i, ts, b in self._query(files, "id, ts, e", where, params, tail)]

    def workflows_of_type(self, workflow_ids: Sequence[str], etype: str, lo: int,
                          hi: int) -> list[tuple[bytes, int, bytes]]:
        """(id, ts, JSON) of archived events of one type on any of these workflows with lo <= ts < hi."""
        files = self.files(self.days_between(lo, hi))
        out: list[tuple[bytes, int, bytes]] = []
        for pos in range(0, len(workflow_ids), 5000):
            got = self._query(files, "id, ts, e", "type = ? AND workflow_id IN (SELECT unnest(?)) AND ts >= ? AND ts < ?",
                              [etype, list(workflow_ids[pos:pos + 5000]), lo, hi], "ORDER BY ts, id")
            out += [(i.encode(), ts, bytes(b)) for i, ts, b in got]
        return out

    def at(self, wants: Sequence[tuple[str, str, int]]) -> list[list[tuple[bytes, bytes]]]:
        """For each (kind, id, ts): [(event id, JSON)] of that workflow's or actor's archived
        events stamped exactly ts. One query per day for all the wants of that day."""
        out: list[list[tuple[bytes, bytes]]] = [[] for _ in wants]
        by_day: dict[int, list[int]] = {}
        for pos, (_k, _i, ts) in enumerate(wants):
            by_day.setdefault(ts // DAY_MS, []).append(pos)
        for day, positions in by_day.items():
            files = self.files([day])
            if not files:
                continue
            stamps = sorted({wants[p][2] for p in positions})
            rows = self._query(files, "id, ts, workflow_id, agent_id, reviewer, found_by, e",
                               "ts IN (SELECT unnest(?))", [stamps], "ORDER BY id")
            at_ts: dict[int, list[Any]] = {}
            for row in rows:
                at_ts.setdefault(row[1], []).append(row)
            for p in positions:
                kind, ident, ts = wants[p]
                for row in at_ts.get(ts, ()):
                    if (row[2] == ident) if kind == "wf" else ident in row[3:6]:
                        out[p].append((row[0].encode(), bytes(row[6])))
        return out

    def of_type_at(self, etype: str, stamps: Iterable[int]) -> list[tuple[bytes, int, bytes]]:
        """(id, ts, JSON) of archived events of one type stamped at any of these times."""
        by_day: dict[int, set[int]] = {}
        for ts in stamps:
            by_day.setdefault(ts // DAY_MS, set()).add(ts)
        out: list[tuple[bytes, int, bytes]] = []
        for day, tss in by_day.items():
            got = self._query(self.files([day]), "id, ts, e", "type = ? AND ts IN (SELECT unnest(?))",
                              [etype, sorted(tss)])
            out += [(i.encode(), ts, bytes(b)) for i, ts, b in got]
        return out

    def any_between(self, s: int, e: int) -> bool:
        """Whether any archived event has s <= ts < e."""
        files = self.files(self.days_between(s, e))
        return bool(self._query(files, "1", "ts >= ? AND ts < ?", [s, e], "LIMIT 1"))

    def ids(self, day: int, among: Sequence[str] | None = None) -> set[str]:
        """The event ids archived for a day (the mover skips those: a re-run doubles nothing);
        `among`: only those of these ids (one slice's: a day moved in many parts, as the day the
        hot window starts in is, is never read whole)."""
        if among is None:
            return {i for (i,) in self._query(self.files([day]), "id", "true", [])}
        if not among:
            return set()
        return {i for (i,) in self._query(self.files([day]), "id", "id IN (SELECT unnest(?::VARCHAR[]))",
                                          [list(among)])}

    def day_rows(self, day: int) -> list[tuple[str, int, bytes]]:
        """(id, ts, JSON) of every archived event of a day, by (ts, id) (cli.py rebuild)."""
        return [(i, ts, bytes(b)) for i, ts, b in self._query(self.files([day]), "id, ts, e", "true", [],
                                                               "ORDER BY ts, id")]

    def stats(self) -> dict[str, int]:
        """Days, part files, rows and bytes on disk (bench/memory.py: bytes per event)."""
        import pyarrow.parquet as pq
        days = self.days()
        files = [p for d in days for p in self.parts(d)]
        rows = sum(pq.read_metadata(p).num_rows for p in files)
        return {"days": len(days), "files": len(files), "rows": rows, "bytes": sum(p.stat().st_size for p in files)}
