"""The Reviewers pages through Dash: the router opens /reviewers and /reviewers/<id> for roles
with view:team_metrics or view:quality_metrics (403 page otherwise), the navbar links them,
and the callbacks fill them with the REST twin's data (cards, grid rows, events per figure)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from tests.integration.test_entity_pages import agent_body, post, route, signed_in
from tests.integration.test_ledger_api import START
from tests.integration.test_ledger_engine import ledger_events


@pytest.fixture
def loaded(app: Any, r: Any) -> list[dict[str, Any]]:
    events = ledger_events(31, START, 26, 80)
    res = app.server.extensions["qms"].ingestor.ingest(events, origin="test")
    assert res.rejected == 0
    Aggregator(r, Keys("qms")).drain(120)
    return events


def body(c: Any, csrf: str, app: Any, timeframe: str = "7d", team: str | None = None,
         repository: str | None = None) -> Any:
    return post(c, csrf, app, "reviewers-body.children",
                [{"id": "reviewers-timeframe", "property": "value", "value": timeframe},
                 {"id": "reviewers-team", "property": "value", "value": team},
                 {"id": "reviewers-repository", "property": "value", "value": repository},
                 {"id": "reviewers-refresh", "property": "n_clicks", "value": None}],
                [{"id": "theme", "property": "data", "value": "light"}])


def one(c: Any, csrf: str, app: Any, reviewer: str) -> Any:
    return post(c, csrf, app, "reviewer-body.children",
                [{"id": "reviewer-spec", "property": "data", "value": {"id": reviewer}},
                 {"id": "reviewer-timeframe", "property": "value", "value": "7d"},
                 {"id": "reviewer-refresh", "property": "n_clicks", "value": None}],
                [{"id": "theme", "property": "data", "value": "light"}])


def _find(node: Any, pred: Any) -> list[Any]:
    out = []
    if isinstance(node, dict):
        if pred(node):
            out.append(node)
        for v in node.values():
            out += _find(v, pred)
    elif isinstance(node, list):
        for v in node:
            out += _find(v, pred)
    return out


def test_ledger_pag001_router_and_nav_per_role(app: Any, auth: Any, loaded: Any) -> None:
    for role, allowed in (("admin", True), ("qa_lead", True), ("developer", True), ("executive", False),
                          ("operations", False)):
        c, csrf = signed_in(app, auth, role)
        page = route(c, csrf, app, "/reviewers", "?timeframe=7d")
        assert ('"data-page": "reviewers"' in page) is allowed, role
        assert ("view:team_metrics" in page) is (not allowed), role
        res = post(c, csrf, app, "page.children", [{"id": "route-path", "property": "data", "value": "/reviewers"}],
                   [{"id": "url", "property": "search", "value": ""},
                    {"id": "theme", "property": "data", "value": "light"}])
        nav = json.dumps(res.json["response"]["nav-links"]["children"])
        assert ("/reviewers" in nav) is allowed, role
        detail = route(c, csrf, app, "/reviewers/coderabbit")
        assert ('"data-page": "reviewer"' in detail) is allowed


def test_ledger_pag002_the_page_shows_the_apis_numbers(app: Any, auth: Any, loaded: Any) -> None:
    c, csrf = signed_in(app, auth, "admin")
    res = body(c, csrf, app)
    assert res.status_code == 200
    drawn = res.json["response"]["reviewers-body"]["children"]
    api = c.get("/api/reviewers?timeframe=7d").json["response"]["data"]
    [grid] = _find(drawn, lambda n: n.get("props", {}).get("id") == "rv-grid")
    rows = grid["props"]["rowData"]
    assert [(r["reviewer"], r["reviews_completed"], r["precision"]) for r in rows] == \
        [(r["reviewer"], r["reviews_completed"], r["precision"]) for r in api["rows"]]
    bot = next(r for r in rows if r["reviewer"] == "dependabot[bot]")
    assert bot["name"] == "[dependabot\\[bot\\]](/reviewers/dependabot%5Bbot%5D?timeframe=7d)"
    cards = {n["props"]["data-kind"]: n for n in _find(drawn, lambda n: "data-kind" in n.get("props", {}))}
    assert set(cards) == {"human", "ai", "bot"}
    [reviews] = _find(cards["ai"], lambda n: n.get("props", {}).get("data-figure") == "reviews")
    assert reviews["props"]["children"] == f"{api['kinds']['ai']['reviews_completed']:,}"
    [gates] = _find(drawn, lambda n: n.get("props", {}).get("id") == "rv-gates")
    assert [g["flaky_fails"] for g in gates["props"]["rowData"]] == [g["flaky_fails"] for g in api["gates"]]
    refused = body(c, csrf, app, team="core", repository="acme/api")
    assert "not both" in json.dumps(refused.json["response"]["reviewers-body"]["children"])


def test_ledger_pag003_one_reviewer_lists_the_events_behind_each_figure(app: Any, auth: Any, loaded: Any) -> None:
    c, csrf = signed_in(app, auth, "admin")
    res = one(c, csrf, app, "qms-code-reviewer")
    drawn = res.json["response"]["reviewer-body"]["children"]
    api = c.get("/api/reviewers/qms-code-reviewer?timeframe=7d").json["response"]["data"]
    for name, rows in api["rows"].items():
        found = _find(drawn, lambda n, name=name: n.get("props", {}).get("id") == f"rv-rows-{name}")
        assert found, name
        if rows:
            assert [r["id"] for r in found[0]["props"]["rowData"]] == [r["event"]["id"] for r in rows]
    assert "/agents/qms-code-reviewer" in json.dumps(drawn)       # an agent: its agent page
    assert "rv-not-found" in json.dumps(one(c, csrf, app, "nobody").json["response"]["reviewer-body"]["children"])


def test_ledger_pag004_callbacks_need_the_permission(app: Any, auth: Any, loaded: Any) -> None:
    c, csrf = signed_in(app, auth, "executive")
    assert body(c, csrf, app).status_code == 403
    assert one(c, csrf, app, "coderabbit").status_code == 403
    c, csrf = signed_in(app, auth, "developer")
    assert "rv-refused" in json.dumps(one(c, csrf, app, "bob").json["response"]["reviewer-body"]["children"])


def test_ledger_pag005_the_agent_page_links_its_reviewer_ledger(app: Any, auth: Any, loaded: Any) -> None:
    c, csrf = signed_in(app, auth, "qa_lead")
    res = agent_body(c, csrf, app, "qms-code-reviewer", "7d")
    [link] = _find(res.json["response"]["agent-body"]["children"],
                   lambda n: n.get("props", {}).get("id") == "agent-ledger")
    assert link["props"]["href"] == "/reviewers/qms-code-reviewer"
