"""The events behind a number, and its exports, on hand-made events: what each finding of
issue 10 saw (wrong rows, oldest rows, cut exports, passed runs among the failing ones)."""
from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.reference import P95_REL_ERROR
from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, fmt_ms, now_ms, parse_iso

K = Keys("qms")
END = now_ms() // HOUR_MS * HOUR_MS


def at(minutes_before_end: float) -> str:
    return fmt_ms(int(END - minutes_before_end * MINUTE_MS))


def ingest(app: Any, r: Any, events: list[dict[str, Any]]) -> None:
    svc = app.server.extensions["qms"]
    for i in range(0, len(events), 5000):
        res = svc.ingestor.ingest(events[i:i + 5000])
        assert res.accepted == len(events[i:i + 5000]), res.as_dict()
    Aggregator(r, K).drain(120)


def gates(n: int, span_min: float = 23 * 60, gate: str = "lint", fail_every: int = 3) -> list[dict[str, Any]]:
    prefix = "g" if gate == "lint" else gate
    return [{"id": f"{prefix}{i:06d}", "type": "workflow.quality_gate_executed", "timestamp": at(1 + span_min * i / n),
             "source": "ci", "data": {"workflow_id": f"W{i % 50}", "gate_name": gate, "passed": i % fail_every != 0,
                                      "agent_id": f"qms-agent-{i % 2}", "execution_time": 30 + i % 7}}
            for i in range(n)]


def data_of(res: Any) -> dict[str, Any]:
    assert res.status_code == 200, res.data[:300]
    return res.json["response"]["data"]


def card(client: Any, dash: str, kpi: str, query: str = "") -> Any:
    res = client.get(f"/api/dashboard/{dash}?timeframe=24h&end={fmt_ms(END)}{query}")
    return next(w["data"]["current_value"] for w in data_of(res)["widgets"] if w["id"] == kpi)


def test_drl001_critical_defects_lists_only_the_open_critical_ones(app: Any, client: Any, r: Any) -> None:
    def found(d: str, sev: str, minutes: float, stage: str = "review") -> dict[str, Any]:
        return {"id": f"f-{d}", "type": "workflow.defect_found", "timestamp": at(minutes), "source": "bot",
                "data": {"workflow_id": f"W-{d}", "defect_id": d, "severity": sev, "stage": stage}}

    def resolved(d: str, minutes: float) -> dict[str, Any]:
        return {"id": f"r-{d}", "type": "workflow.defect_resolved", "timestamp": at(minutes), "source": "bot",
                "data": {"defect_id": d, "resolution": "fixed"}}
    ingest(app, r, [found("D1", "critical", 30 * 60),              # found before the window, still open
                    found("D2", "critical", 60), found("D3", "critical", 50), resolved("D3", 40),
                    found("D4", "major", 20), found("D5", "minor", 10),
                    found("D6", "critical", 30), resolved("D6", -5)])  # resolved after end: open at end
    assert card(client, "qa", "critical_defects") == 3
    data = data_of(client.get(f"/api/metrics/critical_defects/events?timeframe=24h&end={fmt_ms(END)}"))
    assert [(e["id"], e["role"]) for e in data["events"]] == [("f-D6", "open_at_end"), ("f-D2", "open_at_end"),
                                                             ("f-D1", "open_at_end")]
    assert data["counts"] == {"counted": 3} and data["value"] == 3 and data["at"] == fmt_ms(END)


