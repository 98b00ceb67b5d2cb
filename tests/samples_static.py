"""Widget bodies drawn by the real components from sample rows, for the StaticHtml tests
(tests/unit/test_static_html.py, tests/e2e/test_static_html.py): each call builds new trees."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import charts, kpi, ops, quality, system, tables

HOSTILE = '<script>window.__pwned = 1</script> & "quoted" \'single\' <b>bold?</b> ünï © 1 < 2'


def samples() -> list[tuple[str, Any]]:
    agents = [{"agent_id": f"agent-{i}", "status": s, "load": load, "skills": ["python", "review"],
               "since": "2026-12-02T10:00:00Z"} for i, (s, load) in
              enumerate([("active", 0.42), ("idle", 0.0), ("training", None), ("error", 1.0)])]
    gates = [{"gate": g, "pass_rate": rate, "executions": n, "p95_time": minutes}
             for g, rate, n, minutes in [("lint-gate", 90.8, 8270, 1.6), ("security-scan-gate", 75.0, 12, 5.3)]]
    errors = [{"id": f"e{i}", "timestamp": f"2026-12-02T1{i}:00:00Z", "type": "system.error_occurred",
               "data": {"component": "aggregator", "message": HOSTILE if i == 0 else f"timeout {i}", "severity": "high"}}
              for i in range(4)]
    return [
        ("agents", ops.agent_status_grid(agents)),
        ("gates", quality.gate_table(gates)),
        ("errors", system.error_log_viewer(errors, more_href="/events/error_rate?timeframe=24h")),
        ("queues", ops.queue_monitor([{"queue": "review", "depth": 14}, {"queue": "dod", "depth": 3}])),
        ("pipeline", ops.pipeline_visualizer({"dor_validation": 30, "code_review": 827, "dod_validation": 0})),
        ("kpi", html.Div(kpi.kpi_card("gate_pass_rate", {"current_value": 90.25, "previous_value": 92.1, "unit": "%"},
                                      href="/events/gate_pass_rate?timeframe=24h", sample=7, level="warning",
                                      value_id={"type": "kpi-value", "kpi": "gate_pass_rate", "w": "w1"}),
                         id={"type": "w-view", "w": "w1"})),
        ("stats", tables.stat_group([{"label": "Reviews", "value": 13891}, {"label": "ROI (%)", "value": 99.6, "unit": "%"}])),
        ("progress", charts.progress_bar(42.5, 50, unit="usd", label="Budget")),
        ("gauge", charts.gauge_chart(96.3, "%", {"warning": 95, "critical": 85, "direction": "below"})),
        ("hostile", html.Div([
            html.H6(HOSTILE, title=HOSTILE, className="x\" onclick=\"window.__pwned=2"),
            html.Ul([html.Li([1.0, " ", 0.1, " ", 2.5e-3, " ", -0.0, " ", 123456789012]), html.Li(True), html.Li(None)]),
            html.Div("styled", style={"width": 12, "opacity": 0.5, "flexGrow": 1, "marginTop": 0, "--x": "1px",
                                      "backgroundColor": "var(--bs-body-bg)", "WebkitLineClamp": 2},
                     **{"data-value": 3.0, "aria-label": "a 'label'"}, hidden=False),
            html.Table(html.Tbody(html.Tr([html.Td("a", colSpan=2), html.Td(dcc.Link("x & y", href="/alerts?a=1&b=2"))]))),
            html.A("out", href="https://example.org/?q=<1>", target="_blank", rel="noopener"),
            dbc.Badge("warn", color="warning", text_color="dark", pill=True, className="ms-1"),
            html.Img(src="data:image/svg+xml;charset=utf-8,%3Csvg%3E%3C/svg%3E", alt=""),
        ], id={"type": "sample", "n": 2, "s": "ä\"b"})),
    ]
