"""Static parts of a widget body sent as HTML: one component where there were dozens.

A dashboard page mounts every Dash component of its widgets' bodies as a React component the
renderer tracks: each has its own store subscriptions, and each one mounting notifies all the
others (bench/pages.py, a CPU profile of the 24-widget page: ~740 components, most of the
renderer's ~300 ms). An agent tile, a table row or a KPI card has no callback and nothing to
type into: `staticize` turns such a subtree into one `StaticHtml` component holding its HTML,
drawn by assets/static_html.js with the subtree's own root element (a `<tr>` stays a `<tr>`).

Only what is known is converted — Dash's html elements, dcc.Link (an `<a data-dash-link>` the
page's script follows without reloading, as dcc.Link does) and the Bootstrap badge and progress
bar; text and attribute values are escaped; a subtree holding anything else (a chart, a grid, a
dropdown, an element a callback reads or writes — `bind(app)` collects their ids) stays as it is,
with its convertible children converted one by one. Every id is written as Dash writes it into
the DOM (a dict id as its sorted JSON), so scripts and browser tests find the same elements.
"""
from __future__ import annotations

import json
import math
import re
import sys
import types
from html import escape
from typing import Any

from dash.development.base_component import Component

NAMESPACE = "qms_static"
# Dash's Component.__init__ imports a component's namespace for every keyword it is given (for
# the version in its error messages): a name no package has was searched for along sys.path
# each time — three failed imports a StaticHtml, ~0.7 ms of every KPI card's draw. The
# namespace is this module's package, found at once.
sys.modules.setdefault(NAMESPACE, types.ModuleType(NAMESPACE, "components.static_html (the browser's window.qms_static)"))
HTML_NS = "dash_html_components"
DCC_NS = "dash_core_components"
DBC_NS = "dash_bootstrap_components"

# Elements with no content: a StaticHtml root needs an inside to set.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Dash html props written as the attribute of the same name (React's camelCase → HTML's).
ATTRS = {"className": "class", "title": "title", "href": "href", "target": "target", "rel": "rel", "src": "src",
         "alt": "alt", "role": "role", "colSpan": "colspan", "rowSpan": "rowspan", "width": "width",
         "height": "height", "tabIndex": "tabindex", "lang": "lang", "dir": "dir", "download": "download",
         "scope": "scope", "headers": "headers", "htmlFor": "for", "hidden": "hidden", "draggable": "draggable"}
# Props that change nothing in the DOM (React keys) or are the click counter a callback would read
# (a bound id keeps its component; an unbound counter is never read).
IGNORED = {"key", "n_clicks", "n_clicks_timestamp", "disable_n_clicks"}
# CSS properties React writes without "px" when given a number (React's isUnitlessNumber, which
# also holds them with the Webkit/ms/Moz/O prefixes).
UNITLESS = {"animationIterationCount", "aspectRatio", "borderImageOutset", "borderImageSlice", "borderImageWidth",
            "boxFlex", "boxFlexGroup", "boxOrdinalGroup", "columnCount", "columns", "flex", "flexGrow",
            "flexPositive", "flexShrink", "flexNegative", "flexOrder", "gridArea", "gridRow", "gridRowEnd",
            "gridRowSpan", "gridRowStart", "gridColumn", "gridColumnEnd", "gridColumnSpan", "gridColumnStart",
            "fontWeight", "lineClamp", "lineHeight", "opacity", "order", "orphans", "scale", "tabSize", "widows",
            "zIndex", "zoom", "fillOpacity", "floodOpacity", "stopOpacity", "strokeDasharray", "strokeDashoffset",
            "strokeMiterlimit", "strokeOpacity", "strokeWidth"}
UNITLESS |= {p + k[0].upper() + k[1:] for p in ("Webkit", "ms", "Moz", "O") for k in list(UNITLESS)}
# React refuses these URLs in href/src (and Dash's html.A with them): never convert one.
UNSAFE_URL = re.compile(r"^[\s\x00-\x1f]*(javascript|vbscript|data):", re.I)
BS_COLOURS = {"primary", "secondary", "success", "danger", "warning", "info", "light", "dark"}
IMAGE_DATA = re.compile(r"^data:image/(svg\+xml|png|gif|jpeg|webp)[;,]", re.I)   # an <img>'s own picture
MIN_SAVED = 3          # convert a subtree only when it replaces at least this many components

# Ids of components some callback reads or writes (str ids, and the "type" of dict ids): these
# stay components. Filled by bind(app) once the callbacks are registered.
_bound_ids: set[str] = set()
_bound_types: set[str] = set()


class Unconvertible(Exception):
    """A node the serializer does not know how to write as HTML exactly."""


