"""No input gives a server error: each finding of the probing run (issue 10) as a regression
test, and a fuzzer that posts ill-typed inputs to every registered Dash callback for every
role (the same permission for a callback and its REST twin: test_callback_twins.py).

Real Redis, Flask test client with a real session and CSRF token (as the browser sends).
"""
from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import dash
import pytest
from dash import Input, Output, State

from auth.guard import AUTHENTICATED, CSRF_HEADER, check_callback_permissions, secure_callback
from dashboards.provision import Provisioner
from data.timeutil import fmt_ms, now_ms
from tests.integration.test_rbac_matrix import ALL_ROLES, callback_body, parse_outputs, signed_in

UPDATE = "/_dash-update-component"
QA = Provisioner().get("qa")
WIDGET = QA.widgets[0].id        # a role dashboard's widget (/api/widgets/<id>/...)
REFRESH = '{"type":"w-body","w":["ALL"]}'      # the dashboard's ONE refresh callback


def plausible(app: Any, key: str) -> dict[str, Any]:
    """A body the callback accepts: the refresh asks for two widgets of the QA dashboard as
    the page sends it; the others as test_rbac_matrix.callback_body makes them."""
    if REFRESH in key:
        from tests.integration.test_board import refresh_body
        return refresh_body(app, QA.model_dump(mode="json"), ["qa-gate-table", "total_gates_executed"])
    return callback_body(app, key)


def _error(res: Any, status: int, where: str = "") -> dict[str, Any]:
    """A JSON error envelope with this status and a message (never a traceback or HTML)."""
    assert res.status_code == status, f"{where}: {res.status_code} {res.data[:300]!r}"
    assert res.mimetype == "application/json", f"{where}: {res.mimetype} {res.data[:200]!r}"
    err = res.json["response"]["error"]
    assert err["code"] and err["message"] and "Traceback" not in err["message"], where
    return err


def _key(app: Any, fragment: str) -> str:
    """The callback whose key is `fragment`, else the one key holding it."""
    if fragment in app.callback_map:
        return fragment
    [key] = [k for k in app.callback_map if fragment in k]
    return key


def _with(app: Any, key: str, body: dict[str, Any], dep: str, value: Any) -> dict[str, Any]:
    """The body with the value of input/state `id.property` replaced; a pattern-matching
    input, named by its type, set to one matching component with that value."""
    out = copy.deepcopy(body)
    cid, prop = dep.rsplit(".", 1)
    for group in ("inputs", "state"):
        for i, item in enumerate(out[group]):
            if isinstance(item, dict) and item["id"] == cid and item["property"] == prop:
                item["value"] = value
                return out
            registered = app.callback_map[key][group][i]
            pattern = json.loads(registered["id"]) if registered["id"].startswith("{") else {}
            if isinstance(item, list) and pattern.get("type") == cid and registered["property"] == prop:
                one = {k: ("w" if v == ["ALL"] else v) for k, v in pattern.items()}
                out[group][i] = [{"id": one, "property": prop, "value": value}]
                out["changedPropIds"] = [json.dumps(one, separators=(",", ":"), sort_keys=True) + "." + prop]
                return out
    raise KeyError(dep)


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


def _deep_json(n: int) -> bytes:
    return b'{"hidden": ' + b"[" * n + b"]" * n + b"}"


@pytest.fixture
def admin(app: Any, auth: Any) -> tuple[Any, dict[str, str]]:
    c, csrf = signed_in(app, auth, "admin")
    return c, {CSRF_HEADER: csrf}


# --- the probing run's findings ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"1", b"null", b"true", b"[]", b'{"username": ["a"], "password": {}}'])
def test_nf001_token_exchange_with_a_non_object_body_is_a_400(anon: Any, raw: bytes) -> None:
    res = anon.post("/api/auth/token", data=raw, content_type="application/json")
    err = _error(res, 400, raw.decode())
    assert "username" in err["message"] or "object" in err["message"]


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"1", b"null", b"[]", b"{", _deep_json(3000)])
def test_nf002_callback_endpoint_with_a_non_object_body_is_a_400(admin: Any, raw: bytes) -> None:
    c, csrf = admin
    _error(c.post(UPDATE, data=raw, content_type="application/json", headers=csrf), 400, raw[:20].decode())


