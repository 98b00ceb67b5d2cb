"""The sanitiser of one viewer: their roles' rules (config/rbac.yaml) plus, for roles scoped to
their team, where the teams come from in Redis.

A viewer's team is the team of their latest `workflow.pr_created` (`{p}:authors`, kept by
the aggregator: author -> [ts, event id, team]); a row's team is its workflow's (the
workflow entity's field "c" = [ts, author, team, repository, pr_number, event id]); a
defect's is its workflow's (defect entity field "f" = [ts, severity, workflow id, event id]).
The aggregator also keeps each workflow's team on its own (`{p}:wft:<id>`), so a batch of
rows is looked up with one MGET of short strings (plus one for defects without a workflow
id, and one of whole entities for workflows aggregated before that key existed), never per
row.
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson
import redis

from auth.sanitize import Sanitizer
from auth.teams import TeamScope
from data import entcodec
from data.keys import Keys


def viewer_team(r: redis.Redis, keys: Keys, name: str | None) -> str | None:
    """The team of `name`'s latest pull request, or None (no pull request, or one without a team)."""
    if not name:
        return None
    raw = r.hget(keys.authors, name)
    if not raw:
        return None
    try:
        team = orjson.loads(raw)[2]
    except (orjson.JSONDecodeError, IndexError, TypeError):
        return None
    return team if isinstance(team, str) and team else None


def _field(raw: bytes | None, name: str, index: int) -> Any:
    if not raw:
        return None
    try:
        value = entcodec.decode(raw).get(name)
        return value[index] if isinstance(value, list) and len(value) > index else None
    except (orjson.JSONDecodeError, AttributeError):
        return None


def resolver(r: redis.Redis, keys: Keys) -> Any:
    """(workflow ids, defect ids) -> their teams, read in one MGET per kind."""
    def resolve(workflows: list[str], defects: list[str]) -> tuple[dict[str, str | None], dict[str, str | None]]:
        defect_wf: dict[str, str | None] = {}
        if defects:
            raws = r.mget([keys.entity("df", d) for d in defects])
            defect_wf = {d: w if isinstance(w := _field(raw, "f", 2), str) else None for d, raw in zip(defects, raws)}
        wanted = list(dict.fromkeys([*workflows, *(w for w in defect_wf.values() if w)]))
        teams: dict[str, str | None] = {}
        if wanted:
            small = r.mget([keys.workflow_team(w) for w in wanted])
            teams = {w: raw.decode() or None for w, raw in zip(wanted, small) if raw is not None}
            older = [w for w in wanted if w not in teams]   # written before the aggregator kept {p}:wft
            if older:
                raws = r.mget([keys.entity("wf", w) for w in older])
                teams.update({w: t if isinstance(t := _field(raw, "c", 2), str) and t else None
                              for w, raw in zip(older, raws)})
        return ({w: teams.get(w) for w in workflows},
                {d: teams.get(w) if w else None for d, w in defect_wf.items()})
    return resolve


def sanitizer_for(rbac: Any, r: redis.Redis, keys: Keys, secret: bytes, roles: Iterable[str] | Any,
                  viewer: str | None = None) -> Sanitizer:
    """The sanitiser of a viewer holding `roles` (most permissive role wins, row by row).

    Without a viewer (or one with no known team), every team's row is another team's for
    roles scoped to their team: it fails closed. The viewer's team is read only when a row
    first needs it.
    """
    cfg = rbac.sanitization_for(roles)
    if not cfg.hidden_fields and not cfg.pseudonymize_authors and cfg.other_teams is None:
        return Sanitizer.none()
    scope = None
    if cfg.other_teams is not None:
        scope = TeamScope(viewer, lambda: viewer_team(r, keys, viewer), resolver(r, keys))
    pseudo = cfg.pseudonymize_authors or (cfg.other_teams is not None and cfg.other_teams.pseudonymize)
    return Sanitizer(frozenset(cfg.hidden_fields), bool(cfg.pseudonymize_authors), secret if pseudo else b"",
                     cfg.other_teams, scope)


__all__ = ["resolver", "sanitizer_for", "viewer_team"]
