"""The archive's files and queries without Redis (data.archive, data.archive_move._write_part):
newest-first pages with ties at one timestamp, entity and exact-time lookups, day folders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from data.archive import Archive, day_name, day_of_name
from data.archive_move import _write_part
from data.timeutil import DAY_MS, fmt_ms

DAY = 20_000                      # 2024-10-04


def ev(i: int, ts: int, etype: str = "workflow.quality_gate_executed", **data: Any) -> tuple[str, str, int, Any, bytes]:
    e = {"id": f"e{i:03d}", "type": etype, "timestamp": fmt_ms(ts), "data": data}
    return (e["id"], etype, ts, e, orjson.dumps(e))


def make(tmp_path: Path) -> tuple[Archive, list[Any]]:
    arch = Archive(tmp_path, "qms")
    t0 = DAY * DAY_MS
    rows = [ev(i, t0 + (i // 3) * 1000, workflow_id=f"W{i % 4}", agent_id=f"a{i % 2}") for i in range(30)]
    rows.append(ev(99, t0 + 5000, "workflow.review_completed", workflow_id="W1", reviewer="a1"))
    _write_part(arch, DAY, rows[:20])
    _write_part(arch, DAY, rows[20:])
    return arch, rows


def test_uarc001_day_folders_round_trip() -> None:
    assert day_name(DAY) == "day=2024-10-04" and day_of_name("day=2024-10-04") == DAY
    assert day_of_name("day=nope") is None and day_of_name(".part-1.tmp") is None


def test_uarc002_rev_pages_newest_first_across_parts_and_ties(tmp_path: Path) -> None:
    arch, rows = make(tmp_path)
    assert [p.name for p in arch.parts(DAY)] == ["part-00000.parquet", "part-00001.parquet"]
    gates = sorted(((r[2], r[0]) for r in rows if r[1] == "workflow.quality_gate_executed"), reverse=True)
    got: list[tuple[int, str]] = []
    below = None
    lo, hi = DAY * DAY_MS, (DAY + 1) * DAY_MS
    while True:                                   # pages of 4 whose edges fall inside ties
        page = list(arch.rev(["workflow.quality_gate_executed"], DAY, lo, hi, below, 4))[:4]
        if not page:
            break
        got += [(ts, i.decode()) for ts, i, _ in page]
        below = got[-1]
    assert got == gates
    one = next(arch.rev(["workflow.review_completed"], DAY, lo, hi, None, 10))
    assert one[2] == rows[-1][4]                  # the JSON exactly as written


def test_uarc003_entity_and_exact_time_lookups(tmp_path: Path) -> None:
    arch, rows = make(tmp_path)
    t0 = DAY * DAY_MS
    wf1 = [r for r in rows if r[3]["data"].get("workflow_id") == "W1"]
    got = arch.entity("wf", "W1", None, None)
    assert [(i.decode(), ts) for i, ts, _ in got] == sorted(((r[0], r[2]) for r in wf1), key=lambda x: (x[1], x[0]),
                                                           reverse=True)
    a1 = [r[0] for r in rows if "a1" in (r[3]["data"].get("agent_id"), r[3]["data"].get("reviewer"))]
    assert sorted(i.decode() for i, _, _ in arch.entity("ac", "a1", t0, t0 + DAY_MS)) == sorted(a1)
    assert arch.entity("ac", "a1", t0 + DAY_MS, None) == []
    at = arch.at([("wf", "W1", t0 + 5000), ("ac", "a0", t0), ("wf", "W9", t0)])
    assert [i for i, _ in at[0]] == [b"e017", b"e099"] and [i for i, _ in at[1]] == [b"e000", b"e002"] and at[2] == []
    assert arch.bodies([(t0, "e001"), (t0 + 5000, "e099"), (t0, "nope")]) == {"e001": rows[1][4], "e099": rows[-1][4]}
    assert arch.any_between(t0, t0 + 1) and not arch.any_between(t0 + 11_000, t0 + DAY_MS)
    assert arch.stats()["rows"] == 31 and len(arch.ids(DAY)) == 31


def test_uarc004_a_temporary_file_is_no_part(tmp_path: Path) -> None:
    arch, _ = make(tmp_path)
    (arch.day_dir(DAY) / ".part-00002.abc.tmp").write_bytes(b"half")
    (arch.day_dir(DAY + 1)).mkdir()
    assert len(arch.parts(DAY)) == 2 and arch.days() == [DAY]


def test_uarc005_rebuild_refuses_redis_cluster() -> None:
    """K partitions on one Redis are rebuilt (tests/integration/test_archive_rebuild.py); a
    cluster is refused before anything is read: its swap would span every partition's slot."""
    import pytest

    from data.archive_rebuild import rebuild
    from settings import Settings

    class ClusterClient:                  # no connection_pool: data.keys takes it for RedisCluster
        pass
    with pytest.raises(ValueError, match="Redis Cluster"):
        rebuild(ClusterClient(), Settings.from_env({}, aggregation_partitions=2), 0)   # type: ignore[arg-type]