def test_drl002_rows_are_newest_first_and_the_cursor_pages_through_the_whole_window(app: Any, client: Any,
                                                                                    r: Any) -> None:
    ingest(app, r, gates(2500))
    url = f"/api/metrics/gate_pass_rate/events?timeframe=24h&end={fmt_ms(END)}&limit=1000"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        data = data_of(client.get(url + (f"&cursor={cursor}" if cursor else "")))
        pages += 1
        assert data["counts"] == {"numerator": 1666, "denominator": 2500} and data["total"] == 2500
        assert data["value"] == pytest.approx(100 * 1666 / 2500)
        seen += [e["id"] for e in data["events"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 2500 == len(set(seen))
    assert seen[0] == "g000000" and seen[-1] == "g002499", "newest first, down to the window's oldest"
    assert {e: "numerator" if int(e[1:]) % 3 else "denominator" for e in seen[:5]} == \
        {e["id"]: e["role"] for e in data_of(client.get(url.replace("limit=1000", "limit=5")))["events"]}
    offset = data_of(client.get(url.replace("limit=1000", "limit=3") + "&offset=1200"))
    assert [e["id"] for e in offset["events"]] == seen[1200:1203]


def test_drl003_a_bad_cursor_or_limit_is_a_400(client: Any) -> None:
    for query in ("cursor=%%%", "cursor=bm9wZQ", "limit=0", "limit=x", "offset=-1", "format=xml", "gate=" + "g" * 300):
        res = client.get(f"/api/metrics/gate_pass_rate/events?{query}")
        assert res.status_code == 400, (query, res.status_code)
        assert res.json["response"]["error"]["message"]


def test_drl004_the_csv_export_is_complete_past_the_old_cut(app: Any, client: Any, r: Any) -> None:
    ingest(app, r, gates(12_000))
    res = client.get(f"/api/metrics/total_gates_executed/events?timeframe=24h&end={fmt_ms(END)}&format=csv")
    assert res.status_code == 200 and res.is_streamed and "X-Truncated" not in res.headers
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert len(rows) == 12_000 and len({row["id"] for row in rows}) == 12_000
    assert rows[0]["id"] == "g000000" and rows[0]["role"] == "counted"
    assert rows[0]["data.workflow_id"] == "W0" and rows[0]["data.execution_time (seconds)"] == "30"
    jsonl = client.get(f"/api/metrics/gates_failed/events?timeframe=24h&end={fmt_ms(END)}&format=jsonl")
    lines = [orjson.loads(line) for line in jsonl.get_data().splitlines()]
    assert len(lines) == 4000 and all(not x["data"]["passed"] and x["role"] == "counted" for x in lines)


def test_drl005_export_file_names_carry_the_kpi_window_and_filters(app: Any, client: Any, r: Any) -> None:
    ingest(app, r, gates(10))
    res = client.get(f"/api/metrics/gates_failed/events?timeframe=4h&end={fmt_ms(END)}&format=csv&gate=lint&agent=qms-agent-0")
    disposition = res.headers["Content-Disposition"]
    stamp = fmt_ms(END - 4 * HOUR_MS).replace(":", "").replace("-", "")
    assert disposition.startswith('attachment; filename="qms-qa-gates_failed-4h-')
    assert stamp[:13] in disposition and "gate-lint" in disposition and "agent-qms-agent-0" in disposition
    assert disposition.endswith('.csv"')


def test_drl006_the_gate_page_exports_only_failing_runs(app: Any, auth: Any, r: Any) -> None:
    ingest(app, r, gates(30, span_min=120) + gates(9, span_min=100, gate="other", fail_every=1))
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    from tests.integration.test_pages import _hrefs
    from tests.integration.test_rbac_matrix import callback_body
    [route] = [k for k in app.callback_map if "page.children" in k]
    page = c.post("/_dash-update-component", headers={"X-CSRFToken": csrf}, json=callback_body(
        app, route, {("route-path", "data"): "/gates/lint", ("url", "search"): "?timeframe=4h"}))
    assert page.status_code == 200, page.data[:300]
    [href] = [h for h in _hrefs(page.json) if "format=csv" in h]
    assert "timeframe=4h" in href
    exported = list(csv.DictReader(io.StringIO(c.get(href).get_data(as_text=True))))
    assert len(exported) == 10 and {row["data.gate_name"] for row in exported} == {"lint"}
    assert {row["data.passed"] for row in exported} == {"false"}


def test_drl007_a_state_kpi_lists_each_entity_with_the_event_that_put_it_there(app: Any, client: Any, r: Any) -> None:
    def ev(i: str, t: str, minutes: float, **data: Any) -> dict[str, Any]:
        return {"id": i, "type": "workflow." + t, "timestamp": at(minutes), "source": "orch", "data": data}
    pr = {"pr_number": 1, "repository": "api", "author": "ann"}
    ingest(app, r, [
        ev("c1", "pr_created", 300, workflow_id="W1", **pr), ev("s1a", "step_entered", 290, workflow_id="W1",
                                                                 step="dor_validation"),
        ev("s1b", "step_entered", 200, workflow_id="W1", step="code_review"),
        ev("c2", "pr_created", 100, workflow_id="W2", **pr), ev("s2", "step_entered", 90, workflow_id="W2",
                                                               step="code_review"),
        ev("d2", "completed", -10, workflow_id="W2", outcome="merged"),      # done after end: in review at end
        ev("c3", "pr_created", 80, workflow_id="W3", **pr), ev("s3", "step_entered", 70, workflow_id="W3",
                                                              step="code_review"),
        ev("d3", "completed", 60, workflow_id="W3", outcome="merged"),        # done before end
        ev("s4", "step_entered", 20, workflow_id="W4", step="code_review"),   # never created: never active
    ])
    assert card(client, "operational", "in_progress_reviews") == 2
    data = data_of(client.get(f"/api/metrics/in_progress_reviews/events?timeframe=24h&end={fmt_ms(END)}"))
    assert [(e["id"], e["role"]) for e in data["events"]] == [("s2", "open_at_end"), ("s1b", "open_at_end")]
    assert [c["id"] for c in data["events"][1]["context"]] == ["c1"]
    assert data["counts"] == {"counted": 2}


def test_drl008_gate_and_agent_filters_narrow_the_rows(app: Any, client: Any, r: Any) -> None:
    ingest(app, r, gates(30, span_min=120) + gates(9, span_min=100, gate="other", fail_every=1))
    base = f"/api/metrics/gates_failed/events?timeframe=4h&end={fmt_ms(END)}"
    assert data_of(client.get(base))["counts"] == {"counted": 19}
    only = data_of(client.get(base + "&gate=other"))
    assert only["counts"] == {"counted": 9} and {e["data"]["gate_name"] for e in only["events"]} == {"other"}
    assert only["filters"] == {"gate": "other"}
    agent = data_of(client.get(base + "&gate=lint&agent=qms-agent-0"))
    assert {e["data"]["agent_id"] for e in agent["events"]} == {"qms-agent-0"} and agent["counts"] == {"counted": 5}


def test_drl009_every_row_and_its_context_pass_the_sanitiser(app: Any, auth: Any, r: Any) -> None:
    ts = END - 3 * HOUR_MS
    ingest(app, r, [
        {"id": "c1", "type": "workflow.pr_created", "timestamp": fmt_ms(ts), "source": "vcs",
         "data": {"workflow_id": "W1", "pr_number": 1, "repository": "api", "author": "alice", "title": "alice's fix"}},
        {"id": "d1", "type": "workflow.completed", "timestamp": fmt_ms(ts + HOUR_MS), "source": "vcs",
         "data": {"workflow_id": "W1", "outcome": "merged"}}])
    c = app.server.test_client()
    res = c.get(f"/api/metrics/time_to_merge/events?timeframe=24h&end={fmt_ms(END)}", headers=auth.bearer("executive"))
    data = data_of(res)
    [row] = data["events"]
    assert row["role"] == "averaged" and row["value"] == pytest.approx(1.0)
    [created] = row["context"]
    assert created["id"] == "c1" and created["data"]["author"].startswith("user-") and b"alice" not in res.data
    exported = c.get(f"/api/metrics/time_to_merge/events?timeframe=24h&end={fmt_ms(END)}&format=csv",
                     headers=auth.bearer("admin"))
    assert b"alice" in exported.data, "the admin sees names: the test above is not vacuous"


def test_drl010_widget_exports_stream_typed_values_with_units_in_the_header(app: Any, client: Any, r: Any) -> None:
    ingest(app, r, gates(30, span_min=120) + [
        {"id": f"e{i}", "type": "system.error_occurred", "timestamp": at(10 + i), "source": "orch",
         "data": {"component": "=cmd", "error_type": "timeout"}} for i in range(700)])
    res = client.get("/api/widgets/qa-gates/data?format=csv&timeframe=4h")
    assert res.status_code == 200 and res.is_streamed
    [row] = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert row == {"gate": "lint", "pass_rate (percentage, 2 dp)": "66.67", "executions (count)": "30",
                   "p95_time (minutes, 2 dp)": "0.6"}
    assert 'filename="qms-qa-qa-gates-4h-' in res.headers["Content-Disposition"]
    log = client.get("/api/widgets/ops-error-log/data?format=csv&timeframe=24h").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(log)))
    assert len(rows) == 700, "the export holds every error of the window, not the 500 the widget shows"
    assert rows[0]["data.component"] == "'=cmd"
    lines = client.get("/api/widgets/qa-gates/data?format=jsonl&timeframe=4h").get_data().splitlines()
    assert orjson.loads(lines[0]) == {"gate": "lint", "pass_rate": pytest.approx(66.6667, abs=1e-4),
                                      "executions": 30,
                                      # gate times are kept in bins: the p95 is its bin's middle (reference.P95_REL_ERROR)
                                      "p95_time": pytest.approx(0.6, rel=P95_REL_ERROR)}


