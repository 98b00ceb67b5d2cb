"""The dashboard list (/dashboards) through its callbacks, as the browser sends them (Flask
test client, real sign-in, CSRF, the request guard): what each role sees, stars, import of
another user's export, history and restore, a refused import, delete and reset, new
dashboard — and the refusals the REST twins give (403) where the permission is missing.

Real Redis (QMS_TEST_REDIS_URL), the provisioned role dashboards of config/dashboards.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import orjson

from auth.callback_schema import stringify_id
from auth.guard import CSRF_HEADER
from tests.integration.test_board import walk as _walk
from tests.integration.test_rbac_matrix import UPDATE, callback_body, signed_in

WIDGET = {"type": "kpi_card", "title": "Pending", "position": {"x": 0, "y": 0, "width": 3, "height": 2},
          "data_sources": [{"source": "kpi", "metric": "pending_reviews"}]}


def _key(app: Any, fragment: str) -> str:
    [key] = [k for k in app.callback_map if fragment in k]
    return key


def _fire(c: Any, csrf: str, app: Any, fragment: str, values: dict[str, Any] | None = None,
          click: dict[str, Any] | None = None, trigger: str | None = None) -> Any:
    """POST the callback whose outputs name `fragment`: `values` by "id.prop"; `click` a
    row button's id (one matching component of its pattern input, clicked once)."""
    key = _key(app, fragment)
    cb = app.callback_map[key]
    body = callback_body(app, key, {tuple(k.rsplit(".", 1)): v for k, v in (values or {}).items()})
    if click is not None:
        for i, dep in enumerate(cb["inputs"]):
            if dep["id"].startswith("{") and json.loads(dep["id"])["type"] == click["type"]:
                body["inputs"][i] = [{"id": click, "property": dep["property"], "value": 1}]
                body["changedPropIds"] = [f"{stringify_id(click)}.{dep['property']}"]
    if trigger is not None:
        body["changedPropIds"] = [trigger]
    return c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf})


def _text(node: Any) -> str:
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, list):
        return " ".join(t for t in (_text(n) for n in node) if t)
    if isinstance(node, dict):
        return _text(node.get("props", {}).get("children"))
    return ""


def _cells(tr: dict[str, Any]) -> list[str]:
    return [_text(td) for td in tr["props"]["children"]]


def _rows(res: Any) -> list[dict[str, Any]]:
    """The list's rows: id, starred, and the text of title, kind, owner, last change, widgets, tags, actions."""
    assert res.status_code == 200, res.data[:300]
    out = []
    for node in _walk(res.json["response"]["dl-rows"]["children"]):
        props = node.get("props") if isinstance(node.get("props"), dict) else None
        if props and "data-dashboard" in props:
            cells = _cells(node)
            out.append({"id": props["data-dashboard"], "starred": props["data-starred"] == "1",
                        **dict(zip(("star", "title", "kind", "owner", "changed", "widgets", "tags", "actions"),
                                   cells))})
    return out


def _list(c: Any, csrf: str, app: Any, query: str | None = None) -> list[dict[str, Any]]:
    return _rows(_fire(c, csrf, app, "dl-rows.children", {"dl-search.value": query}))


def _message(res: Any) -> str:
    assert res.status_code == 200, res.data[:300]
    return _text(res.json["response"]["dl-message"]["children"])


def _done(res: Any, store: str) -> dict[str, Any]:
    assert res.status_code == 200, res.data[:300]
    return res.json["response"][store]["data"]


def _upload(doc: Any) -> str:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return "data:application/json;base64," + base64.b64encode(raw).decode()


def _import(c: Any, csrf: str, app: Any, doc: Any, filename: str = "board.json") -> Any:
    return _fire(c, csrf, app, "dl-create-done.data",
                 {"dl-import.contents": _upload(doc), "dl-import.filename": filename, "dl-new.n_clicks": None},
                 trigger="dl-import.contents")


