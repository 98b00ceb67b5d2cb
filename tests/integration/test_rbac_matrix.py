"""The RBAC matrix end to end: every REST endpoint and every Dash callback, for every role.

Expectations come from the loaded RBAC (config/rbac.yaml through `svc.rbac`), never from a
hard-coded list of who may do what: the tables below say only which permission(s) an
endpoint needs. Real Redis, Flask test client, no browser.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from flask import g

from auth.guard import AUTHENTICATED, CSRF_HEADER
from auth.principal import Principal
from auth.rbac import DASHBOARD_PERMISSION
from components.kpi import format_value
from dashboards import sources
from dashboards.provision import Provisioner
from data.kpis import dashboard_of
from data.timeutil import fmt_ms, now_ms
from tests.conftest import ROLES
from tests.helpers import expand_static

ALL_ROLES = (*ROLES, "producer")
UPDATE = "/_dash-update-component"

# One KPI of each dashboard, for the per-KPI endpoints.
KPI_OF = {"executive": "process_adoption_rate", "operational": "total_active_reviews",
          "qa": "total_gates_executed", "developer": "pending_reviews"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    needs: tuple[str, ...]            # every one of these permissions is required
    ok: int = 200                     # the status a permitted caller gets
    body: Callable[[str], Any] | None = field(default=None, compare=False)   # role -> JSON body
    any_of: tuple[str, ...] = ()      # and at least one of these (data several dashboards show)
    # granted permissions -> status, for endpoints that refuse in two ways (a widget of a
    # dashboard the caller may not see is a 404 like a missing one; docs/API.md)
    outcome: Callable[[frozenset[str]], int] | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def expected(self, granted: frozenset[str] | set[str]) -> int:
        if self.outcome is not None:
            return self.outcome(frozenset(granted))
        allowed = all(p in granted for p in self.needs) and (not self.any_of or any(p in granted for p in self.any_of))
        return self.ok if allowed else 403


def _event_body(role: str) -> Any:
    return {"id": f"rbac-{role}", "type": "workflow.review_started", "timestamp": fmt_ms(now_ms() - 60_000),
            "source": "rbac-test", "data": {"workflow_id": "W-rbac", "reviewer": "qms-code-reviewer"}}


def endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for dash_name, perm in DASHBOARD_PERMISSION.items():
        kpi = KPI_OF[dash_name]
        out += [Endpoint("GET", f"/api/dashboard/{dash_name}", (perm,)),
                Endpoint("GET", f"/api/metrics/{kpi}/series", (perm,)),
                Endpoint("GET", f"/api/metrics/{kpi}/events", (perm,)),
                Endpoint("GET", f"/api/metrics/{kpi}/events?format=csv", (perm, "export:reports")),
                Endpoint("GET", f"/api/export/{dash_name}.csv", (perm, "export:reports"))]
    # Widget rows: each role dashboard's first widget as provisioned (its sources need just
    # the dashboard's permission), by widget id alone and under its dashboard.
    defs = provisioned()
    for dash_name, perm in DASHBOARD_PERMISSION.items():
        widget = defs[dash_name].widgets[0]
        assert {p for ds in widget.data_sources for p in sources.permissions(ds)} == {perm}, widget.id
        for path in (f"/api/widgets/{widget.id}/data", f"/api/dashboards/{dash_name}/widgets/{widget.id}/data"):
            out += [Endpoint("GET", path, (perm,), outcome=_seen(perm)),
                    Endpoint("GET", path + "?format=csv", (perm, "export:reports"),
                             outcome=_seen(perm, "export:reports"))]
        out += [Endpoint("PUT", f"/api/widgets/{widget.id}/config", ("update:personal_settings", perm), 200,
                         lambda role: {"hidden": False},
                         outcome=lambda g, perm=perm: 403 if "update:personal_settings" not in g else
                         200 if perm in g else 404)]
    out += [Endpoint("GET", "/api/state/agents", ("view:operational_dashboard",)),
            Endpoint("GET", "/api/state/queues", ("view:operational_dashboard",)),
            Endpoint("GET", "/api/state/active", ("view:operational_dashboard",)),
            Endpoint("GET", "/api/state/defects", ("view:qa_dashboard",)),
            Endpoint("GET", "/api/state/violations", ("view:compliance_status",)),
            Endpoint("GET", "/api/state/reviews", ("view:all_metrics",)),
            Endpoint("GET", "/api/deadletter", ("view:deadletter",)),
            Endpoint("POST", "/api/events", ("ingest:events",), 202, _event_body),
            Endpoint("GET", "/api/audit", ("view:audit_logs",)),
            Endpoint("GET", "/api/audit?format=csv", ("view:audit_logs", "export:reports")),
            Endpoint("GET", "/api/tokens", ("manage:users",)),
            Endpoint("POST", "/api/tokens", ("manage:users",), 201,
                     lambda role: {"name": f"ci-{role}", "roles": ["producer"]}),
            Endpoint("DELETE", "/api/tokens/{token_id}", ("manage:users",)),
            # The stream answers 403 when not one of its channels may be seen; each channel
            # is authorised on its own (tests/integration/test_live.py).
            Endpoint("GET", "/api/stream?channels=alerts", ("view:alerts",)),
            Endpoint("GET", "/api/alerts", ("view:alerts",)),
            Endpoint("GET", "/api/alerts/history", ("view:alerts",)),
            # No such alert: who may acknowledge learns that (404); nobody else does (403).
            Endpoint("POST", "/api/alerts/nothing/acknowledge", ("manage:alerts",), 404, lambda role: {}),
            # Entity pages: shown by any dashboard that lists workflows / agents; no such id is a 404.
            Endpoint("GET", "/api/entities/workflow/WF-none", (), 404,
                     any_of=("view:operational_dashboard", "view:qa_dashboard", "view:developer_dashboard")),
            Endpoint("GET", "/api/entities/agent/qms-none", (), 404,
                     any_of=("view:operational_dashboard", "view:qa_dashboard")),
            # The reviewer ledger: team or quality metrics; no such reviewer is a 404.
            Endpoint("GET", "/api/reviewers", (), any_of=("view:team_metrics", "view:quality_metrics")),
            Endpoint("GET", "/api/reviewers/nobody-here", (), 404,
                     any_of=("view:team_metrics", "view:quality_metrics")),
            # Webhook receivers' administration (the integrations page's twins)
            Endpoint("GET", "/api/integrations", ("manage:integrations",)),
            Endpoint("GET", "/api/integrations/github/deliveries", ("manage:integrations",)),
            Endpoint("POST", "/api/integrations/github/deliveries/none/replay", ("manage:integrations",), 404)]
    # Dashboards: a dashboard user (one role dashboard's permission); the store decides per
    # dashboard (an unseen one is a 404 like a missing one: tests/integration/test_dashboards_api.py).
    user = tuple(DASHBOARD_PERMISSION.values())
    definition = (lambda role: {"id": f"rbac-{role}", "title": f"RBAC {role}"})
    out += [Endpoint("GET", "/api/dashboards", (), any_of=user),
            Endpoint("POST", "/api/dashboards", ("update:personal_settings",), 201, definition, any_of=user),
            Endpoint("POST", "/api/dashboards/import", ("update:personal_settings",), 201, definition, any_of=user),
            # Saving a personal copy needs the permission first (403), then a dashboard one sees (404).
            Endpoint("PUT", "/api/dashboards/none", ("update:personal_settings",), 404, definition, any_of=user),
            *(Endpoint(method, path, (), 404, any_of=user)
              for method, path in (("GET", "/api/dashboards/none"),
                                   ("DELETE", "/api/dashboards/none"), ("GET", "/api/dashboards/none/versions"),
                                   ("POST", "/api/dashboards/none/versions/1/restore"),
                                   ("PUT", "/api/dashboards/none/star"), ("DELETE", "/api/dashboards/none/star"),
                                   ("GET", "/api/dashboards/none/export")))]
    return out


def provisioned() -> dict[str, Any]:
    """The role dashboards as provisioned (config/dashboards/*.yaml): {id: Dashboard}."""
    return Provisioner().dashboards()


def _seen(perm: str, *then: str) -> Callable[[frozenset[str]], int]:
    """A role dashboard's widget: 404 to whom may not see the dashboard, then 403 without `then`."""
    return lambda g: 404 if perm not in g else 200 if all(p in g for p in then) else 403


def readable(rbac: Any, role: str, widget: Any) -> bool:
    """May `role` read every data source of `widget`? From the loaded RBAC: each source is
    opened by any one of its permissions (dashboards.sources.permissions)."""
    return all(any(rbac.allows([role], p) for p in sources.permissions(ds)) for ds in widget.data_sources)


# Reachable without credentials (the token exchange checks a password itself).
PUBLIC = {("GET", "/health"), ("GET", "/api/openapi.json"), ("POST", "/api/auth/token"),
          ("POST", "/api/webhooks/github")}     # signed by the source (tests/integration/test_webhooks.py)


def _call(c: Any, ep: Endpoint, role: str, headers: dict[str, str], token_id: str) -> Any:
    path = ep.path.format(token_id=token_id)
    kwargs: dict[str, Any] = {"headers": headers}
    if ep.body is not None:
        kwargs["json"] = ep.body(role)
    return c.open(path, method=ep.method, **kwargs)


def _assert_json_error(res: Any, status: int, where: str) -> None:
    assert res.status_code == status, f"{where}: {res.status_code} {res.data[:300]!r}"
    body = res.get_json(silent=True)
    assert isinstance(body, dict) and "response" in body, f"{where}: not a JSON error body: {res.data[:200]!r}"
    assert body["response"].get("status") == "error" and body["response"].get("error", {}).get("code"), where
    assert "data" not in body["response"] and "data" not in body, f"{where}: data leaked in a {status}"


def _fresh_token(svc: Any) -> str:
    token_id, _secret = svc.tokens.create("to-revoke", ["producer"], "rbac-test")
    return token_id


# --- REST endpoints -------------------------------------------------------------------------

def test_rbm001_the_matrix_covers_every_api_route(app: Any) -> None:
    """A new endpoint must get a row here (and a permission) before this passes."""
    adapter = app.server.url_map.bind("localhost")
    covered = set()
    for ep in endpoints():
        endpoint, _ = adapter.match(ep.path.format(token_id="0" * 16).split("?")[0], method=ep.method)
        covered.add((endpoint, ep.method))
    for method, path in PUBLIC:
        covered.add((adapter.match(path, method=method)[0], method))
    missing = []
    for rule in app.server.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.endpoint.startswith(("api.", "auth."))):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if rule.rule.startswith(("/login", "/logout", "/forbidden")):
                continue            # browser views, tested in test_auth.py
            if (rule.endpoint, method) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert not missing, f"API routes missing from the RBAC matrix: {missing}"
    # Every non-public API view declares its permission through @require.
    for endpoint, method in covered:
        if any(adapter.match(p, method=m)[0] == endpoint for m, p in PUBLIC):
            continue
        view = app.server.view_functions[endpoint]
        assert hasattr(view, "qms_permission"), f"{endpoint} is not decorated with @require"


def test_rbm002_kpi_table_is_one_kpi_of_each_dashboard() -> None:
    assert {d: dashboard_of(k) for d, k in KPI_OF.items()} == {d: d for d in KPI_OF}
    assert set(KPI_OF) == set(DASHBOARD_PERMISSION)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_rbm003_endpoint_matrix(app: Any, auth: Any, role: str) -> None:
    svc = app.server.extensions["qms"]
    assert role in svc.rbac.roles, f"{role} is not defined in the loaded RBAC"
    granted = svc.rbac.permissions_for([role])
    headers = auth.bearer(role)
    c = app.server.test_client()
    token_id = _fresh_token(svc)
    failures = []
    for ep in endpoints():
        want = ep.expected(granted)
        res = _call(c, ep, role, headers, token_id)
        where = f"{role}: {ep.id}"
        try:
            if want == ep.ok:
                assert res.status_code == ep.ok, f"{where}: expected {ep.ok}, got {res.status_code} {res.data[:300]!r}"
            else:
                _assert_json_error(res, want, where)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


def test_rbm004_anonymous_gets_401_everywhere(app: Any, anon: Any) -> None:
    token_id = _fresh_token(app.server.extensions["qms"])
    failures = []
    for ep in endpoints():
        try:
            _assert_json_error(_call(anon, ep, "anon", {}, token_id), 401, f"anonymous {ep.id}")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
    # Nothing was ingested and the token was not revoked.
    assert app.server.extensions["qms"].tokens.get(token_id).revoked == 0


def test_rbm005_public_endpoints(anon: Any) -> None:
    health = anon.get("/health")
    assert health.status_code in (200, 503) and health.json["checks"]["redis"]["status"] == "healthy"
    spec = anon.get("/api/openapi.json")
    assert spec.status_code == 200 and "paths" in spec.json


def test_rbm006_unknown_role_in_a_token_grants_nothing(app: Any, auth: Any) -> None:
    from auth.principal import issue_jwt
    svc = app.server.extensions["qms"]
    headers = {"Authorization": "Bearer " + issue_jwt("ghost", ["superuser"], 600, svc.secret_key)}
    c = app.server.test_client()
    token_id = _fresh_token(svc)
    for ep in endpoints():
        _assert_json_error(_call(c, ep, "ghost", headers, token_id), ep.expected(frozenset()), f"unknown role: {ep.id}")


def test_rbm007_deadletter_bad_count_is_a_400(client: Any) -> None:
    for count in ("x", "-1"):
        res = client.get(f"/api/deadletter?count={count}")
        assert res.status_code == 400, (count, res.status_code)


# --- Dash callbacks ---------------------------------------------------------------------------

def parse_outputs(key: str) -> list[dict[str, Any]]:
    """The `outputs` of a callback_map key ('..a.children...b.value..' or 'a.children')."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    out = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        out.append({"id": json.loads(cid) if cid.startswith("{") else cid, "property": prop})
    return out


PLAUSIBLE = {("url", "pathname"): "/", ("route-path", "data"): "/", ("dash-timeframe", "value"): "24h"}
BY_PROP = {"n_intervals": 1, "pathname": "/", "value": None, "n_clicks": 1}


def callback_body(app: Any, key: str, values: dict[tuple[str, str], Any] | None = None) -> dict[str, Any]:
    cb = app.callback_map[key]
    values = {**PLAUSIBLE, **(values or {})}

    def item(dep: dict[str, Any]) -> Any:
        if dep["id"].startswith("{") and '["ALL"]' in dep["id"]:
            return []          # a pattern-matching ALL dependency: no matching component on the page
        k = (dep["id"], dep["property"])
        return {"id": dep["id"], "property": dep["property"],
                "value": values[k] if k in values else BY_PROP.get(dep["property"])}

    inputs = [item(d) for d in cb["inputs"]]
    outputs = parse_outputs(key)
    if len(outputs) > 1:        # an ALL output among several: the (no) components it matches
        outputs = [[] if isinstance(o["id"], dict) and ["ALL"] in o["id"].values() else o for o in outputs]
    first = next((i for i in inputs if isinstance(i, dict)), None)
    return {"output": key, "outputs": outputs if len(outputs) > 1 or key.startswith("..") else outputs[0],
            "inputs": inputs, "state": [item(d) for d in cb.get("state", [])],
            "changedPropIds": [f"{first['id']}.{first['property']}"] if first else []}


def signed_in(app: Any, auth: Any, role: str) -> tuple[Any, str]:
    c = app.server.test_client()
    res = auth.login(c, role)
    assert res.status_code == 302, res.data[:300]
    with c.session_transaction() as sess:
        return c, sess["csrf"]


def expected_allowed(app: Any, spec: Any, role: str, body: dict[str, Any]) -> bool:
    rbac = app.server.extensions["qms"].rbac
    if callable(spec):
        # Only for callbacks without a dedicated test below: ask the spec what it needs.
        with app.server.test_request_context():
            g.qms_principal = Principal(f"{role}-user", (role,), rbac.permissions_for([role]))
            spec = spec(body)
    if spec is None:
        return False
    if spec == AUTHENTICATED:
        return True
    return rbac.allows([role], spec)


def refresh_key(app: Any) -> str:
    from tests.integration.test_board import refresh_key as key
    return key(app)


def refresh(app: Any, defn: Any, widgets: list[str] | None = None) -> dict[str, Any]:
    """The ONE refresh callback's request for `widgets` (default: all) of a definition."""
    from tests.integration.test_board import refresh_body
    return refresh_body(app, defn.model_dump(mode="json") if hasattr(defn, "model_dump") else defn, widgets)


def test_rbm010_every_callback_declares_a_permission(app: Any) -> None:
    registry = app.server.extensions["qms_callback_permissions"]
    assert set(app.callback_map) <= set(registry)
    assert app.callback_map, "no callbacks registered"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_rbm011_callback_matrix(app: Any, auth: Any, role: str) -> None:
    registry = app.server.extensions["qms_callback_permissions"]
    c, csrf = signed_in(app, auth, role)
    failures = []
    rbac = app.server.extensions["qms"].rbac
    # The dashboard refresh: its permission is that of every source of every widget asked
    # for. Each role dashboard's definition whole (refused when one widget's source is not
    # the role's), and only the widgets the role may read (allowed).
    for name, defn in provisioned().items():
        mine = [w.id for w in defn.widgets if readable(rbac, role, w)]
        for asked in ([w.id for w in defn.widgets], mine):
            if not asked:
                continue
            res = c.post(UPDATE, json=refresh(app, defn, asked), headers={CSRF_HEADER: csrf})
            where = f"{role}: refresh {name} {len(asked)} widgets"
            if all(w in mine for w in asked):
                bodies = (res.json or {}).get("response", {}) if res.status_code == 200 else {}
                drawn = {json.loads(k)["w"] for k in bodies if k.startswith("{")}
                if res.status_code != 200 or drawn != set(asked):
                    failures.append(f"{where}: expected 200 drawing {len(asked)}, got {res.status_code} "
                                    f"{sorted(drawn)[:3]} {res.data[:200]!r}")
            else:
                try:
                    _assert_json_error(res, 403, where)
                except AssertionError as exc:
                    failures.append(str(exc))
    for key in app.callback_map:
        if key == refresh_key(app):
            continue
        body = callback_body(app, key)
        allowed = expected_allowed(app, registry[key], role, body)
        res = c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf})
        where = f"{role}: {key}"
        if allowed:
            if res.status_code == 204:       # allowed, and the callback chose not to update (PreventUpdate)
                continue
            if res.status_code != 200:
                failures.append(f"{where}: expected 200, got {res.status_code} {res.data[:300]!r}")
                continue
            response = res.json["response"]
            want = {o["id"] for o in parse_outputs(key)}
            if not response or not set(response) <= want:     # no_update leaves an output out
                failures.append(f"{where}: outputs {sorted(response)} != {sorted(want)}")
        else:
            try:
                _assert_json_error(res, 403, where)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, "\n".join(failures)


@pytest.fixture
def dashboard_kpis(app: Any, r: Any, client: Any) -> dict[str, dict[str, str]]:
    """Each dashboard's KPI values as the REST API (admin) gives them, as a card shows them."""
    from tests.integration.test_board import _gates
    _gates(app, r)
    out = {}
    for name in DASHBOARD_PERMISSION:
        res = client.get(f"/api/dashboard/{name}")
        assert res.status_code == 200
        out[name] = {w["id"]: format_value(w["data"]["current_value"], w["data"].get("unit"),
                                           round_money=name == "executive")
                     for w in res.json["response"]["data"]["widgets"]}
    return out


def _cards(response: Any) -> dict[str, str]:
    """The KPI cards in a refresh's response: KPI id -> the value shown."""
    found: dict[str, str] = {}

    def walk(node: Any, kpi: str | None = None) -> None:
        if isinstance(node, dict):
            props = node.get("props", node)
            if isinstance(props, dict):
                kpi = props.get("data-kpi", kpi)
                if kpi and "kpi-value" in str(props.get("className", "")).split():
                    found[kpi] = props.get("children")
            for v in node.values():
                walk(v, kpi)
        elif isinstance(node, list):
            for v in node:
                walk(v, kpi)
    walk(expand_static(response))
    return found


@pytest.mark.parametrize("role", ALL_ROLES)
def test_rbm012_refresh_with_a_forged_definition(app: Any, auth: Any, dashboard_kpis: Any, role: str) -> None:
    """The refresh callback draws the definition the client sends (the dash-def store), so a
    role may send any dashboard's widgets under its own dashboard's id and title: it gets
    the data only where it may read every source (the cards then show the API's numbers),
    a JSON 403 otherwise."""
    rbac = app.server.extensions["qms"].rbac
    c, csrf = signed_in(app, auth, role)
    own = next((d for d, p in DASHBOARD_PERMISSION.items() if rbac.allows([role], p)), "mine")
    failures = []
    for name, defn in provisioned().items():
        forged = defn.model_copy(update={"id": own, "title": "My dashboard"})
        res = c.post(UPDATE, json=refresh(app, forged), headers={CSRF_HEADER: csrf})
        where = f"{role} sending {name}'s widgets as {own!r}"
        if not all(readable(rbac, role, w) for w in defn.widgets):
            try:
                _assert_json_error(res, 403, where)
            except AssertionError as exc:
                failures.append(str(exc))
            continue
        if res.status_code != 200:
            failures.append(f"{where}: expected 200, got {res.status_code} {res.data[:200]!r}")
            continue
        got = _cards(res.json["response"])
        want = {ds.metric: dashboard_kpis[name][ds.metric] for w in defn.widgets if w.type == "kpi_card"
                for ds in w.data_sources}
        if not got or got != want:
            failures.append(f"{where}: cards {sorted(got.items())[:4]}... are not the API's {sorted(want.items())[:4]}")
    assert not failures, "\n".join(failures)


def test_rbm013_a_second_definition_cannot_smuggle_another_dashboard(app: Any, auth: Any) -> None:
    """The guard reads the first dash-def it finds; Dash passes arguments by position. However
    the two are made to disagree, or the widgets asked for differ from the definition's, a
    developer never gets executive KPIs."""
    defs = provisioned()
    c, csrf = signed_in(app, auth, "developer")
    base = refresh(app, defs["developer"])
    exe_body = refresh(app, defs["executive"])
    dev = next(i for i in base["state"] if isinstance(i, dict) and i["id"] == "dash-def")
    exe = next(i for i in exe_body["state"] if isinstance(i, dict) and i["id"] == "dash-def")
    forged = [
        {**base, "state": [*base["state"], exe]},
        {**base, "inputs": [*base["inputs"], exe]},
        {**base, "inputs": [[*base["inputs"][0], exe], *base["inputs"][1:]]},
        {**base, "state": [*(exe if i is dev else i for i in base["state"]), dev]},
        {**exe_body, "state": [dev if i is exe else i for i in exe_body["state"]]},   # executive widgets asked
        {**base, "outputs": exe_body["outputs"]},
    ]
    for body in forged:
        res = c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf})
        if res.status_code == 200:
            cards = _cards(res.json["response"])
            assert "process_adoption_rate" not in cards and "cost_per_review" not in cards, body
        else:
            assert res.status_code in (204, 400, 403), res.status_code


def test_rbm014_csrf_and_registration_checks(app: Any, auth: Any) -> None:
    key = next(iter(app.callback_map))
    body = callback_body(app, key)
    c, csrf = signed_in(app, auth, "admin")
    assert c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf}).status_code == 200
    res = c.post(UPDATE, json=body)
    _assert_json_error(res, 403, "no CSRF header")
    assert res.json["response"]["error"]["code"] == "csrf"
    _assert_json_error(c.post(UPDATE, json=body, headers={CSRF_HEADER: csrf[:-2] + "xx"}), 403, "wrong CSRF")
    _assert_json_error(c.post(UPDATE, json=body, headers={CSRF_HEADER: ""}), 403, "empty CSRF")
    # An output nobody registered (Dash would otherwise answer 500 from a KeyError).
    rogue = {**body, "output": "..nav-links.children...secret.children..",
             "outputs": [{"id": "nav-links", "property": "children"}, {"id": "secret", "property": "children"}]}
    _assert_json_error(c.post(UPDATE, json=rogue, headers={CSRF_HEADER: csrf}), 403, "unregistered output")
    _assert_json_error(c.post(UPDATE, json={**body, "output": None}, headers={CSRF_HEADER: csrf}), 403, "null output")
    _assert_json_error(c.post(UPDATE, data="not json", headers={CSRF_HEADER: csrf, "Content-Type": "application/json"}),
                       400, "not JSON")


def test_rbm015_anonymous_callbacks_and_dash_xhr(app: Any, anon: Any) -> None:
    for key in app.callback_map:
        _assert_json_error(anon.post(UPDATE, json=callback_body(app, key)), 401, f"anonymous {key}")
        _assert_json_error(anon.post(UPDATE, json=callback_body(app, key), headers={CSRF_HEADER: "x"}), 401,
                           f"anonymous with a CSRF header {key}")
    for path in ("/_dash-layout", "/_dash-dependencies"):
        _assert_json_error(anon.get(path), 401, f"anonymous {path}")


def test_rbm016_a_bearer_jwt_needs_no_csrf_but_the_same_permission(app: Any, auth: Any) -> None:
    """API clients call callbacks with a JWT: no cookie, so no CSRF; permissions unchanged."""
    c = app.server.test_client()
    exe = refresh(app, provisioned()["executive"])
    assert c.post(UPDATE, json=exe, headers=auth.bearer("executive")).status_code == 200
    _assert_json_error(c.post(UPDATE, json=exe, headers=auth.bearer("developer")), 403, "developer JWT")