def test_drl011_a_deployment_cap_is_said_in_the_page_and_in_the_file(settings: Any, r: Any, auth: Any) -> None:
    from tests.helpers import make_app
    from tests.integration.test_rbac_matrix import callback_body
    app = make_app(settings.replace(export_max_rows=5))
    ingest(app, r, gates(12))
    client = app.server.test_client()
    helper = auth.__class__(app)
    headers = {"Authorization": helper.bearer("admin")["Authorization"]}
    text = client.get(f"/api/metrics/total_gates_executed/events?timeframe=24h&end={fmt_ms(END)}&format=csv",
                      headers=headers).get_data(as_text=True)
    lines = text.splitlines()
    assert len(lines) == 1 + 5 + 1 and "cut at 5 rows" in lines[-1] and "export_max_rows" in lines[-1]
    objects = [orjson.loads(x) for x in client.get(
        f"/api/metrics/total_gates_executed/events?timeframe=24h&end={fmt_ms(END)}&format=jsonl",
        headers=headers).get_data().splitlines()]
    assert [x.get("cut_at") for x in objects] == [None] * 5 + [5] and "narrow it" in objects[-1]["note"]
    # A widget's export too (the quality trends: 3 series of 48 points).
    widget = client.get("/api/widgets/exec-trends/data?format=csv&timeframe=24h", headers=headers)
    lines = widget.get_data(as_text=True).splitlines()
    assert len(lines) == 1 + 5 + 1 and lines[-1].startswith("# cut at 5 rows")
    objects = [orjson.loads(x) for x in client.get("/api/widgets/exec-trends/data?format=jsonl&timeframe=24h",
                                                   headers=headers).get_data().splitlines()]
    assert [x.get("cut_at") for x in objects] == [None] * 5 + [5]
    # The pages the router builds say it beside their export buttons (the events page, the gate page).
    helper.login(client, "qa_lead")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    [route] = [k for k in app.callback_map if "page.children" in k]
    for path in ("/events/total_gates_executed", "/gates/lint"):
        page = client.post("/_dash-update-component", headers={"X-CSRFToken": csrf}, json=callback_body(
            app, route, {("route-path", "data"): path, ("url", "search"): "?timeframe=24h"}))
        assert page.status_code == 200, page.data[:300]
        assert "Exports hold at most 5 rows" in page.get_data(as_text=True), path


