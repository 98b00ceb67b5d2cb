"""The pages' callbacks are all registered (a callback defined in the wrong scope silently
never runs) and the dashboard data behind the widgets comes from the engine."""
from __future__ import annotations

from typing import Any

from data.aggregator import Aggregator
from data.keys import Keys
from data.panels import gate_data, panel_data
from data.timeutil import fmt_ms, now_ms


def test_pag001_every_page_callback_is_registered(app: Any) -> None:
    outputs = " ".join(app.callback_map)
    for needed in ("page.children", "dash-kpis.children", "dash-panels.children", "audit-grid.rowData",
                   "gate-failures.getRowsResponse", "nav.href", "events-grid.getRowsResponse"):
        assert needed in outputs, needed


def test_pag002_panel_and_gate_data(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)
    svc.ingestor.ingest([
        {"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
         "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": i % 2 == 0, "execution_time": 30}}
        for i in range(4)] + [
        {"id": "q", "type": "system.queue_depth_updated", "timestamp": ts, "source": "t",
         "data": {"queue": "code_review_queue", "depth": 12}}])
    Aggregator(r, Keys("qms")).drain()
    qa = panel_data(svc.engine, "qa", "1h", None, svc.sanitizer_for(["qa_lead"]))
    assert qa["kpis"]["gate.lint.pass_rate"]["current_value"] == 50.0
    assert qa["defects"]["points"] and all(p["value"] is None for p in qa["defects"]["points"]), \
        "no defect found: every point is no data, not 0"
    ops = panel_data(svc.engine, "operational", "1h", None, svc.sanitizer_for(["operations"]))
    assert ops["queues"] == [{"queue": "code_review_queue", "depth": 12, "since": ts}]
    gate = gate_data(svc.engine, "lint", "1h")
    assert set(gate["kpis"]) == {"gate.lint.pass_rate", "gate.lint.executions", "gate.lint.p95_time"}
    assert [p["value"] for p in gate["series"]["points"] if p["value"] is not None] == [50.0]


def test_pag003_a_click_on_a_gate_bar_opens_its_page_keeping_the_timeframe(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if k == "nav.href"]
    body = {"output": key, "outputs": {"id": "nav", "property": "href"},
            "inputs": [{"id": "qa-gates", "property": "clickData",
                        "value": {"points": [{"customdata": "code coverage", "x": "code coverage"}]}}],
            "state": [{"id": "dash-timeframe", "property": "value", "value": "7d"}],
            "changedPropIds": ["qa-gates.clickData"]}
    res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
    assert res.status_code == 200
    assert res.json["response"]["nav"]["href"] == "/gates/code%20coverage?timeframe=7d"
    auth.login(c2 := app.server.test_client(), "developer")
    with c2.session_transaction() as sess:
        csrf2 = sess["csrf"]
    assert c2.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf2}).status_code == 403


def test_pag004_defect_analytics_by_severity_category_and_stage(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 20 * 60_000)
    rows = [("critical", "security", "review"), ("major", "security", "production"), ("minor", None, "review"),
            ("minor", "style", "review")]
    svc.ingestor.ingest([{"id": f"d{i}", "type": "workflow.defect_found", "timestamp": ts, "source": "t",
                          "data": {"workflow_id": "W1", "defect_id": f"D{i}", "severity": sev, "stage": stage,
                                   **({"category": cat} if cat else {})}} for i, (sev, cat, stage) in enumerate(rows)])
    Aggregator(r, Keys("qms")).drain()
    qa = panel_data(svc.engine, "qa", "1h", None, svc.sanitizer_for(["qa_lead"]))
    assert qa["defect_breakdown"] == {"severity": {"critical": 1, "major": 1, "minor": 2},
                                      "category": {"security": 2, "style": 1, "uncategorised": 1},
                                      "stage": {"review": 3, "production": 1}}
    assert sum(qa["defect_breakdown"]["severity"].values()) == qa["kpis"]["defects_found"]["current_value"]


