"""Authentication end to end: Bearer credentials (JWT, API tokens), browser sessions,
sign-in hardening, passwords kept out of logs and Redis, per-role sanitisation of the
data that leaves, and security headers. Real Redis, Flask test client, no browser.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import everything_in_redis

from auth.guard import CSRF_HEADER
from auth.principal import issue_jwt
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms
from tests.conftest import PASSWORD, ROLES

UPDATE = "/_dash-update-component"
ALL_ROLES = (*ROLES, "producer")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def assert_401(res: Any, where: str = "") -> None:
    assert res.status_code == 401, f"{where}: {res.status_code} {res.data[:200]!r}"
    body = res.get_json(silent=True)
    assert body and body["response"]["status"] == "error" and "data" not in body["response"], where


def get_jwt(c: Any, name: str, password: str = PASSWORD) -> str:
    res = c.post("/api/auth/token", json={"username": name, "password": password})
    assert res.status_code == 200, res.data[:200]
    assert res.json["token_type"] == "Bearer"
    return res.json["access_token"]


def route_body(app: Any, path: str = "/") -> dict[str, Any]:
    from tests.integration.test_rbac_matrix import parse_outputs
    [key] = [k for k in app.callback_map if "page.children" in k]
    return {"output": key, "outputs": parse_outputs(key),
            "inputs": [{"id": "route-path", "property": "data", "value": path}],
            "state": [{"id": "url", "property": "search", "value": ""}, {"id": "theme", "property": "data", "value": None}],
            "changedPropIds": ["route-path.data"]}


def csrf_of(c: Any) -> str:
    with c.session_transaction() as sess:
        return sess["csrf"]


def set_cookies(res: Any) -> dict[str, str]:
    out = {}
    for header in res.headers.getlist("Set-Cookie"):
        out[header.split("=", 1)[0]] = header
    return out


# --- 3. Bearer credentials ------------------------------------------------------------------

DASH = "/api/dashboard/executive"


def test_auth001_a_valid_jwt_works(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    assert c.get(DASH, headers=auth.bearer("executive")).status_code == 200
    assert c.get(DASH, headers={"Authorization": auth.bearer("executive")["Authorization"].replace("Bearer", "bearer")}
                 ).status_code == 200


def test_auth002_expired_jwt(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    name = auth.user("executive")
    assert_401(app.server.test_client().get(DASH, headers=bearer(issue_jwt(name, ["executive"], -5, svc.secret_key))))


def test_auth003_tampered_jwts(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    name = auth.user("executive")
    token = issue_jwt(name, ["executive"], 600, svc.secret_key)
    header, payload, sig = token.split(".")
    c = app.server.test_client()
    # The signature changed (a middle character: the last one carries padding bits).
    i = len(sig) // 2
    bad_sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    assert_401(c.get(DASH, headers=bearer(f"{header}.{payload}.{bad_sig}")), "signature changed")
    # The payload changed (roles escalated) under the original signature.
    claims = json.loads(unb64url(payload))
    claims["roles"] = ["admin"]
    forged = b64url(json.dumps(claims).encode())
    assert_401(c.get("/api/deadletter", headers=bearer(f"{header}.{forged}.{sig}")), "payload changed")
    # Truncated and garbage tokens.
    assert_401(c.get(DASH, headers=bearer(f"{header}.{payload}")), "two segments")
    assert_401(c.get(DASH, headers=bearer("not-a-jwt")), "garbage")
    assert_401(c.get(DASH, headers={"Authorization": "Bearer "}), "empty")


def test_auth004_alg_none_jwt(app: Any, auth: Any) -> None:
    name = auth.user("admin")
    now = now_ms() // 1000
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": name, "roles": ["admin"], "iat": now, "exp": now + 600}).encode())
    c = app.server.test_client()
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert_401(c.get(DASH, headers=bearer(token)), token)
    header_none = b64url(json.dumps({"alg": "None"}).encode())
    assert_401(c.get(DASH, headers=bearer(f"{header_none}.{payload}.")), "alg None")


def test_auth005_jwt_signed_with_another_secret(app: Any, auth: Any) -> None:
    name = auth.user("admin")
    other = issue_jwt(name, ["admin"], 600, "another-secret-" + "x" * 40)
    assert_401(app.server.test_client().get(DASH, headers=bearer(other)))


@pytest.mark.parametrize("change", ["password", "disabled", "roles"])
def test_auth006_jwt_dies_with_a_user_change(app: Any, auth: Any, change: str) -> None:
    """A JWT from POST /api/auth/token carries the user's session epoch."""
    svc = app.server.extensions["qms"]
    name = auth.user("executive")
    c = app.server.test_client()
    token = get_jwt(c, name)
    other = get_jwt(c, auth.user("executive", "bystander"))
    assert c.get(DASH, headers=bearer(token)).status_code == 200
    if change == "password":
        svc.users.set_password(name, "a brand new passphrase")
    elif change == "disabled":
        svc.users.set_disabled(name, True)
    else:
        svc.users.set_roles(name, ["executive", "developer"])
    assert_401(c.get(DASH, headers=bearer(token)), change)
    assert c.get(DASH, headers=bearer(other)).status_code == 200      # nobody else is affected


