"""The KPI HTTP API end to end: ingest -> aggregate -> envelope, series, drill-down, CSV."""
from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import HOUR_MS, fmt_ms, now_ms

K = Keys("qms")
END = now_ms() // HOUR_MS * HOUR_MS


def at(minutes_before_end: float) -> str:
    return fmt_ms(int(END - minutes_before_end * 60_000))


def gate(i: int, passed: bool, minutes: float, gate_name: str = "lint-gate", exec_s: float = 30) -> dict[str, Any]:
    return {"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": at(minutes), "source": "ci",
            "data": {"workflow_id": f"W{i}", "gate_name": gate_name, "passed": passed, "execution_time": exec_s}}


@pytest.fixture
def loaded(client: Any, r: Any) -> Any:
    events = [gate(1, True, 10), gate(2, True, 20, exec_s=60), gate(3, False, 30, exec_s=120),
              gate(4, True, 50, "coverage-gate", 10), gate(5, False, 90)]  # g5 is in the previous 1h window
    events.append({"id": "q1", "type": "system.queue_depth_updated", "timestamp": at(40), "source": "orch",
                   "data": {"queue": "code_review_queue", "depth": 17}})
    events.append({"id": "x1", "type": "workflow.defect_found", "timestamp": at(5), "source": "bot",
                   "data": {"workflow_id": "W1", "defect_id": "D1", "severity": "major", "category": "=cmd|calc"}})
    res = client.post("/api/events", json={"events": events})
    assert res.status_code == 202 and res.json["accepted"] == len(events)
    Aggregator(r, K).drain()
    return events


def widgets(body: Any) -> dict[str, Any]:
    return {w["id"]: w["data"] for w in body["response"]["data"]["widgets"]}


def test_api001_envelope_and_values(client: Any, loaded: Any) -> None:
    res = client.get(f"/api/dashboard/qa?timeframe=1h&end={fmt_ms(END)}")
    assert res.status_code == 200
    body = res.json["response"]
    assert body["status"] == "success" and body["data"]["dashboard_id"] == "qa"
    assert body["data"]["window"] == {"start": fmt_ms(END - HOUR_MS), "end": fmt_ms(END)}
    assert set(body["metadata"]) == {"cache_status", "processing_time", "data_freshness"}
    w = widgets(res.json)
    assert w["total_gates_executed"] == {"current_value": 4, "previous_value": 1, "trend": "up", "unit": "count"}
    assert w["gates_failed"]["current_value"] == 1
    assert w["gate.lint-gate.pass_rate"]["current_value"] == pytest.approx(200 / 3)
    # 120 s is the nearest-rank p95 of 30, 60, 120; read from its histogram bin, 120,320 ms (data.contrib.hist_bin)
    assert w["gate.lint-gate.p95_time"]["current_value"] == 120_320 / 60_000
    assert w["average_gate_time"]["current_value"] == pytest.approx((30 + 60 + 120 + 10) / 4 / 60)
    assert w["defects_found"]["current_value"] == 1 and w["policy_violations"]["current_value"] is None


def test_api002_cache_hit_until_the_next_batch(client: Any, r: Any, loaded: Any) -> None:
    url = f"/api/dashboard/executive?timeframe=4h&end={fmt_ms(END)}"
    assert client.get(url).json["response"]["metadata"]["cache_status"] == "miss"
    assert client.get(url).json["response"]["metadata"]["cache_status"] == "hit"
    client.post("/api/events", json=gate(9, True, 15))
    Aggregator(r, K).drain()
    second = client.get(url).json
    assert second["response"]["metadata"]["cache_status"] == "miss"
    assert widgets(second)["gate_pass_rate"]["current_value"] == pytest.approx(400 / 6)


def test_api003_every_metrics_md_kpi_is_served(client: Any, loaded: Any) -> None:
    expected = {
        "executive": {"overall_quality_score", "defect_detection_rate", "false_positive_rate", "compliance_adherence",
                      "average_review_cycle_time", "workflow_completion_rate", "agent_utilization_rate",
                      "sla_adherence", "cost_per_review", "time_to_merge", "developer_satisfaction",
                      "process_adoption_rate", "gate_pass_rate"},
        "operational": {"total_active_reviews", "pending_dor_validations", "in_progress_reviews",
                        "awaiting_dod_validation", "final_approvals_needed", "total_agents", "active_agents",
                        "overloaded_agents", "idle_agents", "down_agents", "agents_in_training", "error_rate",
                        "queue_depth.code_review_queue"},
        "qa": {"total_gates_executed", "gates_passed", "gates_failed", "average_gate_time", "defects_found",
               "critical_defects", "defect_resolution_time", "defect_prevention_rate", "compliance_checks_passed",
               "audit_readiness_score", "policy_violations", "remediation_pending",
               *(f"gate.{g}.{m}" for g in ("lint-gate", "coverage-gate") for m in ("pass_rate", "executions", "p95_time"))},
        "developer": {"pending_reviews", "completed_today", "average_feedback_time", "quality_score_trend",
                      "team_velocity", "skill_development_areas", "suggested_reviews"},
    }
    for dash, ids in expected.items():
        res = client.get(f"/api/dashboard/{dash}?timeframe=24h&user=ann")
        assert res.status_code == 200, res.json
        assert set(widgets(res.json)) == ids, dash
    assert widgets(client.get("/api/dashboard/operational").json)["queue_depth.code_review_queue"]["current_value"] == 17


