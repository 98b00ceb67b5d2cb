"""The page Dash serves: Plotly and the chunks a dashboard draws with are scripts of the page;
chunks no page opens with (MathJax, Markdown, uploads, AG Grid enterprise, DataTable) are not
— they stay fetchable for when a component needs one."""
from __future__ import annotations

import re
from typing import Any


def test_idx001_the_page_loads_what_dashboards_draw_with_and_leaves_the_rest_lazy(app: Any) -> None:
    with app.server.test_request_context("/"):
        app._setup_server()                  # what Dash runs before a first request: the assets
        page = app.index()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    names = " ".join(scripts)
    for needed in ("plotly-qms", "async-graph", "async-dropdown", "dash_ag_grid", "async-community", "dash_renderer"):
        assert needed in names, needed
    assert not [s for s in scripts if "package_data/plotly" in s], "the full plotly.js: the partial bundle replaces it"
    for lazy in ("async-mathjax", "async-markdown", "async-upload", "async-enterprise", "async-table", "async-datepicker"):
        assert lazy not in names, lazy
    # served like any component chunk (what webpack fetches on demand)
    res = app.server.test_client().get("/_dash-component-suites/dash/dcc/async-upload.js")
    assert res.status_code == 200 and len(res.data) > 1000