class StaticHtml(Component):
    """A subtree as HTML: `tag` with `id`, `className`, `style` and `attrs` (other attributes,
    React names), holding `html` (escaped by `to_html`; never user markup)."""

    _namespace = NAMESPACE
    _type = "StaticHtml"
    _prop_names = ["id", "tag", "html", "className", "style", "attrs"]
    _valid_wildcard_attributes: list[str] = []
    available_properties = _prop_names
    available_wildcard_properties: list[str] = []
    _base_nodes: list[str] = []
    _children_props: list[str] = []

    def __init__(self, tag: str = "div", html: str = "", id: Any = None, className: str | None = None,
                 style: dict[str, Any] | None = None, attrs: dict[str, Any] | None = None) -> None:
        kw = {"tag": tag, "html": html}
        for k, v in (("id", id), ("className", className), ("style", style), ("attrs", attrs)):
            if v is not None:
                kw[k] = v
        super().__init__(**kw)


def bind(app: Any) -> None:
    """Remember the ids the app's callbacks name (Inputs, States, Outputs; dict ids by type)."""
    for key, cb in app.callback_map.items():
        deps = [*cb.get("inputs", []), *cb.get("state", [])]
        outs = [o for part in key.lstrip(".").split("...") for o in [part] if o]
        for d in deps:
            _bind_id(d["id"])
        for o in outs:
            _bind_id(o.rsplit(".", 1)[0])


def _bind_id(raw: str) -> None:
    if raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            _bound_types.add(parsed["type"])
        return
    _bound_ids.add(raw)


def is_bound(cid: Any) -> bool:
    if isinstance(cid, dict):
        return cid.get("type") in _bound_types
    return isinstance(cid, str) and cid in _bound_ids


def dom_id(cid: Any) -> str:
    """The id Dash's renderer writes into the DOM: a dict id as JSON with sorted keys."""
    if not isinstance(cid, dict):
        return str(cid)
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json(cid[k]) for k in sorted(cid)) + "}"


def _json(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and math.isfinite(v):
        return str(int(v))
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def js_text(v: Any) -> str:
    """A number as React writes it (JavaScript's String(n)), anything else as str."""
    if isinstance(v, bool):
        return ""                       # React draws nothing for true/false
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        s = repr(v)
        if "e" in s:
            mant, exp = s.split("e")
            n = int(exp)
            if -7 < n < 21:              # JavaScript writes these out in full
                raise Unconvertible(f"number {v!r}")
            s = f"{mant}e{'+' if n > 0 else '-'}{abs(n)}"
        return s
    return str(v)


def _css_name(k: str) -> str:
    if k.startswith("--"):
        return k
    name = re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), k)
    return "-" + name if name.startswith(("webkit-", "moz-", "ms-")) else name


class Css(list):
    """A style as (CSS name, value) pairs: written as the `style` attribute, or turned back into
    React's style object for a StaticHtml root."""

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self)

    def react(self) -> dict[str, str]:
        return {k if k.startswith("--") else re.sub(r"-([a-z])", lambda m: m.group(1).upper(),
                                                    k[1:] if k.startswith("-ms-") else k): v for k, v in self}


def css(style: dict[str, Any]) -> Css:
    parts = Css()
    for k, v in style.items():
        if v is None or v == "" or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            val = js_text(v) if (k in UNITLESS or v == 0 or k.startswith("--")) else js_text(v) + "px"
        elif isinstance(v, str):
            val = v
        else:
            raise Unconvertible(f"style {k}={v!r}")
        parts.append((_css_name(k), val))
    return parts


def _attr(name: str, value: Any) -> str:
    if value is True:
        return f" {name}"
    text = str(value) if isinstance(value, Css) else js_text(value)
    return f' {name}="{escape(text, quote=True)}"'


