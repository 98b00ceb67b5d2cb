"""Per-role sanitisation: hidden fields, pseudonyms, role merging. No Redis."""
from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import pytest

from auth.sanitize import Sanitizer, merge

SECRET = b"s3cret-for-tests"


def review_event(reviewer: str = "dana") -> dict[str, Any]:
    return {"id": "evt-1", "type": "workflow.review_completed", "timestamp": "2025-08-17T06:23:14Z",
            "source": "qms-orchestrator",
            "data": {"workflow_id": "WF-1", "reviewer": reviewer, "verdict": "approved", "author": "erin",
                     "metrics": {"coverage_percentage": 87.5, "threshold": 80.0}},
            "metadata": {"priority": "normal", "correlation_id": "corr-1", "tags": ["quality"]}}


def test_san001_hidden_fields_at_any_depth() -> None:
    s = Sanitizer(frozenset({"data.author", "metadata.correlation_id", "data.metrics.threshold", "source"}))
    out = s.event(review_event())
    assert "author" not in out["data"] and "source" not in out
    assert out["metadata"] == {"priority": "normal", "tags": ["quality"]}
    assert out["data"]["metrics"] == {"coverage_percentage": 87.5}
    assert out["data"]["reviewer"] == "dana"                     # not hidden, not pseudonymised


def test_san002_missing_paths_and_non_dicts_ignored() -> None:
    s = Sanitizer(frozenset({"data.nope", "nothing.here", "data.verdict.deeper", "metadata.tags.x"}))
    ev = review_event()
    assert s.event(ev) == ev


def test_san003_input_not_mutated() -> None:
    ev = review_event()
    before = copy.deepcopy(ev)
    s = Sanitizer(frozenset({"data.author", "data.metrics.threshold", "metadata.correlation_id"}), True, SECRET)
    out = s.event(ev)
    assert ev == before
    assert out is not ev and out["data"] is not ev["data"]
    row = {"workflow_id": "WF-1", "author": "erin", "step": "code_review"}
    row_before = dict(row)
    s.row(row)
    assert row == row_before
    assert Sanitizer.none().event(ev) is not ev


def test_san004_pseudonym_stable_distinct_and_keyed() -> None:
    a = Sanitizer(pseudonymize=True, secret=SECRET)
    b = Sanitizer(pseudonymize=True, secret=b"another-secret")
    p = a.pseudonym("erin")
    assert p == a.pseudonym("erin") == Sanitizer(pseudonymize=True, secret=SECRET).pseudonym("erin")
    assert p == "user-" + hmac.new(SECRET, b"erin", hashlib.sha256).hexdigest()[:10]
    assert p.startswith("user-") and len(p) == 15 and "erin" not in p
    assert a.pseudonym("frank") != p
    assert b.pseudonym("erin") != p


def test_san005_person_fields_pseudonymised_agents_kept() -> None:
    s = Sanitizer(pseudonymize=True, secret=SECRET)
    human = s.event(review_event("dana"))["data"]
    assert human["reviewer"] == s.pseudonym("dana") and human["author"] == s.pseudonym("erin")
    assert human["workflow_id"] == "WF-1" and human["verdict"] == "approved"
    agent = s.event(review_event("qms-code-reviewer"))["data"]
    assert agent["reviewer"] == "qms-code-reviewer"
    cfg = {"id": "e2", "type": "system.configuration_changed", "timestamp": "2025-08-17T06:23:14Z",
           "source": "ops", "data": {"key": "k", "changed_by": "gina"}}
    assert s.event(cfg)["data"]["changed_by"] == s.pseudonym("gina")
    survey = {"id": "e3", "type": "user.survey_submitted", "timestamp": "2025-08-17T06:23:14Z",
              "source": "ui", "data": {"user": "hank", "score": 4}}
    assert s.event(survey)["data"] == {"user": s.pseudonym("hank"), "score": 4}
    # An author named like an agent is still a person: only reviewers may be agents.
    odd = review_event()
    odd["data"]["author"] = "qms-intern"
    assert s.event(odd)["data"]["author"] == s.pseudonym("qms-intern")


