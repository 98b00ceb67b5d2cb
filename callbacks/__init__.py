"""Dash callbacks, registered per app by `register_callbacks(app)` (never module-global).
Each declares its permission through `auth.guard.secure_callback`."""
from __future__ import annotations

from dash import Dash


def register_callbacks(app: Dash) -> None:
    from callbacks import alerts, dashboard, dashboards_list, drilldown, edit, entity, integrations, pages, share, shell
    from callbacks import reviewers
    pages.register(app)
    dashboard.register(app)
    shell.register(app)
    drilldown.register(app)
    alerts.register(app)
    entity.register(app)
    dashboards_list.register(app)
    edit.register(app)
    share.register(app)
    integrations.register(app)
    reviewers.register(app)
