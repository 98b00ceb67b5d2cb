"""The audit log on a real Redis: append, read back newest first, filter, export."""
from __future__ import annotations

import csv
import io
from typing import Any, Iterator

import orjson
import pytest

from data.audit import AUDIT, Action, AuditLog, to_csv
from data.timeutil import parse_iso

T0 = 1_755_412_994_000  # 2025-08-17T06:43:14Z


class Clock:
    """A settable clock: entries get the times the test chooses."""

    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t

    def tick(self, ms: int = 1000) -> int:
        self.t += ms
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(r: Any, clock: Clock) -> Iterator[AuditLog]:
    yield AuditLog(r, prefix="qms", clock=clock)


def fill(log: AuditLog, clock: Clock) -> None:
    log.record("auth.sign_in", "alice", ip="10.0.0.1")                      # T0
    clock.tick()
    log.record("user.dashboard_accessed", "alice", details={"dashboard": "qa"})  # T0+1s
    clock.tick()
    log.record("auth.sign_in_failed", "bob", ip="10.0.0.2", outcome="failed")   # T0+2s
    clock.tick()
    log.record(Action.USER_ADDED, "admin", details={"added": "carol", "roles": ["developer"]})  # T0+3s
    clock.tick()
    log.record("authz.denied", "bob", details={"path": "/admin"}, outcome="denied")  # T0+4s


def test_aud001_record_shape_and_storage(r: Any, log: AuditLog) -> None:
    entry = log.record("user.export_requested", "alice", ip="10.0.0.1", details={"kpi": "gate_pass_rate"})
    assert entry["id"].startswith("aud-")
    assert entry["type"] == "user.export_requested"
    assert entry["timestamp"] == "2025-08-17T06:43:14.000Z" and parse_iso(entry["timestamp"]) == T0
    assert entry["source"] == "qms-dashboard"
    assert entry["data"] == {"user": "alice", "ip": "10.0.0.1", "outcome": "ok", "kpi": "gate_pass_rate"}
    assert entry["metadata"] == {"priority": "normal"}
    key = AUDIT.format(p="qms")
    assert r.type(key) == b"stream" and r.xlen(key) == 1
    sid, fields = r.xrange(key)[0]
    assert sid.startswith(f"{T0}-".encode())           # the stream id carries the entry's time
    assert orjson.loads(fields[b"e"]) == entry


def test_aud002_query_newest_first(log: AuditLog, clock: Clock) -> None:
    fill(log, clock)
    got = log.query()
    assert [e["type"] for e in got] == ["authz.denied", "admin.user_added", "auth.sign_in_failed",
                                        "user.dashboard_accessed", "auth.sign_in"]
    assert [e["type"] for e in log.query(limit=2)] == ["authz.denied", "admin.user_added"]
    assert log.query(limit=0) == []


def test_aud003_filters_user_action_time(log: AuditLog, clock: Clock) -> None:
    fill(log, clock)
    assert [e["type"] for e in log.query(user="bob")] == ["authz.denied", "auth.sign_in_failed"]
    assert [e["type"] for e in log.query(action_prefix="auth.")] == ["auth.sign_in_failed", "auth.sign_in"]
    assert [e["type"] for e in log.query(user="alice", action_prefix="user.")] == ["user.dashboard_accessed"]
    # [start, end): start inclusive, end exclusive.
    window = log.query(start_ms=T0 + 1000, end_ms=T0 + 3000)
    assert [e["type"] for e in window] == ["auth.sign_in_failed", "user.dashboard_accessed"]
    assert [e["type"] for e in log.query(start_ms=T0 + 3000)] == ["authz.denied", "admin.user_added"]
    assert [e["type"] for e in log.query(end_ms=T0 + 1)] == ["auth.sign_in"]
    assert log.query(start_ms=T0 + 10_000) == [] and log.query(start_ms=T0 + 2000, end_ms=T0 + 2000) == []
    assert log.query(user="nobody") == []


