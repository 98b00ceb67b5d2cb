"""Team scope (config/rbac.yaml `other_teams:`): a developer sees named pull requests and
reviews of their own team; other teams' rows leave pseudonymised, without titles, and the
response says how many. Real Redis, real aggregator, Flask test client."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any, Iterator

import orjson
import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.simulator import DEVELOPERS
from data.timeutil import MINUTE_MS, fmt_ms, now_ms, parse_iso
from tests.helpers import busy_events, today_ago
from tests.integration.test_rbac_matrix import callback_body

K = Keys("qms")
PEOPLE = frozenset(DEVELOPERS) | {"ann", "bob", "cid", "dot", "eve"}
PERSON_KEYS = ("author", "reviewer", "found_by", "user", "changed_by")


def ev(ident: str, etype: str, minutes_ago: float, at: Callable[[float], int] | None = None,
       **data: Any) -> dict[str, Any]:
    at = at or (lambda ago: now_ms() - ago)
    return {"id": ident, "type": etype, "timestamp": fmt_ms(at(int(minutes_ago * 60_000))),
            "source": "scope-test", "data": data}


def two_teams(svc: Any, r: Any) -> None:
    """Team core: ann, bob (W1, W2). Team web: cid, dot (W3, W4). All in code review, unreviewed
    except W4, which bob (core) reviews. eve never opened a pull request. Every
    instant lies today, so bob's review counts as completed today (scp006) at any hour."""
    at = today_ago(50 * MINUTE_MS)
    svc.ingestor.ingest([
        ev("p1", "workflow.pr_created", 50, at=at, workflow_id="W1", pr_number=1, repository="core-api", author="ann",
           team="core", title="core: fix the ledger"),
        ev("p2", "workflow.pr_created", 49, at=at, workflow_id="W2", pr_number=2, repository="core-api", author="bob",
           team="core", title="core: speed up sync"),
        ev("p3", "workflow.pr_created", 48, at=at, workflow_id="W3", pr_number=3, repository="web-app", author="cid",
           team="web", title="web: secret launch page", ticket="ACME-42 customer escalation"),
        ev("p4", "workflow.pr_created", 47, at=at, workflow_id="W4", pr_number=4, repository="web-app", author="dot",
           team="web", title="web: redesign checkout"),
        *[ev(f"s{i}", "workflow.step_entered", 40 - i, at=at, workflow_id=f"W{i}", step="code_review") for i in range(1, 5)],
        ev("r4", "workflow.review_started", 30, at=at, workflow_id="W4", reviewer="bob"),
        ev("c4", "workflow.review_completed", 20, at=at, workflow_id="W4", reviewer="bob", verdict="approved", cost_usd=3),
        ev("d4", "workflow.defect_found", 25, at=at, workflow_id="W4", defect_id="D4", severity="major", found_by="bob"),
    ])
    Aggregator(r, K).drain()


