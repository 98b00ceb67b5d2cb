"""Browser test (dash_duo, headless Chromium): signing out with the navbar's button ends the
session server-side, so a copy of the browser's cookies taken before is useless after."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import PASSWORD
from tests.helpers import make_app

pytestmark = pytest.mark.e2e


def test_ses100_the_navbar_sign_out_makes_a_copied_cookie_useless(dash_duo: Any, settings: Any, r: Any) -> None:
    app = make_app(settings)
    svc = app.server.extensions["qms"]
    svc.users.add("qa-user", ["qa_lead"], PASSWORD)
    dash_duo.start_server(app, navigate=False)
    base = dash_duo.server.url
    dash_duo.driver.get(base + "/login")
    dash_duo.wait_for_element("#username", timeout=10).send_keys("qa-user")
    dash_duo.find_element("#password").send_keys(PASSWORD)
    dash_duo.find_element("#remember").click()
    dash_duo.find_element("#sign-in").click()
    dash_duo.wait_for_element("#nav-qa", timeout=20)

    # What a thief copies from the signed-in browser: every cookie it holds.
    jar = {c["name"]: c["value"] for c in dash_duo.driver.get_cookies()}
    assert {"qms_session", "qms_remember"} <= set(jar)
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    host = urlsplit(base).netloc
    assert requests.get(base + "/api/dashboard/qa", headers={"Cookie": cookie}, timeout=10).status_code == 200
    with connect(f"ws://{host}/ws", additional_headers={"Cookie": cookie}, open_timeout=10):
        pass

    dash_duo.find_element("#sign-out").click()
    dash_duo.wait_for_element("#username", timeout=20)
    assert urlsplit(dash_duo.driver.current_url).path == "/login"

    assert requests.get(base + "/api/dashboard/qa", headers={"Cookie": cookie}, timeout=10).status_code == 401
    page = requests.get(base + "/dashboards/qa", headers={"Cookie": cookie}, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and urlsplit(page.headers["Location"]).path == "/login"
    remembered = requests.get(base + "/", headers={"Cookie": f"qms_remember={jar['qms_remember']}"},
                              allow_redirects=False, timeout=10)
    assert remembered.status_code == 302, "the remember-me cookie alone no longer signs in"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{host}/ws", additional_headers={"Cookie": cookie}, open_timeout=10)
    assert refused.value.response.status_code == 401
    assert "auth.sign_out" in [e["type"] for e in svc.audit.query(user="qa-user")]
