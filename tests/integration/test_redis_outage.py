"""Redis unavailable: every endpoint, callback and the /ws handshake answer a JSON 503 with
Retry-After (pages a small HTML 503), each request tries Redis at most once, and the
client fails fast (short connect/read timeouts, no retries).

Each test runs its own redis-server (tests/conftest.py start_redis_server) and stops or
pauses it; the shared Redis is never touched.
"""
from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest
import redis
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from werkzeug.serving import make_server

from auth.principal import issue_jwt
from data.timeutil import fmt_ms, now_ms
from tests.conftest import PASSWORD
from tests.private_redis import KEY, PrivateRedis, private_redis  # noqa: F401  (a fixture)


class Outage:
    """An app on a private redis-server, with one credential of each kind made while it is up."""

    def __init__(self, redis_server: PrivateRedis) -> None:
        self.redis_server = redis_server
        self.app = redis_server.app()
        self.svc = self.app.server.extensions["qms"]
        self.svc.users.add("ada", ["admin"], PASSWORD)
        user = self.svc.users.get("ada")
        self.api_token = self.svc.tokens.create("robot", ["admin"], "ada")[1]
        self.epoch_jwt = issue_jwt("ada", ["admin"], 600, KEY, user.session_epoch)
        self.plain_jwt = issue_jwt("ada", ["admin"], 600, KEY)
        self.browser = self.app.server.test_client()
        self.browser.get("/login")
        with self.browser.session_transaction() as sess:
            self.csrf = sess["csrf"]
        res = self.browser.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": self.csrf})
        assert res.status_code == 302, res.get_data(as_text=True)[:300]
        self.attempts = 0
        pool = self.svc.redis.connection_pool
        original = pool.get_connection

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.attempts += 1
            return original(*args, **kwargs)
        pool.get_connection = counting      # type: ignore[method-assign]

    def stop(self) -> None:
        self.redis_server.terminate()


@pytest.fixture
def outage(private_redis: PrivateRedis) -> Iterator[Outage]:
    o = Outage(private_redis)
    yield o
    hub = o.app.server.extensions.get("qms_hub")
    if hub is not None:
        hub.stop()


def _callback_body(app: Any, fragment: str) -> tuple[dict[str, Any], str]:
    """A well-formed `/_dash-update-component` body for the callback whose output names `fragment`."""
    [key] = [k for k in app.callback_map if fragment in k]
    spec = app.callback_map[key]
    outputs = [{"id": p.split(".")[0], "property": p.split(".")[1]} for p in key.strip(".").split("...")]
    values = {"route-path.data": "/dashboards/executive"}

    def item(d: dict[str, Any]) -> dict[str, Any]:
        return {"id": d["id"], "property": d["property"], "value": values.get(f"{d['id']}.{d['property']}")}
    body = {"output": key, "outputs": outputs, "inputs": [item(i) for i in spec["inputs"]],
            "state": [item(s) for s in spec["state"]], "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"]}
    return body, key


def _assert_json_503(res: Any, what: str) -> None:
    assert res.status_code == 503, (what, res.status_code, res.get_data(as_text=True)[:300])
    assert res.mimetype == "application/json", (what, res.mimetype)
    assert res.json["response"]["error"]["code"] == "unavailable", (what, res.json)
    assert "data store" in res.json["response"]["error"]["message"]
    assert res.headers.get("Retry-After", "").isdigit() and int(res.headers["Retry-After"]) > 0, (what, res.headers)


