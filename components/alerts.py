"""The alerts as cards, for phones: the same rows the alerts grid shows (callbacks/alerts.rows),
one card each — status and severity coloured like everywhere else (components/theme), the
rule, the entity with its links, value against condition, since when, who acknowledged.
A card is clickable: it selects its alert in the grid (the page's history and acknowledge
work from the grid's selection), so a phone can acknowledge too."""
from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.links import labels_links
from components.theme import status_bs

CARD_TYPE = "alert-card"          # pattern-matching id: {"type": CARD_TYPE, "id": <alert id>}


def alert_card(row: dict[str, Any]) -> html.Div:
    status, severity = row.get("status") or "", row.get("severity") or ""
    lines = [
        html.Div([
            dbc.Badge(status, color=status_bs(status), className="me-1 alert-card-status"),
            dbc.Badge(severity, color=status_bs(severity), className="me-2") if severity else None,
            html.Span(row.get("since_iso") or "", className="small text-body-secondary ms-auto"),
        ], className="d-flex align-items-center flex-wrap gap-1 mb-1"),
        html.Div(row.get("rule") or "", className="fw-semibold alert-card-rule"),
    ]
    if row.get("labels"):
        lines.append(html.Div(labels_links(row["labels"]), className="small text-break"))
    if row.get("value") or row.get("condition"):
        lines.append(html.Div([html.Span(row.get("value") or "", className="fw-semibold"),
                               html.Span(" · " if row.get("value") and row.get("condition") else ""),
                               html.Code(row.get("condition") or "")], className="small"))
    if row.get("ack"):
        lines.append(html.Div(f"Acknowledged by {row['ack']}", className="small text-body-secondary"))
    return html.Div(dbc.CardBody(lines, className="p-2"), id={"type": CARD_TYPE, "id": str(row.get("id"))},
                    n_clicks=0, role="button", className="card alert-card mb-2", **{"data-status": status})


def alert_cards(rows: list[dict[str, Any]]) -> Any:
    if not rows:
        return html.P("No alerts match.", className="text-body-secondary small", id="alerts-cards-empty")
    # Newest first, as the grid sorts them.
    return [alert_card(r) for r in sorted(rows, key=lambda r: r.get("since_iso") or "", reverse=True)]
