"""Widget data sources on a real Redis: each kind's frame against the engine and the
reference calculator on simulated activity, the cache (one computation per data version,
shared by users), team scope for a developer, and the computed views against values worked
out by hand from a small event set."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any, Iterator

import orjson
import pandas as pd
import pytest
import redis

from auth.principal import Principal
from auth.rbac import load_rbac
from auth.scope import sanitizer_for
from dashboards import sources
from dashboards.schema import DataSource
from data import reference
from data.aggregator import Aggregator
from data import engine as engine_mod
from data.engine import Engine
from data.ingest import Ingestor
from data.kpis import dashboard_of
from data.keys import Keys
from data.timeutil import HOUR_MS, MINUTE_MS, day_start, fmt_ms, now_ms, parse_iso, to_datetime
from tests.helpers import busy_events
from settings import Settings

RBAC = load_rbac()
KEYS = Keys("qms")
SECRET = b"k" * 48


def settings(redis_url: str, **kw: Any) -> Settings:
    return Settings.from_env({}, redis_url=redis_url, run_aggregator=False, demo=False, secret_key="k" * 48, **kw)


def context(r: Any, cfg: Settings, role: str, name: str, end_ms: int, timeframe: str = "24h",
            perms: frozenset[str] | None = None, **filters: str) -> sources.SourceContext:
    principal = Principal(name, (role,), RBAC.permissions_for([role]) if perms is None else perms)
    return sources.SourceContext(Engine.from_settings(r, cfg), r, KEYS, cfg, principal,
                                 sanitizer_for(RBAC, r, KEYS, SECRET, [role], name), timeframe, filters, end_ms)


def ms(ev: dict[str, Any]) -> int:
    return parse_iso(ev["timestamp"])


def close(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --- simulated activity -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim(redis_url: str) -> Iterator[dict[str, Any]]:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    end_ms = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    events = busy_events(50, end_ms, 19, 0.15, after_ms=20 * MINUTE_MS)
    ing, agg = Ingestor(r, KEYS), Aggregator(r, KEYS, batch=500)
    for i in range(0, len(events), 4000):
        ing.ingest(events[i:i + 4000])
        agg.drain()
    creation: dict[str, dict[str, Any]] = {}
    completion: dict[str, dict[str, Any]] = {}
    for ev in sorted(events, key=lambda e: (ms(e), e["id"])):
        if ev["type"] == "workflow.pr_created":
            creation.setdefault(ev["data"]["workflow_id"], ev)
        elif ev["type"] == "workflow.completed":
            completion.setdefault(ev["data"]["workflow_id"], ev)
    yield {"r": r, "events": events, "end": end_ms, "s": end_ms - 24 * HOUR_MS, "cfg": settings(redis_url),
           "creation": creation, "completion": completion}
    r.flushdb()


def in_window(sim: dict[str, Any], etype: str | tuple[str, ...]) -> list[dict[str, Any]]:
    types = (etype,) if isinstance(etype, str) else etype
    return [e for e in sim["events"] if e["type"] in types and sim["s"] <= ms(e) < sim["end"]]


def admin(sim: dict[str, Any], **filters: str) -> sources.SourceContext:
    return context(sim["r"], sim["cfg"], "admin", "admin-user", sim["end"], **filters)


@pytest.mark.parametrize("metric", ["gate_pass_rate", "cost_per_review", "sla_adherence", "critical_defects",
                                    "total_active_reviews", "gate.code-coverage-gate.p95_time", "error_rate"])
def test_srci001_kpi_frame_is_the_engines_value(sim: dict[str, Any], metric: str) -> None:
    f = sources.fetch(DataSource(source="kpi", metric=metric), admin(sim))
    assert len(f) == 1
    row = f.iloc[0]
    engine = Engine(sim["r"], KEYS).dashboard(dashboard_of(metric), "24h", sim["end"])["data"]["widgets"]
    want = next(w["data"] for w in engine if w["id"] == metric)
    assert close(row["value"], want["current_value"]) and close(row["previous"], want["previous_value"])
    ref = reference.compute_dashboard(sim["events"], dashboard_of(metric), to_datetime(sim["end"]),
                                      timedelta(hours=24))[metric]
    assert close(row["value"], ref["current_value"]) or reference.agrees(metric, row["value"], ref["current_value"])
    assert reference.trend_agrees(metric, row["trend"], ref)
    assert row["unit"] == reference.kpi_unit(metric)
    assert f.attrs["window"] == {"start": fmt_ms(sim["s"]), "end": fmt_ms(sim["end"])}
    spark = f.attrs["spark"]
    assert list(spark.columns) == ["metric", "unit", "t", "end", "value", "partial"] and 1 < len(spark) <= 24
    assert spark["t"].iloc[0] == pd.Timestamp(fmt_ms(sim["s"])) and not spark["partial"].any()


def test_srci002_sample_is_the_number_of_events_behind_the_value(sim: dict[str, Any]) -> None:
    gates = in_window(sim, tuple(reference.GATE_TYPES))
    f = sources.fetch(DataSource(source="kpi", metric="gate_pass_rate"), admin(sim))
    assert f["sample"].iloc[0] == len(gates) > 0
    assert f["direction"].iloc[0] == "higher_is_better"
    f = sources.fetch(DataSource(source="kpi", metric="cost_per_review"), admin(sim))
    reviews = in_window(sim, "workflow.review_completed")
    assert f["sample"].iloc[0] == len(reviews) > 0
    assert f["value"].iloc[0] == pytest.approx(sum(e["data"]["cost_usd"] for e in reviews) / len(reviews))
    assert f["direction"].iloc[0] == "lower_is_better"
    f = sources.fetch(DataSource(source="kpi", metric="total_active_reviews"), admin(sim))
    assert pd.isna(f["sample"].iloc[0]) and pd.isna(f["direction"].iloc[0])
    team = "payments"
    f = sources.fetch(DataSource(source="kpi", metric="gate_pass_rate", filters={"team": team}), admin(sim))
    mine = [e for e in gates if (sim["creation"].get(e["data"]["workflow_id"]) or {}).get("data", {}).get("team") == team]
    assert f["sample"].iloc[0] == len(mine) and bool(f["filtered"].iloc[0]) is True
    passed = sum(1 for e in mine if reference.GATE_TYPES[e["type"]] or
                 (reference.GATE_TYPES[e["type"]] is None and e["data"]["passed"]))
    assert f["value"].iloc[0] == pytest.approx(100.0 * passed / len(mine))


def test_srci003_series_points_are_the_engines(sim: dict[str, Any]) -> None:
    f = sources.fetch(DataSource(source="series", metric="defects_found", points=12), admin(sim))
    # a dashboard chart's series: cut on the clock's boundaries (aligned), as the source asks
    want = Engine(sim["r"], KEYS).series("defects_found", "24h", sim["end"], points=12, aligned=True)
    assert len(f) == 12 and f["metric"].eq("defects_found").all() and f["unit"].eq("count").all()
    assert [fmt_ms(t.value // 1_000_000) for t in f["t"]] == [p["t"] for p in want["points"]]
    got = [None if pd.isna(v) else v for v in f["value"]]
    assert got == [p["value"] for p in want["points"]]
    found = in_window(sim, "workflow.defect_found")
    assert sum(v for v in got if v) == len(found)
    assert str(f["t"].dt.tz) == "UTC" and f["partial"].dtype == bool


def test_srci004_breakdowns_add_up_to_the_reference(sim: dict[str, Any]) -> None:
    found = in_window(sim, "workflow.defect_found")
    f = sources.fetch(DataSource(source="breakdown", name="defects_by_category"), admin(sim))
    want = Counter(e["data"].get("category") or "uncategorised" for e in found)
    assert dict(zip(f["name"], f["value"])) == dict(want) and f["dimension"].eq("category").all()
    f = sources.fetch(DataSource(source="breakdown", name="defects_by_severity"), admin(sim))
    assert int(f["value"].sum()) == len(found)
    f = sources.fetch(DataSource(source="breakdown", name="cost_by_team"), admin(sim))
    cost: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    for e in in_window(sim, "workflow.review_completed"):
        team = (sim["creation"].get(e["data"]["workflow_id"]) or {}).get("data", {}).get("team")
        if team:
            cost[team] += e["data"]["cost_usd"]
            count[team] += 1
    assert set(f["name"]) == set(cost)
    for _, row in f.iterrows():
        assert row["cost_usd"] == pytest.approx(cost[row["name"]]) and row["reviews"] == count[row["name"]]
        assert row["value"] == row["cost_usd"]
        assert row["cost_per_review_usd"] == pytest.approx(cost[row["name"]] / count[row["name"]])
    f = sources.fetch(DataSource(source="breakdown", name="merged_by_team"), admin(sim))
    merged = Counter(sim["creation"][wf]["data"]["team"] for wf, c in sim["completion"].items()
                     if sim["s"] <= ms(c) < sim["end"] and c["data"]["outcome"] == "merged" and wf in sim["creation"])
    assert dict(zip(f["name"], f["value"])) == dict(merged)
    f = sources.fetch(DataSource(source="breakdown", name="events_by_type"), admin(sim))
    types = Counter(e["type"] for e in sim["events"] if sim["s"] <= ms(e) < sim["end"])
    assert dict(zip(f["name"], f["value"])) == dict(types)
    f = sources.fetch(DataSource(source="breakdown", name="cost_by_repository", filters={"repository": "mobile-app"}),
                      admin(sim))
    assert f["name"].tolist() == ["mobile-app"]


def test_srci005_state_rows_are_the_state_hash(sim: dict[str, Any]) -> None:
    r = sim["r"]
    f = sources.fetch(DataSource(source="state", name="agents"), admin(sim))
    want = sorted((orjson.loads(v) for v in r.hvals(KEYS.state("agents"))), key=lambda a: a["agent_id"])
    assert list(f.columns) == ["agent_id", "status", "load", "skills", "since"]
    assert f["agent_id"].tolist() == [a["agent_id"] for a in want] and len(want) == 15
    assert f["status"].tolist() == [a["status"] for a in want]
    assert f["skills"].tolist() == [a["skills"] for a in want]
    assert f["since"].tolist() == [pd.Timestamp(a["since"]) for a in want]
    f = sources.fetch(DataSource(source="state", name="agents"), admin(sim, agent="qms-code-reviewer"))
    assert f["agent_id"].tolist() == ["qms-code-reviewer"]
    f = sources.fetch(DataSource(source="state", name="queues"), admin(sim))
    assert dict(zip(f["queue"], f["depth"])) == {q["queue"]: q["depth"] for q in map(orjson.loads,
                                                                                     r.hvals(KEYS.state("queues")))}
    f = sources.fetch(DataSource(source="state", name="active_workflows"), admin(sim, repository="qms-core"))
    want = [a for a in map(orjson.loads, r.hvals(KEYS.state("active"))) if a["repository"] == "qms-core"]
    assert sorted(f["workflow_id"]) == sorted(a["workflow_id"] for a in want) and len(want) > 0
    assert list(f.columns) == ["workflow_id", "repository", "author", "pr_number", "step", "step_since", "created"]
    f = sources.fetch(DataSource(source="computed", name="pipeline"), admin(sim))
    kpis = {w["id"]: w["data"]["current_value"] for w in
            Engine(r, KEYS).dashboard("operational", "24h", sim["end"])["data"]["widgets"]}
    assert dict(zip(f["step"], f["active_workflows"])) == {k: kpis[k] for k in f["step"]}


def test_srci006_drilldown_rows_are_the_newest_behind_the_kpi(sim: dict[str, Any]) -> None:
    ds = DataSource(source="drilldown", metric="defects_found", transform={"limit": 7})
    f = sources.fetch(ds, admin(sim))
    newest = sorted(in_window(sim, "workflow.defect_found"), key=lambda e: (ms(e), e["id"]), reverse=True)[:7]
    assert f["id"].tolist() == [e["id"] for e in newest]
    assert f["role"].eq("counted").all() and f["type"].eq("workflow.defect_found").all()
    assert f["workflow_id"].tolist() == [e["data"]["workflow_id"] for e in newest]
    assert f["data.severity"].tolist() == [e["data"]["severity"] for e in newest]
    assert f["timestamp"].iloc[0] == pd.Timestamp(newest[0]["timestamp"])
    assert f.attrs["more"] is True


def test_srci007_cache_is_shared_between_users_and_ends_with_the_version(sim: dict[str, Any]) -> None:
    ds = DataSource(source="computed", name="gates", timeframe="4h")
    first = sources.fetch(ds, admin(sim))
    assert first.attrs["cache"] == "miss"
    again = sources.fetch(ds, context(sim["r"], sim["cfg"], "qa_lead", "quinn", sim["end"]))
    assert again.attrs["cache"] == "hit"
    pd.testing.assert_frame_equal(first, again)
    assert first.attrs["timeframe"] == "4h"
    sim["r"].hincrby(KEYS.meta, "version", 1)       # a batch was applied
    assert sources.fetch(ds, admin(sim)).attrs["cache"] == "miss"
    mine = sources.fetch(DataSource(source="state", name="my_pull_requests"),
                         context(sim["r"], sim["cfg"], "developer", "alice.chen", sim["end"]))
    theirs = sources.fetch(DataSource(source="state", name="my_pull_requests"),
                           context(sim["r"], sim["cfg"], "developer", "bruno.silva", sim["end"]))
    assert mine.attrs["cache"] == theirs.attrs["cache"] == "miss"        # personal: one per user
    assert set(mine["author"]) <= {"alice.chen"} and set(theirs["author"]) <= {"bruno.silva"}


def test_srci008_a_developer_sees_other_teams_without_names(sim: dict[str, Any]) -> None:
    r, dev = sim["r"], "alice.chen"
    team = orjson.loads(r.hget(KEYS.authors, dev))[2]
    ctx = context(r, sim["cfg"], "developer", dev, sim["end"])
    f = sources.fetch(DataSource(source="state", name="suggested_reviews"), ctx)
    active = {a["workflow_id"]: a for a in map(orjson.loads, r.hvals(KEYS.state("active")))}
    others = [wf for wf in f["workflow_id"] if active[wf]["team"] != team]
    assert len(f) > 0 and others
    for _, row in f.iterrows():
        real = active[row["workflow_id"]]["author"]
        if active[row["workflow_id"]]["team"] == team:
            assert row["author"] == real
        else:
            assert row["author"] != real and row["author"].startswith("user-")
    assert f.attrs["scope"]["shown_without_names"] == len(others) and f.attrs["scope"]["team"] == team
    assert f.attrs["scope_note"].startswith(f"{len(others)} row")
    # Gate metrics: a developer without view:quality_metrics gets their team's pull requests only.
    q = sources.fetch(DataSource(source="computed", name="code_quality"), ctx)
    runs = [e for e in in_window(sim, tuple(reference.GATE_TYPES))
            if (sim["creation"].get(e["data"]["workflow_id"]) or {}).get("data", {}).get("team") == team]
    cov = [e for e in runs if "coverage_percentage" in e["data"].get("metrics", {})]
    got = q[q["metric"] == "coverage_percentage"]
    assert int(got["runs"].sum()) == len(cov) > 0
    assert q.attrs["filters"]["team"] == team and "only" in q.attrs["scope_note"]
    everyone = sources.fetch(DataSource(source="computed", name="code_quality"), admin(sim))
    assert int(everyone[everyone["metric"] == "coverage_percentage"]["runs"].sum()) > len(cov)
    with pytest.raises(sources.NotPermitted):
        sources.fetch(DataSource(source="state", name="active_workflows"), ctx)


def test_srci009_collaboration_and_coverage_from_the_simulated_events(sim: dict[str, Any]) -> None:
    latest_team: dict[str, tuple[int, str, str | None]] = {}
    for e in sim["events"]:
        if e["type"] == "workflow.pr_created":
            key = (ms(e), e["id"])
            if e["data"]["author"] not in latest_team or key > latest_team[e["data"]["author"]][:2]:
                latest_team[e["data"]["author"]] = (*key, e["data"].get("team"))
    want: Counter[tuple[str, str]] = Counter()
    for e in in_window(sim, "workflow.review_completed"):
        rv = e["data"]["reviewer"]
        rt = "(agents)" if rv.startswith("qms-") else ((latest_team.get(rv) or (0, "", None))[2] or "(no team)")
        c = sim["creation"].get(e["data"]["workflow_id"])
        want[(rt, (c["data"].get("team") if c else None) or "(no team)")] += 1
    f = sources.fetch(DataSource(source="computed", name="team_collaboration"), admin(sim))
    assert {(a, b): n for a, b, n in zip(f["reviewer_team"], f["author_team"], f["reviews"])} == dict(want)
    assert int(f.attrs["people"]["reviews"].sum()) == sum(want.values())
    f = sources.fetch(DataSource(source="computed", name="test_coverage"), admin(sim))
    cov: dict[tuple[int, str], list[float]] = defaultdict(list)
    for e in in_window(sim, tuple(reference.GATE_TYPES)):
        pct = e["data"].get("metrics", {}).get("coverage_percentage")
        c = sim["creation"].get(e["data"]["workflow_id"])
        if pct is not None and c:
            cov[((ms(e) - sim["s"]) // HOUR_MS, c["data"]["repository"])].append(pct)
    got = {((t.value // 1_000_000 - sim["s"]) // HOUR_MS, repo): (c, n)
           for t, repo, c, n in zip(f["t"], f["repository"], f["coverage"], f["runs"])}
    assert set(got) == set(cov)
    for k, values in cov.items():
        assert got[k][0] == pytest.approx(sum(values) / len(values)) and got[k][1] == len(values)


# --- a small event set, worked out by hand -------------------------------------------------------

def small_events(end: int) -> list[dict[str, Any]]:
    n = iter(range(1, 1000))

    def ev(etype: str, ts: int, **data: Any) -> dict[str, Any]:
        return {"id": f"hand-{next(n)}", "type": etype, "timestamp": fmt_ms(ts), "source": "test", "data": data}

    h = HOUR_MS
    gate = "workflow.quality_gate_executed"
    return [
        ev("workflow.pr_created", end - 30 * h, workflow_id="W3", pr_number=3, repository="app", author="carl",
           team="mobile"),
        ev("workflow.pr_created", end - 5 * h, workflow_id="W1", pr_number=1, repository="pay-svc", author="ann",
           team="payments"),
        ev("workflow.pr_created", end - 5 * h + MINUTE_MS, workflow_id="W2", pr_number=2, repository="app",
           author="bob", team="mobile"),
        ev("system.configuration_changed", end - 6 * h, key="sla.hours", old=8, new=6, changed_by="ops.amy"),
        ev(gate, end - 4 * h - 30 * MINUTE_MS, workflow_id="W1", gate_name="code-coverage-gate", passed=True,
           metrics={"coverage_percentage": 90.0, "threshold": 80.0}),
        ev(gate, end - 4 * h - 20 * MINUTE_MS, workflow_id="W1", gate_name="code-coverage-gate", passed=True,
           metrics={"coverage_percentage": 80.0, "threshold": 80.0}),
        ev("workflow.review_started", end - 4 * h - 10 * MINUTE_MS, workflow_id="W1", reviewer="carl"),
        ev("workflow.review_completed", end - 4 * h, workflow_id="W1", reviewer="carl", verdict="approved",
           cost_usd=10.0),
        ev("workflow.defect_found", end - 4 * h + MINUTE_MS, workflow_id="W1", defect_id="D1", severity="major",
           category="logic", found_by="carl"),
        ev("workflow.review_completed", end - 3 * h, workflow_id="W1", reviewer="qms-code-reviewer",
           verdict="approved", cost_usd=20.0),
        ev("workflow.defect_found", end - 2 * h - 30 * MINUTE_MS, workflow_id="W1", defect_id="D2", severity="minor",
           category="style"),
        ev("workflow.quality_gate_failed", end - 2 * h - 20 * MINUTE_MS, workflow_id="W2", gate_name="lint-gate",
           metrics={"errors": 3, "warnings": 1}),
        ev(gate, end - 2 * h - 10 * MINUTE_MS, workflow_id="W2", gate_name="code-coverage-gate", passed=True,
           metrics={"coverage_percentage": 70.0}),
        ev("workflow.review_started", end - 2 * h - 5 * MINUTE_MS, workflow_id="W2", reviewer="ann"),
        ev("workflow.review_completed", end - 2 * h, workflow_id="W2", reviewer="ann", verdict="changes_requested",
           cost_usd=5.0),
        ev("workflow.review_started", end - h - 5 * MINUTE_MS, workflow_id="W2", reviewer="ann"),
        ev("workflow.review_completed", end - h, workflow_id="W2", reviewer="ann", verdict="approved", cost_usd=5.0),
    ]


@pytest.fixture
def hand(r: Any, redis_url: str) -> dict[str, Any]:
    end = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    if end - day_start(end) < 3 * HOUR_MS:
        # srci012's "today" (bob's lint failure, 2 h 20 min before the end) stays the end's
        # day: in the first hours after midnight the end is yesterday's 23:00 instead.
        end = day_start(end) - HOUR_MS
    events = small_events(end)
    Ingestor(r, KEYS).ingest(events)
    Aggregator(r, KEYS, batch=500).drain()
    return {"r": r, "end": end, "cfg": settings(redis_url, series_cache_s=0.0), "events": events,
            "url": redis_url}


def hctx(hand: dict[str, Any], role: str = "admin", name: str = "admin-user", **kw: Any) -> sources.SourceContext:
    return context(hand["r"], hand["cfg"], role, name, hand["end"], **kw)


def at(hand: dict[str, Any], hours: float) -> pd.Timestamp:
    return pd.Timestamp(fmt_ms(hand["end"] - int(hours * HOUR_MS)))


def test_srci010_team_collaboration_by_hand(hand: dict[str, Any]) -> None:
    f = sources.fetch(DataSource(source="computed", name="team_collaboration"), hctx(hand))
    assert [(a, b, n, x) for a, b, n, x in zip(f["reviewer_team"], f["author_team"], f["reviews"], f["cross_team"])] \
        == [("payments", "mobile", 2, True), ("(agents)", "payments", 1, False), ("mobile", "payments", 1, True)]
    people = f.attrs["people"]
    assert people[["reviewer", "author", "reviews"]].values.tolist() == [
        ["ann", "bob", 2], ["carl", "ann", 1], ["qms-code-reviewer", "ann", 1]]
    # An executive sees people as pseudonyms; the team counts are the same.
    ex = sources.fetch(DataSource(source="computed", name="team_collaboration"), hctx(hand, "executive", "eve"))
    assert ex["reviews"].tolist() == [2, 1, 1]
    assert "ann" not in set(ex.attrs["people"]["reviewer"]) and "carl" not in set(ex.attrs["people"]["reviewer"])
    # carl (mobile): his own review named, ann's review of bob's PR is mobile's PR but payments' reviewer.
    dev = sources.fetch(DataSource(source="computed", name="team_collaboration"), hctx(hand, "developer", "carl"))
    names = dev.attrs["people"][["reviewer", "author"]].values.tolist()
    assert ["carl", "ann"] in names and ["ann", "bob"] not in names
    assert dev.attrs["scope"]["shown_without_names"] == 2
    only = sources.fetch(DataSource(source="computed", name="team_collaboration", filters={"team": "mobile"}),
                         hctx(hand))
    assert only["reviews"].tolist() == [2, 1]


def test_srci011_code_quality_and_test_coverage_by_hand(hand: dict[str, Any]) -> None:
    f = sources.fetch(DataSource(source="computed", name="code_quality"), hctx(hand))
    got = {(t, g, m): (v, n) for t, g, m, v, n in zip(f["t"], f["gate"], f["metric"], f["value"], f["runs"])}
    assert got == {(at(hand, 5), "code-coverage-gate", "coverage_percentage"): (85.0, 2),
                   (at(hand, 3), "lint-gate", "errors"): (3.0, 1), (at(hand, 3), "lint-gate", "warnings"): (1.0, 1),
                   (at(hand, 3), "code-coverage-gate", "coverage_percentage"): (70.0, 1)}
    g = sources.fetch(DataSource(source="computed", name="code_quality", filters={"gate": "lint-gate"}), hctx(hand))
    assert set(g["gate"]) == {"lint-gate"}
    c = sources.fetch(DataSource(source="computed", name="test_coverage"), hctx(hand))
    assert [(t, repo, v, n) for t, repo, v, n in zip(c["t"], c["repository"], c["coverage"], c["runs"])] == [
        (at(hand, 5), "pay-svc", 85.0, 2), (at(hand, 3), "app", 70.0, 1)]
    assert c["end"].iloc[0] - c["t"].iloc[0] == pd.Timedelta(hours=1)
    mobile = sources.fetch(DataSource(source="computed", name="test_coverage"), hctx(hand, "developer", "bob"))
    assert mobile["repository"].tolist() == ["app"]           # bob's team: mobile


def test_srci011b_one_page_s_code_quality_and_test_coverage_scan_the_window_once(hand: dict[str, Any],
                                                                                monkeypatch: Any) -> None:
    """Both views read the window's gate runs and their workflows: one request (its context)
    scans them once, and each view's numbers are those it gives alone."""
    from dashboards import computed
    alone = {n: sources.fetch(DataSource(source="computed", name=n), hctx(hand, repository="pay-svc"))
             for n in ("code_quality", "test_coverage")}
    scans: list[tuple[str, ...]] = []
    infos: list[int] = []
    scan, info = computed.window_events, computed.workflow_info
    monkeypatch.setattr(computed, "window_events", lambda ctx, types, *a: scans.append(types) or scan(ctx, types, *a))
    monkeypatch.setattr(computed, "workflow_info", lambda ctx, ids: infos.append(len(ids)) or info(ctx, ids))
    ctx = hctx(hand, repository="pay-svc")
    for k in ctx.redis.scan_iter(ctx.keys.cache("*")):              # the sources computed afresh
        ctx.redis.delete(k)
    for n in ("code_quality", "test_coverage"):
        got = sources.fetch(DataSource(source="computed", name=n), ctx)
        pd.testing.assert_frame_equal(got, alone[n])
    assert len(scans) == 1 and len(infos) == 1, (scans, infos)


