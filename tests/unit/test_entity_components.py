"""The entity pages' components (components/entity*.py): plain data in, what the page shows out."""
from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import plotly.graph_objects as go
from dash import dcc

from components.entity import fmt_duration, sla_text, workflow_view
from components.entity_agent import agent_view
from data import entities as E
from tests.unit.test_entities import H, MIN, RESOLUTIONS, T0, agent, workflow_events
from tests.unit.test_links import walk


def by_attr(c: Any, attr: str, value: str) -> Any:
    return next(x for x in walk(c) if getattr(x, attr.replace("-", "_"), None) == value
                or (getattr(x, "__dict__", {}).get(attr) == value))


def text(c: Any) -> str:
    if isinstance(c, (list, tuple)):
        return " ".join(text(x) for x in c)
    if isinstance(c, (str, int, float)):
        return str(c)
    return "" if c is None else text(getattr(c, "children", None))


def test_ecp001_durations() -> None:
    assert [fmt_duration(x) for x in (None, 0, 12_000, 250_000, 3 * H + 5 * MIN, 50 * H, -40 * MIN)] == [
        "—", "0s", "12s", "4m 10s", "3h 05m", "2d 2h", "−40m 00s"]


def test_ecp002_workflow_page_shows_steps_sla_and_links() -> None:
    doc = E.workflow_doc("WF-1", workflow_events(done=False), RESOLUTIONS, now=T0 + 100 * MIN, sla_ms=8 * H)
    view = workflow_view({**doc, "scope": {"teams": "all"}})
    steps = {getattr(x, "__dict__", {}).get("data-step"): text(x) for x in walk(view)
             if getattr(x, "__dict__", {}).get("data-step")}
    assert "40m 00s" in steps["code_review"] and "2 visits" in steps["code_review"]
    assert "40m 00s" in steps["final_approval"] and "now" in steps["final_approval"]
    assert text(by_attr(view, "id", "workflow-sla")) == "open"
    assert sla_text(doc["sla"]) == f"6h 20m left of 8h 00m (due {E.fmt_ms(T0 + 8 * H)[:-1].replace('T', ' ')} UTC)"
    grids = {g.id: g for g in walk(view) if isinstance(g, dag.AgGrid)}
    assert len(grids["workflow-events"].rowData) == doc["counts"]["events"]
    renderers = {c["field"]: c.get("cellRenderer") for c in grids["workflow-gates"].columnDefs}
    assert renderers["gate_name"] == "EntityLink" and renderers["agent_id"] == "EntityLink"
    fig = go.Figure(next(g for g in walk(view) if isinstance(g, dcc.Graph)).figure)
    points = [t for t in fig.data if t.type == "scatter"][0]
    assert len(points.x) == doc["counts"]["events"] and "Final approval" in set(points.y)


def test_ecp003_agent_page_shows_status_chart_and_counts() -> None:
    doc = {**agent(), "scope": {"teams": "all"}}
    view = agent_view(doc)
    fp = by_attr(view, "data-fact", "false_positives")
    assert "2" in text(fp) and "67% of resolved" in text(fp)
    fig = go.Figure(next(g for g in walk(view) if isinstance(g, dcc.Graph)).figure)
    status, load = fig.data
    assert list(status.y) == ["idle", "active", "overloaded", "down", "active", "active"]   # held to the window end
    assert list(load.y) == [10.0, 50.0, 95.0, 0.0, 20.0, 20.0] and status.line.shape == "hv"
    assert status.x[-1] == doc["window"]["end"]
    badges = {getattr(x, "__dict__", {}).get("data-status"): text(x) for x in walk(view)
              if getattr(x, "__dict__", {}).get("data-status")}
    assert badges["active"] == "active 30m 00s (50%)"


def test_ecp004_counts_on_the_workflow_facts_agree_in_number() -> None:
    from components.entity import _facts
    doc = E.workflow_doc("WF-1", workflow_events(done=False), RESOLUTIONS, now=T0 + 100 * MIN, sla_ms=8 * H)
    one = {**doc, "counts": {**doc["counts"], "reviews_completed": 1, "gate_runs": 1}}
    many = {**doc, "counts": {**doc["counts"], "reviews_completed": 2, "gate_runs": 1_200}}
    assert "1 review completed" in text(_facts(one)) and "1 run" in text(_facts(one))
    assert "2 reviews completed" in text(_facts(many)) and "1,200 runs" in text(_facts(many))
