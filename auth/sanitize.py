"""Per-role sanitisation of what a dashboard shows (seed §8.2, DataSanitizer).

A role's `Sanitizer` removes fields the role may not see and, for roles that see people
only as numbers, replaces person names with stable pseudonyms: the same developer is the
same `user-…` everywhere (so trends and drill-downs still line up), but the name cannot be
recovered without the server's secret. Free text (titles, messages, configuration values)
is not scanned; hide such fields when a role must not see them.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Iterable

# Fields of an event's `data` that hold a person's name.
PERSON_FIELDS = ("author", "reviewer", "user", "changed_by")
# A reviewer is an agent or a colleague (EVENTS.md); agents are not people.
AGENT_PREFIX = "qms-"
MAYBE_AGENT = frozenset({"reviewer"})


@dataclass(frozen=True)
class Sanitizer:
    """What one role (or one user's roles, see `merge`) may see.

    `hidden_fields` are dotted paths into an event (`data.author`, `metadata.correlation_id`,
    `source`). `secret` keys the pseudonyms; it is left out of repr so it never lands in logs.
    """

    hidden_fields: frozenset[str] = frozenset()
    pseudonymize: bool = False
    secret: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        # Accept any iterable of paths; a plain set would make the instance unhashable.
        object.__setattr__(self, "hidden_fields", frozenset(self.hidden_fields))
        if any(not p or "" in p.split(".") for p in self.hidden_fields):
            raise ValueError(f"bad field path in {sorted(self.hidden_fields)}")
        if self.pseudonymize and not self.secret:
            # HMAC under an empty key is a plain hash: anyone could test a guessed name.
            raise ValueError("pseudonymize needs a secret")

    @classmethod
    def none(cls) -> Sanitizer:
        """A sanitizer that changes nothing (roles allowed to see everything)."""
        return cls()

    @property
    def is_noop(self) -> bool:
        return not self.hidden_fields and not self.pseudonymize

    def pseudonym(self, name: str) -> str:
        """A stable, non-reversible stand-in for `name`."""
        return "user-" + hmac.new(self.secret, name.encode(), hashlib.sha256).hexdigest()[:10]

    def event(self, ev: dict[str, Any]) -> dict[str, Any]:
        """A sanitised copy of an EVENTS.md event; `ev` is left untouched.

        Only the dicts on a changed path are copied; untouched nested values are shared
        with `ev`, so treat the result as read-only (copying every event of a drill-down
        in full would cost more than the rest of the request).
        """
        out = dict(ev)
        for path in self.hidden_fields:
            out = _drop(out, path.split("."))
        if self.pseudonymize and isinstance(out.get("data"), dict):
            out["data"] = self._people(out["data"], PERSON_FIELDS)
        return out

    def row(self, d: dict[str, Any], person_keys: Iterable[str] = ("author", "reviewer", "user")) -> dict[str, Any]:
        """A sanitised copy of a flat row (state lists such as active workflows).

        A row's keys are an event's `data` fields, so `data.author` hides `author`;
        undotted paths apply as they are.
        """
        out = dict(d)
        for path in self.hidden_fields:
            parts = path.split(".")
            out = _drop(out, parts[1:] if parts[0] == "data" and len(parts) > 1 else parts)
        if self.pseudonymize:
            out = self._people(out, tuple(person_keys))
        return out

    def rows(self, ds: Iterable[dict[str, Any]], person_keys: Iterable[str] = ("author", "reviewer", "user")
             ) -> list[dict[str, Any]]:
        keys = tuple(person_keys)
        return [self.row(d, keys) for d in ds]

    def events(self, evs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.event(ev) for ev in evs]

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
    with permissions. A field is hidden only if every role hides it; names are
    pseudonymised only if every role pseudonymises."""
    items = list(sanitizers)
    if not items:
        # With no role there is no "most permissive" view; the caller must deny instead.
        raise ValueError("merge needs at least one sanitizer")
    hidden = frozenset.intersection(*(s.hidden_fields for s in items))
    pseudo = all(s.pseudonymize for s in items)
    secret = b""
    if pseudo:
        keys = {s.secret for s in items}
        if len(keys) != 1:
            # Different keys would give one person two pseudonyms on one screen.
            raise ValueError("pseudonymizing sanitizers must share one secret")
        secret = keys.pop()
    return Sanitizer(hidden, pseudo, secret)


__all__ = ["AGENT_PREFIX", "PERSON_FIELDS", "Sanitizer", "merge"]
