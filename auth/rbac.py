"""Roles, permissions and per-role sanitization, loaded from YAML (config/rbac.yaml).

The file is security configuration, so loading is strict: an unknown key, an undeclared
permission, a role without a permissions list or without a sanitization entry, a team
scope that does not decide every data kind, or a duplicated key is refused with a message
naming the file and what is wrong. A typo must stop the app from starting rather than
silently grant or deny access.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from auth.sanitize import ACTIONS, KINDS, OMIT, OtherTeams, merge_other

DEFAULT_RBAC_PATH = Path(__file__).resolve().parents[1] / "config" / "rbac.yaml"

# Dashboard id (URL, API path, WebSocket channel) -> the permission that opens it.
DASHBOARD_PERMISSION: dict[str, str] = {
    "executive": "view:executive_dashboard",
    "operational": "view:operational_dashboard",
    "qa": "view:qa_dashboard",
    "developer": "view:developer_dashboard",
}

# The person fields that `pseudonymize_authors` covers.
AUTHOR_FIELDS: tuple[str, ...] = ("data.author", "data.reviewer")

_PERMISSION_RE = re.compile(r"[a-z_]+:[a-z_]+")
_ROLE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_TOP_KEYS = {"permissions", "roles", "sanitization"}
_ROLE_KEYS = {"permissions", "description"}
_SANITIZATION_KEYS = {"hidden_fields", "pseudonymize_authors", "other_teams"}
_OTHER_TEAMS_KEYS = {*KINDS, "free_text"}


class Role(str, Enum):
    """The roles the shipped file defines; deployments may add their own in YAML."""

    EXECUTIVE = "executive"
    QA_LEAD = "qa_lead"
    DEVELOPER = "developer"
    OPERATIONS = "operations"
    ADMIN = "admin"
    PRODUCER = "producer"


class RBACError(ValueError):
    """The RBAC file cannot be used; the message names the file and the offending entry."""


@dataclass(frozen=True)
class RoleSanitization:
    """What a role may not see of an event: dotted paths removed, whether people are
    pseudonymised, and how other teams' rows leave (None: like every other row)."""

    hidden_fields: frozenset[str] = frozenset()
    pseudonymize_authors: bool = True
    other_teams: OtherTeams | None = None

    def as_other(self) -> OtherTeams:
        """This role's view of another team's row."""
        return self.other_teams or OtherTeams(self.hidden_fields, self.pseudonymize_authors, False)


@dataclass(frozen=True)
class RBAC:
    roles: dict[str, frozenset[str]]
    permissions: dict[str, str]                    # permission -> description
    sanitization: dict[str, RoleSanitization]

    def permissions_for(self, roles: Iterable[str]) -> frozenset[str]:
        """The union of the roles' permissions; a role the file does not know grants nothing."""
        granted: set[str] = set()
        for role in _role_names(roles):
            granted |= self.roles.get(role, frozenset())
        return frozenset(granted)

    def allows(self, roles: Iterable[str], permission: str) -> bool:
        return permission in self.permissions_for(roles)

    def sanitization_for(self, roles: Iterable[str]) -> RoleSanitization:
        """The most permissive view among the known roles (like permissions, roles add up).

        No known role at all gets the most restrictive view any role has, so a stale role
        name never reveals more than the file allows anyone.

        Other teams' rows get, row by row, the most permissive view any of the roles has of
        them: a role without `other_teams` sees them like any row (so qa_lead + developer
        names every team; operations + developer pseudonymises other teams, as both do).
        """
        known = [self.sanitization[r] for r in _role_names(roles) if r in self.sanitization]
        if not known:
            every = list(self.sanitization.values())
            hidden: frozenset[str] = frozenset().union(*(s.hidden_fields for s in every))
            scoped = [s.other_teams for s in every if s.other_teams is not None]
            other = OtherTeams(hidden.union(*(o.hidden_fields for o in scoped)), True, True,
                               frozenset().union(*(o.omit for o in scoped))) if scoped else None
            return RoleSanitization(hidden, True, other)
        base = RoleSanitization(frozenset.intersection(*(s.hidden_fields for s in known)),
                                all(s.pseudonymize_authors for s in known))
        other = merge_other(s.as_other() for s in known)
        return RoleSanitization(base.hidden_fields, base.pseudonymize_authors,
                                None if other == base.as_other() else other)


def _role_names(roles: Iterable[str]) -> list[str]:
    # A bare string would otherwise be iterated character by character.
    if isinstance(roles, str):
        return [roles.value if isinstance(roles, Enum) else roles]
    return [r.value if isinstance(r, Enum) else r for r in roles]


