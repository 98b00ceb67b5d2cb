"""The dashboard engine in the page: any definition drawn by pages.dashboard.board, every
widget filled by ONE refresh callback from its data sources, authorised per widget."""
from __future__ import annotations

import json
from typing import Any

import pytest

from dashboards import sources
from dashboards.schema import dump, validate
from data.ingest import Ingestor
from data.aggregator import Aggregator
from tests.helpers import busy_events, expand_static
from tests.integration.test_rbac_matrix import signed_in


def refresh_key(app: Any) -> str:
    [key] = [k for k in app.callback_map if "\"w-body\"" in k]
    return key


def refresh_body(app: Any, defn: dict[str, Any], widgets: list[str] | None = None, timeframe: str = "24h",
                 scope: str | None = None, trigger: str = "dash-timeframe.value",
                 due: dict[str, Any] | None = None) -> dict[str, Any]:
    key = refresh_key(app)
    ids = widgets if widgets is not None else [w["id"] for w in defn["widgets"]]
    outputs = [[{"id": {"type": "w-body", "w": w}, "property": "children"} for w in ids],
               {"id": "dash-window", "property": "children"}, {"id": "dash-freshness", "property": "children"},
               {"id": "url-sync", "property": "search"}, {"id": "dash-export", "property": "href"}]
    inputs = [{"id": "w-due", "property": "data", "value": due},
              {"id": "dash-timeframe", "property": "value", "value": timeframe},
              {"id": "dash-scope", "property": "value", "value": scope},
              {"id": "dash-gate", "property": "value", "value": None},
              {"id": "dash-agent", "property": "value", "value": None},
              {"id": "live-tick", "property": "data", "value": None},
              {"id": "dash-def-key", "property": "data", "value": None}]
    return {"output": key, "outputs": outputs, "inputs": inputs,
            "state": [{"id": "dash-def", "property": "data", "value": defn},
                      {"id": "theme", "property": "data", "value": "light"},
                      {"id": "dash-drawn", "property": "data", "value": True}], "changedPropIds": [trigger]}


def post(c: Any, csrf: str, body: dict[str, Any]) -> Any:
    return c.post("/_dash-update-component", data=json.dumps(body), content_type="application/json",
                  headers={"X-CSRFToken": csrf})


def route(app: Any, c: Any, csrf: str, path: str, search: str = "") -> dict[str, Any]:
    from tests.integration.test_rbac_matrix import parse_outputs
    [key] = [k for k in app.callback_map if "page.children" in k]
    body = {"output": key, "outputs": parse_outputs(key),
            "inputs": [{"id": "route-path", "property": "data", "value": path}],
            "state": [{"id": "url", "property": "search", "value": search},
                      {"id": "theme", "property": "data", "value": "light"}], "changedPropIds": ["route-path.data"]}
    res = post(c, csrf, body)
    assert res.status_code == 200, res.data[:500]
    return res.json["response"]["page"]["children"]


def walk(node: Any):
    if isinstance(node, dict) and node.get("namespace") == "qms_static":
        yield from walk(expand_static(node))              # a body's static part, read back from its HTML
        return
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def texts(node: Any) -> str:
    out = []
    for n in walk(node):
        ch = n.get("children") if isinstance(n, dict) else None
        if isinstance(ch, (str, int, float)):
            out.append(str(ch))
    return " | ".join(out)


def _gates(app: Any, r: Any) -> None:
    from data.keys import Keys
    from data.timeutil import fmt_ms, now_ms
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)
    svc.ingestor.ingest([
        {"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
         "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": i % 4 != 0, "execution_time": 30}}
        for i in range(8)] + [
        {"id": "rv", "type": "workflow.review_completed", "timestamp": ts, "source": "t",
         "data": {"workflow_id": "W1", "reviewer": "ann", "verdict": "approved", "cost_usd": 12.5,
                  "duration_hours": 1.5}}])
    Aggregator(r, Keys("qms")).drain()


