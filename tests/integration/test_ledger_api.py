"""GET /api/reviewers and /api/reviewers/{id} on a real Redis fed through the real ingest and
aggregator: the figures equal the reference calculator, each reviewer's rows reproduce its
figures, permissions and sanitisation per role, bad input a 400 naming the field."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from data import reference
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import HOUR_MS, now_ms, parse_iso, to_datetime
from tests.integration.test_ledger_engine import HUMANS, ledger_events, same
from tests.private_redis import private_redis  # noqa: F401  (a fixture)

START = now_ms() // HOUR_MS * HOUR_MS - 80 * HOUR_MS


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return ledger_events(21, START, 26, 160)


@pytest.fixture
def loaded(app: Any, r: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    svc = app.server.extensions["qms"]
    res = svc.ingestor.ingest(events, origin="test")
    assert res.rejected == 0, res.errors[:3]
    Aggregator(r, Keys(svc.settings.key_prefix)).drain(120)
    return events


def _get(client: Any, url: str, headers: dict[str, str]) -> Any:
    res = client.get(url, headers=headers)
    return res, (res.json or {}).get("response", {})


def test_ledger_api001_list_equals_reference(app: Any, auth: Any, loaded: list[dict[str, Any]]) -> None:
    c = app.server.test_client()
    res, body = _get(c, "/api/reviewers?timeframe=7d", auth.bearer("admin"))
    assert res.status_code == 200
    data = body["data"]
    a, b = parse_iso(data["window"]["start"]), parse_iso(data["window"]["end"])
    want = reference.compute_ledger(loaded, to_datetime(b), timedelta(milliseconds=b - a))
    rows = [{k: v for k, v in row.items() if k != "href"} for row in data["rows"]]
    assert same({"rows": rows, "kinds": data["kinds"], "first_review": data["first_review"], "gates": data["gates"]},
                want) == []
    assert data["cost_hidden"] is False and data["scope"] == {"teams": "all"}
    assert {row["href"] for row in data["rows"] if row["reviewer"] == "dependabot[bot]"} == {"/reviewers/dependabot%5Bbot%5D"}
    assert data["kinds"]["ai"]["reviews_completed"] > 0 and len(data["gates"]) == 3


def test_ledger_api002_each_reviewer_rows_reproduce_its_figures(app: Any, auth: Any,
                                                                loaded: list[dict[str, Any]]) -> None:
    c = app.server.test_client()
    headers = auth.bearer("admin")
    listed = _get(c, "/api/reviewers?timeframe=7d", headers)[1]["data"]["rows"]
    checked = 0
    for row in listed:
        res, body = _get(c, "/api/reviewers/" + row["href"].rsplit("/", 1)[1] + "?timeframe=7d", headers)
        assert res.status_code == 200, row["reviewer"]
        d = body["data"]
        f, n = d["figures"], d["counts"]
        assert d["reviewer"] == row["reviewer"] and d["kind"] == row["kind"] and d["truncated"] is False
        for name in ("reviews_completed", "approvals", "changes_requested", "first_reviews", "findings_raised",
                     "findings_accepted", "findings_dismissed", "findings_wont_fix", "escapes", "workflows_approved",
                     "workflows_approved_with_escape"):
            assert n[name] == f[name] == row[name], (row["reviewer"], name)
        for name in ("reviews_completed", "first_reviews", "findings_raised", "escapes", "workflows_approved"):
            assert len(d["rows"][name]) == n[name]
        assert n["review_cost_usd"] == pytest.approx(f["review_cost_usd"])
        if f["first_reviews"]:
            assert n["time_to_first_review_hours_sum"] / n["first_reviews"] == pytest.approx(f["time_to_first_review"])
            ctx = d["rows"]["first_reviews"][0]["context"][0]
            assert ctx["type"] == "workflow.pr_created"
        for esc in d["rows"]["escapes"]:
            assert esc["event"]["data"]["stage"] == "production"
            assert esc["context"][0]["data"]["verdict"] == "approved"
            assert esc["context"][0]["data"]["reviewer"] == row["reviewer"]
        checked += f["reviews_completed"] + f["findings_raised"]
    assert checked > 100


def test_ledger_api003_filtered_by_team(app: Any, auth: Any, loaded: list[dict[str, Any]]) -> None:
    c = app.server.test_client()
    headers = auth.bearer("admin")
    data = _get(c, "/api/reviewers?timeframe=7d&team=core", headers)[1]["data"]
    a, b = parse_iso(data["window"]["start"]), parse_iso(data["window"]["end"])
    want = reference.compute_ledger(loaded, to_datetime(b), timedelta(milliseconds=b - a), "team", "core")
    rows = [{k: v for k, v in row.items() if k != "href"} for row in data["rows"]]
    assert same({"rows": rows, "kinds": data["kinds"], "first_review": data["first_review"], "gates": data["gates"]},
                want) == []
    assert data["scope"] == {"teams": "all"} and "precision" in data["unfiltered"] and data["filter"] == "t:core"
    one = _get(c, "/api/reviewers/ann?timeframe=7d&team=core", headers)[1]["data"]
    mine = next(row for row in data["rows"] if row["reviewer"] == "ann")
    assert one["counts"]["reviews_completed"] == mine["reviews_completed"]
    assert all(r["event"]["data"]["workflow_id"].startswith("acme/api#") for r in one["rows"]["reviews_completed"])


@pytest.mark.parametrize("role,status", [("admin", 200), ("qa_lead", 200), ("developer", 200),
                                         ("executive", 403), ("operations", 403)])
def test_ledger_api004_permission_any_of_team_or_quality_metrics(app: Any, auth: Any, loaded: Any, role: str,
                                                                  status: int) -> None:
    c = app.server.test_client()
    assert c.get("/api/reviewers", headers=auth.bearer(role)).status_code == status
    assert c.get("/api/reviewers/coderabbit", headers=auth.bearer(role)).status_code == status
    assert app.server.test_client().get("/api/reviewers").status_code == 401


def test_ledger_api005_cost_needs_cost_analysis(app: Any, auth: Any, loaded: Any) -> None:
    c = app.server.test_client()
    data = _get(c, "/api/reviewers?timeframe=7d", auth.bearer("qa_lead"))[1]["data"]
    assert data["cost_hidden"] is True
    assert all(row["review_cost_usd"] is None and row["cost_per_accepted_finding"] is None for row in data["rows"])
    assert data["kinds"]["ai"]["review_cost_usd"] is None and data["kinds"]["ai"]["precision"] is not None
    one = _get(c, "/api/reviewers/coderabbit?timeframe=7d", auth.bearer("qa_lead"))[1]["data"]
    assert one["figures"]["review_cost_usd"] is None and one["counts"]["review_cost_usd"] is None


def test_ledger_api006_developer_sees_other_teams_people_without_names(app: Any, auth: Any, r: Any,
                                                                       loaded: list[dict[str, Any]]) -> None:
    svc = app.server.extensions["qms"]
    teams = {n: (orjson.loads(v)[2] if v else None)
             for n, v in zip(HUMANS + ["mia"], r.hmget(Keys(svc.settings.key_prefix).authors, HUMANS + ["mia"]))}
    c = app.server.test_client()
    headers = auth.bearer("developer", "ann")
    data = _get(c, "/api/reviewers?timeframe=7d", headers)[1]["data"]
    admin = _get(c, "/api/reviewers?timeframe=7d", auth.bearer("admin"))[1]["data"]
    assert len(data["rows"]) == len(admin["rows"])
    named = {row["reviewer"] for row in data["rows"] if not row.get("pseudonymised")}
    hidden = [row for row in data["rows"] if row.get("pseudonymised")]
    people = {row["reviewer"] for row in admin["rows"] if row["kind"] == "human"}
    assert named - people == {row["reviewer"] for row in admin["rows"] if row["kind"] != "human"}
    assert named & people == {p for p in people if p == "ann" or (teams.get(p) and teams[p] == teams["ann"])}
    assert hidden and all(row["reviewer"].startswith("user-") and row["href"] is None for row in hidden)
    assert data["scope"]["teams"] == "own" and data["scope"]["shown_without_names"] == len(hidden)
    other = next(p for p in people if p not in named)
    res = c.get(f"/api/reviewers/{other}", headers=headers)
    assert res.status_code == 403 and "without their name" in res.json["response"]["error"]["message"]
    assert c.get("/api/reviewers/coderabbit?timeframe=7d", headers=headers).status_code == 200


@pytest.mark.parametrize("query,field", [("timeframe=2d", "timeframe"), ("end=yesterday", "end"),
                                         ("team=core&repository=acme/api", "repository or by team")])
def test_ledger_api007_bad_parameters_are_400_naming_the_field(app: Any, auth: Any, query: str, field: str) -> None:
    c = app.server.test_client()
    for url in ("/api/reviewers?", "/api/reviewers/ann?"):
        res = c.get(url + query, headers=auth.bearer("admin"))
        assert res.status_code == 400 and field in res.json["response"]["error"]["message"]


def test_ledger_api008_unknown_reviewer_404_and_long_id_400(app: Any, auth: Any, loaded: Any) -> None:
    c = app.server.test_client()
    assert c.get("/api/reviewers/nobody", headers=auth.bearer("admin")).status_code == 404
    res = c.get("/api/reviewers/" + "x" * 300, headers=auth.bearer("admin"))
    assert res.status_code == 400 and "reviewer" in res.json["response"]["error"]["message"]


def test_ledger_api009_redis_down_is_a_json_503(private_redis: Any) -> None:
    from auth.principal import issue_jwt
    from tests.private_redis import KEY
    app = private_redis.app()
    headers = {"Authorization": "Bearer " + issue_jwt("ada", ["admin"], 600, KEY)}
    c = app.server.test_client()
    assert c.get("/api/reviewers", headers=headers).status_code == 200
    private_redis.terminate()
    for url in ("/api/reviewers", "/api/reviewers/ann"):
        res = c.get(url, headers=headers)
        assert res.status_code == 503 and res.json["response"]["error"]["code"] == "unavailable"


def test_ledger_api010_an_agent_s_page_shows_its_ledger_figures_to_those_who_may_read_the_ledger(
        app: Any, auth: Any, loaded: list[dict[str, Any]]) -> None:
    """The agent page (/agents/<id>) carries the agent's precision, miss rate and time to first
    review from the ledger — the API's numbers — for roles with the ledger's permission; an
    operator (agents, no team or quality metrics) sees the page without them."""
    import json as _json
    from tests.integration.test_entity_pages import agent_body, signed_in
    c = app.server.test_client()
    rows = _get(c, "/api/reviewers?timeframe=7d", auth.bearer("admin"))[1]["data"]["rows"]
    agents = [r for r in rows if r["kind"] == "ai" and r["precision"] is not None]

    def page(role: str, who: str) -> str:
        tc, csrf = signed_in(app, auth, role)
        res = agent_body(tc, csrf, app, who, "7d")
        assert res.status_code == 200, (role, res.data[:200])
        return _json.dumps(res.json["response"]["agent-body"]["children"])
    # an agent with a page (status, assignments or gate runs in the window)
    agent, shown = next((a, out) for a in agents if "entity-not-found" not in (out := page("admin", a["reviewer"])))
    assert "agent-ledger-figures" in shown
    assert f'"{agent["precision"]:.0f}%"' in shown
    assert f'"{agent["findings_accepted"]} accepted, {agent["findings_dismissed"]} dismissed"' in shown
    assert "agent-ledger-figures" not in page("operations", agent["reviewer"])