def test_srci011d_workflow_info_reads_each_known_workflow_once_and_an_unknown_one_again(
        hand: dict[str, Any], monkeypatch: Any) -> None:
    """(author, team, repository) of workflows whose pr_created is known are kept by the web
    process (a window's gate runs name thousands: reading them on every scan cost as much as
    the scan); a workflow without one is read again, so its runs join their repository when
    its pr_created comes; what is kept expires (WORKFLOW_INFO_TTL_S)."""
    from dashboards import computed
    ctx = hctx(hand)
    r = hand["r"]
    read: list[list[Any]] = []
    mget = type(r).mget

    def counting(self: Any, keys: Any, *a: Any) -> Any:
        read.append(list(keys))
        return mget(self, keys, *a)
    monkeypatch.setattr(type(r), "mget", counting)
    want = {"W1": ("ann", "payments", "pay-svc"), "W2": ("bob", "mobile", "app"), "W9": None}
    assert computed.workflow_info(ctx, ["W1", "W2", "W9", "W1", None]) == want
    assert computed.workflow_info(ctx, ["W2", "W1", "W9"]) == want
    assert [len(k) for k in read] == [3, 1], read                   # W9 only, the second time
    end = hand["end"]
    Ingestor(r, KEYS).ingest([{"id": "late-w9", "type": "workflow.pr_created", "timestamp": fmt_ms(end - 3 * HOUR_MS),
                               "source": "test", "data": {"workflow_id": "W9", "pr_number": 9, "repository": "web",
                                                          "author": "dan", "team": "web"}}])
    Aggregator(r, KEYS, batch=500).drain()
    assert computed.workflow_info(ctx, ["W9", "W1"])["W9"] == ("dan", "web", "web")
    assert computed.workflow_info(ctx, ["W9", "W1", "W2"]) == {**want, "W9": ("dan", "web", "web")}
    assert len(read) == 3
    kept = ctx.engine.workflow_info
    assert kept.ttl == engine_mod.WORKFLOW_INFO_TTL_S
    kept.expire(kept.timer() + kept.ttl + 1)                       # what is kept expires
    computed.workflow_info(ctx, ["W1"])
    assert len(read) == 4 and read[-1] == [KEYS.entity("wf", "W1")]


