"""Developer and team widgets (seed §2.3): who reviews whose pull requests, a developer's
milestones, and the defect categories they meet over time with the reviews that would
teach them most.

Inputs are plain rows (the computed views of dashboards.sources, as records):
team_collaboration `{reviewer_team, author_team, reviews[, reviewer, author]}`, achievements
`{milestone, description, achieved, progress, target, at}`, skill_development
`{t, category, defects}` and suggested reviews `{workflow_id, repository, author, step_since}`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import html

from components import theme
from components.charts import progress_bar
from components.common import all_missing, graph, mappings, number, placeholder, short_time
from components.quality import group_rows, line_traces
from components.tables import table


def _matrix(rows: Sequence[Mapping[str, Any]], row_key: str, col_key: str) -> tuple[list[str], list[str], list[list[Any]]]:
    """Summed `reviews` per (row, column); a pair with no row stays empty (None), not 0."""
    cells: dict[tuple[str, str], float] = {}
    for r in rows:
        a, b, n = r.get(row_key), r.get(col_key), number(r.get("reviews"))
        if a is None or b is None or n is None:
            continue
        cells[(str(a), str(b))] = cells.get((str(a), str(b)), 0.0) + n
    ys = sorted({a for a, _ in cells})
    xs = sorted({b for _, b in cells})
    return xs, ys, [[cells.get((y, x)) for x in xs] for y in ys]


def team_collaboration(rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None,
                       title: str | None = None, height: int | None = None) -> Any:
    """Reviews as a reviewer × author heatmap: per person where the rows name people (the
    caller may see them), else per team; a line above says how many reviews crossed teams."""
    rows = mappings(rows)
    people = [r for r in rows if r.get("reviewer") is not None and r.get("author") is not None]
    if people:
        xs, ys, z = _matrix(people, "reviewer", "author")
        axes = ("reviewer", "author")
    else:
        xs, ys, z = _matrix(rows, "reviewer_team", "author_team")
        axes = ("reviewer team", "author team")
    if not z or all_missing(v for row in z for v in row):
        return placeholder("team_collaboration", id=id)
    p = theme.palette(mode)
    # A plain figure (what Plotly's validated Heatmap gives as JSON): this body is drawn per
    # viewer where team scope applies, and Plotly's validation was half of its drawing.
    fig = {"data": [{"colorbar": {"outlinewidth": 0, "title": {"text": "reviews"}},
                     "colorscale": [[0, p["surface"]], [1, p["primary"]]], "hoverongaps": False,
                     "hovertemplate": f"{axes[0]} %{{y}} → {axes[1]} %{{x}}<br>%{{z:,.0f}} reviews<extra></extra>",
                     "text": [["" if v is None else f"{v:,.0f}" for v in row] for row in z], "texttemplate": "%{text}",
                     "type": "heatmap", "x": xs, "xgap": 2, "y": ys, "ygap": 2, "z": z}],
           "layout": {"xaxis": {"showgrid": False, "title": {"text": axes[1]}, "type": "category"},
                      "yaxis": {"autorange": "reversed", "showgrid": False, "title": {"text": axes[0]},
                                "type": "category"}}}
    total = cross = 0.0
    for r in rows:
        n = number(r.get("reviews"))
        if n is None or r.get("reviewer_team") is None or r.get("author_team") is None or (people and r not in people):
            continue
        total += n
        cross += n if r["reviewer_team"] != r["author_team"] else 0
    summary = (f"{cross:,.0f} of {total:,.0f} reviews ({cross / total * 100:.0f}%) across teams" if total else None)
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([html.Div(summary, className="small text-body-secondary collab-summary") if summary else None,
                     graph(fig, "team_collaboration", mode=mode, height=height, title=title)],
                    className="team-collaboration", **{"data-widget": "team_collaboration"}, **kw)


def achievement_tracker(rows: Sequence[Mapping[str, Any]] | None, *, mode: str = "light", id: Any = None) -> Any:
    """Milestones: achieved ones first (with when), then the others with their progress bars."""
    rows = [r for r in mappings(rows) if r.get("milestone")]
    if not rows:
        return placeholder("achievement_tracker", id=id)
    done = [r for r in rows if r.get("achieved") is True]
    todo = [r for r in rows if r.get("achieved") is not True]
    items = []
    def item(r: Mapping[str, Any], head: Any, state: str) -> dbc.ListGroupItem:
        # dbc.ListGroupItem takes no data-* attributes: the html.Div inside carries data-milestone.
        return dbc.ListGroupItem(html.Div([
            head,
            html.Div(str(r["description"]), className="small text-body-secondary") if r.get("description") else None,
        ], className=f"achievement achievement-{state}", **{"data-milestone": str(r["milestone"])}))
    for r in done:
        items.append(item(r, html.Div([html.Span("✓", className="text-success-emphasis fw-bold me-2", title="achieved"),
                                       html.Span(str(r["milestone"]), className="fw-semibold me-auto"),
                                       html.Span(short_time(r.get("at")), className="small text-body-secondary")],
                                      className="d-flex align-items-center"), "done"))
    for r in todo:
        bar = progress_bar(number(r.get("progress")), number(r.get("target")), label=str(r["milestone"]), mode=mode)
        if "widget-no-data" in (bar.className or ""):     # no target: say how far it got, if anything
            prog = number(r.get("progress"))
            bar = html.Div([html.Span(str(r["milestone"]), className="me-auto"),
                            html.Span("not started" if not prog else f"{prog:,.0f} so far",
                                      className="text-body-secondary")], className="d-flex small")
        items.append(item(r, bar, "open"))
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div([html.Div(f"{len(done)} of {len(rows)} milestones achieved", className="small mb-1 achievement-count"),
                     dbc.ListGroup(items, flush=True)],
                    className="achievement-tracker", **{"data-widget": "achievement_tracker"}, **kw)


SUGGESTED_COLUMNS = [("workflow_id", "Workflow"), ("repository", "Repository"), ("author", "Author"),
                     ("step_since", "Waiting since (UTC)")]


def skill_development(rows: Sequence[Mapping[str, Any]] | None, suggested: Sequence[Mapping[str, Any]] | None = None,
                      *, mode: str = "light", id: Any = None, title: str | None = None,
                      height: int | None = None) -> Any:
    """Defects by category over time ({t, category, defects}: one line per category) and, under
    it, the suggested reviews (pull requests waiting for a reviewer) to learn from."""
    rows = [r for r in mappings(rows) if r.get("t") is not None and r.get("category")]
    has_series = bool(rows) and not all_missing(number(r.get("defects")) for r in rows)
    picks = mappings(suggested)
    if not has_series and not picks:
        return placeholder("skill_development", id=id)
    body: list[Any] = []
    if has_series:
        fig = {"data": line_traces(group_rows(rows, lambda r: str(r["category"])), "defects"),
               "layout": {"hovermode": "x unified", "showlegend": True,
                          "yaxis": {"rangemode": "tozero", "title": {"text": "defects"}}}}
        body.append(graph(fig, "skill_development", mode=mode, height=height, title=title))
    else:
        body.append(placeholder("skill_development", message="no defects over time"))
    if suggested is not None:
        cols = [c for c in SUGGESTED_COLUMNS if any(c[0] in r for r in picks)] or None
        body += [html.Div("Suggested reviews", className="small fw-semibold mt-2 mb-1"),
                 table(picks, cols, empty="Nothing is waiting for a reviewer", max_rows=10, widget="suggested_reviews",
                       className="skill-suggested")]
    kw: dict[str, Any] = {"id": id} if id is not None else {}
    return html.Div(body, className="skill-development", **{"data-widget": "skill_development"}, **kw)
