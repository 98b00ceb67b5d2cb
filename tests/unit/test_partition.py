"""Aggregation partitions: the pure routing of events to partitions (data.partition) and the
partitioned key names (data.keys)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from data import contrib
from data.events import validate
from data.keys import Keys
from data.partition import owner, partition_of, route, route_raw, routing_owner, targets
from data.simulator import Simulator
from settings import Settings, SettingsError


def _ev(type_: str, **data: Any) -> dict[str, Any]:
    return {"id": "e1", "type": type_, "timestamp": "2026-01-01T00:00:00Z", "source": "t", "data": data}


def _simulated() -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return list(Simulator(seed=3, rate=0.5, start=start).events_between(start, start + timedelta(hours=12)))


def test_part001_events_go_with_the_entity_they_change() -> None:
    assert routing_owner(_ev("workflow.pr_created", workflow_id="W1")) == "wf:W1"
    assert routing_owner(_ev("workflow.review_completed", workflow_id="W1", reviewer="ann")) == "wf:W1"
    assert routing_owner(_ev("workflow.defect_found", workflow_id="W1", defect_id="D9")) == "wf:W1", \
        "a finding goes with its workflow (its primary), and is forwarded to its defect"
    assert routing_owner(_ev("workflow.defect_resolved", defect_id="D9")) == "df:D9"
    assert routing_owner(_ev("workflow.agent_assigned", workflow_id="W1", agent_id="A")) == "wf:W1"
    assert routing_owner(_ev("system.agent_status_changed", agent_id="A")) == "ag:A"
    assert routing_owner(_ev("system.queue_depth_updated", queue="Q")) == "q:Q"
    assert routing_owner(_ev("system.error_occurred", component="c")) == "id:e1"
    # Total on anything a producer may XADD: never an exception.
    for junk in (None, 3, [], {"data": 5}, {"type": "x", "data": {"workflow_id": 7}}):
        assert isinstance(route(junk, 4), int) and 0 <= route(junk, 4) < 4
    for raw in (b"{not json", b"", None, b"[1]", orjson.dumps(_ev("workflow.completed", workflow_id="W1"))):
        assert 0 <= route_raw(raw, 3) < 3
    assert route_raw(orjson.dumps(_ev("workflow.completed", workflow_id="W1")), 3) == partition_of("wf:W1", 3)


def test_part002_entities_made_of_a_workflow_and_another_name_live_with_the_workflow() -> None:
    assert owner("cp", contrib.pair_id("W|1", "sox")) == "wf:W|1"
    assert owner("rv", contrib.pair_id("ann|x", "W9")) == "wf:W9"
    assert owner("rv", contrib.pair_id("ann", "x|W9")) == "wf:x|W9"
    assert owner("df", "D1") == "df:D1" and owner("ag", "A") == "ag:A" and owner("q", "Q") == "q:Q"


@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_part003_every_entity_an_event_changes_is_in_one_of_its_targets(k: int) -> None:
    """The invariant the aggregator relies on: a partition's batch reads only its own state.
    Every simulated event reaches its primary partition and the owners of its entities; only
    a defect_found (workflow + defect) may reach two."""
    events = _simulated()
    assert len(events) > 1000
    spread: set[int] = set()
    for raw in events:
        ev, _, errors = validate(raw, 1 << 62, 0)
        assert ev is not None, errors
        t = targets(ev, k)
        spread.add(route(ev, k))
        assert route(ev, k) in t
        for kind, ident in contrib.entity_keys(ev):
            assert partition_of(owner(kind, ident), k) in t
        if ev["type"] != "workflow.defect_found":
            assert t == {route(ev, k)}, ev
        for kind, ident in contrib.entity_keys(ev):
            if kind in ("wf", "cp", "rv"):
                assert partition_of(owner(kind, ident), k) == route(ev, k)
    assert spread == set(range(k)), "the simulated workload reaches every partition"


def test_part004_partitioned_key_names_carry_the_partition_hash_tag() -> None:
    one = Keys("qms")
    assert not one.partitioned and one.part(0) is one and one.parts() == [one]
    assert one.entity("wf", "W1") == "qms:ent:wf:W1" and one.stream == "qms:events" == one.inbox
    k = Keys("qms", 3, partitions=4)
    assert k.partitioned and len(k.parts()) == 4
    p2 = k.part(2)
    assert p2.rollup("1m", "m", 60_000) == "qms:{2}:r:1m:m:60000"
    assert (p2.stream, p2.meta, p2.lock, p2.carry) == ("qms:{2}:events", "qms:{2}:meta", "qms:{2}:agg:lock",
                                                      "qms:{2}:carry")
    assert p2.seen(5, 7) == "qms:{2}:seen:5:7" and p2.totals("m") == "qms:{2}:tot:m"
    assert p2.applied(5) == "qms:{2}:seen:agg:5" and k.seen_buckets == p2.seen_buckets == "qms:seen:buckets"
    assert k.inbox == "qms:events"
    w = partition_of("wf:W1", 4)
    assert k.entity("wf", "W1") == f"qms:{{{w}}}:ent:wf:W1"
    assert k.entity("rv", contrib.pair_id("ann", "W1")).startswith(f"qms:{{{w}}}:")
    assert k.workflow_team("W1") == f"qms:{{{w}}}:wft:W1"
    assert k.timeline("ag", "A").startswith(f"qms:{{{partition_of('ag:A', 4)}}}:tl:ag:")
    # Global keys keep their names: the raw-event readers do not change.
    assert (k.raw(3), k.registry("gates"), k.authors, k.state("agents")) == \
        ("qms:raw:3", "qms:reg:gates", "qms:authors", "qms:state:agents")
    assert Keys("qms", 0, partitions=1, cluster=True).part(0).stream == "qms:{0}:events"


def test_part005_the_setting() -> None:
    s = Settings.from_env({"QMS_PARTITIONS": "4", "QMS_REDIS_CLUSTER": "1", "REDIS_URL": "redis://h:1/0"})
    assert s.aggregation_partitions == 4 and s.redis_cluster
    assert Settings.from_env({}).aggregation_partitions == 1
    for bad in ("0", "2000"):
        with pytest.raises(SettingsError, match="aggregation_partitions"):
            Settings.from_env({"QMS_PARTITIONS": bad})
    with pytest.raises(SettingsError, match="redis_cluster"):
        Settings.from_env({"QMS_REDIS_CLUSTER": "1"})
