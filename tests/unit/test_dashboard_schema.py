"""The dashboard definition schema (dashboards/schema.py): every field, what it accepts, and
the one-line message each refusal gives — naming the origin, the widget (by id, or by
position when it has no usable id) and the field. The provisioned definition files validate."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.schema import (GRID_COLUMNS, MAX_SOURCES, MAX_WIDGETS, SOURCE_KINDS, WIDGET_TYPES,
                               DefinitionError, dump, validate)

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "config" / "dashboards").glob("*.yaml"))


def w(**kw: Any) -> dict[str, Any]:
    base = {"id": "w1", "type": "kpi_card", "title": "T",
            "data_sources": [{"source": "kpi", "metric": "gate_pass_rate"}]}
    return {**base, **kw}


def doc(*widgets: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"id": "d", "title": "D", "widgets": list(widgets), **kw}


def src(**kw: Any) -> dict[str, Any]:
    return doc(w(data_sources=[kw]))


def errors(d: Any, origin: str = "f.yaml") -> list[str]:
    """The DefinitionError's lines."""
    with pytest.raises(DefinitionError) as exc:
        validate(d, origin)
    return str(exc.value).split("\n")


def one(d: Any) -> str:
    lines = errors(d)
    assert len(lines) == 1, lines
    return lines[0]


# --- the provisioned files ------------------------------------------------------------------------

def test_sch001_the_four_role_dashboards_are_provisioned_and_validate() -> None:
    assert [f.name for f in FILES] == ["developer.yaml", "executive.yaml", "operational.yaml", "qa.yaml"]
    for f in FILES:
        d = validate(yaml.safe_load(f.read_text()), str(f))
        assert d.id == f.stem and d.owner == "system"
        assert d.visibility.permissions == [f"view:{f.stem}_dashboard"]


@pytest.mark.parametrize("name,kpis", [
    ("executive", "EXECUTIVE"), ("operational", "OPERATIONAL"), ("qa", "QA"), ("developer", "DEVELOPER")])
def test_sch002_every_fixed_kpi_is_a_card_and_no_cell_overlaps(name: str, kpis: str) -> None:
    import data.kpis
    d = validate(yaml.safe_load((ROOT / "config" / "dashboards" / f"{name}.yaml").read_text()), name)
    cards = [w for w in d.widgets if w.type == "kpi_card"]
    assert [c.data_sources[0].metric for c in cards] == list(getattr(data.kpis, kpis))
    assert all((c.position.width, c.position.height, c.data_sources[0].source) == (3, 2, "kpi") for c in cards)
    cells: dict[tuple[int, int], str] = {}
    for widget in d.widgets:
        p = widget.position
        for x in range(p.x, p.x + p.width):
            for y in range(p.y, p.y + p.height):
                assert (x, y) not in cells, f"{widget.id} overlaps {cells[(x, y)]} at {(x, y)}"
                cells[(x, y)] = widget.id


# The widget ids the pages had before definitions (GET /api/widgets/{id}/data serves them).
TODAYS = {"executive": ["exec-trends", "exec-cost", "exec-cost-split", "exec-teams", "exec-roi", "exec-risks"],
          "operational": ["ops-pipeline", "ops-queues", "ops-agents", "ops-health", "ops-errors", "ops-error-log"],
          "qa": ["qa-gates", "qa-compliance", "qa-defects", "qa-defect-mix", "qa-risks"],
          "developer": ["dev-queue", "dev-suggested", "dev-kanban"]}


def test_sch003_todays_widget_ids_are_kept_where_they_exist() -> None:
    for f in FILES:
        ids = [x.id for x in validate(yaml.safe_load(f.read_text()), str(f)).widgets]
        assert [i for i in ids if i in sum(TODAYS.values(), [])] == TODAYS[f.stem], f.stem


