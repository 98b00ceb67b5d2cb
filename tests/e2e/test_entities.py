"""Browser tests of the entity pages: a QA lead clicks a workflow id in the gate page's
failing-runs grid and lands on that workflow's page with its steps; from there the agent
that ran the gate; an operator clicks an agent tile on the operations dashboard."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from tests.e2e.test_dashboards import _app, _iso, _severe, _sign_in, _start

pytestmark = pytest.mark.e2e
WF = "WF-e2e/7"                        # a slash: the link must encode it and the page decode it


def _events() -> list[dict[str, Any]]:
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)

    def ev(eid: str, minutes: float, etype: str, **data: Any) -> dict[str, Any]:
        return {"id": eid, "type": etype, "timestamp": _iso(t0 + timedelta(minutes=minutes)), "source": "e2e",
                "data": data}
    return [
        ev("e1", 0, "workflow.pr_created", workflow_id=WF, pr_number=7, repository="qms-core", author="alice.chen",
           team="platform", title="feat: retry logic"),
        ev("e2", 3, "workflow.step_entered", workflow_id=WF, step="dor_validation"),
        ev("e3", 10, "workflow.quality_gate_executed", workflow_id=WF, gate_name="dor-checklist-gate", passed=False,
           agent_id="qms-dor-validator", execution_time=20),
        ev("e4", 15, "workflow.quality_gate_executed", workflow_id=WF, gate_name="dor-checklist-gate", passed=True,
           agent_id="qms-dor-validator", execution_time=18),
        ev("e5", 23, "workflow.step_entered", workflow_id=WF, step="code_review"),
        ev("e6", 1, "system.agent_status_changed", agent_id="qms-dor-validator", status="active", load=0.4),
    ]


def _click_link(dash_duo: Any, container: str, text: str) -> None:
    """Click the entity link showing `text`. The pages refresh and reflow every few seconds
    and a chart may briefly cover a grid: a click that lands on something else is tried
    again, and at last sent to the link itself (its own click handler still navigates)."""
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    dash_duo.wait_for_element(f"{container} a.entity-link", timeout=20)
    # (Each intercepted click costs ~1 s: the agent tiles' links, below the widget's visible
    # part at this window size, are intercepted every time and reach the last attempt.)
    for attempt in range(3):
        try:
            link = next(a for a in dash_duo.find_elements(f"{container} a.entity-link") if a.text == text)
            dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
            if attempt < 2:
                link.click()
            else:
                dash_duo.driver.execute_script("arguments[0].click()", link)
            return
        except (ElementClickInterceptedException, StaleElementReferenceException, StopIteration):
            time.sleep(0.5)
    raise AssertionError(f"could not click {text} in {container}")


def test_ent201_a_workflow_id_in_a_grid_opens_its_page(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    res = app.server.extensions["qms"].ingestor.ingest(_events(), origin="e2e")
    assert res.rejected == 0, res.errors
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "qa_lead", "/gates/dor-checklist-gate?timeframe=4h")
    dash_duo.wait_for_element("#nav-qa", timeout=20)
    dash_duo.wait_for_contains_text("#gate-failures", WF, timeout=20)
    _click_link(dash_duo, "#gate-failures", WF)
    dash_duo.wait_for_element("#workflow-view", timeout=20)
    assert dash_duo.driver.current_url.endswith("/workflows/WF-e2e%2F7")
    assert WF in dash_duo.find_element("#workflow-title").text
    # created 0-3, DoR 3-23, code review since 23 (open)
    steps = {s.get_attribute("data-step"): s.text for s in dash_duo.find_elements("#workflow-steps [data-step]")}
    assert "3m 00s" in steps["created"] and "20m 00s" in steps["dor_validation"]
    assert "now" in steps["code_review"] and "not entered" in steps["final_approval"]
    assert dash_duo.find_element("#workflow-sla").text == "open"
    dash_duo.wait_for_contains_text("#workflow-gates", "dor-checklist-gate", timeout=10)
    # On to the agent that ran the gate.
    _click_link(dash_duo, "#workflow-gates", "qms-dor-validator")
    dash_duo.wait_for_element("#agent-view", timeout=20)
    assert dash_duo.driver.current_url.endswith("/agents/qms-dor-validator")
    assert dash_duo.find_element("#agent-status").text == "active"
    assert dash_duo.find_element('[data-fact="gate_runs"]').text.splitlines()[1:3] == ["2", "1 failed"]
    dash_duo.wait_for_element("#agent-status-chart .js-plotly-plot", timeout=10)
    assert _severe(dash_duo.get_logs()) == []


def test_ent202_an_agent_tile_opens_the_agent_page(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_events(), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "operations")
    dash_duo.wait_for_contains_text('[data-widget="ops-agents"]', "qms-dor-validator", timeout=20)
    _click_link(dash_duo, '[data-widget="ops-agents"]', "qms-dor-validator")
    dash_duo.wait_for_element("#agent-view", timeout=20)
    assert dash_duo.find_element("#agent-title").text.startswith("Agent qms-dor-validator")
    assert _severe(dash_duo.get_logs()) == []