def _element(node: Component) -> tuple[str, dict[str, Any], Any]:
    """(tag, HTML attributes, children) of a convertible component, else Unconvertible."""
    props = {k: v for k, v in node.to_plotly_json()["props"].items() if v is not None}
    ns, kind = node._namespace, node._type
    children = props.pop("children", None)
    cid = props.pop("id", None)
    if cid is not None and is_bound(cid):
        raise Unconvertible(f"{kind} {cid!r} is a callback's")
    attrs: dict[str, Any] = {}
    if cid is not None:
        attrs["id"] = dom_id(cid)
    for k in IGNORED:
        props.pop(k, None)
    if ns == HTML_NS:
        tag = kind.lower()
    elif ns == DCC_NS and kind == "Link":
        tag, refresh = "a", props.pop("refresh", False)
        attrs["data-dash-link"] = "reload" if refresh else True
    elif ns == DBC_NS and kind == "Badge":
        tag = "span"
        color, text_color, pill = props.pop("color", "secondary"), props.pop("text_color", None), props.pop("pill", False)
        if color not in BS_COLOURS or (text_color and text_color not in BS_COLOURS) or "href" in props:
            raise Unconvertible(f"badge {color!r} {text_color!r}")
        cls = ["badge"] + (["rounded-pill"] if pill else []) + ([f"text-{text_color}"] if text_color else []) + [f"bg-{color}"]
        props["className"] = _classes(props.get("className"), *cls)
    elif ns == DBC_NS and kind == "Progress":
        return _progress(props, attrs, children)
    elif ns == DBC_NS and kind in DBC_DIVS:
        tag = "div"
        props["className"] = _classes(props.get("className"), DBC_DIVS[kind], *_col_classes(kind, props))
    elif ns == DBC_NS and kind == "Table":
        return _table(props, attrs, children)
    else:
        raise Unconvertible(f"{ns}.{kind}")
    for k, v in props.items():
        if k == "style":
            if not isinstance(v, dict):
                raise Unconvertible("style")
            if v:
                attrs["style"] = css(v)
        elif k.startswith(("data-", "aria-")):
            attrs[k] = v
        elif k in ATTRS:
            if k in ("href", "src") and UNSAFE_URL.match(str(v)) and not (k == "src" and IMAGE_DATA.match(str(v))):
                raise Unconvertible(f"{k} {v!r}")
            if v is False:
                continue
            attrs[ATTRS[k]] = v
        else:
            raise Unconvertible(f"{kind}.{k}")
    return tag, attrs, children


DBC_DIVS = {"Card": "card", "CardBody": "card-body", "CardHeader": "card-header", "CardFooter": "card-footer",
            "Row": "row", "Col": ""}
COL_SIZES = ("xs", "sm", "md", "lg", "xl", "xxl")


def _classes(*names: Any) -> str:
    return " ".join(n for n in names if n)


def _col_classes(kind: str, props: dict[str, Any]) -> list[str]:
    """dbc.Col's width props as Bootstrap's classes (`xs=6, md=True` → `col-6 col-md`)."""
    if kind != "Col":
        return []
    out = []
    width = props.pop("width", None)
    spans = {k: props.pop(k, None) for k in COL_SIZES}
    if spans["xs"] is None:
        spans["xs"] = width                    # dbc: `width` is the smallest breakpoint's span
    elif width is not None:
        raise Unconvertible("Col with width and xs")
    # react-bootstrap writes the breakpoints from the largest down.
    for bp, v in (("" if k == "xs" else k, spans[k]) for k in reversed(COL_SIZES)):
        if v is None or v is False:
            continue
        infix = f"-{bp}" if bp else ""
        if v is True:
            out.append(f"col{infix}")
        elif v == "auto" or (isinstance(v, int) and 1 <= v <= 12):
            out.append(f"col{infix}-{v}")
        else:
            raise Unconvertible(f"Col {bp or 'width'}={v!r}")
    return out or ["col"]


def _table(props: dict[str, Any], attrs: dict[str, Any], children: Any) -> tuple[str, dict[str, Any], Any]:
    """dbc.Table as Bootstrap's table (in a `table-responsive` box when responsive)."""
    # react-bootstrap's order: the component's classes, then table, variant, size, the flags.
    cls = [props.pop("className", None), "table"]
    color = props.pop("color", None) or ("dark" if props.pop("dark", False) else None)
    if color:
        if color not in BS_COLOURS:
            raise Unconvertible(f"table colour {color!r}")
        cls.append(f"table-{color}")
    size = props.pop("size", None)
    if size:
        if size not in ("sm", "md", "lg"):
            raise Unconvertible(f"table size {size!r}")
        cls.append(f"table-{size}")
    for k in ("striped", "bordered", "borderless", "hover"):
        if props.pop(k, False):
            cls.append(f"table-{k}")
    responsive = props.pop("responsive", False)
    style = props.pop("style", None)
    if props or responsive not in (True, False):
        raise Unconvertible(f"table {sorted(props)} responsive={responsive!r}")
    table = {**attrs, "class": _classes(*cls)}
    if style:
        table["style"] = css(style)
    if responsive:
        return "div", {"class": "table-responsive"}, _Raw(
            "<table" + "".join(_attr(k, v) for k, v in table.items()) + ">" + to_html(children) + "</table>")
    return "table", table, children