def test_sch004_qa_leads_with_the_gate_chart_and_one_gate_table() -> None:
    qa = validate(yaml.safe_load((ROOT / "config" / "dashboards" / "qa.yaml").read_text()), "qa")
    first = sorted(qa.widgets, key=lambda x: (x.position.y, x.position.x))[:2]
    assert [(x.id, x.type, x.data_sources[0].name) for x in first] == [
        ("qa-gates", "gate_performance", "gates"), ("qa-gate-table", "gate_table", "gates")]
    assert not any((s.metric or "").startswith("gate.") for x in qa.widgets for s in x.data_sources)


# --- what is accepted ------------------------------------------------------------------------------

def test_sch010_a_minimal_definition_gets_its_defaults() -> None:
    d = validate({"id": "x", "title": "X", "widgets": [{"id": "a", "type": "table", "title": "A"}]})
    assert (d.owner, d.default_timeframe, d.tags, d.filters.active(), d.visibility.model_dump()) == \
        ("system", "24h", [], {}, {"permissions": [], "roles": [], "teams": [], "users": []})
    a = d.widget("a")
    assert a is not None and d.widget("zzz") is None
    assert (a.position.x, a.position.y, a.position.width, a.position.height) == (0, 0, 6, 4)
    assert (a.refresh_interval, a.data_sources, a.alert_thresholds) == ("live", [], None)
    assert a.display_options.interactions == ["hover", "drill_down"] and a.display_options.theme == "auto"


def test_sch011_the_json_form_reads_back_to_the_same_definition() -> None:
    d = validate(yaml.safe_load((ROOT / "config" / "dashboards" / "operational.yaml").read_text()), "ops")
    again = validate(dump(d), "again")
    assert again == d and dump(again) == dump(d)
    assert dump(d)["widgets"][-1]["data_sources"][0] == {
        "source": "drilldown", "metric": "error_rate", "name": None, "timeframe": None, "points": None,
        "filters": {"repository": None, "team": None, "gate": None, "agent": None},
        "transform": {"sort_by": None, "descending": True, "columns": None, "limit": 50}}


@pytest.mark.parametrize("kind", list(SOURCE_KINDS))
def test_sch012_every_source_kind_with_each_of_its_names(kind: str) -> None:
    names = SOURCE_KINDS[kind] or (None,)
    for name in names:
        ds = {"source": kind, "name": name} if name else {"source": kind, "metric": "defects_found"}
        assert validate(src(**ds)).widgets[0].data_sources[0].source == kind
    assert validate(src(source="kpi", metric="gate.lint.pass_rate")).widgets[0].data_sources[0].metric == \
        "gate.lint.pass_rate", "per-gate KPIs are KPIs"
    assert validate(src(source="series", metric="queue_depth.review", points=48)).widgets[0].data_sources[0].points == 48


def test_sch013_every_widget_type_is_accepted() -> None:
    d = validate(doc(*(w(id=f"w{i}", type=t, position={"x": 0, "y": i}) for i, t in enumerate(WIDGET_TYPES))))
    assert [x.type for x in d.widgets] == list(WIDGET_TYPES)


def test_sch014_refresh_interval_is_live_off_or_seconds_in_bounds() -> None:
    for value in ("live", "off", 5, 60, 86_400):
        assert validate(doc(w(refresh_interval=value))).widgets[0].refresh_interval == value
    for value in (4, 86_401, 0, -5, "sometimes", 2.5, None, [5]):
        assert one(doc(w(refresh_interval=value))) == \
            "f.yaml: widget 'w1': refresh_interval: must be \"live\", \"off\" or seconds between 5 and 86400", value


def test_sch015_thresholds_in_either_direction() -> None:
    for th in ({"warning": 10, "critical": 20, "direction": "above"}, {"warning": 95, "critical": 85, "direction": "below"},
               {"warning": 10, "critical": 10, "direction": "above"}, {"warning": 10, "critical": 5},
               {"critical": 3}):
        assert validate(doc(w(alert_thresholds=th))).widgets[0].alert_thresholds.critical == th["critical"]


# --- every refusal, one line each ------------------------------------------------------------------

