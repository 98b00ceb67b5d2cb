"""Dashboards as data over real HTTP (Flask test client, real Redis): the provisioned role
dashboards, personal copies against the shared definition, visibility, manage:dashboards,
versions and restore with who and when, stars, export and import between users, 422s
naming the widget and the field, and a refused definition file keeping its last good
version."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from dashboards.provision import DEFAULT_DIR, Provisioner
from tests.private_redis import private_redis  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def client_of(app: Any, auth: Any, role: str, name: str | None = None) -> Any:
    c = app.server.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = auth.bearer(role, name)["Authorization"]
    return c


def data(res: Any, status: int = 200) -> Any:
    assert res.status_code == status, f"{res.status_code}: {res.data[:400]!r}"
    return res.json["response"]["data"]


def err(res: Any, status: int) -> dict[str, Any]:
    assert res.status_code == status, f"{res.status_code}: {res.data[:400]!r}"
    body = res.json["response"]
    assert body["status"] == "error" and "data" not in body
    return body["error"]


def ids(res: Any) -> list[str]:
    return [d["id"] for d in data(res)["dashboards"]]


def widget(d: dict[str, Any], wid: str) -> dict[str, Any]:
    return next(w for w in d["widgets"] if w["id"] == wid)


def audit_entries(app: Any, prefix: str = "dashboard.") -> list[dict[str, Any]]:
    return list(reversed(app.server.extensions["qms"].audit.query(action_prefix=prefix, limit=100)))


GAUGE = {"id": "sla-gauge", "type": "gauge_chart", "title": "SLA adherence", "position": {"x": 0, "y": 30, "width": 4,
                                                                                        "height": 4},
         "data_sources": [{"source": "kpi", "metric": "sla_adherence"}],
         "alert_thresholds": {"warning": 95, "critical": 85, "direction": "below"}}


# --- listing and visibility -------------------------------------------------------------------

def test_dsh001_each_role_lists_the_role_dashboards_it_may_open(app: Any, auth: Any) -> None:
    assert ids(client_of(app, auth, "developer").get("/api/dashboards")) == ["developer"]
    assert ids(client_of(app, auth, "executive").get("/api/dashboards")) == ["executive"]
    assert ids(client_of(app, auth, "operations").get("/api/dashboards")) == ["operational"]
    assert ids(client_of(app, auth, "qa_lead").get("/api/dashboards")) == ["qa"]
    admin = data(client_of(app, auth, "admin").get("/api/dashboards"))
    # sorted by title: Developer, Executive, Operations, Quality assurance
    assert [d["id"] for d in admin["dashboards"]] == ["developer", "executive", "operational", "qa"]
    qa = next(d for d in admin["dashboards"] if d["id"] == "qa")
    assert qa == {"id": "qa", "title": "Quality assurance", "description": "Quality gates, defects, compliance and risk.",
                  "owner": "system", "kind": "provisioned", "starred": False, "personal_copy": False,
                  "updated_at": None, "updated_by": None, "tags": ["role", "qa", "quality", "compliance"],
                  "widgets": 20}
    assert admin["provision_errors"] == []
    assert "provision_errors" not in data(client_of(app, auth, "developer").get("/api/dashboards"))


def test_dsh002_a_dashboard_one_may_not_see_is_a_404_like_one_that_does_not_exist(app: Any, auth: Any) -> None:
    dev = client_of(app, auth, "developer")
    for path in ("/api/dashboards/executive", "/api/dashboards/nothing", "/api/dashboards/executive/versions",
                 "/api/dashboards/executive/export"):
        assert err(dev.get(path), 404)["code"] == "not_found", path
    assert err(dev.put("/api/dashboards/executive/star"), 404)["code"] == "not_found"
    assert err(dev.put("/api/dashboards/executive", json={"title": "x"}), 404)["code"] == "not_found"
    got = data(dev.get("/api/dashboards/developer"))
    assert got["kind"] == "provisioned" and got["personal_copy"] is False and got["file"] == \
        "config/dashboards/developer.yaml"
    assert [w["id"] for w in got["widgets"]][7:10] == ["dev-queue", "dev-suggested", "dev-kanban"]


def test_dsh003_search_by_title_or_tag_and_starred_first(app: Any, auth: Any) -> None:
    admin = client_of(app, auth, "admin")
    assert ids(admin.get("/api/dashboards?q=QUALITY")) == ["executive", "qa"]   # a tag, then a title
    assert ids(admin.get("/api/dashboards?q=agents")) == ["operational"]
    assert ids(admin.get("/api/dashboards?q=nothing-like-it")) == []
    assert data(admin.put("/api/dashboards/qa/star")) == {"id": "qa", "starred": True}
    listed = data(admin.get("/api/dashboards"))["dashboards"]
    assert [(d["id"], d["starred"]) for d in listed] == [("qa", True), ("developer", False), ("executive", False),
                                                         ("operational", False)]
    other_admin = client_of(app, auth, "admin", "admin-2")
    assert ids(other_admin.get("/api/dashboards"))[0] == "developer", "stars are per user"
    assert data(admin.delete("/api/dashboards/qa/star")) == {"id": "qa", "starred": False}
    assert ids(admin.get("/api/dashboards"))[0] == "developer"


# --- personal copies and shared definitions -----------------------------------------------------

def test_dsh004_a_personal_copy_is_the_callers_alone_and_resets_to_the_shared_one(app: Any, auth: Any) -> None:
    dan, eve = client_of(app, auth, "developer", "dan"), client_of(app, auth, "developer", "eve")
    d = data(dan.get("/api/dashboards/developer"))
    widget(d, "dev-kanban")["position"] = {"x": 0, "y": 0, "width": 6, "height": 4}
    saved = data(dan.put("/api/dashboards/developer", json=d))
    assert saved["personal_copy"] is True and saved["kind"] == "provisioned" and saved["updated_by"] == "dan"
    assert widget(data(dan.get("/api/dashboards/developer")), "dev-kanban")["position"] == \
        {"x": 0, "y": 0, "width": 6, "height": 4}
    assert widget(data(eve.get("/api/dashboards/developer")), "dev-kanban")["position"] == \
        {"x": 0, "y": 9, "width": 12, "height": 6}, "another developer still sees the provisioned layout"
    assert [(x["id"], x["personal_copy"]) for x in data(dan.get("/api/dashboards"))["dashboards"]] == \
        [("developer", True)]
    reset = data(dan.delete("/api/dashboards/developer?scope=personal"))
    assert reset["deleted"] == "personal copy" and reset["now"]["personal_copy"] is False
    assert widget(reset["now"], "dev-kanban")["position"]["width"] == 12
    assert err(dan.delete("/api/dashboards/developer?scope=personal"), 404)["message"] == \
        "no personal copy of 'developer'"
    actions = [(e["type"], e["data"]["user"], e["data"].get("dashboard")) for e in audit_entries(app)]
    assert actions == [("dashboard.saved", "dan", "developer"), ("dashboard.deleted", "dan", "developer")]


def test_dsh005_saving_the_shared_definition_needs_manage_dashboards(app: Any, auth: Any) -> None:
    dev = client_of(app, auth, "developer")
    d = data(dev.get("/api/dashboards/developer"))
    e = err(dev.put("/api/dashboards/developer?scope=shared", json=d), 403)
    assert e["message"] == "saving a shared dashboard needs the permission manage:dashboards"
    exe, exe2 = client_of(app, auth, "executive", "ann"), client_of(app, auth, "executive", "bob")
    # A producer (no update:personal_settings, no dashboard) can keep no personal copy.
    prod = client_of(app, auth, "producer")
    assert prod.put("/api/dashboards/executive", json=d).status_code == 403
    d = data(exe.get("/api/dashboards/executive"))
    widget(d, "exec-cost")["position"] = {"x": 0, "y": 8, "width": 4, "height": 5}
    widget(d, "exec-trends")["position"] = {"x": 4, "y": 8, "width": 8, "height": 5}
    d["widgets"].append(GAUGE)
    shared = data(exe.put("/api/dashboards/executive?scope=shared", json=d))
    assert shared["kind"] == "provisioned" and shared["owner"] == "system" and shared["personal_copy"] is False
    seen = data(exe2.get("/api/dashboards/executive"))
    assert widget(seen, "exec-cost")["position"]["x"] == 0 and widget(seen, "sla-gauge")["alert_thresholds"] == \
        {"warning": 95.0, "critical": 85.0, "direction": "below"}
    assert seen["updated_by"] == "ann"
    assert err(exe.delete("/api/dashboards/executive"), 409)["message"].startswith(
        "'executive' is provisioned from config/dashboards/executive.yaml and cannot be deleted")
    back = data(exe.delete("/api/dashboards/executive?scope=shared"))
    assert back["deleted"] == "shared override" and len(back["now"]["widgets"]) == 19
    assert [w["id"] for w in data(exe2.get("/api/dashboards/executive"))["widgets"]].count("sla-gauge") == 0
    assert err(exe.delete("/api/dashboards/executive?scope=shared"), 409)["code"] == "conflict"


def test_dsh006_a_qa_lead_builds_a_team_dashboard_and_shares_it_with_the_role(app: Any, auth: Any) -> None:
    quinn = client_of(app, auth, "qa_lead", "quinn")
    body = {"title": "Gate health", "tags": ["gates"], "visibility": {"roles": ["qa_lead"]},
            "widgets": [{"id": "gates", "type": "gate_table", "title": "Gates",
                         "data_sources": [{"source": "computed", "name": "gates"}]}]}
    made = data(quinn.post("/api/dashboards?scope=shared", json=body), 201)
    assert (made["id"], made["kind"], made["owner"], made["visibility"]["roles"]) == \
        ("gate-health", "shared", "quinn", ["qa_lead"])
    other_lead = client_of(app, auth, "qa_lead", "quentin")
    assert ids(other_lead.get("/api/dashboards?q=gate")) == ["gate-health"]
    assert data(other_lead.get("/api/dashboards/gate-health"))["widgets"][0]["id"] == "gates"
    dev = client_of(app, auth, "developer")
    assert "gate-health" not in ids(dev.get("/api/dashboards"))
    assert err(dev.get("/api/dashboards/gate-health"), 404)["code"] == "not_found"
    assert err(dev.post("/api/dashboards?scope=shared", json=body), 403)["code"] == "forbidden"
    # A second one with the same title gets the next free id.
    assert data(quinn.post("/api/dashboards?scope=shared", json=body), 201)["id"] == "gate-health-2"
    assert data(other_lead.delete("/api/dashboards/gate-health"))["deleted"] == "shared"
    assert err(quinn.get("/api/dashboards/gate-health"), 404)["code"] == "not_found"
    created = [e for e in audit_entries(app) if e["type"] == "dashboard.created"]
    assert [(e["data"]["user"], e["data"]["dashboard"], e["data"]["scope"]) for e in created] == \
        [("quinn", "gate-health", "shared"), ("quinn", "gate-health-2", "shared")]


def test_dsh007_a_personal_dashboard_is_seen_by_nobody_else_whatever_its_visibility_said(app: Any, auth: Any) -> None:
    dan = client_of(app, auth, "developer", "dan")
    made = data(dan.post("/api/dashboards", json={"title": "My board!", "visibility": {"roles": ["executive"]},
                                                  "owner": "someone-else"}), 201)
    assert (made["id"], made["kind"], made["owner"], made["visibility"]["roles"]) == ("my-board", "personal", "dan", [])
    for role, name in (("executive", None), ("developer", "eve"), ("admin", None)):
        assert err(client_of(app, auth, role, name).get("/api/dashboards/my-board"), 404)["code"] == "not_found"
    assert ids(dan.get("/api/dashboards")) == ["developer", "my-board"]
    # Sharing it needs manage:dashboards.
    assert err(dan.put("/api/dashboards/my-board?scope=shared", json=made), 403)["code"] == "forbidden"
    assert data(dan.delete("/api/dashboards/my-board")) == {"id": "my-board", "deleted": "personal"}
    assert err(dan.get("/api/dashboards/my-board"), 404)["code"] == "not_found"


def test_dsh008_sharing_by_team_follows_the_users_team(app: Any, auth: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    r.hset(svc.keys.authors, "dan", orjson.dumps([1, "e1", "platform"]))
    r.hset(svc.keys.authors, "eve", orjson.dumps([1, "e2", "mobile"]))
    admin = client_of(app, auth, "admin")
    data(admin.post("/api/dashboards?scope=shared", json={"id": "platform", "title": "Platform",
                                                         "visibility": {"teams": ["platform"], "users": ["zed"]}}), 201)
    assert ids(client_of(app, auth, "developer", "dan").get("/api/dashboards")) == ["developer", "platform"]
    assert ids(client_of(app, auth, "developer", "eve").get("/api/dashboards")) == ["developer"]
    assert ids(client_of(app, auth, "operations", "zed").get("/api/dashboards")) == ["operational", "platform"]


# --- versions -----------------------------------------------------------------------------------

def test_dsh009_each_save_is_a_version_with_who_when_and_what_and_restore_makes_a_new_one(app: Any, auth: Any) -> None:
    ann, bob = client_of(app, auth, "executive", "ann"), client_of(app, auth, "admin", "bob")
    d = data(ann.get("/api/dashboards/executive"))
    widget(d, "exec-cost")["position"]["x"] = 0
    widget(d, "exec-cost")["position"]["y"] = 30
    d["widgets"].append(GAUGE)
    data(ann.put("/api/dashboards/executive?scope=shared", json=d))
    d2 = data(bob.get("/api/dashboards/executive"))
    d2["title"] = "Leadership"
    d2["widgets"] = [w for w in d2["widgets"] if w["id"] != "exec-roi"]
    widget(d2, "exec-risks")["position"]["width"] = 12
    widget(d2, "exec-risks")["position"]["x"] = 0
    data(bob.put("/api/dashboards/executive?scope=shared", json=d2))
    v = data(ann.get("/api/dashboards/executive/versions"))
    assert v["scope"] == "shared"
    assert [(x["n"], x["by"], x["summary"], x["widgets"]) for x in v["versions"]] == [
        (2, "bob", "renamed to 'Leadership'; removed exec-roi; moved exec-risks; resized exec-risks", 19),
        (1, "ann", "added sla-gauge; moved exec-cost", 20)]
    assert all(x["at"].endswith("Z") for x in v["versions"]) and v["versions"][0]["at"] >= v["versions"][1]["at"]
    restored = data(ann.post("/api/dashboards/executive/versions/1/restore"))
    assert restored["title"] == "Executive" and widget(restored, "exec-roi")["id"] == "exec-roi"
    assert restored["saved_version"]["n"] == 3
    top = data(ann.get("/api/dashboards/executive/versions"))["versions"][0]
    assert (top["n"], top["by"]) == (3, "ann")
    assert top["summary"] == "restored version 1; renamed to 'Executive'; added exec-roi; moved exec-risks; " \
                             "resized exec-risks"
    assert err(ann.post("/api/dashboards/executive/versions/9/restore"), 404)["message"] == \
        "no version 9 of 'executive'"
    audited = [(e["type"], e["data"]["user"], e["data"]["version"], e["data"]["summary"]) for e in audit_entries(app)]
    assert audited == [("dashboard.shared_saved", "ann", 1, "added sla-gauge; moved exec-cost"),
                       ("dashboard.shared_saved", "bob", 2, v["versions"][0]["summary"]),
                       ("dashboard.restored", "ann", 3, top["summary"])]
    assert audit_entries(app)[-1]["data"]["restored"] == 1


def test_dsh010_a_personal_copy_has_its_own_history(app: Any, auth: Any) -> None:
    dan = client_of(app, auth, "developer", "dan")
    d = data(dan.get("/api/dashboards/developer"))
    assert data(dan.get("/api/dashboards/developer/versions")) == {"id": "developer", "scope": "shared",
                                                                  "versions": []}
    widget(d, "dev-queue")["title"] = "To review"
    data(dan.put("/api/dashboards/developer", json=d))
    widget(d, "dev-queue")["refresh_interval"] = 60
    data(dan.put("/api/dashboards/developer", json=d))
    v = data(dan.get("/api/dashboards/developer/versions"))
    assert v["scope"] == "personal" and [(x["n"], x["summary"]) for x in v["versions"]] == \
        [(2, "changed dev-queue"), (1, "changed dev-queue")]
    assert data(dan.get("/api/dashboards/developer/versions?scope=shared"))["versions"] == []
    restored = data(dan.post("/api/dashboards/developer/versions/1/restore"))
    assert restored["personal_copy"] is True and widget(restored, "dev-queue")["refresh_interval"] == "live"
    assert err(dan.post("/api/dashboards/developer/versions/1/restore?scope=shared"), 404)["code"] == "not_found"
    eve = client_of(app, auth, "developer", "eve")
    assert err(eve.get("/api/dashboards/developer/versions?scope=personal"), 404)["code"] == "not_found"


# --- export and import --------------------------------------------------------------------------

def test_dsh011_an_export_imports_as_another_users_personal_dashboard(app: Any, auth: Any) -> None:
    admin, dan = client_of(app, auth, "admin", "root"), client_of(app, auth, "developer", "dan")
    res = admin.get("/api/dashboards/operational/export")
    assert res.status_code == 200 and res.mimetype == "application/json"
    assert res.headers["Content-Disposition"] == 'attachment; filename="operational.dashboard.json"'
    exported = orjson.loads(res.data)
    assert "owner" not in exported and "visibility" not in exported and exported["id"] == "operational"
    made = data(dan.post("/api/dashboards/import", json=exported), 201)
    assert (made["id"], made["kind"], made["owner"], made["title"]) == ("operational-2", "personal", "dan", "Operations")
    assert [w["id"] for w in made["widgets"]] == [w["id"] for w in exported["widgets"]]
    assert ids(dan.get("/api/dashboards")) == ["developer", "operational-2"]
    assert err(admin.get("/api/dashboards/operational-2"), 404)["code"] == "not_found"
    assert data(dan.get("/api/dashboards/operational-2/versions"))["versions"][0]["summary"] == "imported"
    # A free id is kept; the definition's owner and visibility never travel.
    exported.update({"id": "ops-copy", "owner": "root", "visibility": {"roles": ["developer"]}})
    again = data(dan.post("/api/dashboards/import", json=exported), 201)
    assert (again["id"], again["owner"], again["visibility"]["roles"]) == ("ops-copy", "dan", [])
    entries = [e for e in audit_entries(app) if e["type"] == "dashboard.imported"]
    assert [(e["data"]["user"], e["data"]["dashboard"]) for e in entries] == [("dan", "operational-2"),
                                                                             ("dan", "ops-copy")]


# --- invalid input --------------------------------------------------------------------------------

def test_dsh012_an_invalid_definition_is_a_422_naming_widget_and_field(app: Any, auth: Any) -> None:
    admin = client_of(app, auth, "admin")
    d = data(admin.get("/api/dashboards/executive"))
    widget(d, "exec-cost")["position"]["width"] = 13
    widget(d, "exec-roi")["type"] = "bogus"
    e = err(admin.put("/api/dashboards/executive?scope=shared", json=d), 422)
    assert e["code"] == "invalid_definition"
    assert e["errors"] == [{"widget": "exec-cost", "field": "position.width", "message": "must be at most 12"},
                           {"widget": "exec-roi", "field": "type", "message": "unknown widget type 'bogus'"}]
    assert e["message"].split("\n") == [
        "PUT /api/dashboards/executive: widget 'exec-cost': position.width: must be at most 12",
        "PUT /api/dashboards/executive: widget 'exec-roi': type: unknown widget type 'bogus'"]
    assert data(admin.get("/api/dashboards/executive/versions"))["versions"] == [], "nothing saved"
    e = err(admin.put("/api/dashboards/executive", json={**data(admin.get("/api/dashboards/executive")),
                                                         "id": "other"}), 422)
    assert e["errors"] == [{"widget": None, "field": "id", "message": "must be 'executive' (the dashboard's id), "
                                                                       "not 'other'"}]
    e = err(admin.post("/api/dashboards", json=[1, 2]), 422)
    assert e["message"] == "POST /api/dashboards: a dashboard definition is an object, not list"
    e = err(admin.post("/api/dashboards", json={"title": "x", "widgets": [{"id": "a", "type": "kpi_card", "title": "A",
                                                                           "refresh_interval": 1}]}), 422)
    assert e["errors"] == [{"widget": "a", "field": "refresh_interval",
                            "message": 'must be "live", "off" or seconds between 5 and 86400'}]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[" * 100 + b"]" * 100])
def test_dsh013_malformed_empty_or_too_deep_json_is_a_400(app: Any, auth: Any, raw: bytes) -> None:
    admin = client_of(app, auth, "admin")
    for method, path in (("POST", "/api/dashboards"), ("PUT", "/api/dashboards/qa"),
                         ("POST", "/api/dashboards/import")):
        e = err(admin.open(path, method=method, data=raw, content_type="application/json"), 400)
        assert e["code"] == "bad_request", (method, path)
    assert data(admin.get("/api/dashboards/qa/versions"))["versions"] == []


def test_dsh014_bad_query_values_are_400s_and_anonymous_callers_401s(app: Any, auth: Any, anon: Any) -> None:
    admin = client_of(app, auth, "admin")
    assert err(admin.put("/api/dashboards/qa?scope=everyone", json={}), 400)["message"].startswith("scope:")
    assert err(admin.get("/api/dashboards/qa/versions?scope=x"), 400)["code"] == "bad_request"
    for method, path in (("GET", "/api/dashboards"), ("GET", "/api/dashboards/qa"), ("POST", "/api/dashboards"),
                         ("PUT", "/api/dashboards/qa/star"), ("POST", "/api/dashboards/import")):
        assert err(anon.open(path, method=method, json={}), 401)["code"] == "unauthorized"


# --- provisioning ---------------------------------------------------------------------------------

def _provisioned_app(settings: Any, r: Any, tmp_path: Path) -> tuple[Any, Path]:
    from tests.helpers import make_app
    folder = tmp_path / "dashboards"
    shutil.copytree(DEFAULT_DIR, folder)
    app = make_app(settings.replace(dashboards_dir=str(folder)))
    return app, folder


def test_dsh015_a_refused_file_keeps_the_previous_version_and_says_why(settings: Any, r: Any, tmp_path: Path) -> None:
    from tests.conftest import AuthActions
    app, folder = _provisioned_app(settings, r, tmp_path)
    auth = AuthActions(app)
    admin = client_of(app, auth, "admin")
    qa = folder / "qa.yaml"
    text = qa.read_text()
    qa.write_text(text.replace("title: Quality assurance", "title: QA (edited)"))
    svc = app.server.extensions["qms"]
    svc.dashboards.provisioned.refresh(force=True)
    assert data(admin.get("/api/dashboards/qa"))["title"] == "QA (edited)", "a good edit is picked up"
    qa.write_text(text.replace("title: Quality assurance", "title: QA (edited)")
                      .replace("position: {x: 7, y: 0, width: 5, height: 6}", "position: {x: 7, y: 0, width: 6, height: 6}")
                      .replace("type: test_coverage", "type: coverage_pie"))
    svc.dashboards.provisioned.refresh(force=True)
    got = data(admin.get("/api/dashboards/qa"))
    assert got["title"] == "QA (edited)" and widget(got, "qa-gate-table")["position"]["width"] == 5
    listed = data(admin.get("/api/dashboards"))
    assert listed["provision_errors"] == [{"file": str(qa), "message": (
        f"{qa}: widget 'qa-gate-table': position: x + width must be at most 12 (x=7, width=6)\n"
        f"{qa}: widget 'qa-coverage': type: unknown widget type 'coverage_pie'")}]
    assert svc.dashboards.provision_errors() == listed["provision_errors"]
    # After a restart with the file still refused, the last good version comes from Redis.
    fresh = Provisioner(folder, r=svc.redis, keys=svc.keys)
    assert fresh.get("qa").title == "QA (edited)" and fresh.entry("qa").current is False
    assert [e["file"] for e in fresh.errors()] == [str(qa)]
    # A file that never validated provides nothing, and says so.
    (folder / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    svc.dashboards.provisioned.refresh(force=True)
    errors = {e["file"]: e["message"] for e in data(admin.get("/api/dashboards"))["provision_errors"]}
    assert errors[str(folder / "broken.yaml")].startswith(f"{folder / 'broken.yaml'}: invalid YAML (line 3")
    assert "broken" not in ids(admin.get("/api/dashboards"))
    # Fixing the file clears its error.
    qa.write_text(text)
    (folder / "broken.yaml").unlink()
    svc.dashboards.provisioned.refresh(force=True)
    assert data(admin.get("/api/dashboards"))["provision_errors"] == []
    assert data(admin.get("/api/dashboards/qa"))["title"] == "Quality assurance"


def test_dsh016_files_are_re_read_when_they_change_at_most_once_a_second(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    shutil.copytree(DEFAULT_DIR, folder)
    now = [100.0]
    p = Provisioner(folder, clock=lambda: now[0])
    assert p.get("developer").title == "Developer"
    dev = folder / "developer.yaml"
    dev.write_text(dev.read_text().replace("title: Developer\n", "title: Dev\n"))
    assert p.get("developer").title == "Developer", "not looked at again within the second"
    now[0] += 1.0
    assert p.get("developer").title == "Dev"
    (folder / "dup.yaml").write_text("id: developer\ntitle: Another\n")
    now[0] += 1.0
    assert p.get("developer").title == "Dev"
    assert p.errors() == [{"file": str(folder / "dup.yaml"),
                           "message": f"{folder / 'dup.yaml'}: id: 'developer' is already provisioned by {dev}"}]


# --- the data store -------------------------------------------------------------------------------

def test_dsh017_a_write_is_all_or_nothing(app: Any, auth: Any, r: Any) -> None:
    """A key of the wrong type fails the whole save before anything is written (EXEC would
    have written the copy and failed only its version)."""
    svc = app.server.extensions["qms"]
    dan = client_of(app, auth, "developer", "dan")
    d = data(dan.get("/api/dashboards/developer"))
    d["title"] = "Mine"
    r.set(svc.keys.dash_versions("developer", "dan"), "not a list")
    res = dan.put("/api/dashboards/developer", json=d)
    assert res.status_code == 503 and res.json["response"]["error"]["code"] == "unavailable"
    assert r.hget(svc.keys.dash_user("dan"), "developer") is None
    assert data(dan.get("/api/dashboards/developer"))["title"] == "Developer"
    r.delete(svc.keys.dash_versions("developer", "dan"))
    assert data(dan.put("/api/dashboards/developer", json=d))["saved_version"] == {"n": 1, "summary":
                                                                                   "renamed to 'Mine'"}


def test_dsh018_redis_down_is_the_apps_json_503(private_redis: Any) -> None:
    from auth.principal import issue_jwt
    from tests.private_redis import KEY
    app = private_redis.app()
    c = app.server.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + issue_jwt("ada", ["admin"], 600, KEY)
    assert data(c.get("/api/dashboards/qa"))["id"] == "qa"
    private_redis.terminate()
    for method, path, body in (("GET", "/api/dashboards", None), ("GET", "/api/dashboards/qa", None),
                               ("PUT", "/api/dashboards/qa", {"title": "x"}), ("POST", "/api/dashboards", {"title": "x"}),
                               ("GET", "/api/dashboards/qa/versions", None), ("PUT", "/api/dashboards/qa/star", None)):
        res = c.open(path, method=method, json=body)
        assert res.status_code == 503 and res.headers["Retry-After"], (method, path, res.status_code)
        assert res.json["response"]["error"]["code"] == "unavailable", (method, path)