def test_drl012_rows_have_a_window_and_the_response_says_what_was_filtered(app: Any, client: Any, r: Any) -> None:
    ingest(app, r, gates(5, span_min=30))
    data = data_of(client.get(f"/api/metrics/average_gate_time/events?timeframe=1h&end={fmt_ms(END)}"))
    assert data["window"] == {"start": fmt_ms(END - HOUR_MS), "end": fmt_ms(END)} and data["unit"] == "minutes"
    assert data["counts"]["rows"] == 5 and data["counts"]["sum"] == pytest.approx(sum(30 + i for i in range(5)) / 60)
    assert all(parse_iso(e["timestamp"]) < END for e in data["events"])
    assert data["filters"] == {} and data["filtered"] is False
    # The export states the value's unit and precision, and rounds each run's minutes to it.
    text = client.get(f"/api/metrics/average_gate_time/events?timeframe=1h&end={fmt_ms(END)}&format=csv").get_data(
        as_text=True)
    exported = {row["id"]: row["value (minutes, 2 dp)"] for row in csv.DictReader(io.StringIO(text))}
    assert exported == {f"g{i:06d}": str(round((30 + i) / 60, 2)) for i in range(5)}


def test_drl013_the_grid_reads_blocks_like_the_api_pages(app: Any, auth: Any, client: Any, r: Any) -> None:
    from tests.integration.test_rbac_matrix import callback_body
    ingest(app, r, gates(500))
    c = app.server.test_client()
    auth.login(c, "qa_lead")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if "events-grid.getRowsResponse" in k]
    spec = {"kpi": "gates_failed", "timeframe": "24h", "end": END}

    def block(start: int, end: int) -> dict[str, Any]:
        body = callback_body(app, key, {("events-grid", "getRowsRequest"): {"startRow": start, "endRow": end},
                                        ("events-kpi", "data"): spec})
        res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
        assert res.status_code == 200, res.data[:300]
        return res.json["response"]
    first, later = block(0, 100), block(100, 200)
    api = data_of(client.get(f"/api/metrics/gates_failed/events?timeframe=24h&end={fmt_ms(END)}&limit=200"))
    assert [x["id"] for x in first["events-grid"]["getRowsResponse"]["rowData"]] == [e["id"] for e in api["events"][:100]]
    assert [x["id"] for x in later["events-grid"]["getRowsResponse"]["rowData"]] == [e["id"] for e in api["events"][100:]]
    assert first["events-grid"]["getRowsResponse"]["rowCount"] == later["events-grid"]["getRowsResponse"]["rowCount"] \
        == api["total"] == 167
    assert first["events-count"]["children"] == "167 gate runs failed"
    assert "events-count" not in later, "a later block leaves the count line as the first one wrote it"