def test_san006_hidden_beats_pseudonym() -> None:
    s = Sanitizer(frozenset({"data.author"}), True, SECRET)
    data = s.event(review_event())["data"]
    assert "author" not in data and data["reviewer"] == s.pseudonym("dana")


def test_san007_rows() -> None:
    s = Sanitizer(frozenset({"data.team", "title"}), True, SECRET)
    row = {"workflow_id": "WF-1", "author": "erin", "team": "payments", "title": "fix", "reviewer": "qms-x",
           "user": "ivy"}
    assert s.row(row) == {"workflow_id": "WF-1", "author": s.pseudonym("erin"), "reviewer": "qms-x",
                          "user": s.pseudonym("ivy")}
    assert s.row(row, person_keys=("owner",))["author"] == "erin"
    assert s.rows([row, {"author": "jay"}])[1] == {"author": s.pseudonym("jay")}


def test_san008_kpi_widgets_unchanged() -> None:
    widgets = [{"id": "gate_pass_rate", "type": "kpi_card", "data": {"current_value": 90.0}},
               {"id": "skill_development_areas", "type": "kpi_card", "data": {"current_value": ["security"]}}]
    s = Sanitizer(frozenset({"data.author"}), True, SECRET)
    assert s.kpi_widgets(widgets) == widgets


def test_san009_merge_most_permissive_wins() -> None:
    exec_role = Sanitizer(frozenset({"data.author", "data.reviewer", "metadata.correlation_id"}), True, SECRET)
    qa_role = Sanitizer(frozenset({"data.author", "data.reviewer"}), False, SECRET)
    lead_role = Sanitizer(frozenset({"data.author", "source"}), True, SECRET)
    m = merge([exec_role, qa_role])
    assert m.hidden_fields == {"data.author", "data.reviewer"} and not m.pseudonymize
    m2 = merge([exec_role, lead_role])
    assert m2.hidden_fields == {"data.author"} and m2.pseudonymize and m2.secret == SECRET
    assert merge([exec_role]) == exec_role
    assert merge([exec_role, Sanitizer.none()]).is_noop
    with pytest.raises(ValueError):
        merge([])
    with pytest.raises(ValueError):
        merge([exec_role, Sanitizer(pseudonymize=True, secret=b"other")])


def test_san010_none_changes_nothing() -> None:
    n = Sanitizer.none()
    assert n.is_noop and not n.pseudonymize and not n.hidden_fields
    ev = review_event()
    assert n.event(ev) == ev
    assert n.row({"author": "erin"}) == {"author": "erin"}


def test_san011_construction_checks() -> None:
    with pytest.raises(ValueError):
        Sanitizer(pseudonymize=True)                      # a pseudonym needs a secret
    with pytest.raises(ValueError):
        Sanitizer(frozenset({"data..author"}))
    s = Sanitizer({"data.author"}, True, SECRET)          # type: ignore[arg-type]
    assert isinstance(s.hidden_fields, frozenset) and hash(s)
    assert "s3cret" not in repr(s)


# --- team scope (config/rbac.yaml other_teams) ------------------------------------------

from auth.sanitize import OtherTeams, ScopeCount, TeamScope  # noqa: E402

TEAMS = {"W-A1": "core", "W-A2": "core", "W-B1": "web"}
FREE = frozenset({"data.title", "data.message"})


