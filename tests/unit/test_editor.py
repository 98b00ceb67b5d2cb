"""The edit mode's pure parts: grid layout ↔ positions, the widget library, the sources a user
is offered, the edits of a definition, vertical compaction and the undo stack."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from auth.principal import Principal
from auth.rbac import load_rbac
from components import editor
from components.grid import COLS, cell_id, grid, layout_to_positions, phone_layout
from dashboards import sources
from dashboards.schema import WIDGET_TYPES, Position, Widget, dump, validate

ROOT = Path(__file__).resolve().parents[2]


def principal(role: str) -> Principal:
    return Principal(f"{role}-user", (role,), load_rbac().permissions_for([role]))


def definition(name: str = "developer") -> dict[str, Any]:
    return dump(validate(yaml.safe_load((ROOT / "config" / "dashboards" / f"{name}.yaml").read_text()), name))


def test_ed001_layout_to_positions_maps_cells_back_to_widgets_within_the_grid() -> None:
    layout = [{"i": "wc-a", "x": 3, "y": 2, "w": 4, "h": 5, "moved": False, "static": False},
              {"i": "wc-b", "x": 11, "y": 0, "w": 4, "h": 2},          # past the right edge: pulled in
              {"i": "wc-c", "x": 0, "y": 1, "w": 40, "h": 99},         # too wide and tall: clamped
              {"i": "other", "x": 1, "y": 1, "w": 1, "h": 1},          # not a widget cell
              {"i": "wc-d", "x": "1", "y": 0, "w": 1, "h": 1},         # not numbers
              {"i": "wc-", "x": 0, "y": 0, "w": 1, "h": 1}]
    assert layout_to_positions(layout) == {
        "a": Position(x=3, y=2, width=4, height=5),
        "b": Position(x=8, y=0, width=4, height=2),
        "c": Position(x=0, y=1, width=12, height=40),
    }
    assert layout_to_positions(None) == {}


def test_ed002_grid_lays_out_each_widget_from_its_position_and_one_column_on_phones() -> None:
    doc = definition()
    widgets = validate(doc).widgets
    g = grid([(w, None) for w in widgets], editable=False)
    lg = {item["i"]: (item["x"], item["y"], item["w"], item["h"]) for item in g.layouts["lg"]}
    assert lg[cell_id("suggested_reviews")] == (6, 2, 3, 2)
    assert lg[cell_id("dev-kanban")] == (0, 9, 12, 6)
    assert (g.isDraggable, g.isResizable) == (False, False)
    assert grid([(w, None) for w in widgets], editable=True).isDraggable is True
    assert COLS["xs"] == 1
    xs = phone_layout(widgets)
    assert [i["i"] for i in xs][:5] == [cell_id(w) for w in ("pending_reviews", "completed_today",
                                                             "average_feedback_time", "quality_score_trend",
                                                             "team_velocity")]
    assert all(i["x"] == 0 and i["w"] == 1 for i in xs)
    assert [i["y"] for i in xs][:3] == [0, 2, 4]          # stacked, each as tall as on the desktop
    # what the grid reports back is what it was given
    assert layout_to_positions(g.layouts["lg"]) == {w.id: w.position for w in widgets}


def test_ed003_library_lists_every_type_once_grouped_by_category() -> None:
    listed = [t for types in editor.CATEGORIES.values() for t in types]
    assert sorted(listed) == sorted(WIDGET_TYPES) and len(listed) == len(set(listed))
    groups = editor.library(principal("admin"), sources.allowed)
    assert [cat for cat, _ in groups] == list(editor.CATEGORIES)
    assert sorted(t for _, items in groups for t, _ in items) == sorted(WIDGET_TYPES)
    # an admin may see everything: every type has a preview source, and each new widget is valid
    for _, items in groups:
        for wtype, srcs in items:
            assert srcs, wtype
            doc = editor.add({"id": "d", "title": "D", "widgets": []}, editor.new_widget({"widgets": []}, wtype, srcs))
            assert validate(doc).widgets[0].type == wtype


def test_ed004_a_developer_is_offered_only_sources_they_may_see_never_cost() -> None:
    dev = principal("developer")
    offered = {o["value"] for o in editor.source_options(dev, sources.allowed)}
    assert {"kpi:pending_reviews", "state:my_reviews", "computed:achievements"} <= offered
    for banned in ("kpi:cost_per_review", "series:cost_per_review", "breakdown:cost_by_team",
                   "breakdown:cost_by_repository", "computed:roi", "kpi:gate_pass_rate", "state:agents"):
        assert banned not in offered, banned
    assert all(sources.allowed(editor.source_of(v), dev) for v in offered)
    # the library's previews for a developer read developer sources only
    for _, items in editor.library(dev, sources.allowed):
        for wtype, srcs in items:
            assert srcs is None or all(sources.allowed(ds, dev) for ds in srcs), wtype
    kinds = dict(t for _, items in editor.library(dev, sources.allowed) for t in items)
    assert [editor.source_key(ds) for ds in kinds["kpi_card"]] == ["kpi:pending_reviews"]
    assert kinds["queue_monitor"] is None                    # queues are the operations' data
    # an executive gets cost, and no developer's personal lists
    exe = {o["value"] for o in editor.source_options(principal("executive"), sources.allowed)}
    assert "computed:roi" in exe and "state:my_reviews" not in exe


def test_ed005_duplicate_remove_and_add_keep_ids_unique_and_place_below() -> None:
    doc = definition()
    bottom = max(w["position"]["y"] + w["position"]["height"] for w in doc["widgets"])
    twice = editor.duplicate(editor.duplicate(doc, "dev-queue"), "dev-queue")
    ids = [w["id"] for w in twice["widgets"]]
    assert ids[ids.index("dev-queue"):ids.index("dev-queue") + 3] == ["dev-queue", "dev-queue-3", "dev-queue-2"]
    copy = next(w for w in twice["widgets"] if w["id"] == "dev-queue-2")
    assert copy["title"].endswith("(copy)") and copy["position"]["y"] == bottom
    assert copy["data_sources"] == next(w for w in doc["widgets"] if w["id"] == "dev-queue")["data_sources"]
    assert validate(twice)
    gone = editor.remove(twice, "dev-queue")
    assert "dev-queue" not in [w["id"] for w in gone["widgets"]] and len(gone["widgets"]) == len(doc["widgets"]) + 1
    new = editor.new_widget(doc, "kpi_card", [editor.source_of("kpi:pending_reviews")])
    assert new["id"] == "kpi-card" and new["position"] == {"x": 0, "y": bottom, "width": 3, "height": 2}
    assert editor.new_widget(editor.add(doc, new), "kpi_card", None)["id"] == "kpi-card-2"


def test_ed006_configure_sets_title_sources_timeframe_thresholds_refresh_display() -> None:
    doc = definition()
    form = {"title": "  Feedback  ", "sources": ["kpi:average_feedback_time", "kpi:pending_reviews"],
            "timeframe": "7d", "warning": 8, "critical": 24.5, "direction": "above", "refresh": "30",
            "flags": ["show_legend"], "chart": "bar", "color_scheme": "colorblind", "theme": "dark"}
    out = validate(editor.configure(doc, "average_feedback_time", form)).widget("average_feedback_time")
    assert out is not None
    assert out.title == "Feedback"
    assert [(ds.metric, ds.timeframe) for ds in out.data_sources] == [("average_feedback_time", "7d"),
                                                                      ("pending_reviews", "7d")]
    assert (out.alert_thresholds.warning, out.alert_thresholds.critical, out.alert_thresholds.direction) \
        == (8, 24.5, "above")
    assert out.refresh_interval == 30
    d = out.display_options
    assert (d.show_legend, d.annotations, d.animation, d.chart, d.color_scheme, d.theme) \
        == (True, False, False, "bar", "colorblind", "dark")
    back = editor.form_of(out)
    assert {k: back[k] for k in ("title", "sources", "timeframe", "warning", "critical", "direction", "refresh",
                                 "flags", "chart")} == {**{k: form[k] for k in form if k not in ("color_scheme", "theme",
                                                                                                   "title")},
                                                        "title": "Feedback"}
    # no thresholds: none kept; a kept source keeps its transform
    plain = editor.configure(doc, "dev-queue", {"sources": [editor.source_key(ds) for ds in
                                                            validate(doc).widget("dev-queue").data_sources]})
    assert validate(plain).widget("dev-queue").data_sources == validate(doc).widget("dev-queue").data_sources
    assert validate(plain).widget("dev-queue").alert_thresholds is None


def test_ed007_invalid_configuration_is_refused_by_the_schema_naming_the_field() -> None:
    doc = definition()
    bad = editor.configure(doc, "pending_reviews", {"title": "x", "warning": 10, "critical": 5, "direction": "above"})
    with pytest.raises(ValueError) as err:
        validate(bad, "the edited dashboard")
    assert "widget 'pending_reviews': alert_thresholds" in str(err.value)
    assert "critical (5) must be at or above warning (10)" in str(err.value)
    with pytest.raises(ValueError):
        editor.source_of("nonsense")


def test_ed008_compact_moves_widgets_up_like_the_grid() -> None:
    doc = {"widgets": [{"id": "a", "position": {"x": 0, "y": 5, "width": 6, "height": 2}},
                       {"id": "b", "position": {"x": 6, "y": 0, "width": 6, "height": 3}},
                       {"id": "c", "position": {"x": 0, "y": 9, "width": 12, "height": 2}},
                       {"id": "d", "position": {"x": 3, "y": 9, "width": 3, "height": 1}}]}
    got = {w["id"]: tuple(w["position"].values()) for w in editor.compact(doc)["widgets"]}
    assert got == {"a": (0, 0, 6, 2), "b": (6, 0, 6, 3), "c": (0, 3, 12, 2), "d": (3, 5, 3, 1)}
    dev = definition()
    assert editor.compact(dev) == dev                     # the provisioned layout has no gaps


def test_ed009_undo_stack_keeps_the_last_steps_in_order() -> None:
    stack: list[Any] = []
    for n in range(editor.UNDO_LIMIT + 5):
        stack = editor.push(stack, {"n": n})
    assert len(stack) == editor.UNDO_LIMIT >= 20
    assert stack[0] == {"n": 5} and stack[-1] == {"n": editor.UNDO_LIMIT + 4}
    last, rest = editor.pop(stack)
    assert last == {"n": editor.UNDO_LIMIT + 4} and rest[-1] == {"n": editor.UNDO_LIMIT + 3}
    assert editor.pop([]) == (None, [])


def test_ed010_move_applies_dragged_positions_and_knows_when_nothing_moved() -> None:
    doc = definition()
    pos = {"suggested_reviews": Position(x=9, y=2, width=3, height=2)}
    assert not editor.same_positions(doc, pos)
    moved = editor.move(doc, pos)
    assert validate(moved).widget("suggested_reviews").position == Position(x=9, y=2, width=3, height=2)
    assert editor.same_positions(moved, pos)
    assert Widget.model_validate(moved["widgets"][0]) == validate(doc).widgets[0]
