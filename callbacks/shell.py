"""Callbacks of the frame (pages/shell.py): the phone navigation's toggler and the
"history still loading" notice."""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State
from flask import current_app

from auth.guard import AUTHENTICATED, secure_callback, secure_clientside
from callbacks.inputs import Count
from data.backfill import Backfill, backfill_status


def notice(found: Backfill | None) -> tuple[str, bool, bool]:
    """(text, hidden, poll disabled): shown while a backfill runs; once none does, hidden and
    the poll stops (a page opened later asks again on its first load)."""
    if found is None:
        return "", True, True
    if found.simulating:
        return f"History still loading · {found.fraction:.0%}", False, False
    share = f" {found.aggregated:.0%}" if found.aggregated is not None else ""
    backlog = f" ({found.backlog:,} events to go)" if found.backlog else ""
    return f"History still loading · aggregating{share}{backlog}", False, False


def register(app: Dash) -> None:
    # Runs in the browser only (a POST of it is refused for everyone, like the theme's).
    secure_clientside(app, lambda body: None,
                      "function(clicks, path, open) {"
                      " var t = window.dash_clientside.callback_context.triggered_id;"
                      " return t === 'nav-toggler' ? !open : false; }",
                      Output("nav-collapse", "is_open"), Input("nav-toggler", "n_clicks"),
                      Input("url", "pathname"), State("nav-collapse", "is_open"),
                      prevent_initial_call=True)          # drawn collapsed

    @secure_callback(app, AUTHENTICATED, Output("backfill-notice", "children"), Output("backfill-notice", "hidden"),
                     Output("backfill-poll", "disabled"), Input("backfill-poll", "n_intervals"),
                     prevent_initial_call=True,          # a page load: the router says it
                     inputs={"backfill-poll.n_intervals": Count})
    def backfill(_n: Any) -> tuple[str, bool, bool]:
        """Every signed-in user sees that older windows are still filling in (no dashboard
        data: only how far the demo's simulated history is)."""
        svc = current_app.extensions["qms"]
        return notice(backfill_status(svc.redis, svc.keys))