def test_srci011c_every_filter_s_code_quality_and_coverage_share_one_scan(hand: dict[str, Any],
                                                                           monkeypatch: Any) -> None:
    """A web process scans a window's gate runs and reads their workflows once per data version
    for every filter (the QA page under load drew them once per repository and team viewed);
    each filter's numbers are those a fresh process gives. A new version is read again by an
    exact read (REST), not by a page's draw within its staleness."""
    import dataclasses

    from dashboards import computed
    views_ = [({}, "code_quality"), ({}, "test_coverage"), ({"repository": "pay-svc"}, "code_quality"),
              ({"repository": "pay-svc"}, "test_coverage"), ({"team": "mobile"}, "test_coverage"),
              ({"team": "mobile"}, "code_quality")]
    alone = [sources.fetch(DataSource(source="computed", name=n), hctx(hand, **f)) for f, n in views_]
    scans: list[tuple[str, ...]] = []
    infos: list[int] = []
    scan, info = computed.window_events, computed.workflow_info
    monkeypatch.setattr(computed, "window_events", lambda ctx, types, *a: scans.append((types, *a)) or scan(ctx, types, *a))
    monkeypatch.setattr(computed, "workflow_info", lambda ctx, ids: infos.append(len(ids)) or info(ctx, ids))
    r = hand["r"]

    def fresh_sources() -> None:
        for k in r.scan_iter(KEYS.cache("*")):
            r.delete(k)

    shared = hctx(hand)
    fresh_sources()
    for (f, n), want in zip(views_, alone):
        got = sources.fetch(DataSource(source="computed", name=n), dataclasses.replace(shared, filters=f, memo={}))
        pd.testing.assert_frame_equal(got, want)
    assert len(scans) == 1 and len(infos) == 1, (scans, infos)
    assert not alone[4].empty and set(alone[4]["repository"]) == {"app"}       # the team's own repository only

    r.hincrby(KEYS.meta, "version", 1)
    fresh_sources()
    exact = sources.fetch(DataSource(source="computed", name="test_coverage"), dataclasses.replace(shared, memo={}))
    pd.testing.assert_frame_equal(exact, alone[1])
    assert len(scans) == 1                          # a new version, the same runs: none read again
    late = hand["end"] - 2 * HOUR_MS - 12 * MINUTE_MS
    Ingestor(r, KEYS).ingest([{"id": "late-cov", "type": "workflow.quality_gate_executed", "timestamp": fmt_ms(late),
                               "source": "test", "data": {"workflow_id": "W2", "gate_name": "code-coverage-gate",
                                                          "passed": True, "metrics": {"coverage_percentage": 100.0}}}])
    Aggregator(r, KEYS, batch=500).drain()
    fresh_sources()
    page = dataclasses.replace(shared, page=True, memo={})
    sources.fetch(DataSource(source="computed", name="test_coverage"), page)
    assert len(scans) == 1                          # a page's draw: the sums are seconds old
    fresh_sources()
    got = sources.fetch(DataSource(source="computed", name="test_coverage"), dataclasses.replace(shared, memo={}))
    assert len(scans) == 2                          # an exact read: the quarter hour of the late run only
    assert scans[-1][1:] == (late - late % (15 * MINUTE_MS), late - late % (15 * MINUTE_MS) + 15 * MINUTE_MS)
    assert got[got["repository"] == "app"][["coverage", "runs"]].values.tolist() == [[85.0, 2]]   # (70 + 100) / 2