def test_out001_every_authenticated_call_is_a_json_503_with_retry_after_and_one_attempt(outage: Outage) -> None:
    """Before: an API token (or a user-bound JWT) made the after_request hook ask Redis again
    and the request ended as a 500 HTML page."""
    from dashboards.provision import Provisioner
    from tests.integration.test_board import refresh_body
    # The dashboard's ONE refresh callback, asked for every widget of the executive dashboard.
    dash_body = refresh_body(outage.app, Provisioner().get("executive").model_dump(mode="json"))
    nav_body, _ = _callback_body(outage.app, "nav-links.children")
    calls = [("GET", "/api/dashboard/executive", None), ("GET", "/api/alerts", None),
             ("GET", "/api/metrics/gate_pass_rate/series?timeframe=24h", None),
             ("POST", "/api/events", {"events": [{"id": "e1", "type": "workflow.quality_gate_executed",
                                                  "timestamp": fmt_ms(now_ms()), "source": "ci",
                                                  "data": {"workflow_id": "W1", "gate_name": "lint",
                                                           "passed": True}}]}),
             ("POST", "/_dash-update-component", dash_body), ("POST", "/_dash-update-component", nav_body)]
    bearer = {"api token": outage.api_token, "user JWT": outage.epoch_jwt, "plain JWT": outage.plain_jwt}
    outage.stop()
    for kind, credential in bearer.items():
        for method, path, body in calls:
            c = outage.app.server.test_client()
            outage.attempts = 0
            res = c.open(path, method=method, json=body, headers={"Authorization": f"Bearer {credential}"})
            _assert_json_503(res, f"{kind} {method} {path}")
            assert outage.attempts <= 1, f"{kind} {method} {path}: Redis tried {outage.attempts} times in one request"
    for method, path, body in calls:          # the signed-in browser (session cookie)
        outage.attempts = 0
        res = outage.browser.open(path, method=method, json=body, headers={"X-CSRFToken": outage.csrf})
        _assert_json_503(res, f"session {method} {path}")
        assert outage.attempts <= 1, f"session {method} {path}: Redis tried {outage.attempts} times"


def test_out002_pages_and_health_say_the_data_store_is_unavailable(outage: Outage) -> None:
    outage.stop()
    page = outage.browser.get("/dashboards/executive", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "reconnecting to the data store" in page.get_data(as_text=True)
    assert page.headers["Retry-After"].isdigit()
    anon = outage.app.server.test_client()
    anon.get("/login")
    with anon.session_transaction() as sess:
        csrf = sess.get("csrf", "")
    form = anon.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": csrf},
                     headers={"Accept": "text/html"})
    assert form.status_code == 503 and "reconnecting to the data store" in form.get_data(as_text=True)
    health = outage.app.server.test_client().get("/health")
    assert health.status_code == 503 and health.json["checks"]["redis"]["status"] == "unhealthy"
    assert health.headers["Retry-After"].isdigit()
    # Anonymous callers of public endpoints are not made to wait or crash either.
    _assert_json_503(anon.post("/api/auth/token", json={"username": "ada", "password": PASSWORD}), "token")


def test_out003_the_websocket_handshake_is_refused_with_503(outage: Outage) -> None:
    srv = make_server("127.0.0.1", 0, outage.app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        outage.stop()
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{srv.server_port}/ws?token={outage.api_token}", open_timeout=10)
        res = refused.value.response
        assert res.status_code == 503
        assert res.headers["Retry-After"].isdigit()
        assert b'"unavailable"' in res.body
    finally:
        srv.shutdown()


def test_out004_a_paused_redis_costs_one_short_timeout_not_a_retry_storm(outage: Outage) -> None:
    """A Redis that accepts connections but never answers (paused, overloaded, a dead host
    behind a live proxy): the request still ends as a 503 after one short read timeout."""
    kwargs = outage.svc.redis.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] <= 1.0 and kwargs["socket_timeout"] <= 2.0, kwargs
    assert kwargs["retry"].get_retries() == 0, "no retries inside one request"
    outage.redis_server.pause()
    outage.attempts = 0
    res = outage.app.server.test_client().get("/api/dashboard/executive",
                                              headers={"Authorization": f"Bearer {outage.api_token}"})
    _assert_json_503(res, "paused")
    assert outage.attempts == 1


def test_out005_the_app_recovers_when_redis_is_back(outage: Outage) -> None:
    outage.redis_server.pause()
    res = outage.app.server.test_client().get("/api/alerts", headers={"Authorization": f"Bearer {outage.api_token}"})
    assert res.status_code == 503
    outage.redis_server.pause(False)
    res = outage.app.server.test_client().get("/api/alerts", headers={"Authorization": f"Bearer {outage.api_token}"})
    assert res.status_code == 200, res.get_data(as_text=True)[:300]
    assert redis.Redis.from_url(outage.redis_server.url).ping()
