"""Every Dash callback that has a REST twin needs the same permission as the twin, for every
role; the theme callback stores nothing for roles without update:personal_settings.

Real Redis, Flask test client with a real session and CSRF token (as the browser sends).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from auth.guard import CSRF_HEADER
from auth.rbac import DASHBOARD_PERMISSION
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms
from auth.principal import Principal
from dashboards.provision import Provisioner
from dashboards.schema import dump
from tests.conftest import ROLES
from tests.integration.test_no_5xx import UPDATE, _key, _with
from tests.integration.test_rbac_matrix import ALL_ROLES, callback_body, signed_in


# --- the same permission for a callback and its REST twin ------------------------------------------

def _theme_body(app: Any, clicks: int | None) -> dict[str, Any]:
    key = _key(app, "theme.data")
    return _with(app, key, callback_body(app, key), "theme-toggle.n_clicks", clicks)


def test_nf010_the_theme_callback_stores_nothing_without_update_personal_settings(app: Any, auth: Any) -> None:
    """(The hide-widget callback it was tested with is gone: the edit mode's personal copies
    replace hiding; PUT /api/widgets/<id>/config, its REST side, is in test_rbac_matrix.)"""
    svc = app.server.extensions["qms"]
    rbac = svc.rbac
    for role in ROLES:
        c, csrf = signed_in(app, auth, role)
        headers = {CSRF_HEADER: csrf}
        may = rbac.allows([role], "update:personal_settings")
        # Everyone switches their own browser's theme; only the permission saves it.
        res = c.post(UPDATE, json=_theme_body(app, 1), headers=headers)
        assert res.status_code == 200 and res.json["response"]["theme"]["data"] == "dark", role
        # A page load: the router brings the saved theme (when it differs from the browser's),
        # else leaves the browser's own.
        from tests.integration.test_auth import route_body
        loaded = c.post(UPDATE, json=route_body(app), headers=headers)
        assert loaded.status_code == 200, (role, loaded.data[:200])
        saved = loaded.json["response"].get("theme", {}).get("data")
        assert saved == ("dark" if may else None), (role, saved)
        assert c.post(UPDATE, json=_theme_body(app, None), headers=headers).status_code == 204   # no click, nothing
        stored = svc.redis.hget(svc.keys.prefs, f"{role}-user")
        if not may:
            assert stored is None, f"{role}: settings stored without update:personal_settings: {stored!r}"


# Callbacks without a REST twin, and why.
NO_TWIN = {
    "page.children": "the router: each page it builds checks that page's permission (test_rbac_matrix)",
    "theme.data": "no REST endpoint for the theme; needs update:personal_settings to store (test_nf010)",
    "nav.href": "navigation to a gate page: a URL, no data",
    "backfill-notice.children": "how far the demo's history is simulated (every signed-in user), no dashboard data",
    # The edit mode (callbacks/edit.py) changes the definition in the page; saving it is the
    # twin (PUT /api/dashboards/<id>). These read no data beyond what the refresh draws:
    "dash-edit-bar.className": "the edit bar follows the edit flag in the page, no data",
    "dash-edit-undo.children": "the undo button's label, from the undo stack in the page",
    "dash-edit.data@": "entering or leaving edit mode redraws the grid's shells, no data",
    "dash-def.data@": "an edit (move, resize, duplicate, remove, undo, add, configure) of the definition in the page",
    "dash-cfg-modal.is_open": "the configure dialog: the sources offered are those sources.allowed lets the user read",
    "dash-share-modal.is_open": "opens the Share dialog (its Save is PUT /api/dashboards/<id>?scope=shared)",
    "dash-lib-body.children": "the widget library: previews drawn under sources.allowed per source, as the "
                              "refresh (twin: GET /api/dashboards/<id>/widgets/<w>/data) draws a saved widget",
    "dash-cfg-preview.children": "a preview of the widget being configured (unsaved: no REST form), drawn under "
                                 "sources.allowed per source as the refresh draws a saved one",
}


ONE_KPI = {"executive": "process_adoption_rate", "operational": "total_active_reviews", "qa": "total_gates_executed",
           "developer": "pending_reviews"}
Sample = tuple[dict[str, Any], str, str, Any]     # (callback body, REST method, REST path, REST JSON body)


def _set(body: dict[str, Any], want: Any) -> dict[str, Any]:
    """The body with each input/state for which want(id, property) gives a value set to it."""
    out = copy.deepcopy(body)
    for group in ("inputs", "state"):
        for item in out[group]:
            if isinstance(item, dict):
                value = want(item["id"], item["property"])
                if value is not None:
                    item["value"] = value
    return out


def _row_click(app: Any, key: str, ident: str, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    """The body of `key` with its row button (its pattern input, or the one of type `kind`)
    for dashboard `ident` clicked."""
    body = callback_body(app, key)
    for i, dep in enumerate(app.callback_map[key]["inputs"]):
        if dep["id"].startswith("{") and kind in (None, json.loads(dep["id"])["type"]):
            cid = {"type": json.loads(dep["id"])["type"], "id": ident, **extra}
            body["inputs"][i] = [{"id": cid, "property": dep["property"], "value": 1}]
            body["changedPropIds"] = [json.dumps(cid, separators=(",", ":"), sort_keys=True) + "." + dep["property"]]
            break
    return body


def _list_samples(app: Any, key: str, twin: str) -> list[Sample]:
    """The dashboard list's actions (callbacks/dashboards_list.py) on a provisioned and a missing dashboard."""
    out: list[Sample] = []
    for ident in ("developer", "none"):
        if twin == "PUT /api/dashboards/<dash_id>/star":
            out.append((_row_click(app, key, ident), "PUT", f"/api/dashboards/{ident}/star", None))
        elif twin == "DELETE /api/dashboards/<dash_id>":      # Delete, and Reset to default (drop one's copy)
            out.append((_row_click(app, key, ident, "dl-delete"), "DELETE", f"/api/dashboards/{ident}", None))
            out.append((_row_click(app, key, ident, "dl-reset"), "DELETE", f"/api/dashboards/{ident}?scope=personal",
                        None))
        elif twin == "GET /api/dashboards/<dash_id>/versions":
            out.append((_row_click(app, key, ident), "GET", f"/api/dashboards/{ident}/versions", None))
        elif twin == "POST /api/dashboards/<dash_id>/versions/<n>/restore":
            out.append((_row_click(app, key, ident, n=1, scope="shared"), "POST",
                        f"/api/dashboards/{ident}/versions/1/restore?scope=shared", None))
    if twin == "POST /api/dashboards" and "dl-create-done" in key:
        out.append((_set(callback_body(app, key), lambda i, p: "Twin board" if (i, p) == ("dl-new-title", "value")
                         else None), "POST", "/api/dashboards", {"title": "Twin board"}))
    if twin == "GET /api/dashboards":
        out.append((callback_body(app, key), "GET", "/api/dashboards", None))
    return out


