"""Sessions that end: a sign-in is a server-side record in Redis, so sign-out, a password
change or disabling kills every copy of its cookies (session and remember-me) on pages, the
API and `/ws`; revoking an API token closes its open sockets and event streams at once;
sign-out is a POST with CSRF; failed sign-ins slow an attacker without locking the user out
from another address. Real Redis, the Flask test client, and a real threaded server with a
real WebSocket client for the live transports.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from werkzeug.serving import make_server

from auth.guard import CSRF_HEADER
from auth.principal import issue_jwt
from tests.conftest import PASSWORD
from tests.integration.test_auth import assert_401, csrf_of, route_body
from tests.private_redis import PrivateRedis, private_redis  # noqa: F401  (a fixture)

UPDATE = "/_dash-update-component"
DASH = "/api/dashboard/executive"
CLOSED_WITHIN_S = 3.0      # far below the 30 s revalidation and the 15 s SSE heartbeat


def sign_out(c: Any) -> Any:
    return c.post("/logout", data={"csrf_token": csrf_of(c)})


def copy_cookies(app: Any, src: Any, names: tuple[str, ...] = ("qms_session", "qms_remember")) -> Any:
    """A second browser holding the cookies `src` has now (what a thief would copy)."""
    dst = app.server.test_client()
    for name in names:
        cookie = src.get_cookie(name)
        if cookie is not None:
            dst.set_cookie(name, cookie.value)
    return dst


def to_login(res: Any) -> bool:
    return res.status_code == 302 and urlsplit(res.headers["Location"]).path == "/login"


def session_keys(r: Any) -> list[bytes]:
    return list(r.scan_iter("qms:session:*"))


# --- a copied cookie is dead after sign-out ------------------------------------------------

def test_ses001_a_session_cookie_copied_before_sign_out_is_dead_after_it(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "admin")
    thief = copy_cookies(app, c, ("qms_session",))
    csrf = csrf_of(c)
    assert thief.get(DASH).status_code == 200, "the copy works while the session lives"
    assert thief.get("/").status_code == 200
    res = sign_out(c)
    assert to_login(res)
    assert_401(thief.get(DASH), "API")
    assert to_login(thief.get("/dashboards/executive")), "page"
    assert_401(thief.post(UPDATE, json=route_body(app), headers={CSRF_HEADER: csrf}), "callback")
    assert_401(c.get(DASH), "the signed-out browser itself")


def test_ses002_the_remember_cookie_alone_is_dead_after_sign_out(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "executive", remember=True)
    before = copy_cookies(app, c, ("qms_remember",))
    assert before.get("/").status_code == 200, "the remember cookie alone signs in (it mints a session)"
    after = copy_cookies(app, c, ("qms_remember",))
    assert to_login(sign_out(c))
    assert to_login(after.get("/")), "remember cookie copied before sign-out"
    assert_401(after.get(DASH))
    assert to_login(before.get("/")), "the session the remember cookie minted before sign-out"


@pytest.mark.parametrize("change", ["password", "disabled"])
def test_ses003_every_sign_in_of_a_user_ends_with_a_password_change(app: Any, auth: Any, r: Any, change: str) -> None:
    """Two browsers, one remembered: both, and the remember cookie alone, die server-side."""
    svc = app.server.extensions["qms"]
    a, b = app.server.test_client(), app.server.test_client()
    auth.login(a, "executive", remember=True)
    auth.login(b, "executive")
    other = app.server.test_client()
    auth.login(other, "qa_lead")
    remembered = copy_cookies(app, a, ("qms_remember",))
    assert len(session_keys(r)) == 3, "each sign-in is a record in Redis"
    if change == "password":
        svc.users.set_password("executive-user", "a brand new passphrase")
    else:
        svc.users.set_disabled("executive-user", True)
    for client, where in ((a, "browser a"), (b, "browser b"), (remembered, "remember cookie alone")):
        assert to_login(client.get("/")), where
        assert_401(client.get(DASH), where)
    assert len(session_keys(r)) == 1, "the user's records are deleted, the other user's stays"
    assert other.get("/").status_code == 200


def test_ses004_a_new_sign_in_is_a_new_session_id(app: Any, auth: Any) -> None:
    """Signing in again (session fixation) never reuses the id a cookie held before."""
    c = app.server.test_client()
    auth.login(c, "admin")
    thief = copy_cookies(app, c, ("qms_session",))
    assert to_login(sign_out(c))
    auth.login(c, "admin")
    assert c.get(DASH).status_code == 200
    assert_401(thief.get(DASH))


# --- sign-out is a POST with CSRF -----------------------------------------------------------

def test_ses010_get_logout_does_not_sign_out(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "admin")
    res = c.get("/logout")
    assert res.status_code == 200
    page = res.get_data(as_text=True)
    assert 'method="post"' in page and 'action="/logout"' in page
    assert f'name="csrf_token" value="{csrf_of(c)}"' in page, "the confirm page's form carries the token"
    assert c.get("/").status_code == 200
    assert c.get(DASH).status_code == 200


def test_ses011_post_logout_needs_the_csrf_token(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "admin")
    for data in ({}, {"csrf_token": "forged"}):
        res = c.post("/logout", data=data)
        assert res.status_code == 400, data
        assert 'action="/logout"' in res.get_data(as_text=True), "the answer offers a working sign-out form"
        assert c.get(DASH).status_code == 200, f"still signed in after {data}"
    assert c.post("/logout", headers={CSRF_HEADER: csrf_of(c)}).status_code == 302, "the header works too"
    assert_401(c.get(DASH))


def test_ses012_sign_out_is_audited(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    c = app.server.test_client()
    auth.login(c, "operations")
    c.get("/logout")
    c.post("/logout", data={})
    sign_out(c)
    outs = [e for e in svc.audit.query() if e["type"] == "auth.sign_out"]
    assert [e["data"]["user"] for e in outs] == ["operations-user"]


# --- failed sign-ins slow an attacker without locking the user out ------------------------

def _post_login(c: Any, name: str, password: str, ip: str) -> Any:
    c.get("/login", environ_base={"REMOTE_ADDR": ip})
    return c.post("/login", data={"username": name, "password": password, "csrf_token": csrf_of(c)},
                  environ_base={"REMOTE_ADDR": ip})


@pytest.mark.parametrize("role", ["executive", "admin"])
def test_ses020_wrong_passwords_from_one_address_do_not_lock_out_another(app: Any, auth: Any, role: str) -> None:
    svc = app.server.extensions["qms"]
    svc.limiter.slow_base_s = 0.01            # the per-user slowdown, shortened for the test
    name = auth.user(role)
    attacker = app.server.test_client()
    for _ in range(5):
        assert _post_login(attacker, name, "wrong password!", "198.51.100.7").status_code == 401
    # The user, from address B, signs in (slowed down, not locked out), in a browser and by token.
    user = app.server.test_client()
    res = _post_login(user, name, PASSWORD, "203.0.113.20")
    assert res.status_code == 302 and urlsplit(res.headers["Location"]).path == "/", res.status_code
    assert user.get("/").status_code == 200
    assert user.post("/api/auth/token", json={"username": name, "password": PASSWORD},
                     environ_base={"REMOTE_ADDR": "203.0.113.20"}).status_code == 200
    # Address A is limited: even the right password is refused there for the window.
    limited = _post_login(attacker, name, PASSWORD, "198.51.100.7")
    assert limited.status_code == 429 and "Try again in" in limited.get_data(as_text=True)
    assert attacker.get("/").status_code == 302
    tok = attacker.post("/api/auth/token", json={"username": name, "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert tok.status_code == 429 and int(tok.headers["Retry-After"]) > 0
    kinds = [(e["type"], e["data"]["outcome"]) for e in svc.audit.query(user=name)]
    assert kinds.count(("auth.sign_in_failed", "denied")) == 5
    assert ("auth.sign_in_failed", "rate_limited") in kinds and ("auth.sign_in", "ok") in kinds


def test_ses021_parallel_guesses_from_one_address_get_no_more_tries(app: Any, auth: Any, server: str) -> None:
    """The limit holds for requests sent at once: each attempt is counted as it is let in, not
    after its password was checked. Before, 40 parallel guesses from one address had 11
    passwords checked (all passed a check made before any of them failed)."""
    from concurrent.futures import ThreadPoolExecutor
    svc = app.server.extensions["qms"]
    svc.limiter.slow_base_s = 0.01
    name = auth.user("admin")

    def guess(i: int) -> int:
        return requests.post(f"http://{server}/api/auth/token", json={"username": name, "password": f"guess {i:04}"},
                             timeout=30).status_code
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(guess, range(40)))
    assert sorted(set(codes)) == [401, 429], codes
    assert codes.count(401) == svc.limiter.max_failures, "passwords checked from one address"
    other = requests.post(f"http://{server}/api/auth/token", json={"username": name, "password": PASSWORD},
                          headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    assert other.status_code == 429, "the address stays limited (no proxy is trusted)"


# --- the live transports --------------------------------------------------------------------

@pytest.fixture
def server(app: Any) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_port}"
    app.server.extensions["qms_hub"].stop()
    srv.shutdown()


def _browser_sign_in(server: str, name: str) -> requests.Session:
    s = requests.Session()
    s.get(f"http://{server}/login", timeout=5)
    res = s.post(f"http://{server}/login", data={"username": name, "password": PASSWORD,
                                                   "csrf_token": s.cookies["_csrf_token"]},
                 allow_redirects=False, timeout=5)
    assert res.status_code == 302, res.status_code
    return s


def _ping(ws: Any) -> None:
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}


def _closed_within(ws: Any, seconds: float) -> bool:
    """True when the server closes the socket within `seconds` (messages before that are read)."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
    return False


