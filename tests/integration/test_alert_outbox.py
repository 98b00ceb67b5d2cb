"""An alert transition and its notifications are one durable unit: the notifications go to
an outbox in the same MULTI/EXEC as the transition, and whoever leads sends and marks them.
A leader killed at any instant (a real process, os._exit) delays a notification, never
loses it; in normal operation none is sent twice."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from alerts.notify import DELIVERIES, OUTBOX
from alerts.service import AlertService
from data.aggregator import Aggregator
from data.timeutil import fmt_ms, now_ms
from tests.receivers import Receiver

ROOT = Path(__file__).resolve().parents[2]
RULES = ('alert_rules: {workflow_alerts: [{name: "High Queue Depth", condition: "queue_depth > 15", '
         'severity: warning, duration: "0s", channels: [webhook]}]}')


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return str(path)


def _deep_queue(app: Any, r: Any, at: int) -> None:
    svc = app.server.extensions["qms"]
    res = svc.ingestor.ingest([{"id": "q1", "type": "system.queue_depth_updated", "timestamp": fmt_ms(at - 30_000),
                                "source": "orchestrator", "data": {"queue": "code_review", "depth": 30}}])
    assert res.accepted == 1, res.errors
    Aggregator(r, svc.keys).drain()


def _service(app: Any, rules: str, rec: Receiver, **kw: Any) -> AlertService:
    svc = app.server.extensions["qms"]
    return AlertService(svc.redis, svc.settings.key_prefix, svc.engine, rules,
                        channels={"webhook": {"url": f"json://{rec.url.split('://')[1]}/qms"}}, **kw)


def _leader_dies(redis_url: str, rules: str, rec: Receiver, now: int, die_at: str, **extra: Any) -> None:
    cfg = {"redis_url": redis_url, "rules": rules, "webhook": f"json://{rec.url.split('://')[1]}/qms", "now": now,
           "die_at": die_at, "lock_s": 1.0, **extra}
    proc = subprocess.run([sys.executable, "-m", "tests.alert_leader", orjson.dumps(cfg).decode()], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 17, f"the leader was to die at {die_at}: rc {proc.returncode}\n{proc.stderr[-2000:]}"


def _firing(r: Any) -> list[dict[str, Any]]:
    return [e for e in (orjson.loads(f[b"e"]) for _, f in r.xrange("qms:alerts:history")) if e.get("to") == "firing"]


@pytest.mark.parametrize("die_at", ["after_commit", "before_send"])
def test_aob001_a_leader_killed_after_the_transition_commits_delays_but_never_loses_it(
        app: Any, r: Any, redis_url: str, rules: str, receiver: Receiver, die_at: str) -> None:
    """Before: the transition was committed, the leader died before (or while) claiming its
    notification, and nobody ever sent it; nothing recorded that it was owed."""
    t0 = now_ms()
    _deep_queue(app, r, t0)
    _leader_dies(redis_url, rules, receiver, t0, die_at, lease_s=1.0)
    assert len(_firing(r)) == 1, "the transition was committed before the leader died"
    assert receiver.to("/qms") == [], "the dead leader sent nothing"
    assert r.hlen(OUTBOX.format(p="qms")) == 1, "the notification it owed is recorded"

    nxt = _service(app, rules, receiver, lock_ttl_s=1.0, delivery_lease_s=1.0)
    deadline = time.monotonic() + 10
    while not receiver.to("/qms") and time.monotonic() < deadline:
        nxt.tick(now_ms())           # not leader until the dead one's lock expires
        time.sleep(0.1)
    assert nxt.notifier.flush(5)
    [post] = receiver.to("/qms")
    assert post["json"]["title"] == "[WARNING] High Queue Depth (queue=code_review) is firing"
    assert r.hlen(OUTBOX.format(p="qms")) == 0, "delivered and marked"
    for _ in range(3):                   # later rounds of the same leader send nothing again
        nxt.tick(now_ms())
    assert nxt.notifier.flush(5)
    assert len(receiver.to("/qms")) == 1
    [delivery] = [f for _, f in r.xrange(DELIVERIES.format(p="qms"))]
    assert delivery[b"channel"] == b"webhook" and delivery[b"to"] == b"firing"
    assert len(_firing(r)) == 1, "the next leader did not evaluate the transition again"
    nxt.stop()


def test_aob002_two_live_processes_send_each_notification_once(app: Any, r: Any, rules: str,
                                                               receiver: Receiver) -> None:
    a, b = _service(app, rules, receiver), _service(app, rules, receiver)
    t0 = now_ms()
    _deep_queue(app, r, t0)
    for i in range(3):
        a.tick(t0 + i * 1000)
        b.tick(t0 + i * 1000)
    assert a.notifier.flush(5) and b.notifier.flush(5)
    assert len(receiver.to("/qms")) == 1
    # The leader hands over (a stops cleanly) and the new one finds nothing owed.
    a.stop()
    assert b.lead(), "a resigned leader frees the lock at once"
    b.tick(now_ms())
    assert b.notifier.flush(5)
    assert len(receiver.to("/qms")) == 1
    assert r.hlen(OUTBOX.format(p="qms")) == 0
    b.stop()


def test_aob003_the_outbox_entry_is_written_in_the_transitions_transaction(app: Any, r: Any, rules: str,
                                                                         receiver: Receiver) -> None:
    """One MULTI/EXEC: with the channel unable to send, the transition and its owed
    notification are both there; a transaction that fails writes neither."""
    alerts = _service(app, rules, receiver)
    t0 = now_ms()
    _deep_queue(app, r, t0)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash after EXEC")
    alerts.notifier.deliver_pending = refuse      # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        alerts.tick(t0)
    [owed] = r.hvals(OUTBOX.format(p="qms"))
    entry = orjson.loads(owed)
    assert (entry["channel"], entry["transition"]["to"]) == ("webhook", "firing")
    assert entry["transition"]["id"] == _firing(r)[0]["id"]
    alerts.notifier.close()
