"""Browser tests (dash_duo, headless Chromium) of the dashboard list at /dashboards: search
as you type, a star moves a row to the top, import of a definition another user exported
(dcc.Upload fed a file) then open it, and history → restore."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

from auth.principal import Principal, issue_jwt
from dashboards.schema import validate
from tests.e2e.test_dashboards import _app, _severe, _sign_in

pytestmark = pytest.mark.e2e

WIDGETS = [
    {"id": "w-pending", "type": "kpi_card", "title": "Waiting for me", "position": {"x": 0, "y": 0, "width": 4, "height": 2},
     "data_sources": [{"source": "kpi", "metric": "pending_reviews"}]},
    {"id": "w-done", "type": "kpi_card", "title": "Done today", "position": {"x": 4, "y": 0, "width": 4, "height": 2},
     "data_sources": [{"source": "kpi", "metric": "completed_today"}]},
]


def _principal(app: Any, role: str) -> Principal:
    rbac = app.server.extensions["qms"].rbac
    return Principal(f"{role}-user", (role,), rbac.permissions_for([role]))


def _until(dash_duo: Any, what: Any, timeout: float = 15) -> Any:
    """Wait for `what()` to hold (rows are drawn again under the reader: a stale one is retried)."""
    return WebDriverWait(dash_duo.driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda _d: what())


def _path(dash_duo: Any) -> str:
    """The page's path (the dashboard page may add its view's ?timeframe=... to the address)."""
    return urlparse(dash_duo.driver.current_url).path


def _row_ids(dash_duo: Any) -> list[str]:
    return [tr.get_attribute("data-dashboard") for tr in dash_duo.find_elements("#dl-table tr.dl-row")]


def _start(dash_duo: Any, app: Any) -> None:
    dash_duo.start_server(app, navigate=False)


def _open_list(dash_duo: Any, role: str) -> None:
    """Sign in straight to the list."""
    _sign_in(dash_duo, role, "/dashboards")
    dash_duo.wait_for_element("#dl-table tr.dl-row", timeout=20)
    assert dash_duo.find_element("#nav-dashboards").get_attribute("href").endswith("/dashboards")


def test_dle001_search_filters_the_rows_by_title_as_one_types(dash_duo: Any, settings: Any, r: Any) -> None:
    _start(dash_duo, _app(settings))
    _open_list(dash_duo, "admin")
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["developer", "executive", "operational", "qa"])
    dash_duo.find_element("#dl-search").send_keys("opera")
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["operational"])
    assert dash_duo.find_element("#dl-table tr.dl-row .dl-title").text == "Operations"
    dash_duo.find_element("#dl-search").send_keys("x")
    dash_duo.wait_for_text_to_equal("#dl-empty", "No dashboard matches “operax”.", timeout=10)
    assert _severe(dash_duo.get_logs()) == []


def test_dle002_a_star_moves_its_row_to_the_top(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    _start(dash_duo, app)
    _open_list(dash_duo, "admin")
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["developer", "executive", "operational", "qa"])
    dash_duo.find_element('tr[data-dashboard="qa"] .dl-star').click()
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["qa", "developer", "executive", "operational"])
    assert dash_duo.find_element('tr[data-dashboard="qa"] .dl-star').text == "★"
    assert app.server.extensions["qms"].dashboards.starred(_principal(app, "admin")) == {"qa"}
    dash_duo.driver.refresh()           # kept: starred dashboards come first after a reload too
    _until(dash_duo, lambda: _row_ids(dash_duo)[:1] == ["qa"])
    assert _severe(dash_duo.get_logs()) == []


def test_dle003_import_a_definition_exported_by_another_user_and_open_it(dash_duo: Any, settings: Any, r: Any,
                                                                       tmp_path: Path) -> None:
    app = _app(settings)
    svc = app.server.extensions["qms"]
    svc.dashboards.create(_principal(app, "admin"), {"id": "team-board", "title": "Team board", "tags": ["team"],
                                                     "widgets": WIDGETS})
    api = app.server.test_client()        # the admin's export, through the API
    res = api.get("/api/dashboards/team-board/export",
                  headers={"Authorization": "Bearer " + issue_jwt("admin-user", ["admin"], 600, svc.secret_key)})
    assert res.status_code == 200, res.data[:300]
    path = tmp_path / "team-board.dashboard.json"
    path.write_bytes(res.data)
    _start(dash_duo, app)
    _open_list(dash_duo, "developer")
    assert _row_ids(dash_duo) == ["developer"], "admin's personal dashboard is not the developer's to see"
    dash_duo.find_element("#dl-import input[type=file]").send_keys(str(path))
    _until(dash_duo, lambda: _path(dash_duo) == "/dashboards/team-board-2")
    mine = svc.dashboards.get("team-board-2", _principal(app, "developer"))
    assert mine is not None and mine.kind == "personal" and mine.dashboard.owner == "developer-user"
    theirs = json.loads(res.data)
    assert [w["id"] for w in theirs["widgets"]] == ["w-pending", "w-done"]
    assert mine.dashboard.widgets == validate(theirs).widgets, "the same widgets, where they were"
    dash_duo.wait_for_contains_text("#page", "Team board", timeout=20)
    dash_duo.wait_for_contains_text("#page", "Waiting for me", timeout=20)
    dash_duo.find_element("#nav-dashboards").click()
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["developer", "team-board-2"])
    row = dash_duo.find_element('tr[data-dashboard="team-board-2"]').text
    assert "personal" in row and "developer-user" in row and "team" in row


def test_dle004_history_then_restore_brings_back_the_old_layout(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    s, dev = app.server.extensions["qms"].dashboards, _principal(app, "developer")
    s.create(dev, {"id": "mine", "title": "Mine", "widgets": WIDGETS})
    moved = [{**WIDGETS[0], "position": {"x": 6, "y": 2, "width": 6, "height": 3}}, WIDGETS[1]]
    s.save_personal("mine", dev, {"id": "mine", "title": "Mine", "widgets": moved})
    _start(dash_duo, app)
    _open_list(dash_duo, "developer")
    dash_duo.find_element('tr[data-dashboard="mine"] .dl-history-open').click()
    dash_duo.wait_for_contains_text("#dl-history-title", "History · Mine", timeout=10)
    versions = dash_duo.find_elements("#dl-history-body tr.dl-version")
    assert [v.get_attribute("data-version") for v in versions] == ["2", "1"]
    assert "developer-user" in versions[0].text and "moved w-pending" in versions[0].text
    assert "created with 2 widgets" in versions[1].text
    dash_duo.find_element('#dl-history-body tr[data-version="1"] .dl-restore').click()
    _until(dash_duo, lambda: [v.get_attribute("data-version")
                              for v in dash_duo.find_elements("#dl-history-body tr.dl-version")] == ["3", "2", "1"])
    top = dash_duo.find_element('#dl-history-body tr[data-version="3"]').text
    assert "restored version 1" in top and "developer-user" in top
    dash_duo.wait_for_contains_text("#dl-message", "Restored version 1 of “Mine”", timeout=10)
    pos = s.get("mine", dev).dashboard.widget("w-pending").position
    assert (pos.x, pos.y, pos.width, pos.height) == (0, 0, 4, 2)
    assert _severe(dash_duo.get_logs()) == []


def test_dle005_new_dashboard_opens_the_empty_personal_dashboard(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    _start(dash_duo, app)
    _open_list(dash_duo, "developer")
    dash_duo.find_element("#dl-new-title").send_keys("My board")
    dash_duo.find_element("#dl-new").click()
    _until(dash_duo, lambda: _path(dash_duo) == "/dashboards/my-board")
    found = app.server.extensions["qms"].dashboards.get("my-board", _principal(app, "developer"))
    assert found is not None and (found.kind, found.dashboard.title, found.dashboard.widgets) == \
        ("personal", "My board", [])
    dash_duo.wait_for_contains_text("#page", "My board", timeout=20)
    dash_duo.find_element("#nav-dashboards").click()
    _until(dash_duo, lambda: _row_ids(dash_duo) == ["developer", "my-board"])
    assert _severe(dash_duo.get_logs()) == []
