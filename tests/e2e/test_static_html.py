"""StaticHtml in a real browser: widget bodies drawn by the real components, once as Dash
components and once as `staticize` writes them, must give the same DOM — every element, attribute,
computed style text and text node — and a link in static HTML must navigate inside the app as
dcc.Link does; text that looks like markup stays text."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dash import Dash, Input, Output, dcc, html

from components import static_html
from tests.samples_static import HOSTILE, samples

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

# The DOM as data: [tag, sorted attributes, style as the browser reads it, children] with adjacent
# text nodes merged (React writes "1", " ", "0.1" as three). StaticHtml's own marker attributes
# are left out: data-qms-static on its root, data-dash-link on the links it wrote.
CANON_JS = r"""
function canon(el) {
  if (el.nodeType === 3) { return el.data; }
  if (el.nodeType !== 1) { return null; }
  const attrs = Array.from(el.attributes)
    .filter((a) => !["style", "data-qms-static", "data-dash-link"].includes(a.name))
    .map((a) => [a.name, a.value]).sort();
  const kids = [];
  el.childNodes.forEach((c) => {
    const x = canon(c);
    if (x === null || x === "") { return; }
    if (typeof x === "string" && typeof kids[kids.length - 1] === "string") { kids[kids.length - 1] += x; }
    else { kids.push(x); }
  });
  return [el.tagName.toLowerCase(), attrs, el.style ? el.style.cssText : "", kids];
}
return Array.from(document.querySelectorAll("[id^='sample-']")).map((el) => [el.id, canon(el)]);
"""

MODE = {"static": False}


def _app() -> Dash:
    app = Dash(__name__, assets_folder=str(ROOT / "assets"), assets_ignore=r"^(?!static_html\.js$).*")

    def layout() -> Any:
        items = samples()
        return html.Div([html.Div(static_html.staticize(t) if MODE["static"] else t, id=f"sample-{name}")
                         for name, t in items] + [dcc.Location(id="loc"), html.Div(id="where")])

    app.layout = layout

    @app.callback(Output("where", "children"), Input("loc", "pathname"))
    def where(path: str | None) -> str:
        return f"at {path}"
    return app


def _page(dash_duo: Any, static: bool) -> list[Any]:
    MODE["static"] = static
    dash_duo.driver.get(dash_duo.server_url)
    dash_duo.wait_for_text_to_equal("#where", "at /", timeout=10)
    return dash_duo.driver.execute_script(CANON_JS)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two canonical DOMs first differ, and how (for a readable failure)."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == 4 and len(b) == 4 and isinstance(a[0], str) \
            and isinstance(b[0], str) and a[0] == b[0] and a[1:3] == b[1:3]:
        for i, (x, y) in enumerate(zip(a[3], b[3])):
            if x != y:
                return _first_difference(x, y, f"{path}/{a[0]}[{i}]")
        return f"{path}/{a[0]}: children {len(a[3])} (Dash) vs {len(b[3])} (static)"
    short = (lambda n: n if isinstance(n, str) else n[:3])
    return f"{path}: Dash {short(a)!r} vs static {short(b)!r}"


def test_sth001_static_bodies_give_the_dom_dash_gives(dash_duo: Any) -> None:
    dash_duo.start_server(_app())
    components = _page(dash_duo, static=False)
    static = _page(dash_duo, static=True)
    assert [k for k, _ in static] == [k for k, _ in components] and len(static) == len(samples())
    n_static = dash_duo.driver.execute_script("return document.querySelectorAll('[data-qms-static]').length")
    assert n_static == len(samples()), "every sample is one StaticHtml"
    for (name, want), (_, got) in zip(components, static):
        assert got == want, f"{name}: {_first_difference(want, got)}"
    assert dash_duo.get_logs() == []


def test_sth002_markup_in_data_stays_text_and_a_static_link_navigates_in_the_app(dash_duo: Any) -> None:
    dash_duo.start_server(_app())
    _page(dash_duo, static=True)
    d = dash_duo.driver
    assert d.execute_script("return window.__pwned === undefined && document.querySelectorAll("
                            "'[data-qms-static] script').length === 0")
    h6 = dash_duo.find_element("#sample-hostile h6")
    assert h6.text == HOSTILE.replace("  ", " ") and h6.get_attribute("title") == HOSTILE
    d.execute_script("window.__samePage = 42")
    link = dash_duo.find_element("#sample-agents a[data-dash-link]")
    href = link.get_attribute("href")
    link.click()
    dash_duo.wait_for_text_to_equal("#where", f"at {urlsplit(href).path}", timeout=10)
    assert d.execute_script("return window.__samePage") == 42, "no page reload"
    assert dash_duo.get_logs() == []
