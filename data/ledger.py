"""The reviewer ledger read back over a window (docs/METRICS.md, "The reviewer ledger").

`figures()` plans the window like the dashboards (data.engine.plan: edges on retained bucket
boundaries), fetches the ledger's rollup family once (data.rollups) and hands the window's sums
to `assemble()`, a pure function: each field `metric \x1f actor \x1f kind \x1f extra` written
by data/ledger_contrib.py is resolved — an implicit kind is `ai` for a known agent (the
registries of agents that sent a status or were assigned), else `human` — and added to its
reviewer's cell, its kind's cell, the per-workflow first-review means or its gate. The cost of a
query depends on the window's buckets and the reviewers in them, never on raw events.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import redis

from data import rollups
from data.engine import plan
from data.keys import Keys
from data.ledger_contrib import (
    AP, COST, CR, ESC, FA, FD, FR, FRA_N, FRA_S, FRH_N, FRH_S, FW, GF, GFF, GP, GPX, LEDGER, LEDGER_SCOPED, MICRO,
    PRED_SEP, RC, SEP, TTF_N, TTF_S, WA, WX, parse, scoped_family,
)
from data.timeutil import HOUR_MS, fmt_ms, now_ms

KINDS = ("human", "ai", "bot", "gate")
# Metrics made of findings and their fates: a defect_resolved names no workflow, so these are
# not split by team or repository (the answer lists them as unfiltered).
FINDINGS = frozenset({FR, FA, FD, FW})
REVIEWER_METRICS = (RC, AP, CR, COST, TTF_S, TTF_N, FR, FA, FD, FW, ESC, WA, WX)
UNFILTERED = ("findings_raised", "findings_accepted", "findings_dismissed", "findings_wont_fix", "precision",
              "cost_per_accepted_finding")
COST_ALL = "cost_all"                           # a filtered ledger's unfiltered review cost (per cell)
BEFORE_END = frozenset({WX, GPX, GFF})          # extra = minute of the later event; counted when < end


def _pct(num: int, den: int) -> float | None:
    return None if not den else 100.0 * num / den


def _mean(total: int, n: int, scale: float) -> float | None:
    return None if not n else total / n / scale


def cell_figures(c: dict[str, int]) -> dict[str, Any]:
    """A reviewer's (or a kind's) figures from its summed fields."""
    g = c.get
    return {
        "reviews_completed": g(RC, 0), "approvals": g(AP, 0), "changes_requested": g(CR, 0),
        "review_cost_usd": g(COST, 0) / MICRO,
        "time_to_first_review": _mean(g(TTF_S, 0), g(TTF_N, 0), HOUR_MS), "first_reviews": g(TTF_N, 0),
        "findings_raised": g(FR, 0), "findings_accepted": g(FA, 0), "findings_dismissed": g(FD, 0),
        "findings_wont_fix": g(FW, 0), "precision": _pct(g(FA, 0), g(FA, 0) + g(FD, 0)),
        "escapes": g(ESC, 0), "workflows_approved": g(WA, 0), "workflows_approved_with_escape": g(WX, 0),
        "miss_rate": _pct(g(WX, 0), g(WA, 0)),
        # unfiltered like the findings it divides by: under a filter, the reviews' cost over every workflow
        "cost_per_accepted_finding": None if not g(FA, 0) else c.get(COST_ALL, g(COST, 0)) / g(FA, 0) / MICRO,
    }


def gate_figures(c: dict[str, int]) -> dict[str, Any]:
    g = c.get
    return {"passes": g(GP, 0), "passes_followed_by_production_defect": g(GPX, 0),
            "calibration_miss_rate": _pct(g(GPX, 0), g(GP, 0)),
            "fails": g(GF, 0), "flaky_fails": g(GFF, 0), "flakiness": _pct(g(GFF, 0), g(GF, 0))}


def assemble(sums: dict[str, int], agents: Iterable[str], end: int,
             scoped: dict[str, int] | None = None) -> dict[str, Any]:
    """The ledger from the window's LEDGER sums. With `scoped` (one scope's LEDGER_SCOPED sums,
    prefix removed) the workflow facts come from it and the findings from `sums`."""
    known = set(agents)
    cells: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    gates: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    first = {"any": [0, 0], "human": [0, 0]}
    sources = [(sums, None)] if scoped is None else [(sums, FINDINGS), (scoped, "not findings")]
    for src, only in sources:
        for f, v in src.items():
            if not v:
                continue
            parts = parse(f)
            if parts is None:
                continue
            metric, actor, kind, extra = parts
            if only is FINDINGS and metric not in FINDINGS:
                if metric == COST:
                    cells[(actor, kind or ("ai" if actor in known else "human"))][COST_ALL] += v
                continue
            if only == "not findings" and metric in FINDINGS:
                continue
            if metric in BEFORE_END and not (extra.isdigit() and int(extra) < end):
                continue
            if metric in (GP, GPX, GF, GFF):
                gates[actor][metric] += v
            elif metric in (FRA_S, FRA_N):
                first["any"][metric == FRA_N] += v
            elif metric in (FRH_S, FRH_N):
                preds = extra.split(PRED_SEP) if extra else []
                if (kind == "human" or (kind == "" and actor not in known)) and all(p in known for p in preds):
                    first["human"][metric == FRH_N] += v
            elif metric in REVIEWER_METRICS:
                cells[(actor, kind or ("ai" if actor in known else "human"))][metric] += v
    by_actor: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    actor_kinds: dict[str, set[str]] = defaultdict(set)
    by_kind: dict[str, dict[str, int]] = {k: defaultdict(int) for k in KINDS}
    for (actor, kind), c in cells.items():
        actor_kinds[actor].add(kind)
        for m, v in c.items():
            by_actor[actor][m] += v
            by_kind.setdefault(kind, defaultdict(int))[m] += v
    rows = []
    for actor in sorted(by_actor):
        ks = actor_kinds[actor]
        rows.append({"reviewer": actor, "kind": next(iter(ks)) if len(ks) == 1 else "mixed",
                     **cell_figures(by_actor[actor])})
    return {
        "rows": rows,
        "kinds": {k: cell_figures(c) for k, c in by_kind.items()},
        "first_review": {"time_to_first_review_any": _mean(first["any"][0], first["any"][1], HOUR_MS),
                         "workflows_any": first["any"][1],
                         "time_to_first_human_review": _mean(first["human"][0], first["human"][1], HOUR_MS),
                         "workflows_human": first["human"][1]},
        "gates": [{"gate": name, **gate_figures(c)} for name, c in sorted(gates.items())],
    }


def known_agents(r: redis.Redis, keys: Keys) -> set[str]:
    return {m.decode() for m in r.sunion(keys.registry("agents"), keys.registry("assigned"))}


def scoped_sums(sums: dict[str, int], scope: str) -> dict[str, int]:
    prefix = scope + SEP
    return {f[len(prefix):]: v for f, v in sums.items() if f.startswith(prefix)}


def figures(r: redis.Redis, keys: Keys, timeframe: str = "24h", end_ms: int | None = None,
            scope: str | None = None, skew_ms: int = 900_000) -> dict[str, Any]:
    """The ledger of one window (and scope: data.scopes.label), as GET /api/reviewers answers it
    before sanitising. Raises data.engine.QueryError for a bad timeframe or end."""
    now = now_ms()
    p = plan(timeframe, end_ms, now, skew_ms, depth=1)
    s, e = p.bounds[1], p.bounds[0]
    # A scope's copies: its own family, plus what the one family of before still holds there.
    fams = (LEDGER, LEDGER_SCOPED, scoped_family(scope)) if scope else (LEDGER,)
    span = rollups.fetch(r, keys, fams, p.bounds, p.horizon, now, rollups.daily_from(r, keys))
    sums = span.sums(LEDGER, s, e)
    scoped = None
    if scope:
        scoped = defaultdict(int, scoped_sums(span.sums(LEDGER_SCOPED, s, e), scope))
        for f, v in span.sums(scoped_family(scope), s, e).items():
            scoped[f] += v
    out = assemble(sums, known_agents(r, keys), e, scoped)
    out.update({"timeframe": timeframe, "window": {"start": fmt_ms(s), "end": fmt_ms(e)}})
    if scope:
        out["filter"] = scope
        out["unfiltered"] = list(UNFILTERED)
    return out


# --- leaving for a caller ----------------------------------------------------------------------

COST_FIGURES = ("review_cost_usd", "cost_per_accepted_finding")
MACHINE_KINDS = frozenset({"ai", "bot", "gate"})


def href(reviewer: str) -> str:
    from urllib.parse import quote
    return "/reviewers/" + quote(reviewer, safe="")


def reviewer_teams(r: redis.Redis, keys: Keys, names: list[str]) -> dict[str, str | None]:
    """A person's team: that of their latest pull request ({p}:authors), as team scope reads it."""
    import orjson
    if not names:
        return {}
    return {n: (orjson.loads(v)[2] if v else None) for n, v in zip(names, r.hmget(keys.authors, names))}


