"""The dashboard engine in a real browser: per-widget authorisation end to end."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import MINUTE_MS, fmt_ms
from tests.helpers import today_ago
from tests.e2e.test_dashboards import _app, _severe, _sign_in, _start

pytestmark = pytest.mark.e2e

# Every answer of the Dash server, kept by the page itself (fetch wrapped before Dash loads).
RECORD = """
window.__answers = [];
const realFetch = window.fetch;
window.fetch = function (input, init) {
  return realFetch.apply(this, arguments).then(function (res) {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    if (url.indexOf("_dash-update-component") >= 0 || url.indexOf("_dash-layout") >= 0) {
      res.clone().text().then(function (t) { window.__answers.push({url: url, status: res.status, body: t,
                                                                     sent: init && init.body || ""}); });
    }
    return res;
  });
};
"""


def test_brw001_a_developer_s_forbidden_widget_says_not_permitted_and_no_answer_holds_its_data(
        dash_duo: Any, settings: Any, r: Any) -> None:
    """A developer adds the review cost by team (view:cost_analysis) to a personal dashboard:
    the widget says "not permitted" with the permission, the other widget draws, and no answer
    the browser receives holds review cost data or the cost widget's body."""
    app = _app(settings)
    svc = app.server.extensions["qms"]
    at = today_ago(30 * MINUTE_MS)          # completed_today counts from midnight (UTC)
    svc.ingestor.ingest([
        {"id": f"brw-rv{i}", "type": "workflow.review_completed", "source": "e2e",
         "timestamp": fmt_ms(at((30 - i) * MINUTE_MS)),
         "data": {"workflow_id": f"W{i}", "reviewer": "developer-user", "verdict": "approved",
                  "cost_usd": 123.45, "duration_hours": 1.0}} for i in range(3)], origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    from auth.principal import Principal
    dev = Principal("developer-user", ("developer",), svc.rbac.permissions_for(["developer"]))
    svc.dashboards.create(dev, {"id": "mine", "title": "Mine", "widgets": [
        {"id": "cost", "type": "comparison_chart", "title": "Review cost by team",
         "position": {"x": 0, "y": 0, "width": 6, "height": 4},
         "data_sources": [{"source": "breakdown", "name": "cost_by_team"}]},
        {"id": "done", "type": "kpi_card", "title": "Completed today",
         "position": {"x": 6, "y": 0, "width": 3, "height": 2},
         "data_sources": [{"source": "kpi", "metric": "completed_today"}]}]})
    _start(dash_duo, app)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD})
    _sign_in(dash_duo, "developer")
    dash_duo.wait_for_element("#nav-developer", timeout=20)
    dash_duo.driver.get(dash_duo.server.url + "/dashboards/mine")
    denied = dash_duo.wait_for_element('[data-widget="cost"] .widget-denied', timeout=20)
    assert "Not permitted" in denied.text and "view:cost_analysis" in denied.text
    dash_duo.wait_for_text_to_equal('[data-kpi="completed_today"] .kpi-value', "3", timeout=20)
    time.sleep(1)
    answers = dash_duo.driver.execute_script("return window.__answers")
    # The page comes drawn with the layout (the permitted widget's body in it); the refresh's
    # first call then has nothing to do (204).
    pages = [a for a in answers if "_dash-layout" in a["url"]]
    assert pages and pages[-1]["status"] == 200 and "completed_today" in pages[-1]["body"]
    assert not [a for a in answers if "page.children" in a["sent"]], "no router request at load"
    refreshes = [a for a in answers if '"w-body"' in a["sent"]]
    assert refreshes and all(a["status"] in (200, 204) for a in refreshes)
    for a in answers:
        assert "123.45" not in a["body"] and "cost_usd" not in a["body"], a["body"][:300]
        assert '\\"w\\":\\"cost\\"' not in a["body"] and '"w":"cost"' not in a["sent"]
    assert [e for e in _severe(dash_duo.get_logs()) if "favicon" not in e] == []
