"""Browser tests (dash_duo, headless Debian Chromium) of the real app from
`factory.create_app`, fed through the real ingest and aggregator: sign in as a role, see
that role's navigation and its dashboard (a definition drawn by the engine) with the API's
numbers, find no other role's dashboard."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import time

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains

from data.aggregator import Aggregator
from data.keys import Keys
from tests.conftest import PASSWORD, ROLES
from tests.helpers import make_app

pytestmark = pytest.mark.e2e

GATE_RATE = '[data-kpi="gate_pass_rate"] .kpi-value'
SATISFACTION = '[data-kpi="developer_satisfaction"] .kpi-value'
NAV = {"executive": ["alerts", "dashboards", "executive"], "qa_lead": ["alerts", "dashboards", "qa", "reviewers"],
       "developer": ["alerts", "dashboards", "developer", "reviewers"],
       "operations": ["alerts", "audit", "dashboards", "integrations", "operational"],
       "admin": ["alerts", "audit", "dashboards", "integrations", "executive", "operational", "qa", "developer",
                 "reviewers"]}


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _gate_events(results: list[bool]) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return [{
        "id": f"e2e-gate-{i}", "type": "workflow.quality_gate_executed", "source": "e2e-test",
        "timestamp": _iso(now - timedelta(minutes=50 - 10 * i)),
        "data": {"workflow_id": f"wf-{i}", "gate_name": "unit_tests", "passed": passed},
    } for i, passed in enumerate(results)]


def _severe(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["message"][:1500] for entry in logs if entry.get("level") == "SEVERE"]


def _app(settings: Any) -> Any:
    app = make_app(settings)
    svc = app.server.extensions["qms"]
    for role in ROLES:
        svc.users.add(f"{role}-user", [role], PASSWORD)
    return app


def _start(dash_duo: Any, app: Any) -> None:
    # navigate=False: '/' answers with the sign-in page, which has no Dash root to wait for.
    dash_duo.start_server(app, navigate=False)


def _sign_in(dash_duo: Any, role: str, path: str = "/") -> None:
    """Signed in as the role's user (the sign-in form's POST, outside the browser), on `path`."""
    dash_duo.sign_in(f"{role}-user", path)


def _sign_in_with_form(dash_duo: Any, role: str, base: str | None = None) -> None:
    """Signed in by typing into the sign-in page, as a person does."""
    dash_duo.driver.get((base or dash_duo.server.url) + "/login")
    dash_duo.wait_for_element("#username", timeout=10).send_keys(f"{role}-user")
    dash_duo.find_element("#password").send_keys(PASSWORD)
    dash_duo.find_element("#sign-in").click()


def test_dash001_signed_in_executive_sees_kpis_from_events(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    result = app.server.extensions["qms"].ingestor.ingest(_gate_events([True, True, False, True]), origin="e2e")
    assert (result.accepted, result.rejected) == (4, 0), result.errors
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in_with_form(dash_duo, "executive")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "75.0%", timeout=20)
    assert "updated" in dash_duo.find_element("#dash-freshness").text
    assert dash_duo.find_element(SATISFACTION).text == "no data", "no survey: no data, never 0"
    assert _severe(dash_duo.get_logs()) == []


@pytest.mark.parametrize("role", ROLES)
def test_dash002_each_role_sees_its_navigation_and_is_refused_others(dash_duo: Any, settings: Any, r: Any,
                                                                      role: str) -> None:
    _start(dash_duo, _app(settings))
    _sign_in(dash_duo, role)
    dash_duo.wait_for_element("#nav-links a", timeout=20)
    links = sorted(a.get_attribute("id")[4:] for a in dash_duo.find_elements("#nav-links a"))
    assert links == sorted(NAV[role])
    others = [d for d in ("executive", "operational", "qa", "developer") if d not in NAV[role]]
    if others:
        # A dashboard one may not see is no such page (its existence is not told), with no widget.
        dash_duo.driver.get(dash_duo.server.url + f"/dashboards/{others[0]}")
        dash_duo.wait_for_element("#not-found", timeout=20)
        assert dash_duo.find_elements("[data-kpi]") == [] and dash_duo.find_elements("[data-widget]") == []
    assert _severe(dash_duo.get_logs()) == []


def test_dash003_signed_out_visitor_is_sent_to_sign_in(dash_duo: Any, settings: Any, r: Any) -> None:
    _start(dash_duo, _app(settings))
    dash_duo.driver.get(dash_duo.server.url + "/dashboards/qa")
    dash_duo.wait_for_element("#username", timeout=10)
    assert "/login" in dash_duo.driver.current_url


def test_dash004_audit_page_shows_what_was_done(dash_duo: Any, settings: Any, r: Any) -> None:
    _start(dash_duo, _app(settings))
    _sign_in(dash_duo, "operations")
    dash_duo.wait_for_element("#nav-audit", timeout=20).click()
    dash_duo.wait_for_contains_text("#audit-grid", "auth.sign_in", timeout=20)
    assert "operations-user" in dash_duo.find_element("#audit-grid").text
    assert "user.dashboard_accessed" in dash_duo.find_element("#audit-grid").text
    assert _severe(dash_duo.get_logs()) == []


def test_dash005_qa_lead_drills_from_a_gate_to_its_failing_runs(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_gate_events([True, False, True, False]), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "qa_lead", "/dashboards/qa?timeframe=24h")
    dash_duo.wait_for_element("#nav-qa", timeout=20)
    # The view the page shows now (a timeframe picked on it) is the one the gate page opens with.
    dash_duo.wait_for_element("#dash-timeframe", timeout=20)
    dash_duo.find_element("label[for='_dbcprivate_radioitems_dash-timeframe_input_4h']").click()
    deadline = time.time() + 10
    while "timeframe=4h" not in dash_duo.driver.current_url and time.time() < deadline:
        time.sleep(0.2)
    # A real click on the gate's bar (Plotly needs the hover first, hence the pause); the
    # chart re-renders on every refresh, so a click that lands mid-render is tried again.
    for _attempt in range(3):
        bar = dash_duo.wait_for_element('[data-widget="qa-gates"] .bars path', timeout=20)
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar)
        try:
            ActionChains(dash_duo.driver).move_to_element(bar).pause(0.6).click().perform()
        except Exception:       # the bar was replaced under the pointer
            continue
        deadline = time.time() + 5
        while "/gates/" not in dash_duo.driver.current_url and time.time() < deadline:
            time.sleep(0.1)
        if "/gates/" in dash_duo.driver.current_url:
            break
    dash_duo.wait_for_contains_text("#gate-failures", "wf-3", timeout=20)
    assert "/gates/unit_tests" in dash_duo.driver.current_url and "timeframe=4h" in dash_duo.driver.current_url
    grid = dash_duo.find_element("#gate-failures").text
    assert "wf-1" in grid and "wf-0" not in grid, "only the failing runs"
    href = dash_duo.find_element("#gate-csv").get_attribute("href")
    assert "format=csv" in href and "timeframe=4h" in href
    assert _severe(dash_duo.get_logs()) == []


def test_dash006_operations_sees_pipeline_queues_and_agents(dash_duo: Any, settings: Any, r: Any) -> None:
    from datetime import datetime, timezone
    app = _app(settings)
    ts = _iso(datetime.now(timezone.utc) - timedelta(minutes=5))
    app.server.extensions["qms"].ingestor.ingest([
        {"id": "q1", "type": "system.queue_depth_updated", "timestamp": ts, "source": "t",
         "data": {"queue": "code_review_queue", "depth": 17}},
        {"id": "a1", "type": "system.agent_status_changed", "timestamp": ts, "source": "t",
         "data": {"agent_id": "qms-security-reviewer", "status": "overloaded", "load": 0.95}},
    ], origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "operations")
    dash_duo.wait_for_contains_text('[data-widget="ops-agents"]', "qms-security-reviewer", timeout=20)
    dash_duo.wait_for_element('[data-widget="ops-queues"] .qb-row', timeout=10)
    bars = dash_duo.driver.execute_script(
        'return Array.from(document.querySelectorAll(\'[data-widget="ops-queues"] .qb-row\')).map(r => '
        '[r.dataset.key, r.dataset.value, r.dataset.role, r.querySelector(".qb-num").textContent, '
        'r.querySelector(".qb-fill").getBoundingClientRect().width > 0]);')
    assert bars == [["code_review_queue", "17", "warning", "17", True]], bars
    assert dash_duo.find_element('[data-kpi="overloaded_agents"] .kpi-value').text == "1"
    assert _severe(dash_duo.get_logs()) == []


def test_dash007_timeframe_goes_into_the_url_and_the_export_link(dash_duo: Any, settings: Any, r: Any) -> None:
    _start(dash_duo, _app(settings))
    _sign_in(dash_duo, "qa_lead")
    dash_duo.wait_for_element("#dash-timeframe", timeout=20)
    dash_duo.find_element("label[for='_dbcprivate_radioitems_dash-timeframe_input_7d']").click()
    deadline = time.time() + 10
    while "timeframe=7d" not in dash_duo.driver.current_url and time.time() < deadline:
        time.sleep(0.2)
    assert "timeframe=7d" in dash_duo.driver.current_url
    assert dash_duo.find_element("#dash-export").get_attribute("href").endswith("/api/export/qa.csv?timeframe=7d")
    assert _severe(dash_duo.get_logs()) == []


def test_dash008_theme_switch_is_applied_and_remembered_per_user(dash_duo: Any, settings: Any, r: Any) -> None:
    """An admin saves the theme with their settings; a second person in the same browser starts
    from their own (light) and their switch is saved for them, not for the admin."""
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_gate_events([True, False]), origin="e2e")   # a chart to re-theme
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "admin")
    dash_duo.wait_for_element('[data-kpi="gate_pass_rate"]', timeout=20)

    def theme_becomes(want: str) -> bool:
        deadline = time.time() + 10
        while time.time() < deadline:
            if dash_duo.driver.execute_script('return document.documentElement.getAttribute("data-bs-theme")') == want:
                return True
            time.sleep(0.1)
        return False
    assert theme_becomes("light")
    trends = '[data-widget="exec-trends"] .js-plotly-plot'
    paper = f"return document.querySelector('{trends}')._fullLayout.paper_bgcolor"
    dash_duo.wait_for_element(trends, timeout=20)
    light_bg = dash_duo.driver.execute_script(paper)
    dash_duo.find_element("#theme-toggle").click()
    assert theme_becomes("dark")
    deadline = time.time() + 1.5   # the charts on screen change at once, not at the next refresh
    while dash_duo.driver.execute_script(paper) == light_bg and time.time() < deadline:
        time.sleep(0.1)
    assert dash_duo.driver.execute_script(paper) != light_bg
    dash_duo.driver.get(dash_duo.server.url + "/")           # a new page load: the choice is remembered
    dash_duo.wait_for_element('[data-kpi="gate_pass_rate"]', timeout=20)
    assert theme_becomes("dark")
    assert r.hkeys("qms:prefs") == [b"admin-user"]
    dash_duo.driver.execute_script("window.localStorage.clear()")   # another person, same browser
    dash_duo.driver.delete_all_cookies()
    _sign_in_with_form(dash_duo, "executive")
    dash_duo.wait_for_element('[data-kpi="gate_pass_rate"]', timeout=20)
    assert theme_becomes("light")
    dash_duo.find_element("#theme-toggle").click()
    assert theme_becomes("dark")
    dash_duo.driver.get(dash_duo.server.url + "/")           # saved for this user too, apart from the admin's
    dash_duo.wait_for_element('[data-kpi="gate_pass_rate"]', timeout=20)
    assert theme_becomes("dark")
    assert sorted(r.hkeys("qms:prefs")) == [b"admin-user", b"executive-user"]
    assert _severe(dash_duo.get_logs()) == []


def test_dash009_a_kpi_card_opens_the_events_behind_it(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_gate_events([True, False, True]), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "executive")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "66.7%", timeout=20)
    dash_duo.find_element('[data-kpi="gate_pass_rate"] a').click()
    dash_duo.wait_for_contains_text("#events-grid", "e2e-gate-2", timeout=20)
    grid = dash_duo.find_element("#events-grid").text
    assert "e2e-gate-0" in grid and "e2e-gate-1" in grid
    assert "/events/gate_pass_rate?timeframe=24h" in dash_duo.driver.current_url
    dash_duo.wait_for_text_to_equal("#events-count", "2 of 3 gate runs passed = 66.7%", timeout=10)
    dash_duo.driver.get(dash_duo.server.url + "/events/defects_found")      # a QA metric: not for executives
    dash_duo.wait_for_element("#forbidden", timeout=20)
    assert _severe(dash_duo.get_logs()) == []


def test_dash010_phone_sized_window_stacks_the_cards(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    _start(dash_duo, app)
    dash_duo.driver.set_window_size(390, 844)
    _sign_in(dash_duo, "operations")
    dash_duo.wait_for_element('[data-kpi="total_agents"]', timeout=20)
    width = dash_duo.driver.execute_script("return document.documentElement.clientWidth")
    scroll = dash_duo.driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width + 1, "no horizontal scrolling on a phone"
    card = dash_duo.find_element('[data-kpi="total_agents"]')
    assert card.size["width"] > 0.8 * width, "one card per row"
    assert _severe(dash_duo.get_logs()) == []


def _repo_events() -> list[dict[str, Any]]:
    """Two repositories: api's gates pass 2 of 2, web's 1 of 3."""
    now = datetime.now(timezone.utc)
    out: list[dict[str, Any]] = []
    for i, (repo, results) in enumerate([("api", [True, True]), ("web", [False, True, False])]):
        wf = f"wf-{repo}"
        out.append({"id": f"pr-{i}", "type": "workflow.pr_created", "source": "e2e", "timestamp": _iso(now - timedelta(minutes=55)),
                    "data": {"workflow_id": wf, "pr_number": i + 1, "repository": repo, "author": f"dev{i}", "team": f"team-{repo}"}})
        out += [{"id": f"g-{repo}-{j}", "type": "workflow.quality_gate_executed", "source": "e2e",
                 "timestamp": _iso(now - timedelta(minutes=40 - j)),
                 "data": {"workflow_id": wf, "gate_name": "unit_tests", "passed": p}} for j, p in enumerate(results)]
    return out


def test_dash011_a_repository_filter_in_the_url_filters_the_kpis_and_marks_the_others(
        dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_repo_events(), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "executive")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "60.0%", timeout=20)          # 3 of 5, everything
    dash_duo.driver.get(dash_duo.server.url + "/dashboards/executive?timeframe=24h&repository=web")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "33.3%", timeout=20)          # 1 of 3, web only
    badge = '[data-kpi="developer_satisfaction"] .kpi-unfiltered'
    assert dash_duo.find_element(badge).text == "all"
    assert not dash_duo.driver.find_elements("css selector", '[data-kpi="gate_pass_rate"] .kpi-unfiltered')
    assert "filtered to repository web" in dash_duo.find_element("#dash-window").text
    link = dash_duo.find_element('[data-kpi="gate_pass_rate"] a.kpi-link').get_attribute("href")
    assert link.endswith("/events/gate_pass_rate?timeframe=24h&repository=web"), "the drill-down keeps the filter"
    assert "repository" not in dash_duo.find_element('[data-kpi="developer_satisfaction"] a.kpi-link').get_attribute("href")
    assert dash_duo.find_element("#dash-export").get_attribute("href").endswith(
        "/api/export/executive.csv?timeframe=24h&repository=web")
    assert _severe(dash_duo.get_logs()) == []


PAGE_OF = {"executive": "executive", "qa_lead": "qa", "developer": "developer", "operations": "operational",
           "admin": "qa"}
# A table widget of the page and the column of its rows (GET /api/widgets/<id>/data) it shows.
TABLE_OF = {"qa": ("qa-gate-table", "gate"), "developer": ("dev-queue", "workflow_id"),
            "operational": ("ops-agents", "agent_id")}


def _activity() -> list[dict[str, Any]]:
    """Gates in two repositories, a review with its cost, one waiting for developer-user, a
    defect, a queue and an agent: every role dashboard has numbers to show."""
    now = datetime.now(timezone.utc)

    def ev(i: str, etype: str, minutes: int, **data: Any) -> dict[str, Any]:
        return {"id": i, "type": etype, "source": "e2e", "timestamp": _iso(now - timedelta(minutes=minutes)),
                "data": data}
    return [*_repo_events(), *_gate_events([True, False, True]),
            ev("rs", "workflow.review_started", 30, workflow_id="wf-api", reviewer="developer-user"),
            ev("rd", "workflow.review_started", 35, workflow_id="wf-web", reviewer="developer-user"),
            ev("rdc", "workflow.review_completed", 25, workflow_id="wf-web", reviewer="developer-user",
               verdict="changes_requested", duration_hours=0.2),
            ev("pd", "workflow.pr_created", 45, workflow_id="wf-dev", pr_number=9, repository="api",
               author="developer-user", team="team-api"),
            ev("gd", "workflow.quality_gate_executed", 40, workflow_id="wf-dev", gate_name="unit_tests", passed=True),
            ev("rs2", "workflow.review_started", 30, workflow_id="wf-web", reviewer="qms-code-reviewer"),
            ev("rc", "workflow.review_completed", 20, workflow_id="wf-web", reviewer="qms-code-reviewer",
               verdict="approved", cost_usd=12.5, duration_hours=1.5),
            ev("df", "workflow.defect_found", 15, workflow_id="wf-web", defect_id="D1", severity="major",
               category="security", stage="review"),
            ev("q", "system.queue_depth_updated", 10, queue="code_review_queue", depth=7),
            ev("ag", "system.agent_status_changed", 10, agent_id="qms-code-reviewer", status="active", load=0.5)]


@pytest.mark.parametrize("role", ROLES)
def test_dash016_each_role_s_page_shows_the_api_s_numbers(dash_duo: Any, settings: Any, r: Any, role: str) -> None:
    """What the page shows is what the API says: every KPI card of the role's dashboard (its
    provisioned definition) holds GET /api/dashboard/<name>'s value as a card formats it, and a
    table widget lists the rows of GET /api/widgets/<id>/data."""
    from auth.principal import issue_jwt
    from components.kpi import format_value
    from dashboards.provision import Provisioner
    app = _app(settings)
    svc = app.server.extensions["qms"]
    result = svc.ingestor.ingest(_activity(), origin="e2e")
    assert result.rejected == 0, result.errors
    Aggregator(r, Keys(settings.key_prefix)).drain()
    name = PAGE_OF[role]
    defn = Provisioner().get(name)
    cards = {ds.metric for w in defn.widgets if w.type == "kpi_card" for ds in w.data_sources}
    token = {"Authorization": "Bearer " + issue_jwt(f"{role}-user", [role], 600, svc.secret_key)}
    _start(dash_duo, app)
    _sign_in(dash_duo, role, f"/dashboards/{name}?timeframe=24h")
    dash_duo.wait_for_element("#nav-links a", timeout=20)
    dash_duo.wait_for_element("[data-kpi] .kpi-value", timeout=20)

    def api() -> dict[str, str]:
        res = requests.get(dash_duo.server.url + f"/api/dashboard/{name}?timeframe=24h", headers=token, timeout=10)
        assert res.status_code == 200, res.text[:300]
        return {w["id"]: format_value(w["data"]["current_value"], w["data"].get("unit"),
                                      round_money=name == "executive")
                for w in res.json()["response"]["data"]["widgets"] if w["id"] in cards}

    def page() -> dict[str, str]:
        return dash_duo.driver.execute_script(
            "const out = {}; document.querySelectorAll('[data-kpi]').forEach(e => {"
            " const v = e.querySelector('.kpi-value'); if (v) out[e.dataset.kpi] = v.textContent; }); return out;")
    # The page and the API are asked again until they agree (a value that moves with the
    # clock, e.g. agent utilisation, may differ between two reads a minute apart).
    deadline = time.time() + 20
    shown, wanted = page(), api()
    while (shown != wanted) and time.time() < deadline:
        time.sleep(0.5)
        shown, wanted = page(), api()
    assert set(shown) == cards, sorted(set(shown) ^ cards)
    assert shown == wanted, {k: (shown.get(k), wanted.get(k)) for k in cards if shown.get(k) != wanted.get(k)}
    assert sum(v != "no data" for v in shown.values()) >= 3, f"too little to compare: {shown}"
    if name in TABLE_OF:
        widget, column = TABLE_OF[name]
        res = requests.get(dash_duo.server.url + f"/api/widgets/{widget}/data?timeframe=24h", headers=token, timeout=10)
        rows = [str(row[column]) for row in res.json()["response"]["data"]["rows"]]
        assert rows, f"{widget}: no rows to compare"
        for value in rows:
            dash_duo.wait_for_contains_text(f'[data-widget="{widget}"]', value, timeout=20)
    assert _severe(dash_duo.get_logs()) == []


def test_dash012_an_event_posted_to_the_api_appears_live_without_reload(dash_duo: Any, settings: Any, r: Any) -> None:
    """Polling is slowed to 10 minutes: only the push can change the number on screen."""
    from data.workers import start_aggregator, start_publisher
    app = _app(settings.replace(refresh_ms=600_000))
    svc = app.server.extensions["qms"]
    svc.ingestor.ingest(_gate_events([True, True]), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    workers = [start_aggregator(svc), start_publisher(svc)]
    try:
        _start(dash_duo, app)
        _sign_in(dash_duo, "executive")
        dash_duo.wait_for_text_to_equal(GATE_RATE, "100.0%", timeout=20)
        dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=20)
        dash_duo.driver.execute_script("window.__noReload = 1")
        from auth.principal import issue_jwt
        token = issue_jwt("admin-user", ["admin"], 600, svc.secret_key)
        posted = requests.post(dash_duo.server.url + "/api/events", headers={"Authorization": f"Bearer {token}"},
                               json={**_gate_events([False])[0], "id": "e2e-live-fail"}, timeout=10)
        assert posted.status_code == 202, posted.text
        dash_duo.wait_for_text_to_equal(GATE_RATE, "66.7%", timeout=15)
        assert dash_duo.driver.execute_script("return window.__noReload") == 1, "the page was not reloaded"
        assert dash_duo.driver.execute_script("return window.qmsLive.transport") == "ws"
        assert _severe(dash_duo.get_logs()) == []
    finally:
        for w in workers:
            w.stop()


def test_dash013_an_alert_fires_appears_live_and_is_acknowledged_in_the_browser(
        dash_duo: Any, settings: Any, r: Any, tmp_path: Any) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('alert_rules:\n  ops:\n    - name: "High Queue Depth"\n      condition: "queue_depth > 15"\n'
                     '      severity: "warning"\n      duration: "0s"\n      channels: ["dashboard"]\n')
    app = _app(settings.replace(alert_rules_path=str(rules), refresh_ms=600_000))
    svc, alerts = app.server.extensions["qms"], app.server.extensions["qms_alerts"]
    alerts.interval_s = 600                       # the test ticks by hand, as the scheduler would
    _start(dash_duo, app)
    _sign_in(dash_duo, "operations", "/alerts")
    dash_duo.wait_for_element("#alerts-grid", timeout=20)
    dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=20)
    dash_duo.wait_for_text_to_equal("#nav-alert-count", "0", timeout=10)
    svc.ingestor.ingest([{"id": "e2e-q", "type": "system.queue_depth_updated", "source": "e2e",
                          "timestamp": _iso(datetime.now(timezone.utc) - timedelta(seconds=20)),
                          "data": {"queue": "code_review", "depth": 40}}])
    Aggregator(r, Keys(settings.key_prefix)).drain()
    assert [t["to"] for t in alerts.tick()] == ["firing"]
    # Pushed, not polled (the page polls every 10 minutes here): the badge and the grid.
    dash_duo.wait_for_text_to_equal("#nav-alert-count", "1", timeout=10)
    dash_duo.wait_for_contains_text("#alerts-grid", "High Queue Depth", timeout=10)
    dash_duo.find_element("#alerts-grid .ag-row .ag-cell").click()
    dash_duo.wait_for_element("#alerts-ack:not([disabled])", timeout=10)
    dash_duo.find_element("#alerts-comment").send_keys("adding reviewers")
    dash_duo.find_element("#alerts-ack").click()
    dash_duo.wait_for_element("#alerts-ack-ok", timeout=10)
    dash_duo.wait_for_contains_text("#alerts-grid", "acknowledged", timeout=10)
    [rec] = alerts.alerts()
    assert rec["acknowledged"]["by"] == "operations-user" and rec["acknowledged"]["comment"] == "adding reviewers"
    dash_duo.wait_for_contains_text("#alerts-history", "acknowledged", timeout=10)
    assert _severe(dash_duo.get_logs()) == []


def test_dash015_the_page_reconnects_by_itself_after_the_server_restarts(dash_duo: Any, settings: Any, r: Any) -> None:
    """Our own server (so it can be stopped and started again on the same port): the page
    shows it lost the connection, reconnects, and takes pushed updates again."""
    import threading
    from werkzeug.serving import make_server

    from live.publisher import Publisher
    app = _app(settings.replace(refresh_ms=600_000))
    svc = app.server.extensions["qms"]
    svc.ingestor.ingest(_gate_events([True]), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()

    def serve(port: int = 0) -> Any:
        srv = make_server("127.0.0.1", port, app.server, threaded=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv
    srv = serve()
    port = srv.server_port
    _sign_in_with_form(dash_duo, "executive", f"http://127.0.0.1:{port}")
    dash_duo.wait_for_text_to_equal(GATE_RATE, "100.0%", timeout=20)
    dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=20)
    srv.shutdown()
    srv.server_close()
    app.server.extensions["qms_hub"].stop()            # the process is gone: its sockets close
    dash_duo.wait_for_text_to_equal("#live-status", "◌ reconnecting…", timeout=10)
    srv = serve(port)
    try:
        dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=30)
        svc.ingestor.ingest([{**_gate_events([False])[0], "id": "e2e-after-restart"}], origin="e2e")
        Aggregator(r, Keys(settings.key_prefix)).drain()
        pub = Publisher(r, svc.keys, svc.engine)
        app.server.extensions["qms_hub"].connected.wait(5)
        pub.publish_round(pub.version())
        dash_duo.wait_for_text_to_equal(GATE_RATE, "50.0%", timeout=15)
        assert [e for e in _severe(dash_duo.get_logs()) if "/ws" not in e] == [], \
            "only the refused WebSocket handshakes while the server was down"
    finally:
        srv.shutdown()
        app.server.extensions["qms_hub"].stop()
