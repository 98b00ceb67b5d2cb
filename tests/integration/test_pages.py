"""The pages' callbacks are all registered (a callback defined in the wrong scope silently
never runs) and what the role dashboards' widgets show comes from the engine: each widget's
rows through GET /api/dashboards/<id>/widgets/<widget>/data (the frames the page draws) and
the page's own text from the ONE refresh callback (tests/integration/test_board.py)."""
from __future__ import annotations

from typing import Any

from callbacks.drilldown import gate_data
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms
from data.views import roi
from tests.integration.test_board import post, refresh_body, route, texts, walk
from tests.integration.test_rbac_matrix import signed_in


def test_pag001_every_page_callback_is_registered(app: Any) -> None:
    outputs = " ".join(app.callback_map)
    for needed in ("page.children", '{"type":"w-body","w":["ALL"]}.children', "dash-window.children",
                   "audit-grid.rowData", "gate-failures.getRowsResponse", "nav.href", "events-grid.getRowsResponse",
                   "gate-kpis.children"):
        assert needed in outputs, needed


def widget_rows(c: Any, dash: str, widget: str, timeframe: str = "1h") -> list[dict[str, Any]]:
    """A widget's rows as its REST twin serves them (the frames the page draws)."""
    res = c.get(f"/api/dashboards/{dash}/widgets/{widget}/data?timeframe={timeframe}")
    assert res.status_code == 200, (widget, res.data[:300])
    return res.json["response"]["data"]["rows"]


def drawn(app: Any, c: Any, csrf: str, dash: str, timeframe: str = "1h") -> dict[str, Any]:
    """Every widget's body as the page gets it from one refresh (the page's definition as sent)."""
    page = route(app, c, csrf, f"/dashboards/{dash}")
    stored = next(n for n in walk(page) if n.get("id") == "dash-def")["data"]
    res = post(c, csrf, refresh_body(app, stored, timeframe=timeframe))
    assert res.status_code == 200, res.data[:500]
    out = res.json["response"]
    return {w["id"]: out[f'{{"type":"w-body","w":"{w["id"]}"}}']["children"] for w in stored["widgets"]}


def traces(body: Any) -> list[dict[str, Any]]:
    """The traces of the figure(s) in a widget's body: name, x, y."""
    return [{"name": t.get("name"), "x": t.get("x"), "y": t.get("y")}
            for n in walk(body) if isinstance(n.get("figure"), dict) for t in n["figure"].get("data", [])]


def table_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a plain table in a widget's body (rows carry data-id): {id, cells}."""
    def text(c: Any) -> str:
        if isinstance(c, list):
            return "".join(text(x) for x in c)
        if isinstance(c, dict):
            return text((c.get("props") or {}).get("children"))
        return "" if c is None else str(c)
    return [{"id": n["data-id"], "cells": [text(td) for td in n["children"]]} for n in walk(body) if "data-id" in n]


def kpi(c: Any, dash: str, metric: str, timeframe: str = "1h") -> Any:
    widgets = c.get(f"/api/dashboard/{dash}?timeframe={timeframe}").json["response"]["data"]["widgets"]
    return next(w["data"]["current_value"] for w in widgets if w["id"] == metric)


def test_pag002_gate_queue_and_gate_page_data(app: Any, r: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)
    svc.ingestor.ingest([
        {"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
         "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": i % 2 == 0, "execution_time": 30}}
        for i in range(4)] + [
        {"id": "q", "type": "system.queue_depth_updated", "timestamp": ts, "source": "t",
         "data": {"queue": "code_review_queue", "depth": 12}}])
    Aggregator(r, Keys("qms")).drain()
    c, csrf = signed_in(app, auth, "admin")
    assert [(g["gate"], g["pass_rate"], g["executions"]) for g in widget_rows(c, "qa", "qa-gates")] == [("lint", 50.0, 4)]
    assert kpi(c, "qa", "gate.lint.pass_rate") == 50.0
    qa = drawn(app, c, csrf, "qa")
    assert "lint" in texts(qa["qa-gate-table"]) and "50.0%" in texts(qa["qa-gate-table"])
    defects = widget_rows(c, "qa", "qa-defects")
    assert defects and all(p["value"] is None for p in defects), "no defect found: every point is no data, not 0"
    queues = widget_rows(c, "operational", "ops-queues")
    assert [(q["queue"], q["depth"]) for q in queues] == [("code_review_queue", 12)]
    assert queues[0]["since"].startswith(ts[:19])
    bars = [(n["data-key"], float(n["data-value"]), n["data-role"]) for n in walk(drawn(app, c, csrf, "operational")["ops-queues"])
            if "data-key" in n]
    # (drawn as HTML, components/static_html.py: attribute values read back as text)
    assert bars == [("code_review_queue", 12.0, "warning")], "the queue monitor draws the rows"
    gate = gate_data(svc.engine, "lint", "1h")
    assert set(gate["kpis"]) == {"gate.lint.pass_rate", "gate.lint.executions", "gate.lint.p95_time"}
    assert [p["value"] for p in gate["series"]["points"] if p["value"] is not None] == [50.0]