def test_auth007_token_exchange_refuses_wrong_or_disabled(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    name = auth.user("executive")
    c = app.server.test_client()
    assert_401(c.post("/api/auth/token", json={"username": name, "password": PASSWORD + "x"}))
    assert_401(c.post("/api/auth/token", json={"username": "nobody", "password": PASSWORD}))
    svc.users.set_disabled(name, True)
    assert_401(c.post("/api/auth/token", json={"username": name, "password": PASSWORD}))


def test_auth008_api_token_for_a_producer(app: Any) -> None:
    svc = app.server.extensions["qms"]
    token_id, secret = svc.tokens.create("ci-pipeline", ["producer"], "test")
    c = app.server.test_client()
    ev = {"id": "tok-1", "type": "workflow.review_started", "timestamp": fmt_ms(now_ms() - 60_000), "source": "ci",
          "data": {"workflow_id": "W1", "reviewer": "qms-code-reviewer"}}
    assert c.post("/api/events", json=ev, headers=bearer(secret)).status_code == 202
    for path in ("/api/dashboard/executive", "/api/dashboard/operational", "/api/dashboard/qa",
                 "/api/dashboard/developer", "/api/state/active", "/api/deadletter", "/api/audit", "/api/tokens",
                 "/api/metrics/process_adoption_rate/events"):
        res = c.get(path, headers=bearer(secret))
        assert res.status_code == 403 and "data" not in res.json["response"], path
    # The token is not a browser session: no callbacks beyond what its role allows either.
    assert c.post(UPDATE, json=route_body(app), headers=bearer(secret)).status_code == 200   # authenticated only
    svc.tokens.revoke(token_id)
    assert_401(c.post("/api/events", json={**ev, "id": "tok-2"}, headers=bearer(secret)), "revoked")
    assert_401(c.get(DASH, headers=bearer(secret)), "revoked")


def test_auth009_malformed_and_forged_api_tokens(app: Any) -> None:
    svc = app.server.extensions["qms"]
    _token_id, secret = svc.tokens.create("ci", ["admin"], "test")
    c = app.server.test_client()
    assert c.get(DASH, headers=bearer(secret)).status_code == 200
    for bad in ("qms_x", "qms_", secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x",
                "qms_" + "0" * 16 + "_" + secret.split("_", 2)[2]):
        assert_401(c.get(DASH, headers=bearer(bad)), bad)
        assert_401(c.post(UPDATE, json=route_body(app), headers=bearer(bad)), bad)


# --- 4. Sessions ----------------------------------------------------------------------------

def test_auth020_session_cookie_flags(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    res = auth.login(c, "executive")
    assert res.status_code == 302
    cookie = set_cookies(res)["qms_session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "qms_remember" not in set_cookies(res)
    assert c.get("/").status_code == 200


def test_auth020b_the_session_cookie_is_sent_again_only_when_it_changes_or_every_ten_minutes(
        app: Any, auth: Any, monkeypatch: Any) -> None:
    """Requests of a signed-in browser carry no Set-Cookie (the session and CSRF cookies as
    they were); the session cookie's expiry moves on once SESSION_REFRESH_S has passed, and
    a sign-out still ends the session at once whatever cookie the browser keeps."""
    from auth import security
    c = app.server.test_client()
    res = auth.login(c, "executive")
    assert {"qms_session"} <= set(set_cookies(res))
    first = c.get("/")                          # the first page: the refresh mark and the CSRF cookie
    assert first.status_code == 200
    kept = c.get_cookie("qms_session").value
    for path in ("/", "/dashboards/executive", "/api/dashboard/executive"):
        res = c.get(path)
        assert res.status_code == 200 and set_cookies(res) == {}, (path, set_cookies(res))
    later = security.now_s() + security.SESSION_REFRESH_S + 5
    monkeypatch.setattr(security, "now_s", lambda: later)
    res = c.get("/")
    assert list(set_cookies(res)) == ["qms_session"] and c.get_cookie("qms_session").value != kept
    assert set_cookies(c.get("/")) == {}
    stolen = c.get_cookie("qms_session").value
    c.post("/logout", data={"csrf_token": csrf_of(c)})
    thief = app.server.test_client()
    thief.set_cookie("qms_session", stolen)
    assert thief.get("/").status_code == 302


def test_auth021_remember_me_cookie(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    res = auth.login(c, "executive", remember=True)
    cookies = set_cookies(res)
    assert "qms_remember" in cookies, list(cookies)
    assert "HttpOnly" in cookies["qms_remember"] and "SameSite=Lax" in cookies["qms_remember"]
    # The remember cookie alone signs the user back in.
    c.delete_cookie("qms_session")
    assert c.get("/").status_code == 200


def test_auth032_logout_also_ends_a_remembered_session(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "executive", remember=True)
    assert c.get("/").status_code == 200
    c.post("/logout", data={"csrf_token": csrf_of(c)})
    cookie = c.get_cookie("qms_remember")
    assert cookie is None or not cookie.value, "qms_remember survived /logout"
    assert c.get("/").status_code == 302


def test_auth022_remember_cookie_dies_with_a_password_change(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    c = app.server.test_client()
    auth.login(c, "executive", remember=True)
    c.delete_cookie("qms_session")
    svc.users.set_password("executive-user", "a brand new passphrase")
    res = c.get("/")
    assert res.status_code == 302 and urlsplit(res.headers["Location"]).path == "/login"


@pytest.mark.parametrize("change", ["password", "disabled", "roles"])
def test_auth023_session_ends_with_a_user_change(app: Any, auth: Any, change: str) -> None:
    svc = app.server.extensions["qms"]
    c = app.server.test_client()
    auth.login(c, "executive")
    csrf = csrf_of(c)
    assert c.get("/").status_code == 200
    assert c.post(UPDATE, json=route_body(app), headers={CSRF_HEADER: csrf}).status_code == 200
    if change == "password":
        svc.users.set_password("executive-user", "a brand new passphrase")
    elif change == "disabled":
        svc.users.set_disabled("executive-user", True)
    else:
        svc.users.set_roles("executive-user", ["developer"])
    page = c.get("/dashboards/executive")
    assert page.status_code == 302
    assert urlsplit(page.headers["Location"]).path == "/login"
    assert_401(c.post(UPDATE, json=route_body(app), headers={CSRF_HEADER: csrf}), change)
    assert_401(c.post(UPDATE, json=route_body(app), headers={CSRF_HEADER: csrf_of(c)}), change)


def test_auth024_logout_ends_the_session(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "admin")
    csrf = csrf_of(c)
    assert c.get("/").status_code == 200
    res = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert res.status_code == 302 and urlsplit(res.headers["Location"]).path == "/login"
    assert c.get("/").status_code == 302
    assert_401(c.post(UPDATE, json=route_body(app), headers={CSRF_HEADER: csrf}))
    assert_401(c.get("/api/dashboard/executive"))


def test_auth025_signed_in_session_reaches_the_api(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "developer")
    assert c.get("/api/dashboard/developer").status_code == 200
    assert c.get("/api/dashboard/executive").status_code == 403


def test_auth026_rate_limit_blocks_the_right_password_from_that_address(app: Any, auth: Any) -> None:
    """Five failures limit this name at this address (another address: test_ses020)."""
    name = auth.user("executive")
    c = app.server.test_client()
    c.get("/login")
    for _ in range(5):
        res = c.post("/login", data={"username": name, "password": "wrong password!", "csrf_token": csrf_of(c)})
        assert res.status_code == 401
    res = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(c)})
    assert res.status_code == 429
    assert c.get("/").status_code == 302                    # not signed in
    # The JSON token exchange shares the limiter.
    assert c.post("/api/auth/token", json={"username": name, "password": PASSWORD}).status_code == 429


def test_auth027_sign_in_needs_the_form_csrf_token(app: Any, auth: Any) -> None:
    name = auth.user("executive")
    c = app.server.test_client()
    c.get("/login")
    assert c.post("/login", data={"username": name, "password": PASSWORD}).status_code == 400
    assert c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": "forged"}).status_code == 400
    fresh = app.server.test_client()       # no session at all
    assert fresh.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": "x"}).status_code == 400
    assert c.get("/").status_code == 302 and fresh.get("/").status_code == 302


def _login_next(app: Any, auth: Any, nxt: str) -> str:
    name = auth.user("executive")
    c = app.server.test_client()
    c.get("/login")
    res = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(c), "next": nxt})
    assert res.status_code == 302
    return res.headers["Location"]


def _lands_on_site(location: str) -> bool:
    # What a browser does with Location: it drops tabs and newlines, and treats '\' like '/'.
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/").strip()
    parts = urlsplit(cleaned)
    return not parts.scheme and not parts.netloc and cleaned.startswith("/") and not cleaned.startswith("//")


@pytest.mark.parametrize("nxt", ["//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example",
                                 "///evil.example", "javascript:alert(1)"])
def test_auth028_open_redirect(app: Any, auth: Any, nxt: str) -> None:
    location = _login_next(app, auth, nxt)
    assert urlsplit(location).path == "/" and urlsplit(location).netloc in ("", "localhost"), location


@pytest.mark.parametrize("nxt", ["/\t/evil.example", "/\n/evil.example", "/\r/evil.example"])
def test_auth029_open_redirect_with_control_characters(app: Any, auth: Any, nxt: str) -> None:
    location = _login_next(app, auth, nxt)
    assert _lands_on_site(location), repr(location)


def test_auth030_next_keeps_a_local_path(app: Any, auth: Any) -> None:
    assert urlsplit(_login_next(app, auth, "/dashboards/qa?timeframe=1h")).path == "/dashboards/qa"
    page = app.server.test_client().get("/login?next=//evil.example")
    assert 'name="next" value="/"' in page.get_data(as_text=True)


def test_auth031_session_api_writes_need_the_csrf_header(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    token_id, _ = svc.tokens.create("victim", ["producer"], "test")
    c = app.server.test_client()
    auth.login(c, "admin")
    ev = {"id": "csrf-1", "type": "workflow.review_started", "timestamp": fmt_ms(now_ms() - 60_000), "source": "x",
          "data": {"workflow_id": "W1", "reviewer": "qms-code-reviewer"}}
    assert c.post("/api/events", json=ev).status_code == 403
    assert c.post("/api/tokens", json={"name": "evil", "roles": ["admin"]}).status_code == 403
    assert c.delete(f"/api/tokens/{token_id}").status_code == 403


# --- 5. Passwords never in clear ------------------------------------------------------------



def test_auth040_no_password_in_logs(app: Any, auth: Any, caplog: Any, r: Any) -> None:
    wrong = "Wrong-Pa55word-zz9"
    name = auth.user("executive")
    caplog.set_level(logging.DEBUG)
    c = app.server.test_client()
    c.get("/login")
    assert c.post("/login", data={"username": name, "password": wrong, "csrf_token": csrf_of(c)}).status_code == 401
    assert c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(c)}).status_code == 302
    assert c.post("/api/auth/token", json={"username": name, "password": wrong}).status_code == 401
    assert c.post("/api/auth/token", json={"username": name, "password": PASSWORD}).status_code == 200
    assert caplog.records, "expected at least the failed sign-in warning"
    text = "\n".join(f"{rec.getMessage()} {rec.args!r} {rec.exc_text or ''} {rec.__dict__!r}"
                     for rec in caplog.records)
    for secret in (wrong, PASSWORD):
        assert secret not in text
    dump = everything_in_redis(r)
    assert wrong.encode() not in dump and PASSWORD.encode() not in dump