ILL_TYPED = [  # (callback output fragment, input, value) named in the issue
    ("page.children", "route-path.data", 5),
    (REFRESH, "dash-timeframe.value", "bogus"),
    (REFRESH, "dash-scope.value", ["team=core"]),
    (REFRESH, "w-due.data", "x"),
    (REFRESH, "w-due.data", {"w": "x", "t": 1}),
    (REFRESH, "dash-def.data", ["/dashboards/qa"]),
    (REFRESH, "dash-def.data", {"id": "qa", "title": "QA", "widgets": [{"id": "w", "type": "no_such_type"}]}),
    (REFRESH, "dash-def.data", {"id": "qa", "title": "QA", "widgets": [
        {"id": "qa-gate-table", "type": "gate_table", "title": "t", "data_sources": [{"source": "kpi"}]}]}),
    ("nav.href", "w-gates.clickData", "x"),
    ("nav.href", "w-gates.clickData", {"points": "x"}),
    ("alerts-history.rowData", "alerts-grid.selectedRows", [1]),
    ("alerts-ack-result.children", "alerts-grid.selectedRows", [1]),
    ("gate-kpis.children", "gate-timeframe.data", {"a": 1}),
    ("events-grid.getRowsResponse", "events-kpi.data", "x"),
    ("audit-grid.rowData", "audit-user.value", {"$gt": ""}),
]


@pytest.mark.parametrize("fragment,dep,value", ILL_TYPED, ids=[f"{d}={v!r}"[:40] for _, d, v in ILL_TYPED])
def test_nf003_an_ill_typed_callback_input_is_a_400_naming_it(app: Any, admin: Any, fragment: str, dep: str,
                                                               value: Any) -> None:
    c, csrf = admin
    key = _key(app, fragment)
    body = plausible(app, key)
    if fragment == REFRESH:   # the body is accepted before one value is made wrong
        assert c.post(UPDATE, json=body, headers=csrf).status_code == 200
    err = _error(c.post(UPDATE, json=_with(app, key, body, dep, value), headers=csrf), 400, f"{dep}={value!r}")
    assert dep in err["message"], err["message"]


def test_nf004_widget_data_with_a_bogus_timeframe_is_a_400(client: Any) -> None:
    for path in (f"/api/widgets/{WIDGET}/data", f"/api/dashboards/qa/widgets/{WIDGET}/data"):
        err = _error(client.get(f"{path}?timeframe=bogus"), 400, path)
        assert "timeframe" in err["message"]
        _error(client.get(f"{path}?format=xml"), 400, path)
        _error(client.get(f"{path}?repository=api&team=core"), 400, path)
        assert client.get(f"{path}?timeframe=1h").status_code == 200


@pytest.mark.parametrize("depth", [3000, 300, 70])
def test_nf005_deeply_nested_json_is_refused_before_anything_recurses(app: Any, client: Any, admin: Any,
                                                                       depth: int) -> None:
    err = _error(client.put(f"/api/widgets/{WIDGET}/config", data=_deep_json(depth),
                            content_type="application/json"), 400, f"depth {depth}")
    assert "deep" in err["message"] or "nest" in err["message"]
    c, csrf = admin
    key = _key(app, "alerts-history.rowData")
    body = _with(app, key, callback_body(app, key), "alerts-grid.selectedRows", "DEEP")
    raw = json.dumps(body).replace('"DEEP"', "[" * depth + "]" * depth)      # json.dumps itself would recurse
    _error(c.post(UPDATE, data=raw, content_type="application/json", headers=csrf), 400, f"callback, depth {depth}")
    ack = client.post("/api/alerts/x/acknowledge", data=_deep_json(depth), content_type="application/json")
    _error(ack, 400, f"acknowledge, depth {depth}")


@pytest.mark.parametrize("depth", [300, 1000])
def test_nf014_an_event_nested_too_deeply_is_dead_lettered_not_a_500(app: Any, client: Any, depth: int) -> None:
    """The event contract refuses deep nesting; keeping the refused event for operators must
    not recurse (orjson.dumps stops at 255 levels, repr at Python's recursion limit)."""
    event = {"id": f"deep{depth}", "type": "workflow.pr_created", "timestamp": fmt_ms(now_ms() - 60_000), "source": "t",
             "data": {"workflow_id": "W", "pr_number": 1, "repository": "r", "author": "a", "team": "t",
                      "title": "x", "extra": "DEEP"}}
    raw = json.dumps(event).replace('"DEEP"', "[" * depth + "]" * depth)
    res = client.post("/api/events", data=raw, content_type="application/json")
    assert res.status_code == 400, res.data[:200]
    assert res.json["rejected"] == 1 and "nested" in res.json["errors"][0]["errors"][0]
    dead = client.get("/api/deadletter").json["response"]["data"]["events"]
    assert dead and dead[0]["id"] == f"deep{depth}"


