"""Dash callbacks, registered per app by `register_callbacks(app)` (never module-global).
Each declares its permission through `auth.guard.secure_callback`."""
from __future__ import annotations

from dash import Dash


def register_callbacks(app: Dash) -> None:
    from callbacks import alerts, dashboards_list, drilldown, entity, pages
    pages.register(app)
    drilldown.register(app)
    alerts.register(app)
    entity.register(app)
    dashboards_list.register(app)
