"""Browser test of the Reviewers page: an admin sees people, AI agents and bots side by side
(the cards and the grid show the API's numbers), clicks an agent in the grid and lands on its
page with the events behind each figure, and from there on its agent page."""
from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.common.exceptions import ElementClickInterceptedException

from data.aggregator import Aggregator
from data.keys import Keys
from tests.e2e.test_dashboards import _app, _severe, _sign_in, _start
from tests.integration.test_ledger_api import START
from tests.integration.test_ledger_engine import ledger_events

pytestmark = pytest.mark.e2e


def test_ledger_e2e001_reviewers_page_and_a_reviewer(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    res = app.server.extensions["qms"].ingestor.ingest(ledger_events(41, START, 26, 90), origin="e2e")
    assert res.rejected == 0, res.errors[:3]
    Aggregator(r, Keys(settings.key_prefix)).drain(120)
    c = app.server.test_client()
    c.get("/login")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    c.post("/login", data={"username": "admin-user", "password": "correct horse battery", "csrf_token": csrf})
    api = c.get("/api/reviewers?timeframe=7d").json["response"]["data"]
    _start(dash_duo, app)
    _sign_in(dash_duo, "admin", "/reviewers?timeframe=7d")
    dash_duo.wait_for_element("#nav-reviewers", timeout=20)
    dash_duo.wait_for_element("#rv-grid .ag-row", timeout=30)
    ai = dash_duo.find_element('[data-kind="ai"] [data-figure="reviews"]').text
    assert ai == f"{api['kinds']['ai']['reviews_completed']:,}"
    names = {a.text for a in dash_duo.find_elements("#rv-grid .ag-row a")}
    assert {"qms-code-reviewer", "coderabbit", "dependabot[bot]"} <= names
    dash_duo.driver.save_screenshot("/tmp/ledger-reviewers.png")
    link = next(a for a in dash_duo.find_elements("#rv-grid .ag-row a") if a.text == "qms-code-reviewer")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    try:
        link.click()
    except ElementClickInterceptedException:     # the grid's own scroller may still be settling
        dash_duo.driver.execute_script("arguments[0].click()", link)
    dash_duo.wait_for_element('[data-page-body="reviewer"]', timeout=30)
    assert dash_duo.driver.current_url.endswith("/reviewers/qms-code-reviewer?timeframe=7d")
    one = c.get("/api/reviewers/qms-code-reviewer?timeframe=7d").json["response"]["data"]
    assert one["figures"]["reviews_completed"] > 0
    tile = dash_duo.find_element('[data-fact="reviews_completed"] .entity-fact-value').text
    assert tile == f"{one['figures']['reviews_completed']:,}"
    time.sleep(0.5)
    dash_duo.driver.save_screenshot("/tmp/ledger-reviewer.png")
    assert dash_duo.find_element("#rv-kind").text == "ai"
    assert [a.get_attribute("href").split("/", 3)[3] for a in dash_duo.find_elements('[data-page-body="reviewer"] a')
            if a.text == "Agent page →"] == ["agents/qms-code-reviewer"]
    assert _severe(dash_duo.get_logs() or []) == []