def _ends_within(lines: Iterator[bytes], seconds: float) -> bool:
    """True when the server ends an event stream within `seconds` (its lines are read)."""
    ended = threading.Event()

    def drain() -> None:
        try:
            for _ in lines:
                pass
            ended.set()
        except requests.RequestException:     # read timeout: the stream stayed open
            pass
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    reader.join(seconds)
    return ended.is_set()


def test_ses030_ws_with_a_cookie_copied_before_sign_out(app: Any, auth: Any, server: str) -> None:
    browser = _browser_sign_in(server, auth.user("qa_lead"))
    cookie = "qms_session=" + browser.cookies["qms_session"]
    hub = app.server.extensions["qms_hub"]
    with connect(f"ws://{server}/ws", additional_headers={"Cookie": cookie}) as copied:
        _ping(copied)
        assert hub.connected.wait(5)
        res = browser.post(f"http://{server}/logout", data={"csrf_token": browser.cookies["_csrf_token"]},
                           allow_redirects=False, timeout=5)
        assert res.status_code == 302
        assert _closed_within(copied, CLOSED_WITHIN_S), "the open socket of the copied cookie closes"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{server}/ws", additional_headers={"Cookie": cookie})
    assert refused.value.response.status_code == 401
    assert requests.get(f"http://{server}{DASH}", headers={"Cookie": cookie}, timeout=5).status_code == 401