def twins_dashboard(app: Any) -> dict[str, Any]:
    """A shared dashboard every role may open, holding a widget of each role dashboard (as
    provisioned) and the cost analysis: the refresh callback and GET /api/dashboards/<id>/
    widgets/<w>/data then differ only by the widget's data sources."""
    svc = app.server.extensions["qms"]
    found = svc.dashboards.get("twins", Principal("admin-user", ("admin",), svc.rbac.permissions_for(["admin"])))
    if found is not None:
        return found.dashboard.model_dump(mode="json")
    defs = Provisioner().dashboards()
    picked = [defs[d].widgets[0] for d in DASHBOARD_PERMISSION] + [defs["executive"].widget("exec-cost-split"),
                                                                   defs["executive"].widget("exec-risks")]
    widgets = [{**w.model_dump(mode="json"), "position": {"x": 0, "y": 4 * i, "width": 6, "height": 4}}
               for i, w in enumerate(picked)]
    admin = Principal("admin-user", ("admin",), svc.rbac.permissions_for(["admin"]))
    doc = {"id": "twins", "title": "Twins", "visibility": {"roles": list(ALL_ROLES)}, "widgets": widgets}
    return svc.dashboards.create(admin, doc, shared=True).dashboard.model_dump(mode="json")


def _samples(app: Any, key: str, twin: str) -> list[Sample]:
    """The same data asked both ways: the callback `key` and its REST twin."""
    base = callback_body(app, key)
    if "dl-" in key and twin.startswith(("GET /api/dashboards", "PUT /api/dashboards", "DELETE /api/dashboards",
                                         "POST /api/dashboards")):
        return _list_samples(app, key, twin)
    row = [{"id": "nothing", "rule": "r", "status": "firing"}]
    rows_request = {"startRow": 0, "endRow": 10}
    if twin == "GET /api/dashboard/<name>":
        return [(_set(base, lambda i, p: f"/dashboards/{d}" if (i, p) in (("url", "pathname"), ("route-path", "data")) else None), "GET",
                 f"/api/dashboard/{d}", None) for d in DASHBOARD_PERMISSION]
    if twin == "GET /api/dashboards/<dash_id>/widgets/<widget_id>/data":     # the dashboard's ONE refresh
        from tests.integration.test_board import refresh_body
        shared = twins_dashboard(app)
        return [(refresh_body(app, shared, [w["id"]]), "GET", f"/api/dashboards/{shared['id']}/widgets/{w['id']}/data",
                 None) for w in shared["widgets"]]
    if twin == "PUT /api/dashboards/<dash_id>" and "dash-edit-status" in key:    # the edit mode's Save: a personal copy
        defs = {d: dump(dfn) for d, dfn in Provisioner().dashboards().items()}
        return [(_set(base, lambda i, p, d=d: d if (i, p) == ("dash-id", "data") else defs[d]
                      if (i, p) == ("dash-def", "data") else None), "PUT", f"/api/dashboards/{d}", defs[d])
                for d in DASHBOARD_PERMISSION]
    if twin == "PUT /api/dashboards/<dash_id>" and "dash-share-status" in key:   # Share: the shared definition
        defs = {d: dump(dfn) for d, dfn in Provisioner().dashboards().items()}
        return [(_set(base, lambda i, p, d=d: defs[d] if (i, p) == ("dash-def", "data") else ["qa_lead"]
                      if (i, p) == ("dash-share-roles", "value") else None), "PUT",
                 f"/api/dashboards/{d}?scope=shared",
                 {**defs[d], "visibility": {**defs[d]["visibility"], "roles": ["qa_lead"]}})
                for d in DASHBOARD_PERMISSION]
    if twin == "GET /api/metrics/<kpi_id>/events":        # a drill-down grid: its store names the KPI
        def spec(k: str) -> Any:
            return lambda i, p: ({"kpi": k, "timeframe": "24h"} if p == "data" and i.endswith(("-kpi", "-query"))
                                 else rows_request if p == "getRowsRequest" else None)
        return [(_set(base, spec(k)), "GET", f"/api/metrics/{k}/events", None) for k in ONE_KPI.values()]
    if twin == "GET /api/metrics/<kpi_id>/series":        # the gate page
        return [(_set(base, lambda i, p: "/gates/lint" if (i, p) in (("url", "pathname"), ("route-path", "data")) else None), "GET",
                 "/api/metrics/gate.lint.pass_rate/series", None)]
    if twin in ("GET /api/audit", "GET /api/alerts", "GET /api/integrations", "GET /api/reviewers"):
        return [(base, "GET", twin.split(" ")[1], None)]
    if twin == "GET /api/integrations/<source>/deliveries":         # the integrations page (issue 12)
        return [(_set(base, lambda i, p: "github" if (i, p) == ("int-source", "value") else None), "GET",
                 "/api/integrations/github/deliveries", None)]
    if twin == "POST /api/integrations/<source>/deliveries/<delivery_id>/replay":
        return [(_set(base, lambda i, p: [{"entry": "1-0", "id": "none"}] if p == "selectedRows" else "github"
                      if (i, p) == ("int-source", "value") else None), "POST",
                 "/api/integrations/github/deliveries/1-0/replay", None)]
    if twin == "GET /api/alerts/history":
        return [(_set(base, lambda i, p: row if p == "selectedRows" else None), "GET", "/api/alerts/history?rule=r",
                 None)]
    if twin == "POST /api/alerts/<path:alert_id>/acknowledge":
        return [(_set(base, lambda i, p: row if p == "selectedRows" else None), "POST",
                 "/api/alerts/nothing/acknowledge", {})]
    if twin == "GET /api/reviewers/<path:reviewer>":       # one reviewer's page (issue 12)
        return [(_set(base, lambda i, p: {"id": "coderabbit"} if (i, p) == ("reviewer-spec", "data") else None),
                 "GET", "/api/reviewers/coderabbit", None)]
    if twin.startswith("GET /api/entities/"):
        kind, ident = ("workflow", "W-1") if "workflow" in twin else ("agent", "qms-code-reviewer")
        return [(_set(base, lambda i, p: {"id": ident} if (i, p) == (f"{kind}-spec", "data") else None), "GET",
                 f"/api/entities/{kind}/{ident}", None)]
    return []