def test_pag003_a_click_on_a_gate_bar_opens_its_page_keeping_the_timeframe(app: Any, auth: Any) -> None:
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if k == "nav.href"]
    click = {"points": [{"customdata": "code coverage", "x": "code coverage"}]}
    body = {"output": key, "outputs": {"id": "nav", "property": "href"},
            "inputs": [[{"id": {"type": "w-gates", "w": "qa-gates"}, "property": "clickData", "value": click}]],
            "state": [{"id": "url", "property": "search", "value": "?timeframe=7d&team=core"}],
            "changedPropIds": ['{"type":"w-gates","w":"qa-gates"}.clickData']}
    res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
    assert res.status_code == 200, res.data[:300]
    assert res.json["response"]["nav"]["href"] == "/gates/code%20coverage?timeframe=7d"
    auth.login(c2 := app.server.test_client(), "developer")
    with c2.session_transaction() as sess:
        csrf2 = sess["csrf"]
    assert c2.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf2}).status_code == 403


def test_pag004_defect_analytics_by_severity_category_and_stage(app: Any, r: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 20 * 60_000)
    rows = [("critical", "security", "review"), ("major", "security", "production"), ("minor", None, "review"),
            ("minor", "style", "review")]
    svc.ingestor.ingest([{"id": f"d{i}", "type": "workflow.defect_found", "timestamp": ts, "source": "t",
                          "data": {"workflow_id": "W1", "defect_id": f"D{i}", "severity": sev, "stage": stage,
                                   **({"category": cat} if cat else {})}} for i, (sev, cat, stage) in enumerate(rows)])
    Aggregator(r, Keys("qms")).drain()
    c, csrf = signed_in(app, auth, "qa_lead")
    mix: dict[str, dict[str, int]] = {}
    for row in widget_rows(c, "qa", "qa-defect-mix"):
        mix.setdefault(row["dimension"], {})[row["name"]] = row["value"]
    assert mix == {"severity": {"critical": 1, "major": 1, "minor": 2},
                   "category": {"security": 2, "style": 1, "uncategorised": 1},
                   "stage": {"review": 3, "production": 1}}
    assert sum(mix["severity"].values()) == kpi(c, "qa", "defects_found")
    drawn_mix = {t["name"]: dict(zip(t["x"], t["y"])) for t in traces(drawn(app, c, csrf, "qa")["qa-defect-mix"])}
    assert drawn_mix == mix, "the chart draws the widget's rows"


