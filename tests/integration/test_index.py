"""The page Dash serves: Plotly and the chunks a dashboard draws with are scripts of the page;
chunks no page opens with (MathJax, Markdown, uploads, AG Grid enterprise, DataTable) are not
— they stay fetchable for when a component needs one. AG Grid is named in a <meta> for
assets/lazy_grid.js, which loads it when a grid is first drawn."""
from __future__ import annotations

import html
import json
import re
from typing import Any


def test_idx001_the_page_loads_what_dashboards_draw_with_and_leaves_the_rest_lazy(app: Any) -> None:
    with app.server.test_request_context("/"):
        app._setup_server()                  # what Dash runs before a first request: the assets
        page = app.index()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    names = " ".join(scripts)
    for needed in ("plotly-qms", "async-graph", "async-dropdown", "dash_renderer", "lazy_grid.js"):
        assert needed in names, needed
    assert "dash_ag_grid/" not in names, "AG Grid is loaded when a grid is drawn, not with every page"
    m = re.search(r'<meta name="qms-lazy-grid" content="([^"]+)">', page)
    assert m, page[:2000]
    grid = json.loads(html.unescape(m.group(1)))
    assert [re.sub(r"\.v[^/]*$", "", u.rsplit("/", 1)[-1]) for u in grid] == ["dash_ag_grid", "async-community"], grid
    client = app.server.test_client()
    for url in grid:                     # fetchable, and the real scripts (the main one defines window.dash_ag_grid)
        res = client.get(url)
        assert res.status_code == 200 and len(res.data) > 100_000, url
    assert b"window.dash_ag_grid=" in client.get(grid[0]).data
    assert not [s for s in scripts if "package_data/plotly" in s], "the full plotly.js: the partial bundle replaces it"
    for lazy in ("async-mathjax", "async-markdown", "async-upload", "async-enterprise", "async-table", "async-datepicker"):
        assert lazy not in names, lazy
    # served like any component chunk (what webpack fetches on demand)
    res = app.server.test_client().get("/_dash-component-suites/dash/dcc/async-upload.js")
    assert res.status_code == 200 and len(res.data) > 1000
