"""GitLab deliveries through HTTP (`POST /api/webhooks/gitlab`): GitLab's documented payload
samples (tests/fixtures/gitlab/, see its README) with the token, into the stream exactly once,
unknown and ignored ones stored and counted, bad input a 4xx naming the problem. The
SonarQube twin, tests/integration/test_sq_webhooks.py, shares the app fixture."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TOKEN = "gl-token-for-tests"
SECRET = "sonar-secret-for-tests"


def sample(source: str, name: str) -> dict[str, Any]:
    return json.loads((FIX / source / f"{name}.json").read_text())


@pytest.fixture
def wh(settings: Any, r: Any, tmp_path: Path) -> Any:
    from factory import create_app
    mapping = tmp_path / "integrations.yaml"
    mapping.write_text("{}\n")                      # the empty mapping, whatever config/ holds
    return create_app(settings.replace(gitlab_webhook_token=TOKEN, sonarqube_webhook_secret=SECRET,
                                       integrations_path=str(mapping)))


@pytest.fixture
def admin(wh: Any) -> Any:
    from tests.conftest import AuthActions
    c = wh.server.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = AuthActions(wh).bearer("admin")["Authorization"]
    return c


def gl_post(app: Any, event: str, payload: Any, token: str | None = TOKEN, uuid: str | None = None,
            raw: bytes | None = None) -> Any:
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": event}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    if uuid is not None:
        headers["X-Gitlab-Event-UUID"] = uuid
    body = raw if raw is not None else json.dumps(payload).encode()
    return app.server.test_client().post("/api/webhooks/gitlab", data=body, headers=headers)


def streamed(app: Any, r: Any) -> list[dict[str, Any]]:
    keys = app.server.extensions["qms"].keys
    return [orjson.loads(fields[b"e"]) for _, fields in r.xrange(keys.stream)]


def stats(admin: Any, source: str) -> dict[str, Any]:
    resp = admin.get("/api/integrations")
    assert resp.status_code == 200, resp.get_json()
    return next(s for s in resp.get_json()["response"]["data"]["sources"] if s["source"] == source)


def deliveries(admin: Any, source: str) -> list[dict[str, Any]]:
    resp = admin.get(f"/api/integrations/{source}/deliveries")
    assert resp.status_code == 200
    return resp.get_json()["response"]["data"]["deliveries"]


def merge_request(action: str, **attrs: Any) -> dict[str, Any]:
    p = sample("gitlab", "merge_request")
    p["object_attributes"].update(action=action, **attrs)
    return p


# ---- GitLab ---------------------------------------------------------------------------------------

def test_glw001_no_token_configured_is_404(app: Any) -> None:
    resp = gl_post(app, "Merge Request Hook", merge_request("open"))
    assert resp.status_code == 404


def test_glw002_a_bad_or_missing_token_is_401_counted_and_nothing_ingested(wh: Any, r: Any, admin: Any) -> None:
    assert gl_post(wh, "Merge Request Hook", merge_request("open"), token="wrong").status_code == 401
    assert gl_post(wh, "Merge Request Hook", merge_request("open"), token=None).status_code == 401
    assert streamed(wh, r) == []
    assert int(stats(admin, "gitlab")["bad_signature"]) == 2


def test_glw003_a_merge_request_lifecycle_once_even_when_redelivered(wh: Any, r: Any, admin: Any) -> None:
    opened = gl_post(wh, "Merge Request Hook", merge_request("open"), uuid="u-open")
    assert opened.status_code == 202, opened.get_json()
    body = opened.get_json()
    assert body["status"] == "mapped" and body["events"] == {"accepted": 1, "duplicates": 0, "rejected": 0}
    again = gl_post(wh, "Merge Request Hook", merge_request("open"), uuid="u-open")       # GitLab's retry
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    reopened = gl_post(wh, "Merge Request Hook", merge_request("reopen"), uuid="u-reopen")  # another delivery, same fact
    assert reopened.get_json()["events"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    for action, uuid in (("approval", "u-appr"), ("approved", "u-appr2"), ("merge", "u-merge")):
        assert gl_post(wh, "Merge Request Hook", merge_request(action, updated_at="2013-12-04T10:00:00Z"),
                       uuid=uuid).status_code == 202
    events = streamed(wh, r)
    assert [e["type"] for e in events] == ["workflow.pr_created", "workflow.review_started",
                                           "workflow.review_completed", "workflow.completed"]
    assert {e["data"]["workflow_id"] for e in events} == {"gitlabhq/gitlab-test!1"}
    assert all(e["source"] == "gitlab" for e in events)
    s = stats(admin, "gitlab")
    assert (int(s["received"]), int(s["mapped"]), int(s["duplicate"])) == (6, 5, 1)


def test_glw004_pipeline_and_job_hooks_give_each_job_once(wh: Any, r: Any) -> None:
    resp = gl_post(wh, "Pipeline Hook", sample("gitlab", "pipeline"), uuid="u-pipe")
    assert resp.get_json()["events"] == {"accepted": 3, "duplicates": 0, "rejected": 0}
    job = sample("gitlab", "job")
    job.update(ref="refs/merge-requests/1/head", build_id=377, build_name="test-image", build_status="success",
               build_duration=17.0, build_finished_at="2016-08-12 15:26:29 UTC")
    resp = gl_post(wh, "Job Hook", job, uuid="u-job")
    assert resp.get_json()["events"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    gates = sorted((e["id"], e["data"]["passed"]) for e in streamed(wh, r))
    assert gates == [("gl:gitlab-org/gitlab-test!1:job:376", True), ("gl:gitlab-org/gitlab-test!1:job:377", True),
                     ("gl:gitlab-org/gitlab-test!1:job:378", False)]


def test_glw005_unknown_hooks_are_stored_and_known_ones_with_nothing_ignored(wh: Any, r: Any, admin: Any) -> None:
    unknown = gl_post(wh, "Push Hook", sample("gitlab", "push"), uuid="u-push")
    assert unknown.status_code == 202 and unknown.get_json()["status"] == "unknown"
    ignored = gl_post(wh, "Note Hook", sample("gitlab", "note.merge_request"), uuid="u-note")   # a general comment
    assert ignored.status_code == 202 and ignored.get_json()["status"] == "ignored"
    job = gl_post(wh, "Job Hook", sample("gitlab", "job"), uuid="u-job")                        # created, branch ref
    assert job.get_json()["status"] == "ignored"
    assert streamed(wh, r) == []
    rows = {d["id"]: d["status"] for d in deliveries(admin, "gitlab")}
    assert rows == {"u-push": "unknown", "u-note": "ignored", "u-job": "ignored"}
    s = stats(admin, "gitlab")
    assert (int(s["unknown"]), int(s["ignored"])) == (1, 2)


def test_glw006_a_diff_note_and_its_resolution_through_http(wh: Any, r: Any) -> None:
    note = sample("gitlab", "note.merge_request")
    note["object_attributes"].update(type="DiffNote", discussion_id="d" * 40, position={"new_path": "a.py", "new_line": 3},
                                     note="Potential issue: the token leaks into the log")
    assert gl_post(wh, "Note Hook", note, uuid="u-n1").get_json()["events"]["accepted"] == 1
    reply = copy.deepcopy(note)
    reply["object_attributes"].update(id=1300, author_id=8, note="Not a bug: the log is redacted",
                                      created_at="2015-05-18 08:00:00 UTC")
    assert gl_post(wh, "Note Hook", reply, uuid="u-n2").get_json()["events"]["accepted"] == 1
    found, resolved = streamed(wh, r)
    assert (found["type"], found["data"]["severity"], found["data"]["found_by"]) == ("workflow.defect_found", "major", "root")
    assert resolved["data"] == {"defect_id": found["data"]["defect_id"], "resolution": "false_positive",
                                "workflow_id": "gitlab-org/gitlab-test!1"}


def test_glw007_bad_input_is_a_4xx_naming_the_problem_and_stored_invalid(wh: Any, r: Any, admin: Any) -> None:
    not_json = gl_post(wh, "Merge Request Hook", None, raw=b"{not json", uuid="u-bad")
    assert not_json.status_code == 400
    broken = merge_request("open")
    del broken["project"]
    resp = gl_post(wh, "Merge Request Hook", broken, uuid="u-broken")
    assert resp.status_code == 400
    assert "project.path_with_namespace: required" in json.dumps(resp.get_json())
    assert {d["id"]: d["status"] for d in deliveries(admin, "gitlab")} == {"u-bad": "invalid", "u-broken": "invalid"}
    assert streamed(wh, r) == []


def test_glw008_a_stored_delivery_replayed_maps_again_and_counts_once(wh: Any, r: Any, admin: Any) -> None:
    assert gl_post(wh, "Pipeline Hook", sample("gitlab", "pipeline"), uuid="u-pipe").status_code == 202
    resp = admin.post("/api/integrations/gitlab/deliveries/u-pipe/replay")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["response"]["data"]["events"] == {"accepted": 0, "duplicates": 3, "rejected": 0}
    assert len(streamed(wh, r)) == 3
    stored = next(d for d in deliveries(admin, "gitlab") if d["id"] == "u-pipe")
    assert "X-Gitlab-Token" not in json.dumps(stored) and TOKEN not in json.dumps(stored)   # the secret is not kept
