"""Pure parts of the drill-down and its exports: counts per kind of KPI, typed and labelled
export cells, file names, the count line, entity states read without their contributions."""
from __future__ import annotations

import csv
import io

import orjson
import pytest

from components.drilldown import count_line, grid_columns, grid_row
from data import drilldown
from data.drilldown import AVERAGED, COUNTED, DENOMINATOR, NUMERATOR, RANKED, Query, Row, Tally, _entity
from data.exports import drilldown_csv, filename, label, typed, widget_csv
from data.timeutil import HOUR_MS

Q = Query("k", 0, 24 * HOUR_MS, 24 * HOUR_MS)


def _tally(kpi: str, rows: list[Row]) -> Tally:
    t = Tally(drilldown.spec(kpi), Query(kpi, 0, 24 * HOUR_MS, 24 * HOUR_MS))
    for row in rows:
        t.add(row)
    return t


def test_ddu001_counts_reproduce_the_value_for_each_kind() -> None:
    pct = _tally("gate_pass_rate", [Row(1, "a", NUMERATOR, {}), Row(2, "b", DENOMINATOR, {}), Row(3, "c", NUMERATOR, {})])
    assert pct.counts() == {"numerator": 2, "denominator": 3} and pct.value() == pytest.approx(200 / 3)
    mean = _tally("time_to_merge", [Row(1, "a", AVERAGED, {}, 2.0), Row(2, "b", AVERAGED, {}, 4.0)])
    assert mean.counts() == {"rows": 2, "sum": 6.0} and mean.value() == 3.0
    p95 = _tally("gate.lint.p95_time", [Row(i, str(i), RANKED, {}, float(i)) for i in range(1, 21)])
    assert p95.counts() == {"rows": 20, "rank": 19} and p95.value() == 19.0
    rate = _tally("error_rate", [Row(i, str(i), COUNTED, {}) for i in range(6)])
    assert rate.counts() == {"counted": 6, "hours": 24.0} and rate.value() == 0.25
    empty = _tally("sla_adherence", [])
    assert empty.counts() == {"numerator": 0, "denominator": 0} and empty.value() is None
    top = _tally("skill_development_areas", [Row(i, str(i), COUNTED, {}, c) for i, c in enumerate("bbaac")])
    assert top.value() == ["a", "b"], "ties by name"


def test_ddu002_export_cells_are_typed_and_headers_say_unit_and_precision() -> None:
    assert label("pass_rate", "percentage") == "pass_rate (percentage, 2 dp)"
    assert label("executions", "count") == "executions (count)" and label("gate", None) == "gate"
    assert typed(30.0, "count", True) == 30 and typed(66.666666, "percentage", True) == 66.67
    assert typed(66.666666, "percentage", False) == 66.666666 and typed(True, "count", True) is True
    text = "".join(widget_csv(["gate", "pass_rate", "executions"],
                              [{"gate": "=cmd", "pass_rate": 50.0, "executions": 2.0}], cap=0))
    assert list(csv.reader(io.StringIO(text))) == [["gate", "pass_rate (percentage, 2 dp)", "executions (count)"],
                                                    ["'=cmd", "50.0", "2"]]


def test_ddu003_a_capped_export_says_so_in_its_last_line() -> None:
    rows = [(Row(10 - i, f"e{i}", COUNTED, {}), {"id": f"e{i}", "type": "t", "data": {"category": "+1"}}, [])
            for i in range(5)]
    lines = "".join(drilldown_csv(drilldown.spec("defects_found"), iter(rows), cap=3)).splitlines()
    assert len(lines) == 5 and lines[-1].startswith("# cut at 3 rows")
    whole = "".join(drilldown_csv(drilldown.spec("defects_found"), iter(rows), note=lambda: "2 rows left out"))
    assert whole.splitlines()[-1] == "# 2 rows left out" and "'+1" in whole


def test_ddu004_file_names_carry_what_window_and_filters_safely() -> None:
    name = filename("qa", "gate.lint/x.pass_rate", "24h", 0, 24 * HOUR_MS, {"repository": "a b"}, "csv")
    assert name == "qms-qa-gate.lint_x.pass_rate-24h-19700101T0000Z-19700102T0000Z-repository-a_b.csv"


def test_ddu005_entity_states_are_read_without_their_contributions() -> None:
    state = {"c": [1, "ann", None, "api", 3, "p1"], "done": [5, "merged", "d1"], "_c": [["m", "wc", 5, 1, False]]}
    assert _entity(orjson.dumps(state)) == {"c": [1, "ann", None, "api", 3, "p1"], "done": [5, "merged", "d1"]}
    assert _entity(orjson.dumps({"_c": []})) == {}
    assert _entity(orjson.dumps({"rs": 7})) == {"rs": 7}
    assert _entity(orjson.dumps({**state, "_c": None, "_v": [1, 28_800_000]})) == {
        "c": [1, "ann", None, "api", 3, "p1"], "done": [5, "merged", "d1"]}
    assert _entity(orjson.dumps({"f": [1, "critical", "W1", "e"], "_v": 1})) == {"f": [1, "critical", "W1", "e"]}


def test_ddu006_grid_columns_and_rows_fill_every_data_field() -> None:
    sp = drilldown.spec("critical_defects")
    fields = [c["field"] for c in grid_columns(sp)]
    assert fields[:3] == ["timestamp", "role", "type"] and "data.severity" in fields and "data.title" not in fields
    assert "data.title" not in [c["field"] for c in grid_columns(drilldown.spec("process_adoption_rate"), ["data.title"])]
    ev = {"id": "f1", "type": "workflow.defect_found", "timestamp": "2025-01-01T00:00:00Z",
          "data": {"workflow_id": "W1", "defect_id": "D1", "severity": "critical", "extra": {"a": 1}}}
    row = grid_row(Row(1, "f1", "open_at_end", ev), ev, [], ["workflow_id", "defect_id", "severity"])
    assert row["data.workflow_id"] == "W1" and row["data.other"] == '{"extra":{"a":1}}'
    assert count_line("critical_defects", sp, {"counted": 18}, 18, "2025-01-01T00:00:00Z") == \
        "18 open critical defects at 2025-01-01T00:00:00Z (UTC)"
    assert count_line("gate_pass_rate", drilldown.spec("gate_pass_rate"), {"numerator": 2, "denominator": 3}, 200 / 3,
                      None) == "2 of 3 gate runs passed = 66.7%"