@pytest.mark.parametrize("body", [[1], {"name": "ci", "roles": [["admin"]]}, {"name": "x" * 100_000, "roles": ["producer"]},
                                  {"name": ["ci"], "roles": ["producer"]}, {"name": "ci", "roles": "admin"},
                                  {"name": "ci", "roles": [{"a": 1}]}, "ci", None],
                         ids=["list", "nested-roles", "huge-name", "list-name", "str-roles", "dict-role", "str", "null"])
def test_nf006_token_creation_with_an_ill_typed_body_is_a_400_and_creates_nothing(app: Any, client: Any,
                                                                                   body: Any) -> None:
    _error(client.post("/api/tokens", json=body), 400, repr(body)[:60])
    assert app.server.extensions["qms"].tokens.list() == []
    ok = client.post("/api/tokens", json={"name": "ci", "roles": ["producer"]})
    assert ok.status_code == 201 and ok.json["response"]["data"]["roles"] == ["producer"]


def test_nf016_a_non_ascii_csrf_token_is_refused_not_a_500(app: Any, admin: Any) -> None:
    """hmac.compare_digest raises TypeError on non-ASCII str: a forged token of any text is a
    refusal like any wrong one (sign-in, sign-out, callbacks, REST writes), never a 500."""
    c, csrf = admin
    for forged in ("é", "\u202e" + csrf[CSRF_HEADER][1:], "x" * 10_000 + "é"):
        where = repr(forged[:8])
        _error(c.post(UPDATE, json={}, headers={CSRF_HEADER: forged}), 403, where)
        _error(c.put(f"/api/widgets/{WIDGET}/config", json={"hidden": True}, headers={CSRF_HEADER: forged}), 403, where)
        out = c.post("/logout", data={"csrf_token": forged})
        assert out.status_code == 400 and 'action="/logout"' in out.get_data(as_text=True), (where, out.status_code)
        assert c.get("/api/dashboard/executive").status_code == 200, f"still signed in after {where}"
        fresh = app.server.test_client()
        fresh.get("/login")
        res = fresh.post("/login", data={"username": "admin-user", "password": "x", "csrf_token": forged})
        assert res.status_code == 400 and "The form expired" in res.get_data(as_text=True), (where, res.status_code)


# --- every callback, every role: ill-typed values and malformed bodies --------------------------------

ODD_VALUES: list[Any] = [None, 0, -1, 2**70, 1.5, float("inf"), True, "", "bogus", "x" * 100_000, "/../../etc/passwd",
                         [], [1], [None], [[[]]], ["a", "b"], {}, {"a": {"b": [1]}}, {"points": [1]}, {"id": None},
                         _deep(40)]
FEW_VALUES: list[Any] = [5, "bogus", [1], {"a": 1}, "x" * 100_000]


