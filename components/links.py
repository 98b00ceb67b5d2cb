"""Links to the entity pages — one place that knows their URLs, for every grid, table and card.

- `href(kind, id)`: the page of a workflow (pull request), an agent, a quality gate
  (`gate_href(name)` for the gate page).
- `entity_link(kind, id)`: a `dcc.Link` (in-app navigation) for Dash layouts.
- `link_column(field, kind, ...)`: an AG Grid column whose cells render the id as a link
  (the `EntityLink` renderer of assets/dashAgGridComponentFunctions.js; the row data stays
  the plain id, so sorting, filtering and exports are unchanged).
- `cell(key, value)`: a table cell that links the ids it recognises by column name.

Kinds: "workflow", "agent", "gate", and "actor" — a reviewer or finder, linked only when it
is an agent (people have no page; a pseudonym never links).
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

from dash import dcc

from auth.sanitize import AGENT_PREFIX

WORKFLOW, AGENT, GATE, ACTOR = "workflow", "agent", "gate", "actor"
BASES = {WORKFLOW: "/workflows/", AGENT: "/agents/", GATE: "/gates/"}
# Column names that hold an id, and the page they link to.
FIELD_KINDS = {"workflow_id": WORKFLOW, "agent_id": AGENT, "gate_name": GATE, "gate": GATE,
               "reviewer": ACTOR, "found_by": ACTOR, "agent": AGENT, "workflow": WORKFLOW}
RENDERER = "EntityLink"          # assets/dashAgGridComponentFunctions.js
LABELS_RENDERER = "EntityLabels"


def is_agent(name: Any) -> bool:
    """Agents carry the QMS agent prefix (as the sanitiser assumes); people and pseudonyms do not."""
    return isinstance(name, str) and name.startswith(AGENT_PREFIX)


def href(kind: str, ident: Any) -> str | None:
    """The page of `ident` as a `kind`, or None when it has none (no id, a person)."""
    if not isinstance(ident, str) or not ident:
        return None
    if kind == ACTOR:
        if not is_agent(ident):
            return None
        kind = AGENT
    base = BASES.get(kind)
    return base + quote(ident, safe="") if base else None


def gate_href(gate: str) -> str:
    return BASES[GATE] + quote(gate, safe="")


def entity_link(kind: str, ident: Any, text: Any = None, className: str = "entity-link") -> Any:
    """A link to the entity's page, or the plain text when it has none."""
    target = href(kind, ident)
    label = ident if text is None else text
    if target is None:
        return label
    return dcc.Link(label, href=target, className=className, title=f"Open the {kind if kind != ACTOR else AGENT} page")


def cell(key: str, value: Any) -> Any:
    """A table cell: ids of known columns (workflow_id, agent_id, gate_name, reviewer, ...) as links."""
    kind = FIELD_KINDS.get(key)
    return entity_link(kind, value) if kind else value


def link_column(field: str, kind: str, headerName: str | None = None, **extra: Any) -> dict[str, Any]:
    """An AG Grid column def that renders the id in `field` as a link to its page."""
    return {"field": field, "headerName": headerName or field, "cellRenderer": RENDERER,
            "cellRendererParams": {"kind": kind, "agentPrefix": AGENT_PREFIX}, **extra}


def labels_column(field: str, headerName: str, labels_field: str = "labels", **extra: Any) -> dict[str, Any]:
    """An AG Grid column showing `field` (e.g. "agent=qms-x") with the ids of the row's
    `labels` object (agent, gate, workflow) as links."""
    return {"field": field, "headerName": headerName, "cellRenderer": LABELS_RENDERER,
            "cellRendererParams": {"labelsField": labels_field, "kinds": {k: FIELD_KINDS[k] for k in ("agent", "gate",
                                                                                                   "workflow")}},
            **extra}


def labels_links(labels: Mapping[str, Any] | None) -> list[Any]:
    """Alert labels as "key=value" parts, the ids of known keys (agent, gate, workflow) linked."""
    out: list[Any] = []
    for k, v in sorted((labels or {}).items()):
        if out:
            out.append(", ")
        kind = FIELD_KINDS.get(k) if k in ("agent", "gate", "workflow") else None
        out += [f"{k}=", entity_link(kind, v) if kind else str(v)]
    return out
