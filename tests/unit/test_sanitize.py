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