def test_api004_metrics_filter_and_errors(client: Any, loaded: Any) -> None:
    res = client.get("/api/dashboard/qa?metrics=gates_passed,defects_found")
    assert set(widgets(res.json)) == {"gates_passed", "defects_found"}
    for url, status in [("/api/dashboard/finance", 400), ("/api/dashboard/qa?timeframe=2h", 400),
                        ("/api/dashboard/qa?end=yesterday", 400),
                        ("/api/dashboard/qa?end=2024-01-01T00:00:00Z", 400),
                        ("/api/metrics/nope/series", 400), ("/api/metrics/nope/events", 404)]:
        res = client.get(url)
        assert res.status_code == status, url
        assert res.json["response"]["status"] == "error" and res.json["response"]["error"]["message"]


def test_api005_series_is_downsampled_and_sums_to_the_window(client: Any, loaded: Any) -> None:
    res = client.get(f"/api/metrics/total_gates_executed/series?timeframe=4h&end={fmt_ms(END)}&points=8")
    data = res.json["response"]["data"]
    assert len(data["points"]) == 8 and data["step_seconds"] == 1800
    assert sum(p["value"] or 0 for p in data["points"]) == 5
    assert data["points"][-1]["value"] == 3 and data["points"][-3]["value"] == 1   # [-30m,0), [-90m,-60m)
    res = client.get(f"/api/metrics/queue_depth.code_review_queue/series?timeframe=1h&end={fmt_ms(END)}&points=4")
    values = [p["value"] for p in res.json["response"]["data"]["points"]]
    assert values == [None, 17, 17, 17], "state series: the depth at each step's end"


def test_api006_drilldown_events_json_and_csv(client: Any, loaded: Any) -> None:
    res = client.get(f"/api/metrics/gate.lint-gate.pass_rate/events?timeframe=1h&end={fmt_ms(END)}")
    data = res.json["response"]["data"]
    assert [e["id"] for e in data["events"]] == ["g1", "g2", "g3"] and data["next_cursor"] is None  # newest first
    res = client.get(f"/api/metrics/defects_found/events?timeframe=1h&end={fmt_ms(END)}&format=csv")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert rows[0]["id"] == "x1" and rows[0]["data.category"] == "'=cmd|calc"
    res = client.get(f"/api/metrics/gate_pass_rate/events?timeframe=1h&end={fmt_ms(END)}&limit=2")
    assert res.json["response"]["data"]["count"] == 2 and res.json["response"]["data"]["next_cursor"]


def test_api007_health_and_openapi(client: Any, loaded: Any) -> None:
    res = client.get("/health")
    assert res.status_code == 200 and res.json["checks"]["redis"]["status"] == "healthy"
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/api/events" in spec["paths"]
    import re
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    missing = []
    for rule in client.application.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            missing += [f"{m} {path}" for m in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
                        if (path, m.lower()) not in documented]
    assert missing == [], "every API route is in the OpenAPI document"


def test_api008_state_lists(client: Any, loaded: Any) -> None:
    items = client.get("/api/state/queues").json["response"]["data"]["items"]
    assert items == [{"queue": "code_review_queue", "depth": 17, "since": at(40)}]
    assert client.get("/api/state/secrets").status_code == 404


def test_api009_first_page_serves(client: Any) -> None:
    res = client.get("/")
    assert res.status_code == 200 and b"/vendor/bootstrap/css/bootstrap.min.css" in res.data
    assert client.get("/vendor/bootstrap/css/bootstrap.min.css").status_code == 200
    assert client.get("/vendor/bootstrap/../../../settings.py").status_code == 404


