"""The load test's smoke mode end to end (bench/load/run.py --smoke): gunicorn -k gevent,
one aggregator, live ingest, 5 locust users (one per role) each doing every action once, replaying the recorded browser
requests. Asserts content, never speed: every request type was exercised and answered
without a 5xx or a failure, the live sockets received pushed data, and the executive
dashboard's cards show the KPI values the API gives. Skipped when gunicorn, locust or
websocket-client are not installed (they come with requirements-dev.txt)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_redis_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "load" / "run.py"

# Every action of the locustfile, by the request type it reports.
EXPECTED = {"auth: login form", "auth: sign in", "page: /dashboards/*", "dash: layout", "dash: dependencies",
            "dash: drilldown open", "dash: drilldown rows", "csv export", "ws connect"}
DASHBOARDS = ("executive", "qa", "operational", "developer")


def _missing() -> list[str]:
    return [m for m in ("gunicorn", "locust", "websocket", "gevent", "psutil") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: Any) -> dict[str, Any]:
    missing = _missing()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (requirements-dev.txt)")
    # A private redis-server: the run FLUSHes its database and must not share one with other tests.
    proc, url = start_redis_server(system_first=True)
    out = tmp_path_factory.mktemp("load") / "smoke.json"
    try:
        run = subprocess.run([sys.executable, str(RUN), "--smoke", "--redis-url", url, "--json", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=420)
    finally:
        proc.terminate()
        proc.wait(10)
    assert run.returncode == 0, f"run.py --smoke failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    # A 403/400 from a dash request means the app's callbacks changed since bench/load/payloads.json
    # was recorded: record it again with `python bench/load/run.py --smoke --capture`.
    return {"result": json.loads(out.read_text()), "stdout": run.stdout}


def test_lds001_every_action_exercised_without_failure(smoke: dict[str, Any]) -> None:
    res = smoke["result"]
    names = {row["name"] for row in res["per_type"]}
    assert EXPECTED <= names, f"not exercised: {sorted(EXPECTED - names)}\n{smoke['stdout'][-3000:]}"
    for dash in DASHBOARDS:   # each dashboard's page drawn: in the layout answer, by the router or a refresh
        assert any(n.startswith("dash: ") and n.endswith(f" {dash}") for n in names), (dash, names)
    assert res["extra"]["counts"]["pages_with_kpis"] >= 5, res["extra"]["counts"]
    # every drill-down's grid asked for the window its page pinned (not the recorded one)
    assert res["extra"]["counts"]["drilldowns_pinned"] >= 4, res["extra"]["counts"]
    assert any(n.startswith("dash: timeframe ") for n in names), names
    assert any(n.startswith("dash: filter ") for n in names), names
    assert any(n.startswith("dash: live refresh ") for n in names), names
    assert res["total"]["count"] >= 60, res["total"]
    assert res["total"]["errors"] == 0, res["failures"]
    statuses = {s for per in res["extra"]["status"].values() for s in per}
    assert not {s for s in statuses if s.startswith("5")}, res["extra"]["status"]


def test_lds002_live_sockets_receive_pushed_data(smoke: dict[str, Any]) -> None:
    counts = smoke["result"]["extra"]["counts"]
    assert counts["ws_opened"] >= 5, counts
    assert counts["ws_failed"] == 0, counts
    assert counts["ws_subscribed"] >= counts["ws_opened"], counts
    # Snapshots on subscribing, then live updates: a data update on a channel after its snapshot
    # (a developer's page listens to alerts only: no snapshot, so the two totals do not compare).
    assert counts["ws_live_updates"] > 0, counts
    assert counts["ws_data_updates"] > counts["ws_live_updates"], counts
    assert counts["live_refreshes"] > 0, counts


def test_lds003_dashboard_cards_show_the_api_values(smoke: dict[str, Any]) -> None:
    check = smoke["result"]["check"]
    assert check["ok"], check
    assert check["compared"] >= 10 and not check["mismatches"], check


def test_lds004_report_names_every_figure(smoke: dict[str, Any]) -> None:
    import re
    kept = re.search(r"^server log: (\S+) \(([\d,]+) tracebacks\)$", smoke["stdout"], re.M)
    assert kept and Path(kept.group(1)).is_file(), smoke["stdout"][-2000:]     # kept for a run's 500s
    res = smoke["result"]
    # The web workers' draw counters (callbacks/draw_stats.py), summed from their log lines.
    draws = res["draws"]
    assert draws["lines"] >= 1 and draws["fills"] >= 1 and draws["drawn"] >= 1 and draws["by_view"], draws
    assert re.search(r"^draws \(the web workers' qms.draws lines, \d+\): [\d,]+ fills", smoke["stdout"], re.M)
    for row in res["per_type"]:
        assert row["count"] > 0 and 0 < row["p50"] <= row["p95"] <= row["p99"], row
    assert {"gunicorn", "locust", "aggregator", "redis-server"} <= set(res["cpu"]["whole"]["cores"]), res["cpu"]
    assert res["cpu"]["whole"]["cores"]["gunicorn"] > 0, res["cpu"]
