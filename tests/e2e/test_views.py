"""Browser tests of the views (issue 11 item 7): every page in light and dark at desktop and
phone size with no console errors and no sideways scrolling; dark mode's computed colours
(dropdown menus, AG Grid cells); the phone navigation; the alerts as cards on a phone; the
"history still loading" notice; Back/Forward restoring a dashboard's view."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import now_ms
from tests.e2e.test_dashboards import GATE_RATE, _app, _gate_events, _iso, _severe, _sign_in, _start

pytestmark = pytest.mark.e2e

DESKTOP, PHONE = (1400, 900), (390, 844)
# Each page and the element that says it is drawn (its content, not only its frame).
PAGES = [
    ("/dashboards/executive", '[data-kpi="gate_pass_rate"] .kpi-value'),
    ("/dashboards/operational", "[data-dashboard=operational] [data-kpi]"),
    ("/dashboards/qa", "[data-dashboard=qa] [data-kpi]"),
    ("/dashboards/developer", "[data-dashboard=developer] [data-kpi]"),
    ("/events/gate_pass_rate?timeframe=24h", "#events-grid .ag-row"),
    ("/gates/unit_tests?timeframe=24h", "#gate-failures .ag-row"),
    ("/workflows/wf-1", "#workflow-body h1, #workflow-body h2"),
    ("/agents/qms-code-reviewer", "#agent-body"),
    ("/alerts", "#alerts-banner"),
    ("/audit", "#audit-grid .ag-row"),
]


def _until(check: Callable[[], Any], timeout: float = 10, what: str = "") -> Any:
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def _theme(dash_duo: Any) -> str:
    return dash_duo.driver.execute_script('return document.documentElement.getAttribute("data-bs-theme")')


def _set_theme(dash_duo: Any, mode: str) -> None:
    _until(lambda: _theme(dash_duo) in ("light", "dark"), what="the theme applied")
    if _theme(dash_duo) != mode:
        dash_duo.driver.execute_script('document.getElementById("theme-toggle").click()')
    _until(lambda: _theme(dash_duo) == mode, what=f"theme {mode}")


def _rgb(css: str) -> tuple[float, ...]:
    parts = [float(x) for x in re.findall(r"[\d.]+", css)]
    assert len(parts) >= 3, css
    return tuple(parts[:4]) if len(parts) > 3 else (*parts[:3], 1.0)


def _luminance(css: str) -> float:
    """WCAG relative luminance of an rgb()/rgba() colour (0 black .. 1 white)."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b, _a = _rgb(css)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


# The background an element shows: its own, or the first opaque one up the tree.
BACKGROUND = """
var el = arguments[0];
while (el) {
  var bg = getComputedStyle(el).backgroundColor;
  var m = bg.match(/[\\d.]+/g);
  if (m && (m.length < 4 || parseFloat(m[3]) > 0.5)) return bg;
  el = el.parentElement;
}
return 'rgb(255, 255, 255)';
"""


def _colours(dash_duo: Any, selector: str) -> tuple[float, float]:
    """(background luminance, text luminance) of the first element matching `selector`."""
    el = dash_duo.wait_for_element(selector, timeout=10)
    bg = dash_duo.driver.execute_script(BACKGROUND, el)
    fg = dash_duo.driver.execute_script("return getComputedStyle(arguments[0]).color", el)
    return _luminance(bg), _luminance(fg)


