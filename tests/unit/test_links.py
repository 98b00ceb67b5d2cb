"""Every workflow, agent and gate id in the dashboards' grids, tables and cards links to its
page (components/links.py; the AG Grid renderer in assets/dashAgGridComponentFunctions.js)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dash import dcc

from callbacks.alerts import rows as alert_rows
from callbacks.entity import entity_for_path
from components import links
from components.common import walk
from components.ops import agent_status_grid, kanban_board
from components.render import render
from components.system import alert_summary
from pages import alerts as alerts_page

JS = Path(__file__).resolve().parents[2] / "assets" / "dashAgGridComponentFunctions.js"
NODE = shutil.which("node")


def hrefs(c: Any) -> set[str]:
    return {x.href for x in walk(c) if isinstance(x, dcc.Link)}


def test_lnk001_hrefs_quote_ids_and_round_trip() -> None:
    assert links.href("workflow", "WF-1") == "/workflows/WF-1"
    assert links.href("workflow", "a b/c?d#e") == "/workflows/a%20b%2Fc%3Fd%23e"
    assert entity_for_path(links.href("workflow", "a b/c?d#e")) == ("workflow", "a b/c?d#e")
    assert entity_for_path(links.href("agent", "qms-code-reviewer")) == ("agent", "qms-code-reviewer")
    assert links.gate_href("lint-gate") == "/gates/lint-gate"
    assert links.href("actor", "qms-code-reviewer") == "/agents/qms-code-reviewer"
    assert links.href("actor", "alice.chen") is None and links.href("actor", "user-0a1b2c3d4e") is None
    assert links.href("workflow", None) is None and links.href("nope", "x") is None
    assert entity_for_path("/dashboards/qa") is None and entity_for_path("/workflows/") is None


def test_lnk002_kanban_cards_and_agent_tiles_link() -> None:
    board = kanban_board([{"workflow_id": "WF-7", "repository": "qms-core", "pr_number": 7, "step": "code_review"}])
    assert "/workflows/WF-7" in hrefs(board)
    grid = agent_status_grid([{"agent_id": "qms-dor-validator", "status": "active", "load": 0.5}])
    assert "/agents/qms-dor-validator" in hrefs(grid)


def test_lnk003_developer_review_queue_and_suggested_reviews_link() -> None:
    """The provisioned developer dashboard's tables (config/dashboards/developer.yaml), drawn
    from their sources' frames, link each workflow id."""
    import pandas as pd

    from dashboards.provision import load_file
    defn = load_file(Path(__file__).resolve().parents[2] / "config" / "dashboards" / "developer.yaml")
    queue = pd.DataFrame([{"workflow_id": "WF-9", "since": pd.Timestamp("2025-01-01T00:00:00Z")}])
    suggested = pd.DataFrame([{"workflow_id": "WF-10", "repository": "r", "author": "a",
                               "step_since": pd.Timestamp("2025-01-01T00:00:00Z")}])
    out = hrefs(render(defn.widget("dev-queue"), [queue])) | hrefs(render(defn.widget("dev-suggested"), [suggested]))
    assert {"/workflows/WF-9", "/workflows/WF-10"} <= out


def test_lnk004_grid_columns_of_known_id_fields_link() -> None:
    """The drill-down and gate failing-runs grids build their columns from FIELD_KINDS."""
    for field, kind in (("workflow_id", "workflow"), ("agent_id", "agent"), ("gate_name", "gate"),
                        ("reviewer", "actor"), ("found_by", "actor")):
        col = links.link_column(field, links.FIELD_KINDS[field])
        assert col["cellRenderer"] == "EntityLink" and col["cellRendererParams"]["kind"] == kind