def test_nf011_every_callback_with_a_rest_twin_needs_the_same_permission(app: Any, auth: Any, r: Any) -> None:
    svc = app.server.extensions["qms"]
    svc.ingestor.ingest([{"id": "g1", "type": "workflow.quality_gate_executed", "timestamp": fmt_ms(now_ms() - 60_000),
                          "source": "t", "data": {"workflow_id": "W-1", "gate_name": "lint", "passed": True,
                                                  "execution_time": 30}}])
    Aggregator(r, Keys(svc.settings.key_prefix)).drain()      # the gate "lint" exists, so has KPIs
    twins = app.server.extensions["qms_callback_twins"]
    adapter = app.server.url_map.bind("localhost")
    endpoints = {(m, r.rule): r.endpoint for r in app.server.url_map.iter_rules() for m in (r.methods or ())}
    cases: dict[str, list[Sample]] = {}
    for key, cb in app.callback_map.items():
        if cb.get("callback") is None:
            continue
        twin = twins.get(key)
        if twin is None:
            assert any(k in key for k in NO_TWIN), f"{key}: declare its REST twin (twin=...) or list it in NO_TWIN"
            continue
        method, _, rule = twin.partition(" ")
        assert (method, rule) in endpoints, f"{key}: twin {twin} is not a route"
        cases[key] = _samples(app, key, twin)
        assert cases[key], f"{key}: no sample requests for its twin {twin}"
        for _body, m, path, _ in cases[key]:
            assert adapter.match(path.split("?")[0], method=m)[0] == endpoints[(method, rule)], (twin, path)
    failures = []
    for role in ALL_ROLES:
        c, csrf = signed_in(app, auth, role)
        for key, samples in cases.items():
            for body, method, path, rest_body in samples:
                via_callback = c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf})
                via_rest = c.open(path, method=method, json=rest_body, headers={CSRF_HEADER: csrf})
                for res in (via_callback, via_rest):
                    if res.status_code in (400, 401) or res.status_code >= 500:
                        failures.append(f"{role} {key} / {path}: unexpected {res.status_code} {res.data[:150]!r}")
                if (via_callback.status_code == 403) != (via_rest.status_code == 403):
                    failures.append(f"{role} {key} / {path}: callback {via_callback.status_code}, "
                                    f"REST {via_rest.status_code}")
    assert not failures, "\n".join(failures)
