"""Reading Dash's JSON the way the renderer does, for the load test (no locust import here:
bench/load/run.py uses it too): components of a layout by id, the widget bodies a page drew,
the KPI cards' texts, and an input's value set in a callback request body."""
from __future__ import annotations

from typing import Any, Iterator


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every component's props in a layout, in document order."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(reversed(n))
        elif isinstance(n, dict):
            props = n.get("props")
            if isinstance(props, dict):
                yield props
                stack.extend(reversed([v for v in props.values() if isinstance(v, (dict, list))]))
            else:
                stack.extend(reversed([v for v in n.values() if isinstance(v, (dict, list))]))


def find_component(layout: Any, cid: str) -> dict[str, Any] | None:
    """The props of the component with this id."""
    return next((p for p in walk(layout) if p.get("id") == cid), None)


def body_ids(layout: Any) -> list[str]:
    """The widgets whose bodies the page drew ({"type": "w-body", "w": id}), in layout order:
    the outputs the renderer lists for the refresh callback's ALL pattern."""
    return [str(p["id"].get("w")) for p in walk(layout)
            if isinstance(p.get("id"), dict) and p["id"].get("type") == "w-body"]


def kpi_texts(layout: Any) -> list[tuple[str, str]]:
    """(KPI id, the text its card shows) for every KPI card value in the layout."""
    return [(str(p["id"].get("kpi")), str(p.get("children"))) for p in walk(layout)
            if isinstance(p.get("id"), dict) and p["id"].get("type") == "kpi-value"]


def set_input(body: dict[str, Any], cid: str, prop: str, value: Any) -> None:
    """Set an input's or state's value in a /_dash-update-component request body."""
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            if isinstance(item, dict) and item.get("id") == cid and item.get("property") == prop:
                item["value"] = value


def widget_intervals(layout: Any) -> dict[str, int]:
    """The enabled widget intervals ({"type": "w-int", "w": id}) of a page: widget -> ms."""
    return {str(p["id"].get("w")): int(p.get("interval") or 0) for p in walk(layout)
            if isinstance(p.get("id"), dict) and p["id"].get("type") == "w-int" and not p.get("disabled")
            and p.get("interval")}
