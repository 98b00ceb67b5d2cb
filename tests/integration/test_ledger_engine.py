"""Event fixtures for the reviewer ledger's tests: pull requests reviewed by people, AI agents
(some announced by status events, some only assigned, some named by reviewer_kind) and bots,
findings accepted and dismissed (some changing their mind), production defects after
approvals, gate runs failing then passing on the same commit."""
from __future__ import annotations

import random
from typing import Any

from data.timeutil import fmt_ms

HUMANS = ["ann", "bob", "cy", "dee"]
STATUS_AGENTS = ["qms-code-reviewer", "qms-security-reviewer"]     # send agent_status_changed
ASSIGNED_AGENTS = ["helper-ai"]                                      # only named by agent_assigned
EXPLICIT = [("coderabbit", "ai"), ("copilot", "ai"), ("dependabot[bot]", "bot"), ("mia", "human")]
REPOS = {"acme/api": "core", "acme/web": "web", "acme/tools": None}
GATES = ["ci", "lint", "sonar"]


def ledger_events(seed: int, start_ms: int, hours: int, n_workflows: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    n = 0

    def ev(t: int, type_: str, **data: Any) -> None:
        nonlocal n
        n += 1
        out.append({"id": f"L{seed}-{n:05d}", "type": type_, "timestamp": fmt_ms(t), "source": "ledger-test",
                    "metadata": {"priority": "normal"}, "data": {k: v for k, v in data.items() if v is not None}})

    span = hours * 3_600_000
    for i, agent in enumerate(STATUS_AGENTS):
        ev(start_ms + i * 1000, "system.agent_status_changed", agent_id=agent, status="active", load=0.3)
    defect_no = 0
    for w in range(n_workflows):
        repo = rng.choice(list(REPOS))
        wf = f"{repo}#{w + 1}"
        created = start_ms + rng.randrange(span)
        if rng.random() > 0.05:                       # a few workflows never report their creation
            ev(created, "workflow.pr_created", workflow_id=wf, pr_number=w + 1, repository=repo,
               author=rng.choice(HUMANS), team=REPOS[repo])
        if rng.random() < 0.3:
            ev(created + 60_000, "workflow.agent_assigned", workflow_id=wf, agent_id=ASSIGNED_AGENTS[0])
        t = created
        sha = f"{rng.getrandbits(40):010x}"
        for gate in rng.sample(GATES, rng.randint(1, 3)):
            t += rng.randrange(1, 20) * 60_000
            if rng.random() < 0.35:                   # a failure, maybe re-run to a pass on the same commit
                ev(t, "workflow.quality_gate_executed", workflow_id=wf, gate_name=gate, passed=False,
                   head_sha=sha if rng.random() < 0.8 else None, execution_time=rng.randrange(5, 300))
                t += rng.randrange(1, 10) * 60_000
                if rng.random() < 0.5:
                    sha = f"{rng.getrandbits(40):010x}"       # a new commit: not flaky
            type_ = rng.choice(["workflow.quality_gate_executed", "workflow.quality_gate_passed"])
            ev(t, type_, workflow_id=wf, gate_name=gate, passed=True, head_sha=sha,
               execution_time=rng.randrange(5, 300))
        pool = HUMANS + STATUS_AGENTS + ASSIGNED_AGENTS + [e[0] for e in EXPLICIT]
        approved_at = None
        for who in rng.sample(pool, rng.randint(1, 3)):
            kind = dict(EXPLICIT).get(who)
            t += rng.randrange(1, 90) * 60_000
            ev(t, "workflow.review_started", workflow_id=wf, reviewer=who, reviewer_kind=kind)
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                defect_no += 1
                did = f"D{seed}-{defect_no}"
                t += rng.randrange(1, 5) * 60_000
                ev(t, "workflow.defect_found", workflow_id=wf, defect_id=did, severity=rng.choice(["minor", "major"]),
                   category="review_comment", stage="review", found_by=who, found_by_kind=kind)
                roll = rng.random()
                if roll < 0.8:
                    res = rng.choice(["fixed", "fixed", "false_positive", "wont_fix"])
                    rt = t + rng.randrange(1, 240) * 60_000
                    ev(rt, "workflow.defect_resolved", defect_id=did, resolution=res)
                    if rng.random() < 0.15:           # changes its mind later: the latest counts
                        ev(rt + rng.randrange(1, 600) * 60_000, "workflow.defect_resolved", defect_id=did,
                           resolution="fixed" if res != "fixed" else "false_positive")
            t += rng.randrange(1, 60) * 60_000
            verdict = "approved" if rng.random() < 0.7 else "changes_requested"
            ev(t, "workflow.review_completed", workflow_id=wf, reviewer=who, reviewer_kind=kind, verdict=verdict,
               cost_usd=round(rng.uniform(0, 3), 4) if who not in HUMANS + ["mia"] else None)
            if verdict == "approved" and approved_at is None:
                approved_at = t
        if rng.random() < 0.15:                       # a gate finding, by the gate itself
            defect_no += 1
            ev(t + 1000, "workflow.defect_found", workflow_id=wf, defect_id=f"D{seed}-{defect_no}", severity="major",
               stage="review", found_by=rng.choice(GATES), found_by_kind="gate")
        if rng.random() < 0.8:
            t += rng.randrange(1, 60) * 60_000
            ev(t, "workflow.completed", workflow_id=wf, outcome="merged" if approved_at else "rejected")
        if approved_at is not None and rng.random() < 0.3:   # an escape, sometimes a revert
            defect_no += 1
            ev(t + rng.randrange(1, 48 * 60) * 60_000, "workflow.defect_found", workflow_id=wf,
               defect_id=f"D{seed}-{defect_no}", severity="critical", stage="production",
               category=rng.choice(["revert", "bug"]))
    return out


# --- the engine against the reference ------------------------------------------------------

import math  # noqa: E402
from datetime import timedelta  # noqa: E402

import pytest  # noqa: E402
import redis as redis_lib  # noqa: E402

from data import ledger, reference, scopes  # noqa: E402
from data.aggregator import Aggregator  # noqa: E402
from data.ingest import Ingestor  # noqa: E402
from data.keys import Keys  # noqa: E402
from data.timeutil import HOUR_MS, now_ms, parse_iso, to_datetime  # noqa: E402
from tests.helpers import busy_events  # noqa: E402


def load(r: Any, events: list[dict[str, Any]], batches: int, seed: int) -> None:
    """Shuffled, 5 % duplicated, in several batches: late events must retract what they change."""
    keys = Keys("qms")
    ing, agg = Ingestor(r, keys), Aggregator(r, keys, batch=300)
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, len(events) // 20)
    rng.shuffle(shuffled)
    size = len(shuffled) // batches + 1
    for i in range(0, len(shuffled), size):
        res = ing.ingest(shuffled[i:i + size])
        assert res.rejected == 0, res.errors[:3]
        agg.drain()


def same(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        ok = a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        return [] if ok else [f"{path}: engine {a!r} reference {b!r}"]
    return [] if a == b else [f"{path}: engine {a!r} reference {b!r}"]


def compare(r: Any, events: list[dict[str, Any]], tf: str, end_ms: int | None,
            dimension: str | None = None, value: str | None = None) -> tuple[dict[str, Any], list[str]]:
    scope = scopes.label(dimension, value) if dimension else None
    got = ledger.figures(r, Keys("qms"), tf, end_ms, scope)
    a, b = parse_iso(got["window"]["start"]), parse_iso(got["window"]["end"])
    want = reference.compute_ledger(events, to_datetime(b), timedelta(milliseconds=b - a), dimension, value)
    plain = {k: got[k] for k in ("rows", "kinds", "first_review", "gates")}
    return got, same(plain, want)


@pytest.fixture(scope="module")
def loaded(redis_url: str) -> Any:
    r = redis_lib.Redis.from_url(redis_url)
    r.flushdb()
    start = now_ms() // HOUR_MS * HOUR_MS - 80 * HOUR_MS
    events = ledger_events(11, start, 26, 260)
    load(r, events, batches=5, seed=4)
    yield r, events, start
    r.flushdb()


@pytest.mark.parametrize("tf", ["4h", "24h", "7d"])
def test_ledger_eng001_engine_equals_reference(loaded: Any, tf: str) -> None:
    r, events, start = loaded
    for end in (start + 20 * HOUR_MS, start + 30 * HOUR_MS, None):
        got, diffs = compare(r, events, tf, end)
        assert diffs == []


def test_ledger_eng002_the_comparison_compared_numbers(loaded: Any) -> None:
    """Every figure is exercised: reviews of every kind, findings of each fate, escapes, misses,
    human and any first reviews, calibration and flaky gate runs."""
    r, events, _start = loaded
    got, diffs = compare(r, events, "7d", None)
    assert diffs == []
    k = got["kinds"]
    for kind in ("human", "ai", "bot"):
        assert k[kind]["reviews_completed"] > 5 and k[kind]["approvals"] > 0
        assert k[kind]["findings_accepted"] > 0 and k[kind]["findings_dismissed"] > 0
        assert k[kind]["escapes"] > 0 and 0 < k[kind]["miss_rate"] < 100
        assert k[kind]["time_to_first_review"] is not None
    assert k["gate"]["findings_raised"] > 0
    assert k["ai"]["cost_per_accepted_finding"] > 0 and k["human"]["review_cost_usd"] == 0
    rows = {row["reviewer"]: row for row in got["rows"]}
    assert rows["qms-code-reviewer"]["kind"] == "ai"       # a status agent
    assert rows["helper-ai"]["kind"] == "ai"               # only assigned
    assert rows["dependabot[bot]"]["kind"] == "bot" and rows["ann"]["kind"] == "human"
    fr = got["first_review"]
    assert fr["workflows_human"] > 20 and fr["workflows_any"] > fr["workflows_human"]
    assert fr["time_to_first_human_review"] > fr["time_to_first_review_any"]
    gates = {g["gate"]: g for g in got["gates"]}
    assert sum(g["flaky_fails"] for g in gates.values()) > 0
    assert sum(g["fails"] - g["flaky_fails"] for g in gates.values()) > 0
    assert sum(g["passes_followed_by_production_defect"] for g in gates.values()) > 0


@pytest.mark.parametrize("dimension,value", [("repository", "acme/api"), ("team", "web")])
def test_ledger_eng003_filtered_by_repository_or_team(loaded: Any, dimension: str, value: str) -> None:
    r, events, _start = loaded
    got, diffs = compare(r, events, "7d", None, dimension, value)
    assert diffs == []
    assert got["unfiltered"] == list(ledger.UNFILTERED)
    plain, _ = compare(r, events, "7d", None)
    assert 0 < got["kinds"]["human"]["reviews_completed"] < plain["kinds"]["human"]["reviews_completed"]
    assert got["kinds"]["ai"]["findings_accepted"] == plain["kinds"]["ai"]["findings_accepted"]
    # cost per accepted finding stays unfiltered, like the findings it divides by
    assert got["kinds"]["ai"]["cost_per_accepted_finding"] == pytest.approx(
        plain["kinds"]["ai"]["cost_per_accepted_finding"])
    assert got["kinds"]["ai"]["review_cost_usd"] < plain["kinds"]["ai"]["review_cost_usd"]


def test_ledger_eng004_an_agent_announced_later_turns_its_reviews_ai(r: Any) -> None:
    """Kinds are decided when read: reviews by an id become `ai` (and leave the first-human
    clock) once the id turns out to be an agent, without re-aggregating anything."""
    t0 = now_ms() // HOUR_MS * HOUR_MS - 5 * HOUR_MS
    def e(i: int, minute: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"id": f"x{i}", "type": type_, "timestamp": fmt_ms(t0 + minute * 60_000), "source": "t", "data": data}
    evs = [e(1, 0, "workflow.pr_created", workflow_id="W", pr_number=1, repository="acme/api", author="ann"),
           e(2, 10, "workflow.review_completed", workflow_id="W", reviewer="newbot", verdict="approved"),
           e(3, 40, "workflow.review_started", workflow_id="W", reviewer="bob")]
    load(r, evs, 1, 1)
    before, diffs = compare(r, evs, "24h", None)
    assert diffs == [] and before["kinds"]["human"]["reviews_completed"] == 1
    assert before["first_review"]["time_to_first_human_review"] == pytest.approx(10 / 60)
    late = [e(4, 200, "system.agent_status_changed", agent_id="newbot", status="idle")]
    load(r, late, 1, 1)
    after, diffs = compare(r, evs + late, "24h", None)
    assert diffs == []
    assert after["kinds"]["ai"]["reviews_completed"] == 1 and after["kinds"]["human"]["reviews_completed"] == 0
    assert after["first_review"]["time_to_first_human_review"] == pytest.approx(40 / 60)
    assert after["first_review"]["time_to_first_review_any"] == pytest.approx(10 / 60)


def test_ledger_eng005_late_creation_and_resolution_retract_exactly(r: Any) -> None:
    """A pr_created and a later change of mind arriving last move the figures as the reference says."""
    t0 = now_ms() // HOUR_MS * HOUR_MS - 6 * HOUR_MS
    def e(i: int, minute: int, type_: str, **data: Any) -> dict[str, Any]:
        return {"id": f"y{i}", "type": type_, "timestamp": fmt_ms(t0 + minute * 60_000), "source": "t", "data": data}
    first = [e(2, 30, "workflow.review_started", workflow_id="W", reviewer="coderabbit", reviewer_kind="ai"),
             e(3, 31, "workflow.defect_found", workflow_id="W", defect_id="d1", severity="minor", found_by="coderabbit",
               found_by_kind="ai"),
             e(4, 50, "workflow.defect_resolved", defect_id="d1", resolution="fixed"),
             e(5, 60, "workflow.review_completed", workflow_id="W", reviewer="ann", verdict="approved"),
             e(6, 90, "workflow.defect_found", workflow_id="W", defect_id="p1", severity="critical", stage="production")]
    load(r, first, 1, 1)
    got, diffs = compare(r, first, "24h", None)
    assert diffs == [] and got["kinds"]["ai"]["time_to_first_review"] is None
    assert got["kinds"]["ai"]["precision"] == 100.0 and got["kinds"]["human"]["miss_rate"] == 100.0
    late = [e(1, 0, "workflow.pr_created", workflow_id="W", pr_number=1, repository="acme/api", author="bob"),
            e(7, 120, "workflow.defect_resolved", defect_id="d1", resolution="false_positive")]
    load(r, late, 1, 1)
    got, diffs = compare(r, first + late, "24h", None)
    assert diffs == []
    assert got["kinds"]["ai"]["time_to_first_review"] == pytest.approx(0.5)
    assert got["kinds"]["ai"]["precision"] == 0.0 and got["kinds"]["ai"]["findings_dismissed"] == 1
    assert got["kinds"]["human"]["escapes"] == 1


def test_ledger_eng006_simulated_activity(r: Any) -> None:
    """The simulator's activity (agents, people, findings and their fates, gates): the ledger
    read from the rollups equals the reference, unfiltered and per team."""
    # The simulator's activity follows the hour and the weekday (at 01:10 on a Friday the
    # bots had no escape): a Thursday's, moved to the last whole hour but one.
    end_ms = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    events = busy_events(30, end_ms, 5, 0.15, after_ms=30 * 60_000)
    load(r, events, batches=4, seed=2)
    for tf in ("4h", "24h"):
        got, diffs = compare(r, events, tf, end_ms)
        assert diffs == []
    teams = sorted({e["data"].get("team") for e in events if e["type"] == "workflow.pr_created"} - {None})
    for team in teams[:2]:
        assert compare(r, events, "24h", end_ms, "team", team)[1] == []
    # the simulator's ledger facts are all there: people, agents and bots reviewing, findings
    # accepted and dismissed, escapes, bots first on a pull request, flaky and miscalibrated gates
    k, fr, gates = got["kinds"], got["first_review"], got["gates"]
    assert all(k[kind]["reviews_completed"] > 20 and k[kind]["escapes"] > 0 for kind in ("human", "ai", "bot"))
    assert k["ai"]["findings_dismissed"] > 10 and k["ai"]["precision"] < k["human"]["precision"]
    assert fr["workflows_any"] > fr["workflows_human"] > 20
    assert fr["time_to_first_review_any"] < fr["time_to_first_human_review"]
    assert sum(g["flaky_fails"] for g in gates) > 0 and sum(g["passes_followed_by_production_defect"] for g in gates) > 0


def test_ledger_eng007_each_scope_in_a_family_of_its_own_the_one_family_of_before_still_read(r: Any) -> None:
    """A scope's ledger copies go to a rollup family of its own under the ledger's field names
    (one hash per bucket and scope stays a compact listpack: the one family "w" held thousands of
    fields a day, each prefixed with its scope). Copies in that one family are still summed in:
    here half the events are aggregated, their scoped buckets moved into "w" as the code of before
    wrote them, then the rest retract and re-add into the scopes' families; each scope's ledger
    still equals the reference."""
    from data.ledger_contrib import SEP, scoped_family
    r.flushdb()
    start = now_ms() // HOUR_MS * HOUR_MS - 80 * HOUR_MS
    events = ledger_events(12, start, 26, 120)
    half = len(events) // 2
    load(r, events[:half], batches=2, seed=3)
    by_family = {scoped_family(s): s for s in ("r:acme/api", "t:web")}
    moved = 0
    for key in list(r.scan_iter(match="qms:r:*", count=1000)):
        parts = key.decode().split(":")
        fam = parts[3]
        if not fam.startswith("w"):
            continue
        scope = bytes.fromhex(fam[1:]).decode()
        assert fam == scoped_family(scope) and scope[:2] in ("r:", "t:")
        old = ":".join(parts[:3] + ["w"] + parts[4:])
        with r.pipeline() as p:
            for f, v in r.hgetall(key).items():
                p.hincrby(old, scope + SEP + f.decode(), int(v))
            p.pexpire(old, r.pttl(key))
            p.delete(key)
            p.execute()
        moved += fam in by_family
    assert moved > 10
    load(r, events[half:], batches=2, seed=5)
    assert {k.decode().split(":")[3] for k in r.scan_iter(match="qms:r:1h:w*", count=1000)} >= {"w", *by_family}
    for dimension, value in (("repository", "acme/api"), ("team", "web")):
        got, diffs = compare(r, events, "7d", None, dimension, value)
        assert diffs == []
        assert got["kinds"]["human"]["reviews_completed"] > 0