def test_srci012_achievements_and_skill_development_by_hand(hand: dict[str, Any]) -> None:
    ann = hctx(hand, "developer", "ann")
    f = sources.fetch(DataSource(source="computed", name="achievements"), ann)
    rows = {m: r for m, r in zip(f["milestone"], f.to_dict("records"))}
    assert rows["first_review"]["achieved"] and rows["first_review"]["at"] == at(hand, 2)
    assert rows["reviews_10"]["progress"] == 2 and not rows["reviews_10"]["achieved"] and pd.isna(rows["reviews_10"]["at"])
    assert rows["gates_passed_50"]["progress"] == 2
    assert rows["clean_week"]["achieved"]              # gates ran on her PR, none failed, in 30 quiet-or-clean days
    bob = sources.fetch(DataSource(source="computed", name="achievements"), hctx(hand, "developer", "bob"))
    brows = {m: r for m, r in zip(bob["milestone"], bob.to_dict("records"))}
    assert not brows["clean_week"]["achieved"] and brows["clean_week"]["progress"] == 0   # his lint failed today
    assert brows["first_review"]["progress"] == 0 and brows["gates_passed_50"]["progress"] == 1
    s = sources.fetch(DataSource(source="computed", name="skill_development"), ann)
    found = s[s["defects"] > 0]
    assert [(t, c, n) for t, c, n in zip(found["t"], found["category"], found["defects"])] == [
        (at(hand, 4), "logic", 1), (at(hand, 3), "style", 1)]
    assert set(s["category"]) == {"logic", "style"} and len(s) == 2 * 24
    assert list(s.attrs["suggested"].columns)[:3] == ["workflow_id", "repository", "author"]
    empty = sources.fetch(DataSource(source="computed", name="skill_development"), hctx(hand, "developer", "bob"))
    assert len(empty) == 0 and list(empty.columns) == ["t", "end", "category", "defects"]


