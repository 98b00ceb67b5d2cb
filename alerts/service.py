"""The alerting runtime around the pure core (alerts.rules, alerts.evaluate):

- one evaluation loop per deployment: every process runs an APScheduler job, but only the
  holder of the leader lock (`SET NX EX`, renewed each tick) evaluates; when the leader
  dies another process takes the lock within one lock period;
- alert state (one JSON document) and history (a stream) in Redis, so both survive
  restarts and every process reads the same alerts;
- notifications through alerts.notify (sent once per deployment, retried per channel),
  and the `dashboard` channel as live `alert` messages on the `alerts` channel;
- the rule file is re-read when it changes; a bad file is refused and the rules already
  running keep running (the error is shown on the alerts page).
"""
from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Any

import orjson
import redis

from alerts import snapshot as snapshots
from alerts.evaluate import acknowledge as ack_state
from alerts.evaluate import evaluate
from alerts.notify import Notifier
from alerts.rules import RuleError, RuleSet, load_rules, reload
from data.batch import RELEASE
from data.timeutil import fmt_ms, now_ms

log = logging.getLogger("qms.alerts")

# Compare-and-renew: only the holder may extend the lock (a paused ex-leader must not).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
HISTORY_MAX = 100_000


class AlertKeys:
    def __init__(self, prefix: str) -> None:
        self.state = f"{prefix}:alerts:state"          # string: JSON of every non-inactive alert instance
        self.history = f"{prefix}:alerts:history"      # stream: field e = one transition or acknowledgement
        self.leader = f"{prefix}:alerts:leader"        # string: node id of the evaluating process (PX)
        self.meta = f"{prefix}:alerts:meta"            # hash: last_eval_ms, leader, rules_error, rules_file