def test_dl001_each_role_lists_the_dashboards_it_may_see(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    files = svc.dashboards._files()
    seen = {}
    for role in ("developer", "executive", "qa_lead", "operations", "admin"):
        c, csrf = signed_in(app, auth, role)
        seen[role] = _list(c, csrf, app)
    assert [r["id"] for r in seen["developer"]] == ["developer"], "a developer does not see the executive dashboard"
    assert [r["id"] for r in seen["executive"]] == ["executive"]
    assert [r["id"] for r in seen["qa_lead"]] == ["qa"]
    assert [r["id"] for r in seen["operations"]] == ["operational"]
    assert sorted(r["id"] for r in seen["admin"]) == ["developer", "executive", "operational", "qa"]
    assert [r["title"] for r in seen["admin"]] == sorted((r["title"] for r in seen["admin"]), key=str.lower)
    dev = seen["developer"][0]
    assert dev["title"].startswith(files["developer"].title)
    assert (dev["kind"], dev["owner"], dev["changed"]) == ("provisioned", "provisioned file", "as provisioned")
    assert dev["widgets"] == str(len(files["developer"].widgets))
    assert dev["tags"].split() == list(files["developer"].tags)
    assert "Delete" not in dev["actions"] and "Reset to default" not in dev["actions"], "provisioned: never deleted"
    assert "Export" in dev["actions"] and "History" in dev["actions"]


def test_dl002_the_page_is_routed_for_dashboard_users_only(app: Any, auth: Any) -> None:
    key = _key(app, "page.children")
    for role, ok in (("developer", True), ("producer", False)):
        c, csrf = signed_in(app, auth, role)
        res = c.post(UPDATE, json=callback_body(app, key, {("route-path", "data"): "/dashboards"}),
                     headers={CSRF_HEADER: csrf})
        assert res.status_code == 200, res.data[:300]
        resp = res.json["response"]
        ids = {n["props"].get("id") for n in _walk(resp["page"]["children"]) if isinstance(n.get("props"), dict)}
        nav = {n["props"].get("href") for n in _walk(resp["nav-links"]["children"]) if isinstance(n.get("props"), dict)}
        assert ("dl-search" in ids and "dl-rows" in ids) == ok, role
        assert ("forbidden" in ids) == (not ok), role
        assert ("/dashboards" in nav) == ok, role
        # and the list's own callback is refused without a dashboard permission, as its REST twin
        assert _fire(c, csrf, app, "dl-rows.children").status_code == (200 if ok else 403), role
        assert c.get("/api/dashboards").status_code == (200 if ok else 403), role


def test_dl003_search_filters_by_title_and_tag(app: Any, auth: Any) -> None:
    c, csrf = signed_in(app, auth, "admin")
    assert [r["id"] for r in _list(c, csrf, app, "Opera")] == ["operational"], "by title, any case"
    assert [r["id"] for r in _list(c, csrf, app, "quality")] == ["executive", "qa"], "by tag (and title)"
    assert [r["id"] for r in _list(c, csrf, app, "reviews")] == ["developer"]
    res = _fire(c, csrf, app, "dl-rows.children", {"dl-search.value": "no such board"})
    assert "No dashboard matches “no such board”" in _text(res.json["response"]["dl-rows"]["children"])


def test_dl004_a_star_moves_a_row_to_the_top_and_back(app: Any, auth: Any) -> None:
    c, csrf = signed_in(app, auth, "admin")
    before = [r["id"] for r in _list(c, csrf, app)]
    last = before[-1]
    done = _done(_fire(c, csrf, app, "dl-star-done.data", click={"type": "dl-star", "id": last}), "dl-star-done")
    assert done["n"] == 1 and not done.get("text")
    rows = _list(c, csrf, app)
    assert [r["id"] for r in rows] == [last] + before[:-1] and rows[0]["starred"] and rows[0]["star"] == "★"
    assert not any(r["starred"] for r in rows[1:])
    _fire(c, csrf, app, "dl-star-done.data", {"dl-star-done.data": done}, click={"type": "dl-star", "id": last})
    assert [r["id"] for r in _list(c, csrf, app)] == before
    # a dashboard one may not see cannot be starred (the store's 404, shown as a message)
    d, dcsrf = signed_in(app, auth, "developer")
    note = _done(_fire(d, dcsrf, app, "dl-star-done.data", click={"type": "dl-star", "id": "executive"}),
                 "dl-star-done")
    assert "no dashboard 'executive'" in note["text"]
    assert app.server.extensions["qms"].dashboards.starred(_principal(app, "developer")) == set()


def test_dl005_import_of_another_users_export_makes_a_personal_copy(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    a, acsrf = signed_in(app, auth, "admin")
    widgets = [{**WIDGET, "id": "w-pending"},
               {**WIDGET, "id": "w-done", "title": "Done", "position": {"x": 3, "y": 0, "width": 6, "height": 4},
                "data_sources": [{"source": "kpi", "metric": "completed_today"}]}]
    made = a.post("/api/dashboards", json={"title": "Team board", "tags": ["team"], "widgets": widgets},
                  headers={CSRF_HEADER: acsrf})
    assert made.status_code == 201, made.data[:300]
    exported = a.get("/api/dashboards/team-board/export")
    assert exported.status_code == 200
    d, dcsrf = signed_in(app, auth, "developer")
    assert "team-board" not in [r["id"] for r in _list(d, dcsrf, app)], "admin's personal dashboard is admin's"
    res = _import(d, dcsrf, app, exported.data, "team-board.dashboard.json")
    assert res.status_code == 200, res.data[:300]
    href = res.json["response"]["dl-nav"]["href"]
    assert href == "/dashboards/team-board-2", "the id is taken (admin's): the next free one"
    mine = svc.dashboards.get("team-board-2", _principal(app, "developer"))
    assert mine is not None and mine.kind == "personal" and mine.dashboard.owner == "developer-user"
    theirs = orjson.loads(exported.data)
    assert [w.model_dump(mode="json", exclude_none=True) for w in mine.dashboard.widgets] == \
        [{k: v for k, v in w.items()} for w in _clean(theirs["widgets"])]
    rows = {r["id"]: r for r in _list(d, dcsrf, app)}
    assert rows["team-board-2"]["kind"] == "personal" and rows["team-board-2"]["owner"] == "developer-user"
    assert rows["team-board-2"]["widgets"] == "2" and "Delete" in rows["team-board-2"]["actions"]
    assert svc.dashboards.get("team-board", _principal(app, "developer")) is None, "admin's stays admin's"
    assert any(e["type"] == "dashboard.imported" and e["data"].get("user") == "developer-user"
               for e in svc.audit.query(limit=50))


def _clean(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Widgets as exported, without null fields (pydantic dumps them as the model says)."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return [strip(w) for w in widgets]


def _principal(app: Any, role: str) -> Any:
    from auth.principal import Principal
    rbac = app.server.extensions["qms"].rbac
    return Principal(f"{role}-user", (role,), rbac.permissions_for([role]))


def test_dl006_a_bad_import_names_the_widget_and_the_field(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    d, dcsrf = signed_in(app, auth, "developer")
    bad = {"title": "Bad", "widgets": [{**WIDGET, "id": "w-wide", "position": {"x": 0, "y": 0, "width": 20, "height": 2}},
                                       {**WIDGET, "id": "w-odd", "type": "pie_of_doom"}]}
    res = _import(d, dcsrf, app, bad, "bad.json")
    note = _done(res, "dl-create-done")
    assert "dl-nav" not in res.json["response"], "nothing to open"
    assert note["level"] == "danger" and "bad.json was not imported" in note["text"]
    assert "bad.json: widget 'w-wide': position.width: must be at most 12" in note["lines"]
    assert any(line.startswith("bad.json: widget 'w-odd': type:") for line in note["lines"]), note["lines"]
    shown = _message(_fire(d, dcsrf, app, "dl-rows.children", {"dl-create-done.data": note},
                           trigger="dl-create-done.data"))
    assert "widget 'w-wide': position.width: must be at most 12" in shown
    long = _done(_import(d, dcsrf, app, {"title": "Long", "widgets": [{**WIDGET, "id": "w1", "type": "x" * 3000}]},
                         "long.json"), "dl-create-done")
    assert long["lines"] and all(len(line) <= 1000 for line in long["lines"]), "kept within the store's type"
    again = _fire(d, dcsrf, app, "dl-create-done.data", {"dl-create-done.data": long, "dl-new.n_clicks": 1,
                                                         "dl-new-title.value": ""})
    assert _done(again, "dl-create-done")["n"] == long["n"] + 1, "the browser sends the notice back: accepted"
    not_json = _done(_import(d, dcsrf, app, b"{nope", "x.json"), "dl-create-done")
    assert "x.json was not imported: not a JSON file" in not_json["text"]
    assert [r["id"] for r in _list(d, dcsrf, app)] == ["developer"], "nothing was created"
    assert svc.redis.hlen(svc.keys.dash_user("developer-user")) == 0


def test_dl007_history_lists_versions_and_restore_brings_back_positions(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    s, dev = svc.dashboards, _principal(app, "developer")
    d, dcsrf = signed_in(app, auth, "developer")
    s.create(dev, {"id": "mine", "title": "Mine", "widgets": [{**WIDGET, "id": "w1"}]})
    moved = {"id": "mine", "title": "Mine", "widgets": [{**WIDGET, "id": "w1",
                                                         "position": {"x": 6, "y": 3, "width": 6, "height": 4}}]}
    s.save_personal("mine", dev, moved)
    res = _fire(d, dcsrf, app, "dl-history.is_open", click={"type": "dl-history-open", "id": "mine"})
    assert res.status_code == 200, res.data[:300]
    out = res.json["response"]
    assert out["dl-history"]["is_open"] is True and _text(out["dl-history-title"]["children"]) == "History · Mine"
    versions = [_cells(n) for n in _walk(out["dl-history-body"]["children"])
                if isinstance(n.get("props"), dict) and "data-version" in n["props"]]
    assert [v[0] for v in versions] == ["2", "1"]
    assert all(v[2] == "developer-user" and v[1].endswith("UTC") for v in versions)
    assert "moved w1" in versions[0][3] and "resized w1" in versions[0][3] and "created" in versions[1][3]
    assert versions[0][5] == "current" and versions[1][5] == "Restore", "the newest is the one in use"
    res = _fire(d, dcsrf, app, "dl-restore-done.data", click={"type": "dl-restore", "id": "mine", "n": 1,
                                                                "scope": "personal"})
    note = _done(res, "dl-restore-done")
    assert note["level"] == "success" and "Restored version 1 of “Mine”" in note["text"]
    pos = s.get("mine", dev).dashboard.widget("w1").position
    assert (pos.x, pos.y, pos.width, pos.height) == (0, 0, 3, 2), "the old position is back"
    latest = s.versions("mine", dev)["versions"][0]
    assert (latest["n"], latest["by"]) == (3, "developer-user") and latest["summary"].startswith("restored version 1")
    # the restore draws the open history again, newest first
    again = res.json["response"]["dl-history-body"]["children"]
    assert [n["props"]["data-version"] for n in _walk(again)
            if isinstance(n.get("props"), dict) and "data-version" in n["props"]] == ["3", "2", "1"]
    assert any(e["type"] == "dashboard.restored" and e["data"].get("version") == 1
               for e in svc.audit.query(limit=50))


def test_dl008_shared_versions_are_restored_with_manage_dashboards_only(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    s, qa = svc.dashboards, _principal(app, "qa_lead")
    doc = {"id": "team-qa", "title": "Team QA", "visibility": {"roles": ["developer"]},
           "widgets": [{**WIDGET, "id": "w1"}]}
    s.create(qa, doc, shared=True)
    s.save_shared("team-qa", qa, {**doc, "widgets": [{**WIDGET, "id": "w1", "position": {"x": 3, "y": 0,
                                                                                           "width": 3, "height": 2}}]})
    d, dcsrf = signed_in(app, auth, "developer")
    rows = {r["id"]: r for r in _list(d, dcsrf, app)}
    assert rows["team-qa"]["kind"] == "shared" and rows["team-qa"]["owner"] == "qa_lead-user"
    assert "qa_lead-user" in rows["team-qa"]["changed"] and "Delete" not in rows["team-qa"]["actions"]
    out = _fire(d, dcsrf, app, "dl-history.is_open", click={"type": "dl-history-open", "id": "team-qa"}).json
    restore_buttons = [n for n in _walk(out["response"]["dl-history-body"]["children"])
                       if isinstance(n.get("props", {}).get("id"), dict) and n["props"]["id"].get("type") == "dl-restore"]
    assert restore_buttons == [], "a developer may not restore the shared definition"
    click = {"type": "dl-restore", "id": "team-qa", "n": 1, "scope": "shared"}
    assert _fire(d, dcsrf, app, "dl-restore-done.data", click=click).status_code == 403
    assert d.post("/api/dashboards/team-qa/versions/1/restore?scope=shared",
                  headers={CSRF_HEADER: dcsrf}).status_code == 403, "as its REST twin"
    assert _fire(d, dcsrf, app, "dl-delete-done.data", click={"type": "dl-delete", "id": "team-qa"}).status_code == 403
    q, qcsrf = signed_in(app, auth, "qa_lead")
    note = _done(_fire(q, qcsrf, app, "dl-restore-done.data", click=click), "dl-restore-done")
    assert note["level"] == "success", note
    assert s.get("team-qa", qa).dashboard.widget("w1").position.x == 0
    note = _done(_fire(q, qcsrf, app, "dl-delete-done.data", click={"type": "dl-delete", "id": "team-qa"}),
                 "dl-delete-done")
    assert "Deleted “Team QA”" in note["text"] and s.get("team-qa", qa) is None


def test_dl009_copies_reset_to_the_default_and_provisioned_ones_are_never_deleted(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    s, dev = svc.dashboards, _principal(app, "developer")
    base = s.get("developer", dev).dashboard
    first = base.widgets[0]
    moved = base.model_copy(update={"widgets": [first.model_copy(update={"position": first.position.model_copy(
        update={"x": 9})}), *base.widgets[1:]]})
    s.save_personal("developer", dev, moved)
    d, dcsrf = signed_in(app, auth, "developer")
    [row] = _list(d, dcsrf, app)
    assert row["kind"] == "provisioned your copy" and "developer-user" in row["changed"]
    assert "Reset to default" in row["actions"] and "Delete" not in row["actions"]
    note = _done(_fire(d, dcsrf, app, "dl-delete-done.data", click={"type": "dl-delete", "id": "developer"}),
                 "dl-delete-done")
    assert note["level"] == "warning" and "cannot be deleted" in note["text"], "provisioned: a message, not a 500"
    note = _done(_fire(d, dcsrf, app, "dl-delete-done.data", click={"type": "dl-reset", "id": "developer"}),
                 "dl-delete-done")
    assert note["level"] == "success"
    assert s.get("developer", dev).personal_copy is False and s.get("developer", dev).dashboard == base
    [row] = _list(d, dcsrf, app)
    assert (row["kind"], row["changed"]) == ("provisioned", "as provisioned")


def test_dl010_new_dashboard_needs_update_personal_settings(app: Any, auth: Any) -> None:
    svc = app.server.extensions["qms"]
    d, dcsrf = signed_in(app, auth, "developer")
    res = _fire(d, dcsrf, app, "dl-create-done.data", {"dl-new.n_clicks": 1, "dl-new-title.value": "  My board "})
    assert res.json["response"]["dl-nav"]["href"] == "/dashboards/my-board"
    found = svc.dashboards.get("my-board", _principal(app, "developer"))
    assert (found.kind, found.dashboard.title, found.dashboard.widgets) == ("personal", "My board", [])
    empty = _done(_fire(d, dcsrf, app, "dl-create-done.data", {"dl-new.n_clicks": 2, "dl-new-title.value": " "}),
                  "dl-create-done")
    assert empty["level"] == "warning" and "title" in empty["text"]
    e, ecsrf = signed_in(app, auth, "producer")        # no update:personal_settings (and no dashboard)
    assert _fire(e, ecsrf, app, "dl-create-done.data", {"dl-new.n_clicks": 1,
                                                        "dl-new-title.value": "Exec board"}).status_code == 403
    assert e.post("/api/dashboards", json={"title": "Exec board"}, headers={CSRF_HEADER: ecsrf}).status_code == 403
    # delete one's own personal dashboard
    note = _done(_fire(d, dcsrf, app, "dl-delete-done.data", click={"type": "dl-delete", "id": "my-board"}),
                 "dl-delete-done")
    assert "Deleted “My board”" in note["text"]
    assert svc.dashboards.get("my-board", _principal(app, "developer")) is None
