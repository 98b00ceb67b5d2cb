"""The reviewer ledger's pure parts: field encoding, the first-human-review candidates, kinds
decided when read, "before end" figures, and how a reviewer's row leaves for a caller."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from auth.sanitize import OtherTeams, Sanitizer
from auth.teams import TeamScope
from data import contrib, ledger, ledger_contrib
from data.ledger_contrib import LEDGER, field, parse

MIN = 60_000


def _ev(i: int, minute: int, type_: str, **data: Any) -> dict[str, Any]:
    return {"id": f"e{i:03d}", "type": type_, "data": data, "_ts": minute * MIN}


def _sums(events: list[dict[str, Any]]) -> dict[str, int]:
    """Fold the events into their entities and add up the ledger contributions (all time)."""
    states: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for ev in events:
        for kind, ident in contrib.entity_keys(ev):
            contrib.fold(kind, states[(kind, ident)], ev, ev["_ts"])
    out: dict[str, int] = defaultdict(int)
    for (kind, ident), state in states.items():
        for fam, f, _ts, v, _step in contrib.entity_contributions(kind, ident, state, 8 * 3_600_000):
            if fam == LEDGER:
                out[f] += v
    return out


@pytest.mark.parametrize("actor", ["ann", "a:b", "x|y", "dependabot[bot]"])
def test_ledger_unit001_fields_round_trip(actor: str) -> None:
    assert parse(field("rc", actor, "ai", "")) == ("rc", actor, "ai", "")
    assert parse("rc:ann") is None


REVIEWS = [_ev(1, 0, "workflow.pr_created", workflow_id="W", pr_number=1, repository="r", author="zed"),
           _ev(2, 10, "workflow.review_started", workflow_id="W", reviewer="r1"),
           _ev(3, 20, "workflow.review_started", workflow_id="W", reviewer="r2", reviewer_kind="ai"),
           _ev(4, 30, "workflow.review_started", workflow_id="W", reviewer="r3"),
           _ev(5, 40, "workflow.review_started", workflow_id="W", reviewer="r4", reviewer_kind="human"),
           _ev(6, 50, "workflow.review_started", workflow_id="W", reviewer="r5")]


@pytest.mark.parametrize("agents,minutes", [(set(), 10), ({"r1"}, 30), ({"r1", "r3"}, 40), ({"r1", "r3", "r5"}, 40),
                                            ({"r3"}, 10)])
def test_ledger_unit002_first_human_review_whoever_turns_out_an_agent(agents: set[str], minutes: int) -> None:
    doc = ledger.assemble(_sums(REVIEWS), agents, end=10 ** 15)
    assert doc["first_review"]["workflows_human"] == 1
    assert doc["first_review"]["time_to_first_human_review"] == pytest.approx(minutes / 60)
    assert doc["first_review"]["time_to_first_review_any"] == pytest.approx(10 / 60)
    kinds = {row["reviewer"]: row["kind"] for row in doc["rows"]}
    assert kinds == {"r1": "ai" if "r1" in agents else "human", "r2": "ai", "r3": "ai" if "r3" in agents else "human",
                     "r4": "human", "r5": "ai" if "r5" in agents else "human"}


def test_ledger_unit003_an_escape_counts_in_the_miss_rate_only_before_the_window_end() -> None:
    evs = [_ev(1, 0, "workflow.pr_created", workflow_id="W", pr_number=1, repository="r", author="zed"),
           _ev(2, 5, "workflow.review_completed", workflow_id="W", reviewer="ann", verdict="approved"),
           _ev(3, 125, "workflow.defect_found", workflow_id="W", defect_id="p", severity="major", stage="production")]
    sums = _sums(evs)
    before = ledger.assemble(sums, (), end=120 * MIN)["rows"][0]
    after = ledger.assemble(sums, (), end=126 * MIN)["rows"][0]
    assert (before["workflows_approved"], before["workflows_approved_with_escape"], before["miss_rate"]) == (1, 0, 0.0)
    assert (after["workflows_approved_with_escape"], after["miss_rate"]) == (1, 100.0)
    assert before["escapes"] == after["escapes"] == 1        # summed over all time here: the defect is in it


def test_ledger_unit004_a_findings_latest_resolution_counts() -> None:
    evs = [_ev(1, 1, "workflow.defect_found", workflow_id="W", defect_id="d", severity="minor", found_by="bot[bot]",
               found_by_kind="bot"),
           _ev(2, 3, "workflow.defect_resolved", defect_id="d", resolution="false_positive"),
           _ev(3, 2, "workflow.defect_resolved", defect_id="d", resolution="fixed")]
    row = ledger.assemble(_sums(evs), (), end=10 ** 15)["rows"][0]
    assert (row["kind"], row["findings_raised"], row["findings_accepted"], row["findings_dismissed"]) == ("bot", 1, 0, 1)


def _san(**kw: Any) -> Sanitizer:
    return Sanitizer(secret=b"k" * 32, **kw)


def test_ledger_unit005_who_leaves_with_a_name() -> None:
    assert ledger.visible(Sanitizer.none(), "human", "ann", None) == "named"
    assert ledger.visible(_san(pseudonymize=True), "human", "ann", None) == "pseudonym"
    assert ledger.visible(_san(pseudonymize=True), "ai", "coderabbit", None) == "named"
    scoped = _san(other_teams=OtherTeams(), scope=TeamScope("ann", "core"))
    assert ledger.visible(scoped, "human", "ann", None) == "named"             # oneself
    assert ledger.visible(scoped, "human", "bob", "core") == "named"           # one's team
    assert ledger.visible(scoped, "human", "cy", "web") == "pseudonym"
    assert ledger.visible(scoped, "mixed", "cy", None) == "pseudonym"
    assert ledger.visible(scoped, "bot", "dependabot[bot]", None) == "named"
    omit = _san(other_teams=OtherTeams(omit=frozenset({"reviews"})), scope=TeamScope("ann", "core"))
    assert ledger.visible(omit, "human", "cy", "web") == "omit"
    doc = {"rows": [{"reviewer": "cy", "kind": "human", "review_cost_usd": 1.0, "cost_per_accepted_finding": 1.0},
                    {"reviewer": "coderabbit", "kind": "ai", "review_cost_usd": 2.0, "cost_per_accepted_finding": None}],
           "kinds": {"human": {"review_cost_usd": 1.0, "cost_per_accepted_finding": 1.0}}}
    out = ledger.sanitize(doc, omit, {"cy": "web"}, see_cost=False)
    assert [r["reviewer"] for r in out["rows"]] == ["coderabbit"] and out["scope"]["left_out"] == 1
    assert out["rows"][0]["review_cost_usd"] is None and out["kinds"]["human"]["review_cost_usd"] is None
    assert out["rows"][0]["href"] == "/reviewers/coderabbit" and doc["rows"][1]["review_cost_usd"] == 2.0


def test_ledger_unit006_gate_flakiness_needs_the_same_commit_and_a_later_pass() -> None:
    g = "workflow.quality_gate_executed"
    evs = [_ev(1, 1, g, workflow_id="W", gate_name="ci", passed=False, head_sha="aaaa"),
           _ev(2, 2, g, workflow_id="W", gate_name="ci", passed=True, head_sha="bbbb"),     # another commit
           _ev(3, 3, g, workflow_id="W", gate_name="ci", passed=False, head_sha="bbbb"),
           _ev(4, 4, g, workflow_id="W", gate_name="lint", passed=True, head_sha="bbbb"),   # another gate
           _ev(5, 5, g, workflow_id="W", gate_name="ci", passed=False),                     # no commit: never flaky
           _ev(6, 6, g, workflow_id="W", gate_name="ci", passed=True, head_sha="aaaa")]
    gates = {x["gate"]: x for x in ledger.assemble(_sums(evs), (), end=10 ** 15)["gates"]}
    assert (gates["ci"]["fails"], gates["ci"]["flaky_fails"], gates["ci"]["passes"]) == (3, 1, 2)
    assert gates["lint"]["fails"] == 0 and gates["lint"]["flakiness"] is None
