"""Callbacks of the alerts page; each checks its permission (view:alerts, and the
acknowledge permission of the selected alert) like every other callback."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from flask import current_app

from alerts.routes import ack_permission
from auth.guard import callback_input, secure_callback, secure_clientside
from auth.principal import audit, authorize, current_principal
from callbacks.inputs import AlertRows, AlertStatus, Choice, Count, Ignored, Severity
from components.alerts import CARD_TYPE, alert_cards
from data.timeutil import fmt_ms


def _entity(labels: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:,.2f}"
    return "" if v is None else str(v)


def rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a in alerts:
        ack = a.get("acknowledged")
        out.append({"id": a["id"], "status": a["status"], "severity": a.get("severity"), "rule": a.get("rule"),
                    "entity": _entity(a.get("labels")), "labels": a.get("labels") or {}, "value": _value(a.get("value")),
                    "condition": a.get("condition"), "since_iso": a.get("since_iso"),
                    "ack": f"{ack['by']} at {fmt_ms(ack['at'])}" + (f": {ack['comment']}" if ack.get("comment") else "")
                    if ack else ""})
    return out


def _ack_spec(body: dict[str, Any]) -> str | None:
    selected = callback_input(body, "alerts-grid", "selectedRows") or []     # typed by the guard
    if not selected:
        return "view:alerts"            # nothing selected: the callback does nothing
    return ack_permission(selected[0]["id"])


def register(app: Dash) -> None:
    @secure_callback(app, "view:alerts",
                     Output("alerts-grid", "rowData"), Output("alerts-banner", "children"),
                     Output("alerts-channels", "children"), Output("alerts-rules", "children"),
                     Output("alerts-cards", "children"),
                     Input("alerts-refresh", "n_intervals"), Input("alerts-severity", "value"),
                     Input("alerts-status", "value"), Input("live-alert", "data"), Input("alerts-ack-result", "children"),
                     inputs={"alerts-refresh.n_intervals": Count, "alerts-severity.value": Severity,
                             "alerts-status.value": AlertStatus, "live-alert.data": Ignored,
                             "alerts-ack-result.children": Ignored},
                     twin="GET /api/alerts")
    def alert_rows(_n: Any, severity: str | None, status: str | None, _live: Any, _acked: Any) -> tuple[Any, ...]:
        svc = current_app.extensions["qms_alerts"]
        meta = svc.meta()
        banner = []
        if meta["rules_error"]:
            banner.append(dbc.Alert(["The rule file was refused; the previous rules keep running: ",
                                     html.Code(meta["rules_error"])], color="danger", className="py-2 small"))
        if not meta["last_eval"]:
            banner.append(dbc.Alert("The rules have not been evaluated yet.", color="secondary", className="py-2 small"))
        channels = dbc.Table([html.Thead(html.Tr([html.Th("Channel"), html.Th("Last delivered"), html.Th("Last error")])),
                              html.Tbody([html.Tr([html.Td(name), html.Td(fmt_ms(st["last_ok"]) if st.get("last_ok") else "—"),
                                                   html.Td(st.get("last_error") or "—",
                                                           className="text-danger" if st.get("failures_in_row") else "")])
                                          for name, st in sorted(meta["channels"].items())])],
                             size="sm", className="small", id="alerts-channel-table")
        rules = dbc.Table([html.Tbody([html.Tr([html.Td(r["name"]), html.Td(html.Code(r["condition"])),
                                                html.Td(r["severity"]), html.Td(f"{r['duration_s']:g}s")])
                                       for r in meta["rules"]])], size="sm", className="small")
        found = rows(svc.alerts(severity, status))
        return found, banner, channels, rules, alert_cards(found)

    # Phones: a tapped card selects its alert in the (hidden) grid, so the history and the
    # acknowledge button below work as on a desktop; the selected card is marked. Browser only.
    secure_clientside(app, lambda body: None,
                      "function(clicks, rows) {"
                      " var dc = window.dash_clientside, t = dc.callback_context.triggered_id;"
                      " if (!t || !t.id || !(dc.callback_context.triggered || []).some(function (x) { return x.value; }))"
                      "   { return dc.no_update; }"
                      " var row = (rows || []).filter(function (r) { return String(r.id) === t.id; });"
                      " return row.length ? row : dc.no_update; }",
                      Output("alerts-grid", "selectedRows"),
                      Input({"type": CARD_TYPE, "id": ALL}, "n_clicks"), State("alerts-grid", "rowData"),
                      prevent_initial_call=True)
    secure_clientside(app, lambda body: None,
                      "function(selected, _clicks, ids) {"
                      " var chosen = (selected && selected[0]) ? String(selected[0].id) : null;"
                      " return (ids || []).map(function (i) {"
                      "   return 'card alert-card mb-2' + (i.id === chosen ? ' alert-card-selected border-primary' : ''); }); }",
                      Output({"type": CARD_TYPE, "id": ALL}, "className"),
                      Input("alerts-grid", "selectedRows"), Input({"type": CARD_TYPE, "id": ALL}, "n_clicks"),
                      State({"type": CARD_TYPE, "id": ALL}, "id"))

    @secure_callback(app, "view:alerts", Output("alerts-history", "rowData"), Output("alerts-history-title", "children"),
                     Output("alerts-ack", "disabled"),
                     Input("alerts-grid", "selectedRows"), Input("alerts-ack-result", "children"),
                     inputs={"alerts-grid.selectedRows": AlertRows, "alerts-ack-result.children": Ignored},
                     twin="GET /api/alerts/history")
    def history(selected: list[dict[str, Any]] | None, _acked: Any) -> tuple[Any, str, bool]:
        if not selected:
            return [], "History (select an alert)", True
        svc = current_app.extensions["qms_alerts"]
        rule = selected[0].get("rule")
        out = []
        for h in svc.history(rule, 500):
            if h.get("kind") == "acknowledged":
                out.append({"at": fmt_ms(h["at"]), "change": "acknowledged", "entity": h.get("id", ""),
                            "value": "", "by": h.get("by", "") + (f": {h['comment']}" if h.get("comment") else "")})
            else:
                out.append({"at": fmt_ms(h["at"]), "change": f"{h.get('from')} → {h.get('to')}",
                            "entity": _entity(h.get("labels")), "value": _value(h.get("value")), "by": ""})
        may_ack = selected[0].get("status") == "firing" and authorize(current_principal(),
                                                                       ack_permission(str(selected[0].get("id"))))
        return out, f"History of “{rule}”", not may_ack

    @secure_callback(app, _ack_spec, Output("alerts-ack-result", "children"), Input("alerts-ack", "n_clicks"),
                     State("alerts-grid", "selectedRows"), State("alerts-comment", "value"), prevent_initial_call=True,
                     inputs={"alerts-ack.n_clicks": Count, "alerts-grid.selectedRows": AlertRows,
                             "alerts-comment.value": Choice},
                     twin="POST /api/alerts/<path:alert_id>/acknowledge")
    def acknowledge(_clicks: Any, selected: list[dict[str, Any]] | None, comment: str | None) -> Any:
        if not selected or ctx.triggered_id != "alerts-ack":
            raise PreventUpdate
        alert_id = str(selected[0].get("id"))
        principal = current_principal()
        if not authorize(principal, ack_permission(alert_id)):
            raise PreventUpdate         # the request guard refused it already; a second lock
        svc = current_app.extensions["qms_alerts"]
        try:
            rec = svc.acknowledge(alert_id, principal.name if principal else "?", (comment or "").strip() or None)
        except (KeyError, ValueError) as exc:
            return html.Span(f"Not acknowledged: {exc}", className="text-danger")
        audit("user.alert_acknowledged", alert=alert_id, rule=rec.get("rule"), comment=comment or "")
        return html.Span(f"Acknowledged {alert_id} at {fmt_ms(rec['acknowledged']['at'])}", className="text-success",
                         id="alerts-ack-ok")

