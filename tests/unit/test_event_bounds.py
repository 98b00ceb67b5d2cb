"""The bounds of the event contract (docs/EVENTS.md): every number finite and inside its
documented range, names short and free of control characters, timestamps after 2000.
Each bound is checked on both sides: the limit itself passes, one step past it is refused
with the field named."""
from __future__ import annotations

import math
from typing import Any

import pytest

from data.events import validate

NOW = 1_764_000_000_000


def _ev(type_: str, data: dict[str, Any], **over: Any) -> dict[str, Any]:
    e = {"id": "e1", "type": type_, "timestamp": "2025-11-24T12:00:00Z", "source": "ci", "data": data,
         "metadata": {"priority": "normal"}}
    e.update(over)
    return e


REVIEW = {"workflow_id": "W", "reviewer": "r", "verdict": "approved"}
GATE = {"workflow_id": "W", "gate_name": "lint", "passed": True}
PR = {"workflow_id": "W", "pr_number": 1, "repository": "repo", "author": "a"}

# (type, base data, field, the largest/smallest good value, the first bad value)
LIMITS = [
    ("workflow.review_completed", REVIEW, "cost_usd", 1_000_000, 1_000_000.01),
    ("workflow.review_completed", REVIEW, "cost_usd", 0, -0.01),
    ("workflow.review_completed", REVIEW, "cost_usd", 0.5, 1e13),
    ("workflow.quality_gate_executed", GATE, "execution_time", 604_800, 604_800.5),
    ("workflow.quality_gate_executed", GATE, "execution_time", 0, -1),
    ("system.queue_depth_updated", {"queue": "q"}, "depth", 10_000_000, 10_000_001),
    ("workflow.pr_created", PR, "pr_number", 2_147_483_647, 2_147_483_648),
    ("workflow.pr_created", PR, "pr_number", 1, 0),
    ("system.agent_status_changed", {"agent_id": "a", "status": "active"}, "load", 1, 1.0001),
    ("user.survey_submitted", {"user": "u"}, "score", 5, 5.5),
    ("user.survey_submitted", {"user": "u"}, "score", 1, 0.99),
    ("system.performance_threshold_exceeded", {"metric": "m", "threshold": 1}, "value", 1e12, 1.0001e12),
    ("system.performance_threshold_exceeded", {"metric": "m", "value": 1}, "threshold", -1e12, -1.0001e12),
]


@pytest.mark.parametrize("type_, base, field, good, bad", LIMITS)
def test_bnd001_numbers_at_their_limit_pass_and_past_it_are_refused(type_: str, base: dict[str, Any], field: str,
                                                                    good: Any, bad: Any) -> None:
    ev, _, errors = validate(_ev(type_, {**base, field: good}), NOW, 900_000)
    assert ev is not None and errors == []
    ev, _, errors = validate(_ev(type_, {**base, field: bad}), NOW, 900_000)
    assert ev is None and any(e.startswith(f"data.{field}:") for e in errors), errors


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("type_, base, field", [
    ("workflow.review_completed", REVIEW, "cost_usd"), ("workflow.quality_gate_executed", GATE, "execution_time"),
    ("system.performance_threshold_exceeded", {"metric": "m", "threshold": 1}, "value"),
    ("system.agent_status_changed", {"agent_id": "a", "status": "idle"}, "load"),
])
def test_bnd002_non_finite_numbers_are_refused(value: float, type_: str, base: dict[str, Any], field: str) -> None:
    ev, _, errors = validate(_ev(type_, {**base, field: value}), NOW, 900_000)
    assert ev is None and any(e.startswith(f"data.{field}:") for e in errors), errors


@pytest.mark.parametrize("where, event", [
    ("data.metrics.coverage", _ev("workflow.quality_gate_executed", {**GATE, "metrics": {"coverage": math.inf}})),
    ("data.metrics.deep", _ev("workflow.quality_gate_executed", {**GATE, "metrics": {"deep": [1, {"x": math.nan}]}})),
    ("data.extra", _ev("workflow.quality_gate_executed", {**GATE, "extra": 1 << 70})),
    ("metadata.weight", _ev("workflow.quality_gate_executed", GATE, metadata={"priority": "low", "weight": math.inf})),
    ("data.new", _ev("system.configuration_changed", {"key": "k", "new": -math.inf})),
])
def test_bnd003_numbers_nested_anywhere_must_be_finite(where: str, event: dict[str, Any]) -> None:
    ev, _, errors = validate(event, NOW, 900_000)
    assert ev is None and any(e.startswith(where) for e in errors), errors


def test_bnd004_nesting_is_bounded() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = {"x": deep}
    ev, _, errors = validate(_ev("workflow.quality_gate_executed", {**GATE, "metrics": deep}), NOW, 900_000)
    assert ev is None and any("nested deeper" in e for e in errors), errors


@pytest.mark.parametrize("field", ["workflow_id", "repository", "author", "team"])
def test_bnd005_names_are_at_most_256_characters_without_control_characters(field: str) -> None:
    ok, _, errors = validate(_ev("workflow.pr_created", {**PR, field: "x" * 256}), NOW, 900_000)
    assert ok is not None, errors
    for bad in ("x" * 257, "a\nb", "tab\there", "nul\x00", "del\x7f"):
        ev, _, errors = validate(_ev("workflow.pr_created", {**PR, field: bad}), NOW, 900_000)
        assert ev is None and any(e.startswith(f"data.{field}:") for e in errors), (bad, errors)


def test_bnd006_free_text_is_at_most_4096_characters() -> None:
    assert validate(_ev("workflow.pr_created", {**PR, "title": "t" * 4096}), NOW, 900_000)[0] is not None
    ev, _, errors = validate(_ev("workflow.pr_created", {**PR, "title": "t" * 4097}), NOW, 900_000)
    assert ev is None and errors[0].startswith("data.title:")
    ev, _, errors = validate(_ev("system.error_occurred", {"component": "c", "error_type": "e", "message": 7}),
                             NOW, 900_000)
    assert ev is None and errors[0].startswith("data.message:")


def test_bnd007_timestamps_before_2000_and_ids_with_control_characters_are_refused() -> None:
    ev, _, errors = validate(_ev("workflow.quality_gate_executed", GATE, timestamp="1999-12-31T23:59:59Z"), NOW, 900_000)
    assert ev is None and errors == ["timestamp: before 2000-01-01"]
    assert validate(_ev("workflow.quality_gate_executed", GATE, timestamp="2000-01-01T00:00:00Z"), NOW, 900_000)[0]
    ev, _, errors = validate(_ev("workflow.quality_gate_executed", GATE, id="a\rb"), NOW, 900_000)
    assert ev is None and errors[0].startswith("id:")
    ev, _, errors = validate(_ev("workflow.quality_gate_executed", GATE, source="s" * 257), NOW, 900_000)
    assert ev is None and errors[0].startswith("source:")


def test_bnd008_fast_and_full_paths_agree() -> None:
    """The one-pass check for well-formed events must refuse whatever the full check refuses."""
    from data.events import _fast_valid, _validate
    for type_, base, field, good, bad in LIMITS:
        for value in (good, bad):
            ev = _ev(type_, {**base, field: value})
            assert (_fast_valid(ev, NOW, 900_000) is not None) == (_validate(ev, NOW, 900_000)[0] is not None)
