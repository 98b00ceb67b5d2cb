"""Callbacks of the integrations page, each under manage:integrations like its REST twin
(api/webhooks.py): the sources' state, one source's deliveries, Replay of the selected one."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from flask import current_app
from pydantic import Field

from auth.guard import secure_callback
from auth.principal import Principal, audit, authorize
from callbacks.inputs import Count, Ignored, LongName, _Open
from pages import dashboard
from pages import integrations as integrations_page

PERMISSION = "manage:integrations"
LABELS = {"github": "GitHub", "gitlab": "GitLab", "sonarqube": "SonarQube"}
Source = Literal["github", "gitlab", "sonarqube"] | None
DeliveryStatus = Literal["mapped", "unknown", "ignored", "invalid", "duplicate"] | None


class DeliveryRow(_Open):
    """A row of the deliveries grid as AG Grid sends it back (selectedRows)."""
    entry: LongName
    id: LongName | None = None


DeliveryRows = Annotated[list[DeliveryRow], Field(max_length=10)] | None


def page(path: str | None, search: str | None, principal: Principal | None) -> Any:
    """/integrations for the router (callbacks/pages.py)."""
    if not authorize(principal, PERMISSION):
        audit("authz.denied", "denied", page=path, permission=PERMISSION)
        return dashboard.forbidden(PERMISSION)
    audit("user.dashboard_accessed", dashboard="integrations")
    return integrations_page.layout(current_app.extensions["qms"].settings.refresh_ms)


def source_card(s: dict[str, Any]) -> Any:
    """One source: configured or not, its counters, last delivery and last failure."""
    state = (dbc.Badge("configured", color="success") if s["configured"] else
             dbc.Badge("not configured", color="secondary") if s["available"] else dbc.Badge("not built", color="dark"))
    counts = ", ".join(f"{k} {s[k]}" for k in ("received", "mapped", "unknown", "ignored", "invalid", "duplicate",
                                                "bad_signature", "rate_limited", "replayed") if s.get(k))
    lines = [html.Div([html.Strong(LABELS.get(s["source"], s["source"]), className="me-2"), state]),
             html.Div(html.Code(f"POST {s['url']}"), className="small"),
             html.Div(counts or "no deliveries yet", className="small int-counts"),
             html.Div(f"last delivery {s['last_delivery_at'] or '—'}", className="small")]
    if not s["configured"] and s.get("secret_setting"):
        lines.append(html.Div(f"set QMS_{str(s['secret_setting']).upper()} to receive", className="small text-body-secondary"))
    if s.get("last_failure_at"):
        lines.append(html.Div(f"last failure {s['last_failure_at']}: {s['last_failure']}",
                              className="small text-danger int-failure"))
    return dbc.Col(dbc.Card(dbc.CardBody(lines, className="py-2"), id=f"int-card-{s['source']}"), md=4)


def register(app: Dash) -> None:
    @secure_callback(app, PERMISSION, Output("int-sources", "children"), Output("int-mapping", "children"),
                     Input("int-refresh", "n_intervals"), Input("int-replay-result", "children"),
                     inputs={"int-refresh.n_intervals": Count, "int-replay-result.children": Ignored},
                     twin="GET /api/integrations")
    def sources(_n: Any, _replayed: Any) -> tuple[Any, Any]:
        rec = current_app.extensions["qms_webhooks"]
        summary = rec.mapping.get().summary
        mapping: list[Any] = [html.Span(f"Mapping {rec.mapping.path.name}: " + ", ".join(f"{v} {k}" for k, v in summary.items()))]
        if rec.mapping.error:
            mapping.append(dbc.Alert(["The mapping file was refused; the previous mapping is used: ",
                                      html.Pre(rec.mapping.error, className="mb-0 small")],
                                     color="danger", className="py-1 mt-1 small", id="int-mapping-error"))
        return [source_card(s) for s in rec.overview()], mapping

    @secure_callback(app, PERMISSION, Output("int-grid", "rowData"),
                     Input("int-refresh", "n_intervals"), Input("int-source", "value"), Input("int-status", "value"),
                     Input("int-replay-result", "children"),
                     inputs={"int-refresh.n_intervals": Count, "int-source.value": Source,
                             "int-status.value": DeliveryStatus, "int-replay-result.children": Ignored},
                     twin="GET /api/integrations/<source>/deliveries")
    def deliveries(_n: Any, source: str | None, status: str | None, _replayed: Any) -> list[dict[str, Any]]:
        rows = current_app.extensions["qms_webhooks"].deliveries(source or "github", 500, status)
        return [{k: v for k, v in r.items() if k != "headers"} for r in rows]

    @secure_callback(app, PERMISSION, Output("int-replay-result", "children"),
                     Input("int-replay", "n_clicks"), State("int-grid", "selectedRows"), State("int-source", "value"),
                     prevent_initial_call=True,
                     inputs={"int-replay.n_clicks": Count, "int-grid.selectedRows": DeliveryRows,
                             "int-source.value": Source},
                     twin="POST /api/integrations/<source>/deliveries/<delivery_id>/replay")
    def replay(_clicks: Any, selected: list[dict[str, Any]] | None, source: str | None) -> Any:
        if ctx.triggered_id != "int-replay":
            raise PreventUpdate
        if not selected:
            return html.Span("Select a delivery first.", className="text-body-secondary")
        source = source or "github"
        rec = current_app.extensions["qms_webhooks"]
        entry = rec.delivery(source, str(selected[0]["entry"]))
        if entry is None:
            return html.Span("That delivery is no longer stored (or has no body).", className="text-danger")
        out = rec.replay(source, entry)
        audit("integration.replayed", source=source, delivery=entry["id"], status=out.body.get("status", "invalid"))
        if out.error is not None:
            return html.Span(f"Not replayed: {out.error[1]}", className="text-danger", id="int-replay-failed")
        counts = out.body.get("events") or {}
        said = (f"{counts.get('accepted', 0)} new, {counts.get('duplicates', 0)} already there, "
                f"{counts.get('rejected', 0)} rejected" if counts else "nothing to map")
        return html.Span(f"Replayed {entry['id']} ({out.body['status']}): {said}", className="text-success",
                         id="int-replay-ok")