def test_auth041_no_password_in_redis_after_add(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    secret = "S3cret-Stays-Out-Of-Redis"
    svc.users.add("dana", ["qa_lead"], secret)
    svc.users.set_password("dana", secret + "-2")
    dump = everything_in_redis(r)
    assert b"dana" in dump                        # the scan sees the user...
    assert secret.encode() not in dump            # ...but no password, old or new
    assert base64.b64encode(secret.encode()) not in dump


# --- 6. Sanitisation end to end -------------------------------------------------------------

AGENT = "qms-security-reviewer"
PEOPLE = ("alice", "bob", "carol")


@pytest.fixture
def people(client: Any, r: Any) -> None:
    t = now_ms() - 10 * 60_000
    events = [
        {"id": "san-pr", "type": "workflow.pr_created", "timestamp": fmt_ms(t), "source": "vcs",
         "data": {"workflow_id": "WF-san", "pr_number": 7, "repository": "svc/api", "author": "alice",
                  "team": "core", "title": "Fix alice's bug"}},
        {"id": "san-rs", "type": "workflow.review_started", "timestamp": fmt_ms(t + 60_000), "source": "orch",
         "data": {"workflow_id": "WF-san", "reviewer": AGENT}},
        {"id": "san-rc", "type": "workflow.review_completed", "timestamp": fmt_ms(t + 120_000), "source": "orch",
         "data": {"workflow_id": "WF-san", "reviewer": "bob", "verdict": "approved", "cost_usd": 1.25}},
        {"id": "san-sv", "type": "user.survey_submitted", "timestamp": fmt_ms(t + 180_000), "source": "survey",
         "data": {"user": "carol", "score": 4}},
    ]
    res = client.post("/api/events", json={"events": events})
    assert res.status_code == 202 and res.json["accepted"] == len(events), res.json
    Aggregator(r, Keys("qms")).drain()


def _get(app: Any, headers: dict[str, str], path: str) -> Any:
    return app.server.test_client().get(path, headers=headers)


def _events(res: Any) -> list[dict[str, Any]]:
    """A drill-down's rows and the context events they carry (a review's start, a PR's creation)."""
    assert res.status_code == 200, res.data[:200]
    return [e for row in res.json["response"]["data"]["events"] for e in (row, *row.get("context", []))]


def _by_type(evs: list[dict[str, Any]], t: str) -> dict[str, Any]:
    [ev] = [e for e in evs if e["type"] == t]
    return ev


def _has(ev: dict[str, Any], path: str) -> bool:
    node: Any = ev
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


EXEC_KPIS = ("process_adoption_rate", "cost_per_review", "average_review_cycle_time", "developer_satisfaction")


@pytest.mark.parametrize("role", ALL_ROLES)
def test_auth050_drill_down_sanitised_per_role(app: Any, auth: Any, people: None, role: str) -> None:
    svc = app.server.extensions["qms"]
    rbac = svc.rbac
    cfg = rbac.sanitization[role]
    headers = auth.bearer(role)
    may_exec = rbac.allows([role], "view:executive_dashboard")
    may_csv = may_exec and rbac.allows([role], "export:reports")
    responses = {}
    for kpi in EXEC_KPIS:
        for suffix in ("?timeframe=1h", "?timeframe=1h&format=csv"):
            res = _get(app, headers, f"/api/metrics/{kpi}/events{suffix}")
            responses[kpi + suffix] = res
            allowed = may_csv if "csv" in suffix else may_exec
            assert res.status_code == (200 if allowed else 403), (kpi, suffix, res.status_code)
            if cfg.pseudonymize_authors or not allowed:
                low = res.data.lower()
                for name in PEOPLE:
                    assert name.encode() not in low, f"{role} sees {name!r} in {kpi}{suffix}"
    if not may_exec:
        return
    adoption = _events(responses["process_adoption_rate?timeframe=1h"])
    pr = _by_type(adoption, "workflow.pr_created")
    rc = _by_type(_events(responses["cost_per_review?timeframe=1h"]), "workflow.review_completed")
    rs = _by_type(_events(responses["average_review_cycle_time?timeframe=1h"]), "workflow.review_started")
    sv = _by_type(_events(responses["developer_satisfaction?timeframe=1h"]), "user.survey_submitted")
    assert rs["data"]["reviewer"] == AGENT                        # agents are not people
    for ev in (pr, rc, rs, sv):
        for path in cfg.hidden_fields:
            assert not _has(ev, path), f"{role}: {path} visible in {ev['type']}"
    if cfg.pseudonymize_authors:
        alice, bob = pr["data"]["author"], rc["data"]["reviewer"]
        assert re.fullmatch(r"user-[0-9a-f]{10}", alice) and re.fullmatch(r"user-[0-9a-f]{10}", bob)
        assert alice != bob
        again = _by_type(_events(_get(app, headers, "/api/metrics/process_adoption_rate/events?timeframe=1h")),
                         "workflow.pr_created")
        assert again["data"]["author"] == alice                   # stable across requests
        if may_csv:
            rows = list(csv.DictReader(io.StringIO(responses["process_adoption_rate?timeframe=1h&format=csv"]
                                                   .get_data(as_text=True))))
            assert [row["data.author"] for row in rows] == [alice]
            for path in cfg.hidden_fields:
                assert path not in (rows[0] if rows else {}), f"{role}: CSV column {path}"
    else:
        assert pr["data"]["author"] == "alice" and rc["data"]["reviewer"] == "bob"
        if not _hidden(cfg, "data.title"):
            assert pr["data"]["title"] == "Fix alice's bug"
        if may_csv:
            assert "alice" in responses["process_adoption_rate?timeframe=1h&format=csv"].get_data(as_text=True)


def _hidden(cfg: Any, path: str) -> bool:
    return path in cfg.hidden_fields


def test_auth051_operations_sees_pseudonyms_in_its_own_views(app: Any, auth: Any, people: None) -> None:
    svc = app.server.extensions["qms"]
    ops, admin = auth.bearer("operations"), auth.bearer("admin")
    assert svc.rbac.sanitization["operations"].pseudonymize_authors
    active = _get(app, ops, "/api/state/active")
    assert active.status_code == 200
    [row] = [x for x in active.json["response"]["data"]["items"] if x["workflow_id"] == "WF-san"]
    assert re.fullmatch(r"user-[0-9a-f]{10}", row["author"]) and b"alice" not in active.data.lower()
    [clear] = [x for x in _get(app, admin, "/api/state/active").json["response"]["data"]["items"]
               if x["workflow_id"] == "WF-san"]
    assert clear["author"] == "alice"
    # The same person has the same pseudonym in the state list and in the drill-down, JSON and CSV.
    drill = _get(app, ops, "/api/metrics/total_active_reviews/events?timeframe=1h")
    assert b"alice" not in drill.data.lower()
    pr = _by_type(_events(drill), "workflow.pr_created")
    assert pr["data"]["author"] == row["author"] and "title" not in pr["data"]
    exported = _get(app, ops, "/api/metrics/total_active_reviews/events?timeframe=1h&format=csv")
    assert exported.status_code == 200 and b"alice" not in exported.data.lower()
    assert row["author"] in exported.get_data(as_text=True)
    # ...and the executive, who pseudonymises with the same key, sees the same pseudonym.
    exe = _by_type(_events(_get(app, auth.bearer("executive"), "/api/metrics/process_adoption_rate/events?timeframe=1h")),
                   "workflow.pr_created")
    assert exe["data"]["author"] == row["author"]


def test_auth052_developer_and_qa_lead_see_names(app: Any, auth: Any, people: None, r: Any) -> None:
    rbac = app.server.extensions["qms"].rbac
    assert not rbac.sanitization["developer"].pseudonymize_authors
    assert not rbac.sanitization["qa_lead"].pseudonymize_authors
    # A teammate's pull request waiting in code review (suggested to every developer).
    t = now_ms() - 5 * 60_000
    app.server.extensions["qms"].ingestor.ingest([
        {"id": "sug-pr", "type": "workflow.pr_created", "timestamp": fmt_ms(t), "source": "vcs",
         "data": {"workflow_id": "WF-sug", "pr_number": 8, "repository": "svc/api", "author": "alice",
                  "team": "core", "title": "Fix alice's bug"}},
        {"id": "sug-st", "type": "workflow.step_entered", "timestamp": fmt_ms(t + 1000), "source": "orch",
         "data": {"workflow_id": "WF-sug", "step": "code_review"}},
        {"id": "dev-pr", "type": "workflow.pr_created", "timestamp": fmt_ms(t), "source": "vcs",
         "data": {"workflow_id": "WF-dev", "pr_number": 9, "repository": "svc/api", "author": auth.user("developer"),
                  "team": "core"}}])
    Aggregator(r, Keys("qms")).drain()
    dev = _events(_get(app, auth.bearer("developer"), "/api/metrics/suggested_reviews/events?timeframe=1h"))
    pr = _by_type(dev, "workflow.pr_created")
    assert pr["data"]["author"] == "alice" and pr["data"]["title"] == "Fix alice's bug"
    # No qa_lead view lists people on its own; with a second role, the most permissive
    # view wins (names in clear), while the fields every role hides stay hidden.
    both = {"Authorization": "Bearer " + issue_jwt(auth.user("qa_lead", "qa-exec"), ["qa_lead", "executive"], 600,
                                                   app.server.extensions["qms"].secret_key)}
    evs = _events(_get(app, both, "/api/metrics/process_adoption_rate/events?timeframe=1h"))
    assert next(e for e in evs if e["id"] == "san-pr")["data"]["author"] == "alice"
    sv = _by_type(_events(_get(app, both, "/api/metrics/developer_satisfaction/events?timeframe=1h")),
                  "user.survey_submitted")
    assert "user" not in sv["data"]


def test_auth053_a_stale_role_never_reveals_more(app: Any, auth: Any, people: None) -> None:
    svc = app.server.extensions["qms"]
    svc.users.add("stale", ["executive", "auditor"], PASSWORD)   # 'auditor' is not (or no longer) in rbac.yaml
    token = get_jwt(app.server.test_client(), "stale")
    res = _get(app, bearer(token), "/api/metrics/process_adoption_rate/events?timeframe=1h")
    assert res.status_code == 200
    assert b"alice" not in res.data.lower()


# --- 7. Security headers --------------------------------------------------------------------

def _assert_security_headers(res: Any, where: str) -> None:
    csp = res.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, f"{where}: {csp!r}"
    assert res.headers.get("X-Content-Type-Options") == "nosniff", where
    assert res.headers.get("X-Frame-Options") == "DENY", where


def test_auth060_security_headers(app: Any, auth: Any, anon: Any) -> None:
    _assert_security_headers(anon.get("/login"), "/login")
    redirect = anon.get("/")
    assert redirect.status_code == 302
    _assert_security_headers(redirect, "/ (anonymous)")
    c = app.server.test_client()
    auth.login(c, "executive")
    page = c.get("/")
    assert page.status_code == 200
    _assert_security_headers(page, "/ (signed in)")
    _assert_security_headers(c.get("/api/dashboard/executive"), "API")


def test_auth061_a_callback_body_is_parsed_once(app: Any, auth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard parses and checks a callback's body before Dash runs it; Dash's dispatch then
    gets that parse (request.get_json's cache), not a second parse of the same bytes."""
    from api import validation
    from auth import guard
    calls: list[int] = []

    def counted(raw: Any) -> Any:
        if b"changedPropIds" in (raw if isinstance(raw, bytes) else raw.encode()):    # this body, not others
            calls.append(len(raw))
        return original(raw)
    original = validation.loads
    monkeypatch.setattr(validation, "loads", counted)
    monkeypatch.setattr(guard, "loads", counted)
    c = app.server.test_client()
    auth.login(c, "executive")
    res = c.post(UPDATE, json=route_body(app, "/dashboards/executive"), headers={CSRF_HEADER: csrf_of(c)})
    assert res.status_code == 200 and "page" in res.json["response"], res.data[:300]
    assert len(calls) == 1, calls
    bad = c.post(UPDATE, data=b'{"output": [', headers={CSRF_HEADER: csrf_of(c), "Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json["response"]["error"]["message"], bad.data
