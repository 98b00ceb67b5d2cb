"""Entity pages' JSON (GET /api/entities/workflow|agent/<id>) on a real Redis, fed with
simulated QMS activity through the real ingest and aggregator. Every number is checked
against the simulated events themselves, not against the code under test."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.events import GATE_TYPES
from data.keys import Keys
from data.timeutil import DAY_MS, HOUR_MS, fmt_ms, now_ms, parse_iso
from tests.conftest import PASSWORD
from tests.helpers import busy_events

NOW = now_ms() // 60_000 * 60_000
START = NOW - 10 * HOUR_MS
SLA_MS = 8 * HOUR_MS                    # the settings' default sla_hours


def passed(e: dict[str, Any]) -> bool:
    return e["type"].endswith("_passed") or (e["type"] == "workflow.quality_gate_executed" and e["data"]["passed"])


@pytest.fixture(scope="module")
def simulated() -> list[dict[str, Any]]:
    return busy_events(10 - 1 / 60, NOW - 60_000, 5, 0.2)       # from START to a minute ago


@pytest.fixture
def loaded(app: Any, r: Any, simulated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    svc = app.server.extensions["qms"]
    for i in range(0, len(simulated), 5000):
        res = svc.ingestor.ingest(simulated[i:i + 5000], origin="test")
        assert res.rejected == 0, res.errors[:3]
    Aggregator(r, Keys(svc.settings.key_prefix), sla_hours=svc.settings.sla_hours).drain(120)
    return simulated


def of_workflow(events: list[dict[str, Any]], wf: str) -> list[dict[str, Any]]:
    return [e for e in events if e["data"].get("workflow_id") == wf]


def resolutions_of(events: list[dict[str, Any]], defect_ids: set[str]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "workflow.defect_resolved" and e["data"]["defect_id"] in defect_ids]


def pick_done(events: list[dict[str, Any]]) -> str:
    """A merged workflow that went through every step and had defects and a failed gate."""
    done = {e["data"]["workflow_id"] for e in events if e["type"] == "workflow.completed"
            and e["data"]["outcome"] == "merged"}
    created = {e["data"]["workflow_id"] for e in events if e["type"] == "workflow.pr_created"}
    scored = []
    for wf in sorted(done & created):
        evs = of_workflow(events, wf)
        types = Counter(e["type"] for e in evs)
        failed = sum(1 for e in evs if e["type"] in GATE_TYPES and not passed(e))
        scored.append((types["workflow.defect_found"] > 0, failed > 0, len(evs), wf))
    return max(scored)[3]


def body(res: Any) -> dict[str, Any]:
    assert res.status_code == 200, res.data[:300]
    return res.json["response"]["data"]


def test_ent101_a_finished_workflow_matches_its_events(client: Any, loaded: list[dict[str, Any]]) -> None:
    wf = pick_done(loaded)
    mine = sorted(of_workflow(loaded, wf), key=lambda e: (parse_iso(e["timestamp"]), e["id"]))
    defects = {e["data"]["defect_id"] for e in mine if e["type"] == "workflow.defect_found"}
    resolved = resolutions_of(loaded, defects)
    doc = body(client.get(f"/api/entities/workflow/{wf}"))

    assert sorted(e["id"] for e in doc["events"]) == sorted(e["id"] for e in mine + resolved)
    gates = [e for e in mine if e["type"] in GATE_TYPES]
    assert doc["counts"]["gate_runs"] == len(gates) > 0
    assert doc["counts"]["gates_failed"] == sum(not passed(e) for e in gates) > 0
    costs = [e["data"]["cost_usd"] for e in mine if e["type"] == "workflow.review_completed"]
    assert doc["cost_usd"] == pytest.approx(sum(costs), abs=1e-9) and doc["counts"]["reviews_completed"] == len(costs)
    # The simulator walks the four steps in order: each lasts until the next one is entered.
    created = parse_iso(next(e for e in mine if e["type"] == "workflow.pr_created")["timestamp"])
    done = parse_iso(next(e for e in mine if e["type"] == "workflow.completed")["timestamp"])
    entered = [(e["data"]["step"], parse_iso(e["timestamp"])) for e in mine if e["type"] == "workflow.step_entered"]
    bounds = [created] + [t for _, t in entered] + [done]
    expected = {"created": bounds[1] - bounds[0], **{s: bounds[i + 2] - bounds[i + 1] for i, (s, _) in enumerate(entered)}}
    assert {s["step"]: s["time_ms"] for s in doc["steps"]} == expected
    assert sum(expected.values()) == done - created
    sla = doc["sla"]
    assert sla["status"] == ("met" if done - created <= SLA_MS else "missed") and sla["elapsed_ms"] == done - created
    last = {}
    for e in sorted(resolved, key=lambda e: (parse_iso(e["timestamp"]), e["id"])):
        last[e["data"]["defect_id"]] = e["data"]["resolution"]
    assert {d["defect_id"]: d["resolution"] for d in doc["defects"]} == {d: last.get(d) for d in defects}
    found_by = {e["data"]["defect_id"]: e["data"].get("found_by") for e in mine if e["type"] == "workflow.defect_found"}
    assert {d["defect_id"]: d["found_by"] for d in doc["defects"]} == found_by
    assert doc["summary"]["outcome"] == "merged" and doc["summary"]["current_step"] is None


def test_ent102_an_open_workflow_counts_to_now(client: Any, loaded: list[dict[str, Any]]) -> None:
    done = {e["data"]["workflow_id"] for e in loaded if e["type"] == "workflow.completed"}
    opened = [e for e in loaded if e["type"] == "workflow.pr_created" and e["data"]["workflow_id"] not in done]
    first = min(opened, key=lambda e: e["timestamp"])           # the oldest open one: long in its step
    wf, created = first["data"]["workflow_id"], parse_iso(first["timestamp"])
    steps = [e for e in of_workflow(loaded, wf) if e["type"] == "workflow.step_entered"]
    before = now_ms()
    doc = body(client.get(f"/api/entities/workflow/{wf}"))
    after = now_ms()
    sla = doc["sla"]
    assert sla["open"] is True and sla["due"] == fmt_ms(created + SLA_MS)
    assert created + SLA_MS - after <= sla["time_left_ms"] <= created + SLA_MS - before
    assert sla["status"] == ("open" if sla["time_left_ms"] >= 0 else "missed")
    assert doc["summary"]["current_step"] == (max(steps, key=lambda e: e["timestamp"])["data"]["step"] if steps else None)
    open_steps = [s for s in doc["steps"] if s["open"]]
    assert len(open_steps) == 1
    assert sum(s["time_ms"] for s in doc["steps"]) == pytest.approx(after - created, abs=after - before + 1)


def test_ent103_an_agent_matches_its_events(client: Any, loaded: list[dict[str, Any]]) -> None:
    agent = "qms-code-reviewer"
    end = NOW
    inside = [e for e in loaded if end - DAY_MS <= parse_iso(e["timestamp"]) < end]
    doc = body(client.get(f"/api/entities/agent/{agent}?timeframe=24h&end={fmt_ms(end)}"))
    c = doc["counts"]
    gates = [e for e in inside if e["type"] in GATE_TYPES and e["data"].get("agent_id") == agent]
    assert (c["gate_runs"], c["gates_failed"]) == (len(gates), sum(not passed(e) for e in gates))
    started = [e for e in inside if e["type"] == "workflow.review_started" and e["data"]["reviewer"] == agent]
    completed = [e for e in inside if e["type"] == "workflow.review_completed" and e["data"]["reviewer"] == agent]
    assert (c["reviews_started"], c["reviews_completed"]) == (len(started), len(completed)) and completed
    assert c["review_cost_usd"] == pytest.approx(sum(e["data"]["cost_usd"] for e in completed), abs=1e-9)
    assert c["assignments"] == sum(1 for e in inside if e["type"] == "workflow.agent_assigned"
                                   and e["data"]["agent_id"] == agent)
    found = [e for e in inside if e["type"] == "workflow.defect_found" and e["data"].get("found_by") == agent]
    last: dict[str, tuple[str, str, str]] = {}
    for e in resolutions_of(loaded, {f["data"]["defect_id"] for f in found}):
        key = (e["timestamp"], e["id"], e["data"]["resolution"])
        d = e["data"]["defect_id"]
        if d not in last or (parse_iso(key[0]), key[1]) > (parse_iso(last[d][0]), last[d][1]):
            last[d] = key
    assert c["defects_found"] == len(found) > 0
    assert c["defects_resolved"] == len(last)
    assert c["false_positives"] == sum(v[2] == "false_positive" for v in last.values())
    status = sorted((parse_iso(e["timestamp"]), e["id"], e["data"]["status"]) for e in inside
                    if e["type"] == "system.agent_status_changed" and e["data"]["agent_id"] == agent)
    assert c["status_changes"] == len(status) and c["times_down"] == sum(s == "down" for _, _, s in status)
    # Known from its first status event (the simulation's start) to the window's end.
    assert sum(doc["time_in_status"].values()) == end - status[0][0]
    loads = {e["id"]: e["data"].get("load") for e in inside if e["type"] == "system.agent_status_changed"}
    assert [(p["status"], p["load"]) for p in doc["status_series"]] == [(s, loads[i]) for _, i, s in status]
    assert [g["id"] for g in doc["gate_runs"]] == [e["id"] for e in sorted(
        gates, key=lambda e: (parse_iso(e["timestamp"]), e["id"]), reverse=True)][:500]


def test_ent104_linter_gate_runs_and_a_short_window(client: Any, loaded: list[dict[str, Any]]) -> None:
    agent = "qms-style-linter"
    theirs = [e for e in loaded if e["type"] in GATE_TYPES and e["data"].get("agent_id") == agent]

    def within(end: int) -> list[dict[str, Any]]:
        return [e for e in theirs if end - HOUR_MS <= parse_iso(e["timestamp"]) < end]
    # The busiest hour (the simulator follows the time of day, so a fixed hour may be quiet).
    end = max((NOW - n * 10 * 60_000 for n in range(1, 50)), key=lambda t: len(within(t)))
    runs = within(end)
    doc = body(client.get(f"/api/entities/agent/{agent}?timeframe=1h&end={fmt_ms(end)}&limit=3"))
    assert doc["counts"]["gate_runs"] == len(runs) > 3 and len(doc["gate_runs"]) == 3
    assert doc["truncated"]["gate_runs"] is True
    assert doc["gates_by_name"] == {"lint-gate": {"runs": len(runs), "failed": sum(not passed(e) for e in runs)}}
    assert doc["window"] == {"start": fmt_ms(end - HOUR_MS), "end": fmt_ms(end)}


def test_ent105_who_may_see_what(app: Any, auth: Any, anon: Any, loaded: list[dict[str, Any]]) -> None:
    wf = pick_done(loaded)
    urls = {"workflow": f"/api/entities/workflow/{wf}", "agent": "/api/entities/agent/qms-code-reviewer"}
    may = {"executive": set(), "qa_lead": {"workflow", "agent"}, "developer": {"workflow"},
           "operations": {"workflow", "agent"}, "admin": {"workflow", "agent"}}
    c = app.server.test_client()
    for role, kinds in may.items():
        for kind, url in urls.items():
            res = c.get(url, headers=auth.bearer(role))
            want = 200 if kind in kinds else 403
            assert res.status_code == want, (role, kind, res.status_code)
            if want == 403:
                assert res.json["response"]["error"]["code"] == "forbidden" and "data" not in res.json["response"]
    for url in urls.values():
        assert anon.get(url).status_code == 401


def test_ent106_unknown_ids_and_bad_parameters(client: Any, loaded: list[dict[str, Any]]) -> None:
    person = next(e["data"]["reviewer"] for e in loaded if e["type"] == "workflow.review_completed"
                  and not e["data"]["reviewer"].startswith("qms-"))
    assert client.get(f"/api/entities/agent/{person}").status_code == 404, "a person who reviews has no agent page"
    for url in ("/api/entities/workflow/WF-nope", "/api/entities/agent/qms-nope", "/api/entities/workflow/" + "x" * 300):
        res = client.get(url)
        assert res.status_code == 404 and res.json["response"]["error"]["code"] == "not_found", url
    for query in ("timeframe=2h", "end=yesterday", "limit=0", "limit=x", "limit=5001"):
        res = client.get(f"/api/entities/agent/qms-code-reviewer?{query}")
        assert res.status_code == 400, query


def test_ent107_sanitised_like_the_data_shown(app: Any, auth: Any, loaded: list[dict[str, Any]]) -> None:
    wf = pick_done(loaded)
    created = next(e for e in of_workflow(loaded, wf) if e["type"] == "workflow.pr_created")["data"]
    people = {e["data"].get(k) for e in of_workflow(loaded, wf) for k in ("author", "reviewer", "found_by")
              if e["data"].get(k) and not e["data"][k].startswith("qms-")}
    c = app.server.test_client()
    ops = body(c.get(f"/api/entities/workflow/{wf}", headers=auth.bearer("operations")))
    blob = repr(ops)
    assert created["author"] in people and not any(p in blob for p in people), "operations sees no names"
    assert "title" not in ops["summary"] and created["title"] not in blob
    assert ops["summary"]["author"].startswith("user-") and ops["cost_usd"] == body(
        c.get(f"/api/entities/workflow/{wf}", headers=auth.bearer("admin")))["cost_usd"]
    # A developer of the workflow's team sees it named; one of another team without names.
    svc = app.server.extensions["qms"]
    teams = {e["data"]["author"]: e["data"]["team"] for e in loaded if e["type"] == "workflow.pr_created"}
    same = created["author"]
    other = next(a for a, t in sorted(teams.items()) if t != created["team"] and a not in people)
    for name in (same, other):
        svc.users.add(name, ["developer"], PASSWORD)
    mine = body(c.get(f"/api/entities/workflow/{wf}", headers=auth.bearer("developer", same)))
    assert mine["summary"]["author"] == same and mine["summary"]["title"] == created["title"]
    theirs = body(c.get(f"/api/entities/workflow/{wf}", headers=auth.bearer("developer", other)))
    assert theirs["summary"]["author"] != same and created["title"] not in repr(theirs)
    # Every row of the page is another team's, each counted once.
    admin = body(c.get(f"/api/entities/workflow/{wf}", headers=auth.bearer("admin")))
    rows = 1 + sum(len(admin[k]) for k in ("gates", "reviews", "in_review", "defects", "compliance", "events"))
    assert admin["defects"] and theirs["scope"] == {
        "teams": "own", "team": teams[other], "shown_without_names": rows, "left_out": 0,
        "note": f"{rows:,} rows of other teams shown without names"}