def test_pag005_roi_and_team_performance_come_from_the_window(app: Any, r: Any) -> None:
    from data.panels import roi
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 30 * 60_000)
    evs = [{"id": f"p{i}", "type": "workflow.pr_created", "timestamp": ts, "source": "t",
            "data": {"workflow_id": f"W{i}", "pr_number": i + 1, "repository": "r", "author": "ann", "team": team}}
           for i, team in enumerate(["core", "core", "web"])]
    evs += [{"id": f"c{i}", "type": "workflow.completed", "timestamp": fmt_ms(now_ms() - 10 * 60_000), "source": "t",
             "data": {"workflow_id": f"W{i}", "outcome": "merged"}} for i in range(3)]
    evs += [{"id": f"r{i}", "type": "workflow.review_completed", "timestamp": ts, "source": "t",
             "data": {"workflow_id": "W0", "reviewer": "qms-code-reviewer", "verdict": "approved", "cost_usd": c}}
            for i, c in enumerate([40.0, 20.0])]
    svc.ingestor.ingest(evs)
    Aggregator(r, Keys("qms")).drain()
    ex = panel_data(svc.engine, "executive", "1h", None, svc.sanitizer_for(["executive"]),
                    {"hours_saved_per_review": 1, "engineer_hourly_cost_usd": 100})
    assert ex["teams"] == {"core": 2, "web": 1}
    risks = {x["name"]: x["likelihood"] for x in ex["risks"]}
    assert risks == {"Audit readiness gaps": 5, "Defects escaping to production": 1}, \
        "merged without the four steps: not audit-ready; no production defect: prevention 100 %"
    assert ex["roi"]["reviews"] == 2 and ex["roi"]["cost_usd"] == 60.0 and ex["roi"]["saved_usd"] == 200.0
    assert abs(ex["roi"]["roi_pct"] - 100 * 140 / 60) < 1e-9
    assert ex["roi"]["cost_usd"] / ex["roi"]["reviews"] == ex["kpis"]["cost_per_review"]["current_value"]
    assert roi(0, 0.0)["roi_pct"] is None, "no reviews: no data, not 0 %"


