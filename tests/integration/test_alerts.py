"""Alerting end to end: events → aggregator → KPI engine → rules → notifications on a real
SMTP server and a loopback webhook; acknowledge through the API; history; one evaluation
loop per deployment (leader lock, hand-over); rule reload keeping the running rules."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import apprise.plugins.email.base as apprise_email
import pytest
from aiosmtpd.controller import Controller

from alerts.service import AlertService
from data.aggregator import Aggregator
from data.timeutil import fmt_ms, now_ms
from tests.conftest import _free_port
from tests.receivers import MailSink, Receiver, wait_until

RULES = """
alert_rules:
  workflow_alerts:
    - name: "High Queue Depth"
      condition: "queue_depth > 15"
      severity: "warning"
      duration: "2m"
      channels: ["dashboard", "email", "webhook"]
  quality_alerts:
    - name: "Gates Failing"
      condition: "gate_pass_rate < 80%"
      severity: "critical"
      duration: "0s"
      channels: ["dashboard"]
"""
MIN = 60_000


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, MailSink, int]]:
    monkeypatch.setattr(apprise_email.NotifyEmail, "request_rate_per_sec", 0)
    rec, sink, port = Receiver(), MailSink(), _free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port)
    smtp.start()
    yield rec, sink, port
    smtp.stop()
    rec.close()


def _service(app: Any, rules: Path, port: int, rec: Receiver, **kw: Any) -> AlertService:
    svc = app.server.extensions["qms"]
    channels = {"webhook": {"url": f"json://{rec.url.split('://')[1]}/qms"},
                "email": {"url": f"mailto://127.0.0.1:{port}?from=qms@example.com&to=ops@example.com"}}
    return AlertService(svc.redis, svc.settings.key_prefix, svc.engine, str(rules), channels=channels,
                        base_url="http://qms.example.com", live_channel=svc.keys.live("alerts"), **kw)


def _queue_alerts(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queue rule's transitions (the gate rule, with no gate data, goes to no_data)."""
    return [t for t in transitions if t["rule"] == "High Queue Depth"]


def _queue(app: Any, r: Any, ident: str, depth: int, at_ms: int) -> None:
    svc = app.server.extensions["qms"]
    res = svc.ingestor.ingest([{"id": ident, "type": "system.queue_depth_updated", "timestamp": fmt_ms(at_ms),
                                "source": "orchestrator", "data": {"queue": "code_review", "depth": depth}}])
    assert res.accepted == 1, res.errors
    Aggregator(r, svc.keys).drain()


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_alr001_queue_over_threshold_pends_fires_notifies_is_acknowledged_and_resolves(
        app: Any, r: Any, auth: Any, client: Any, rules_file: Path, receivers: Any) -> None:
    rec, sink, port = receivers
    alerts = _service(app, rules_file, port, rec)
    app.server.extensions["qms_alerts"] = alerts          # the API and page read this one
    t0 = now_ms()
    _queue(app, r, "q1", 22, t0 - 30_000)
    first = alerts.tick(t0)
    assert [(t["rule"], t["to"]) for t in first if t["rule"] == "Gates Failing"] == [("Gates Failing", "no_data")]
    [pending] = _queue_alerts(first)
    assert (pending["rule"], pending["labels"], pending["to"], pending["notify"]) == \
        ("High Queue Depth", {"queue": "code_review"}, "pending", False)
    assert alerts.tick(t0 + MIN) == [], "still pending: 2m not reached"
    [firing] = _queue_alerts(alerts.tick(t0 + 3 * MIN))
    assert firing["to"] == "firing" and firing["notify"] and firing["value"] == 22
    assert wait_until(lambda: len(sink.messages) == 1 and len(rec.to("/qms")) == 1, 10)
    mail = sink.messages[0]
    assert "High Queue Depth" in mail["Subject"] and "queue=code_review" in mail.get_body().get_content()
    assert "http://qms.example.com/dashboards/operational" in mail.get_body().get_content()

    listed = client.get("/api/alerts?status=firing").json["response"]["data"]["alerts"]
    assert [a["id"] for a in listed] == [firing["id"]]
    ops = auth.bearer("operations")
    qa = auth.bearer("qa_lead")
    url = f"/api/alerts/{firing['id']}/acknowledge"
    assert client.post(url, json={}, headers=qa).status_code == 403, "a queue alert is not a quality alert"
    res = client.post(url, json={"comment": "scaling reviewers"}, headers=ops)
    assert res.status_code == 200, res.json
    assert res.json["response"]["data"]["alert"]["acknowledged"]["by"] == auth.user("operations")
    assert client.get("/api/alerts?status=acknowledged").json["response"]["data"]["count"] == 1
    assert client.post(url, json={}, headers=ops).status_code == 409, "already acknowledged"
    assert client.post("/api/alerts/nope/acknowledge", json={}, headers=ops).status_code == 404
    assert alerts.tick(t0 + 5 * MIN) == [], "acknowledged and still true: no new notification"

    _queue(app, r, "q2", 3, t0 + 5 * MIN + 30_000)
    [resolved] = _queue_alerts(alerts.tick(t0 + 6 * MIN))
    assert resolved["to"] == "resolved" and resolved["notify"]
    assert wait_until(lambda: len(sink.messages) == 2 and len(rec.to("/qms")) == 2, 10)
    assert "resolved" in sink.messages[1]["Subject"].lower()
    steps = [h.get("to") or h["kind"] for h in reversed(alerts.history("High Queue Depth"))]
    assert steps == ["pending", "firing", "acknowledged", "resolved"]
    audit = app.server.extensions["qms"].audit.query(action_prefix="user.alert_acknowledged", limit=5)
    assert audit and audit[0]["data"]["comment"] == "scaling reviewers"
    alerts.stop()