def test_api010_dashboard_kpis_export_as_csv(client: Any, loaded: Any, auth: Any, app: Any, r: Any) -> None:
    res = client.get(f"/api/export/qa.csv?timeframe=1h&end={fmt_ms(END)}")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    rows = {row["kpi"]: row for row in csv.DictReader(io.StringIO(res.get_data(as_text=True)))}
    assert rows["total_gates_executed"]["current_value"] == "4" and rows["total_gates_executed"]["previous_value"] == "1"
    assert rows["policy_violations"]["current_value"] == "", "no data is an empty cell, never 0"
    assert rows["gates_failed"]["window_start"] == fmt_ms(END - HOUR_MS)
    exec_client = app.server.test_client()
    exec_client.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("executive")["Authorization"]
    assert exec_client.get("/api/export/qa.csv").status_code == 403, "export:reports but not the QA dashboard"
    assert exec_client.get("/api/export/executive.csv").status_code == 200
    dev_client = app.server.test_client()
    dev_client.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("developer")["Authorization"]
    assert dev_client.get("/api/export/developer.csv").status_code == 403, "developers have no export:reports"
    import orjson
    actions = [orjson.loads(f[b"e"])["type"] for _, f in r.xrange("qms:audit")]
    assert actions.count("user.export_requested") == 2


def _repositories(client: Any, r: Any) -> None:
    """W1 and W2 belong to repository api (team core), W3 to web (team ui)."""
    prs = [{"id": f"pr{i}", "type": "workflow.pr_created", "timestamp": at(55), "source": "scm",
            "data": {"workflow_id": f"W{i}", "pr_number": i, "repository": repo, "author": "ann", "team": team}}
           for i, repo, team in ((1, "api", "core"), (2, "api", "core"), (3, "web", "ui"))]
    assert client.post("/api/events", json={"events": prs}).status_code == 202
    Aggregator(r, K).drain()


def test_api011_dashboard_filtered_by_repository_or_team(client: Any, loaded: Any, r: Any) -> None:
    """W1 and W2 belong to repository api (team core); W3 to web. Gate KPIs split by that."""
    _repositories(client, r)

    def widgets(query: str) -> dict[str, Any]:
        res = client.get(f"/api/dashboard/executive?timeframe=1h&end={at(0)}&{query}")
        assert res.status_code == 200, res.json
        return {w["id"]: w for w in res.json["response"]["data"]["widgets"]}
    plain = widgets("")
    assert plain["gate_pass_rate"]["data"]["current_value"] == 75.0 and "filtered" not in plain["gate_pass_rate"]
    api = widgets("repository=api")
    assert api["gate_pass_rate"]["data"]["current_value"] == 100.0 and api["gate_pass_rate"]["filtered"] is True
    assert api["agent_utilization_rate"]["filtered"] is False
    assert widgets("team=ui")["gate_pass_rate"]["data"]["current_value"] == 0.0
    assert widgets("repository=nowhere")["gate_pass_rate"]["data"]["current_value"] is None
    both = client.get("/api/dashboard/executive?repository=api&team=ui")
    assert both.status_code == 400 and "not both" in both.json["response"]["error"]["message"]
    series = client.get(f"/api/metrics/gate_pass_rate/series?timeframe=1h&end={at(0)}&points=1&team=core")
    assert series.json["response"]["data"]["points"][0]["value"] == 100.0
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export/executive.csv?timeframe=1h&repository=web")
                                           .get_data(as_text=True))))
    by_kpi = {row["kpi"]: row for row in rows}
    assert by_kpi["gate_pass_rate"]["filter"] == "r:web" and by_kpi["developer_satisfaction"]["filter"] == ""


