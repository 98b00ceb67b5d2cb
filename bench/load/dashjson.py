"""Reading Dash's JSON the way the renderer does, for the load test (no locust import here:
bench/load/run.py uses it too): components of a layout by id, the widget bodies a page drew,
the KPI cards' texts, and an input's value set in a callback request body."""
from __future__ import annotations

import html
import json
import re
from typing import Any, Callable, Iterator


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


def kpi_texts(layout: Any) -> list[tuple[str, str]]:
    """(KPI id, the text its card shows) for every KPI card value in the layout."""
    return page_facts(layout, ())["kpis"]


# A KPI card's value in a body sent as HTML (components/static_html.py StaticHtml): the value
# element's id is the JSON Dash would write; its text is escaped HTML.
STATIC_KPI = re.compile(r'<[a-z0-9]+ [^>]*?id="(\{[^"]*kpi-value[^"]*\})"[^>]*>([^<]*)<')


def page_facts(layout: Any, wanted: tuple[str, ...] = ("dash-def", "live-config", "dash-export")) -> dict[str, Any]:
    """What the load test reads of a drawn page, in one walk (a layout is hundreds of
    components; walking it once per question was a tenth of locust's CPU, on the cores the
    server under test shares): the props of the `wanted` ids (by id), the widget bodies
    ({"type": "w-body", "w": id}) in layout order — the outputs the renderer lists for the
    refresh callback's ALL pattern —, the enabled widget intervals ({"type": "w-int"}: widget ->
    ms) and the KPI cards' values as (KPI id, text shown), components or HTML alike."""
    found: dict[str, dict[str, Any]] = {}
    bodies: list[str] = []
    intervals: dict[str, int] = {}
    kpis: list[tuple[str, str]] = []
    for p in walk(layout):
        cid = p.get("id")
        if isinstance(cid, dict):
            kind = cid.get("type")
            if kind == "w-body":
                bodies.append(str(cid.get("w")))
            elif kind == "kpi-value":
                kpis.append((str(cid.get("kpi")), str(p.get("children"))))
            elif kind == "w-int" and not p.get("disabled") and p.get("interval"):
                intervals[str(cid.get("w"))] = int(p.get("interval") or 0)
        elif cid in wanted and cid not in found:
            found[cid] = p
        text = p.get("html")
        if isinstance(text, str) and "kpi-value" in text:
            for m in STATIC_KPI.finditer(text):
                sid = json.loads(html.unescape(m.group(1)))
                if isinstance(sid, dict) and sid.get("type") == "kpi-value":
                    kpis.append((str(sid.get("kpi")), html.unescape(m.group(2))))
    return {"components": found, "bodies": bodies, "intervals": intervals, "kpis": kpis}


def set_input(body: dict[str, Any], cid: str, prop: str, value: Any) -> None:
    """Set an input's or state's value in a /_dash-update-component request body."""
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            if isinstance(item, dict) and item.get("id") == cid and item.get("property") == prop:
                item["value"] = value


def _plain(output: str) -> str:
    """A callback's output key without Dash's allow_duplicate suffixes (@<hash>)."""
    return re.sub(r"@[0-9a-f]{16,}", "", output)


class Dependencies:
    """/_dash-dependencies, by output: what the renderer builds a callback request from.

    A recorded body is reshaped to the served app's declaration — its output key (the
    @hash of duplicate outputs changes with the callback's inputs), inputs and state in
    declared order — with the recorded values; an input the recording lacks takes its value
    from `known` ((id, property) -> value: what the page's state would hold) or null."""

    def __init__(self, deps: list[dict[str, Any]]) -> None:
        self.by_output = {_plain(d["output"]): d for d in deps if "output" in d}

    def reshape(self, body: dict[str, Any], known: dict[tuple[str, str], Any]) -> dict[str, Any]:
        dep = self.by_output.get(_plain(str(body.get("output", ""))))
        if dep is None:
            return body                 # the app no longer has it: the guard will say so (403)
        values: dict[tuple[str, str], Any] = {}
        for group in ("inputs", "state"):
            for item in body.get(group) or []:
                if isinstance(item, dict):
                    values[(json.dumps(item.get("id"), sort_keys=True), str(item.get("property")))] = item.get("value")

        def entry(spec: dict[str, Any]) -> Any:
            if isinstance(spec.get("id"), str) and spec["id"].startswith("{"):
                return body_entry(body, spec)      # a pattern (ALL): as recorded
            key = (json.dumps(spec["id"], sort_keys=True), spec["property"])
            value = values[key] if key in values else known.get((spec["id"], spec["property"]))
            return {"id": spec["id"], "property": spec["property"], "value": value}

        out = dict(body)
        out["output"] = dep["output"]
        out["inputs"] = [entry(s) for s in dep.get("inputs", [])]
        out["state"] = [entry(s) for s in dep.get("state", [])]
        if isinstance(body.get("outputs"), dict) or isinstance(body.get("outputs"), list):
            out["outputs"] = _outputs(dep["output"], body["outputs"])
        names = [f"{i['id']}.{i['property']}" for i in out["inputs"] if isinstance(i, dict)]
        changed = [c for c in body.get("changedPropIds") or [] if c in names] or names[:1]
        out["changedPropIds"] = changed
        if "parsedChangedPropsIds" in body:
            out["parsedChangedPropsIds"] = changed
        return out


def body_entry(body: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A pattern input's entry as recorded (matched by its pattern's JSON and property)."""
    want = json.loads(spec["id"])
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            first = item[0] if isinstance(item, list) and item else item
            if isinstance(first, dict) and isinstance(first.get("id"), dict) and first.get("property") == spec["property"] \
                    and {k: v for k, v in first["id"].items() if k in want and not isinstance(want[k], list)} \
                    == {k: v for k, v in want.items() if not isinstance(v, list)}:
                return item
    return []


def _outputs(output: str, recorded: Any) -> Any:
    """The outputs list for the served output key: the recorded entries with the served
    properties' suffixes (allow_duplicate) put in."""
    if not isinstance(recorded, list):
        return recorded
    served = {}
    for part in output.strip(".").split("..."):
        if "." in part and not part.startswith("{"):
            cid, prop = part.rsplit(".", 1) if part.count(".") == 1 else (part.split(".")[0], part.split(".", 1)[1])
            served[(cid, prop.split("@")[0])] = prop
    out = []
    for o in recorded:
        if isinstance(o, dict) and isinstance(o.get("id"), str):
            prop = served.get((o["id"], str(o.get("property", "")).split("@")[0]), o.get("property"))
            out.append({**o, "property": prop})
        else:
            out.append(o)
    return out


def texts_between(fmt: Callable[[Any], str], a: Any, b: Any, steps: int = 1000) -> set[str]:
    """Every text a card formatting with `fmt` can show for a value between a and b (the API's
    reads before and after the page's draw, for a KPI that moves with the clock): the value is
    monotonic between them, so the texts of `steps` points between cover every rounding."""
    if a == b or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        return {fmt(a), fmt(b)}
    if isinstance(a, int) and isinstance(b, int):
        lo, hi = min(a, b), max(a, b)
        return {fmt(v) for v in range(lo, hi + 1)} if hi - lo <= steps else {fmt(a), fmt(b)}
    return {fmt(a + (b - a) * i / steps) for i in range(steps + 1)}