def test_drl014_two_approvals_at_one_instant_are_one_row_as_on_the_card(app: Any, client: Any, r: Any) -> None:
    """A review cycle ends at a workflow's first approval: two approvals stamped the same
    millisecond are one cycle (the first by id), in the card and in its rows."""
    def ev(i: str, t: str, minutes: float, **data: Any) -> dict[str, Any]:
        return {"id": i, "type": "workflow." + t, "timestamp": at(minutes), "source": "orch",
                "data": {"workflow_id": "W1", **data}}
    ingest(app, r, [ev("rs", "review_started", 120, reviewer="qms-a"),
                    ev("ap-2", "review_completed", 60, reviewer="qms-a", verdict="approved", cost_usd=1),
                    ev("ap-1", "review_completed", 60, reviewer="qms-b", verdict="approved", cost_usd=1)])
    assert card(client, "executive", "average_review_cycle_time") == pytest.approx(1.0)
    data = data_of(client.get(f"/api/metrics/average_review_cycle_time/events?timeframe=24h&end={fmt_ms(END)}"))
    assert [(e["id"], e["value"]) for e in data["events"]] == [("ap-1", pytest.approx(1.0))]
    assert data["counts"] == {"rows": 1, "sum": pytest.approx(1.0)}
    assert [c["id"] for c in data["events"][0]["context"]] == ["rs"]


