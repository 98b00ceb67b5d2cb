"""components.charts.fit_margins: margins from the labels the axes will show (no automargin,
which draws a chart twice), phone-safe: turned labels and legend rows have their room."""
from __future__ import annotations

import plotly.graph_objects as go

from components import charts
from components.charts import LABEL_CHARS


# Both work on a figure's JSON (as components.common.graph holds it), read back here as a figure.
def fit_margins(fig: go.Figure) -> go.Figure:
    return go.Figure(charts.fit_margins(fig.to_plotly_json()))


def phone_friendly(fig: go.Figure) -> go.Figure:
    return go.Figure(charts.phone_friendly(fig.to_plotly_json()))


def test_fit001_no_automargin_and_a_numeric_y_axis_gets_room_for_its_widest_tick() -> None:
    small = fit_margins(go.Figure(go.Scatter(x=["2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z"], y=[0.5, 0.9])))
    big = fit_margins(go.Figure(go.Scatter(x=["2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z"], y=[5, 95_000])))
    assert small.layout.xaxis.automargin is False and small.layout.yaxis.automargin is False
    assert big.layout.margin.l > small.layout.margin.l >= 30
    assert small.layout.margin.b >= 40              # a time axis: hours, and the date on a second line


def test_fit002_long_categories_are_cut_in_their_ticks_and_the_margin_fits_the_cut() -> None:
    name = "a team whose name goes on far longer than any tick should"
    fig = fit_margins(go.Figure(go.Bar(y=[name, "core"], x=[3, 4], orientation="h")))
    assert fig.layout.yaxis.ticktext[0].endswith("…") and len(fig.layout.yaxis.ticktext[0]) == LABEL_CHARS
    assert list(fig.layout.yaxis.tickvals) == [name, "core"]
    assert 12 + LABEL_CHARS * 6 < fig.layout.margin.l < 12 + LABEL_CHARS * 8


def test_fit003_crowded_categories_keep_room_to_turn_on_a_phone_and_legends_their_rows() -> None:
    few = fit_margins(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])))
    many = fit_margins(go.Figure(go.Bar(x=[f"repository-{i}" for i in range(6)], y=list(range(6)))))
    assert many.layout.margin.b > few.layout.margin.b and list(many.layout.xaxis.autotickangles) == [0, 30]
    one = phone_friendly(go.Figure([go.Scatter(x=[1, 2], y=[1, 2], name="only")]))
    two = phone_friendly(go.Figure([go.Scatter(x=[1, 2], y=[1, 2], name=f"series number {i}") for i in range(4)]))
    assert two.layout.margin.b >= one.layout.margin.b + 2 * 18      # a two-row legend under the ticks


def test_fit004_charts_without_axes_are_left_alone() -> None:
    fig = go.Figure(go.Indicator(mode="gauge+number", value=5))
    fig.update_layout(margin={"l": 24})
    assert fit_margins(fig).layout.margin.l == 24
