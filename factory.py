"""The app factory: `create_app(settings)` builds an isolated Flask + Dash app.

Everything per-app (Redis client, engine, users, callbacks and their permissions) hangs
off the app it belongs to, so tests can build as many apps in one process as they like.
"""
from __future__ import annotations

import gc
import json
import logging
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

import dash
import flask_bootstrap
import orjson
import redis
from flask import Flask, Response, abort, g, has_request_context, request, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError

from api.dashboards import bp as dashboards_bp
from api.drilldown import bp as drilldown_bp
from api.entities import bp as entities_bp
from api.reviewers import bp as reviewers_bp
from api.routes import bp as api_bp
from api.webhooks import init_webhooks
from api.widgets import bp as widgets_bp
from auth.guard import check_callback_permissions, content_security_policy, init_guard
from auth.security import init_security
from auth.views import bp as auth_bp
from callbacks import register_callbacks
from callbacks.pages import THEME_COOKIE, first_page
from data.redis_conn import RETRY_AFTER_S
from data.services import Services
from live.routes import init_live
from dash import dcc, html

from components import static_html
from components.json_out import to_json
from pages import alerts, audit, dashboard, dashboards_list, entity, integrations, reviewers, shell
from settings import Settings

ROOT = Path(__file__).resolve().parent
BOOTSTRAP_DIR = Path(flask_bootstrap.__file__).parent / "static" / "bootstrap5"
VENDOR_URL = "/vendor/bootstrap/"

# Code split out of the component libraries that no page draws when it opens (MathJax,
# Markdown, date pickers, sliders, uploads, AG Grid's enterprise modules, DataTable): with
# eager loading every chunk is a script of the page (~7 MB parsed on each load); these stay
# lazy — webpack fetches one the first time a component needs it (the dashboard list's upload).
LAZY_CHUNKS = re.compile(r'<script src="[^"]*/(async-(mathjax|markdown|highlight|datepicker|slider|upload|'
                         r'enterprise|table|export))\.[^"]*"></script>\s*')
# The full plotly.js (4.8 MB, every trace type) that Dash adds for dcc.Graph: the pages load
# assets/plotly-qms.min.js instead (scripts/build-plotly.sh: the trace types our figures use,
# 1.6 MB), which defines window.Plotly before dcc's scripts run — dcc.Graph then takes it.
FULL_PLOTLY = re.compile(r'<script src="[^"]*/plotly/package_data/plotly\.[^"]*"></script>\s*')
# AG Grid (dash_ag_grid.min.js and its community chunk, 2.2 MB) is drawn by the alerts, audit,
# integrations, events and entity pages, not by a dashboard: the page names the two scripts in
# a <meta> and assets/lazy_grid.js loads them the first time a grid is drawn.
AG_GRID = re.compile(r'<script src="([^"]*/dash_ag_grid/(?:dash_ag_grid|async-community)\.[^"]*)"></script>\s*')
LAZY_GRID_META = "qms-lazy-grid"


