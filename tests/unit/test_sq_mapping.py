"""SonarQube quality-gate deliveries → QMS gate runs (integrations/sonarqube.py), pure: the
documented payload samples (tests/fixtures/sonarqube/, see its README) and a pull request's
analysis derived from them by replacing `branch` only."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from data.events import validate
from integrations import sonarqube
from integrations.mapping import Mapping, parse

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sonarqube"
EMPTY = Mapping.default()


def sample(name: str) -> dict[str, Any]:
    return json.loads((FIX / f"{name}.json").read_text())


def pull_request(name: str = "analysis.documented", key: str = "42") -> dict[str, Any]:
    p = sample(name)
    p["branch"] = {"name": key, "type": "PULL_REQUEST", "isMain": False,
                   "url": f"http://localhost:9000/project/issues?pullRequest={key}&id=org.sonarqube%3Aexample&resolved=false"}
    return p


def mapped(payload: dict[str, Any], mapping: Any = EMPTY) -> list[dict[str, Any]]:
    events = sonarqube.map_delivery("quality_gate", payload, mapping)
    assert events is not None
    for ev in events:
        assert validate(ev)[2] == [], ev
    return events


def test_sq001_a_pull_requests_analysis_is_one_gate_run_with_its_conditions_as_metrics() -> None:
    (ev,) = mapped(pull_request())
    assert ev == {"id": "sq:org.sonarqube:example:AVh21JS2JepAEhwQ-b3u", "type": "workflow.quality_gate_executed",
                  "timestamp": "2016-11-18T09:46:28Z", "source": "sonarqube", "metadata": {"priority": "normal"},
                  "data": {"workflow_id": "org.sonarqube:example#42", "gate_name": "sonarqube-quality-gate",
                           "passed": True, "metrics": {
                               "new_security_rating": 1.0, "new_security_rating_threshold": 1.0,
                               "new_reliability_rating": 1.0, "new_reliability_rating_threshold": 1.0,
                               "new_maintainability_rating": 1.0, "new_maintainability_rating_threshold": 1.0,
                               "new_coverage_threshold": 80.0}}}      # NO_VALUE: its threshold only


def test_sq002_error_fails_and_the_revision_is_the_head_sha() -> None:
    p = pull_request("analysis.branch", key="7")
    p["qualityGate"]["status"] = "ERROR"
    p["qualityGate"]["conditions"][0].update(value="61.5", status="ERROR")
    p["taskId"] = "AZT-task-2"
    (ev,) = mapped(p)
    assert ev["id"] == "sq:aws:AZT-task-2" and ev["timestamp"] == "2025-02-10T09:51:17Z"   # analysedAt
    assert ev["data"]["passed"] is False
    assert ev["data"]["head_sha"] == "c8e602a6c822d8bd2fbec3f622303836d5631879"
    assert ev["data"]["metrics"] == {"new_coverage": 61.5, "new_coverage_threshold": 80.0,
                                     "new_duplicated_lines_density": 0.0, "new_duplicated_lines_density_threshold": 3.0,
                                     "new_security_hotspots_reviewed_threshold": 100.0,
                                     "new_violations": 0.0, "new_violations_threshold": 0.0}


def test_sq003_a_re_evaluation_without_a_task_counts_when_it_changed() -> None:
    (ev,) = mapped(pull_request("analysis.branch", key="7"))      # the staff sample: changedAt, no taskId
    assert ev["timestamp"] == "2025-02-13T08:55:38Z"
    assert ev["id"] == "sq:aws:7:changed:2025-02-13T08:55:38Z"


def test_sq004_branch_analyses_failed_tasks_and_gateless_payloads_are_nothing() -> None:
    assert mapped(sample("analysis.documented")) == []            # no branch: the main branch (documented sample)
    assert mapped(sample("analysis.branch")) == []                # "type": "BRANCH", isMain
    failed = pull_request()
    failed["status"] = "FAILED"
    assert mapped(failed) == []
    for odd in ({"project": {"key": "x"}, "branch": {"type": "PULL_REQUEST", "name": "1"}},     # no gate
                {**pull_request(), "qualityGate": {"status": "NONE"}},
                {**pull_request(), "branch": {"type": "PULL_REQUEST", "name": ""}}):
        assert mapped(odd) == []
    for broken, problem in (({}, "project.key: required"), ({**pull_request(), "project": "x"}, "project.key: required"),
                            ({**pull_request(), "analysedAt": "later"}, "analysedAt: required (a time)")):
        with pytest.raises(ValueError, match=re.escape(problem)):   # the receiver's 400 naming the field
            sonarqube.map_delivery("quality_gate", broken, EMPTY)
    assert sonarqube.map_delivery("other", pull_request(), EMPTY) is None
    assert sonarqube.map_delivery("quality_gate", [], EMPTY) is None   # type: ignore[arg-type]


def test_sq005_odd_condition_values_are_left_out_and_a_bad_revision_is_not_a_sha() -> None:
    p = pull_request()
    p["qualityGate"]["conditions"] = [{"metric": "a", "value": "NaN", "errorThreshold": "x"},
                                      {"metric": "b", "value": "1e400"}, {"metric": "", "value": "1"},
                                      {"metric": "c", "value": 3, "errorThreshold": 2}, "junk"]
    p["revision"] = "not-a-sha"
    (ev,) = mapped(p)
    assert ev["data"]["metrics"] == {"c": 3.0, "c_threshold": 2.0} and "head_sha" not in ev["data"]


def test_sq006_the_mapping_names_the_gate_and_the_repository_of_the_project() -> None:
    mapping = parse({"gates": [{"check": "sonarqube:SonarQube way", "gate": "static-analysis", "step": "code_review",
                                "kinds": ["sonarqube"]}],
                     "sonarqube": [{"project": "org.sonarqube:*", "repository": "acme/api"}]}, "t")
    (ev,) = mapped(pull_request(), mapping)
    assert (ev["data"]["workflow_id"], ev["data"]["gate_name"]) == ("acme/api#42", "static-analysis")
    gl = parse({"sonarqube": [{"project": "other", "repository": "x/y"},
                              {"project": "org.sonarqube:example", "repository": "group/app", "forge": "gitlab"}]}, "t")
    assert mapped(pull_request(), gl)[0]["data"]["workflow_id"] == "group/app!42"
    other = parse({"gates": [{"check": "lint"}]}, "t")             # gate rules, none for SonarQube
    assert mapped(pull_request(), other)[0]["data"]["gate_name"] == "sonarqube-quality-gate"


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_sq007_signature_good_bad_missing() -> None:
    body = json.dumps(pull_request()).encode()
    good = sign(body, "s3cret")
    assert sonarqube.verify(Headers({"X-Sonar-Webhook-HMAC-SHA256": good}), body, "s3cret") is True
    assert sonarqube.verify(Headers({"x-sonar-webhook-hmac-sha256": good.upper()}), body, "s3cret") is True
    assert sonarqube.verify(Headers({"X-Sonar-Webhook-HMAC-SHA256": good}), body + b" ", "s3cret") is False
    assert sonarqube.verify(Headers({"X-Sonar-Webhook-HMAC-SHA256": sign(body, "other")}), body, "s3cret") is False
    assert sonarqube.verify(Headers({"X-Sonar-Webhook-HMAC-SHA256": "é" + good[1:]}), body, "s3cret") is False
    assert sonarqube.verify(Headers(), body, "s3cret") is False


@pytest.mark.parametrize("name", ["analysis.documented", "analysis.branch"])
def test_sq008_delivery_id_is_the_task_else_the_body_hash(name: str) -> None:
    body = (FIX / f"{name}.json").read_bytes()
    payload = json.loads(body)
    expected = ("task:" + payload["taskId"]) if "taskId" in payload else "sha256:" + hashlib.sha256(body).hexdigest()
    assert sonarqube.delivery_id(Headers(), body, payload) == expected
    assert sonarqube.event_name(Headers(), payload) == "quality_gate"
    assert sonarqube.SECRET_SETTING == "sonarqube_webhook_secret"