def load_rbac(path: str | Path = DEFAULT_RBAC_PATH) -> RBAC:
    """Read and validate an RBAC file; raises RBACError naming the file and the problem."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RBACError(f"{where}: cannot read RBAC file: {exc.strerror or exc}") from None
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise RBACError(f"{where}: invalid YAML: {exc}") from None
    return parse_rbac(doc, where)


def parse_rbac(doc: Any, where: str = "<rbac>") -> RBAC:
    """Validate an already parsed RBAC document; `where` names its source in errors."""
    top = _mapping(doc, where, "top level")
    _no_unknown_keys(top, _TOP_KEYS, where, "top level")
    for key in ("permissions", "roles", "sanitization"):
        if key not in top:
            raise RBACError(f"{where}: missing top-level section {key!r}")

    permissions: dict[str, str] = {}
    for name, description in _mapping(top["permissions"], where, "permissions").items():
        if not isinstance(name, str) or not _PERMISSION_RE.fullmatch(name):
            raise RBACError(f"{where}: permissions: {name!r} is not a permission name like 'view:alerts'")
        if not isinstance(description, str) or not description.strip():
            raise RBACError(f"{where}: permissions: {name!r} needs a one-line description")
        permissions[name] = description.strip()

    roles: dict[str, frozenset[str]] = {}
    for role, body in _mapping(top["roles"], where, "roles").items():
        if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
            raise RBACError(f"{where}: roles: {role!r} is not a role name (lower case, digits, _)")
        spec = _mapping(body, where, f"role {role!r}")
        _no_unknown_keys(spec, _ROLE_KEYS, where, f"role {role!r}")
        granted = spec.get("permissions")
        if not isinstance(granted, list) or not granted:
            raise RBACError(f"{where}: role {role!r}: 'permissions' must be a non-empty list")
        for permission in granted:
            if permission not in permissions:
                raise RBACError(f"{where}: role {role!r}: unknown permission {permission!r} "
                                f"(declare it under 'permissions:')")
        roles[role] = frozenset(granted)
    if not roles:
        raise RBACError(f"{where}: roles: no role defined")

    sanitization: dict[str, RoleSanitization] = {}
    for role, body in _mapping(top["sanitization"], where, "sanitization").items():
        if role not in roles:
            raise RBACError(f"{where}: sanitization: unknown role {role!r}")
        spec = _mapping(body, where, f"sanitization of role {role!r}")
        _no_unknown_keys(spec, _SANITIZATION_KEYS, where, f"sanitization of role {role!r}")
        hidden = spec.get("hidden_fields", [])
        if not isinstance(hidden, list) or not all(isinstance(f, str) and _FIELD_RE.fullmatch(f) for f in hidden):
            raise RBACError(f"{where}: sanitization of role {role!r}: 'hidden_fields' must be a list of "
                            f"dotted field paths like 'data.author'")
        pseudonymize = spec.get("pseudonymize_authors")
        if not isinstance(pseudonymize, bool):
            raise RBACError(f"{where}: sanitization of role {role!r}: 'pseudonymize_authors' must be true or false")
        other = _other_teams(spec["other_teams"], where, role, frozenset(hidden)) if "other_teams" in spec else None
        sanitization[role] = RoleSanitization(frozenset(hidden), pseudonymize, other)
    # Fail closed: a role added without deciding what it may see is a mistake, not a default.
    for role in roles:
        if role not in sanitization:
            raise RBACError(f"{where}: sanitization: role {role!r} has no entry")

    return RBAC(roles, permissions, sanitization)


def _other_teams(value: Any, where: str, role: str, hidden: frozenset[str]) -> OtherTeams:
    """A role's `other_teams:`: every data kind decided (pseudonymize or omit), and the free
    text removed from another team's row on top of the role's hidden fields."""
    what = f"sanitization of role {role!r}: other_teams"
    spec = _mapping(value, where, what)
    _no_unknown_keys(spec, _OTHER_TEAMS_KEYS, where, what)
    missing = [k for k in KINDS if k not in spec]
    if missing:
        raise RBACError(f"{where}: {what}: decide every data kind; missing {', '.join(map(repr, missing))}")
    for kind in KINDS:
        if spec[kind] not in ACTIONS:
            raise RBACError(f"{where}: {what}: {kind!r} must be one of {', '.join(ACTIONS)}, not {spec[kind]!r}")
    free = spec.get("free_text")
    if not isinstance(free, list) or not all(isinstance(f, str) and _FIELD_RE.fullmatch(f) for f in free):
        raise RBACError(f"{where}: {what}: 'free_text' must be a list of dotted field paths like 'data.title'")
    return OtherTeams(hidden | frozenset(free), True, True, frozenset(k for k in KINDS if spec[k] == OMIT))


def _mapping(value: Any, where: str, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, dict):
        raise RBACError(f"{where}: {what} must be a mapping")
    return value


def _no_unknown_keys(value: Mapping[Any, Any], allowed: set[str], where: str, what: str) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise RBACError(f"{where}: {what}: unknown key(s) {', '.join(map(repr, unknown))} "
                        f"(allowed: {', '.join(sorted(allowed))})")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would keep the last one silently, so a
    role pasted twice would lose its first definition without anyone noticing."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:          # unhashable key: construct_mapping reports it below
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