def test_uarc010_prune_removes_the_days_before_the_retention_whole(tmp_path: Path) -> None:
    """Days older than the retention go whole (renamed out of the readers' sight first; a
    leftover of a crash in between is removed at the next call); later days stay as they were."""
    arch = Archive(tmp_path, "qms")
    for day in (DAY - 2, DAY - 1, DAY, DAY + 1):
        _write_part(arch, day, [ev(day - DAY + 10, day * DAY_MS + 5, workflow_id="W1")])
    (arch.base / (".pruned-" + day_name(DAY - 9))).mkdir()          # a crash between rename and delete
    kept = {d: arch.day_rows(d) for d in (DAY, DAY + 1)}
    assert arch.prune(DAY) == [DAY - 2, DAY - 1]
    assert arch.days() == [DAY, DAY + 1]
    assert {d: arch.day_rows(d) for d in (DAY, DAY + 1)} == kept
    assert sorted(p.name for p in arch.base.iterdir()) == [day_name(DAY), day_name(DAY + 1)]
    assert sorted(ts for _i, ts, _ in arch.entity("wf", "W1", None, None)) == [DAY * DAY_MS + 5, (DAY + 1) * DAY_MS + 5]
    assert arch.prune(DAY) == []


def test_uarc011_retention_setting_keeps_every_window_the_rollups_answer() -> None:
    """0 keeps every day; otherwise at least the longest rollup retention + 1 day, so a KPI the
    rollups still answer can be drilled down to its events."""
    import pytest

    from data.timeutil import RESOLUTIONS
    from settings import ARCHIVE_MIN_DAYS, Settings, SettingsError
    assert ARCHIVE_MIN_DAYS == max(res.retention_ms for res in RESOLUTIONS) // DAY_MS + 1
    assert Settings.from_env({}).archive_retention_days == 0
    assert Settings.from_env({"QMS_ARCHIVE_RETENTION_DAYS": "400"}).archive_retention_days == 400
    for bad in ("30", "-1"):
        with pytest.raises(SettingsError, match="archive_retention_days"):
            Settings.from_env({"QMS_ARCHIVE_RETENTION_DAYS": bad})


def test_uarc012_ids_among_a_slice_reads_only_those_across_parts(tmp_path: Path) -> None:
    """The mover asks which of a slice's ids a day's parts hold (a re-run doubles nothing)
    without reading every id of a day moved in many parts."""
    arch, rows = make(tmp_path)
    assert arch.ids(DAY) == {r[0] for r in rows}
    assert arch.ids(DAY, ["e005", "e025", "e099", "nope", "it's \"quoted\""]) == {"e005", "e025", "e099"}
    assert arch.ids(DAY, []) == set()
    assert arch.ids(DAY + 1, ["e005"]) == set()          # a day without parts
