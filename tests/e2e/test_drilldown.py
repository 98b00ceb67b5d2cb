"""The QA lead's journey in a real browser: the card "Critical defects 18" opens exactly the
18 open critical defects, every column filled, the count line equal to the card."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from tests.e2e.test_dashboards import _app, _severe, _sign_in, _start

pytestmark = pytest.mark.e2e


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _defects() -> list[dict[str, Any]]:
    """18 open critical defects among 30 critical (12 resolved), 40 major and minor ones."""
    now = datetime.now(timezone.utc)
    out: list[dict[str, Any]] = []
    for i in range(70):
        sev = "critical" if i < 30 else ("major" if i % 2 else "minor")
        t = now - timedelta(minutes=300 - 4 * i)
        out.append({"id": f"found-{i}", "type": "workflow.defect_found", "source": "e2e", "timestamp": _iso(t),
                    "data": {"workflow_id": f"WF-{i}", "defect_id": f"DEF-{i}", "severity": sev,
                             "category": "security", "found_by": "qms-security-reviewer"}})
        if i < 12:
            out.append({"id": f"res-{i}", "type": "workflow.defect_resolved", "source": "e2e",
                        "timestamp": _iso(t + timedelta(minutes=2)), "data": {"defect_id": f"DEF-{i}", "resolution": "fixed"}})
    return out


def _grid(dash_duo: Any, grid: str, script: str, timeout: float = 20) -> Any:
    """Ask AG Grid's own API (dash-ag-grid exposes it) once the grid exists."""
    deadline = time.time() + timeout
    while True:
        got = dash_duo.driver.execute_script(
            "try { var api = dash_ag_grid.getApi(arguments[0]); return api ? (function(api) {" + script + "})(api)"
            " : null; } catch (e) { return null; }", grid)
        if got is not None or time.time() > deadline:
            return got
        time.sleep(0.2)


def _grid_scripts(dash_duo: Any) -> list[str]:
    return dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
        ".filter(function (n) { return n.indexOf('/dash_ag_grid/') >= 0; });")


def test_drb001_qa_lead_opens_the_18_open_critical_defects_from_the_card(dash_duo: Any, settings: Any, r: Any) -> None:
    app = _app(settings)
    app.server.extensions["qms"].ingestor.ingest(_defects(), origin="e2e")
    Aggregator(r, Keys(settings.key_prefix)).drain()
    _start(dash_duo, app)
    _sign_in(dash_duo, "qa_lead")
    value = '[data-kpi="critical_defects"] .kpi-value'
    dash_duo.wait_for_text_to_equal(value, "18", timeout=20)
    card = dash_duo.find_element('[data-kpi="critical_defects"] a')
    # The QA dashboard leads with the gates (config/dashboards/qa.yaml): the card is further down.
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", card)
    # A dashboard draws no grid: AG Grid's scripts (2.2 MB) are not loaded yet (assets/lazy_grid.js).
    assert _grid_scripts(dash_duo) == [], "AG Grid loaded by a page without a grid"
    assert dash_duo.driver.execute_script("return typeof window.dash_ag_grid.getApi") == "undefined"
    card.click()
    dash_duo.wait_for_contains_text("#events-count", "18", timeout=20)
    assert dash_duo.find_element("#events-count").text.startswith("18 open critical defects")
    # Every row the grid holds, read through its API once it reports them all loaded.
    rows = None
    deadline = time.time() + 20
    while time.time() < deadline:
        rows = _grid(dash_duo, "events-grid", "var out = []; api.forEachNode(function(n) { if (n.data) out.push(n.data); });"
                     " return out.length === api.getDisplayedRowCount() ? out : null;")
        if rows:
            break
        time.sleep(0.2)
    assert rows is not None and len(rows) == 18, "the grid holds as many rows as the card says"
    assert {row["data.severity"] for row in rows} == {"critical"}
    assert sorted(row["data.defect_id"] for row in rows) == sorted(f"DEF-{i}" for i in range(12, 30))
    assert {row["role"] for row in rows} == {"open_at_end"}
    # What the viewer sees: the data columns of the first rows are filled, not empty cells.
    dash_duo.wait_for_element('#events-grid .ag-cell[col-id="data.workflow_id"]', timeout=10)
    for col in ("data.workflow_id", "data.defect_id", "data.severity", "data.found_by", "type", "timestamp"):
        cells = dash_duo.find_elements(f'#events-grid .ag-row .ag-cell[col-id="{col}"]')
        assert cells and all(c.text.strip() for c in cells), f"column {col} has empty cells"
    shown = dash_duo.find_elements('#events-grid .ag-row .ag-cell[col-id="timestamp"]')[0].text
    assert "T" not in shown and "Z" not in shown, f"times in the viewer's format, not ISO: {shown!r}"
    # The events page's grid loaded them, each once, the main script before its community chunk.
    assert [u.rsplit("/", 1)[-1].split(".")[0] for u in _grid_scripts(dash_duo)] == ["dash_ag_grid", "async-community"]
    assert _severe(dash_duo.get_logs()) == []
