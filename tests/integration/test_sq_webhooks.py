"""SonarQube deliveries through HTTP (`POST /api/webhooks/sonarqube`): the documented payload
samples (tests/fixtures/sonarqube/, see its README) and a pull request's analysis derived from
them, signed with `X-Sonar-Webhook-HMAC-SHA256`; once into the stream, branch analyses ignored,
bad input a 4xx naming the problem."""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.integration.test_gl_webhooks import SECRET, admin, deliveries, sample, stats, streamed, wh  # noqa: F401


def sq_post(app: Any, payload: Any, secret: str | None = SECRET, raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-SonarQube-Project": "org.sonarqube:example"}
    if secret is not None:
        headers["X-Sonar-Webhook-HMAC-SHA256"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return app.server.test_client().post("/api/webhooks/sonarqube", data=body, headers=headers)



def sonar_pr(key: str = "42") -> dict[str, Any]:
    p = sample("sonarqube", "analysis.documented")
    p["branch"] = {"name": key, "type": "PULL_REQUEST", "isMain": False,
                   "url": f"http://localhost:9000/project/issues?pullRequest={key}&id=org.sonarqube%3Aexample"}
    return p


def test_sqw000_no_secret_configured_is_404(app: Any) -> None:
    assert sq_post(app, sonar_pr()).status_code == 404


def test_sqw001_a_signed_pull_request_analysis_is_one_gate_run(wh: Any, r: Any, admin: Any) -> None:
    resp = sq_post(wh, sonar_pr())
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["events"] == {"accepted": 1, "duplicates": 0, "rejected": 0}
    again = sq_post(wh, sonar_pr())                                  # the same task: a duplicate delivery
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    (ev,) = streamed(wh, r)
    assert (ev["id"], ev["data"]["gate_name"], ev["data"]["passed"]) == (
        "sq:org.sonarqube:example:AVh21JS2JepAEhwQ-b3u", "sonarqube-quality-gate", True)
    assert ev["data"]["metrics"]["new_coverage_threshold"] == 80.0
    assert [d["status"] for d in deliveries(admin, "sonarqube")] in (["duplicate", "mapped"], ["mapped", "duplicate"])


def test_sqw002_bad_or_missing_signature_is_401(wh: Any, r: Any, admin: Any) -> None:
    assert sq_post(wh, sonar_pr(), secret="wrong").status_code == 401
    assert sq_post(wh, sonar_pr(), secret=None).status_code == 401
    body = json.dumps(sonar_pr()).encode()
    tampered = wh.server.test_client().post(
        "/api/webhooks/sonarqube", data=body + b" ", headers={
            "Content-Type": "application/json",
            "X-Sonar-Webhook-HMAC-SHA256": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()})
    assert tampered.status_code == 401
    assert streamed(wh, r) == [] and int(stats(admin, "sonarqube")["bad_signature"]) == 3


def test_sqw003_branch_analyses_are_ignored_and_broken_ones_400(wh: Any, r: Any) -> None:
    for name in ("analysis.documented", "analysis.branch"):
        resp = sq_post(wh, sample("sonarqube", name))
        assert resp.status_code == 202 and resp.get_json()["status"] == "ignored"
    broken = sonar_pr()
    broken["taskId"] = "other-task"
    del broken["project"]
    resp = sq_post(wh, broken)
    assert resp.status_code == 400 and "project.key: required" in json.dumps(resp.get_json())
    assert sq_post(wh, None, raw=b"[1, 2").status_code == 400
    assert streamed(wh, r) == []