class Lookups:
    """A fake of auth.scope.resolver that records each call (one per batch, not per row)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def __call__(self, wf: list[str], df: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls.append((wf, df))
        return {w: TEAMS.get(w) for w in wf}, {d: "web" if d == "D-B" else None for d in df}


def dev(team: Any = "core", viewer: str = "ann", omit: frozenset[str] = frozenset(),
        lookups: Lookups | None = None) -> Sanitizer:
    return Sanitizer(frozenset({"data.user"}), False, SECRET, OtherTeams(FREE | {"data.user"}, True, True, omit),
                     TeamScope(viewer, team, lookups or Lookups()))


def pr(wf: str, author: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"id": "p-" + wf, "type": "workflow.pr_created", "timestamp": "2025-08-17T06:00:00Z", "source": "gh",
            "data": {"workflow_id": wf, "pr_number": 1, "repository": "r", "author": author, "title": title,
                     **extra}, "metadata": {"priority": "normal", "note": "call cid"}}


def test_san012_other_teams_events_lose_names_titles_and_undeclared_fields_in_one_lookup() -> None:
    look = Lookups()
    s = dev(lookups=look)
    evs = [pr("W-A1", "bob", "core fix"), pr("W-B1", "cid", "web launch", ticket="ACME-1"),
           review_event("dot") | {"data": {"workflow_id": "W-B1", "reviewer": "dot", "verdict": "approved"}},
           review_event("qms-code-reviewer") | {"data": {"workflow_id": "W-B1", "reviewer": "qms-code-reviewer",
                                                         "verdict": "approved"}},
           {"id": "q", "type": "system.queue_depth_updated", "timestamp": "2025-08-17T06:00:00Z", "source": "s",
            "data": {"queue": "q1", "depth": 3}}]
    out = s.events(evs)
    assert look.calls == [(["W-A1", "W-B1"], [])], "one batch for every row"
    assert out[0]["data"]["author"] == "bob" and out[0]["data"]["title"] == "core fix"
    assert out[0]["metadata"]["note"] == "call cid", "own team: as the role shows any row"
    assert out[1]["data"] == {"workflow_id": "W-B1", "pr_number": 1, "repository": "r", "author": s.pseudonym("cid")}
    assert out[1]["metadata"] == {"priority": "normal"}, "undeclared metadata is free text too"
    assert out[2]["data"]["reviewer"] == s.pseudonym("dot")
    assert out[3]["data"]["reviewer"] == "qms-code-reviewer", "agents are not people"
    assert out[4] == evs[4], "a queue is no team's row"
    assert s.last_scoped == ScopeCount(3, 0) and s.scoped_total == ScopeCount(3, 0)
    info = s.scope_info()
    assert info == {"teams": "own", "team": "core", "shown_without_names": 3, "left_out": 0,
                    "note": "3 rows of other teams shown without names"}
    s.events(evs[:2])
    assert look.calls[1:] == [] and s.last_scoped == ScopeCount(1, 0) and s.scoped_total == ScopeCount(4, 0)


def test_san013_omit_per_kind_and_single_rows_never_omitted() -> None:
    s = dev(omit=frozenset({"events", "reviews"}))
    out = s.events([pr("W-A1", "bob", "x"), pr("W-B1", "cid", "y")])
    assert [e["data"]["workflow_id"] for e in out] == ["W-A1"] and s.last_scoped == ScopeCount(0, 1)
    assert "1 row of other teams left out" in s.scope_info()["note"]
    rows = [{"reviewer": "dot", "workflow_id": "W-B1", "since": "t"},
            {"workflow_id": "W-B1", "author": "cid", "team": "web", "title": "y"},
            {"workflow_id": "W-B1", "policy": "p", "failed_checks": 1}]
    kept = s.rows(rows)
    assert kept == [{"workflow_id": "W-B1", "author": s.pseudonym("cid"), "team": "web"}, rows[2]]
    assert s.last_scoped == ScopeCount(2, 1)
    assert s.rows(rows[:1], kind="workflows")[0]["reviewer"] == s.pseudonym("dot"), "an explicit kind wins"
    one = s.event(pr("W-B1", "cid", "y"))
    assert one["data"]["author"] == s.pseudonym("cid") and "title" not in one["data"]
    with pytest.raises(ValueError):
        s.rows(rows, kind="pulls")


def test_san014_own_rows_by_team_or_by_name_and_unknown_teams_fail_closed() -> None:
    s = dev(viewer="cid")                                  # cid's latest PR is core's, W-B1 is his own
    assert s.event(pr("W-B1", "cid", "mine"))["data"]["title"] == "mine"
    assert s.row({"reviewer": "cid", "workflow_id": "W-B1"}) == {"reviewer": "cid", "workflow_id": "W-B1"}
    assert s.row({"workflow_id": "W-Z", "author": "bob"})["author"] == s.pseudonym("bob"), "no known team"
    nobody = dev(team=None)
    out = nobody.rows([{"workflow_id": w, "author": "bob"} for w in TEAMS])
    assert all(x["author"] == s.pseudonym("bob") for x in out)
    assert "your team is not known" in nobody.scope_info()["note"]
    lazy = dev(team=lambda: "web")
    assert lazy.row({"workflow_id": "W-B1", "author": "cid"})["author"] == "cid" and lazy.scope.team == "web"
    resolved = dev()
    gone = {"id": "r", "type": "workflow.defect_resolved", "timestamp": "2025-08-17T06:00:00Z", "source": "s",
            "data": {"defect_id": "D-B", "resolution": "fixed", "comment": "cid broke it"}}
    assert resolved.event(gone)["data"] == {"defect_id": "D-B", "resolution": "fixed"}, "a defect's team is its workflow's"
    bare = Sanitizer(other_teams=OtherTeams(FREE), secret=SECRET)
    assert bare.row({"workflow_id": "W-A1", "author": "bob"})["author"] == bare.pseudonym("bob"), "no viewer: scoped"


def test_san015_merge_gives_each_row_the_most_permissive_view() -> None:
    scope = TeamScope("ann", "core", Lookups())
    developer = Sanitizer(frozenset({"data.user"}), False, SECRET, OtherTeams(FREE | {"data.user"}), scope)
    operations = Sanitizer(frozenset({"data.title", "data.user"}), True, SECRET)
    qa = Sanitizer(frozenset({"data.user"}), False, SECRET)
    both = merge([developer, operations])
    assert both.other_teams == OtherTeams(frozenset({"data.title", "data.user"}), True, False) and both.scope is scope
    own, theirs = both.events([pr("W-A1", "bob", "a"), pr("W-B1", "cid", "b", ticket="T")])
    assert own["data"]["author"] == "bob" and own["data"]["title"] == "a"
    assert theirs["data"]["author"] == both.pseudonym("cid") and "title" not in theirs["data"]
    assert theirs["data"]["ticket"] == "T", "operations sees undeclared fields of every row"
    assert merge([developer, qa]).other_teams is None and merge([developer, qa]).scope_info() == {"teams": "all"}
    omit_all = Sanitizer(other_teams=OtherTeams(FREE, omit=frozenset({"events"})), secret=SECRET, scope=scope)
    assert merge([omit_all, developer]).other_teams.omit == frozenset()
    assert not merge([developer]).is_noop and merge([developer]) == developer
    with pytest.raises(ValueError):
        Sanitizer(other_teams=OtherTeams(FREE))             # pseudonyms need a secret
    with pytest.raises(ValueError):
        OtherTeams(FREE, omit=frozenset({"pulls"}))


def test_san016_prepare_looks_up_a_page_once() -> None:
    look = Lookups()
    s = dev(lookups=look, omit=frozenset({"reviews"}))
    page = [pr("W-A1", "bob", "a"), pr("W-B1", "cid", "b"), {"workflow_id": "W-A2", "author": "bob"},
            {"reviewer": "dot", "workflow_id": "W-B1", "since": "t"}, {"queue": "q", "depth": 1}]
    s.prepare(page)
    assert look.calls == [(["W-A1", "W-A2", "W-B1"], [])]
    for ev in page[:2]:
        s.events([ev])
    assert len(look.calls) == 1, "rows sanitised one by one after prepare: no further lookup"
    assert s.scoped_total == ScopeCount(1, 0)
