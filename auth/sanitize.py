"""Per-role sanitisation of what a dashboard shows (seed §8.2, DataSanitizer), with team scope.

A role's `Sanitizer` removes fields the role may not see and, for roles that see people
only as numbers, replaces person names with stable pseudonyms: the same developer is the
same `user-…` everywhere (so trends and drill-downs still line up), but the name cannot be
recovered without the server's secret.

Team scope (config/rbac.yaml `other_teams:`): a row that belongs to a workflow (an event,
an active workflow, an open review, a defect, a violation) has that workflow's team. A
role with `other_teams` sees its own team's rows as above and other teams' rows through a
second, stricter view (`OtherTeams`): people pseudonymised, free text and fields the event
contract does not declare removed, or the row left out — per data kind. The viewer's team
and the rows' teams come from a `TeamScope` (auth.teams; auth.scope reads them from Redis),
looked up once per `events()`/`rows()` call; it also counts what it scoped, so a response
can say so.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Iterable

from auth.teams import ScopeCount, TeamScope, scope_note
from data.events import SCHEMAS

# Fields of an event's `data` that hold a person's name.
PERSON_FIELDS = ("author", "reviewer", "user", "changed_by", "found_by")
# A reviewer (or a defect's finder) is an agent or a colleague (EVENTS.md); agents are not people.
AGENT_PREFIX = "qms-"
MAYBE_AGENT = frozenset({"reviewer", "found_by"})
ROW_PERSON_KEYS = ("author", "reviewer", "user", "found_by")

# The kinds of rows a scope rule decides on, and what it may do with another team's row.
KINDS = ("events", "workflows", "reviews", "defects", "violations")
PSEUDONYMIZE, OMIT = "pseudonymize", "omit"
ACTIONS = (PSEUDONYMIZE, OMIT)
# Envelope and metadata fields kept on another team's event (the rest may be producers' free text).
_ENVELOPE = frozenset({"id", "type", "timestamp", "source", "data", "metadata"})
_METADATA = frozenset({"priority", "tags", "correlation_id"})
_DECLARED = {t: frozenset(schema) for t, schema in SCHEMAS.items()}
_REFS = frozenset({"workflow_id", "defect_id"})


@dataclass(frozen=True)
class OtherTeams:
    """How rows of other teams' workflows leave (and rows whose team is not known).

    `hidden_fields` are removed like a role's (the role's own plus its free text),
    `pseudonymize` replaces people, `drop_undeclared` keeps of an event only the fields the
    event contract declares, and `omit` lists the data kinds left out instead of shown.
    """

    hidden_fields: frozenset[str] = frozenset()
    pseudonymize: bool = True
    drop_undeclared: bool = True
    omit: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_fields", frozenset(self.hidden_fields))
        object.__setattr__(self, "omit", frozenset(self.omit))
        if not self.omit <= set(KINDS):
            raise ValueError(f"unknown data kind in {sorted(self.omit)}; kinds: {', '.join(KINDS)}")


def merge_other(views: Iterable[OtherTeams]) -> OtherTeams:
    """The most permissive of several roles' views of another team's row: a field is hidden
    only if every view hides it, a row left out only if every view leaves it out."""
    items = list(views)
    return OtherTeams(frozenset.intersection(*(v.hidden_fields for v in items)), all(v.pseudonymize for v in items),
                      all(v.drop_undeclared for v in items), frozenset.intersection(*(v.omit for v in items)))


@dataclass(frozen=True)
class Sanitizer:
    """What one role (or one user's roles, see `merge`) may see.

    `hidden_fields` are dotted paths into an event (`data.author`, `metadata.correlation_id`,
    `source`). `secret` keys the pseudonyms; it is left out of repr so it never lands in logs.
    `other_teams` is the view of other teams' rows (None: the same as everyone's); `scope`
    knows the viewer's team and counts the rows it scoped (a fresh one per request).
    """

    hidden_fields: frozenset[str] = frozenset()
    pseudonymize: bool = False
    secret: bytes = field(default=b"", repr=False)
    other_teams: OtherTeams | None = None
    scope: TeamScope | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Accept any iterable of paths; a plain set would make the instance unhashable.
        object.__setattr__(self, "hidden_fields", frozenset(self.hidden_fields))
        paths = self.hidden_fields | (self.other_teams.hidden_fields if self.other_teams else frozenset())
        if any(not p or "" in p.split(".") for p in paths):
            raise ValueError(f"bad field path in {sorted(paths)}")
        if (self.pseudonymize or (self.other_teams and self.other_teams.pseudonymize)) and not self.secret:
            # HMAC under an empty key is a plain hash: anyone could test a guessed name.
            raise ValueError("pseudonymize needs a secret")
        if self.other_teams is not None and self.scope is None:
            # No viewer known: every team's row is another team's (fail closed).
            object.__setattr__(self, "scope", TeamScope())

    @classmethod
    def none(cls) -> Sanitizer:
        """A sanitizer that changes nothing (roles allowed to see everything)."""
        return cls()

    @property
    def is_noop(self) -> bool:
        return not self.hidden_fields and not self.pseudonymize and self.other_teams is None

    def pseudonym(self, name: str) -> str:
        """A stable, non-reversible stand-in for `name`."""
        return "user-" + hmac.new(self.secret, name.encode(), hashlib.sha256).hexdigest()[:10]

    # --- events ------------------------------------------------------------------------

    def event(self, ev: dict[str, Any]) -> dict[str, Any]:
        """A sanitised copy of an EVENTS.md event; `ev` is left untouched.

        Only the dicts on a changed path are copied; untouched nested values are shared
        with `ev`, so treat the result as read-only (copying every event of a drill-down
        in full would cost more than the rest of the request). One event cannot be left
        out: another team's event of a kind the rule omits comes back pseudonymised — use
        `events()`, which also looks teams up in one batch.
        """
        if self.other_teams is None:
            return self._event(ev, self.hidden_fields, self.pseudonymize)
        out = self._scoped_events([ev], keep_omitted=True)
        return out[0]

    def events(self, evs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sanitised copies of events; other teams' events per the rule (maybe fewer rows)."""
        if self.other_teams is None:
            return [self._event(ev, self.hidden_fields, self.pseudonymize) for ev in evs]
        return self._scoped_events(list(evs), keep_omitted=False)

    def _scoped_events(self, evs: list[dict[str, Any]], keep_omitted: bool) -> list[dict[str, Any]]:
        scope, other = self.scope, self.other_teams
        assert scope is not None and other is not None
        refs = [_event_refs(ev) for ev in evs]
        people = [[d.get(k) for k in PERSON_FIELDS] if isinstance(d := ev.get("data"), dict) else [] for ev in evs]
        ask = [ref for ref, names in zip(refs, people) if scope.viewer is None or scope.viewer not in names]
        scope.prefetch((w for w, _ in ask if w), (d for w, d in ask if d and not w))
        count = ScopeCount()
        out = []
        for ev, (wf, df), names in zip(evs, refs, people):
            if scope.owns(wf, None if wf else df, names) is not False:
                out.append(self._event(ev, self.hidden_fields, self.pseudonymize))
            elif "events" in other.omit and not keep_omitted:
                count.left_out += 1
            else:
                count.shown_without_names += 1
                shown = _declared(ev) if other.drop_undeclared else ev
                out.append(self._event(shown, other.hidden_fields, other.pseudonymize))
        self._count(count)
        return out

    def _event(self, ev: dict[str, Any], hidden: frozenset[str], pseudo: bool) -> dict[str, Any]:
        out = dict(ev)
        in_data, deeper = _split(hidden)
        data = out.get("data")
        if in_data and isinstance(data, dict) and not in_data.isdisjoint(data):
            # The usual case (data.title, data.user, ...): one copy of `data`, not one per path.
            out["data"] = {k: v for k, v in data.items() if k not in in_data}
        for parts in deeper:
            out = _drop(out, parts)
        if pseudo and isinstance(out.get("data"), dict):
            out["data"] = self._people(out["data"], PERSON_FIELDS)
        return out

    # --- rows --------------------------------------------------------------------------

    def row(self, d: dict[str, Any], person_keys: Iterable[str] = ROW_PERSON_KEYS,
            kind: str | None = None) -> dict[str, Any]:
        """A sanitised copy of a flat row (state lists such as active workflows).

        A row's keys are an event's `data` fields, so `data.author` hides `author`;
        undotted paths apply as they are. `kind` (one of KINDS) is guessed from the row's
        keys when not given. Like `event`, one row is never left out (see `rows`).
        """
        if self.other_teams is None:
            return self._row(d, self.hidden_fields, self.pseudonymize, tuple(person_keys))
        return self._scoped_rows([d], tuple(person_keys), kind, keep_omitted=True)[0]

    def rows(self, ds: Iterable[dict[str, Any]], person_keys: Iterable[str] = ROW_PERSON_KEYS,
             kind: str | None = None) -> list[dict[str, Any]]:
        """Sanitised copies of rows; other teams' rows per the rule (maybe fewer rows)."""
        keys = tuple(person_keys)
        if self.other_teams is None:
            return [self._row(d, self.hidden_fields, self.pseudonymize, keys) for d in ds]
        return self._scoped_rows(list(ds), keys, kind, keep_omitted=False)

    def _scoped_rows(self, ds: list[dict[str, Any]], keys: tuple[str, ...], kind: str | None,
                     keep_omitted: bool) -> list[dict[str, Any]]:
        scope, other = self.scope, self.other_teams
        assert scope is not None and other is not None
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown row kind {kind!r}; kinds: {', '.join(KINDS)}")
        people = [[d.get(k) for k in {*keys, "found_by"}] for d in ds]
        scope.prefetch(w for d, names in zip(ds, people) if isinstance(w := d.get("workflow_id"), str)
                       and (scope.viewer is None or scope.viewer not in names))
        count = ScopeCount()
        out = []
        for d, names in zip(ds, people):
            wf = d.get("workflow_id") if isinstance(d.get("workflow_id"), str) else None
            if scope.owns(wf, None, names) is not False:
                out.append(self._row(d, self.hidden_fields, self.pseudonymize, keys))
            elif (kind or _row_kind(d)) in other.omit and not keep_omitted:
                count.left_out += 1
            else:
                count.shown_without_names += 1
                out.append(self._row(d, other.hidden_fields, other.pseudonymize, keys))
        self._count(count)
        return out

    def _row(self, d: dict[str, Any], hidden: frozenset[str], pseudo: bool, keys: tuple[str, ...]) -> dict[str, Any]:
        out = dict(d)
        for path in hidden:
            parts = path.split(".")
            out = _drop(out, parts[1:] if parts[0] == "data" and len(parts) > 1 else parts)
        if pseudo:
            out = self._people(out, keys)
        return out

    # --- what was scoped ---------------------------------------------------------------

    def _count(self, count: ScopeCount) -> None:
        assert self.scope is not None
        self.scope.last = count
        self.scope.total = self.scope.total + count

    def prepare(self, items: Iterable[dict[str, Any]]) -> None:
        """Look up, in one batch, the teams of events or rows about to be sanitised one by one
        (a caller that must call `event(s)` per row calls this once per page of rows)."""
        if self.other_teams is None or self.scope is None:
            return
        refs = [_refs(x) for x in items]
        self.scope.prefetch((w for w, _ in refs if w), (d for w, d in refs if d and not w))

    @property
    def last_scoped(self) -> ScopeCount:
        """Rows of other teams in the latest `event(s)`/`row(s)` call (zero without a rule)."""
        return self.scope.last if self.scope is not None and self.other_teams is not None else ScopeCount()

    @property
    def scoped_total(self) -> ScopeCount:
        """Rows of other teams in every call on this sanitizer so far."""
        return self.scope.total if self.scope is not None and self.other_teams is not None else ScopeCount()

    def scope_info(self, count: ScopeCount | None = None) -> dict[str, Any]:
        """What a response says about team scope: `{"teams": "all"}` for a viewer who sees every
        team's rows alike; otherwise the viewer's team, how many rows of other teams were shown
        without names or left out (`count`, or everything so far), and a sentence for people."""
        if self.other_teams is None or self.scope is None:
            return {"teams": "all"}
        c = count if count is not None else self.scoped_total
        return {"teams": "own", "team": self.scope.team, "shown_without_names": c.shown_without_names,
                "left_out": c.left_out, "note": scope_note(c, self.scope.team)}

    def kpi_widgets(self, widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """KPI widgets unchanged (as a new list).

        KPI values are aggregates over many people. The one list-valued KPI,
        `skill_development_areas`, lists defect categories, not people; the developer
        dashboard is computed for the signed-in user only. Nothing here names anyone,
        so there is nothing to hide — revisit if a KPI ever lists people (e.g. a top-N).
        """
        return list(widgets)

    def _people(self, d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        out = d
        for k in keys:
            v = d.get(k)
            if not isinstance(v, str) or not v:
                continue
            if k in MAYBE_AGENT and v.startswith(AGENT_PREFIX):
                continue
            if out is d:
                out = dict(d)
            out[k] = self.pseudonym(v)
        return out


@functools.lru_cache(maxsize=64)
def _split(hidden: frozenset[str]) -> tuple[frozenset[str], tuple[list[str], ...]]:
    """Hidden paths as (fields directly under `data`, every other path split on dots)."""
    parts = [p.split(".") for p in sorted(hidden)]
    return (frozenset(p[1] for p in parts if len(p) == 2 and p[0] == "data"),
            tuple(p for p in parts if not (len(p) == 2 and p[0] == "data")))


def _event_refs(ev: dict[str, Any]) -> tuple[str | None, str | None]:
    data = ev.get("data")
    if not isinstance(data, dict):
        return None, None
    wf, df = data.get("workflow_id"), data.get("defect_id")
    return (wf if isinstance(wf, str) else None), (df if isinstance(df, str) else None)


def _refs(x: dict[str, Any]) -> tuple[str | None, str | None]:
    """(workflow id, defect id) of an event (its `data`) or of a flat row."""
    if isinstance(x.get("data"), dict):
        return _event_refs(x)
    wf, df = x.get("workflow_id"), x.get("defect_id")
    return (wf if isinstance(wf, str) else None), (df if isinstance(df, str) else None)


def _row_kind(d: dict[str, Any]) -> str:
    if "defect_id" in d:
        return "defects"
    if "policy" in d:
        return "violations"
    if "reviewer" in d and "author" not in d:
        return "reviews"
    return "workflows"


def _declared(ev: dict[str, Any]) -> dict[str, Any]:
    """`ev` with only what the event contract declares: free text a producer added under
    another name (`ticket`, `description`, …) does not leave with another team's row."""
    declared = _DECLARED.get(ev.get("type"), _REFS)   # type: ignore[arg-type]
    out = {k: v for k, v in ev.items() if k in _ENVELOPE}
    if isinstance(out.get("data"), dict):
        out["data"] = {k: v for k, v in out["data"].items() if k in declared or k in _REFS}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k in _METADATA}
    return out


def _drop(d: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """`d` without the field at `parts`, copying only the dicts on the way (or `d` itself
    when there is nothing to drop)."""
    head = parts[0]
    if head not in d:
        return d
    if len(parts) == 1:
        out = dict(d)
        del out[head]
        return out
    child = d[head]
    if not isinstance(child, dict):
        return d
    new_child = _drop(child, parts[1:])
    if new_child is child:
        return d
    out = dict(d)
    out[head] = new_child
    return out


def merge(sanitizers: Iterable[Sanitizer]) -> Sanitizer:
    """One sanitizer for a user with several roles: the most permissive role wins, as
    with permissions, row by row. A field is hidden only if every role hides it; names are
    pseudonymised only if every role pseudonymises. Another team's row gets the most
    permissive of the roles' views of it (a role without `other_teams` sees it like any row)."""
    items = list(sanitizers)
    if not items:
        # With no role there is no "most permissive" view; the caller must deny instead.
        raise ValueError("merge needs at least one sanitizer")
    hidden = frozenset.intersection(*(s.hidden_fields for s in items))
    pseudo = all(s.pseudonymize for s in items)
    other: OtherTeams | None = merge_other(
        s.other_teams or OtherTeams(s.hidden_fields, s.pseudonymize, False) for s in items)
    if other == OtherTeams(hidden, pseudo, False):
        other = None                          # other teams' rows look like everyone's: no scope
    keys = {s.secret for s in items if s.pseudonymize or (s.other_teams and s.other_teams.pseudonymize)}
    if len(keys) > 1:
        # Different keys would give one person two pseudonyms on one screen.
        raise ValueError("pseudonymizing sanitizers must share one secret")
    secret = keys.pop() if keys and (pseudo or (other and other.pseudonymize)) else b""
    scope = next((s.scope for s in items if s.other_teams is not None), None) if other else None
    return Sanitizer(hidden, pseudo, secret, other, scope)


__all__ = ["ACTIONS", "AGENT_PREFIX", "KINDS", "OMIT", "PERSON_FIELDS", "PSEUDONYMIZE", "OtherTeams", "Sanitizer",
           "ScopeCount", "TeamScope", "merge", "merge_other", "scope_note"]
