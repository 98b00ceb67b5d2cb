"""The partial plotly.js bundle the pages load (assets/plotly-qms.min.js, scripts/build-plotly.sh):
it must hold every trace type a figure of ours can carry, be the plotly.js version the Python
plotly package writes figures for, and be the only plotly.js on the page."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from plotly.offline import get_plotlyjs_version

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "assets" / "plotly-qms.min.js"
TRACES = ROOT / "scripts" / "plotly-bundle" / "traces.json"
PRODUCT = ("components", "pages", "callbacks", "data", "live", "alerts", "api")


def _banner() -> re.Match[str]:
    with BUNDLE.open(encoding="utf-8") as f:
        head = f.read(400)
    m = re.match(r"/\* plotly\.js v(?P<version>[\d.]+) .*; traces: (?P<traces>[a-z0-9,]+) \*/", head)
    assert m, head[:200]
    return m


def _trace_types_in_code() -> dict[str, str]:
    """Every `go.<Trace>` the product's code names (a trace class of plotly.graph_objects) → where."""
    found: dict[str, str] = {}
    for pkg in PRODUCT:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "go"):
                    cls = getattr(go, node.attr, None)
                    if isinstance(cls, type) and issubclass(cls, BaseTraceType):
                        found.setdefault(cls().plotly_name, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_plb001_the_bundle_is_the_plotly_js_version_python_plotly_writes_for() -> None:
    assert _banner()["version"] == get_plotlyjs_version()
    pkg = json.loads((ROOT / "scripts" / "plotly-bundle" / "package.json").read_text())
    assert pkg["dependencies"]["plotly.js"] == get_plotlyjs_version()


def test_plb002_every_trace_type_our_figures_carry_is_in_the_bundle() -> None:
    listed = json.loads(TRACES.read_text())
    assert _banner()["traces"].split(",") == listed, "bundle built from another traces.json: run scripts/build-plotly.sh"
    used = _trace_types_in_code()
    assert {"scatter", "bar", "heatmap"} <= set(used), used          # the scan finds what is there
    missing = {t: where for t, where in used.items() if t not in listed}
    assert not missing, f"add to scripts/plotly-bundle/traces.json and run scripts/build-plotly.sh: {missing}"


def test_plb003_the_bundle_is_a_fraction_of_the_full_plotly_js() -> None:
    full = Path(go.__file__).resolve().parents[1] / "package_data" / "plotly.min.js"
    assert BUNDLE.stat().st_size < full.stat().st_size / 2.5, (BUNDLE.stat().st_size, full.stat().st_size)


def test_plb004_the_page_loads_the_bundle_before_dcc_and_not_the_full_plotly_js(app: Any) -> None:
    with app.server.test_request_context("/"):
        app._setup_server()                  # what Dash runs before a first request: the assets
        page = app.index()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    ours = [i for i, s in enumerate(scripts) if "/assets/plotly-qms.min.js" in s]
    dcc = [i for i, s in enumerate(scripts) if "dash_core_components." in s]
    assert len(ours) == 1 and dcc and ours[0] < dcc[0], scripts
    assert not [s for s in scripts if "package_data/plotly" in s], scripts