class QmsDash(dash.Dash):
    """The app: Dash's page with the chunks of LAZY_CHUNKS left to load on demand."""

    def interpolate_index(self, **kwargs: Any) -> str:
        scripts = FULL_PLOTLY.sub("", LAZY_CHUNKS.sub("", kwargs.get("scripts", "")))
        grid = AG_GRID.findall(scripts)
        kwargs["scripts"] = AG_GRID.sub("", scripts)
        html_page = super().interpolate_index(**kwargs)
        # The theme this browser last showed (callbacks/pages.py THEME_JS keeps the cookie): the
        # page is drawn in it from the start, with no flash and no re-theming of its charts.
        theme = request.cookies.get(THEME_COOKIE) if has_request_context() else None
        if theme in ("light", "dark"):
            html_page = html_page.replace("<html>", f'<html data-bs-theme="{theme}">', 1)
        # The renderer asks for the layout (the page, drawn: serve_layout) and the callback graph
        # only once its ~10 scripts have run, ~0.2 s after the HTML; preloaded, both requests
        # run while the scripts load and the renderer's own fetches take their answers.
        prefix = self.config.requests_pathname_prefix
        preload = "".join(f'<link rel="preload" href="{prefix}{name}" as="fetch" crossorigin="anonymous">'
                          for name in ("_dash-layout", "_dash-dependencies"))
        if grid:
            preload += f'<meta name="{LAZY_GRID_META}" content="{html_escape(json.dumps(grid))}">'
        return html_page.replace("<head>", "<head>" + preload, 1)

    _validation_json: tuple[Any, Any] | None = None

    def _generate_config_html(self) -> str:
        """Dash's config script, written by components.json_out, with the validation layout
        (~46 KB of every page's components, the same for every page) serialised once."""
        cfg = self._config()
        layout = cfg.get("validation_layout")
        if layout is not None:
            kept = self._validation_json
            if kept is None or kept[0] is not layout:
                kept = self._validation_json = (layout, orjson.Fragment(to_json(layout)))
            cfg["validation_layout"] = kept[1]
        return f'<script id="_dash-config" type="application/json">{to_json(cfg)}</script>'

    def serve_layout(self) -> Any:
        """The frame, and — when a page of this site asks (its Referer) — that page drawn in it
        (callbacks/pages.py first_page): the browser renders the page from its first answer."""
        try:
            first = first_page()
        except (redis.RedisError, HTTPException):
            raise                                           # a JSON 503 (init_unavailable); a 499 (its client left)
        except Exception:                                   # noqa: BLE001 - the frame still loads; the router draws
            logging.getLogger("qms.pages").exception("drawing the first page failed")
            first = None
        resp = self.backend.make_response(to_json(shell.layout(first)), mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store"          # the signed-in user's own page
        return resp


# The web process's collector thresholds (create_app), against Python's (700, 10, 10).
GC_THRESHOLD = (50_000, 20, 20)


def create_app(settings: Settings | None = None, redis_client: redis.Redis | None = None) -> dash.Dash:
    settings = settings or Settings.from_env()
    server = Flask(__name__)
    server.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes * 2  # the ingest route answers 413 itself
    # Static files (Dash's /assets) are asked for with their modification time (?m=…): a
    # changed file has a new URL, so browsers may keep them without asking again on each page
    # (Flask's default made every page load revalidate eight assets before it could draw).
    server.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 24 * 3600
    services = Services.build(settings, redis_client)
    server.extensions["qms"] = services
    init_security(server, settings, services.secret_key)
    init_unavailable(server)
    server.register_blueprint(auth_bp)
    server.register_blueprint(api_bp)
    server.register_blueprint(drilldown_bp)
    server.register_blueprint(widgets_bp)
    server.register_blueprint(entities_bp)
    server.register_blueprint(reviewers_bp)
    server.register_blueprint(dashboards_bp)
    init_webhooks(server, services)           # /api/webhooks/<source> (signed by the source) and /api/integrations
    if settings.live:
        init_live(server, services)
    if settings.alerts:
        init_alerts(server, services)

    @server.get(VENDOR_URL + "<path:filename>")
    def vendor(filename: str) -> Any:
        # Bootstrap comes from the bootstrap-flask wheel: no CDN, works offline.
        if not filename.startswith(("css/", "js/", "umd/", "icons/")):
            abort(404)
        return send_from_directory(BOOTSTRAP_DIR, filename, max_age=86400)

    app = QmsDash(
        __name__, server=server, title="QMS Dashboard", update_title=None,
        assets_folder=str(ROOT / "assets"), serve_locally=True,
        # Every page but sign-in draws charts: load Plotly with the page rather than after the
        # first chart arrives (bench/pages.py: the bundle started ~0.3 s after the data came).
        eager_loading=True,
        external_stylesheets=[VENDOR_URL + "css/bootstrap.min.css"],
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = shell.layout()
    # Every id a callback names, including those of pages the router inserts later.
    app.validation_layout = html.Div([shell.layout(), dashboard.validation_board(), dashboard.gate_layout("g"),
                                      dashboard.events_layout("k"),
                                      audit.layout(), alerts.layout(True), dcc.Graph(id={"type": "w-gates", "w": "x"}),
                                      entity.workflow_layout("w"), entity.agent_layout("a"),
                                      dashboards_list.page(None, None), integrations.layout(),
                                      reviewers.layout(), reviewers.reviewer_layout("r")])
    register_callbacks(app)
    static_html.bind(app)                     # what a callback reads or writes stays a component
    check_callback_permissions(app)
    init_guard(server, app)
    server.extensions["qms_csp"] = content_security_policy(app)
    # Dash and Plotly leave ~100k long-lived objects: freezing them keeps the cyclic GC from
    # rescanning them in the middle of requests (it was most of the KPI API's p95 tail). And a
    # request's transient objects (a computed view's 50,000 parsed events) no longer start full
    # collections that find nothing (40-94 ms each, the loop held): GC_THRESHOLD
    # (docs/PERFORMANCE.md, "pages drawn beside the probe").
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    return app


UNAVAILABLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{retry}"><title>QMS Dashboard: reconnecting</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem">
<h1>Reconnecting to the data store&hellip;</h1>
<p>The dashboard cannot reach its data store right now; reconnecting to the data store,
this page reloads by itself every {retry} seconds.</p></body></html>"""


def unavailable() -> Response:
    """Redis cannot be reached: 503 with Retry-After — JSON for API clients, Dash callbacks and
    the /ws handshake; a page that reloads itself for a browser navigating to a page or
    posting a form (sign-in)."""
    g.qms_redis_down = True         # the after_request hooks must not ask Redis again
    from api.routes import error
    wants_page = (not request.path.startswith(("/api/", "/_dash-", "/ws"))
                  and request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html")
    if wants_page:
        resp = Response(UNAVAILABLE_PAGE.format(retry=RETRY_AFTER_S), status=503, mimetype="text/html")
    else:
        resp = error(503, "unavailable", "the data store is unavailable; reconnecting to the data store, "
                                         f"retry in {RETRY_AFTER_S} s")
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def init_unavailable(server: Flask) -> None:
    """An unreachable Redis is a 503, wherever it is noticed: a view, a Dash callback, the
    guard's look-up of the principal, or the session, which Flask opens before any handler."""
    @server.errorhandler(redis.RedisError)
    def _redis_error(exc: redis.RedisError) -> Response:
        server.logger.warning("data store unavailable (%s %s): %s", request.method, request.path, exc)
        return unavailable()

    @server.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError) -> Any:
        cause = exc.original_exception
        if isinstance(cause, redis.RedisError):
            return _redis_error(cause)
        return exc


def init_alerts(server: Flask, services: Services) -> None:
    """The alert service (its scheduler is started by whoever serves: cli.py serve, app.py)."""
    from alerts.routes import bp as alerts_bp
    from alerts.service import AlertService
    s = services.settings
    server.extensions["qms_alerts"] = AlertService(
        services.redis, s.key_prefix, services.engine, s.alert_rules_path or str(ROOT / "config" / "alert_rules.yaml"),
        channels=dict(s.extra.get("alert_channels") or {}), base_url=s.public_url or f"http://{s.host}:{s.port}",
        interval_s=s.alert_interval_s, timeframe=s.alert_timeframe, live_channel=services.keys.live("alerts"))
    server.register_blueprint(alerts_bp)


def services_of(app: dash.Dash) -> Services:
    return app.server.extensions["qms"]
