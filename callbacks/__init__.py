"""Dash callbacks, registered per app by `register_callbacks(app)` (never module-global)."""
from __future__ import annotations

from dash import Dash


def register_callbacks(app: Dash) -> None:
    from callbacks import home
    home.register(app)