def test_aud004_filtered_query_pages_past_non_matching(log: AuditLog, clock: Clock) -> None:
    # Many entries in the same millisecond and many non-matching ones: paging by stream id
    # must neither skip nor repeat entries.
    log.record("auth.sign_in", "carol")
    for i in range(2500):
        log.record("user.filter_applied", "dave", details={"n": i})
        if i % 10 == 0:
            clock.tick(1)
    log.record("auth.sign_out", "carol")
    assert [e["type"] for e in log.query(user="carol")] == ["auth.sign_out", "auth.sign_in"]
    dave = log.query(user="dave", limit=5000)
    assert [e["data"]["n"] for e in dave] == list(range(2499, -1, -1))
    assert len(log.query(limit=1200)) == 1200


def test_aud005_secret_like_detail_keys_dropped(log: AuditLog) -> None:
    entry = log.record("admin.password_changed", "admin", details={
        "target": "alice", "Password": "hunter2", "new_password": "x", "client_secret": "s",
        "API_TOKEN": "t", "nested": {"refresh_token": "r", "kept": 1}, "items": [{"secretKey": "k", "ok": True}]})
    data = log.query()[0]["data"]
    for stored in (entry["data"], data):
        assert stored == {"user": "admin", "ip": None, "outcome": "ok", "target": "alice",
                          "nested": {"kept": 1}, "items": [{"ok": True}]}
    assert b"hunter2" not in orjson.dumps(log.query())


def test_aud006_details_cannot_forge_reserved_fields(log: AuditLog) -> None:
    entry = log.record("auth.sign_in_failed", "mallory", outcome="failed",
                       details={"user": "admin", "outcome": "ok", "ip": "1.2.3.4"})
    assert entry["data"] == {"user": "mallory", "ip": None, "outcome": "failed"}


def test_aud007_bad_action_rejected(log: AuditLog) -> None:
    for bad in ("", "signin", "x" * 200):
        with pytest.raises(ValueError):
            log.record(bad, "alice")
    assert len(log) == 0


def test_aud008_csv_escapes_formulas(log: AuditLog) -> None:
    log.record("user.filter_applied", "=cmd|' /C calc'!A0", ip="+1+1", details={"q": "=HYPERLINK(1)"})
    log.record("auth.sign_out", "alice")
    text = to_csv(log.query())
    assert text == AuditLog.to_csv(log.query())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "type", "timestamp", "user", "ip", "outcome", "details"]
    assert rows[1][1] == "auth.sign_out" and rows[1][3:] == ["alice", "", "ok", ""]
    assert rows[2][3] == "'=cmd|' /C calc'!A0" and rows[2][4] == "'+1+1"
    assert orjson.loads(rows[2][6]) == {"q": "=HYPERLINK(1)"}   # a JSON object: starts with "{"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_aud009_maxlen_trims_approximately(r: Any, clock: Clock) -> None:
    small = AuditLog(r, prefix="qms", maxlen=10, clock=clock)
    for _ in range(1000):
        small.record("user.dashboard_accessed", "alice")
        clock.tick(1)
    # `MAXLEN ~` trims whole stream nodes (100 entries by default): never below maxlen,
    # never far above it.
    assert 10 <= len(small) <= 250
    newest = small.query(limit=1)[0]
    assert newest["timestamp"] == "2025-08-17T06:43:14.999Z"


def test_aud010_prefix_isolates_deployments(r: Any, clock: Clock) -> None:
    AuditLog(r, prefix="a", clock=clock).record("auth.sign_in", "alice")
    assert AuditLog(r, prefix="b", clock=clock).query() == []
    assert r.exists("a:audit") and not r.exists("b:audit")


def test_aud011_clock_behind_stream_still_records(r: Any, log: AuditLog, clock: Clock) -> None:
    # Another host with a clock ahead wrote first; this host's entry must still land.
    log.record("auth.sign_in", "alice")
    clock.t -= 60_000
    entry = log.record("auth.sign_out", "alice")
    assert entry["timestamp"] == "2025-08-17T06:42:14.000Z"
    assert [e["type"] for e in log.query()] == ["auth.sign_out", "auth.sign_in"]
