"""POST /api/webhooks/github end to end with GitHub's own recorded deliveries and real
signatures: verification, idempotency, storage and counters, unknown and invalid bodies,
the rate limit, Redis down; the integrations REST twins, Replay and the page."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from data.keys import Keys
from integrations.github import sign
from tests.fixtures.github.examples import SECRET, deliver, example
from tests.integration.test_rbac_matrix import UPDATE, callback_body, signed_in
from tests.private_redis import PrivateRedis, private_redis  # noqa: F401  (a fixture)

K = Keys("qms")
MAPPING = """\
agents:
  - login: "coderabbitai[bot]"
    id: coderabbit
    kind: ai
gates:
  - check: "Octocoders-*"
    gate: lint-gate
  - check: "default"
    gate: ci-status
    kinds: [status]
"""


@pytest.fixture
def wh(settings: Any, r: Any, tmp_path: Path) -> Any:
    """An app whose GitHub receiver has a secret and a mapping file of its own."""
    from tests.helpers import make_app
    mapping = tmp_path / "integrations.yaml"
    mapping.write_text(MAPPING)
    app = make_app(settings.replace(github_webhook_secret=SECRET, integrations_path=str(mapping),
                                      webhook_rate_per_min=1000))
    return app


@pytest.fixture
def gh(wh: Any) -> Any:
    return wh.server.test_client()


def ingested(r: Any) -> dict[str, dict[str, Any]]:
    """The events on the ingest stream, by id."""
    return {(e := orjson.loads(f[b"e"]))["id"]: e for _sid, f in r.xrange(K.stream)}


def stats(r: Any) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(K.webhook("github", "stats")).items()}


def stored(r: Any) -> list[dict[str, Any]]:
    return [{k.decode(): v for k, v in f.items()} for _sid, f in r.xrange(K.webhook("github", "deliveries"))]


def test_wh001_a_signed_delivery_is_mapped_ingested_stored_and_counted(gh: Any, r: Any) -> None:
    res = deliver(gh, "pull_request", example("pull_request", "opened"), "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert res.status_code == 202
    assert res.json == {"status": "mapped", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                        "event": "pull_request", "events": {"accepted": 1, "duplicates": 0, "rejected": 0}}
    ev = ingested(r)["gh:Codertocat/Hello-World#2:opened"]
    assert ev["type"] == "workflow.pr_created" and ev["data"]["workflow_id"] == "Codertocat/Hello-World#2"
    assert {k: v for k, v in stats(r).items() if not k.startswith("last_")} == {"received": "1", "mapped": "1"}
    [row] = stored(r)
    assert row["id"] == b"72d3162e-cc78-11e3-81ab-4c9367dc0958" and row["status"] == b"mapped"
    assert row["event"] == b"pull_request" and row["events"] == b"1" and row["error"] == b""
    assert orjson.loads(row["body"]) == example("pull_request", "opened")
    headers = json.loads(row["headers"])
    assert headers["X-Github-Event"] == "pull_request" and headers["X-Hub-Signature-256"].startswith("sha256=")
    # The mapping said which reviewer is an AI agent: its events carry it.
    review = example("pull_request_review", "submitted")
    review["review"].update(state="approved", user={**review["review"]["user"], "login": "coderabbitai[bot]"})
    assert deliver(gh, "pull_request_review", review, "d-review").json["events"]["accepted"] == 2
    done = ingested(r)["gh:Codertocat/Hello-World#2:review:237895671:completed"]
    assert done["data"] == {"workflow_id": "Codertocat/Hello-World#2", "reviewer": "coderabbit",
                            "reviewer_kind": "ai", "verdict": "approved"}


def test_wh002_bad_or_missing_signatures_are_401_audited_counted_and_store_nothing(wh: Any, gh: Any, r: Any) -> None:
    payload = example("pull_request", "opened")
    body = orjson.dumps(payload)
    answers = [deliver(gh, "pull_request", payload, "d1", secret="not the secret"),
               deliver(gh, "pull_request", payload, "d2", signature=None, secret=None),
               deliver(gh, "pull_request", payload, "d3", signature="sha1=" + "0" * 40),
               deliver(gh, "pull_request", payload, "d4", signature=sign(body, SECRET).upper()),
               deliver(gh, "pull_request", payload, "d5", signature=sign(body, SECRET) + "00"),
               # GitHub's older SHA-1 header alone is not enough
               deliver(gh, "pull_request", payload, "d6", secret=None, **{"X-Hub-Signature": "sha1=" + "0" * 40})]
    for res in answers:
        assert res.status_code == 401
        assert res.json["response"]["error"] == {"code": "unauthorized", "message": "bad or missing signature"}
    assert ingested(r) == {} and stored(r) == []
    assert stats(r)["bad_signature"] == "6" and stats(r)["last_failure"] == "bad or missing signature"
    entries = wh.server.extensions["qms"].audit.query(action_prefix="integration.")
    assert len(entries) == 6
    assert {(e["type"], e["data"]["source"], e["data"]["ip"], e["data"]["outcome"], e["data"]["event"])
            for e in entries} == {("integration.bad_signature", "github", "127.0.0.1", "denied", "pull_request")}


def test_wh003_a_replayed_signature_only_fits_its_own_body_and_a_redelivery_is_a_duplicate(gh: Any, r: Any) -> None:
    opened = example("pull_request", "opened")
    body = orjson.dumps(opened)
    captured = sign(body, SECRET)
    assert deliver(gh, "pull_request", opened, "d1", signature=captured, body=body).status_code == 202
    # The captured signature on another body (a forged merge): refused.
    forged = example("pull_request", "closed")
    forged["pull_request"].update(merged=True, merged_at="2019-05-15T15:21:18Z")
    assert deliver(gh, "pull_request", forged, "d2", signature=captured).status_code == 401
    # The same delivery again (GitHub's redelivery keeps the id): 200 duplicate, nothing ingested again.
    again = deliver(gh, "pull_request", opened, "d1", signature=captured, body=body)
    assert again.status_code == 200 and again.json == {"status": "duplicate", "delivery": "d1"}
    # The same bytes under a new delivery id: mapped, and the ingest de-dup counts the event once.
    other = deliver(gh, "pull_request", opened, "d3", signature=captured, body=body)
    assert other.status_code == 202 and other.json["events"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    assert len(ingested(r)) == 1
    s = stats(r)
    assert (s["received"], s["mapped"], s["duplicate"], s["bad_signature"]) == ("3", "2", "1", "1")
    assert [row["status"] for row in stored(r)] == [b"mapped", b"duplicate", b"mapped"]
    # A week later the id is forgotten: the same delivery is processed again (the ingest de-dup still holds).
    seen = K.webhook("github", "seen")
    r.zadd(seen, {"d1": 1})
    late = deliver(gh, "pull_request", opened, "d1", signature=captured, body=body)
    assert late.status_code == 202 and late.json["events"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    assert r.zscore(seen, "d1") > 1
    assert stored(r)[1]["body"] == b""            # a duplicate's body is the first one's


def test_wh004_unknown_kinds_are_stored_and_counted_known_ones_without_news_ignored(gh: Any, r: Any) -> None:
    push = deliver(gh, "push", example("push"), "d-push")
    assert push.status_code == 202 and push.json == {"status": "unknown", "delivery": "d-push", "event": "push"}
    ping = deliver(gh, "ping", example("ping"), "d-ping")
    assert ping.status_code == 202 and ping.json["status"] == "ignored"
    suite = deliver(gh, "check_suite", example("check_suite", "completed"), "d-suite")
    assert suite.json["status"] == "ignored"
    assert ingested(r) == {}
    s = stats(r)
    assert (s["received"], s["unknown"], s["ignored"]) == ("3", "1", "2")
    assert [(row["event"], row["status"]) for row in stored(r)] == [
        (b"push", b"unknown"), (b"ping", b"ignored"), (b"check_suite", b"ignored")]
    assert orjson.loads(stored(r)[0]["body"]) == example("push")      # kept for a later mapping's replay


def test_wh005_a_body_that_is_not_json_is_a_400_stored_as_invalid(gh: Any, r: Any) -> None:
    for n, body in enumerate((b"<xml/>", b"[1, 2]", b"", b"\xff\xfe")):
        res = deliver(gh, "pull_request", None, f"bad-{n}", body=body)
        assert res.status_code == 400, body
        assert res.json["response"]["error"]["code"] == "bad_request"
        assert res.json["response"]["error"]["message"].startswith("body: ")
    assert [row["status"] for row in stored(r)] == [b"invalid"] * 4
    assert stats(r)["invalid"] == "4" and stats(r)["last_failure"].startswith("body: ")
    # A payload that is JSON but lacks what its kind needs: 400 naming the field.
    broken = example("pull_request", "opened")
    del broken["pull_request"]["number"]
    res = deliver(gh, "pull_request", broken, "bad-fields")
    assert res.status_code == 400 and res.json["response"]["error"]["message"] == "pull_request: number: required"
    assert stored(r)[-1]["error"] == b"pull_request: number: required"
    # Shapes no GitHub payload has (a user that is a string, a number that is text): 400, never a 500.
    odd = example("pull_request", "opened")
    odd["pull_request"]["user"] = "Codertocat"
    res = deliver(gh, "pull_request", odd, "bad-shape-1")
    assert res.status_code == 400 and res.json["response"]["error"]["message"] == "pull_request: user.login: required"
    odd = example("check_run", "completed")
    odd["check_run"]["id"] = "128620228"
    res = deliver(gh, "check_run", odd, "bad-shape-2")
    assert res.status_code == 400 and res.json["response"]["error"]["message"] == "check_run: id: must be int"
    # GitHub's form encoding (payload=<JSON>) is read too.
    from urllib.parse import urlencode
    form = urlencode({"payload": orjson.dumps(example("pull_request", "opened")).decode()}).encode()
    res = deliver(gh, "pull_request", None, "form-1", body=form, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 202 and res.json["events"]["accepted"] == 1


def test_wh006_a_receiver_without_a_secret_answers_404(app: Any, gh: Any) -> None:
    plain = app.server.test_client()         # the conftest app: no secrets at all
    for source in ("github", "gitlab", "sonarqube", "bitbucket"):
        res = plain.post(f"/api/webhooks/{source}", data=b"{}", headers={"X-GitHub-Event": "ping"})
        assert res.status_code == 404, source
        assert res.json["response"]["error"]["code"] == "not_found"
    assert gh.post("/api/webhooks/gitlab", data=b"{}").status_code == 404       # only GitHub's secret is set


def test_wh007_no_session_or_csrf_needed_and_none_accepted_instead_of_the_signature(wh: Any, auth: Any, r: Any) -> None:
    c, _csrf = signed_in(wh, auth, "admin")            # a browser session, no CSRF header sent
    assert deliver(c, "pull_request", example("pull_request", "opened"), "s1", secret="wrong").status_code == 401
    token = auth.bearer("admin")
    res = c.post("/api/webhooks/github", data=orjson.dumps(example("ping")), headers={**token, "X-GitHub-Event": "ping"})
    assert res.status_code == 401                         # an admin's credentials are no signature
    assert deliver(c, "pull_request", example("pull_request", "opened"), "s2").status_code == 202


def test_wh008_a_commit_status_lands_on_the_pull_request_whose_head_it_is(gh: Any, r: Any) -> None:
    status = example("status")
    assert deliver(gh, "status", status, "st-0").json["status"] == "ignored"      # no PR known for the commit
    pr = example("pull_request", "opened")
    pr["pull_request"]["head"]["sha"] = status["sha"]
    deliver(gh, "pull_request", pr, "pr-1")
    res = deliver(gh, "status", status, "st-1")
    assert res.json["status"] == "mapped" and res.json["events"]["accepted"] == 1
    ev = ingested(r)[f"gh:Codertocat/Hello-World#2:status:{status['id']}"]
    assert ev["data"] == {"workflow_id": "Codertocat/Hello-World#2", "gate_name": "ci-status", "passed": True,
                          "step": "dod_validation", "head_sha": status["sha"]}


def test_wh009_the_rate_limit_is_per_source_and_address(settings: Any, r: Any, tmp_path: Path) -> None:
    from factory import create_app
    app = create_app(settings.replace(github_webhook_secret=SECRET, webhook_rate_per_min=3))
    c = app.server.test_client()
    answers = [deliver(c, "ping", example("ping"), f"p{n}").status_code for n in range(5)]
    assert answers == [202, 202, 202, 429, 429]
    limited = deliver(c, "ping", example("ping"), "p9")
    assert limited.json["response"]["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    other = app.server.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert deliver(other, "ping", example("ping"), "q1").status_code == 202
    assert stats(r)["rate_limited"] == "1" and stats(r)["received"] == "4"


def test_wh010_redis_down_is_a_json_503(private_redis: PrivateRedis) -> None:  # noqa: F811
    app = private_redis.app(github_webhook_secret=SECRET)
    c = app.server.test_client()
    private_redis.terminate()
    res = deliver(c, "pull_request", example("pull_request", "opened"), "down-1")
    assert res.status_code == 503 and res.headers["Retry-After"]
    assert res.json["response"]["error"]["code"] == "unavailable"


def test_wh014_a_delivery_that_failed_midway_is_not_marked_seen(wh: Any, gh: Any, r: Any) -> None:
    import redis as redis_lib
    ingestor = wh.server.extensions["qms_webhooks"].ingestor
    real = ingestor.ingest

    def down(*args: Any, **kwargs: Any) -> Any:
        raise redis_lib.ConnectionError("Redis went away")
    ingestor.ingest = down
    res = deliver(gh, "pull_request", example("pull_request", "opened"), "mid-1")
    assert res.status_code == 503 and res.json["response"]["error"]["code"] == "unavailable"
    assert r.zscore(K.webhook("github", "seen"), "mid-1") is None
    ingestor.ingest = real
    again = deliver(gh, "pull_request", example("pull_request", "opened"), "mid-1")     # GitHub's retry
    assert again.status_code == 202 and again.json["events"]["accepted"] == 1


def test_wh011_integrations_rest_twins_list_and_replay(wh: Any, gh: Any, r: Any, auth: Any) -> None:
    deliver(gh, "push", example("push"), "u-1")
    deliver(gh, "pull_request", example("pull_request", "opened"), "m-1")
    deliver(gh, "pull_request", example("pull_request", "opened"), "m-1")      # duplicate
    deliver(gh, "pull_request", None, "x-1", body=b"nope")
    admin = wh.server.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("operations")["Authorization"]
    overview = admin.get("/api/integrations").json["response"]["data"]
    github = next(s for s in overview["sources"] if s["source"] == "github")
    assert github["configured"] is True and github["url"] == "/api/webhooks/github"
    assert (github["received"], github["mapped"], github["unknown"], github["duplicate"], github["invalid"]) == \
        (4, 1, 1, 1, 1)
    assert github["last_failure"] == "body: not JSON" and github["last_delivery_at"]
    assert [s["configured"] for s in overview["sources"] if s["source"] != "github"] == [False, False]
    assert overview["mapping"]["error"] is None and overview["mapping"]["gates"] == 2
    rows = admin.get("/api/integrations/github/deliveries").json["response"]["data"]["deliveries"]
    assert [(d["id"], d["status"]) for d in rows] == [("x-1", "invalid"), ("m-1", "duplicate"), ("m-1", "mapped"),
                                                      ("u-1", "unknown")]
    assert "body" not in rows[0] and rows[2]["bytes"] == len(orjson.dumps(example("pull_request", "opened")))
    only = admin.get("/api/integrations/github/deliveries?status=unknown&limit=5").json["response"]["data"]
    assert [d["id"] for d in only["deliveries"]] == ["u-1"]
    assert admin.get("/api/integrations/github/deliveries?status=bogus").status_code == 400
    assert admin.get("/api/integrations/gitlab/deliveries").json["response"]["data"]["deliveries"] == []
    assert admin.get("/api/integrations/bitbucket/deliveries").status_code == 404
    # Replay by delivery id: same event ids, so a duplicate; by stored entry: the unknown stays unknown.
    again = admin.post("/api/integrations/github/deliveries/m-1/replay")
    assert again.status_code == 200
    assert again.json["response"]["data"]["events"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    unknown = admin.post(f"/api/integrations/github/deliveries/{rows[3]['entry']}/replay").json["response"]["data"]
    assert unknown["status"] == "unknown"
    assert admin.post("/api/integrations/github/deliveries/x-1/replay").status_code == 400
    assert admin.post("/api/integrations/github/deliveries/never/replay").status_code == 404
    assert stats(r)["replayed"] == "3" and stats(r)["received"] == "4"          # replays are not deliveries
    assert [e["data"]["delivery"] for e in wh.server.extensions["qms"].audit.query(action_prefix="integration.")] \
        == ["x-1", "u-1", "m-1"]
    dev = wh.server.test_client()
    dev.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("developer")["Authorization"]
    assert dev.get("/api/integrations").status_code == 403
    assert dev.post("/api/integrations/github/deliveries/m-1/replay").status_code == 403


def test_wh012_replay_after_a_mapping_change_adds_only_what_is_new(wh: Any, gh: Any, r: Any, auth: Any) -> None:
    run = example("check_run", "completed", 1)
    run["check_run"]["name"] = "unit-tests"
    assert deliver(gh, "check_run", run, "c-1").json["status"] == "ignored"      # not a gate in this mapping
    mapping = wh.server.extensions["qms_webhooks"].mapping
    mapping.path.write_text(MAPPING + "  - check: unit-tests\n    gate: tests\n")
    mapping._checked = -10.0
    admin = wh.server.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("admin")["Authorization"]
    res = admin.post("/api/integrations/github/deliveries/c-1/replay").json["response"]["data"]
    assert res["status"] == "mapped" and res["events"]["accepted"] == 1
    assert ingested(r)["gh:Codertocat/Hello-World#2:check:128620228"]["data"]["gate_name"] == "tests"
    mapping.path.write_text("gates: [{check: x, step: nowhere}]\n")
    mapping._checked = -10.0
    overview = admin.get("/api/integrations").json["response"]["data"]["mapping"]
    assert "gates[0].step" in overview["error"] and overview["gates"] == 3        # the last good one stays


def test_wh013_the_integrations_page_for_operators_only(wh: Any, gh: Any, auth: Any) -> None:
    deliver(gh, "push", example("push"), "u-1")
    route = next(k for k in wh.callback_map if "page.children" in k)
    rows = next(k for k in wh.callback_map if "int-grid.rowData" in k)
    cards = next(k for k in wh.callback_map if "int-sources.children" in k)
    for role, allowed in (("operations", True), ("admin", True), ("qa_lead", False), ("developer", False)):
        c, csrf = signed_in(wh, auth, role)
        page = c.post(UPDATE, json=callback_body(wh, route, {("route-path", "data"): "/integrations"}),
                      headers={"X-CSRFToken": csrf})
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and ('"int-grid"' in text) is allowed, role
        assert ('"nav-integrations"' in text) is allowed, role
        body = callback_body(wh, rows, {("int-source", "value"): "github"})
        grid = c.post(UPDATE, json=body, headers={"X-CSRFToken": csrf})
        assert grid.status_code == (200 if allowed else 403), role
        if allowed:
            [row] = grid.json["response"]["int-grid"]["rowData"]
            assert (row["id"], row["status"], row["event"]) == ("u-1", "unknown", "push")
            shown = json.dumps(c.post(UPDATE, json=callback_body(wh, cards), headers={"X-CSRFToken": csrf}).json)
            assert "configured" in shown and "unknown 1" in shown and "not configured" in shown