def test_brd001_a_role_dashboard_is_its_definition_and_every_widget_draws_its_sources(app: Any, r: Any,
                                                                                       auth: Any) -> None:
    """The QA page lays out qa.yaml's widgets at their positions; ONE refresh request fills
    them all, and the gate table's cells are the engine's numbers."""
    _gates(app, r)
    c, csrf = signed_in(app, auth, "qa_lead")
    page = route(app, c, csrf, "/dashboards/qa")
    svc = app.server.extensions["qms"]
    shells = [n for n in walk(page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-shell"]
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    assert [s["id"]["w"] for s in shells] == [w["id"] for w in stored["widgets"]]
    grid = next(n for n in walk(page) if n.get("id") == "dash-grid")
    placed = {item["i"]: item for item in grid["layouts"]["lg"]}
    for w in stored["widgets"]:
        p = w["position"]
        assert {k: placed["wc-" + w["id"]][k] for k in "xywh"} == \
            {"x": p["x"], "y": p["y"], "w": p["width"], "h": p["height"]}
    assert grid["isDraggable"] is False        # dragging is for the edit mode
    assert not [n for n in walk(page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-denied"]
    res = post(c, csrf, refresh_body(app, stored, timeframe="1h"))
    assert res.status_code == 200, res.data[:500]
    bodies = res.json["response"]
    key = '{"type":"w-body","w":"qa-gate-table"}'
    gate_cells = texts(bodies[key]["children"])
    api = svc.engine.dashboard("qa", "1h")["data"]["widgets"]
    rate = next(w["data"]["current_value"] for w in api if w["id"] == "gate.lint.pass_rate")
    assert rate == 75.0
    assert "75.0%" in gate_cells and "lint" in gate_cells


def test_brd005_the_page_arrives_drawn_and_an_interval_redraws_only_its_widget(app: Any, r: Any,
                                                                                auth: Any) -> None:
    """The route's answer carries every body (no "loading…"), so the page needs no refresh to
    show; a widget's own interval (w-due) redraws that widget and leaves the others alone."""
    _gates(app, r)
    c, csrf = signed_in(app, auth, "qa_lead")
    page = route(app, c, csrf, "/dashboards/qa")
    bodies = {n["id"]["w"]: n for n in walk(page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-body"}
    assert bodies and not [w for w, n in bodies.items() if "loading…" in texts(n.get("children"))]
    assert "lint" in texts(bodies["qa-gate-table"]["children"])
    assert [n for n in walk(page) if n.get("id") == "dash-drawn"][0]["data"] is True
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    res = post(c, csrf, refresh_body(app, stored, trigger="w-due.data", due={"w": ["qa-gate-table"], "t": 1}))
    assert res.status_code == 200, res.data[:300]
    drawn = [k for k in res.json["response"] if k.startswith('{"type":"w-body"')]
    assert drawn == ['{"type":"w-body","w":"qa-gate-table"}']
    # Dash's call when the grid enters the page names every input: nothing to do for a page
    # that came drawn (204), every body for a grid the edit mode redrew without them.
    arrived = refresh_body(app, stored)
    arrived["changedPropIds"] = [f"{i['id']}.{i['property']}" for i in arrived["inputs"]]
    assert post(c, csrf, arrived).status_code == 204
    arrived["state"][-1]["value"] = False
    res = post(c, csrf, arrived)
    assert res.status_code == 200 and len([k for k in res.json["response"] if "w-body" in k]) == len(bodies)


def test_brd002_a_developer_s_forbidden_widget_says_not_permitted_and_no_request_returns_its_data(
        app: Any, r: Any, auth: Any) -> None:
    """Per-widget authorisation: a developer's personal dashboard holding the cost analysis
    widget shows 'not permitted' with the permission, has no body to refresh, and a hand-made
    refresh request for it is refused (403) — the rest of the dashboard works."""
    _gates(app, r)
    c, csrf = signed_in(app, auth, "developer")
    doc = {"id": "mine", "title": "Mine", "widgets": [
        {"id": "cost", "type": "comparison_chart", "title": "Cost by team",
         "data_sources": [{"source": "breakdown", "name": "cost_by_team"}]},
        {"id": "pending", "type": "kpi_card", "title": "Pending",
         "data_sources": [{"source": "kpi", "metric": "pending_reviews"}]}]}
    res = c.post("/api/dashboards", json=doc, headers={"X-CSRFToken": csrf})
    assert res.status_code in (200, 201), res.data[:500]
    page = route(app, c, csrf, "/dashboards/mine")
    denied = [n for n in walk(page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-denied"]
    assert [d["id"]["w"] for d in denied] == ["cost"]
    assert "view:cost_analysis" in texts(denied[0])
    bodies = [n["id"]["w"] for n in walk(page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-body"]
    assert bodies == ["pending"]
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    assert post(c, csrf, refresh_body(app, stored, ["cost"])).status_code == 403
    assert post(c, csrf, refresh_body(app, stored, ["pending", "cost"])).status_code == 403
    ok = post(c, csrf, refresh_body(app, stored, ["pending"]))
    assert ok.status_code == 200, ok.data[:300]
    assert "12.5" not in ok.get_data(as_text=True)


def test_brd003_a_dashboard_s_own_filter_holds_without_a_picker_and_live_widgets_poll_without_a_channel(
        app: Any, r: Any, auth: Any) -> None:
    """A dashboard fixed to one team (filters.team, no scope picker) shows that team's numbers
    in the page as in its CSV; on a page with no live data channel (a developer's), "live"
    widgets poll at the app's refresh instead of waiting for pushes that never come."""
    from data.keys import Keys
    from data.timeutil import fmt_ms, now_ms
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 10 * 60_000)
    events = []
    for i, (team, repo) in enumerate((("core", "api"), ("core", "api"), ("web", "ui"))):
        events += [{"id": f"pr{i}", "type": "workflow.pr_created", "timestamp": ts, "source": "t",
                    "data": {"workflow_id": f"W{i}", "author": f"a{i}", "team": team, "repository": repo,
                             "pr_number": i + 1}},
                   {"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "t",
                    "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": True, "execution_time": 5}}]
    assert svc.ingestor.ingest(events).rejected == 0
    Aggregator(r, Keys("qms")).drain()
    c, csrf = signed_in(app, auth, "qa_lead")
    doc = {"id": "core", "title": "Core", "filters": {"team": "core"}, "filter_controls": [], "widgets": [
        {"id": "runs", "type": "kpi_card", "title": "Gate runs",
         "data_sources": [{"source": "kpi", "metric": "total_gates_executed"}]}]}
    assert c.post("/api/dashboards", json=doc, headers={"X-CSRFToken": csrf}).status_code in (200, 201)
    page = route(app, c, csrf, "/dashboards/core", "?timeframe=1h")
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    res = post(c, csrf, refresh_body(app, stored, timeframe="1h"))
    assert res.status_code == 200, res.data[:300]
    shown = texts(res.json["response"]['{"type":"w-body","w":"runs"}']["children"])
    assert "2" in shown.split(" | ") and "3" not in shown.split(" | "), shown
    csv = c.get("/api/dashboards/core/widgets/runs/data?timeframe=1h").json["response"]["data"]["rows"]
    assert csv[0]["value"] == 2
    d, dcsrf = signed_in(app, auth, "developer")
    dev_page = route(app, d, dcsrf, "/dashboards/developer")
    every = [n for n in walk(dev_page) if n.get("id") == "w-every"][0]["data"]
    clock = [n for n in walk(dev_page) if n.get("id") == "w-clock"][0]
    live = [w["id"] for w in [n for n in walk(dev_page) if n.get("id") == "dash-def"][0]["data"]["widgets"]
            if w["refresh_interval"] == "live"]
    assert live and all(every[w] == svc.settings.refresh_ms for w in live), every
    assert clock["disabled"] is False and all(ms % clock["interval"] == 0 for ms in every.values()), clock
    assert not [n for n in walk(dev_page) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-edit"], \
        "view mode: no edit strips"
    qa_page = route(app, c, csrf, "/dashboards/qa")          # pushed there: no polling
    assert "gates_passed" not in [n for n in walk(qa_page) if n.get("id") == "w-every"][0]["data"]


def test_brd004_a_qa_lead_shares_a_dashboard_with_the_qa_lead_role(app: Any, r: Any, auth: Any) -> None:
    """Built as a personal dashboard, shared from the page's Share dialog with the qa_lead role:
    another QA lead then finds it in their list and opens it; a developer does not see it; the
    change is a version and is audited. Sharing needs manage:dashboards."""
    _gates(app, r)                                      # lint: 6 of 8 runs passed
    c, csrf = signed_in(app, auth, "qa_lead")
    doc = {"id": "team-quality", "title": "Team quality", "widgets": [
        {"id": "rate", "type": "gauge_chart", "title": "Lint pass rate",
         "data_sources": [{"source": "kpi", "metric": "gate.lint.pass_rate"}],
         "alert_thresholds": {"warning": 95, "critical": 85, "direction": "below"}}]}
    assert c.post("/api/dashboards", json=doc, headers={"X-CSRFToken": csrf}).status_code in (200, 201)
    page = route(app, c, csrf, "/dashboards/team-quality")
    # The gauge shows the KPI the events make (6 of 8 lint runs passed), at its threshold's level.
    want = 100.0 * sum(i % 4 != 0 for i in range(8)) / 8
    dials = [n for n in walk(page) if n.get("data-widget") == "gauge_chart"]
    assert len(dials) == 1, texts(page)[-600:]
    dial = dials[0]
    assert want == 75.0 and dial["data-value"] == want and dial["aria-valuetext"] == "75.0%"
    assert (dial["data-level"], dial["data-colour"]) == ("critical", "danger")
    assert [n for n in walk(page) if n.get("id") == "dash-share-open"], "a QA lead may share"
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    [key] = [k for k in app.callback_map if "dash-share-status.children" in k]
    outputs = [{"id": part.rpartition(".")[0], "property": part.rpartition(".")[2]}
               for part in key.strip(".").split("...")]
    body = {"output": key, "outputs": outputs,
            "inputs": [{"id": "dash-share-save", "property": "n_clicks", "value": 1}],
            "state": [{"id": "dash-share-roles", "property": "value", "value": ["qa_lead"]},
                      {"id": "dash-share-teams", "property": "value", "value": []},
                      {"id": "dash-share-users", "property": "value", "value": ""},
                      {"id": "dash-def", "property": "data", "value": stored}],
            "changedPropIds": ["dash-share-save.n_clicks"]}
    res = post(c, csrf, body)
    assert res.status_code == 200, res.data[:300]
    assert "Shared with role qa_lead" in json.dumps(res.json["response"]["dash-share-status"])
    other = app.server.test_client()
    auth.login(other, "qa_lead", name="second-qa")
    listed = other.get("/api/dashboards").json["response"]["data"]
    listed = listed.get("dashboards", listed) if isinstance(listed, dict) else listed
    assert "team-quality" in [d["id"] for d in listed]
    got = other.get("/api/dashboards/team-quality").json["response"]["data"]
    assert got["visibility"]["roles"] == ["qa_lead"] and got["kind"] == "shared"
    dev = app.server.test_client()
    auth.login(dev, "developer")
    assert dev.get("/api/dashboards/team-quality").status_code == 404
    versions = c.get("/api/dashboards/team-quality/versions").json["response"]["data"]
    assert "qa_lead" in json.dumps(versions)
    entries = app.server.extensions["qms"].audit.query(action_prefix="dashboard.shared_saved", limit=5)
    assert entries and entries[0]["data"]["dashboard"] == "team-quality"
    d, dcsrf = signed_in(app, auth, "developer")            # no manage:dashboards: refused
    assert post(d, dcsrf, body).status_code == 403


class RunsPage:
    """A qa_lead's one-card dashboard of gate runs, its bodies' draws counted, and more runs on
    demand (`gates`): each call a new data version."""

    def __init__(self, app: Any, r: Any, auth: Any, monkeypatch: Any) -> None:
        import callbacks.dashboard as board
        from data.timeutil import fmt_ms, now_ms
        self.app, self.r = app, r
        self.svc = app.server.extensions["qms"]
        self.drawn: list[str] = []
        render = board.renderer.render
        monkeypatch.setattr(board.renderer, "render",
                            lambda widget, *a, **kw: self.drawn.append(widget.id) or render(widget, *a, **kw))
        self.ts = fmt_ms(now_ms() - 10 * 60_000)
        self.gates(range(2))
        self.c, self.csrf = signed_in(app, auth, "qa_lead")
        doc = {"id": "runs", "title": "Runs", "widgets": [
            {"id": "runs", "type": "kpi_card", "title": "Gate runs",
             "data_sources": [{"source": "kpi", "metric": "total_gates_executed"}]}]}
        assert self.c.post("/api/dashboards", json=doc, headers={"X-CSRFToken": self.csrf}).status_code in (200, 201)
        page = route(app, self.c, self.csrf, "/dashboards/runs")
        self.stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
        assert self.drawn == ["runs"]

    def gates(self, ids: range) -> None:
        from data.keys import Keys
        assert self.svc.ingestor.ingest([{"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": self.ts,
                                          "source": "t", "data": {"workflow_id": f"W{i}", "gate_name": "lint",
                                                                  "passed": True, "execution_time": 5}}
                                         for i in ids]).rejected == 0
        Aggregator(self.r, Keys("qms")).drain()


def test_brd006_a_body_is_drawn_once_per_data_version_and_viewer_class(app: Any, r: Any, auth: Any,
                                                                       monkeypatch: Any) -> None:
    """The drawn bodies are kept (callbacks.dashboard.BodyCache): the same refresh again, or
    another viewer with the same roles (no team scope), draws nothing; new data or another
    theme draws again, and the numbers follow the new data. With `body_cache_s` a body is
    reused that long across new data versions, then drawn again."""
    p = RunsPage(app, r, auth, monkeypatch)
    c, csrf, stored, drawn, gates = p.c, p.csrf, p.stored, p.drawn, p.gates

    def shown(client: Any, token: str, theme: str = "light") -> list[str]:
        body = refresh_body(app, stored)
        body["state"][1]["value"] = theme
        res = post(client, token, body)
        assert res.status_code == 200, res.data[:300]
        return texts(res.json["response"]['{"type":"w-body","w":"runs"}']["children"]).split(" | ")

    assert "2" in shown(c, csrf) and drawn == ["runs"], drawn          # the page's own body, again
    other = app.server.test_client()
    assert auth.login(other, "qa_lead", name="quinn").status_code == 302
    with other.session_transaction() as sess:
        other_csrf = sess["csrf"]
    assert "2" in shown(other, other_csrf) and drawn == ["runs"], "the same roles, no team scope: shared"
    gates(range(2, 5))                                                  # a new data version
    assert "5" in shown(c, csrf) and drawn == ["runs"] * 2
    assert "5" in shown(c, csrf) and drawn == ["runs"] * 2
    shown(c, csrf, "dark")
    assert drawn == ["runs"] * 3
    app.server.extensions["qms_bodies"].stale_ms = 60_000              # QMS_BODY_CACHE_S=60
    gates(range(5, 7))
    assert "5" in shown(c, csrf) and drawn == ["runs"] * 3, "drawn 60 s ago at most: reused"
    app.server.extensions["qms_bodies"].stale_ms = 0
    assert "7" in shown(c, csrf) and drawn == ["runs"] * 4


def test_brd007b_the_page_preloads_its_layout_and_keeps_its_assets(app: Any, auth: Any) -> None:
    """The page's HTML asks for the layout and the callback graph in its head (preloads the
    renderer's own fetches take), and the assets it names by modification time are cacheable."""
    import re
    c, _ = signed_in(app, auth, "qa_lead")
    page = c.get("/dashboards/qa").get_data(as_text=True)
    head = page.split("</head>")[0]
    assert re.findall(r'<link rel="preload" href="([^"]+)" as="fetch" crossorigin="anonymous">', head) == \
        ["/_dash-layout", "/_dash-dependencies"]
    assets = re.findall(r'(/assets/[^"?]+\.(?:css|js)\?m=[0-9.]+)', page)
    assert assets, "the page names its assets with their modification time"
    for url in assets:
        res = c.get(url)
        assert res.status_code == 200 and res.cache_control.max_age == 365 * 24 * 3600, (url, res.headers)
    # the layout itself stays the signed-in user's and is never cached
    assert c.get("/_dash-layout").headers["Cache-Control"] == "no-store"


def test_brd008_a_body_is_the_viewer_s_own_where_team_scope_applies() -> None:
    """Viewers share a drawn body by roles and permissions, except where the roles' sanitising
    depends on the viewer's team (rbac other_teams): then by viewer. A body of `kpi` sources
    alone (cards, gauges: aggregates, nothing sanitised) is shared by every viewer allowed it,
    on a page with charts or not."""
    from types import SimpleNamespace
    import callbacks.dashboard as board
    from dashboards.schema import Widget
    card = Widget.model_validate({"id": "k", "type": "kpi_card", "title": "k",
                                  "data_sources": [{"source": "kpi", "metric": "completed_today"}]})
    w = Widget.model_validate({"id": "t", "type": "table", "title": "t",
                               "data_sources": [{"source": "state", "name": "active_workflows"}]})

    def key(name: str, roles: tuple[str, ...], scoped: bool, perms: tuple[str, ...] = ("a",), widget: Any = w,
            annotated: bool = False) -> Any:
        sctx = SimpleNamespace(principal=SimpleNamespace(name=name, roles=roles, permissions=frozenset(perms)),
                               sanitizer=SimpleNamespace(other_teams=object() if scoped else None), end_ms=None)
        original = sources.cacheable_identity
        sources.cacheable_identity = lambda widget, ctx: ["same sources"]
        try:
            return board.BodyCache.key(widget, sctx, "light", {"timeframe": "24h"}, annotated)
        finally:
            sources.cacheable_identity = original

    assert key("ann", ("qa_lead",), False) == key("bob", ("qa_lead",), False)
    assert key("ann", ("qa_lead",), False) != key("ann", ("executive",), False)
    assert key("ann", ("developer",), True) != key("bob", ("developer",), True)
    # the same roles with other permissions (a narrowed credential) share nothing either
    assert key("ann", ("qa_lead",), False) != key("bob", ("qa_lead",), False, ("a", "view:cost_analysis"))
    # a card: one body for the executive, the admin and a team-scoped viewer, with markers asked or not
    assert key("ann", ("executive",), False, widget=card) == key("bob", ("admin",), False, ("a", "b"), widget=card) \
        == key("cid", ("developer",), True, widget=card, annotated=True)
    trend = Widget.model_validate({"id": "s", "type": "metric_trend", "title": "s",
                                   "data_sources": [{"source": "series", "metric": "completed_today"}]})
    assert key("ann", ("executive",), False, widget=trend, annotated=True) != \
        key("ann", ("executive",), False, widget=trend) != key("bob", ("admin",), False, widget=trend)


def test_brd007_the_layout_a_page_asks_for_comes_with_that_page_drawn(app: Any, r: Any, auth: Any) -> None:
    """`GET /_dash-layout` from a page of the site (its Referer) carries that page drawn as the
    router would draw it — the viewer's navigation, every body, `page-drawn` naming the path —
    so the browser renders it from its first answer; another viewer's permissions hold there
    as in the router; without a Referer of this site the frame comes empty and the router draws."""
    _gates(app, r)
    c, csrf = signed_in(app, auth, "qa_lead")

    def layout(referer: str | None, client: Any = c) -> dict[str, Any]:
        res = client.get("/_dash-layout", headers={"Referer": referer} if referer else {})
        assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store", res.status_code
        return res.json

    def by_id(tree: Any, ident: str) -> dict[str, Any]:
        return next(n for n in walk(tree) if n.get("id") == ident)

    drawn = layout("http://localhost/dashboards/qa?timeframe=7d")
    assert by_id(drawn, "page-drawn")["data"] == "/dashboards/qa"
    routed = route(app, c, csrf, "/dashboards/qa", "?timeframe=7d")
    assert by_id(drawn, "dash-def")["data"] == by_id(routed, "dash-def")["data"]
    assert by_id(drawn, "dash-timeframe")["value"] == "7d"
    bodies = {n["id"]["w"]: texts(n) for n in walk(drawn) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-body"}
    assert bodies and "loading…" not in " ".join(bodies.values())
    assert bodies == {n["id"]["w"]: texts(n) for n in walk(routed)
                      if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-body"}
    assert "Quality" in texts(by_id(drawn, "nav-links")) and "qa_lead" in texts(by_id(drawn, "nav-user"))
    for empty in (None, "http://elsewhere.example/dashboards/qa"):
        frame = layout(empty)
        assert by_id(frame, "page-drawn")["data"] is None and by_id(frame, "page").get("children") is None
    d, _ = signed_in(app, auth, "developer")
    refused = layout("http://localhost/dashboards/qa", d)
    assert "Quality" not in texts(by_id(refused, "nav-links")) and not [
        n for n in walk(refused) if isinstance(n.get("id"), dict) and n["id"].get("type") == "w-body"]
    assert app.server.test_client().get("/_dash-layout", headers={"Referer": "http://localhost/dashboards/qa"}
                                        ).status_code == 401


def test_brd009_a_page_s_draw_reads_the_version_once_and_writes_its_caches_in_one_pipeline(
        app: Any, r: Any, auth: Any, monkeypatch: Any) -> None:
    """data.cache_io in the refresh: drawing the whole QA page from cold reads the data version
    once (it was read for every source and chart) and sends no cache write of its own (the
    bodies, sources' results and series go in one pipeline at the end) — and what it kept is
    there for the next request, which draws nothing."""
    import callbacks.dashboard as board
    from data import partition
    _gates(app, r)
    svc = app.server.extensions["qms"]
    c, csrf = signed_in(app, auth, "qa_lead")
    page = route(app, c, csrf, "/dashboards/qa")
    stored = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    reads, sets, drawn = [], [], []
    read_version = partition._read_version
    monkeypatch.setattr(partition, "_read_version", lambda *a: reads.append(1) or read_version(*a))
    plain_set = svc.redis.set
    monkeypatch.setattr(svc.redis, "set", lambda *a, **kw: sets.append(a[0]) or plain_set(*a, **kw))
    render = board.renderer.render
    monkeypatch.setattr(board.renderer, "render", lambda widget, *a, **kw: drawn.append(widget.id) or render(widget, *a, **kw))
    res = post(c, csrf, refresh_body(app, stored, timeframe="7d"))
    assert res.status_code == 200, res.data[:300]
    assert len(drawn) == len(stored["widgets"]) and len(reads) == 1 and sets == [], (len(drawn), reads, sets)
    first = texts(res.json["response"])
    assert r.keys("qms:cache:body:*") and r.keys("qms:cache:src:*")
    app.server.extensions["qms_bodies"].clear()       # this process forgets: Redis still has them
    again = post(c, csrf, refresh_body(app, stored, timeframe="7d"))
    assert len(drawn) == len(stored["widgets"]), "the second request found every body in Redis"
    assert texts(again.json["response"]) == first


def test_brd010_a_draw_whose_client_left_is_abandoned(app: Any, r: Any, auth: Any, monkeypatch: Any) -> None:
    """Under overload the gate's oldest requests are past their client's timeout: a refresh
    whose connection the client closed draws nothing and answers 499 (nobody reads it), one
    whose client is still there (or sent its next request already) is drawn."""
    import socket

    import callbacks.dashboard as board
    _gates(app, r)
    c, csrf = signed_in(app, auth, "qa_lead")
    stored = [n for n in walk(route(app, c, csrf, "/dashboards/qa")) if n.get("id") == "dash-def"][0]["data"]
    drawn: list[str] = []
    render = board.renderer.render
    monkeypatch.setattr(board.renderer, "render", lambda widget, *a, **kw: drawn.append(widget.id) or render(widget, *a, **kw))

    def refresh(server_side: socket.socket, timeframe: str) -> Any:
        return c.post("/_dash-update-component", data=json.dumps(refresh_body(app, stored, timeframe=timeframe)),
                      content_type="application/json", headers={"X-CSRFToken": csrf},
                      environ_base={"gunicorn.socket": server_side})

    ours, theirs = socket.socketpair()
    res = refresh(ours, "7d")
    assert res.status_code == 200 and len(drawn) == len(stored["widgets"])
    theirs.sendall(b"GET /next HTTP/1.1\r\n")                       # the next request, unread: still there
    assert refresh(ours, "30d").status_code == 200 and len(drawn) == 2 * len(stored["widgets"])
    assert ours.recv(100) == b"GET /next HTTP/1.1\r\n"              # (as the server would, later)
    theirs.close()                                                   # the client gave up
    res = refresh(ours, "4h")
    assert res.status_code == 499 and len(drawn) == 2 * len(stored["widgets"]), (res.status_code, len(drawn))
    ours.close()
    # The layout a page asks for comes drawn (serve_layout): its client gone, a 499 as well —
    # not "drawing the first page failed" with a traceback and the empty frame sent to nobody.
    ours, theirs = socket.socketpair()
    theirs.close()
    before = len(drawn)
    with caplog_errors() as errors:                                  # a view nobody drew: 1h
        res = c.get("/_dash-layout", headers={"Referer": "http://localhost/dashboards/qa?timeframe=1h"},
                    environ_base={"gunicorn.socket": ours})
    assert res.status_code == 499 and not errors and len(drawn) == before, (res.status_code, errors, drawn[before:])
    res = c.get("/_dash-layout", headers={"Referer": "http://localhost/dashboards/qa?timeframe=1h"})
    assert res.status_code == 200 and len(drawn) == before + len(stored["widgets"])   # (the view does draw)
    ours.close()


class caplog_errors:
    """The ERROR lines logged inside the block (a list, filled as they come)."""

    def __enter__(self) -> list[str]:
        import logging
        self.found: list[str] = []
        outer = self

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.found.append(record.getMessage())
        self.handler = Keep(level=logging.ERROR)
        logging.getLogger().addHandler(self.handler)
        return self.found

    def __exit__(self, *exc: Any) -> None:
        import logging
        logging.getLogger().removeHandler(self.handler)


def test_brd011_peer_left_reads_nothing_and_waits_for_nothing() -> None:
    """callbacks.dashboard.peer_left on real sockets, as gunicorn's and gevent's servers hand
    them over: open and quiet, open with bytes pending (left unread), closed, reset."""
    import socket
    import struct

    from callbacks.dashboard import peer_left
    ours, theirs = socket.socketpair()
    assert peer_left({"gunicorn.socket": ours}) is False
    theirs.sendall(b"x")
    assert peer_left({"gunicorn.socket": ours}) is False and ours.recv(1) == b"x"      # not consumed
    rfile = ours.makefile("rb")                                      # gevent's pywsgi: wsgi.input.rfile

    class Input:
        pass
    inp = Input()
    inp.rfile = rfile                                                # type: ignore[attr-defined]
    assert peer_left({"wsgi.input": inp}) is False
    theirs.close()
    assert peer_left({"wsgi.input": inp}) is True and peer_left({"gunicorn.socket": ours}) is True
    assert peer_left({}) is False                                    # no socket known: never "left"
    ours.close()
    assert peer_left({"gunicorn.socket": ours}) is True              # closed on our side

    srv = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cli.close()                                                      # RST
    assert peer_left({"gunicorn.socket": conn}) is True
    conn.close()
    srv.close()


def test_brd012_an_overloaded_server_shows_a_recent_body_instead_of_queueing_its_draw(
        app: Any, r: Any, auth: Any, monkeypatch: Any) -> None:
    """While the draw gate is busy, a widget whose body was drawn less than
    BodyCache.overload_ms ago (4 × its staleness, at least 30 s) is answered with that body at
    once, and the page's freshness line says how old; a free gate draws the new data again.
    With bodies kept per data version only (body_cache_s = 0) nothing old is ever shown."""
    import callbacks.dashboard as board
    p = RunsPage(app, r, auth, monkeypatch)
    c, csrf, stored, drawn, gates = p.c, p.csrf, p.stored, p.drawn, p.gates
    busy = [True]
    monkeypatch.setattr(board.DrawGate, "busy", lambda self: busy[0])

    def shown() -> tuple[str, str]:
        res = post(c, csrf, refresh_body(app, stored))
        assert res.status_code == 200, res.data[:300]
        out = res.json["response"]
        return texts(out['{"type":"w-body","w":"runs"}']["children"]), out["dash-freshness"]["children"]

    gates(range(2, 5))                                   # a new version: the body is out of date
    body, fresh = shown()                                # bodies per version only: drawn, though busy
    assert "5" in body.split(" | ") and drawn == ["runs"] * 2 and "busy" not in fresh
    import re

    from data.timeutil import now_ms
    said = re.fullmatch(r"updated (\d+)s ago", fresh)      # the age of the last batch applied
    assert said and abs(int(said.group(1)) - (now_ms() - int(r.hget("qms:meta", "last_batch_ms"))) // 1000) <= 1, fresh
    assert board.freshness_text(None) == "no data yet"
    app.server.extensions["qms_bodies"].stale_ms = 1.0   # QMS_BODY_CACHE_S > 0: overload window 30 s
    gates(range(5, 7))
    body, fresh = shown()
    assert "5" in body.split(" | ") and drawn == ["runs"] * 2, (body, drawn)
    assert "server busy: 1 widget drawn up to 0s ago" in fresh, fresh
    busy[0] = False                                      # the gate free: the new data drawn
    body, fresh = shown()
    assert "7" in body.split(" | ") and drawn == ["runs"] * 3 and "busy" not in fresh
    # A page with time series (their annotation markers fetched when one is drawn), busy, at a
    # timeframe nobody drew: nothing recent to show, every widget drawn.
    page = route(app, c, csrf, "/dashboards/qa")
    qa = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    busy[0] = True
    res = post(c, csrf, refresh_body(app, qa, timeframe="30d"))
    assert res.status_code == 200, res.data[:300]
    assert drawn.count("qa-gates") == 2 and "busy" not in res.json["response"]["dash-freshness"]["children"]


def hold_turn(gate: Any) -> tuple[Any, Any, Any]:
    """A thread taking its turn at the gate and keeping it until told: (it, in, leave)."""
    import threading
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn():
            inside.set()
            leave.wait(5)
    t = threading.Thread(target=hold)
    t.start()
    return t, inside, leave


def test_brd013_the_draw_gate_says_when_a_draw_would_wait() -> None:
    import threading

    from callbacks.dashboard import DrawGate
    gate = DrawGate(1)
    assert not gate.busy() and not DrawGate(0).busy()

    def holder() -> tuple[threading.Thread, threading.Event, threading.Event]:
        return hold_turn(gate)

    first, first_in, first_leave = holder()
    assert first_in.wait(5) and gate.busy() and gate.active == 1
    second, second_in, second_leave = holder()
    for _ in range(100):
        if gate.waiting:
            break
        threading.Event().wait(0.01)
    assert gate.waiting == 1 and gate.busy() and not second_in.is_set()
    first_leave.set()
    first.join(5)
    assert second_in.wait(5) and gate.waiting == 0 and gate.active == 1 and gate.busy()   # the waiter's turn
    second_leave.set()
    second.join(5)
    assert gate.active == 0 and not gate.busy()


def test_brd014_a_web_process_counts_and_logs_what_its_draws_did(app: Any, r: Any, auth: Any, monkeypatch: Any,
                                                                   caplog: Any) -> None:
    """Each fill counts its widgets' bodies as kept, shown recent (busy) or drawn, by view
    (callbacks/draw_stats.py), and a line is logged once the period is over."""
    import logging

    import callbacks.dashboard as board
    p = RunsPage(app, r, auth, monkeypatch)          # its first page drew the card once
    stats = app.server.extensions["qms_draw_stats"]
    first = stats.snapshot()
    assert (first["fills"], first["kept"], first["drawn"]) == (1, 0, 1), first
    assert first["by_view"] == {"runs 24h": 1} and first["waits"] == 1
    post(p.c, p.csrf, refresh_body(app, p.stored))   # the same version: kept
    p.gates(range(2, 4))
    busy = [True]
    monkeypatch.setattr(board.DrawGate, "busy", lambda self: busy[0])
    app.server.extensions["qms_bodies"].stale_ms = 1.0
    post(p.c, p.csrf, refresh_body(app, p.stored))   # a new version, busy: the recent body
    busy[0] = False
    post(p.c, p.csrf, refresh_body(app, p.stored, timeframe="7d"))     # another view: drawn
    snap = stats.snapshot()
    assert (snap["fills"], snap["kept"], snap["recent"], snap["drawn"]) == (4, 1, 1, 2), snap
    assert snap["by_view"] == {"runs 24h": 1, "runs 7d": 1}, snap
    stats.period_s = 0.001                           # the period over: the next fill logs and resets
    with caplog.at_level(logging.INFO, logger="qms.draws"):
        post(p.c, p.csrf, refresh_body(app, p.stored, timeframe="7d"))
    said = [rec.getMessage() for rec in caplog.records if rec.name == "qms.draws"]
    assert len(said) == 1 and "5 fills, bodies 2 kept / 1 recent / 2 drawn" in said[0], said
    assert "drawn by view: runs 24h 1, runs 7d 1" in said[0], said
    assert stats.snapshot()["fills"] == 0


def test_brd015_a_congested_server_shows_an_older_body_up_to_its_limit(app: Any, r: Any, auth: Any,
                                                                       monkeypatch: Any) -> None:
    """While draws queue past QMS_DRAW_MAX_WAIT_S, a page takes a kept body up to
    QMS_OVERLOAD_MAX_AGE_S old (not only 4 × its staleness), saying how old; merely busy, the
    4 × staleness window holds; past the limit, drawn. Bodies stay in Redis that long."""
    import callbacks.dashboard as board
    from data.timeutil import now_ms
    p = RunsPage(app, r, auth, monkeypatch)
    cache = app.server.extensions["qms_bodies"]
    cache.stale_ms = 1.0                                 # overload window 30 s
    assert cache.max_age_ms == 600_000                   # the default limit
    wait, busy = [10.0], [False]
    monkeypatch.setattr(board.DrawGate, "busy", lambda self: busy[0])
    monkeypatch.setattr(board.DrawGate, "expected_wait_s", lambda self: wait[0])
    shift = [0]
    monkeypatch.setattr(board, "now_ms", lambda: now_ms() + shift[0])

    def shown() -> tuple[str, str]:
        res = post(p.c, p.csrf, refresh_body(app, p.stored))
        assert res.status_code == 200, res.data[:300]
        out = res.json["response"]
        return texts(out['{"type":"w-body","w":"runs"}']["children"]), out["dash-freshness"]["children"]

    p.gates(range(2, 5))                                 # new data: 5 runs
    post(p.c, p.csrf, refresh_body(app, p.stored))       # the gate free: drawn
    assert p.drawn == ["runs", "runs"]
    assert r.ttl(next(iter(r.scan_iter("qms:cache:body:*")))) > 500
    p.gates(range(5, 7))
    busy[0] = True
    shift[0] = 300_000                                   # 5 minutes later, congested: shown, how old said
    body, fresh = shown()
    assert "5" in body.split(" | ") and p.drawn == ["runs"] * 2, (body, p.drawn)
    assert "server busy: 1 widget drawn up to 5 min ago" in fresh, fresh
    wait[0] = 1.0                                        # busy, not congested: 5 min > 30 s, drawn
    body, fresh = shown()
    assert "7" in body.split(" | ") and p.drawn == ["runs"] * 3 and "busy" not in fresh, (body, fresh)
    p.gates(range(7, 8))
    wait[0] = 10.0
    shift[0] += 601_000                                  # past the limit: drawn though congested
    body, fresh = shown()
    assert "8" in body.split(" | ") and p.drawn == ["runs"] * 4 and "busy" not in fresh, (body, fresh)


def test_brd016_the_draw_gate_expects_the_wait_fills_had_lately() -> None:
    """Observed waits (a moving average), not the queue times a turn's length: under overload
    many turns end at once when their client has left, which says nothing of the wait."""
    import threading
    import time as _time

    from callbacks.dashboard import DrawGate
    gate = DrawGate(1)
    assert gate.expected_wait_s() == 0.0                 # free
    with gate.turn():
        pass
    assert gate.wait_s < 0.05                            # no wait
    t, inside, leave = hold_turn(gate)
    inside.wait(5)
    threading.Timer(0.3, leave.set).start()
    with gate.turn():                                    # waited ~0.3 s for the holder
        pass
    t.join(5)
    assert 0.3 * 0.2 * 0.8 <= gate.wait_s <= 0.2 * 1.0 + 0.05, gate.wait_s
    assert gate.expected_wait_s() == 0.0                 # free again: no wait expected
    gate.active = 1
    assert gate.expected_wait_s() == gate.wait_s         # busy: the recent waits
    gate.active = 0


def test_brd017_live_reads_and_refusals_are_drawn_without_a_turn_at_the_gate(app: Any, r: Any, auth: Any,
                                                                             monkeypatch: Any) -> None:
    """A widget whose sources are never kept (system health: read every time) cannot be shown
    from before, so every operational page waited its turn for it while draws queued (the
    500-user run's operational refreshes stayed at 30 s when the others came at once). Such a
    widget, and one the viewer may not see, is drawn at once; the rest still take their turn."""
    import contextlib

    import callbacks.dashboard as board
    from dashboards.schema import Widget
    _gates(app, r)
    c, csrf = signed_in(app, auth, "operations")
    ops = [n for n in walk(route(app, c, csrf, "/dashboards/operational")) if n.get("id") == "dash-def"][0]["data"]
    turns: list[int] = []

    @contextlib.contextmanager
    def counted(self: Any) -> Any:
        turns.append(1)
        yield
    monkeypatch.setattr(board.DrawGate, "turn", counted)
    res = post(c, csrf, refresh_body(app, ops, widgets=["ops-health"]))
    assert res.status_code == 200 and not turns, (res.status_code, turns)
    health = texts(res.json["response"]['{"type":"w-body","w":"ops-health"}']["children"])
    assert "Redis" in health or "redis" in health, health
    post(c, csrf, refresh_body(app, ops, timeframe="7d"))          # the rest of the page: drawn in turn
    assert turns == [1]
    def w(*ds: dict[str, Any]) -> Widget:
        return Widget.model_validate({"id": "x", "type": "table", "title": "x", "data_sources": list(ds)})
    from auth.principal import Principal
    from dashboards.sources import OPERATIONAL
    dev = Principal(name="d", roles=("developer",), permissions=frozenset({"view:developer_dashboard"}))
    ops_p = Principal(name="o", roles=("operations",), permissions=frozenset({OPERATIONAL}))
    health, agents = {"source": "state", "name": "health"}, {"source": "state", "name": "agents"}
    assert board.light(w(health), ops_p) and board.light(w(health), dev)     # live; refused
    assert board.light(w(agents), dev) and not board.light(w(agents), ops_p)  # refused; kept, so in turn
    assert not board.light(w(health, agents), ops_p)


@pytest.mark.parametrize("role, board, free, filtered", [
    ("operations", "operational",
     {"total_agents", "active_agents", "overloaded_agents", "idle_agents", "down_agents", "agents_in_training",
      "error_rate", "ops-queues", "ops-agents", "ops-errors"},
     {"total_active_reviews", "pending_dor_validations", "ops-pipeline"}),
    ("qa_lead", "qa", {"qa-gates", "qa-gate-table", "qa-defect-mix"}, {"total_gates_executed", "qa-defects"}),
])
def test_brd018_a_widget_no_repository_or_team_splits_is_drawn_once_for_every_filter(
        app: Any, r: Any, auth: Any, monkeypatch: Any, role: str, board: str, free: set[str],
        filtered: set[str]) -> None:
    """A source whose result a repository or team filter cannot change (a KPI data.scopes cannot
    split, its series, the agents, the queues, the gates' figures, the defects' breakdowns —
    only whether a filter is on shows: a card says "all") is computed and drawn once for every
    filter value: the page filtered to another repository draws only its filtered widgets, and
    shows what a fresh draw shows."""
    import callbacks.dashboard as board_cb
    from data.keys import Keys
    from data.timeutil import now_ms
    svc = app.server.extensions["qms"]
    assert svc.ingestor.ingest(busy_events(1, now_ms() // 1000 * 1000, 3, 1.0)).rejected == 0
    Aggregator(r, Keys("qms")).drain()
    repos = sorted(svc.engine.names()["repositories"])[:2]
    assert len(repos) == 2, repos
    drawn: list[str] = []
    render = board_cb.renderer.render
    monkeypatch.setattr(board_cb.renderer, "render",
                        lambda widget, *a, **kw: drawn.append(widget.id) or render(widget, *a, **kw))
    c, csrf = signed_in(app, auth, role)
    page = route(app, c, csrf, f"/dashboards/{board}")
    defn = [n for n in walk(page) if n.get("id") == "dash-def"][0]["data"]
    # Bodies reused across data versions for a minute (QMS_BODY_CACHE_S): a filter applied is
    # audited, and that event is a new data version.
    app.server.extensions["qms_bodies"].stale_ms = 60_000

    def shown(scope: str) -> dict[str, str]:
        drawn.clear()
        res = post(c, csrf, refresh_body(app, defn, scope=scope, trigger="dash-scope.value"))
        assert res.status_code == 200, res.data[:300]
        out = res.json["response"]
        return {w["id"]: texts(out[f'{{"type":"w-body","w":"{w["id"]}"}}']["children"]) for w in defn["widgets"]}
    assert free | filtered <= {w["id"] for w in defn["widgets"]}
    first = shown(f"repository={repos[0]}")
    assert free <= set(drawn)
    second = shown(f"repository={repos[1]}")
    assert not free & set(drawn), sorted(free & set(drawn))          # kept from the first filter
    assert filtered <= set(drawn)
    assert all(first[w] == second[w] for w in free)
    cards = sorted(free & {d["id"] for d in defn["widgets"] if d["type"] == "kpi_card"})
    for card in cards[:1]:
        assert "all" in second[card].split(" | ")
        assert "all" not in shown("")[card].split(" | ")             # unfiltered: no "all" badge, its own body
    for k in r.scan_iter("qms:cache:*"):                               # the same page drawn afresh
        r.delete(k)
    app.server.extensions["qms_bodies"]._bodies.clear()
    fresh = shown(f"repository={repos[1]}")
    assert free <= set(drawn)
    live = [w["id"] for w in defn["widgets"] if any(ds["name"] == "health" for ds in w["data_sources"]
                                                   if ds.get("name"))]
    for w in live:                                                    # a live read: its ages move
        del fresh[w], second[w]
    assert fresh == second


def test_brd019_the_load_test_reads_a_drawn_page_in_one_walk(app: Any, r: Any, auth: Any) -> None:
    """bench/load/dashjson.page_facts (one walk: what locust reads of every page it opens, on
    the cores the server under test shares; kpi_texts for the load run's content check) finds
    on real drawn pages what this file's own reading finds — the static HTML read back into
    components (expand_static): each component asked for, the widget bodies in order, the KPI
    cards' ids and texts (executive cards are sent as HTML), the enabled widget intervals."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "load"))
    from dashjson import kpi_texts, page_facts

    def props(tree: Any) -> list[dict[str, Any]]:
        return [n["props"] for n in walk(tree) if isinstance(n, dict) and isinstance(n.get("props"), dict)]

    _gates(app, r)
    seen = set()
    for role, path in (("executive", "/dashboards/executive"), ("developer", "/dashboards/developer"),
                       ("qa_lead", "/dashboards/qa?timeframe=7d")):
        c, _ = signed_in(app, auth, role)
        drawn = c.get("/_dash-layout", headers={"Referer": f"http://localhost{path}"}).json
        facts = page_facts(drawn)
        mine = props(drawn)
        for cid in ("dash-def", "live-config", "dash-export"):
            assert facts["components"].get(cid) == next((p for p in mine if p.get("id") == cid), None), (role, cid)
        typed = [p for p in mine if isinstance(p.get("id"), dict)]
        assert facts["bodies"] == [str(p["id"]["w"]) for p in typed if p["id"].get("type") == "w-body"]
        assert facts["bodies"] == [w["id"] for w in facts["components"]["dash-def"]["data"]["widgets"]]
        cards = sorted((str(p["id"]["kpi"]), texts(p)) for p in typed if p["id"].get("type") == "kpi-value")
        assert sorted(facts["kpis"]) == sorted(kpi_texts(drawn)) == cards and cards, role
        assert facts["intervals"] == {str(p["id"]["w"]): int(p["interval"]) for p in typed
                                      if p["id"].get("type") == "w-int" and not p.get("disabled") and p.get("interval")}
        seen.add((role, "d-none" in str(facts["components"]["dash-export"].get("className"))))
    assert ("executive", False) in seen and ("developer", True) in seen, seen
    polled = {"props": {"children": [
        {"props": {"id": {"type": "w-int", "w": "a"}, "interval": 5000, "disabled": False}},
        {"props": {"id": {"type": "w-int", "w": "b"}, "interval": 5000, "disabled": True}},
        {"props": {"id": {"type": "w-body", "w": "a"}, "children": []}}]}}
    assert page_facts(polled)["intervals"] == {"a": 5000} and page_facts(polled)["bodies"] == ["a"]