def _opened(dash_duo: Any, settings: Any, r: Any, events: list[dict[str, Any]], role: str,
            size: tuple[int, int] = DESKTOP, path: str = "/") -> Any:
    """The app with these events aggregated, signed in as `role` on `path` in a window of `size`."""
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(events, origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    dash_duo.driver.set_window_size(*size)
    _sign_in(dash_duo, role, path)
    return app


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_view001_every_page_renders_without_errors_or_sideways_scroll(
        dash_duo: Any, settings: Any, r: Any, mode: str, size: tuple[int, int]) -> None:
    # Gate runs for the dashboards, the gate page and a workflow page.
    _opened(dash_duo, settings, r, _gate_events([True, False, True, False]), "admin", size)
    dash_duo.wait_for_element("[data-kpi]", timeout=20)
    _set_theme(dash_duo, mode)
    for path, ready in PAGES:
        # In-page navigation, as a click on a link does (the router follows the URL): a full
        # reload of every page would cost seconds each and test nothing more.
        dash_duo.driver.execute_script("window.history.pushState({}, '', arguments[0]);"
                                       "window.dispatchEvent(new PopStateEvent('popstate'));", path)
        dash_duo.wait_for_element(ready, timeout=20)
        assert _theme(dash_duo) == mode, path
        # The page itself follows the theme: its body background is dark in dark mode.
        body = _luminance(dash_duo.driver.execute_script("return getComputedStyle(document.body).backgroundColor"))
        assert (body < 0.05) if mode == "dark" else (body > 0.9), (path, body)
        if size == PHONE:
            time.sleep(0.3)     # let late layout (charts, grids) settle before measuring
            width = dash_duo.driver.execute_script("return window.innerWidth")
            scroll = dash_duo.driver.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= width, f"{path}: the page scrolls sideways on a phone ({scroll} > {width})"
        assert _severe(dash_duo.get_logs()) == [], path


def test_view002_dark_mode_dropdown_menus_and_grid_cells_are_dark_with_light_text(
        dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    _start(dash_duo, app)
    _sign_in(dash_duo, "admin", "/alerts")
    dash_duo.wait_for_element("#alerts-severity", timeout=20)
    for mode in ("light", "dark"):       # light too: the same checks must tell the two apart
        _set_theme(dash_duo, mode)
        dash_duo.driver.get(dash_duo.server.url + "/alerts")
        dash_duo.wait_for_element("#alerts-severity", timeout=20)
        _until(lambda: _theme(dash_duo) == mode, what=mode)
        bg, fg = _colours(dash_duo, "#alerts-severity")          # Dash 4: the id is on its button
        assert (bg < 0.1 < 0.6 < fg) if mode == "dark" else (fg < 0.1 < 0.6 < bg), ("closed dropdown", mode, bg, fg)
        dash_duo.find_element("#alerts-severity").click()
        bg, fg = _colours(dash_duo, ".dash-dropdown-content .dash-dropdown-option")
        assert (bg < 0.1 < 0.6 < fg) if mode == "dark" else (fg < 0.1 < 0.6 < bg), ("open menu", mode, bg, fg)
        assert "warning" in dash_duo.find_element(".dash-dropdown-content").text
        dash_duo.driver.get(dash_duo.server.url + "/audit")
        dash_duo.wait_for_contains_text("#audit-grid", "auth.sign_in", timeout=20)
        bg, fg = _colours(dash_duo, "#audit-grid .ag-row .ag-cell")
        assert (bg < 0.1 < 0.6 < fg) if mode == "dark" else (fg < 0.1 < 0.6 < bg), ("grid cell", mode, bg, fg)
        bg, fg = _colours(dash_duo, "#audit-grid .ag-header-cell-text")
        assert (bg < 0.1 < 0.6 < fg) if mode == "dark" else (fg < 0.1 < 0.6 < bg), ("grid header", mode, bg, fg)
    assert _severe(dash_duo.get_logs()) == []


def test_view003_phone_navigation_is_folded_until_the_toggler_opens_it(dash_duo: Any, settings: Any, r: Any) -> None:
    _start(dash_duo, _app(settings))
    dash_duo.driver.set_window_size(*PHONE)
    _sign_in(dash_duo, "admin")
    dash_duo.wait_for_element("[data-kpi]", timeout=20)
    toggler = dash_duo.find_element("#nav-toggler")
    link = dash_duo.find_element("#nav-audit")
    assert toggler.is_displayed() and not link.is_displayed()
    assert not dash_duo.find_element("#theme-toggle").is_displayed()
    assert dash_duo.find_element("#live-status").is_displayed(), "the live status stays in the bar"
    toggler.click()
    _until(lambda: link.is_displayed(), what="the links shown")
    link.click()
    dash_duo.wait_for_contains_text("#audit-grid", "auth.sign_in", timeout=20)
    _until(lambda: not dash_duo.find_element("#nav-audit").is_displayed(), what="the menu closed after navigating")
    dash_duo.driver.set_window_size(*DESKTOP)      # a wide window shows everything, no toggler
    _until(lambda: dash_duo.find_element("#nav-audit").is_displayed(), what="links on a desktop")
    assert not dash_duo.find_element("#nav-toggler").is_displayed()
    assert _severe(dash_duo.get_logs()) == []


def test_view004_alerts_are_cards_on_a_phone_and_a_tapped_card_can_be_acknowledged(
        dash_duo: Any, settings: Any, r: Any, tmp_path: Any) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('alert_rules:\n  ops:\n    - name: "High Queue Depth"\n      condition: "queue_depth > 15"\n'
                     '      severity: "warning"\n      duration: "0s"\n      channels: ["dashboard"]\n')
    app = _app(settings.replace(alert_rules_path=str(rules)))
    svc, alerts = app.server.extensions["qms"], app.server.extensions["qms_alerts"]
    alerts.interval_s = 600
    svc.ingestor.ingest([{"id": f"e2e-q{i}", "type": "system.queue_depth_updated", "source": "e2e",
                          "timestamp": _iso(datetime.now(timezone.utc) - timedelta(seconds=20)),
                          "data": {"queue": q, "depth": d}} for i, (q, d) in enumerate([("code_review", 40),
                                                                                       ("final_review", 22)])])
    Aggregator(r, Keys(settings.key_prefix)).drain()
    assert sorted(t["to"] for t in alerts.tick()) == ["firing", "firing"]
    _start(dash_duo, app)
    dash_duo.driver.set_window_size(*PHONE)
    _sign_in(dash_duo, "operations", "/alerts")
    dash_duo.wait_for_element("#nav-alerts", timeout=20)
    dash_duo.wait_for_element("#alerts-cards .alert-card", timeout=20)
    cards = dash_duo.find_elements("#alerts-cards .alert-card")
    texts = sorted(c.text for c in cards)
    assert len(cards) == 2 and all("High Queue Depth" in t and "firing" in t and "warning" in t for t in texts)
    assert "queue=code_review" in texts[0] and "40.00" in texts[0] and "queue_depth > 15" in texts[0]
    assert "queue=final_review" in texts[1] and "22.00" in texts[1]
    assert not dash_duo.find_element("#alerts-grid").is_displayed(), "the grid is for wider screens"
    card = next(c for c in cards if "final_review" in c.text)
    card.click()
    dash_duo.wait_for_element("#alerts-ack:not([disabled])", timeout=10)
    _until(lambda: "alert-card-selected" in next(c for c in dash_duo.find_elements("#alerts-cards .alert-card")
                                                 if "final_review" in c.text).get_attribute("class"),
           what="the tapped card marked")
    dash_duo.find_element("#alerts-ack").click()
    dash_duo.wait_for_element("#alerts-ack-ok", timeout=10)
    acked = {a["labels"]["queue"]: a.get("acknowledged") for a in alerts.alerts()}
    assert acked["final_review"]["by"] == "operations-user" and acked["code_review"] is None
    dash_duo.driver.set_window_size(*DESKTOP)
    _until(lambda: dash_duo.find_element("#alerts-grid").is_displayed(), what="the grid on a desktop")
    assert not dash_duo.find_element("#alerts-cards").is_displayed()
    assert _severe(dash_duo.get_logs()) == []


def test_view005_history_loading_notice_while_a_backfill_runs_and_gone_after(
        dash_duo: Any, settings: Any, r: Any) -> None:
    keys = Keys(settings.key_prefix)
    now = now_ms()
    day = 86_400_000
    r.hset(keys.demo, mapping={"epoch": now - 4 * day, "cursor": now - 3 * day, "seed": 42, "rate": 0.5,
                               "beat": now})
    _start(dash_duo, _app(settings))
    _sign_in(dash_duo, "executive")
    dash_duo.wait_for_element("[data-kpi]", timeout=20)
    notice = dash_duo.wait_for_element("#backfill-notice", timeout=10)
    _until(lambda: notice.is_displayed(), what="the notice")
    assert notice.text == "History still loading · 25%"
    r.hset(keys.demo, mapping={"cursor": now_ms() - 2 * day, "beat": now_ms()})     # the demo moves on
    dash_duo.wait_for_text_to_equal("#backfill-notice", "History still loading · 50%", timeout=15)
    r.hset(keys.demo, mapping={"cursor": now_ms(), "beat": now_ms()})               # caught up: live
    _until(lambda: not dash_duo.find_element("#backfill-notice").is_displayed(), timeout=15, what="the notice gone")
    assert dash_duo.find_element("#backfill-notice").text == ""
    assert _severe(dash_duo.get_logs()) == []


def _rate_events() -> list[dict[str, Any]]:
    """Gate runs: in the last hour 1 of 2 passed; over the day 4 of 5 (3 passes 3 h ago)."""
    now = datetime.now(timezone.utc)
    runs = [(now - timedelta(hours=3, minutes=i), True) for i in range(3)] + \
           [(now - timedelta(minutes=20), True), (now - timedelta(minutes=10), False)]
    return [{"id": f"e2e-rate-{i}", "type": "workflow.quality_gate_executed", "source": "e2e", "timestamp": _iso(ts),
             "data": {"workflow_id": f"wf-r{i}", "gate_name": "unit_tests", "passed": ok}}
            for i, (ts, ok) in enumerate(runs)]


def test_view006_back_and_forward_restore_the_timeframe_its_button_and_its_numbers(
        dash_duo: Any, settings: Any, r: Any) -> None:
    _opened(dash_duo, settings, r, _rate_events(), "executive")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "80.0%", timeout=20)
    driver = dash_duo.driver

    def checked() -> str:
        return driver.execute_script('var i = document.querySelector("#dash-timeframe input:checked");'
                                     ' return i ? i.value : null;')

    def pick(tf: str) -> None:
        dash_duo.find_element(f"label[for='_dbcprivate_radioitems_dash-timeframe_input_{tf}']").click()
        _until(lambda: f"timeframe={tf}" in driver.current_url, what=f"?timeframe={tf}")

    def shows(tf: str, rate: str) -> None:
        _until(lambda: checked() == tf, what=f"the {tf} button checked")
        dash_duo.wait_for_text_to_equal(GATE_RATE, rate, timeout=15)
        assert driver.execute_script("return location.search") == f"?timeframe={tf}"

    pick("1h")
    shows("1h", "50.0%")
    pick("7d")
    shows("7d", "80.0%")
    history = driver.execute_script("return history.length")
    driver.back()
    shows("1h", "50.0%")
    driver.back()                   # the first view: the page as it opened (24h)
    shows("24h", "80.0%")
    assert driver.execute_script("return history.length") == history, "restoring added no history entry"
    driver.forward()
    shows("1h", "50.0%")
    driver.forward()
    shows("7d", "80.0%")
    assert driver.execute_script("return history.length") == history
    # Another page and Back: the router builds the dashboard from the URL.
    driver.get(dash_duo.server.url + "/alerts")
    dash_duo.wait_for_element("#alerts-banner", timeout=20)
    driver.back()
    shows("7d", "80.0%")
    # Chrome closes an open WebSocket when the page goes into its back-forward cache and says
    # so on the console; the page comes back and live.js reconnects. (live.js could close it
    # on `pagehide` itself and reopen on `pageshow` — reported to its owner.)
    assert [e for e in _severe(dash_duo.get_logs()) if "Page entered Back-Forward Cache" not in e] == []
