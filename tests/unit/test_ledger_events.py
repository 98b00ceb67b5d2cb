"""The ledger's optional event fields: reviewer_kind, found_by_kind, head_sha (data/events.py)."""
from __future__ import annotations

from typing import Any

import pytest

from data.events import validate


def _ev(type_: str, **data: Any) -> dict[str, Any]:
    return {"id": "e1", "type": type_, "timestamp": "2026-01-02T03:04:05Z", "source": "t",
            "metadata": {"priority": "normal"}, "data": data}


REVIEW = {"workflow_id": "acme/api#1", "reviewer": "copilot"}
GATE = {"workflow_id": "acme/api#1", "gate_name": "ci", "passed": True}
DEFECT = {"workflow_id": "acme/api#1", "defect_id": "d1", "severity": "minor", "found_by": "coderabbit"}


@pytest.mark.parametrize("kind", ["human", "ai", "bot"])
def test_ledger_evt001_reviewer_kind_accepted_on_both_review_events(kind: str) -> None:
    for ev in (_ev("workflow.review_started", **REVIEW, reviewer_kind=kind),
               _ev("workflow.review_completed", **REVIEW, verdict="approved", reviewer_kind=kind)):
        got, _ts, errors = validate(ev)
        assert errors == [] and got["data"]["reviewer_kind"] == kind


@pytest.mark.parametrize("bad", ["gate", "AI", "", 1, "robot", ["ai"]])
def test_ledger_evt002_reviewer_kind_outside_the_list_is_refused_naming_the_field(bad: Any) -> None:
    got, _ts, errors = validate(_ev("workflow.review_started", **REVIEW, reviewer_kind=bad))
    assert got is None
    assert errors == ["data.reviewer_kind: must be one of human, ai, bot"]


@pytest.mark.parametrize("kind", ["human", "ai", "bot", "gate"])
def test_ledger_evt003_found_by_kind_accepts_gate_too(kind: str) -> None:
    got, _ts, errors = validate(_ev("workflow.defect_found", **DEFECT, found_by_kind=kind))
    assert errors == [] and got["data"]["found_by_kind"] == kind


def test_ledger_evt004_found_by_kind_refused_when_unknown() -> None:
    got, _ts, errors = validate(_ev("workflow.defect_found", **DEFECT, found_by_kind="robot"))
    assert got is None and errors == ["data.found_by_kind: must be one of human, ai, bot, gate"]


@pytest.mark.parametrize("type_", ["workflow.quality_gate_executed", "workflow.quality_gate_passed",
                                   "workflow.quality_gate_failed"])
@pytest.mark.parametrize("sha", ["abcd", "0123456789abcdef0123456789abcdef01234567", "A" * 64])
def test_ledger_evt005_head_sha_on_every_gate_type(type_: str, sha: str) -> None:
    got, _ts, errors = validate(_ev(type_, **GATE, head_sha=sha))
    assert errors == [] and got["data"]["head_sha"] == sha


@pytest.mark.parametrize("sha", ["abc", "a" * 65, "xyz1", "abcd ", "", 1234, ["abcd"]])
def test_ledger_evt006_head_sha_bounds(sha: Any) -> None:
    got, _ts, errors = validate(_ev("workflow.quality_gate_executed", **GATE, head_sha=sha))
    assert got is None
    assert errors == ["data.head_sha: must be a commit id of 4 to 64 hexadecimal digits"]


def test_ledger_evt007_the_fields_stay_optional() -> None:
    for ev in (_ev("workflow.review_started", **REVIEW), _ev("workflow.defect_found", **DEFECT),
               _ev("workflow.quality_gate_executed", **GATE)):
        assert validate(ev)[2] == []