def _variants(app: Any, key: str, values: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The plausible body, then each input/state (and each list element of a pattern input)
    set to each odd value, then malformed envelopes."""
    base = plausible(app, key)
    yield "plausible", base
    for group in ("inputs", "state"):
        for i, item in enumerate(base[group]):
            for value in values:
                body = copy.deepcopy(base)
                if isinstance(item, list) and item:   # a pattern-matching ALL input's components: each this value
                    body[group][i] = [{**e, "value": value} for e in item]
                    yield f"{group}[{i}][*]={value!r}"[:80], body
                    continue
                if isinstance(item, list):          # a pattern-matching ALL input: one matching component
                    cb = app.callback_map[key][group][i]
                    pattern = {k: ("w" if v == ["ALL"] else v) for k, v in json.loads(cb["id"]).items()}
                    body[group][i] = [{"id": pattern, "property": cb["property"], "value": value}]
                    body["changedPropIds"] = [json.dumps(pattern, separators=(",", ":"), sort_keys=True)
                                              + "." + cb["property"]]
                    yield f"{group}[{i}][0]={value!r}"[:80], body
                    continue
                body[group][i]["value"] = value
                yield f"{group}[{i}]={value!r}"[:80], body
            for odd in (None, 5, "x", {"id": "url"}, [item, item]):
                body = copy.deepcopy(base)
                body[group][i] = odd
                yield f"{group}[{i}] replaced by {odd!r}"[:80], body
    for field in ("inputs", "state", "outputs", "changedPropIds", "output"):
        for odd in (None, 5, "x", [5], [{"id": 1}], {"id": "x", "property": "y"}, ["{bad json.n_clicks"]):
            body = copy.deepcopy(base)
            body[field] = odd
            yield f"{field}={odd!r}"[:80], body
        body = copy.deepcopy(base)
        body.pop(field, None)
        yield f"no {field}", body
    yield "extra input", {**base, "inputs": [*base["inputs"], {"id": "url", "property": "pathname", "value": "/"}]}
    yield "fewer inputs", {**base, "inputs": base["inputs"][:-1]}
    yield "outputs of another callback", {**base, "outputs": parse_outputs(_other_key(app, key))}


def _other_key(app: Any, key: str) -> str:
    return next(k for k in app.callback_map if k != key)


def _fuzz(app: Any, c: Any, csrf: dict[str, str], role: str, values: list[Any]) -> list[str]:
    failures = []
    for key in app.callback_map:
        for label, body in _variants(app, key, values):
            res = c.post(UPDATE, json=body, headers=csrf)
            if res.status_code >= 500:
                failures.append(f"{role} {key} {label}: {res.status_code} {res.data[:160]!r}")
            elif res.status_code >= 400:
                try:
                    _error(res, res.status_code)
                except (AssertionError, KeyError, TypeError) as exc:
                    failures.append(f"{role} {key} {label}: not a JSON error: {exc}"[:300])
    return failures


def test_nf007_callback_fuzzer_as_an_admin(app: Any, admin: Any) -> None:
    c, csrf = admin
    failures = _fuzz(app, c, csrf, "admin", ODD_VALUES)
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "admin"])
def test_nf008_callback_fuzzer_as_every_other_role(app: Any, auth: Any, role: str) -> None:
    c, csrf = signed_in(app, auth, role)
    failures = _fuzz(app, c, {CSRF_HEADER: csrf}, role, FEW_VALUES)
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:40])


def test_nf015_a_callback_without_a_type_per_input_is_refused_at_start_up() -> None:
    app = dash.Dash(__name__)
    secure_callback(app, AUTHENTICATED, Output("a", "children"), Input("b", "n_clicks"), State("c", "value"),
                    inputs={"b.n_clicks": int | None})(lambda clicks, value: "")
    with pytest.raises(RuntimeError, match=r"c\.value"):
        check_callback_permissions(app)
    with pytest.raises(ValueError, match="does not have"):
        secure_callback(app, AUTHENTICATED, Output("d", "children"), Input("b", "n_clicks"),
                        inputs={"b.n_clicks": int | None, "typo.value": str})(lambda clicks: "")


def test_nf009_every_server_callback_declares_a_schema_for_every_input(app: Any) -> None:
    schemas = app.server.extensions["qms_callback_schemas"]
    for key, cb in app.callback_map.items():
        if cb.get("callback") is None:
            continue                    # clientside: never runs on the server (the guard refuses its POST)
        schema = schemas[key]
        assert schema.undeclared == [], f"{key}: no declared type for {schema.undeclared}"
        assert len(schema.inputs) + len(schema.state) == len(cb["inputs"]) + len(cb.get("state") or []), key


# --- documented and JSON error answers --------------------------------------------------------------

PUBLIC = {("/health", "get"), ("/api/openapi.json", "get"), ("/api/auth/token", "post"),
          ("/api/webhooks/{source}", "post")}     # signed by the source, no user credentials


def test_nf012_openapi_documents_400_401_403_413_503(anon: Any) -> None:
    spec = anon.get("/api/openapi.json").json
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            need = set()
            if (path, method) not in PUBLIC:
                need |= {"401", "403"}
            if op.get("parameters") or op.get("requestBody"):
                need.add("400")
            if op.get("requestBody"):
                need.add("413")
            if path != "/api/openapi.json":
                need.add("503")
            missing += [f"{method.upper()} {path}: {c}" for c in sorted(need - codes)]
            for c in need & codes:
                if c != "503" or path != "/health":
                    ref = op["responses"][c].get("content", {}).get("application/json", {}).get("schema", {})
                    if ref.get("$ref") not in ("#/components/schemas/Error", "#/components/schemas/IngestResult"):
                        missing.append(f"{method.upper()} {path}: {c} is not the Error envelope")
    assert not missing, "\n".join(missing)


def test_nf013_http_errors_under_api_are_json(app: Any, client: Any) -> None:
    assert _error(client.get("/api/no-such-thing"), 404)["code"] == "not_found"
    assert _error(client.open("/api/events", method="TRACE"), 405)["code"] == "method_not_allowed"
    _error(client.delete("/api/audit"), 405)
    _error(client.open("/health", method="TRACE"), 405)
    limit = app.server.config["MAX_CONTENT_LENGTH"]
    too_big = client.put(f"/api/widgets/{WIDGET}/config", data=b"[" + b" " * limit + b"]",
                         content_type="application/json")
    assert _error(too_big, 413)["code"] == "payload_too_large"