@pytest.mark.parametrize("position,message", [
    ({"x": -1}, "position.x: must be at least 0"),
    ({"x": 12, "width": 1}, "position.x: must be at most 11"),
    ({"y": -3}, "position.y: must be at least 0"),
    ({"y": 10_001}, "position.y: must be at most 10000"),
    ({"width": 0}, "position.width: must be at least 1"),
    ({"width": 13}, "position.width: must be at most 12"),
    ({"height": 0}, "position.height: must be at least 1"),
    ({"height": 41}, "position.height: must be at most 40"),
    ({"x": 8, "width": 6}, "position: x + width must be at most 12 (x=8, width=6)"),
    ({"x": "left"}, "position.x: must be a whole number"),
    ({"x": 1.5}, "position.x: must be a whole number"),
    ({"depth": 1}, "position.depth: unknown field"),
    ([0, 0, 6, 4], "position: must be an object"),
])
def test_sch020_position_bounds_and_the_grid(position: Any, message: str) -> None:
    assert one(doc(w(position=position))) == f"f.yaml: widget 'w1': {message}"
    assert GRID_COLUMNS == 12


@pytest.mark.parametrize("widget,message", [
    ({"type": "bogus"}, "type: unknown widget type 'bogus'"),
    ({"type": 3}, "type: must be a widget type name (a string)"),
    ({"title": ""}, "title: must not be empty"),
    ({"title": "x" * 201}, "title: must be at most 200 characters"),
    ({"description": "x" * 1001}, "description: must be at most 1000 characters"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"data_sources": [{"source": "kpi", "metric": "gate_pass_rate"}] * (MAX_SOURCES + 1)},
     f"data_sources: must have at most {MAX_SOURCES} items"),
    ({"data_sources": {"source": "kpi"}}, "data_sources: must be a list"),
    ({"display_options": {"theme": "pink"}}, "display_options.theme: must be 'auto', 'light' or 'dark'"),
    ({"display_options": {"color_scheme": "neon"}},
     "display_options.color_scheme: must be 'default', 'status_based', 'colorblind' or 'monochrome'"),
    ({"display_options": {"interactions": ["poke"]}},
     "display_options.interactions[0]: must be 'click', 'hover' or 'drill_down'"),
    ({"display_options": {"animation": "sometimes"}}, "display_options.animation: must be true or false"),
    ({"display_options": {"chart": "pie"}}, "display_options.chart: must be 'line', 'area' or 'bar'"),
    ({"display_options": {"sparkle": True}}, "display_options.sparkle: unknown field"),
    ({"alert_thresholds": {"warning": 10, "critical": 5, "direction": "above"}},
     "alert_thresholds: critical (5) must be at or above warning (10) when direction is 'above'"),
    ({"alert_thresholds": {"warning": 85, "critical": 95, "direction": "below"}},
     "alert_thresholds: critical (95) must be at or below warning (85) when direction is 'below'"),
    ({"alert_thresholds": {"warning": "high"}}, "alert_thresholds.warning: must be a number"),
    ({"alert_thresholds": {"direction": "up"}}, "alert_thresholds.direction: must be 'above' or 'below'"),
])
def test_sch021_widget_fields(widget: dict[str, Any], message: str) -> None:
    assert one(doc(w(**widget))) == f"f.yaml: widget 'w1': {message}"


