"""POST /api/events on a real Redis: every path of EVENTS.md's bad-input rules, with the
accounting invariant accepted + duplicates + rejected = sent and the rejected kept in the
dead-letter store."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms, parse_iso

K = Keys("qms")


def ev(i: int | str, type_: str = "workflow.quality_gate_executed", ago_s: int = 60, **data: Any) -> dict[str, Any]:
    base = {"workflow_id": "WF-1", "gate_name": "lint-gate", "passed": True}
    return {"id": f"e-{i}", "type": type_, "timestamp": fmt_ms(now_ms() - ago_s * 1000), "source": "test",
            "data": data or base}


def post(client: Any, body: Any, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/api/events", data=raw, content_type=content_type)


def stream_len(r: Any) -> int:
    return r.xlen(K.stream) if r.exists(K.stream) else 0


def deadletters(r: Any) -> list[dict[bytes, bytes]]:
    return [f for _, f in r.xrange(K.deadletter)] if r.exists(K.deadletter) else []


def test_ing001_four_forms_are_accepted(client: Any, r: Any) -> None:
    assert post(client, {"event": ev(1)}).json["accepted"] == 1
    assert post(client, ev(2)).json["accepted"] == 1
    res = post(client, {"events": [ev(3), {"event": ev(4)}]})
    assert res.status_code == 202 and res.json["accepted"] == 2
    lines = b"\n".join(orjson.dumps(x) for x in (ev(5), {"event": ev(6)}, ev(7)))
    res = post(client, lines, "application/x-ndjson")
    assert res.status_code == 202 and res.json == {"accepted": 3, "duplicates": 0, "rejected": 0, "errors": []}
    assert stream_len(r) == 7


def test_ing002_duplicates_count_once_within_and_across_requests(client: Any, r: Any) -> None:
    res = post(client, {"events": [ev(1), ev(1), ev(2)]})
    assert (res.json["accepted"], res.json["duplicates"]) == (2, 1)
    res = post(client, {"events": [ev(1), ev(2)]})
    assert res.status_code == 202, "all duplicates is still a valid request"
    assert (res.json["accepted"], res.json["duplicates"], res.json["rejected"]) == (0, 2, 0)
    assert stream_len(r) == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("id"), "id: required"),
    (lambda e: e.update(id=""), "id: must be a string of 1-128 characters"),
    (lambda e: e.update(id="x" * 129), "id: must be a string of 1-128 characters"),
    (lambda e: e.pop("type"), "type: required"),
    (lambda e: e.update(type="billing.invoice_paid"), "type: must be category.name"),
    (lambda e: e.pop("timestamp"), "timestamp: required"),
    (lambda e: e.update(timestamp="2025-08-17T06:23:14"), "timestamp: no time zone"),
    (lambda e: e.update(timestamp="yesterday"), "timestamp: not ISO 8601"),
    (lambda e: e.pop("source"), "source: required"),
    (lambda e: e["data"].pop("passed"), "data.passed: required"),
    (lambda e: e["data"].update(passed="yes"), "data.passed: must be true or false"),
    (lambda e: e.update(metadata={"priority": "urgent"}), "metadata.priority: must be one of"),
    (lambda e: e.update(timestamp=fmt_ms(now_ms() + 3_600_000)), "timestamp: more than 900 s in the future"),
])
def test_ing003_each_contract_violation_is_named(client: Any, r: Any, mutate: Any, message: str) -> None:
    bad = ev("bad")
    mutate(bad)
    res = post(client, {"events": [ev(1), bad]})
    assert res.status_code == 202
    body = res.json
    assert (body["accepted"], body["rejected"]) == (1, 1)
    err = body["errors"][0]
    assert err["index"] == 1
    expected_id = bad.get("id")[:128] if isinstance(bad.get("id"), str) and bad.get("id") else None
    assert err["id"] == expected_id
    assert any(m.startswith(message) for m in err["errors"]), err
    dl = deadletters(r)
    assert len(dl) == 1 and message.split(":")[0].encode() in dl[0][b"reason"]
    assert orjson.loads(dl[0][b"raw"]) == bad, "the rejected event is kept as sent"


def test_ing004_all_invalid_is_400(client: Any, r: Any) -> None:
    res = post(client, {"events": [{"id": "x"}, {"type": "workflow.pr_created"}]})
    assert res.status_code == 400
    assert (res.json["accepted"], res.json["duplicates"], res.json["rejected"]) == (0, 0, 2)
    assert [e["index"] for e in res.json["errors"]] == [0, 1]
    assert len(deadletters(r)) == 2 and stream_len(r) == 0


@pytest.mark.parametrize("body", [b"not json at all", b"{\"events\": [", b"[1, 2, 3]", b"   "])
def test_ing005_unreadable_body_is_400_and_kept(client: Any, r: Any, body: bytes) -> None:
    res = post(client, body)
    assert res.status_code == 400
    assert res.json["rejected"] == 1 and res.json["errors"][0]["errors"]
    assert len(deadletters(r)) == 1


def test_ing006_json_lines_with_a_broken_line(client: Any, r: Any) -> None:
    lines = orjson.dumps(ev(1)) + b"\n{broken\n" + orjson.dumps(ev(2))
    res = post(client, lines, "application/x-ndjson")
    assert res.status_code == 202
    assert (res.json["accepted"], res.json["rejected"]) == (2, 1)
    assert res.json["errors"][0]["index"] == 1
    assert deadletters(r)[0][b"raw"].startswith(b'"{broken')


def test_ing007_size_limits_answer_413(client: Any, r: Any, settings: Any) -> None:
    big = ev(1)
    big["data"]["notes"] = "x" * (70 * 1024)
    res = post(client, {"events": [ev(2), big]})
    assert res.status_code == 413 and "larger than 65536 bytes" in res.json["response"]["error"]["message"]
    res = post(client, {"events": [ev(i) for i in range(10_001)]})
    assert res.status_code == 413
    many = {"events": [ev(i, notes="y" * 200) for i in range(5000)]}
    res = post(client, many)
    assert res.status_code == 413 and "1048576" in res.json["response"]["error"]["message"]
    assert stream_len(r) == 0


def test_ing008_unknown_types_and_extra_fields_are_kept(client: Any, r: Any) -> None:
    odd = ev(1, "workflow.reticulated", ago_s=10, spline=3)
    odd["extra_top_level"] = {"kept": True}
    res = post(client, odd)
    assert res.json["accepted"] == 1
    Aggregator(r, K).drain()
    stored = orjson.loads(r.hget(K.raw(parse_iso(odd["timestamp"]) // 86_400_000), "e-1"))
    assert stored["extra_top_level"] == {"kept": True} and stored["data"]["spline"] == 3
    assert b"workflow.reticulated" in r.smembers(K.registry("types"))


def test_ing009_accounting_adds_up_on_a_mixed_stream(client: Any, r: Any) -> None:
    sent = 0
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for round_ in range(3):
        batch = [ev(i) for i in range(round_ * 5, round_ * 5 + 8)] + [{"id": f"bad{round_}"}, "nope"]
        sent += len(batch)
        body = post(client, {"events": batch}).json
        for k in totals:
            totals[k] += body[k]
    assert sum(totals.values()) == sent
    assert totals["rejected"] == len(deadletters(r)) == 6
    assert totals["accepted"] == stream_len(r) == 18
    Aggregator(r, K).drain()
    assert int(r.hget(K.meta, "applied")) == 18


def test_ing010_deadletter_endpoint_lists_reasons(client: Any, r: Any) -> None:
    post(client, {"events": [ev(1), {"id": "x", "type": "workflow.pr_created"}]})
    rows = client.get("/api/deadletter").json["response"]["data"]["events"]
    assert rows[0]["id"] == "x" and "timestamp: required" in rows[0]["reason"]
