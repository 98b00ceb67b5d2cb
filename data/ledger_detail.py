"""One reviewer's ledger with the events behind each number (`GET /api/reviewers/{id}`).

The figures are the ledger's own (data.ledger.figures, from the rollups). The rows are read
from the events the aggregator indexed under the reviewer (`eix:ac:<id>`: their reviews and the
defects they raised), their findings' `defect_resolved` events (data.entity_reader.resolutions),
the workflows' entities (creation: repository, team, the `pr_created` a time to first review
starts from) and, for the workflows they approved, the `production` defects on them. `rows()`
assembles them (pure); each row names the figure it counts in, and `counts` per figure
reproduce the figures, as the KPI drill-downs do.

Bounded: the reviewer's events are read from the raw-event retention before `end` (a first
review or approval older than that is not seen), at most MAX_EVENTS of them (the newest);
the answer says `truncated` when more were left out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

import orjson
import redis

from data import archive, entcodec, entity_reader, ledger
from data.engine import plan
from data.keys import Keys
from data.ledger_contrib import MICRO
from data.timeutil import DAY_MS, HOUR_MS, fmt_ms, now_ms, parse_iso

MAX_EVENTS = 50_000
REVIEW_TYPES = ("workflow.review_started", "workflow.review_completed")
FIGURES = ("reviews_completed", "first_reviews", "findings_raised", "findings_accepted", "findings_dismissed",
           "findings_wont_fix", "escapes", "workflows_approved")


def _key(ev: Mapping[str, Any]) -> tuple[int, str]:
    return parse_iso(ev["timestamp"]), str(ev["id"])


def creation_event(wf: str, c: list[Any]) -> dict[str, Any]:
    """The `pr_created` a workflow entity remembers (ts, author, team, repository, number, id)."""
    return {"id": c[5], "type": "workflow.pr_created", "timestamp": fmt_ms(c[0]),
            "data": {"workflow_id": wf, "author": c[1], "team": c[2], "repository": c[3], "pr_number": c[4]}}


def rows(reviewer: str, events: Iterable[Mapping[str, Any]], created: Mapping[str, list[Any] | None],
         production: Mapping[str, list[Mapping[str, Any]]], resolutions: Mapping[str, list[Mapping[str, Any]]],
         s: int, e: int, scope: str | None = None) -> dict[str, Any]:
    """The rows behind each figure of `reviewer` in [s, e), and counts reproducing the figures.
    `events`: the reviewer's indexed events; `created`: workflow → its entity's creation (or
    None); `production`: workflow → its production `defect_found` events; `resolutions`:
    defect → its `defect_resolved` events. `scope` ("r:<repo>" / "t:<team>") keeps the
    workflow facts of that scope; findings are never filtered (docs/METRICS.md)."""
    def in_scope(wf: Any) -> bool:
        if scope is None:
            return True
        c = created.get(wf)
        return bool(c) and ((scope == "r:" + str(c[3])) or (c[2] is not None and scope == "t:" + str(c[2])))

    evs = sorted({ev["id"]: ev for ev in events}.values(), key=_key)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    first_review: dict[str, Mapping[str, Any]] = {}
    first_approval: dict[str, Mapping[str, Any]] = {}
    found: dict[str, Mapping[str, Any]] = {}
    cost = 0
    for ev in evs:
        t, d = ev["type"], ev.get("data") or {}
        ts = parse_iso(ev["timestamp"])
        if t in REVIEW_TYPES and d.get("reviewer") == reviewer:
            wf = d.get("workflow_id")
            first_review.setdefault(wf, ev)
            if t == "workflow.review_completed":
                if d.get("verdict") == "approved":
                    first_approval.setdefault(wf, ev)
                if s <= ts < e and in_scope(wf):
                    cost += int(round(float(d.get("cost_usd") or 0) * MICRO))
                    out["reviews_completed"].append({"event": ev, "verdict": d.get("verdict")})
        elif t == "workflow.defect_found" and d.get("found_by") == reviewer:
            found.setdefault(d.get("defect_id"), ev)
    for wf, ev in first_review.items():
        ts = parse_iso(ev["timestamp"])
        c = created.get(wf)
        if s <= ts < e and c and in_scope(wf):
            out["first_reviews"].append({"event": ev, "value": (ts - c[0]) / HOUR_MS,
                                         "context": [creation_event(wf, c)]})
    for did, ev in found.items():
        d = ev["data"]
        if (d.get("stage") or "review") != "review":
            continue
        if s <= parse_iso(ev["timestamp"]) < e:
            out["findings_raised"].append({"event": ev})
        res = max(resolutions.get(did, ()), key=_key, default=None)
        if res is not None and s <= parse_iso(res["timestamp"]) < e:
            figure = {"fixed": "findings_accepted", "false_positive": "findings_dismissed"}.get(
                res["data"].get("resolution"), "findings_wont_fix")
            out[figure].append({"event": res, "context": [ev]})
    for wf, ap in first_approval.items():
        if not in_scope(wf):
            continue
        a_ts = parse_iso(ap["timestamp"])
        later = sorted((p for p in production.get(wf, ()) if a_ts <= parse_iso(p["timestamp"]) < e), key=_key)
        if s <= a_ts < e:
            out["workflows_approved"].append({"event": ap, "escaped": bool(later), "context": later[:1]})
        for p in later:
            if s <= parse_iso(p["timestamp"]):
                out["escapes"].append({"event": p, "context": [ap]})
    for name in out:
        out[name].sort(key=lambda row: _key(row["event"]), reverse=True)
    rc = out["reviews_completed"]
    approved = out["workflows_approved"]
    counts = {name: len(out[name]) for name in FIGURES}
    counts.update({"approvals": sum(row["verdict"] == "approved" for row in rc),
                   "changes_requested": sum(row["verdict"] == "changes_requested" for row in rc),
                   "review_cost_usd": cost / MICRO,
                   "time_to_first_review_hours_sum": sum(row["value"] for row in out["first_reviews"]),
                   "workflows_approved_with_escape": sum(row["escaped"] for row in approved)})
    return {"rows": {name: out[name] for name in FIGURES}, "counts": counts}


def read(r: redis.Redis, keys: Keys, reviewer: str, timeframe: str, end_ms: int | None, scope: str | None,
         raw_retention_ms: int, skew_ms: int = 900_000, limit: int = MAX_EVENTS) -> dict[str, Any] | None:
    """The reviewer's figures and rows, before sanitising; None for an id nobody reported."""
    now = now_ms()
    p = plan(timeframe, end_ms, now, skew_ms, depth=1)
    s, e = p.bounds[1], p.bounds[0]
    index = keys.entity_events("ac", reviewer)
    doc = ledger.figures(r, keys, timeframe, end_ms, scope, skew_ms)
    row = next((x for x in doc["rows"] if x["reviewer"] == reviewer), None)
    if row is None and not r.exists(index):
        return None
    lo = max(0, e - raw_retention_ms - DAY_MS)
    hits = entity_reader.entity_hits(r, keys, "ac", reviewer, lo, e, limit)
    truncated = len(hits) > limit
    events = list(entity_reader._bodies(r, keys, hits[:limit]))
    wfs = sorted({(ev.get("data") or {}).get("workflow_id") for ev in events
                  if ev.get("type") in REVIEW_TYPES} - {None})
    created: dict[str, list[Any] | None] = {}
    for pos in range(0, len(wfs), 2000):
        part = wfs[pos:pos + 2000]
        for wf, raw in zip(part, r.mget([keys.entity("wf", w) for w in part])):
            created[wf] = entcodec.decode(raw).get("c") if raw else None
    approvals: dict[str, int] = {}
    for ev in events:
        d = ev.get("data") or {}
        if ev.get("type") == "workflow.review_completed" and d.get("reviewer") == reviewer \
                and d.get("verdict") == "approved":
            ts = parse_iso(ev["timestamp"])
            approvals[d["workflow_id"]] = min(approvals.get(d["workflow_id"], ts), ts)
    production: dict[str, list[dict[str, Any]]] = defaultdict(list)
    approved = sorted(approvals.items())
    for pos in range(0, len(approved), 500):          # the approved workflows' events since approval, pipelined
        part = approved[pos:pos + 500]
        with r.pipeline(transaction=False) as pipe:
            for wf, a_ts in part:
                pipe.zrangebyscore(keys.entity_events("wf", wf), a_ts, f"({e}", withscores=True)
            replies = pipe.execute()
        hits: list[tuple[Any, ...]] = [(m, int(score)) for reply in replies for m, score in reply]
        arch = archive.of(keys)
        if arch is not None and part and arch.days_between(min(ts for _, ts in part), e):
            seen = {(m, ts) for m, ts in hits}
            since = dict(part)
            hits += [h for h in arch.workflows_of_type([wf for wf, _ in part], "workflow.defect_found",
                                                       min(ts for _, ts in part), e)
                     if (h[0], h[1]) not in seen and h[1] >= since[orjson.loads(h[2])["data"]["workflow_id"]]]
        for ev in entity_reader._bodies(r, keys, hits):
            if ev.get("type") == "workflow.defect_found" and ev["data"].get("stage") == "production":
                production[ev["data"]["workflow_id"]].append(ev)
    found_ids = [ev["data"].get("defect_id") for ev in events if ev.get("type") == "workflow.defect_found"]
    res = entity_reader.resolutions(r, keys, found_ids)
    behind = rows(reviewer, events, created, production, res, s, e, scope)
    empty = ledger.cell_figures({})
    kind = row["kind"] if row else ("ai" if reviewer in ledger.known_agents(r, keys) else None)
    return {"reviewer": reviewer, "kind": kind,
            "figures": {k: v for k, v in (row or {**empty, "reviewer": reviewer}).items() if k not in ("reviewer",
                                                                                                     "kind")},
            "timeframe": timeframe, "window": doc["window"], **({"filter": scope} if scope else {}),
            "rows": behind["rows"], "counts": behind["counts"], "truncated": truncated}