def test_srci012b_a_developer_s_sources_read_only_their_own_fields(hand: dict[str, Any], monkeypatch: Any) -> None:
    """The per-user rollups hold every developer's fields in one hash per bucket: achievements
    and skill development read the caller's only (an organisation's size, not theirs, set the
    cost of each developer's page), whole days from the daily buckets, with srci012's rows."""
    from dashboards import computed
    from data import rollups
    asked: list[Any] = []
    real = rollups.fetch

    def spy(*a: Any, **kw: Any) -> Any:
        asked.append(kw.get("only"))
        dailies.append(kw.get("daily", "not given"))
        return real(*a, **kw)
    dailies: list[Any] = []
    monkeypatch.setattr(computed.rollups, "fetch", spy)
    for k in hand["r"].scan_iter(KEYS.cache("*")):
        hand["r"].delete(k)
    ann = hctx(hand, "developer", "ann")
    got = sources.fetch(DataSource(source="computed", name="skill_development"), ann)
    sources.fetch(DataSource(source="computed", name="achievements"), ann)
    assert len(asked) == 2 and all(only and only.keys() == {"u"} for only in asked), asked
    fields = [f for only in asked for f in only["u"]]
    assert fields and all("ann" in f for f in fields) and not any("bob" in f for f in fields), fields
    assert dailies == [rollups.daily_from(hand["r"], KEYS)] * 2          # whole days from the daily buckets
    found = got[got["defects"] > 0]
    assert [(c, n) for c, n in zip(found["category"], found["defects"])] == [("logic", 1), ("style", 1)]