def rows_with_workflow(obj: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a JSON document that names a workflow (events' data, state rows, flat
    rows with data.<field> keys), with `data.` stripped from its keys."""
    from tests.integration.test_board import walk
    for node in walk(obj):
        flat = {k[5:] if k.startswith("data.") else k: v for k, v in node.items()}
        if isinstance(flat.get("workflow_id"), str):
            yield flat


def leaks(rows: Iterator[dict[str, Any]], other: set[str]) -> list[tuple[str, str, Any]]:
    """(workflow, field, value) of every title, free text or real name in a row of `other` workflows."""
    out = []
    for row in rows:
        if row["workflow_id"] not in other:
            continue
        for k, v in row.items():
            if k in ("title", "ticket") or (k in PERSON_KEYS and isinstance(v, str) and v in PEOPLE):
                out.append((row["workflow_id"], k, v))
    return out


def scope_of(body: dict[str, Any]) -> dict[str, Any]:
    return body["response"]["data"]["scope"]


# --- the finding: 1,711 titles of 4 other teams ---------------------------------------------

@pytest.fixture
def simulated(app: Any, r: Any) -> dict[str, Any]:
    """Three hours of simulated QMS activity of five teams (a working afternoon's), aggregated."""
    svc = app.server.extensions["qms"]
    events = busy_events(3, now_ms() // 1000 * 1000 - MINUTE_MS, 11, 1.0)     # a Thursday's afternoon, moved to now
    for i in range(0, len(events), 5000):
        svc.ingestor.ingest(events[i:i + 5000], origin="simulator")
    Aggregator(r, K).drain()
    teams: dict[str, str] = {}
    titles: dict[str, str] = {}
    for e in events:
        if e["type"] == "workflow.pr_created":
            teams[e["data"]["workflow_id"]] = e["data"]["team"]
            titles[e["data"]["workflow_id"]] = e["data"]["title"]
    latest = {a: orjson.loads(v)[2] for a, v in ((a.decode(), v) for a, v in r.hgetall(K.authors).items())}
    viewer = sorted(a for a, t in latest.items() if t == "platform")[0]
    return {"teams": teams, "titles": titles, "viewer": viewer, "team": "platform"}


def test_scp001_a_developer_reads_no_title_or_name_of_other_teams_in_suggested_reviews_events(
        app: Any, auth: Any, simulated: dict[str, Any]) -> None:
    c = app.server.test_client()
    res = c.get("/api/metrics/suggested_reviews/events?timeframe=24h&limit=10000",
                headers=auth.bearer("developer", simulated["viewer"]))
    assert res.status_code == 200, res.data[:300]
    teams = simulated["teams"]
    rows = list(rows_with_workflow(res.json))
    other = {w for w, t in teams.items() if t != simulated["team"]}
    mine = [x for x in rows if teams.get(x["workflow_id"]) == simulated["team"]]
    theirs = [x for x in rows if x["workflow_id"] in other]
    assert len({teams[x["workflow_id"]] for x in theirs}) == 4 and len(theirs) > 20, "the data has 4 other teams"
    assert leaks(iter(rows), other) == [], "other teams' titles and names left the server"
    assert all(not x.get("author") or x["author"].startswith("user-") for x in theirs)
    # The viewer's own team keeps its names and titles.
    own_titles = [x["title"] for x in mine if "title" in x]
    assert own_titles and all(t == simulated["titles"][x["workflow_id"]] for x, t in
                              zip([x for x in mine if "title" in x], own_titles))
    assert any(x.get("author") in PEOPLE for x in mine)
    scope = scope_of(res.json)
    assert scope["teams"] == "own" and scope["team"] == "platform"
    assert scope["shown_without_names"] == len(theirs) and scope["left_out"] == 0
    assert f"{len(theirs):,} rows of other teams shown without names" in scope["note"]


# --- widgets, CSV, the page -----------------------------------------------------------------

def test_scp002_widget_rows_of_other_teams_are_pseudonymised_and_the_response_says_so(app: Any, auth: Any,
                                                                                     r: Any) -> None:
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    c = app.server.test_client()
    res = c.get("/api/widgets/dev-suggested/data?timeframe=1h", headers=auth.bearer("developer", "ann"))
    assert res.status_code == 200, res.data[:300]
    data = res.json["response"]["data"]
    by_wf = {x["workflow_id"]: x for x in data["rows"]}
    assert set(by_wf) == {"W2", "W3"}, "W1 is ann's own, W4 has a review started"
    assert by_wf["W2"]["author"] == "bob", "ann's team keeps its names"
    assert by_wf["W3"]["author"] == svc.sanitizer_for(["executive"]).pseudonym("cid")
    assert "cid" not in res.get_data(as_text=True)
    assert data["scope"]["teams"] == "own" and data["scope"]["team"] == "core"
    assert data["scope"]["shown_without_names"] == 1 and "1 row of other teams shown without names" in data["scope"]["note"]


def test_scp003_csv_export_of_a_widget_is_scoped_for_developer_and_operations(app: Any, auth: Any, r: Any) -> None:
    """Several roles: each row gets the most permissive view any of them has of it. Operations
    pseudonymises everyone, so with developer: own team named, other teams pseudonymised."""
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    svc.users.add("ann", ["developer", "operations"], "correct horse battery")
    from auth.principal import issue_jwt
    headers = {"Authorization": "Bearer " + issue_jwt("ann", ["developer", "operations"], 600, svc.secret_key)}
    c = app.server.test_client()
    res = c.get("/api/widgets/dev-suggested/data?timeframe=1h&format=csv", headers=headers)
    assert res.status_code == 200, res.data[:300]
    table = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    by_wf = {x["workflow_id"]: x for x in table}
    assert by_wf["W2"]["author"] == "bob" and by_wf["W3"]["author"].startswith("user-")
    assert "cid" not in res.get_data(as_text=True)
    assert res.headers["X-Scope-Shown-Without-Names"] == "1" and res.headers["X-Scope-Left-Out"] == "0"
    assert "1 row of other teams shown without names" in res.headers["X-Scope-Note"]


def test_scp004_qa_lead_and_admin_see_every_team_named(app: Any, auth: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    c = app.server.test_client()
    for role in ("qa_lead", "admin"):
        res = c.get("/api/metrics/defects_found/events?timeframe=1h", headers=auth.bearer(role))
        assert res.status_code == 200
        [d4] = [x for x in rows_with_workflow(res.json) if x["workflow_id"] == "W4"]
        assert d4["found_by"] == "bob"
        assert scope_of(res.json) == {"teams": "all"}
    res = c.get("/api/metrics/process_adoption_rate/events?timeframe=1h", headers=auth.bearer("admin"))
    titles = {x["workflow_id"]: x.get("title") for x in rows_with_workflow(res.json)}
    assert titles["W3"] == "web: secret launch page"
    # developer + qa_lead: qa_lead names every team, so the user does too.
    from auth.principal import issue_jwt
    both = {"Authorization": "Bearer " + issue_jwt("ann", ["developer", "qa_lead"], 600, svc.secret_key)}
    res = c.get("/api/widgets/dev-suggested/data?timeframe=1h", headers=both)
    assert {x["workflow_id"]: x["author"] for x in res.json["response"]["data"]["rows"]} == {"W2": "bob", "W3": "cid"}
    assert res.json["response"]["data"]["scope"] == {"teams": "all"}


def test_scp005_a_developer_with_no_known_team_sees_every_row_scoped(app: Any, auth: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    c = app.server.test_client()
    res = c.get("/api/widgets/dev-suggested/data?timeframe=1h", headers=auth.bearer("developer", "eve"))
    rows = res.json["response"]["data"]["rows"]
    assert len(rows) == 3 and all(x["author"].startswith("user-") for x in rows)
    scope = res.json["response"]["data"]["scope"]
    assert scope["team"] is None and scope["shown_without_names"] == 3
    assert "your team is not known" in scope["note"]
    res = c.get("/api/metrics/suggested_reviews/events?timeframe=1h", headers=auth.bearer("developer", "eve"))
    assert leaks(rows_with_workflow(res.json), {"W1", "W2", "W3", "W4"}) == []


def test_scp006_own_rows_stay_named_even_from_another_team(app: Any, auth: Any, r: Any) -> None:
    """bob (core) reviewed W4 (web): his own review and defect keep his name for him; for ann
    (core) they are web's rows and leave without names."""
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    c = app.server.test_client()
    res = c.get("/api/metrics/completed_today/events?timeframe=1h", headers=auth.bearer("developer", "bob"))
    [row] = [x for x in rows_with_workflow(res.json) if x["workflow_id"] == "W4"]
    assert row["reviewer"] == "bob"
    res = c.get("/api/metrics/suggested_reviews/events?timeframe=1h", headers=auth.bearer("developer", "ann"))
    w3 = [x for x in rows_with_workflow(res.json) if x["workflow_id"] == "W3"]      # web's, waiting for review
    assert w3 and all(x.get("author") != "cid" and "title" not in x for x in w3)
    assert "web: secret launch page" not in res.get_data(as_text=True)
    assert "ACME-42" not in res.get_data(as_text=True), "undeclared fields are free text too"


def developer_page(app: Any, auth: Any, role: str, name: str, timeframe: str) -> dict[str, Any]:
    """The developer page's refresh answer for `name` signed in with `role` (the real callbacks)."""
    from tests.integration.test_board import post, refresh_body, route, walk
    c = app.server.test_client()
    auth.login(c, role, name)
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    page = route(app, c, csrf, "/dashboards/developer")
    stored = next(n for n in walk(page) if n.get("id") == "dash-def")["data"]
    res = post(c, csrf, refresh_body(app, stored, timeframe=timeframe))
    assert res.status_code == 200, res.data[:300]
    return res.json["response"]


def test_scp007_the_developer_page_shows_the_note_and_no_other_names(app: Any, auth: Any, r: Any) -> None:
    """The ONE refresh callback draws the developer dashboard for ann (core): the suggested
    reviews show bob (her team) by name, cid (web) without, and the widget says so."""
    from tests.integration.test_board import texts
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    bodies = developer_page(app, auth, "developer", "ann", "1h")
    suggested = texts(bodies['{"type":"w-body","w":"dev-suggested"}'])
    assert "1 row of other teams shown without names" in suggested
    assert "bob" in suggested and svc.sanitizer_for(["executive"]).pseudonym("cid") in suggested
    text = json.dumps(bodies)
    assert '"cid"' not in text and "web: secret launch page" not in text


def test_scp008_every_widget_of_a_pseudonymising_role_names_nobody(app: Any, auth: Any, r: Any) -> None:
    """Widget rows are sanitised once, by their data source (dashboards.sources): no widget of
    the executive or operations dashboards may carry a person's name (they see people only
    as pseudonyms)."""
    from dashboards.provision import Provisioner
    defs = Provisioner().dashboards()
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    svc.ingestor.ingest([
        ev("x1", "system.error_occurred", 5, component="ci", error_type="Timeout", message="ann's job", severity="info"),
        ev("k1", "workflow.compliance_checked", 5, workflow_id="W3", policy="license", passed=False),
        ev("a1", "system.agent_status_changed", 5, agent_id="qms-code-reviewer", status="active", load=0.5)])
    Aggregator(r, K).drain()
    c = app.server.test_client()
    for role, dash in (("executive", "executive"), ("operations", "operational")):
        for widget in defs[dash].widgets:
            res = c.get(f"/api/widgets/{widget.id}/data?timeframe=1h", headers=auth.bearer(role))
            assert res.status_code == 200, (role, widget.id, res.data[:200])
            text = res.get_data(as_text=True)
            assert not [p for p in ("ann", "bob", "cid", "dot") if f'"{p}"' in text], (role, widget.id)
            assert "ann's job" not in text or role == "operations"


def test_scp009_entity_pages_of_other_teams_name_nobody(app: Any, auth: Any, r: Any) -> None:
    """A developer opening another team's pull request page sees its timeline without names,
    title or free text; their own team's page keeps them; the page says what it scoped."""
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    c = app.server.test_client()
    dev = auth.bearer("developer", "ann")
    res = c.get("/api/entities/workflow/W4", headers=dev)
    assert res.status_code == 200, res.data[:300]
    text = res.get_data(as_text=True)
    assert not [s for s in ('"dot"', '"bob"', "web: redesign checkout") if s in text], text[:2000]
    scope = res.json["response"]["data"]["scope"]
    # Each row once: the summary, bob's review, D4, and the five events (p4, s4, r4, c4, d4).
    assert scope["teams"] == "own" and scope["team"] == "core"
    assert (scope["shown_without_names"], scope["left_out"]) == (1 + 1 + 1 + 5, 0)
    assert scope["note"].startswith("8 rows of other teams shown without names")
    own = c.get("/api/entities/workflow/W1", headers=dev).get_data(as_text=True)
    assert "core: fix the ledger" in own and '"ann"' in own
    admin = c.get("/api/entities/workflow/W4", headers=auth.bearer("admin")).get_data(as_text=True)
    assert "web: redesign checkout" in admin and '"dot"' in admin


def omitting(settings: Any, auth: Any, r: Any, tmp_path: Any, kind: str) -> tuple[Any, Any]:
    """An app whose developers get other teams' rows of `kind` left out (config/rbac.yaml
    other_teams), with two_teams' data, and its users helper."""
    from tests.helpers import make_app
    rbac = tmp_path / "rbac.yaml"
    shipped = open("config/rbac.yaml").read()
    assert shipped.count(f"      {kind}: pseudonymize\n") == 1
    rbac.write_text(shipped.replace(f"      {kind}: pseudonymize\n", f"      {kind}: omit\n"))
    app = make_app(settings.replace(rbac_path=str(rbac)))
    two_teams(app.server.extensions["qms"], r)
    return app, auth.__class__(app)


def test_scp010_rows_a_role_omits_are_withheld_by_the_api_and_kept_as_places_by_the_grid(
        settings: Any, auth: Any, r: Any, tmp_path: Any) -> None:
    """A deployment whose developers get other teams' events left out: the drill-down's counts
    still cover every row (they make the card), the API withholds the omitted ones and says
    how many, the events grid keeps their places (its row numbers are the count's)."""
    app, helper = omitting(settings, auth, r, tmp_path, "events")
    c = app.server.test_client()
    res = c.get("/api/metrics/suggested_reviews/events?timeframe=1h", headers=helper.bearer("developer", "ann"))
    data = res.json["response"]["data"]
    assert [e["id"] for e in data["events"]] == ["s2", "s1"], "W3 is web's: left out; W4 is being reviewed"
    assert (data["counts"], data["total"], data["count"], data["withheld"]) == ({"counted": 3}, 3, 2, 1)
    assert (data["scope"]["left_out"], data["scope"]["shown_without_names"]) == (1, 0)
    helper.login(c, "developer", "ann")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    [key] = [k for k in app.callback_map if "events-grid.getRowsResponse" in k]
    body = callback_body(app, key, {("events-grid", "getRowsRequest"): {"startRow": 0, "endRow": 100},
                                    ("events-kpi", "data"): {"kpi": "suggested_reviews", "timeframe": "1h",
                                                             "end": parse_iso(data["at"])}})
    grid = c.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf}).json["response"]
    rows = grid["events-grid"]["getRowsResponse"]
    assert rows["rowCount"] == 3 and [(x["id"], x["role"]) for x in rows["rowData"]] == [
        ("", "left out"), ("s2", "open_at_end"), ("s1", "open_at_end")]
    assert "cid" not in json.dumps(grid) and "1 row of other teams left out" in grid["events-note"]["children"]


def test_scp011_widget_rows_a_role_omits_are_left_out_and_the_widget_says_so(
        settings: Any, auth: Any, r: Any, tmp_path: Any) -> None:
    """A deployment whose developers get other teams' workflows left out: the suggested reviews
    widget's rows (REST) and its body (the refresh callback) hold ann's team's W2 only, and
    both say one row was left out."""
    from tests.integration.test_board import post, refresh_body, route, texts, walk
    app, helper = omitting(settings, auth, r, tmp_path, "workflows")
    c = app.server.test_client()
    res = c.get("/api/widgets/dev-suggested/data?timeframe=1h", headers=helper.bearer("developer", "ann"))
    assert res.status_code == 200, res.data[:300]
    data = res.json["response"]["data"]
    assert [x["workflow_id"] for x in data["rows"]] == ["W2"], "W3 is web's: left out"
    assert (data["scope"]["left_out"], data["scope"]["shown_without_names"]) == (1, 0)
    assert "1 row of other teams left out" in data["scope"]["note"]
    helper.login(c, "developer", "ann")
    with c.session_transaction() as sess:
        csrf = sess["csrf"]
    page = route(app, c, csrf, "/dashboards/developer")
    stored = next(n for n in walk(page) if n.get("id") == "dash-def")["data"]
    out = post(c, csrf, refresh_body(app, stored, ["dev-suggested"], timeframe="1h"))
    assert out.status_code == 200, out.data[:300]
    shown = texts(out.json["response"]['{"type":"w-body","w":"dev-suggested"}'])
    assert "W2" in shown and "W3" not in shown and "1 row of other teams left out" in shown
    assert "cid" not in out.get_data(as_text=True) and "user-" not in shown


def test_scp013_viewers_no_event_names_share_the_developer_page_drawn_once(app: Any, auth: Any, r: Any,
                                                                          monkeypatch: Any) -> None:
    """eve and fay (developers whom no pull request or review names), then two admins, open the
    developer page: its personal widgets are drawn once per class of viewer, for a stand-in
    of the same roles, and the others take those bodies; they hold no viewer's name and equal what eve's
    page shows drawn as herself. ann (core, with pull requests) gets her own draws, her pull
    request in them. In the 500-user load test nearly half the bodies drawn were developer
    pages of viewers without data, each drawn for its viewer alone."""
    import callbacks.dashboard as board
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    drawn: list[str] = []
    real = board.draw
    monkeypatch.setattr(board, "draw", lambda w, *a, **k: drawn.append(w.id) or real(w, *a, **k))
    from dashboards.provision import Provisioner
    from dashboards import sources
    personal = {w.id for w in Provisioner().dashboards()["developer"].widgets
                if any(sources.personal(ds) for ds in w.data_sources)}
    assert {"pending_reviews", "dev-queue", "dev-kanban", "dev-achievements"} <= personal

    def bodies(role: str, name: str) -> dict[str, Any]:
        out = developer_page(app, auth, role, name, "4h")
        return {k: v for k, v in out.items() if "w-body" in k}         # not "updated 0s ago"

    eve = bodies("developer", "eve")
    assert personal & set(drawn), drawn
    drawn.clear()
    fay = bodies("developer", "fay")
    assert not personal & set(drawn), f"fay drew {sorted(personal & set(drawn))} again"
    assert fay == eve
    admin = bodies("admin", "adam")         # another class of viewer (roles): drawn for its stand-in
    drawn.clear()
    assert bodies("admin", "adele") == admin and not personal & set(drawn), drawn
    text = json.dumps([eve, admin])
    assert '"eve"' not in text and '"fay"' not in text and '"adam"' not in text
    drawn.clear()
    ann = bodies("developer", "ann")
    kanban = '{"type":"w-body","w":"dev-kanban"}'
    assert personal & set(drawn) and "W1" in json.dumps(ann[kanban]) and "W1" not in json.dumps(eve[kanban])
    # Drawn as herself (no stand-in, nothing kept), eve's page is the same.
    for k in r.scan_iter(K.cache("*")):
        r.delete(k)
    app.server.extensions["qms_bodies"]._bodies.clear()
    monkeypatch.setattr(board, "drawn_for", lambda svc, principal, version: principal)
    assert bodies("developer", "eve") == eve


def test_scp014_the_stand_in_is_whom_no_event_can_name(app: Any, r: Any) -> None:
    """A viewer absent from the users registry is drawn as the stand-in, one present as
    themselves; an event naming the stand-in is refused, so the stand-in's personal sources
    find nothing, as those of every viewer it stands in for."""
    import callbacks.dashboard as board
    from auth.principal import Principal
    svc = app.server.extensions["qms"]
    two_teams(svc, r)
    eve = Principal("eve", ("developer",), frozenset({"view:developer_dashboard"}))
    version = svc.engine.version()
    assert board.drawn_for(svc, eve, version) == dataclasses.replace(eve, name=board.STAND_IN)
    ann = dataclasses.replace(eve, name="ann")
    assert board.drawn_for(svc, ann, version) is ann and board.drawn_for(svc, None, version) is None
    res = svc.ingestor.ingest([ev("p9", "workflow.pr_created", 1, workflow_id="W9", pr_number=9,
                                  repository="core-api", author=board.STAND_IN, team="core")])
    assert res.rejected == 1 and "control characters" in str(res.errors)
