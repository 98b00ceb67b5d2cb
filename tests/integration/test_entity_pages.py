"""Entity pages through Dash: the router opens /workflows/<id> and /agents/<id> for roles
that may see them (403 page otherwise), and their callbacks fill them with the same data the
REST twin serves, under the same permission. Real Redis, Flask test client."""
from __future__ import annotations

import json
from typing import Any

import pytest

from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms
from tests.integration.test_rbac_matrix import parse_outputs

UPDATE = "/_dash-update-component"
T = now_ms() - 3 * 3_600_000


def at(minutes: float) -> str:
    return fmt_ms(int(T + minutes * 60_000))


EVENTS = [
    {"id": "p1", "type": "workflow.pr_created", "timestamp": at(0), "source": "t",
     "data": {"workflow_id": "WF-a/1", "pr_number": 1, "repository": "qms-core", "author": "alice.chen",
              "team": "platform", "title": "fix: retry"}},
    {"id": "p2", "type": "workflow.step_entered", "timestamp": at(5), "source": "t",
     "data": {"workflow_id": "WF-a/1", "step": "dor_validation"}},
    {"id": "p3", "type": "workflow.quality_gate_executed", "timestamp": at(6), "source": "t",
     "data": {"workflow_id": "WF-a/1", "gate_name": "dor-checklist-gate", "passed": False,
              "agent_id": "qms-dor-validator", "execution_time": 20}},
    {"id": "p4", "type": "workflow.step_entered", "timestamp": at(30), "source": "t",
     "data": {"workflow_id": "WF-a/1", "step": "code_review"}},
    {"id": "a1", "type": "system.agent_status_changed", "timestamp": at(1), "source": "t",
     "data": {"agent_id": "qms-dor-validator", "status": "active", "load": 0.4}},
]


@pytest.fixture
def loaded(app: Any, r: Any) -> None:
    res = app.server.extensions["qms"].ingestor.ingest(EVENTS, origin="test")
    assert res.accepted == len(EVENTS)
    Aggregator(r, Keys("qms")).drain()


def signed_in(app: Any, auth: Any, role: str) -> tuple[Any, str]:
    c = app.server.test_client()
    auth.login(c, role)
    with c.session_transaction() as sess:
        return c, sess["csrf"]


def post(c: Any, csrf: str, app: Any, output: str, inputs: list[dict[str, Any]], state: list[dict[str, Any]]) -> Any:
    [key] = [k for k in app.callback_map if output in k]
    outputs = parse_outputs(key)
    body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": inputs, "state": state, "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}
    return c.post(UPDATE, json=body, headers={"X-CSRFToken": csrf})


def route(c: Any, csrf: str, app: Any, path: str, search: str = "") -> str:
    res = post(c, csrf, app, "page.children", [{"id": "route-path", "property": "data", "value": path}],
               [{"id": "url", "property": "search", "value": search},
                {"id": "theme", "property": "data", "value": "light"}])
    assert res.status_code == 200, res.data[:300]
    return json.dumps(res.json["response"]["page"]["children"])


def agent_body(c: Any, csrf: str, app: Any, ident: Any, timeframe: str | None = "24h") -> Any:
    return post(c, csrf, app, "agent-body.children",
                [{"id": "agent-spec", "property": "data", "value": {"id": ident}},
                 {"id": "agent-timeframe", "property": "value", "value": timeframe},
                 {"id": "agent-refresh", "property": "n_clicks", "value": None}],
                [{"id": "theme", "property": "data", "value": "light"}])


def workflow_body(c: Any, csrf: str, app: Any, ident: Any) -> Any:
    return post(c, csrf, app, "workflow-body.children",
                [{"id": "workflow-spec", "property": "data", "value": {"id": ident}},
                 {"id": "workflow-refresh", "property": "n_clicks", "value": None}],
                [{"id": "theme", "property": "data", "value": "light"}])


def test_epg001_router_opens_entity_pages_for_roles_that_may_see_them(app: Any, auth: Any, loaded: None) -> None:
    for role, wf_ok, agent_ok in (("qa_lead", True, True), ("operations", True, True), ("developer", True, False),
                                  ("executive", False, False)):
        c, csrf = signed_in(app, auth, role)
        page = route(c, csrf, app, "/workflows/WF-a%2F1")
        assert ('"workflow-spec"' in page and '"WF-a/1"' in page) is wf_ok, role
        assert ('"forbidden"' in page) is (not wf_ok), role
        page = route(c, csrf, app, "/agents/qms-dor-validator", "?timeframe=4h")
        assert ('"agent-spec"' in page and '"4h"' in page) is agent_ok, role
        if wf_ok:       # longer than any id: no page to fill (its callback would refuse the id)
            assert "entity-not-found" in route(c, csrf, app, "/workflows/" + "x" * 300)


def test_epg002_workflow_callback_fills_the_page(app: Any, auth: Any, loaded: None) -> None:
    c, csrf = signed_in(app, auth, "qa_lead")
    res = workflow_body(c, csrf, app, "WF-a/1")
    assert res.status_code == 200
    out = json.dumps(res.json["response"]["workflow-body"]["children"])
    assert '"data-workflow": "WF-a/1"' in out and "dor-checklist-gate" in out and "fix: retry" in out
    assert '"25m 00s"' in out, "DoR validation lasted from minute 5 to 30"
    missing = json.dumps(workflow_body(c, csrf, app, "WF-nope").json["response"]["workflow-body"]["children"])
    assert "entity-not-found" in missing
    bad = workflow_body(c, csrf, app, 5)
    assert bad.status_code == 400 and "workflow-spec.data" in bad.json["response"]["error"]["message"], bad.data
    assert workflow_body(c, csrf, app, "x" * 257).status_code == 400, "ids are at most 256 characters"


def test_epg003_the_callbacks_need_the_pages_permission(app: Any, auth: Any, loaded: None) -> None:
    c, csrf = signed_in(app, auth, "executive")
    assert workflow_body(c, csrf, app, "WF-a/1").status_code == 403
    c, csrf = signed_in(app, auth, "developer")
    res = agent_body(c, csrf, app, "qms-dor-validator")
    assert res.status_code == 403
    c, csrf = signed_in(app, auth, "operations")
    res = agent_body(c, csrf, app, "qms-dor-validator", None)
    assert res.status_code == 200
    out = json.dumps(res.json["response"]["agent-body"]["children"])
    assert '"data-agent": "qms-dor-validator"' in out and "WF-a/1" in out
    ops_wf = json.dumps(workflow_body(c, csrf, app, "WF-a/1").json["response"]["workflow-body"]["children"])
    assert "alice.chen" not in ops_wf and "fix: retry" not in ops_wf, "operations sees no names and no titles"
