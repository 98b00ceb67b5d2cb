"""The dashboard grid: each widget's shell placed on the 12-column grid of its definition
(`position` x, y, width, height; a row is ROW_HEIGHT px), one column on phones, dragged
and resized only in edit mode (dash-snap-grid: react-grid-layout for Dash 3/4; why this
one: docs/INTERNALS.md, "Grid layout library").

The library needs a string id on each child, the key of its layout item: each shell sits in
a cell `wc-<widget id>` (widget ids are slugs, so the prefix keeps them apart from the
page's own ids). In the edit mode the cell carries the edit strip — the drag handle and the configure,
duplicate and remove buttons (CSS shows it only on a draggable item).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from dash import html
from dash_snap_grid import ResponsiveGrid

from dashboards.schema import GRID_COLUMNS, Position, Widget

ROW_HEIGHT = 60                        # px per grid row (schema.Position: "about 60 px")
MARGIN = [12, 12]                      # px between cells, [x, y]
BREAKPOINTS = {"lg": 768, "xs": 0}     # grid width (px) from which each layout applies
COLS = {"lg": GRID_COLUMNS, "xs": 1}   # phones: one column, widgets in reading order
CELL_PREFIX = "wc-"
DRAG_HANDLE = "w-drag"                 # the class of the drag handle (the grid's draggableHandle)
EDIT_OPS = (("configure", "⚙", "Configure"), ("duplicate", "⧉", "Duplicate"), ("remove", "✕", "Remove"))


def cell_id(widget_id: str) -> str:
    return CELL_PREFIX + widget_id


def layout_item(widget: Widget) -> dict[str, Any]:
    p = widget.position
    return {"i": cell_id(widget.id), "x": p.x, "y": p.y, "w": p.width, "h": p.height, "minW": 1, "minH": 1}


def phone_layout(widgets: Sequence[Widget]) -> list[dict[str, Any]]:
    """One column: the widgets in reading order (top to bottom, then left to right), each
    as tall as on the desktop grid."""
    y = 0
    items = []
    for w in sorted(widgets, key=lambda w: (w.position.y, w.position.x)):
        items.append({"i": cell_id(w.id), "x": 0, "y": y, "w": 1, "h": w.position.height, "minW": 1, "minH": 1})
        y += w.position.height
    return items


def edit_strip(widget_id: str, title: str = "") -> html.Div:
    """The drag handle and the per-widget edit buttons (a cell has them in the edit mode only)."""
    return html.Div([
        html.Span("⠿", className=DRAG_HANDLE, title=f"Drag {title}".strip(), role="button",
                  **{"aria-label": f"Drag {title}".strip(), "data-w": widget_id}),
        *[html.Button(icon, id={"type": "w-edit", "w": widget_id, "op": op}, title=f"{label} {title}".strip(),
                      className=f"btn btn-sm btn-light w-edit-{op}", n_clicks=0, **{"aria-label": f"{label} {title}".strip()})
          for op, icon, label in EDIT_OPS],
    ], className="w-edit-strip")


def grid(widgets_shells: Iterable[tuple[Widget, Any]], editable: bool, id: str = "dash-grid") -> ResponsiveGrid:
    """The grid of `widgets_shells` [(widget, its shell component)], draggable and resizable
    only when `editable`."""
    pairs = list(widgets_shells)
    widgets = [w for w, _ in pairs]
    # The strips only in the edit mode: in view mode they would be ~five components per widget
    # that the page mounts and never shows.
    cells = [html.Div([edit_strip(w.id, w.title), shell] if editable else [shell], id=cell_id(w.id),
                      className="grid-cell", **{"data-w": w.id}) for w, shell in pairs]
    return ResponsiveGrid(
        id=id, children=cells,
        layouts={"lg": [layout_item(w) for w in widgets], "xs": phone_layout(widgets)},
        breakpoints=BREAKPOINTS, cols=COLS, rowHeight=ROW_HEIGHT, margin=MARGIN, containerPadding=[0, 0],
        compactType="vertical", draggableHandle="." + DRAG_HANDLE,
        draggableCancel=".w-edit-strip button", resizeHandles=["se"],
        isDraggable=bool(editable), isResizable=bool(editable),
    )


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return max(low, min(high, int(round(value))))


def layout_to_positions(layout: Iterable[Mapping[str, Any]] | None) -> dict[str, Position]:
    """{widget id: Position} from the grid's layout items (the desktop layout: `layouts["lg"]`);
    items that are not widget cells or carry no numbers are left out, values are clamped
    to the grid (a width of at most 12, x + width within it)."""
    out: dict[str, Position] = {}
    for item in layout or ():
        if not isinstance(item, Mapping):
            continue
        key = item.get("i")
        if not isinstance(key, str) or not key.startswith(CELL_PREFIX) or len(key) == len(CELL_PREFIX):
            continue
        w = _int(item.get("w"), 1, GRID_COLUMNS)
        h = _int(item.get("h"), 1, 40)
        x = _int(item.get("x"), 0, GRID_COLUMNS - 1)
        y = _int(item.get("y"), 0, 10_000)
        if None in (w, h, x, y):
            continue
        assert w is not None and x is not None
        out[key[len(CELL_PREFIX):]] = Position(x=min(x, GRID_COLUMNS - w), y=y, width=w, height=h)
    return out