def test_drl015_entity_states_stay_right_when_the_request_cache_is_emptied(r: Any) -> None:
    """An export of any size keeps at most Ctx.CACHE_MAX entity states: past it the cache is
    emptied and what is wanted read again, including states it held a moment before."""
    from data.drilldown import Ctx
    for i in range(5):
        r.set(K.entity("wf", f"W{i}"), orjson.dumps({"c": [i, f"a{i}"], "_c": [["m", "x", i, 1, False]]}))
    ctx = Ctx(r, K)
    ctx.CACHE_MAX = 3
    assert ctx.states({("wf", "W0"), ("wf", "W1")}) == {("wf", f"W{i}"): {"c": [i, f"a{i}"]} for i in (0, 1)}
    got = ctx.states({("wf", "W1"), ("wf", "W2"), ("wf", "W3"), ("wf", "nope")})
    assert got == {**{("wf", f"W{i}"): {"c": [i, f"a{i}"]} for i in (1, 2, 3)}, ("wf", "nope"): None}
    assert len(ctx._states) <= 4


def test_drl016_events_sharing_a_millisecond_are_neither_repeated_nor_skipped_at_a_boundary(
        app: Any, client: Any, r: Any) -> None:
    """Producers that stamp whole seconds send many events with one timestamp: a page (or a
    chunk read from Redis) that ends among them goes on with the rest of them."""
    from data import rawstore
    same = [{**g, "timestamp": at(30)} for g in gates(25)]
    ingest(app, r, same + gates(5, span_min=60, gate="other"))
    want = sorted(((parse_iso(e["timestamp"]), e["id"]) for e in same + gates(5, span_min=60, gate="other")),
                  reverse=True)
    url = f"/api/metrics/total_gates_executed/events?timeframe=24h&end={fmt_ms(END)}&limit=7"
    seen, cursor = [], None
    while True:
        data = data_of(client.get(url + (f"&cursor={cursor}" if cursor else "")))
        seen += [(parse_iso(e["timestamp"]), e["id"]) for e in data["events"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == want
    chunks = list(rawstore.scan(r, K, ["workflow.quality_gate_executed"], END - 2 * HOUR_MS, END, chunk=4))
    assert [(ts, ident) for chunk in chunks for ts, ident, _ in chunk] == want and max(map(len, chunks)) == 4


def test_drl017_a_pinned_window_s_first_block_is_counted_once_per_staleness(app: Any, auth: Any, r: Any,
                                                                           monkeypatch: Any) -> None:
    """Counting a window reads every event in it: a pinned window's first block is kept for its
    timeframe's page staleness, at least a minute, shared by the viewers of that window and the
    web processes; a new window, or that time over, counts again (and sees what came meanwhile)."""
    import data.drilldown as dd
    from tests.integration.test_rbac_matrix import callback_body
    ingest(app, r, gates(60))
    counted: list[int] = []
    page = dd.page
    monkeypatch.setattr(dd, "page", lambda *a, **kw: counted.append(1) or page(*a, **kw))
    import dataclasses
    svc = app.server.extensions["qms"]
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, body_cache_s=5.0))   # 24h: 15 s
    clock = [now_ms()]
    import callbacks.drilldown as cd
    monkeypatch.setattr(cd, "now_ms", lambda: clock[0])
    [key] = [k for k in app.callback_map if "events-grid.getRowsResponse" in k]

    def first(role: str, end: int = END) -> str:
        c = app.server.test_client()
        auth.login(c, role)
        with c.session_transaction() as sess:
            csrf = sess["csrf"]
        body = callback_body(app, key, {("events-grid", "getRowsRequest"): {"startRow": 0, "endRow": 100},
                                        ("events-kpi", "data"): {"kpi": "gates_failed", "timeframe": "24h", "end": end}})
        res = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
        assert res.status_code == 200, res.data[:300]
        grids.append(res.json["response"]["events-grid"]["getRowsResponse"])
        return str(res.json["response"]["events-count"]["children"])
    grids: list[Any] = []
    assert first("qa_lead") == "20 gate runs failed" and counted == [1]
    assert first("admin") == "20 gate runs failed" and counted == [1]       # another viewer: the same count
    app.server.extensions["qms_drill_blocks"].clear()                       # another web process: from Redis
    assert first("admin") == "20 gate runs failed" and counted == [1]
    assert grids[2] == grids[0] and grids[0]["rowCount"] == 20 and len(grids[0]["rowData"]) == 20   # the same rows
    assert first("qa_lead", END - MINUTE_MS) != "" and counted == [1, 1]    # another window
    ingest(app, r, [dict(e, id=e["id"] + "-late") for e in gates(3, fail_every=1)])   # late events in the window
    assert first("qa_lead") == "20 gate runs failed" and counted == [1, 1]
    clock[0] += 30_000
    assert first("qa_lead") == "20 gate runs failed" and counted == [1, 1]   # 30 s later: still kept
    clock[0] += 60_001                                                      # a minute over (24h: 15 s)
    assert first("qa_lead") == "23 gate runs failed" and counted == [1, 1, 1]


