"""Aggregation partitions (docs/INTERNALS.md, "Partitions") — pure routing, plus the few
readers that combine the partitions' meta hashes.

With K partitions (setting `aggregation_partitions`, QMS_PARTITIONS) every event is routed to
one partition by the entity it changes, and every entity (workflow, defect, reviewer×workflow,
workflow×policy, agent and queue timelines) is owned by exactly one partition, so a
partition's batch reads only its own partition's state:

- an entity's OWNER is a name: `wf:<workflow>` for a workflow and for the entities made of a
  workflow and something else (compliance `cp`, reviewer×workflow `rv`), `df:<defect>` for a
  defect, `ag:<agent>`, `q:<queue>`; its partition is crc32(owner) mod K;
- an event's PRIMARY partition is its routing owner's: the workflow for every event that names
  one, the defect for `defect_resolved` (which names none), the agent / queue for the system
  timelines, else the event id. The primary partition writes the event's direct
  contributions, registries, raw store and indexes, and counts it as applied;
- the only event that changes entities of two owners is `defect_found` (its workflow and its
  defect): its primary partition forwards it to the defect's partition, which folds only the
  defect. TARGETS(ev) are all the partitions an event must reach.

The cross-entity reads the aggregator does were checked for this: a workflow's contributions
read only the workflow's state; a defect's only the defect's (its workflow id is kept in its
own state); reviewer×workflow and workflow×policy entities only their own; timelines only
their own members; authors (a viewer's team) are global and written with a latest-wins
script; registries, raw events and the entity-event indexes are global, idempotent sets.
"""
from __future__ import annotations

import zlib
from typing import Any

from data import cache_io
from data.contrib import entity_keys, pair_of

FORWARDED = b"f"   # stream field: this entry is a copy forwarded by the event's primary partition


def partition_of(owner: str, k: int) -> int:
    """The partition of an owner name (stable across processes and Python versions)."""
    if k <= 1:
        return 0
    return zlib.crc32(owner.encode()) % k


def owner(kind: str, ident: str) -> str:
    """The owner name of an entity or timeline key (kind, id)."""
    if kind == "wf":
        return "wf:" + ident
    if kind == "cp":
        return "wf:" + pair_of(ident)[0]
    if kind == "rv":
        return "wf:" + pair_of(ident)[1]
    return kind + ":" + ident          # df, ag, q


def routing_owner(ev: Any) -> str:
    """The owner an event is routed by. Total: an invalid event (not a dict, missing fields)
    still gets an owner, so a router never fails on it (the aggregator dead-letters it)."""
    if not isinstance(ev, dict):
        return "id:"
    d = ev.get("data")
    t = ev.get("type")
    if isinstance(d, dict):
        if t == "workflow.defect_resolved" and type(d.get("defect_id")) is str:
            return "df:" + d["defect_id"]
        wf = d.get("workflow_id")
        if type(wf) is str:
            return "wf:" + wf
        if t == "system.agent_status_changed" and type(d.get("agent_id")) is str:
            return "ag:" + d["agent_id"]
        if t == "system.queue_depth_updated" and type(d.get("queue")) is str:
            return "q:" + d["queue"]
    return "id:" + str(ev.get("id"))


def route(ev: Any, k: int) -> int:
    """The primary partition of an event."""
    return partition_of(routing_owner(ev), k)


def targets(ev: dict[str, Any], k: int) -> set[int]:
    """Every partition a (validated) event must reach: its primary one and the owners of the
    entities it changes."""
    out = {route(ev, k)}
    for kind, ident in entity_keys(ev):
        out.add(partition_of(owner(kind, ident), k))
    return out


def route_raw(raw: bytes | None, k: int) -> int:
    """A stream entry's partition from its field "e" (the router: best effort; an entry that
    is not an event goes where its bytes hash, to be dead-lettered there)."""
    if k <= 1:
        return 0
    import orjson
    try:
        return route(orjson.loads(raw or b""), k)
    except (orjson.JSONDecodeError, TypeError):
        return zlib.crc32(raw or b"") % k


# --- readers ------------------------------------------------------------------------------

def meta_sums(r: Any, keys: Any, fields: list[str]) -> dict[str, int]:
    """Counters of the aggregator summed over the partitions' meta hashes (applied,
    duplicates, rejected, version, ingested …); `last_*` fields take the maximum."""
    parts = keys.parts()
    with r.pipeline(transaction=False) as p:
        for pk in parts:
            p.hmget(pk.meta, fields)
        rows = p.execute()
    out: dict[str, int] = {}
    for i, f in enumerate(fields):
        vals = [int(row[i]) for row in rows if row[i] is not None]
        if f.startswith("last_"):
            if vals:
                out[f] = max(vals)
        else:
            out[f] = sum(vals)
    return out


def data_version(r: Any, keys: Any) -> tuple[int, int | None]:
    """(data version, last batch ms): the version caches are keyed by — the sum of the
    partitions' versions, each bumped inside its batch's script, so any batch changes it.
    Within a page's batched draw (data.cache_io), the one read when the draw began."""
    b = cache_io.current(r)
    if b is not None and (b.keys is keys or b.keys.meta == keys.meta):
        if b.version is None:
            b.version = _read_version(r, keys)
        return b.version
    return _read_version(r, keys)


def _read_version(r: Any, keys: Any) -> tuple[int, int | None]:
    if not keys.partitioned:
        version, last = r.hmget(keys.meta, ["version", "last_batch_ms"])
        return int(version or 0), (None if last is None else int(last))
    got = meta_sums(r, keys, ["version", "last_batch_ms"])
    return got["version"], got.get("last_batch_ms")