def test_api012_every_widget_exports_the_rows_it_shows(client: Any, loaded: Any, auth: Any, app: Any) -> None:
    """Every widget of the provisioned role dashboards, by its id alone, answers its rows."""
    from dashboards.provision import Provisioner
    for dash_name, defn in Provisioner().dashboards().items():
        for widget in defn.widgets:
            res = client.get(f"/api/widgets/{widget.id}/data?timeframe=1h")
            assert res.status_code == 200, (widget.id, res.json)
            data = res.json["response"]["data"]
            assert data["dashboard"] == dash_name and data["type"] == widget.type and data["columns"], widget.id
    gates = client.get("/api/widgets/qa-gates/data?timeframe=24h").json["response"]["data"]["rows"]
    assert {g["gate"]: g["executions"] for g in gates} == {"coverage-gate": 1, "lint-gate": 4}
    cards = {w["id"]: w["data"]["current_value"]
             for w in client.get("/api/dashboard/qa?timeframe=24h").json["response"]["data"]["widgets"]}
    assert {g["gate"]: g["pass_rate"] for g in gates} == {"coverage-gate": cards["gate.coverage-gate.pass_rate"],
                                                          "lint-gate": cards["gate.lint-gate.pass_rate"]}
    same = client.get("/api/dashboards/qa/widgets/qa-gates/data?timeframe=24h").json["response"]["data"]["rows"]
    assert same == gates, "by id alone or under its dashboard: one widget, one table"
    queues = list(csv.DictReader(io.StringIO(client.get("/api/widgets/ops-queues/data?format=csv")
                                             .get_data(as_text=True))))
    assert [(q["queue"], q["depth (count)"]) for q in queues] == [("code_review_queue", "17")]   # units in the header
    mix = client.get("/api/widgets/qa-defect-mix/data?format=csv&timeframe=24h").get_data(as_text=True)
    assert "category,'=cmd|calc,1" in mix, "formula-looking cells are escaped"
    assert client.get("/api/widgets/nope/data").status_code == 404
    dev = auth.bearer("developer")
    # A widget of a dashboard the developer may not see is like a missing one (docs/API.md) ...
    assert client.get("/api/widgets/exec-roi/data", headers=dev).status_code == 404
    assert client.get("/api/dashboards/executive/widgets/exec-roi/data", headers=dev).status_code == 404
    # ... and on a dashboard of their own, the ROI's source still needs view:cost_analysis.
    mine = {"id": "mine", "title": "Mine", "widgets": [{"id": "roi", "type": "stat_group", "title": "ROI",
                                                        "data_sources": [{"source": "computed", "name": "roi"}]}]}
    assert client.post("/api/dashboards", json=mine, headers=dev).status_code == 201
    refused = client.get("/api/dashboards/mine/widgets/roi/data", headers=dev)
    assert refused.status_code == 403 and "view:cost_analysis" in refused.json["response"]["error"]["message"]
    assert "rows" not in refused.get_data(as_text=True)
    assert client.get("/api/widgets/dev-queue/data?format=csv", headers=dev).status_code == 403
    entries = app.server.extensions["qms"].audit.query(action_prefix="user.export_requested", limit=5)
    assert any(e["data"].get("export") == "widget:operational/ops-queues" for e in entries)


def test_api013_widget_configuration_is_personal_validated_and_audited(client: Any, auth: Any, app: Any) -> None:
    dev = auth.bearer("developer")
    res = client.put("/api/widgets/dev-kanban/config", json={"hidden": True}, headers=dev)
    assert res.status_code == 200 and res.json["response"]["data"]["config"] == {"hidden": True}
    got = client.get("/api/widgets/dev-kanban/data", headers=dev).json["response"]["data"]["config"]
    assert got == {"hidden": True}
    assert client.put("/api/widgets/dev-kanban/config", json={"colour": "red"}, headers=dev).status_code == 400
    assert client.put("/api/widgets/dev-kanban/config", json={"hidden": "yes"}, headers=dev).status_code == 400
    # A widget of a dashboard the developer may not see is like a missing one (docs/API.md).
    assert client.put("/api/widgets/exec-roi/config", json={"hidden": True}, headers=dev).status_code == 404
    assert client.put("/api/widgets/nope/config", json={"hidden": True}, headers=dev).status_code == 404
    assert client.put("/api/widgets/exec-roi/config", json={"hidden": True},
                      headers=auth.bearer("producer")).status_code == 403, "producers lack update:personal_settings"
    from data.prefs import Prefs
    svc = app.server.extensions["qms"]
    assert Prefs(svc.redis, svc.keys).hidden(auth.user("developer")) == {"dev-kanban"}
    assert Prefs(svc.redis, svc.keys).hidden(auth.user("admin")) == set()
    entries = svc.audit.query(action_prefix="user.widget_configured", limit=5)
    assert entries and entries[0]["data"]["widget"] == "dev-kanban"


def test_api014_the_events_behind_a_filtered_kpi_are_that_scopes_events(client: Any, loaded: Any, r: Any) -> None:
    _repositories(client, r)

    def workflows(query: str) -> list[str]:
        data = client.get(f"/api/metrics/gate_pass_rate/events?timeframe=24h&{query}").json["response"]["data"]
        return sorted(e["data"]["workflow_id"] for e in data["events"])
    assert workflows("") == ["W1", "W2", "W3", "W4", "W5"]
    assert workflows("repository=api") == ["W1", "W2"]
    assert workflows("team=ui") == ["W3"]
    # A KPI that cannot be filtered answers its unfiltered events and says so.
    data = client.get("/api/metrics/defect_resolution_time/events?team=ui").json["response"]["data"]
    assert data["filtered"] is False