def test_ses031_revoking_an_api_token_closes_its_socket_and_stream(app: Any, auth: Any, server: str) -> None:
    svc = app.server.extensions["qms"]
    token_id, secret = svc.tokens.create("wallboard", ["operations"], "test")
    _other_id, other = svc.tokens.create("wallboard", ["operations"], "test")     # same name, not revoked
    hub = app.server.extensions["qms_hub"]
    with connect(f"ws://{server}/ws?token={secret}") as ws, \
            connect(f"ws://{server}/ws?token={other}") as bystander, \
            requests.get(f"http://{server}/api/stream?channels=dashboard.operational",
                         headers={"Authorization": f"Bearer {secret}"}, stream=True,
                         timeout=(5, CLOSED_WITHIN_S)) as sse:
        assert sse.status_code == 200
        lines = sse.iter_lines()
        assert json.loads(next(lines)[6:])["type"] == "subscribed"
        for sock in (ws, bystander):
            _ping(sock)
        assert hub.connected.wait(5)
        res = requests.delete(f"http://{server}/api/tokens/{token_id}", headers=auth.bearer("admin"), timeout=5)
        assert res.status_code == 200
        assert _closed_within(ws, CLOSED_WITHIN_S), "the revoked token's WebSocket is still open"
        assert _ends_within(lines, CLOSED_WITHIN_S + 1), "the revoked token's event stream is still open"
        _ping(bystander)                          # another token of the same name keeps its socket
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{server}/ws?token={secret}")
    assert refused.value.response.status_code == 401