def test_srci013_annotations_and_alerts_by_hand(hand: dict[str, Any]) -> None:
    r, end = hand["r"], hand["end"]
    fired_at = end - 90 * MINUTE_MS
    r.xadd("qms:alerts:history", {"e": orjson.dumps({"kind": "transition", "id": "queue_high|q", "rule": "queue_high",
                                                    "to": "firing", "from": "pending", "at": fired_at, "value": 31,
                                                    "threshold_text": "depth > 25", "labels": {"queue": "q"},
                                                    "severity": "warning"})}, id=f"{fired_at}-0")
    r.set("qms:alerts:state", orjson.dumps({
        "queue_high|q": {"id": "queue_high|q", "rule": "queue_high", "state": "firing", "since": fired_at,
                         "severity": "warning", "labels": {"queue": "q"}, "value": 31,
                         "acknowledged": {"by": "olga", "at": end, "comment": None}},
        "old|x": {"id": "old|x", "rule": "old", "state": "inactive", "since": 0}}))
    f = sources.fetch(DataSource(source="computed", name="annotations"), hctx(hand))
    assert f["kind"].tolist() == ["configuration", "alert"]
    assert f["who"].iloc[0] == "ops.amy" and pd.isna(f["who"].iloc[1])
    assert f["what"].tolist() == ["sla.hours: 8 → 6", "value 31 (depth > 25)"]
    assert f["title"].iloc[1] == "Alert firing: queue_high [queue=q]" and f["severity"].iloc[1] == "warning"
    assert f["t"].tolist() == [at(hand, 6), at(hand, 1.5)]
    ex = sources.fetch(DataSource(source="computed", name="annotations"), hctx(hand, "executive", "eve"))
    assert pd.isna(ex["who"].iloc[0])                      # executives do not see who changed configuration
    quiet = sources.fetch(DataSource(source="computed", name="annotations"),
                          hctx(hand, "developer", "ann", perms=frozenset({"view:developer_dashboard"})))
    assert quiet["kind"].tolist() == ["configuration"]     # no alert markers without view:alerts
    a = sources.fetch(DataSource(source="computed", name="alerts"), hctx(hand))
    assert a[["id", "status", "acknowledged_by"]].values.tolist() == [["queue_high|q", "acknowledged", "olga"]]
    assert a["since"].iloc[0] == at(hand, 1.5)