@pytest.mark.parametrize("source,message", [
    ({"source": "bogus", "metric": "x"},
     "data_sources[0].source: must be 'kpi', 'series', 'drilldown', 'breakdown', 'state' or 'computed'"),
    ({"source": "kpi"}, "data_sources[0].metric: a kpi source needs `metric` (a KPI id)"),
    ({"source": "series"}, "data_sources[0].metric: a series source needs `metric` (a KPI id)"),
    ({"source": "drilldown", "metric": "nope"}, "data_sources[0].metric: unknown KPI 'nope'"),
    ({"source": "kpi", "metric": "gate_pass_rate", "name": "agents"},
     "data_sources[0].name: a kpi source takes `metric`, not `name`"),
    ({"source": "state"}, "data_sources[0].name: a state source needs `name`, one of agents, queues, violations, "
                          "active_workflows, my_reviews, my_pull_requests, suggested_reviews, health"),
    ({"source": "computed", "name": "magic"}, "data_sources[0].name: unknown computed 'magic': one of roi, risks, "
                                              "pipeline, gates, team_collaboration, code_quality, test_coverage, "
                                              "achievements, skill_development, annotations, alerts"),
    ({"source": "breakdown", "name": "cost_by_team", "metric": "cost_per_review"},
     "data_sources[0].metric: a breakdown source takes `name`, not `metric`"),
    ({"source": "kpi", "metric": "gate_pass_rate", "points": 10},
     "data_sources[0].points: only a series source takes `points`"),
    ({"source": "series", "metric": "gate_pass_rate", "points": 1}, "data_sources[0].points: must be at least 2"),
    ({"source": "series", "metric": "gate_pass_rate", "points": 501}, "data_sources[0].points: must be at most 500"),
    ({"source": "kpi", "metric": "gate_pass_rate", "timeframe": "2h"},
     "data_sources[0].timeframe: must be '1h', '4h', '24h', '7d' or '30d'"),
    ({"source": "kpi", "metric": "gate_pass_rate", "filters": {"repository": "a", "team": "b"}},
     "data_sources[0].filters: filter by repository or by team, not both"),
    ({"source": "kpi", "metric": "gate_pass_rate", "filters": {"branch": "main"}},
     "data_sources[0].filters.branch: unknown field"),
    ({"source": "state", "name": "agents", "transform": {"limit": 0}},
     "data_sources[0].transform.limit: must be at least 1"),
    ({"source": "state", "name": "agents", "transform": {"limit": 10_001}},
     "data_sources[0].transform.limit: must be at most 10000"),
    ({"source": "state", "name": "agents", "transform": {"columns": ["a b"]}},
     "data_sources[0].transform.columns[0]: must be a column name: letters, digits, '_', '.', ':' or '-'"),
    ({"source": "state", "name": "agents", "transform": {"sort_by": "x;y"}},
     "data_sources[0].transform.sort_by: must be a column name: letters, digits, '_', '.', ':' or '-'"),
    ({"source": "state", "name": "agents", "transform": {"descending": "maybe"}},
     "data_sources[0].transform.descending: must be true or false"),
])
def test_sch022_data_source_fields(source: dict[str, Any], message: str) -> None:
    assert one(src(**source)) == f"f.yaml: widget 'w1': {message}"