def test_drl018_a_whole_window_in_three_round_trips_reads_what_scan_reads(app: Any, r: Any, monkeypatch: Any) -> None:
    """rawstore.window (the computed views' read of a whole window: counts, ids and bodies
    each in one pipeline) gives scan's hits, newest first by timestamp then id, cut at the
    limit, and says whether more were left out — over days, types, events sharing a
    millisecond, and windows that hold none."""
    from data import rawstore
    from data.events import GATE_TYPES
    from tests.helpers import busy_events
    same = [{**g, "timestamp": at(30)} for g in gates(25)]
    ingest(app, r, busy_events(40, END - HOUR_MS, seed=5, rate=0.05) + same)
    types = (*GATE_TYPES, "workflow.review_completed")
    cases = 0
    for s, e in ((END - 40 * HOUR_MS, END), (END - 2 * HOUR_MS, END), (END - 26 * HOUR_MS, END - 20 * HOUR_MS),
                 (END + HOUR_MS, END + 2 * HOUR_MS)):
        for tys in (types, GATE_TYPES[:1], ("workflow.review_completed",)):
            every = [h for chunk in rawstore.scan(r, K, tys, s, e) for h in chunk]
            for limit in (1, 7, 26, len(every), len(every) + 1, 10**6):
                got, more = rawstore.window(r, K, tys, s, e, limit)
                assert got == every[:limit], (s, e, tys, limit)
                assert more == (len(every) > limit), (s, e, tys, limit)
                cases += 1
    whole = [h for chunk in rawstore.scan(r, K, types, END - 40 * HOUR_MS, END) for h in chunk]
    assert len(whole) > 500 and len({h[0] // DAY_MS for h in whole}) >= 2 and cases == 72
    pipelines: list[int] = []
    execute = type(r.pipeline()).execute
    monkeypatch.setattr(type(r.pipeline()), "execute",
                        lambda self, *a, **k: pipelines.append(len(self.command_stack)) or execute(self, *a, **k))
    single = type(r).execute_command
    singles: list[Any] = []
    monkeypatch.setattr(type(r), "execute_command", lambda self, *a, **k: singles.append(a[0]) or single(self, *a, **k))
    assert rawstore.window(r, K, types, END - 40 * HOUR_MS, END, 10**6)[0] == whole
    assert len(pipelines) == 3 and not singles, (pipelines, singles)     # counts, ids, bodies