def test_ses032_an_event_stream_outlives_a_redis_outage(private_redis: PrivateRedis,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream's periodic credential re-check, like the WebSocket's, cannot revoke anything
    while Redis is away: the stream stays open (told 'unavailable', then 'available'). Before,
    the first heartbeat's re-check raised out of the response and cut every stream."""
    import live.routes
    monkeypatch.setattr(live.routes, "SSE_HEARTBEAT_S", 0.1)
    app = private_redis.app(alerts=False)
    svc = app.server.extensions["qms"]
    hub = app.server.extensions["qms_hub"]
    secret = svc.tokens.create("wallboard", ["operations"], "test")[1]
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with requests.get(f"http://127.0.0.1:{srv.server_port}/api/stream?channels=dashboard.operational",
                          headers={"Authorization": f"Bearer {secret}"}, stream=True, timeout=(5, 10)) as sse:
            lines = sse.iter_lines(decode_unicode=True)
            assert json.loads(next(lines)[6:])["type"] == "subscribed"
            assert hub.connected.wait(5)
            private_redis.shutdown()
            down = next(json.loads(line[6:]) for line in lines if '"data_store"' in line)
            assert down == {"type": "status", "data_store": "unavailable"}
            beats = 0
            for line in lines:                    # several re-checks fail to reach Redis: no cut
                beats += line == ": keep-alive"
                if beats == 5:
                    break
            assert beats == 5
            private_redis.start()
            back = next(json.loads(line[6:]) for line in lines if '"data_store"' in line)
            assert back == {"type": "status", "data_store": "available"}
    finally:
        hub.stop()
        srv.shutdown()


def test_ses033_a_socket_ends_with_its_credential_without_a_close_message(app: Any, auth: Any, r: Any, server: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The sockets' periodic re-check, the backstop of missed close messages, asks what an HTTP
    request asks: a JWT's expiry and its user's session epoch, a sign-in's epoch. Before, a
    socket opened with a JWT outlived its expiry and any change of its user, and one opened
    with a cookie outlived an epoch change whose sign-in records were left."""
    import live.routes
    monkeypatch.setattr(live.routes, "REVALIDATE_S", 0.2)
    monkeypatch.setattr(live.routes, "SSE_HEARTBEAT_S", 0.2)
    svc = app.server.extensions["qms"]
    name = auth.user("qa_lead")
    epoch = svc.users.get(name).session_epoch
    short = issue_jwt(name, ["qa_lead"], 2, svc.secret_key, epoch)
    kept = issue_jwt(name, ["qa_lead"], 600, svc.secret_key, epoch)
    cookie = "qms_session=" + _browser_sign_in(server, name).cookies["qms_session"]
    with connect(f"ws://{server}/ws?token={short}") as expiring, \
            connect(f"ws://{server}/ws?token={kept}") as by_jwt, \
            connect(f"ws://{server}/ws", additional_headers={"Cookie": cookie}) as by_cookie, \
            requests.get(f"http://{server}/api/stream?channels=dashboard.qa", stream=True, timeout=(5, 6),
                         headers={"Authorization": f"Bearer {short}"}) as sse:
        assert sse.status_code == 200
        for ws in (expiring, by_jwt, by_cookie):
            _ping(ws)
        assert _closed_within(expiring, 4), "the socket outlived its JWT"
        assert _ends_within(sse.iter_lines(), CLOSED_WITHIN_S), "the stream outlived its JWT"
        _ping(by_jwt)
        _ping(by_cookie)
        r.hincrby(svc.keys.user(name), "session_epoch", 1)      # a change whose close message was missed
        assert _closed_within(by_jwt, CLOSED_WITHIN_S), "the JWT's socket outlived its user's change"
        assert _closed_within(by_cookie, CLOSED_WITHIN_S), "the sign-in's socket outlived its user's change"


def test_ses040_behind_trusted_proxies_limits_count_the_client_not_the_proxy(settings: Any, r: Any) -> None:
    """Behind a reverse proxy every request comes from the proxy's address: unless the app is
    told how many proxies to trust, 20 failures from anyone would refuse everyone at the proxy's
    address. With QMS_TRUSTED_PROXIES=1 the client's address (X-Forwarded-For) is what counts."""
    from tests.helpers import make_app
    app = make_app(dataclasses.replace(settings, trusted_proxies=1))
    svc = app.server.extensions["qms"]
    svc.limiter.slow_base_s = 0.01
    svc.users.add("victim", ["executive"], PASSWORD)
    proxy = "10.0.0.2"

    def login(password: str, client_ip: str) -> Any:
        c = app.server.test_client()
        env = {"REMOTE_ADDR": proxy, "HTTP_X_FORWARDED_FOR": client_ip}
        c.get("/login", environ_base=env)
        return c.post("/login", data={"username": "victim", "password": password, "csrf_token": csrf_of(c)},
                      environ_base=env)
    for n in range(25):                          # an attacker at one address, through the proxy
        assert login("wrong password!", "198.51.100.7").status_code in (401, 429)
    assert login(PASSWORD, "203.0.113.20").status_code == 302   # the user, elsewhere, through the same proxy
    entries = [e for e in svc.audit.query(user="victim") if e["type"] == "auth.sign_in"]
    assert entries and entries[0]["data"]["ip"] == "203.0.113.20"
