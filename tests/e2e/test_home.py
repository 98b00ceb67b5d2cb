"""Browser tests of the first page (dash_duo, headless Debian Chromium).

The app is the real one from `factory.create_app`, fed through the real ingest and
aggregator, so these check the whole path from events to what a person sees.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from factory import create_app

pytestmark = pytest.mark.e2e

GATE_RATE = '[data-kpi="gate_pass_rate"] .kpi-value'
SATISFACTION = '[data-kpi="developer_satisfaction"] .kpi-value'


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _gate_events(results: list[bool]) -> list[dict[str, Any]]:
    """One executed gate per result, spread over the last hour."""
    now = datetime.now(timezone.utc)
    return [{
        "id": f"e2e-gate-{i}", "type": "workflow.quality_gate_executed", "source": "e2e-test",
        "timestamp": _iso(now - timedelta(minutes=50 - 10 * i)),
        "data": {"workflow_id": f"wf-{i}", "gate_name": "unit_tests", "passed": passed},
    } for i, passed in enumerate(results)]


def _severe(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("level") == "SEVERE"]


def test_home001_kpi_cards_show_ingested_events(dash_duo: Any, settings: Any, r: Any) -> None:
    app = create_app(settings)
    result = app.server.extensions["qms"].ingestor.ingest(_gate_events([True, True, False, True]), origin="e2e")
    assert (result.accepted, result.rejected) == (4, 0), result.errors
    Aggregator(r, Keys(settings.key_prefix)).drain()

    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal(GATE_RATE, "75.0%", timeout=20)
    # The freshness label comes from the same callback: the aggregator has run.
    assert "updated" in dash_duo.find_element("#home-freshness").text
    assert _severe(dash_duo.get_logs()) == []


def test_home002_kpi_without_data_shows_no_data(dash_duo: Any, settings: Any, r: Any) -> None:
    app = create_app(settings)
    dash_duo.start_server(app)
    # Nothing ingested: a KPI is "no data", never 0 or 0.0%.
    dash_duo.wait_for_text_to_equal(GATE_RATE, "no data", timeout=20)
    assert dash_duo.find_element(SATISFACTION).text == "no data"
    assert dash_duo.find_element("#home-freshness").text == "no data yet"
    assert _severe(dash_duo.get_logs()) == []