def _progress(props: dict[str, Any], attrs: dict[str, Any], children: Any) -> tuple[str, dict[str, Any], Any]:
    """dbc.Progress as Bootstrap's markup (react-bootstrap's ProgressBar, as dbc draws it)."""
    value = props.pop("value", 0) or 0
    label = props.pop("label", None)
    color = props.pop("color", None)
    striped, animated = props.pop("striped", False), props.pop("animated", False)
    lo, hi = props.pop("min", 0), props.pop("max", 100)
    style = props.pop("style", None)
    cls = props.pop("className", None)
    bar_style = props.pop("bar_style", None)
    bar_cls = props.pop("bar_class_name", None) or props.pop("barClassName", None)
    if props or children is not None or not isinstance(value, (int, float)) or (color and color not in BS_COLOURS):
        raise Unconvertible(f"progress {sorted(props)}")
    pct = (value - lo) / (hi - lo) * 100 if hi != lo else 0
    outer = {**attrs, "class": _classes(cls, "progress")}
    if style:
        outer["style"] = css(style)
    bar_cls_all = ["progress-bar"] + ([f"bg-{color}"] if color else []) + (["progress-bar-animated"] if animated else []) \
        + (["progress-bar-striped"] if striped or animated else []) + ([bar_cls] if bar_cls else [])
    bar_attrs = {"role": "progressbar", "class": " ".join(bar_cls_all),
                 "style": css({"width": f"{round(pct * 1e13) / 1e13}%", **(bar_style or {})}),
                 "aria-valuenow": value, "aria-valuemin": lo, "aria-valuemax": hi}
    inner = "<div" + "".join(_attr(k, v) for k, v in bar_attrs.items()) + ">" + \
        (escape(js_text(label), quote=False) if label is not None else "") + "</div>"
    return "div", outer, _Raw(inner)


class _Raw(str):
    """HTML already written (escaped) by this module."""


def to_html(node: Any) -> str:
    """`node` (a component, text, a number, a list of them) as HTML, or Unconvertible."""
    if node is None or isinstance(node, bool):
        return ""
    if isinstance(node, _Raw):
        return str(node)
    if isinstance(node, (str, int, float)):
        return escape(js_text(node), quote=False)
    if isinstance(node, (list, tuple)):
        return "".join(to_html(n) for n in node)
    if isinstance(node, StaticHtml):
        p = node.to_plotly_json()["props"]
        attrs = _static_root_attrs(p)
        return f"<{p['tag']}{''.join(_attr(k, v) for k, v in attrs.items())}>{p['html']}</{p['tag']}>"
    if not isinstance(node, Component):
        raise Unconvertible(type(node).__name__)
    tag, attrs, children = _element(node)
    open_tag = f"<{tag}{''.join(_attr(k, v) for k, v in attrs.items())}>"
    if tag in VOID:
        if children not in (None, [], ""):
            raise Unconvertible(f"{tag} with children")
        return open_tag
    return f"{open_tag}{to_html(children)}</{tag}>"


def _static_root_attrs(p: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if p.get("id") is not None:
        attrs["id"] = dom_id(p["id"])
    if p.get("className"):
        attrs["class"] = p["className"]
    if p.get("style"):
        attrs["style"] = css(p["style"])          # React names, as a component's
    for k, v in (p.get("attrs") or {}).items():
        attrs[ATTRS.get(k, k)] = v
    return attrs


def count(node: Any) -> int:
    """Components in a tree (what the page would mount)."""
    if isinstance(node, (list, tuple)):
        return sum(count(n) for n in node)
    if isinstance(node, Component):
        return 1 + count(getattr(node, "children", None))
    return 0


def convert(node: Component) -> StaticHtml:
    """One convertible component as a StaticHtml of the same root element (Unconvertible if not)."""
    tag, attrs, children = _element(node)
    if tag in VOID:
        raise Unconvertible(f"{tag} as a root")
    inner = to_html(children)
    cls = attrs.pop("class", None)
    style = attrs.pop("style", None)
    # The component's own id, if its root element carries it (a responsive table's is inside).
    cid = node.id if attrs.pop("id", None) is not None else None
    root = {REACT_NAMES.get(k, k): v for k, v in attrs.items()}
    return StaticHtml(tag=tag, html=inner, id=cid, className=cls,
                      style=style.react() if style else None, attrs=root or None)


REACT_NAMES = {v: k for k, v in ATTRS.items() if k != "className"}


def staticize(node: Any) -> Any:
    """`node` with every convertible subtree of MIN_SAVED or more components as one StaticHtml."""
    if isinstance(node, (list, tuple)):
        return [staticize(n) for n in node]
    if not isinstance(node, Component) or isinstance(node, StaticHtml):
        return node
    n = count(node)
    if n >= MIN_SAVED:
        try:
            return convert(node)
        except Unconvertible:
            pass
    children = getattr(node, "children", None)
    if isinstance(children, (list, tuple, Component)):
        node.children = staticize(children)
    return node