class AlertService:
    def __init__(self, r: redis.Redis, prefix: str, engine: Any, rules_path: str, *,
                 channels: dict[str, Any] | None = None, base_url: str = "http://127.0.0.1:8050",
                 interval_s: float = 15.0, lock_ttl_s: float | None = None, timeframe: str = "1h",
                 live_channel: str | None = None, delivery_lease_s: float | None = None) -> None:
        self.r = r
        self.k = AlertKeys(prefix)
        self.engine = engine
        self.rules_path = rules_path
        self.rules: RuleSet = load_rules(rules_path)      # a bad file at start-up is an error
        self._mtime = _mtime(rules_path)
        self.rules_error: str | None = None
        self.interval_s = interval_s
        self.lock_ms = int(1000 * (lock_ttl_s if lock_ttl_s is not None else max(2 * interval_s, 5.0)))
        self.timeframe = timeframe
        self.node = uuid.uuid4().hex
        self.live_channel = live_channel                # pub/sub channel of the browsers' `alerts`
        self.notifier = Notifier(r, prefix, channels or {}, base_url=base_url, on_dashboard=self._to_dashboard,
                                 node=self.node, lease_s=delivery_lease_s)
        self._renew = r.register_script(RENEW)
        self._release = r.register_script(RELEASE)
        self._scheduler: Any = None
        self._lock = threading.Lock()
        self._since: int | None = None

    # --- leadership ----------------------------------------------------------------------
    def lead(self) -> bool:
        """Hold or take the leader lock; True when this process should evaluate."""
        if self._renew(keys=[self.k.leader], args=[self.node, self.lock_ms]):
            return True
        if self.r.set(self.k.leader, self.node, nx=True, px=self.lock_ms):
            log.info("alerts: this process (%s) now evaluates the rules", self.node[:8])
            return True
        return False

    def resign(self) -> None:
        self._release(keys=[self.k.leader], args=[self.node])     # only if still ours, atomically

    # --- evaluation ----------------------------------------------------------------------
    def tick(self, now: int | None = None) -> list[dict[str, Any]]:
        """One scheduled evaluation (a no-op unless leader). Returns the transitions."""
        with self._lock:
            if not self.lead():
                return []
            self._maybe_reload()
            now = now_ms() if now is None else now
            since = self._since if self._since is not None else now - int(self.interval_s * 1000)
            snap = snapshots.build(self.engine, now, since, self.timeframe)
            self._since = now
            return self.apply(snap, now)

    def apply(self, snap: dict[str, Any], now: int) -> list[dict[str, Any]]:
        """Evaluate a snapshot against the stored state, record the result and send what
        is owed. The state is updated optimistically (redis-py's WATCH/retry transaction):
        an acknowledgement from another process in the meantime makes us evaluate again on
        top. A transition's notifications go to the outbox in the same MULTI/EXEC, so a
        process dying after it leaves them owed (the next leader sends them), never lost."""
        def update(p: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            raw = p.get(self.k.state)
            transitions, new_state = evaluate(self.rules, snap, now, orjson.loads(raw) if raw else {})
            p.multi()
            p.set(self.k.state, orjson.dumps(new_state))
            for t in transitions:
                p.xadd(self.k.history, {"e": orjson.dumps({"kind": "transition", **t})},
                       maxlen=HISTORY_MAX, approximate=True)
                if t.get("notify"):
                    rule = self.rules.get(t["rule"])
                    self.notifier.enqueue(p, t, list(rule.channels) if rule else [])
            p.hset(self.k.meta, mapping={"last_eval_ms": now, "leader": self.node,
                                         "rules_error": self.rules_error or ""})
            return transitions, new_state
        transitions, new_state = self.r.transaction(update, self.k.state, value_from_callable=True)
        self.notifier.deliver_pending()       # these transitions' and any a dead leader left
        if transitions and self.live_channel:
            self._publish_summary(new_state)
        return transitions

    def _maybe_reload(self) -> None:
        mtime = _mtime(self.rules_path)
        if mtime == self._mtime:
            return
        self._mtime = mtime
        self.rules, err = reload(self.rules_path, self.rules)
        self.rules_error = str(err) if err else None
        if err:
            log.error("alerts: rule file refused, the previous rules keep running: %s", err)
        else:
            log.info("alerts: rules reloaded from %s (%d rules)", self.rules_path, len(self.rules.rules))

    # --- the dashboard channel -----------------------------------------------------------
    def _to_dashboard(self, transition: dict[str, Any]) -> None:
        if self.live_channel:
            state = self.state()
            self.r.publish(self.live_channel, orjson.dumps({
                "type": "alert", "channel": "alerts", "timestamp": now_ms(),
                "data": {**transition, "firing_count": _firing(state)}}))

    def _publish_summary(self, state: dict[str, Any]) -> None:
        """Counts for the navigation badge after every change (pending, resolved, ...)."""
        assert self.live_channel
        self.r.publish(self.live_channel, orjson.dumps({
            "type": "alert", "channel": "alerts", "timestamp": now_ms(),
            "data": {"summary": True, "firing_count": _firing(state)}}))

    # --- reading and acknowledging -------------------------------------------------------
    def state(self) -> dict[str, Any]:
        raw = self.r.get(self.k.state)
        return orjson.loads(raw) if raw else {}

    def alerts(self, severity: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Alert instances for the page and GET /api/alerts. Status `acknowledged` is a
        firing alert somebody acknowledged; `firing` lists the others."""
        out = []
        for rec in self.state().values():
            if "state" not in rec or rec.get("rule") is None or rec["state"] == "inactive":
                continue
            shown = "acknowledged" if rec["state"] == "firing" and rec.get("acknowledged") else rec["state"]
            if severity and rec.get("severity") != severity:
                continue
            if status and shown != status:
                continue
            rule = self.rules.get(rec["rule"])
            out.append({**rec, "status": shown, "since_iso": fmt_ms(rec["since"]) if rec.get("since") else None,
                        "condition": rule.condition_text if rule else None,
                        "dashboard": rule.dashboard if rule else None})
        order = {"firing": 0, "acknowledged": 1, "pending": 2, "no_data": 3, "resolved": 4}
        return sorted(out, key=lambda a: (order.get(a["status"], 9), -(a.get("since") or 0)))

    def history(self, rule: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        rows = []
        for entry_id, fields in self.r.xrevrange(self.k.history, count=limit * (5 if rule else 1)):
            e = orjson.loads(fields[b"e"])
            if rule is None or e.get("rule") == rule:
                rows.append({"entry": entry_id.decode(), **e})
            if len(rows) >= limit:
                break
        return rows

    def acknowledge(self, instance_id: str, user: str, comment: str | None, now: int | None = None) -> dict[str, Any]:
        """Record who acknowledged a firing alert (KeyError: no such alert; ValueError: not firing)."""
        now = now_ms() if now is None else now
        def update(p: Any) -> dict[str, Any]:
            raw = p.get(self.k.state)
            current = orjson.loads(raw) if raw else {}
            done = (current.get(instance_id) or {}).get("acknowledged")
            if done:       # the first acknowledgement stands: who took it, and when
                raise ValueError(f"already acknowledged by {done['by']} at {fmt_ms(done['at'])}")
            state = ack_state(current, instance_id, user, comment, now)
            p.multi()
            p.set(self.k.state, orjson.dumps(state))
            p.xadd(self.k.history, {"e": orjson.dumps({
                "kind": "acknowledged", "id": instance_id, "rule": state[instance_id].get("rule"),
                "by": user, "comment": comment, "at": now})}, maxlen=HISTORY_MAX, approximate=True)
            return state
        state = self.r.transaction(update, self.k.state, value_from_callable=True)
        if self.live_channel:
            self._publish_summary(state)
        return state[instance_id]

    def meta(self) -> dict[str, Any]:
        m = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.meta).items()}
        return {"last_eval": fmt_ms(int(m["last_eval_ms"])) if m.get("last_eval_ms") else None,
                "leader": m.get("leader") == self.node, "rules_error": self.rules_error or m.get("rules_error") or None,
                "rules": [{"name": r.name, "group": r.group, "condition": r.condition_text, "severity": r.severity,
                           "duration_s": r.duration_ms / 1000, "channels": list(r.channels)} for r in self.rules.rules],
                "channels": self.notifier.channel_status(), "failures": self.notifier.recent_failures(20)}

    # --- scheduling ----------------------------------------------------------------------
    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self._safe_tick, "interval", seconds=self.interval_s, max_instances=1,
                                coalesce=True, id="qms-alerts")
        self._scheduler.start()

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:          # a failing tick must not kill the schedule
            log.exception("alerts: evaluation failed")

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self.resign()
        self.notifier.close()


def _firing(state: dict[str, Any]) -> int:
    return sum(1 for rec in state.values() if rec.get("state") == "firing" and not rec.get("acknowledged"))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


__all__ = ["AlertService", "RuleError"]