def test_alr002_two_processes_evaluate_once_and_send_once(app: Any, r: Any, rules_file: Path, receivers: Any) -> None:
    rec, sink, port = receivers
    a, b = _service(app, rules_file, port, rec), _service(app, rules_file, port, rec)
    t0 = now_ms()
    _queue(app, r, "q1", 40, t0 - 30_000)
    for t in (t0, t0 + 3 * MIN):
        got = [a.tick(t), b.tick(t)]
        assert got[1] == [], "only the leader evaluates"
        assert len(_queue_alerts(got[0])) == 1
    # Even if both processes notified the same transition, each channel gets it once.
    firing = next(h for h in a.history("High Queue Depth") if h.get("to") == "firing")
    b.notifier.notify(firing, ["email", "webhook"])
    assert wait_until(lambda: len(sink.messages) == 1 and len(rec.to("/qms")) == 1, 10)
    a.notifier.flush(5)
    b.notifier.flush(5)
    assert (len(sink.messages), len(rec.to("/qms"))) == (1, 1)
    a.stop()
    b.stop()


def test_alr003_leader_dies_another_takes_over_within_one_lock_period(app: Any, r: Any, rules_file: Path,
                                                                       receivers: Any) -> None:
    rec, _, port = receivers
    a = _service(app, rules_file, port, rec, interval_s=0.2, lock_ttl_s=0.6)
    b = _service(app, rules_file, port, rec, interval_s=0.2, lock_ttl_s=0.6)
    assert a.lead() and not b.lead()
    died = time.monotonic()              # a stops renewing: as if its process was killed
    assert wait_until(b.lead, 2.0)
    assert time.monotonic() - died <= 0.6 + 0.3
    assert not a.lead(), "the old leader does not take the lock back while b holds it"
    b.stop()
    assert a.lead(), "a resigned leader frees the lock at once"


def test_alr004_a_bad_rule_file_is_refused_and_the_running_rules_keep_running(
        app: Any, r: Any, rules_file: Path, receivers: Any) -> None:
    rec, _, port = receivers
    alerts = _service(app, rules_file, port, rec)
    _queue(app, r, "q1", 30, now_ms() - 30_000)
    rules_file.write_text(RULES.replace('"queue_depth > 15"', '"__import__(\'os\').system(\'id\') > 1"'))
    t = time.time() + 5
    import os
    os.utime(rules_file, (t, t))
    assert len(_queue_alerts(alerts.tick(now_ms()))) == 1, "the old rules still evaluate"
    assert "rule 'High Queue Depth'" in alerts.meta()["rules_error"] and str(rules_file) in alerts.meta()["rules_error"]
    rules_file.write_text(RULES.replace("queue_depth > 15", "queue_depth > 50"))
    os.utime(rules_file, (t + 5, t + 5))
    alerts.tick(now_ms())
    assert alerts.meta()["rules_error"] is None
    assert alerts.rules.get("High Queue Depth").condition_text == "queue_depth > 50"
    alerts.stop()


def test_alr005_api_filters_and_permissions(app: Any, r: Any, auth: Any, client: Any, rules_file: Path,
                                            receivers: Any) -> None:
    rec, _, port = receivers
    alerts = _service(app, rules_file, port, rec)
    app.server.extensions["qms_alerts"] = alerts
    svc = app.server.extensions["qms"]
    ts = fmt_ms(now_ms() - 60_000)
    svc.ingestor.ingest([{"id": f"g{i}", "type": "workflow.quality_gate_executed", "timestamp": ts, "source": "ci",
                          "data": {"workflow_id": f"W{i}", "gate_name": "lint", "passed": i == 0}} for i in range(3)])
    Aggregator(r, svc.keys).drain()
    [fired] = [t for t in alerts.tick(now_ms()) if t["rule"] == "Gates Failing"]
    assert fired["rule"] == "Gates Failing" and fired["to"] == "firing"
    assert client.get("/api/alerts?severity=critical").json["response"]["data"]["count"] == 1
    assert client.get("/api/alerts?severity=warning").json["response"]["data"]["count"] == 0
    assert client.get("/api/alerts?status=bogus").status_code == 400
    anon = app.server.test_client()
    assert anon.get("/api/alerts").status_code == 401
    url = f"/api/alerts/{fired['id']}/acknowledge"
    assert client.post(url, json={"comment": 5}, headers=auth.bearer("qa_lead")).status_code == 400
    assert client.post(url, json={}, headers=auth.bearer("developer")).status_code == 403
    assert client.post(url, json={}, headers=auth.bearer("qa_lead")).status_code == 200, "a quality alert"
    alerts.stop()


def test_alr006_event_driven_rule_tests_of_the_default_rules_pass_and_a_wrong_one_fails(r: Any, tmp_path: Path) -> None:
    from alerts.ruletest import run_tests
    root = Path(__file__).resolve().parents[2] / "config"
    assert run_tests(root / "alert_rules.events.test.yaml", r) == []
    assert r.dbsize() == 0, "the throwaway key prefix is removed"
    wrong = tmp_path / "wrong.test.yaml"
    wrong.write_text((root / "alert_rules.events.test.yaml").read_text()
                     .replace("rule_files: [alert_rules.yaml]", f"rule_files: [{root / 'alert_rules.yaml'}]")
                     .replace("{at: 5m, rule: High Queue Depth, alerts: [{labels: {queue: code_review}, state: firing}]}",
                              "{at: 4m, rule: High Queue Depth, alerts: [{labels: {queue: code_review}, state: firing}]}"))
    [failure] = run_tests(wrong, r)
    assert "at 4m: High Queue Depth{queue=code_review}: expected firing, got pending" in failure
