"""The integrations page in a browser: GitHub deliveries (GitHub's recorded payloads, signed)
show up in the source's card and the grid; an operator replays one; no console error."""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.test_dashboards import _app, _severe, _sign_in, _start
from tests.fixtures.github.examples import SECRET, deliver, example

pytestmark = pytest.mark.e2e


def test_whp001_an_operator_sees_the_deliveries_and_replays_one(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings.replace(github_webhook_secret=SECRET))
    client = app.server.test_client()
    assert deliver(client, "pull_request", example("pull_request", "opened"), "pr-opened").status_code == 202
    assert deliver(client, "push", example("push"), "a-push").status_code == 202
    assert deliver(client, "ping", example("ping"), "the-ping").status_code == 202
    assert deliver(client, "ping", example("ping"), "forged", secret="wrong").status_code == 401
    _start(dash_duo, app)
    _sign_in(dash_duo, "operations", "/integrations")
    dash_duo.wait_for_element("#nav-integrations", timeout=20)
    dash_duo.wait_for_contains_text("#int-card-github", "received 3", timeout=20)
    card = dash_duo.find_element("#int-card-github").text
    assert "GitHub" in card and "configured" in card and "mapped 1, unknown 1, ignored 1, bad_signature 1" in card
    assert "not configured" in dash_duo.find_element("#int-card-gitlab").text
    deadline = time.time() + 20
    while len(dash_duo.find_elements("#int-grid .ag-row")) < 3 and time.time() < deadline:
        time.sleep(0.1)
    rows = dash_duo.find_elements("#int-grid .ag-row")
    assert sorted(row.find_element("css selector", '[col-id="id"]').text for row in rows) == \
        ["a-push", "pr-opened", "the-ping"]
    opened = next(row for row in rows if row.find_element("css selector", '[col-id="id"]').text == "pr-opened")
    opened.find_element("css selector", '[col-id="event"]').click()
    dash_duo.find_element("#int-replay").click()
    dash_duo.wait_for_contains_text("#int-replay-result", "Replayed pr-opened (mapped): 0 new, 1 already there",
                                    timeout=20)
    assert _severe(dash_duo.get_logs() or []) == []