@pytest.mark.parametrize("top,message", [
    ({"id": "Has Spaces"}, "id: must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
    ({"id": "-x"}, "id: must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
    ({"id": "x" * 65}, "id: must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
    ({"title": ""}, "title: must not be empty"),
    ({"default_timeframe": "2h"}, "default_timeframe: must be '1h', '4h', '24h', '7d' or '30d'"),
    ({"filters": {"repository": "a", "team": "b"}}, "filters: filter by repository or by team, not both"),
    ({"filter_controls": ["date"]}, "filter_controls[0]: must be 'scope', 'gate' or 'agent'"),
    ({"tags": ["x"] * 21}, "tags: must have at most 20 items"),
    ({"visibility": {"groups": ["a"]}}, "visibility.groups: unknown field"),
    ({"visibility": {"roles": "qa_lead"}}, "visibility.roles: must be a list"),
    ({"owner": ""}, "owner: must not be empty"),
    ({"widgets": {"a": 1}}, "widgets: must be a list"),
    ({"widgets": [w(id=f"w{i}", position={"y": i}) for i in range(MAX_WIDGETS + 1)]},
     f"widgets: must have at most {MAX_WIDGETS} items"),
    ({"layout": "grid"}, "layout: unknown field"),
])
def test_sch023_dashboard_fields(top: dict[str, Any], message: str) -> None:
    assert one({**doc(), **top}) == f"f.yaml: {message}"


def test_sch024_duplicate_widget_ids_name_the_widget() -> None:
    assert one(doc(w(), w(position={"y": 4}))) == "f.yaml: widget 'w1': id: two widgets have this id"


def test_sch025_a_widget_without_a_usable_id_is_named_by_its_place() -> None:
    assert errors(doc(w(), {"type": "table", "title": "x"}, w(id="Bad Id"))) == [
        "f.yaml: widget '#2': id: required",
        "f.yaml: widget '#3': id: must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"]


def test_sch026_missing_fields_and_every_error_at_once() -> None:
    assert errors({"widgets": [{"id": "a"}]}, "POST /api/dashboards") == [
        "POST /api/dashboards: id: required", "POST /api/dashboards: title: required",
        "POST /api/dashboards: widget 'a': type: required", "POST /api/dashboards: widget 'a': title: required"]


@pytest.mark.parametrize("value,kind", [([], "list"), ("dashboard", "str"), (None, "NoneType"), (3, "int")])
def test_sch027_a_definition_is_an_object(value: Any, kind: str) -> None:
    assert one(value) == f"f.yaml: a dashboard definition is an object, not {kind}"


def test_sch028_the_error_carries_its_parts_for_the_api() -> None:
    with pytest.raises(DefinitionError) as exc:
        validate(doc(w(position={"width": 13}), w(id="w2", type="bogus", position={"y": 4})), "PUT /api/dashboards/d")
    assert exc.value.origin == "PUT /api/dashboards/d"
    assert exc.value.errors == [{"widget": "w1", "field": "position.width", "message": "must be at most 12"},
                                {"widget": "w2", "field": "type", "message": "unknown widget type 'bogus'"}]



def test_a_page_s_definition_is_parsed_once_per_distinct_document() -> None:
    """The refresh and its permission check take a page's definition through
    dashboards.schema.parsed: one Dashboard per distinct document in the process; a bad one
    is refused every time (nothing invalid is remembered)."""
    import copy

    import pytest
    from pydantic import ValidationError

    from dashboards.schema import parsed
    doc = {"id": "p1", "title": "P", "widgets": [{"id": "k", "type": "kpi_card", "title": "k",
                                                  "data_sources": [{"source": "kpi", "metric": "gate_pass_rate"}]}]}
    first = parsed(doc)
    assert parsed(copy.deepcopy(doc)) is first and first.widget("k") is not None
    other = parsed({**doc, "title": "Q"})
    assert other is not first and other.title == "Q"
    bad = {**doc, "widgets": [{**doc["widgets"][0], "type": "no_such_type"}]}
    for _ in range(2):
        with pytest.raises(ValidationError):
            parsed(bad)


def test_a_structured_callback_value_seen_valid_is_not_validated_again() -> None:
    """auth.callback_schema: a dict or list value found valid is remembered by its JSON's digest
    per input; any other value, or an invalid one, is validated."""
    import pytest

    from api.validation import InvalidInput
    from auth.callback_schema import CallbackSchema, _Dep, _Entry
    calls: list[object] = []

    class Adapter:
        def validate_python(self, value: object, strict: bool = False) -> object:
            calls.append(value)
            if isinstance(value, dict) and value.get("bad"):
                from pydantic import TypeAdapter
                TypeAdapter(int).validate_python("x", strict=True)   # a real ValidationError
            return value
    dep = _Dep(name="t-def.data", pattern=None, cid="t-def", prop="data", many=False, adapter=Adapter())  # type: ignore[arg-type]

    def check(value: object) -> None:
        CallbackSchema._value(dep, _Entry.model_validate({"id": "t-def", "property": "data", "value": value}))
    check({"a": [1, 2]})
    check({"a": [1, 2]})
    assert len(calls) == 1
    check({"a": [1, 3]})
    other = _Dep(name="t-def.data", pattern=None, cid="t-def", prop="data", many=False, adapter=Adapter())  # type: ignore[arg-type]
    CallbackSchema._value(other, _Entry.model_validate({"id": "t-def", "property": "data", "value": {"a": [1, 2]}}))
    assert len(calls) == 3                      # the same input under another schema: validated by it
    check("text")
    check("text")
    assert len(calls) == 5                      # another document; scalars each time
    for _ in range(2):
        with pytest.raises(InvalidInput):
            check({"bad": True})
    assert len(calls) == 7