def test_srci014_recomputed_after_a_new_batch(hand: dict[str, Any]) -> None:
    ds = DataSource(source="kpi", metric="gate_pass_rate")
    first = sources.fetch(ds, hctx(hand))
    assert first.attrs["cache"] == "miss" and first["value"].iloc[0] == 75.0 and first["sample"].iloc[0] == 4
    assert sources.fetch(ds, hctx(hand, "executive", "eve")).attrs["cache"] == "hit"
    raw = sources.fetch(DataSource(source="computed", name="code_quality"), hctx(hand))
    Ingestor(hand["r"], KEYS).ingest([{"id": "hand-late", "type": "workflow.quality_gate_failed", "source": "test",
                                       "timestamp": fmt_ms(hand["end"] - 30 * MINUTE_MS),
                                       "data": {"workflow_id": "W1", "gate_name": "lint-gate",
                                                "metrics": {"errors": 5}}}])
    Aggregator(hand["r"], KEYS, batch=500).drain()
    after = sources.fetch(ds, hctx(hand))
    assert after.attrs["cache"] == "miss" and after["value"].iloc[0] == 60.0 and after["sample"].iloc[0] == 5
    again = sources.fetch(DataSource(source="computed", name="code_quality"), hctx(hand))
    assert raw.attrs["cache"] == "miss" and again.attrs["cache"] == "miss"
    assert len(again) == len(raw) + 1 and 5.0 in again[again["metric"] == "errors"]["value"].tolist()
    # With QMS_SERIES_CACHE_S, a view made from raw events may be served from before the batch.
    stale = context(hand["r"], settings(hand["url"], series_cache_s=3600.0), "admin", "admin-user", hand["end"])
    hand["r"].hincrby(KEYS.meta, "version", 1)
    assert sources.fetch(DataSource(source="computed", name="code_quality"), stale).attrs["cache"] == "hit"
    assert sources.fetch(DataSource(source="computed", name="code_quality"), hctx(hand)).attrs["cache"] == "miss"
    assert sources.fetch(ds, stale).attrs["cache"] == "miss"       # KPIs are exact per batch
    cols, rows = sources.frames_to_rows(after)
    assert rows[0]["value"] == 60.0 and rows[0]["filtered"] is None and cols[0] == "metric"