def test_pag005_roi_and_team_performance_come_from_the_window(app: Any, r: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    svc.settings.extra["roi"] = {"hours_saved_per_review": 1, "engineer_hourly_cost_usd": 100}
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
    c, csrf = signed_in(app, auth, "admin")
    assert {t["name"]: t["value"] for t in widget_rows(c, "executive", "exec-teams")} == {"core": 2, "web": 1}
    risks = {x["name"]: x["likelihood"] for x in widget_rows(c, "executive", "exec-risks")}
    assert risks == {"Audit readiness gaps": 5, "Defects escaping to production": 1}, \
        "merged without the four steps: not audit-ready; no production defect: prevention 100 %"
    [ex] = widget_rows(c, "executive", "exec-roi")
    assert ex["reviews"] == 2 and ex["cost_usd"] == 60.0 and ex["saved_usd"] == 200.0
    assert abs(ex["roi_pct"] - 100 * 140 / 60) < 1e-9
    assert ex["cost_usd"] / ex["reviews"] == kpi(c, "executive", "cost_per_review")
    assert (ex["assumption_hours_saved_per_review"], ex["assumption_engineer_hourly_cost_usd"]) == (1, 100)
    shown = texts(drawn(app, c, csrf, "executive")["exec-roi"])
    assert "$200" in shown and "$60" in shown and "233" in shown, shown
    assert roi(0, 0.0)["roi_pct"] is None, "no reviews: no data, not 0 %"


def test_pag006_developer_review_queue_and_suggestions(app: Any, r: Any, auth: Any) -> None:
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
    c = app.server.test_client()
    auth.login(c, "developer", name="ann")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    assert [x["workflow_id"] for x in widget_rows(c, "developer", "dev-queue")] == ["W1"], "W3's review was completed"
    assert kpi(c, "developer", "pending_reviews") == 1, "the queue and the KPI agree"
    assert [x["workflow_id"] for x in widget_rows(c, "developer", "dev-suggested")] == ["W2"], \
        "W3 has a review started; W1 is ann's own"
    shown = drawn(app, c, csrf, "developer")
    assert "W1" in texts(shown["dev-queue"]) and "W3" not in texts(shown["dev-queue"])
    assert "W2" in texts(shown["dev-suggested"]) and "W1" not in texts(shown["dev-suggested"])


def test_pag007_operations_health_and_error_log(app: Any, r: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 5 * 60_000)
    svc.ingestor.ingest([{"id": "e1", "type": "system.error_occurred", "timestamp": ts, "source": "t",
                          "data": {"component": "orchestrator", "error_type": "Timeout", "severity": "critical"}}])
    Aggregator(r, Keys("qms")).drain()
    c, csrf = signed_in(app, auth, "operations")
    health = {h["check"]: h["status"] for h in widget_rows(c, "operational", "ops-health")}
    assert health["redis"] == "healthy"
    assert [e["id"] for e in widget_rows(c, "operational", "ops-error-log")] == ["e1"]
    assert kpi(c, "operational", "error_rate") == 1.0
    [row] = table_rows(drawn(app, c, csrf, "operational")["ops-error-log"])
    assert row["id"] == "e1" and row["cells"][1:4] == ["critical", "orchestrator", "Timeout"]


def test_pag011_the_filters_go_into_the_url_and_are_audited(app: Any, auth: Any, r: Any) -> None:
    from callbacks.pages import view_of
    assert view_of("?timeframe=7d&repository=api&team=x&gate=lint&bogus=1") == \
        {"timeframe": "7d", "repository": "api", "gate": "lint"}
    assert view_of("?timeframe=99d&agent=" + "a" * 300) == {"timeframe": "24h"}
    c, csrf = signed_in(app, auth, "qa_lead")
    page = route(app, c, csrf, "/dashboards/qa")
    stored = next(n for n in walk(page) if n.get("id") == "dash-def")["data"]
    body = refresh_body(app, stored, timeframe="4h", scope="team=core", trigger="dash-scope.value")
    for item in body["inputs"]:
        if isinstance(item, dict) and item["id"] == "dash-gate":
            item["value"] = "lint"
        elif isinstance(item, dict) and item["id"] == "dash-agent":
            item["value"] = "bot-1"
    res = post(c, csrf, body)
    assert res.status_code == 200, res.get_data(as_text=True)[:500]
    out = res.json["response"]
    # QA filters by scope and gate; the agent picker is not used there.
    assert out["url-sync"]["search"] == "?timeframe=4h&team=core&gate=lint"
    assert out["dash-export"]["href"] == "/api/export/qa.csv?timeframe=4h&team=core"
    assert "filtered to team core, gate lint" in out["dash-window"]["children"]
    entries = app.server.extensions["qms"].audit.query(action_prefix="user.filter_applied", limit=5)
    assert entries and entries[0]["data"].get("team") == "core" and entries[0]["data"].get("gate") == "lint"
    assert entries[0]["data"].get("dashboard") == "qa" and "agent" not in entries[0]["data"]


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
        app, route, {("route-path", "data"): "/events/gates_passed", ("url", "search"): "?timeframe=1h&repository=web"}))
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