def visible(san: Any, row_kind: str, reviewer: str, team: str | None) -> str:
    """How a reviewer's own row leaves for a caller: "named", "pseudonym" or "omit". Machines
    (ai, bot, gate) are not people and stay named; people are pseudonymised for roles that
    pseudonymise, and outside the caller's team per its team scope (`reviews` rows)."""
    if row_kind in MACHINE_KINDS or san.is_noop:
        return "named"
    if san.pseudonymize:
        return "pseudonym"
    other = san.other_teams
    if other is None or san.scope is None:
        return "named"
    if reviewer == san.scope.viewer or (team is not None and team == san.scope.team):
        return "named"
    if "reviews" in other.omit:
        return "omit"
    return "pseudonym" if other.pseudonymize else "named"


def sanitize(doc: dict[str, Any], san: Any, teams: dict[str, str | None], see_cost: bool) -> dict[str, Any]:
    """The ledger as a caller may see it: people's rows named, pseudonymised or left out
    (`visible`), cost figures null without view:cost_analysis; aggregates (kinds, first
    review, gates) name nobody and stay as they are, except for cost."""
    from auth.teams import ScopeCount
    count = ScopeCount()
    rows = []
    for row in doc["rows"]:
        how = visible(san, row["kind"], row["reviewer"], teams.get(row["reviewer"]))
        if how == "omit":
            count.left_out += 1
            continue
        out = dict(row)
        if how == "pseudonym":
            out["reviewer"] = san.pseudonym(row["reviewer"])
            out["pseudonymised"] = True
            if san.other_teams is not None and not san.pseudonymize:
                count.shown_without_names += 1
        out["href"] = href(row["reviewer"]) if how == "named" else None
        rows.append(out)
    kinds = {k: dict(v) for k, v in doc["kinds"].items()}
    if not see_cost:
        for target in [*rows, *kinds.values()]:
            for name in COST_FIGURES:
                target[name] = None
    info = san.scope_info(count) if not san.is_noop else {"teams": "all"}
    return {**doc, "rows": rows, "kinds": kinds, "cost_hidden": not see_cost, "scope": info}