def test_srci014b_a_page_reuses_a_result_within_its_timeframe_s_staleness_rest_stays_exact(
        hand: dict[str, Any]) -> None:
    """A page's draw (SourceContext.page) reuses a source's result across a new batch while it
    is younger than QMS_BODY_CACHE_S x the timeframe's factor (24h: 3); the REST reads and
    exports (page=False) and a page without the setting are exact per data version."""
    ds = DataSource(source="kpi", metric="gate_pass_rate")
    paged = context(hand["r"], settings(hand["url"], body_cache_s=5.0), "admin", "admin-user", hand["end"])
    paged.page = True
    assert sources.page_stale_ms(paged.settings, "24h") == 15_000 and sources.page_stale_ms(paged.settings, "7d") == 60_000
    first = sources.fetch(ds, paged)
    assert first.attrs["cache"] == "miss" and first["value"].iloc[0] == 75.0
    Ingestor(hand["r"], KEYS).ingest([{"id": "hand-late", "type": "workflow.quality_gate_failed", "source": "test",
                                       "timestamp": fmt_ms(hand["end"] - 30 * MINUTE_MS),
                                       "data": {"workflow_id": "W1", "gate_name": "lint-gate",
                                                "metrics": {"errors": 5}}}])
    Aggregator(hand["r"], KEYS, batch=500).drain()
    again = sources.fetch(ds, paged)
    assert again.attrs["cache"] == "hit" and again["value"].iloc[0] == 75.0          # within 15 s: the page's
    exact = sources.fetch(ds, hctx(hand))
    assert exact.attrs["cache"] == "miss" and exact["value"].iloc[0] == 60.0         # REST: the new batch
    strict = context(hand["r"], settings(hand["url"], body_cache_s=0.0), "admin", "admin-user", hand["end"])
    strict.page = True
    hand["r"].hincrby(KEYS.meta, "version", 1)
    assert sources.fetch(ds, strict).attrs["cache"] == "miss"


def test_srci015_fetch_all_is_whole_or_refused(hand: dict[str, Any]) -> None:
    from dashboards.schema import Widget
    w = Widget(id="w", type="table", title="t", data_sources=[
        {"source": "state", "name": "my_pull_requests"}, {"source": "computed", "name": "achievements"}])
    frames = sources.fetch_all(w, hctx(hand, "developer", "ann"))
    assert frames[0]["workflow_id"].tolist() == ["W1"] and len(frames[1]) == 6
    mixed = Widget(id="w", type="table", title="t", data_sources=[
        {"source": "state", "name": "my_pull_requests"}, {"source": "breakdown", "name": "cost_by_team"}])
    with pytest.raises(sources.NotPermitted):
        sources.fetch_all(mixed, hctx(hand, "developer", "ann"))
    assert sources.fetch_all(mixed, hctx(hand, "admin", "adm"))[1]["cost_usd"].sum() == pytest.approx(40.0)


def test_srci016_window_and_filters_in_attrs(hand: dict[str, Any]) -> None:
    ctx = hctx(hand, team="payments", gate="lint-gate")
    f = sources.fetch(DataSource(source="computed", name="gates", timeframe="4h",
                                 filters={"repository": "app"}), ctx)
    assert f.attrs["timeframe"] == "4h" and f.attrs["filters"] == {"repository": "app", "gate": "lint-gate"}
    assert f.attrs["window"] == {"start": fmt_ms(hand["end"] - 4 * HOUR_MS), "end": fmt_ms(hand["end"])}
    assert f["gate"].tolist() == ["lint-gate"] and f["pass_rate"].iloc[0] == 0.0


def test_srci017_a_gate_never_run_has_no_data_not_an_error(hand: dict[str, Any]) -> None:
    k = sources.fetch(DataSource(source="kpi", metric="gate.nope.pass_rate"), hctx(hand))
    assert pd.isna(k["value"].iloc[0]) and k["unit"].iloc[0] == "percentage" and k["sample"].iloc[0] == 0
    assert len(k.attrs["spark"]) == 0
    s = sources.fetch(DataSource(source="series", metric="gate.nope.pass_rate"), hctx(hand))
    assert len(s) == 0 and list(s.columns) == ["metric", "unit", "t", "end", "value", "partial"]
    lint = sources.fetch(DataSource(source="series", metric="gate.lint-gate.pass_rate", points=4), hctx(hand))
    # Cut on whole multiples of the step (engine.series(aligned=True)): the failed run, 2 h 20 min
    # before the end, is in whichever point holds that instant (which one depends on the hour).
    failed = at(hand, 2 + 20 / 60)
    assert len(lint) == 4 and [None if pd.isna(v) else v for v in lint["value"]] == \
        [0.0 if t <= failed < e else None for t, e in zip(lint["t"], lint["end"])]
