"""components.json_out.to_json writes what Dash's to_json (Plotly's encoder) writes, text for
text: components, figures' JSON with numpy arrays, times, NaN, script-unsafe characters — and
objects orjson does not know go Plotly's way."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
from dash import dcc, html
from dash._utils import to_json as dash_to_json

from components.json_out import to_json


def test_jso001_the_same_text_as_dash() -> None:
    fig = {"data": [{"type": "scatter", "x": np.array([1.0, np.nan, 3.0]), "y": [1, None, 3],
                     "text": ["</script><b>", "\u2028", "a/b"]}],
           "layout": {"title": {"text": "<i>x</i>"}}}
    tree = html.Div([html.Span("a < b", id={"type": "w", "w": "k"}), dcc.Graph(figure=fig),
                     dcc.Store(id="s", data={"t": datetime(2026, 12, 3, 7, 0, tzinfo=timezone.utc), 1: "int key"})],
                    className="x", style={"height": "1px"})
    assert to_json(tree) == dash_to_json(tree)
    assert "</script>" not in to_json(tree) and "\\u003c" in to_json(tree)


def test_jso002_what_orjson_does_not_know_goes_plotlys_way() -> None:
    odd = html.Div([dcc.Store(id="s", data={"ts": pd.Timestamp("2026-12-03T07:00:00Z"), "nat": pd.NaT,
                                    "objects": np.array(["a", None], dtype=object)})])
    assert to_json(odd) == dash_to_json(odd)
