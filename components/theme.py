"""The seed's light and dark themes (§5.1) as data, and what figures and grids need from them.

`PALETTES` holds the seed's eight colours per mode plus the few a chart needs that the seed
leaves open (gridlines, muted text, extra series colours). `plotly_template(mode)` turns a
palette into a Plotly template; `apply(figure, mode)` gives a figure's JSON that template.
`STATUS_COLORS` says which colour each status, severity and outcome gets in each mode, so
an overloaded agent is the same amber in the agent grid, the heatmap and an alert.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import plotly.graph_objects as go

Mode = Literal["light", "dark"]
MODES: tuple[Mode, ...] = ("light", "dark")

PALETTES: dict[str, dict[str, str]] = {
    "light": {
        # seed §5.1
        "primary": "#2563eb", "secondary": "#64748b", "success": "#10b981", "warning": "#f59e0b",
        "danger": "#ef4444", "background": "#ffffff", "surface": "#f8fafc", "text": "#1e293b",
        # not in the seed: the same slate/Tailwind family, one step towards the background
        "grid": "#e2e8f0", "muted": "#64748b", "info": "#0ea5e9", "purple": "#8b5cf6", "pink": "#ec4899",
    },
    "dark": {
        "primary": "#3b82f6", "secondary": "#94a3b8", "success": "#34d399", "warning": "#fbbf24",
        "danger": "#f87171", "background": "#0f172a", "surface": "#1e293b", "text": "#f1f5f9",
        "grid": "#334155", "muted": "#94a3b8", "info": "#38bdf8", "purple": "#a78bfa", "pink": "#f472b6",
    },
}

# Series colours in order; the seed's semantic colours first so a two-series chart reads
# primary/success, then the extras (a chart with many series should not reuse red for data).
COLORWAY_KEYS = ("primary", "success", "warning", "purple", "info", "pink", "secondary", "danger")

# Status → palette role. Bootstrap's contextual names are the same words, so the html
# widgets (badges, progress bars) and the figures agree.
STATUS_ROLES: dict[str, str] = {
    # agents (EVENTS.md system.agent_status_changed)
    "active": "success", "idle": "secondary", "overloaded": "warning", "down": "danger", "training": "primary",
    # defect severities
    "critical": "danger", "major": "warning", "minor": "primary",
    # error severities and alert severities
    "warning": "warning", "info": "info",
    # outcomes
    "pass": "success", "passed": "success", "fail": "danger", "failed": "danger",
    # health checks (/health)
    "healthy": "success", "degraded": "warning", "unhealthy": "danger",
    # alert states (ALERTS.md)
    "inactive": "secondary", "pending": "warning", "firing": "danger", "resolved": "success",
    "acknowledged": "primary", "no_data": "secondary",
    # audit outcomes
    "ok": "success", "denied": "danger", "error": "danger",
}
# dbc components take Bootstrap's names; "info" and "secondary" exist there too.
BOOTSTRAP: dict[str, str] = {"primary": "primary", "secondary": "secondary", "success": "success",
                             "warning": "warning", "danger": "danger", "info": "info"}

STATUS_COLORS: dict[str, dict[str, str]] = {
    mode: {status: PALETTES[mode][role] for status, role in STATUS_ROLES.items()} for mode in MODES
}


def palette(mode: str = "light") -> dict[str, str]:
    """The palette for `mode`; anything but "dark" is light (a bad cookie must not break a page)."""
    return PALETTES["dark" if mode == "dark" else "light"]


def status_color(status: str | None, mode: str = "light") -> str:
    """The colour of a status/severity/outcome; unknown or missing ones are neutral grey."""
    return STATUS_COLORS["dark" if mode == "dark" else "light"].get(str(status).lower(), palette(mode)["secondary"])


def status_bs(status: str | None) -> str:
    """The Bootstrap contextual name for a status (for dbc.Badge/Progress `color`)."""
    return BOOTSTRAP[STATUS_ROLES.get(str(status).lower(), "secondary")]


def colorway(mode: str = "light") -> list[str]:
    p = palette(mode)
    return [p[k] for k in COLORWAY_KEYS]


@lru_cache(maxsize=2)
def _template(mode: Mode) -> go.layout.Template:
    p = palette(mode)
    axis = {"gridcolor": p["grid"], "linecolor": p["grid"], "zerolinecolor": p["grid"],
            "tickcolor": p["grid"], "title": {"font": {"color": p["muted"]}}, "automargin": True}
    return go.layout.Template(layout={
        "paper_bgcolor": p["background"], "plot_bgcolor": p["background"],
        "font": {"color": p["text"], "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                 "size": 12},
        "colorway": colorway(mode),
        "xaxis": axis, "yaxis": axis,
        "polar": {"bgcolor": p["background"], "angularaxis": {"gridcolor": p["grid"], "linecolor": p["grid"]},
                  "radialaxis": {"gridcolor": p["grid"], "linecolor": p["grid"]}},
        "legend": {"bgcolor": "rgba(0,0,0,0)", "font": {"color": p["text"]}},
        "hoverlabel": {"bgcolor": p["surface"], "bordercolor": p["grid"], "font": {"color": p["text"]}},
        "colorscale": {"sequential": [[0, p["success"]], [0.5, p["warning"]], [1, p["danger"]]]},
        "margin": {"l": 40, "r": 16, "t": 36, "b": 36},
        "title": {"font": {"size": 14, "color": p["text"]}, "x": 0, "xanchor": "left"},
    })


def plotly_template(mode: Mode | str = "light") -> go.layout.Template:
    """A fresh copy of the template for `mode` (callers may change it freely)."""
    return go.layout.Template(_template("dark" if mode == "dark" else "light"))


def template_json(mode: Mode | str = "light") -> dict[str, Any]:
    """The template for `mode` as JSON, made once and shared: read it, never change it."""
    return _template_json("dark" if mode == "dark" else "light")


@lru_cache(maxsize=2)
def _template_json(mode: Mode) -> dict[str, Any]:
    return _template(mode).to_plotly_json()


def apply(figure: dict[str, Any], mode: Mode | str = "light") -> dict[str, Any]:
    """Give a figure's JSON the theme's template (in place; `template_json`, shared) and
    return it."""
    figure.setdefault("layout", {})["template"] = template_json(mode)
    return figure


def grid_theme(mode: Mode | str = "light") -> dict[str, str]:
    """dash-ag-grid's `dashGridOptions["theme"]` for `mode`: Quartz with the palette's colours."""
    p = palette(mode)
    return {"function": (f"themeQuartz.withParams({{backgroundColor: '{p['background']}', "
                         f"foregroundColor: '{p['text']}', accentColor: '{p['primary']}', "
                         f"borderColor: '{p['grid']}', headerBackgroundColor: '{p['surface']}'}})")}