def test_lnk005_alerts_that_name_an_agent_link_to_it() -> None:
    summary = alert_summary([{"name": "agent_down", "severity": "critical", "state": "firing",
                              "labels": {"agent": "qms-code-reviewer"}}])
    assert "/agents/qms-code-reviewer" in hrefs(summary)
    row = alert_rows([{"id": "agent_down{agent=qms-x}", "status": "firing", "labels": {"agent": "qms-x"}}])[0]
    assert row["labels"] == {"agent": "qms-x"} and row["entity"] == "agent=qms-x"
    entity = next(c for c in alerts_page.COLUMNS if c.get("field") == "entity")
    assert entity["cellRenderer"] == "EntityLabels" and entity["cellRendererParams"]["labelsField"] == "labels"


def test_lnk006_table_cells_link_known_id_columns() -> None:
    assert isinstance(links.cell("workflow_id", "WF-1"), dcc.Link)
    assert isinstance(links.cell("reviewer", "qms-code-reviewer"), dcc.Link)
    assert links.cell("reviewer", "alice.chen") == "alice.chen" and links.cell("since", "x") == "x"
    col = links.link_column("workflow_id", links.WORKFLOW, "Workflow", minWidth=200)
    assert col == {"field": "workflow_id", "headerName": "Workflow", "cellRenderer": "EntityLink", "minWidth": 200,
                   "cellRendererParams": {"kind": "workflow", "agentPrefix": "qms-"}}


HARNESS = r"""
const vm = require("vm"), fs = require("fs"), assert = require("assert");
const React = {createElement: (tag, props, ...children) => ({tag, props, children})};
const win = {history: {pushState: (s, t, u) => { win.pushed.push(u); }}, pushed: [], events: [],
             dispatchEvent: e => win.events.push(e.type), scrollTo: () => {}};
const ctx = {window: win, React, CustomEvent: function (t) { this.type = t; }};
vm.runInNewContext(fs.readFileSync(process.argv[2], "utf8"), ctx);
const f = win.dashAgGridComponentFunctions;
const a = f.EntityLink({value: "a b/c", kind: "workflow", agentPrefix: "qms-"});
assert.strictEqual(a.tag, "a"); assert.strictEqual(a.props.href, "/workflows/a%20b%2Fc");
assert.strictEqual(f.EntityLink({value: "alice", kind: "actor", agentPrefix: "qms-"}), "alice");
assert.strictEqual(f.EntityLink({value: "qms-x", kind: "actor", agentPrefix: "qms-"}).props.href, "/agents/qms-x");
assert.strictEqual(f.EntityLink({value: null, kind: "workflow"}), "");
let prevented = false;
a.props.onClick({button: 0, preventDefault: () => { prevented = true; }});
assert.ok(prevented); assert.deepStrictEqual(win.pushed, ["/workflows/a%20b%2Fc"]);
assert.deepStrictEqual(win.events, ["_dashprivate_pushstate"]);
prevented = false;
a.props.onClick({button: 0, ctrlKey: true, preventDefault: () => { prevented = true; }});
assert.ok(!prevented, "a ctrl-click opens a new tab as links do");
const span = f.EntityLabels({value: "agent=qms-x, queue=q", labelsField: "labels",
                             data: {labels: {queue: "q", agent: "qms-x"}}, kinds: {agent: "agent", gate: "gate"}});
const kids = span.children.filter(c => typeof c === "object");
assert.deepStrictEqual(kids.map(k => k.props.href), ["/agents/qms-x"]);
assert.strictEqual(span.children.filter(c => typeof c === "string").join(""), "agent=, queue=q");
console.log("ok");
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_lnk007_grid_renderer_in_node() -> None:
    res = subprocess.run([NODE, "-", str(JS)], input=HARNESS, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_lnk008_renderer_names_match() -> None:
    src = JS.read_text()
    for name in (links.RENDERER, links.LABELS_RENDERER):
        assert f"dagcomponentfuncs.{name} = function" in src
    assert json.dumps(links.BASES) == json.dumps({"workflow": "/workflows/", "agent": "/agents/", "gate": "/gates/"})
