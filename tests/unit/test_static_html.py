"""components/static_html: what becomes HTML, what stays a component, and that everything written
is escaped (the DOM equality with Dash's own drawing is tests/e2e/test_static_html.py)."""
from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
import pytest
from bs4 import BeautifulSoup
from dash import dcc, html

from components import static_html as sh
from tests.samples_static import HOSTILE, samples


def _soup(node: Any) -> BeautifulSoup:
    return BeautifulSoup(sh.to_html(node), "html.parser")


def test_sth101_every_sample_body_becomes_one_component() -> None:
    for name, tree in samples():
        before = sh.count(tree)
        out = sh.staticize(tree)
        assert isinstance(out, sh.StaticHtml) and before >= 5, (name, before)
        assert sh.count(out) == 1


def test_sth102_text_and_attributes_are_escaped() -> None:
    soup = _soup(html.Div([html.Span(HOSTILE, title=HOSTILE, className='x" onclick="y')], **{"data-v": "<a>"}))
    span = soup.find("span")
    assert span.get_text() == HOSTILE and span["title"] == HOSTILE and span["class"] == ['x"', 'onclick="y']
    assert soup.find("script") is None and soup.find("b") is None and not span.has_attr("onclick")
    assert soup.find("div")["data-v"] == "<a>"


@pytest.mark.parametrize("href", ["javascript:alert(1)", " JaVaScRiPt:x", "\x01javascript:x", "vbscript:x",
                                  "data:text/html,<script>1</script>"])
def test_sth103_an_unsafe_url_is_never_written(href: str) -> None:
    with pytest.raises(sh.Unconvertible):
        sh.to_html(html.A("x", href=href))
    tree = html.Div([html.Div([html.A("x", href=href), html.Span("a")]), html.Div([html.Span("b"), html.Span("c")])])
    out = sh.staticize(tree)
    assert not isinstance(out, sh.StaticHtml)                        # the unsafe link's branch stays Dash's
    assert isinstance(out.children[0], html.Div) and isinstance(out.children[1], sh.StaticHtml)
    assert sh.to_html(html.Img(src="data:image/svg+xml;charset=utf-8,%3Csvg%3E", alt="")).startswith("<img")


def test_sth104_unknown_components_stay_and_their_static_siblings_convert() -> None:
    graph = dcc.Graph(figure={"data": []}, id="g")
    tree = html.Div([graph, html.Ul([html.Li("a"), html.Li("b")])], id="outer")
    out = sh.staticize(tree)
    assert out is tree and out.children[0] is graph and isinstance(out.children[1], sh.StaticHtml)
    assert out.children[1].tag == "ul" and out.children[1].html == "<li>a</li><li>b</li>"
    with pytest.raises(sh.Unconvertible):
        sh.to_html(html.Div(style="color: red"))                     # not a dict: not what React takes
    with pytest.raises(sh.Unconvertible):
        sh.to_html(html.Div(hidden=False, contentEditable="true"))   # a prop not in the list


def test_sth105_ids_a_callback_uses_stay_components(app: Any) -> None:
    assert sh.is_bound({"type": "w-body", "w": "x"}) and sh.is_bound("dash-timeframe")
    assert not sh.is_bound({"type": "kpi-value", "kpi": "k", "w": "w"})      # live.js sets its text
    tree = html.Div([html.Div([html.Span("a"), html.Span("b")], id="dash-window"),
                     html.Div([html.Span("c"), html.Span("d")])])
    out = sh.staticize(tree)
    assert isinstance(out.children[0], html.Div) and isinstance(out.children[1], sh.StaticHtml)


def test_sth106_ids_are_written_as_dash_writes_them() -> None:
    cid = {"w": "w1", "type": "kpi-value", "n": 2, "s": 'ä"b', "f": 1.0}
    got = _soup(html.Span("x", id=cid)).find("span")["id"]
    assert got == '{"f":1,"n":2,"s":"ä\\"b","type":"kpi-value","w":"w1"}'
    assert json.loads(got) == {**cid, "f": 1}


@pytest.mark.parametrize("value,text", [(1.0, "1"), (0.1, "0.1"), (-0.0, "0"), (2.5e-3, "0.0025"), (1e21, "1e+21"),
                                        (1.5e-7, "1.5e-7"), (123456789012, "123456789012"), (float("nan"), "NaN"),
                                        (True, ""), (False, ""), (None, "")])
def test_sth107_numbers_read_as_react_writes_them(value: Any, text: str) -> None:
    assert sh.to_html(html.B(value)) == f"<b>{text}</b>"


def test_sth108_styles_as_react_writes_them() -> None:
    style = {"width": 12, "opacity": 0.5, "marginTop": 0, "--x": "1px", "WebkitLineClamp": 2, "flexGrow": 1,
             "backgroundColor": "var(--bs-body-bg)", "height": None}
    assert str(sh.css(style)) == ("width: 12px; opacity: 0.5; margin-top: 0; --x: 1px; -webkit-line-clamp: 2; "
                                  "flex-grow: 1; background-color: var(--bs-body-bg)")
    root = sh.convert(html.Div(html.B("x"), style={"marginTop": 4, "--x": "1px"}, className="c", title="t"))
    assert (root.tag, root.className, root.style, root.attrs) == ("div", "c", {"marginTop": "4px", "--x": "1px"},
                                                                   {"title": "t"})


def test_sth109_bootstrap_components_as_their_markup() -> None:
    badge = _soup(dbc.Badge("3", color="danger", className="me-1")).find("span")
    assert badge["class"] == ["me-1", "badge", "bg-danger"] and badge.get_text() == "3"
    bar = _soup(dbc.Progress(value=42.5, label="43%", color="success", style={"height": "1rem"})).find("div")
    inner = bar.find("div")
    assert bar["class"] == ["progress"] and inner["role"] == "progressbar" and inner["aria-valuenow"] == "42.5"
    assert inner["style"] == "width: 42.5%" and inner.get_text() == "43%"
    with pytest.raises(sh.Unconvertible):
        sh.to_html(dbc.Badge("x", color="#ff0000"))                 # a colour dbc draws as a style
    link = _soup(dcc.Link("go", href="/agents/a?x=1&y=2", className="l")).find("a")
    assert link["href"] == "/agents/a?x=1&y=2" and link.has_attr("data-dash-link")


def test_sth110_a_small_subtree_is_left_as_it_is() -> None:
    tree = html.Div(html.Span("x"))
    assert sh.staticize(tree) is tree                                  # 2 components: nothing to gain


def test_sth120_a_static_part_is_made_without_a_search_for_its_namespace(monkeypatch: Any) -> None:
    """Dash's Component.__init__ imports the component's namespace for every keyword: the
    `qms_static` namespace is known to Python, so making a StaticHtml searches no path (it did
    three failed imports each, ~0.7 ms of a KPI card's draw)."""
    import sys

    from components.static_html import NAMESPACE, StaticHtml
    asked: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> None:
            asked.append(name)
            return None
    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    node = StaticHtml(tag="td", html="<b>x</b>", id="cell", className="c", style={"color": "red"}, attrs={"title": "t"})
    assert asked == [] and node.to_plotly_json()["namespace"] == NAMESPACE
    assert node.to_plotly_json()["props"]["html"] == "<b>x</b>"
