"""Dash components as JSON, fast: what dash._utils.to_json (Plotly's encoder) writes.

Plotly's encoder tries orjson on the object as it is and, on the first object orjson does not
know — any Dash component —, walks the whole tree in Python to clean it and serialises that
(`plotly.io.json.clean_to_json_compatible`): a page's layout, a drawn body or the page's config
with its validation layout took 3–10 ms of a web worker's CPU each time. Here orjson meets a
component through its `default` hook (the component's `to_plotly_json`, as the walk would call)
and writes everything else it knows as Plotly's first try does; anything it does not know takes
Plotly's way, whole.
"""
from __future__ import annotations

from typing import Any

import orjson
from dash._utils import to_json as dash_to_json

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# As plotly.io.json does for orjson's output: safe inside an HTML <script> and in JavaScript.
_SWAP = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _component(o: Any) -> Any:
    to_plotly = getattr(o, "to_plotly_json", None)
    if to_plotly is None:
        raise TypeError(type(o).__name__)
    return to_plotly()


def to_json(obj: Any) -> str:
    """`obj` (components, figures' JSON, plain data) as the JSON Dash would send."""
    try:
        out = orjson.dumps(obj, default=_component, option=_OPTS).decode("utf8")
    except TypeError:
        return dash_to_json(obj)
    for unsafe, safe in _SWAP:
        if unsafe in out:
            out = out.replace(unsafe, safe)
    return out