def test_pag006_developer_review_queue_and_suggestions(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    t = now_ms() - 40 * 60_000

    def ev(i: str, type_: str, minutes: int, **data: Any) -> dict[str, Any]:
        return {"id": i, "type": type_, "timestamp": fmt_ms(t + minutes * 60_000), "source": "t", "data": data}
    svc.ingestor.ingest([
        ev("p1", "workflow.pr_created", 0, workflow_id="W1", pr_number=1, repository="r", author="ann", team="core"),
        ev("p2", "workflow.pr_created", 0, workflow_id="W2", pr_number=2, repository="r", author="bob", team="core"),
        ev("p3", "workflow.pr_created", 0, workflow_id="W3", pr_number=3, repository="r", author="cid", team="web"),
        ev("s2", "workflow.step_entered", 1, workflow_id="W2", step="code_review"),
        ev("s3", "workflow.step_entered", 2, workflow_id="W3", step="code_review"),
        ev("r1", "workflow.review_started", 5, workflow_id="W1", reviewer="ann"),      # ann reviews W1... and
        ev("r3", "workflow.review_started", 6, workflow_id="W3", reviewer="ann"),
        ev("c3", "workflow.review_completed", 9, workflow_id="W3", reviewer="ann", verdict="approved"),
    ])
    Aggregator(r, Keys("qms")).drain()
    dev = panel_data(svc.engine, "developer", "1h", "ann", svc.sanitizer_for(["developer"]))
    assert [x["workflow_id"] for x in dev["my_reviews"]] == ["W1"], "W3's review was completed"
    assert dev["kpis"]["pending_reviews"]["current_value"] == 1, "the queue and the KPI agree"
    assert [x["workflow_id"] for x in dev["suggested"]] == ["W2"], "W3 has a review started; W1 is ann's own"


def test_pag007_operations_health_and_error_log(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 5 * 60_000)
    svc.ingestor.ingest([{"id": "e1", "type": "system.error_occurred", "timestamp": ts, "source": "t",
                          "data": {"component": "orchestrator", "error_type": "Timeout", "severity": "critical"}}])
    Aggregator(r, Keys("qms")).drain()
    ops = panel_data(svc.engine, "operational", "1h", None, svc.sanitizer_for(["operations"]))
    assert ops["health"]["checks"]["redis"]["status"] == "healthy"
    assert [e["id"] for e in ops["error_log"]] == ["e1"]
    assert ops["kpis"]["error_rate"]["current_value"] == 1.0


def test_pag006_the_filters_go_into_the_url_and_are_audited(app: Any, auth: Any, r: Any) -> None:
    from callbacks.pages import view_of
    assert view_of("?timeframe=7d&repository=api&team=x&gate=lint&bogus=1") == \
        {"timeframe": "7d", "repository": "api", "gate": "lint"}
    assert view_of("?timeframe=99d&agent=" + "a" * 300) == {"timeframe": "24h"}
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if "dash-kpis.children" in k]
    outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
               for part in key.strip(".").split("...")]
    body = {"output": key, "outputs": outputs,
            "inputs": [{"id": "dash-refresh", "property": "n_intervals", "value": None},
                       {"id": "dash-timeframe", "property": "value", "value": "4h"},
                       {"id": "dash-scope", "property": "value", "value": "team=core"},
                       {"id": "dash-gate", "property": "value", "value": "lint"},
                       {"id": "dash-agent", "property": "value", "value": "bot-1"},
                       {"id": "live-tick", "property": "data", "value": None},
                       {"id": "widget-config", "property": "data", "value": None}],
            "state": [{"id": "theme", "property": "data", "value": "light"},
                      {"id": "url", "property": "pathname", "value": "/dashboards/qa"}],
            "changedPropIds": ["dash-scope.value"]}
    res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
    assert res.status_code == 200, res.get_data(as_text=True)[:500]
    out = res.json["response"]
    # QA filters by scope and gate; the agent picker is not used there.
    assert out["url-sync"]["search"] == "?timeframe=4h&team=core&gate=lint"
    assert out["dash-export"]["href"] == "/api/export/qa.csv?timeframe=4h&team=core"
    assert "filtered to team core, gate lint" in out["dash-window"]["children"]
    entries = app.server.extensions["qms"].audit.query(action_prefix="user.filter_applied", limit=5)
    assert entries and entries[0]["data"].get("team") == "core" and entries[0]["data"].get("gate") == "lint"


def test_pag007_hiding_a_widget_is_personal_and_needs_the_permission(app: Any, auth: Any) -> None:
    from data.prefs import Prefs
    [key] = [k for k in app.callback_map if k == "widget-config.data"]
    hide = {"id": {"type": "widget-hide", "widget": "dev-kanban"}, "property": "n_clicks", "value": 1}
    body = {"output": key, "outputs": {"id": "widget-config", "property": "data"},
            "inputs": [[hide], []], "state": [{"id": "widget-config", "property": "data", "value": 2}],
            "changedPropIds": ['{"type":"widget-hide","widget":"dev-kanban"}.n_clicks']}
    svc = app.server.extensions["qms"]
    for role, status in (("executive", 403), ("developer", 200)):
        c = app.server.test_client()
        auth.login(c, role)
        with c.session_transaction() as sess:
            csrf = sess["csrf"]
        res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
        assert res.status_code == status, (role, res.get_data(as_text=True)[:300])
    assert res.json["response"]["widget-config"]["data"] == 3
    assert Prefs(svc.redis, svc.keys).hidden(auth.user("developer")) == {"dev-kanban"}
    assert Prefs(svc.redis, svc.keys).hidden(auth.user("executive")) == set()


