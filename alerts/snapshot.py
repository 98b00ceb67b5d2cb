"""What the alert rules are evaluated against: the KPI engine's current values (the same
numbers the dashboards show) and the per-entity values (queues, agents, new defects).

Window KPIs are read over `timeframe` (default 1h) ending at `end_ms`; state KPIs and
queue depths at `end_ms`. Agents come from the aggregator's current display state, so a
snapshot for a past `end_ms` is only right for agents if the events after it are not
aggregated yet (alerts.ruletest feeds events in time order, so it is).
"""
from __future__ import annotations

from typing import Any

import orjson

from data.engine import Engine
from data.rawstore import events_between
from data.timeutil import MINUTE_MS

DASHBOARDS = ("executive", "operational", "qa")


def build(engine: Engine, end_ms: int, since_ms: int, timeframe: str = "1h") -> dict[str, Any]:
    kpis: dict[str, Any] = {}
    # Windows end on a bucket edge; like the dashboards' "now", take the edge after end_ms so
    # the events of the current minute count (the engine would snap a given end down).
    edge = -(-end_ms // MINUTE_MS) * MINUTE_MS
    for name in DASHBOARDS:
        for w in engine.dashboard(name, timeframe, end_ms=edge)["data"]["widgets"]:
            kpis[w["id"]] = w["data"]["current_value"]
    queues = {k[len("queue_depth."):]: v for k, v in kpis.items() if k.startswith("queue_depth.") and v is not None}
    status: dict[str, Any] = {}
    load: dict[str, Any] = {}
    for raw in engine.r.hvals(engine.k.state("agents")):
        a = orjson.loads(raw)
        status[a["agent_id"]] = a.get("status")
        if isinstance(a.get("load"), (int, float)):
            load[a["agent_id"]] = 100.0 * a["load"]          # events carry 0–1; rules speak percent
    # New defects: found in (since, end] — each is seen by exactly one evaluation.
    found, _ = events_between(engine.r, engine.k, ("workflow.defect_found",), since_ms + 1, end_ms + 1, 500)
    defects = {e["data"]["defect_id"]: e["data"]["severity"] for e in found}
    return {"kpis": kpis, "entities": {"queue_depth": queues, "agent_status": status, "agent_load": load,
                                       "defect_severity": defects}}