def test_pag008_charts_share_a_series_for_a_few_seconds_the_api_is_exact(app: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    assert svc.engine.series_ttl_s == 5.0

    def gates(i: int) -> None:
        svc.ingestor.ingest([{"id": f"sc{i}", "type": "workflow.quality_gate_executed", "source": "t",
                              "timestamp": fmt_ms(now_ms() - 5 * 60_000), "data": {"workflow_id": "W", "gate_name": "g",
                                                                                   "passed": i == 0}}])
        Aggregator(r, Keys("qms")).drain()

    def last(**kw: Any) -> Any:
        return [p["value"] for p in svc.engine.series("gate_pass_rate", "1h", points=1, **kw)["points"]][-1]
    gates(0)
    assert last(shared=True) == 100.0
    gates(1)
    assert last(shared=True) == 100.0, "a chart redraw within the series lifetime reads the shared one"
    assert last() == 50.0, "the API computes it exactly"


def test_pag009_the_events_page_of_a_filtered_kpi_shows_that_scopes_events(app: Any, auth: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)
    events = [{"id": f"pr{i}", "type": "workflow.pr_created", "timestamp": ts, "source": "t",
               "data": {"workflow_id": f"W{i}", "pr_number": i, "repository": repo, "author": "ann"}}
              for i, repo in ((1, "api"), (2, "web"))]
    events += [{"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
                "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": True}} for i in (1, 2)]
    svc.ingestor.ingest(events)
    Aggregator(r, Keys("qms")).drain()
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    from tests.integration.test_rbac_matrix import callback_body
    [key] = [k for k in app.callback_map if "events-grid.getRowsResponse" in k]

    def rows(scope: Any) -> list[str]:
        body = callback_body(app, key, {("events-grid", "getRowsRequest"): {"startRow": 0, "endRow": 100},
                                        ("events-kpi", "data"): {"kpi": "gates_passed", "timeframe": "1h",
                                                                 "scope": scope}})
        res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf}).json["response"]
        return sorted(r["data.workflow_id"] for r in res["events-grid"]["getRowsResponse"]["rowData"])
    [route] = [k for k in app.callback_map if "page.children" in k]
    page = c.post("/_dash-update-component", headers={"X-CSRFToken": csrf}, json=callback_body(
        app, route, {("url", "pathname"): "/events/gates_passed", ("url", "search"): "?timeframe=1h&repository=web"}))
    assert "repository=web" in [x for x in _hrefs(page.json) if "format=csv" in x][0]
    assert rows(None) == ["W1", "W2"]
    assert rows(["repository", "web"]) == ["W2"]
    assert rows(["bogus", "web"]) == ["W1", "W2"], "a forged scope is ignored, not an error"


def _hrefs(obj: Any) -> list[str]:
    """Every href in a Dash layout (as JSON)."""
    if isinstance(obj, dict):
        found = [obj["href"]] if isinstance(obj.get("href"), str) else []
        return found + [h for v in obj.values() for h in _hrefs(v)]
    if isinstance(obj, list):
        return [h for v in obj for h in _hrefs(v)]
    return []


def test_pag010_review_cost_by_team_follows_each_batch(app: Any, r: Any) -> None:
    """Cached per data version: a new batch is seen at once, an unchanged store is read once."""
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)

    def review(i: int, cost: float) -> None:
        svc.ingestor.ingest([{"id": f"rv{i}", "type": "workflow.review_completed", "timestamp": ts, "source": "t",
                              "data": {"workflow_id": "W1", "reviewer": "bot", "verdict": "approved", "cost_usd": cost}}])
        Aggregator(r, Keys("qms")).drain()
    svc.ingestor.ingest([{"id": "pr1", "type": "workflow.pr_created", "timestamp": ts, "source": "t",
                          "data": {"workflow_id": "W1", "pr_number": 1, "repository": "api", "author": "ann",
                                   "team": "core"}}])
    review(1, 2.5)
    assert svc.engine.cost_by_scope("1h")["team"] == {"core": {"rc": 1, "cost": 2_500_000}}
    review(2, 1.0)
    assert svc.engine.cost_by_scope("1h")["repository"] == {"api": {"rc": 2, "cost": 3_500_000}}
