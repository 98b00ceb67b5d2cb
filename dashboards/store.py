"""Dashboards as data in Redis: shared and personal definitions, personal copies, versions,
stars — over the provisioned ones of the definition files (dashboards/provision.py).

Three kinds of dashboard:
- provisioned: from a file (the four role dashboards); a `manage:dashboards` holder may save
  a shared override in Redis, and resetting it brings the file's back; never deleted;
- shared: created with `manage:dashboards`, seen by its owner and by whoever its visibility
  names (permissions, roles, teams, users);
- personal: created by a user (`update:personal_settings`), seen by that user alone.
Any user with `update:personal_settings` may keep a personal copy of any dashboard they can
see: `get` answers the copy first, and resetting the copy brings the shared one back.

Every save is a version (n, at, by, a summary of what changed, the definition); restoring
one saves it again as a new version. Writes are one MULTI/EXEC each, WATCHing what they
read (redis-py retries on a concurrent change), so a save, its version and the id index
change together or not at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

import orjson
import redis

from auth.principal import Principal, authorize
from dashboards.schema import Dashboard, DefinitionError, dump, validate
from data.keys import Keys
from data.timeutil import fmt_ms, now_ms

PROVISIONED, SHARED, PERSONAL = "provisioned", "shared", "personal"
MANAGE = "manage:dashboards"
PERSONAL_SETTINGS = "update:personal_settings"
MAX_VERSIONS = 100                 # per dashboard and per personal copy; older ones are dropped
SYSTEM = "system"                  # the owner of provisioned dashboards (never a person)
_SLUG_MAX = 64
READ_ONLY = ("kind", "personal_copy", "updated_at", "updated_by", "file", "saved_version")   # Found.as_json's


class StoreError(Exception):
    """A request the store refuses; `status` and `code` are the API's answer."""
    status, code = 400, "bad_request"


class NotFound(StoreError):
    """No such dashboard, or one the caller may not see (the two are not told apart)."""
    status, code = 404, "not_found"


class Forbidden(StoreError):
    status, code = 403, "forbidden"


class Conflict(StoreError):
    status, code = 409, "conflict"


@dataclass(frozen=True)
class Found:
    """A dashboard as one caller gets it."""
    dashboard: Dashboard
    kind: str                        # provisioned | shared | personal
    personal_copy: bool              # the caller's personal copy of a provisioned or shared one
    updated_at: str | None = None    # ISO time of the last save (None: a provisioned file never saved over)
    updated_by: str | None = None
    file: str | None = None          # the provisioned file
    saved_version: dict[str, Any] | None = None     # after a write: {"n", "summary"} of the version it made

    def as_json(self) -> dict[str, Any]:
        """The definition and, read-only (a save ignores them), READ_ONLY's fields."""
        out = {**dump(self.dashboard), "kind": self.kind, "personal_copy": self.personal_copy,
               "updated_at": self.updated_at, "updated_by": self.updated_by, "file": self.file}
        if self.saved_version is not None:
            out["saved_version"] = self.saved_version
        return out


@dataclass(frozen=True)
class _Record:
    dashboard: Dashboard
    updated_at: int | None = None
    updated_by: str | None = None
    copy: bool = False

    def body(self) -> bytes:
        return orjson.dumps({"definition": dump(self.dashboard), "updated_at": self.updated_at,
                             "updated_by": self.updated_by, "copy": self.copy})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def summarize(old: Dashboard | None, new: Dashboard) -> str:
    """What changed from `old` to `new`, in a line: "moved exec-cost; added sla-gauge"."""
    if old is None:
        return f"created with {len(new.widgets)} widget{'s' if len(new.widgets) != 1 else ''}"
    parts: list[str] = []
    if old.title != new.title:
        parts.append(f"renamed to {new.title!r}")
    before = {w.id: w for w in old.widgets}
    after = {w.id: w for w in new.widgets}
    groups: dict[str, list[str]] = {"added": [], "removed": [], "moved": [], "resized": [], "changed": []}
    groups["added"] = [i for i in after if i not in before]
    groups["removed"] = [i for i in before if i not in after]
    for i in (i for i in after if i in before):
        a, b = before[i], after[i]
        if (a.position.x, a.position.y) != (b.position.x, b.position.y):
            groups["moved"].append(i)
        if (a.position.width, a.position.height) != (b.position.width, b.position.height):
            groups["resized"].append(i)
        if a.model_dump(exclude={"position"}) != b.model_dump(exclude={"position"}):
            groups["changed"].append(i)
    for verb, ids in groups.items():
        if ids:
            more = f" and {len(ids) - 4} more" if len(ids) > 4 else ""
            parts.append(f"{verb} {', '.join(ids[:4])}{more}")
    if not groups["added"] and not groups["removed"] and [w.id for w in old.widgets if w.id in after] \
            != [w.id for w in new.widgets if w.id in before]:
        parts.append("reordered widgets")
    other = [f for f in Dashboard.model_fields if f not in ("title", "widgets")
             and getattr(old, f) != getattr(new, f)]
    if other:
        parts.append(f"changed {', '.join(other)}")
    return "; ".join(parts) or "no change"


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return (s or "dashboard")[:_SLUG_MAX]


def parse(doc: Any, origin: str, ident: str | None = None) -> Dashboard:
    """A definition from a request or a caller: validated, its id made `ident` when given
    (a body without an id takes the path's; another id is an error on the field `id`), and
    a new definition without an id gets one from its title."""
    if isinstance(doc, Dashboard):
        doc = dump(doc)
    if isinstance(doc, dict):
        # What `Found.as_json` adds to a definition is read-only: a GET's answer saves as is.
        doc = {k: v for k, v in doc.items() if k not in READ_ONLY}
        if ident is not None:
            given = doc.get("id")
            if given not in (None, ident):
                raise DefinitionError(origin, [{"widget": None, "field": "id",
                                                "message": f"must be {ident!r} (the dashboard's id), not {given!r}"}])
            doc["id"] = ident
        elif "id" not in doc and isinstance(doc.get("title"), str):
            doc["id"] = _slug(doc["title"])
    return validate(doc, origin)


def exported(dashboard: Dashboard) -> dict[str, Any]:
    """A definition to hand to someone else: without who owns it and who may see it."""
    out = dump(dashboard)
    out.pop("owner", None)
    out.pop("visibility", None)
    return out


class DashboardStore:
    """`provisioned`: a dashboards.provision.Provisioner (or a plain {id: Dashboard});
    `team_of(user)`: the user's team, for visibility by team (data.engine.Engine.team_of)."""

    def __init__(self, r: redis.Redis, keys: Keys, provisioned: Any = None,
                 team_of: Callable[[str], str | None] | None = None) -> None:
        self.r = r
        self.k = keys
        self.provisioned = provisioned
        self.team_of = team_of

    # --- provisioned files -------------------------------------------------------------------

    def _files(self) -> dict[str, Dashboard]:
        p = self.provisioned
        if p is None:
            return {}
        return p.dashboards() if hasattr(p, "dashboards") else dict(p)

    def _file_of(self, ident: str) -> str | None:
        p = self.provisioned
        return p.file_of(ident) if hasattr(p, "file_of") else None

    def provision_errors(self) -> list[dict[str, str]]:
        """The refused definition files: [{"file", "message"}] (their previous version is in use)."""
        p = self.provisioned
        return p.errors() if hasattr(p, "errors") else []

    # --- who sees what -------------------------------------------------------------------------

    def visible(self, dashboard: Dashboard, principal: Principal | None, provisioned: bool = False) -> bool:
        """Owner (never for a provisioned one: "system" is nobody), or holds one of its
        visibility permissions, roles, teams or user names."""
        if principal is None:
            return False
        v = dashboard.visibility
        if not provisioned and dashboard.owner == principal.name:
            return True
        if any(authorize(principal, p) for p in v.permissions):
            return True
        if set(v.roles) & set(principal.roles) or principal.name in v.users:
            return True
        if v.teams and self.team_of is not None:
            return self.team_of(principal.name) in v.teams
        return False

    @staticmethod
    def _need(principal: Principal | None, permission: str, what: str) -> None:
        if not authorize(principal, permission):
            raise Forbidden(f"{what} needs the permission {permission}")

    # --- reading -----------------------------------------------------------------------------

    def _record(self, raw: Any, origin: str) -> _Record | None:
        """A stored record; one that no longer validates (the schema moved on) is skipped."""
        if not raw:
            return None
        try:
            doc = orjson.loads(raw)
            return _Record(validate(doc["definition"], origin), doc.get("updated_at"), doc.get("updated_by"),
                           bool(doc.get("copy")))
        except (ValueError, KeyError, TypeError):
            return None

    def _base(self, ident: str, shared_raw: Any = None, files: dict[str, Dashboard] | None = None
              ) -> tuple[_Record, str] | None:
        """The shared definition of `ident` (an override before its file) and its kind."""
        files = self._files() if files is None else files
        raw = self.r.hget(self.k.dash_shared, ident) if shared_raw is None else shared_raw
        rec = self._record(raw, f"shared dashboard {ident!r}")
        if rec is not None:
            return rec, PROVISIONED if ident in files else SHARED
        if ident in files:
            return _Record(files[ident]), PROVISIONED
        return None

    def _found(self, rec: _Record, kind: str, copy: bool) -> Found:
        return Found(rec.dashboard, kind, copy, fmt_ms(rec.updated_at) if rec.updated_at else None,
                     rec.updated_by, self._file_of(rec.dashboard.id) if kind == PROVISIONED else None)

    def get(self, ident: str, principal: Principal | None) -> Found | None:
        """The caller's personal copy (or personal dashboard) of `ident` if any, else the
        shared/provisioned one if the caller may see it, else None."""
        if principal is None:
            return None
        own = self._record(self.r.hget(self.k.dash_user(principal.name), ident), f"dashboard {ident!r}")
        base = self._base(ident)
        if own is not None:
            if own.copy and base is not None:
                return self._found(own, base[1], True)
            return self._found(own, PERSONAL, own.copy)
        if base is not None and self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
            return self._found(base[0], base[1], False)
        return None

    def list(self, principal: Principal | None, q: str | None = None) -> list[dict[str, Any]]:
        """Summaries of every dashboard the caller may see, starred first, then by title;
        `q` keeps those whose title, id or a tag holds it (case-insensitive)."""
        if principal is None:
            return []
        with self.r.pipeline(transaction=False) as p:
            p.hgetall(self.k.dash_shared)
            p.hgetall(self.k.dash_user(principal.name))
            p.smembers(self.k.dash_stars(principal.name))
            shared_raw, own_raw, stars_raw = p.execute()
        files = self._files()
        stars = {_text(s) for s in stars_raw}
        shared = {_text(k): v for k, v in shared_raw.items()}
        found: dict[str, Found] = {}
        for ident in sorted(set(files) | set(shared)):
            base = self._base(ident, shared.get(ident, b""), files)
            if base is not None and self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
                found[ident] = self._found(base[0], base[1], False)
        for key, raw in own_raw.items():
            ident = _text(key)
            rec = self._record(raw, f"dashboard {ident!r}")
            if rec is None:
                continue
            base_kind = found[ident].kind if ident in found else None
            found[ident] = self._found(rec, base_kind if rec.copy and base_kind else PERSONAL, rec.copy)
        out = [self._summary(f, f.dashboard.id in stars) for f in found.values()]
        if q:
            needle = q.strip().lower()
            out = [s for s in out if needle in s["title"].lower() or needle in s["id"]
                   or any(needle in t.lower() for t in s["tags"])]
        return sorted(out, key=lambda s: (not s["starred"], s["title"].lower(), s["id"]))

    @staticmethod
    def _summary(f: Found, starred: bool) -> dict[str, Any]:
        d = f.dashboard
        return {"id": d.id, "title": d.title, "description": d.description, "owner": d.owner, "kind": f.kind,
                "starred": starred, "personal_copy": f.personal_copy, "updated_at": f.updated_at,
                "updated_by": f.updated_by, "tags": list(d.tags), "widgets": len(d.widgets)}

    # --- writing -----------------------------------------------------------------------------

    def _commit(self, watch: Iterable[str], fn: Callable[[Any], Any]) -> Any:
        """Run `fn(pipe)` under WATCH of `watch` — every key it writes: it reads (immediate),
        calls pipe.multi(), queues its writes and returns the result; retried when a watched
        key changed. All or nothing: each key's type is checked first (EXEC would run the
        other commands when one fails on a wrong type), and EXEC's replies are checked."""
        keys = list(watch)

        def run(pipe: Any) -> tuple[Any, list[Any]]:
            for key in keys:
                found, wanted = _text(pipe.type(key)), _key_type(key)
                if found not in ("none", wanted):
                    raise redis.ResponseError(f"WRONGTYPE {key} is a {found}, not a {wanted}: nothing written")
            return _with_replies(pipe, fn)
        result, replies = self.r.transaction(run, *keys, value_from_callable=True)
        bad = [r for r in replies or () if isinstance(r, Exception)]
        if bad:
            raise bad[0]
        return result

    def _push_version(self, pipe: Any, key: str, last: Any, by: str, summary: str, dashboard: Dashboard,
                      at: int) -> dict[str, Any]:
        """Queue version n = last + 1 (call after pipe.multi(); `last` read before it)."""
        n = (orjson.loads(last)["n"] if last else 0) + 1
        pipe.rpush(key, orjson.dumps({"n": n, "at": at, "by": by, "summary": summary,
                                      "definition": dump(dashboard)}))
        pipe.ltrim(key, -MAX_VERSIONS, -1)
        return {"n": n, "summary": summary}

    def _save(self, hash_key: str, ident: str, record: _Record, versions_key: str, summary_from: Dashboard | None,
              by: str, summary: str | None = None, extra: Callable[[Any], None] | None = None,
              delete_from: str | None = None) -> dict[str, Any]:
        def fn(pipe: Any) -> dict[str, Any]:
            last = pipe.lindex(versions_key, -1)
            pipe.multi()
            pipe.hset(hash_key, ident, record.body())
            if delete_from is not None:
                pipe.hdel(delete_from, ident)
            version = self._push_version(pipe, versions_key, last, by,
                                         summary or summarize(summary_from, record.dashboard), record.dashboard,
                                         record.updated_at or now_ms())
            if extra is not None:
                extra(pipe)
            return version
        return self._commit([versions_key, hash_key, *([delete_from] if delete_from else []),
                             *([self.k.dash_ids] if extra else [])], fn)

    def save_personal(self, ident: str, principal: Principal | None, doc: Any, origin: str = "definition",
                      summary: str | None = None) -> Found:
        """Save the caller's personal copy of a dashboard they can see, or their own personal
        dashboard (`update:personal_settings`)."""
        self._need(principal, PERSONAL_SETTINGS, "saving a personal dashboard")
        assert principal is not None
        user_key = self.k.dash_user(principal.name)
        own = self._record(self.r.hget(user_key, ident), f"dashboard {ident!r}")
        base = self._base(ident)
        copy = own.copy if own is not None else True
        if own is None and (base is None or not self.visible(base[0].dashboard, principal, base[1] == PROVISIONED)):
            raise NotFound(f"no dashboard {ident!r}")
        dashboard = parse(doc, origin, ident)
        if copy and base is not None:      # a copy keeps who owns and who sees the shared one
            dashboard = dashboard.model_copy(update={"owner": base[0].dashboard.owner,
                                                     "visibility": base[0].dashboard.visibility})
        elif not copy:                     # personal: the caller's, seen by nobody else
            dashboard = _personal(dashboard, principal.name)
        previous = own.dashboard if own is not None else base[0].dashboard if base is not None else None
        record = _Record(dashboard, now_ms(), principal.name, copy)
        versions = self.k.dash_versions(ident, principal.name if copy else None)
        version = self._save(user_key, ident, record, versions, previous, principal.name, summary)
        return replace(self._found(record, base[1] if copy and base is not None else PERSONAL, copy),
                       saved_version=version)

    def reset_personal(self, ident: str, principal: Principal | None) -> None:
        """Drop the caller's personal copy (and its versions): the shared one shows again."""
        if principal is None:
            raise NotFound(f"no dashboard {ident!r}")
        user_key = self.k.dash_user(principal.name)
        own = self._record(self.r.hget(user_key, ident), f"dashboard {ident!r}")
        if own is None or not own.copy:
            raise NotFound(f"no personal copy of {ident!r}")

        def fn(pipe: Any) -> None:
            pipe.multi()
            pipe.hdel(user_key, ident)
            pipe.delete(self.k.dash_versions(ident, principal.name))
        self._commit([user_key], fn)

    def save_shared(self, ident: str, principal: Principal | None, doc: Any, origin: str = "definition",
                    summary: str | None = None) -> Found:
        """Save the shared definition (`manage:dashboards`): of a shared dashboard, over a
        provisioned one (an override in Redis), or of the caller's own personal dashboard,
        which becomes shared (seen by whom its visibility names)."""
        self._need(principal, MANAGE, "saving a shared dashboard")
        assert principal is not None
        user_key = self.k.dash_user(principal.name)
        own = self._record(self.r.hget(user_key, ident), f"dashboard {ident!r}")
        base = self._base(ident)
        if own is not None and not own.copy:            # sharing one's personal dashboard
            previous, kind, owner = own.dashboard, SHARED, principal.name
        elif base is not None and self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
            previous, kind = base[0].dashboard, base[1]
            owner = SYSTEM if kind == PROVISIONED else base[0].dashboard.owner
        else:
            raise NotFound(f"no dashboard {ident!r}")
        dashboard = parse(doc, origin, ident).model_copy(update={"owner": owner})
        if kind == PROVISIONED and not any(dashboard.visibility.model_dump().values()):
            # Nobody owns a provisioned dashboard: with no visibility nobody could open it.
            dashboard = dashboard.model_copy(update={"visibility": previous.visibility})
        record = _Record(dashboard, now_ms(), principal.name)

        def extra(pipe: Any) -> None:
            pipe.hset(self.k.dash_ids, ident, "")
        moving = own is not None and not own.copy
        version = self._save(self.k.dash_shared, ident, record, self.k.dash_versions(ident), previous, principal.name,
                   summary if summary or not moving else f"shared; {summarize(previous, dashboard)}",
                   extra if moving else None, user_key if moving else None)
        return replace(self._found(record, kind, False), saved_version=version)

    def reset_shared(self, ident: str, principal: Principal | None) -> Found:
        """A provisioned dashboard's shared override goes: its file's definition is back (a
        new version says so)."""
        self._need(principal, MANAGE, "resetting a shared dashboard")
        base = self._base(ident)
        if base is None or not self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
            raise NotFound(f"no dashboard {ident!r}")
        files = self._files()
        if base[1] != PROVISIONED or base[0].updated_at is None:
            raise Conflict(f"{ident!r} is not a provisioned dashboard saved over; nothing to reset")
        assert principal is not None
        original = files[ident]
        versions = self.k.dash_versions(ident)

        def fn(pipe: Any) -> dict[str, Any]:
            last = pipe.lindex(versions, -1)
            pipe.multi()
            pipe.hdel(self.k.dash_shared, ident)
            return self._push_version(pipe, versions, last, principal.name,
                                      f"reset to {self._file_of(ident) or 'the provisioned file'}; "
                                      f"{summarize(base[0].dashboard, original)}", original, now_ms())
        version = self._commit([versions, self.k.dash_shared], fn)
        return replace(self._found(_Record(original), PROVISIONED, False), saved_version=version)

    def _free_id(self, pipe: Any, wanted: str) -> str:
        files = self._files()
        for i in range(1, 10_000):
            suffix = "" if i == 1 else f"-{i}"
            ident = wanted[:_SLUG_MAX - len(suffix)] + suffix
            if ident not in files and not pipe.hexists(self.k.dash_ids, ident) \
                    and not pipe.hexists(self.k.dash_shared, ident):
                return ident
        raise Conflict(f"no free id like {wanted!r}")

    def create(self, principal: Principal | None, doc: Any, shared: bool = False, origin: str = "definition",
               summary: str | None = None) -> Found:
        """A new dashboard: personal (`update:personal_settings`; only the caller sees it,
        whatever its visibility said) or shared (`manage:dashboards`). Its id is the
        definition's if free, else the first free of id-2, id-3 ... (ids are unique)."""
        self._need(principal, MANAGE if shared else PERSONAL_SETTINGS,
                   "creating a shared dashboard" if shared else "creating a personal dashboard")
        assert principal is not None
        dashboard = parse(doc, origin)
        dashboard = dashboard.model_copy(update={"owner": principal.name}) if shared \
            else _personal(dashboard, principal.name)
        hash_key = self.k.dash_shared if shared else self.k.dash_user(principal.name)

        def fn(pipe: Any) -> tuple[_Record, dict[str, Any]]:
            ident = self._free_id(pipe, dashboard.id)
            record = _Record(dashboard.model_copy(update={"id": ident}), now_ms(), principal.name)
            pipe.multi()
            pipe.hset(self.k.dash_ids, ident, "" if shared else principal.name)
            pipe.hset(hash_key, ident, record.body())
            pipe.delete(self.k.dash_versions(ident))
            return record, self._push_version(pipe, self.k.dash_versions(ident), None, principal.name,
                                              summary or summarize(None, record.dashboard), record.dashboard,
                                              record.updated_at or 0)
        record, version = self._commit([self.k.dash_ids, self.k.dash_shared, hash_key], fn)
        return replace(self._found(record, SHARED if shared else PERSONAL, False), saved_version=version)

    def delete(self, ident: str, principal: Principal | None) -> str:
        """Delete the caller's personal dashboard, or a shared one (`manage:dashboards`).
        A provisioned dashboard cannot be deleted (Conflict). Answers the kind deleted."""
        if principal is None:
            raise NotFound(f"no dashboard {ident!r}")
        user_key = self.k.dash_user(principal.name)
        own = self._record(self.r.hget(user_key, ident), f"dashboard {ident!r}")
        if own is not None and not own.copy:
            hash_key, kind = user_key, PERSONAL
        else:
            base = self._base(ident)
            if base is None or not self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
                if own is not None:          # a copy of a dashboard gone: it goes too
                    self.reset_personal(ident, principal)
                    return PERSONAL
                raise NotFound(f"no dashboard {ident!r}")
            if base[1] == PROVISIONED:
                raise Conflict(f"{ident!r} is provisioned from {self._file_of(ident) or 'a file'} and cannot be "
                               f"deleted; DELETE ?scope=shared resets a shared override, ?scope=personal your copy")
            self._need(principal, MANAGE, "deleting a shared dashboard")
            hash_key, kind = self.k.dash_shared, SHARED

        def fn(pipe: Any) -> None:
            pipe.multi()
            pipe.hdel(hash_key, ident)
            pipe.hdel(self.k.dash_ids, ident)
            pipe.delete(self.k.dash_versions(ident))
            pipe.srem(self.k.dash_stars(principal.name), ident)
        self._commit([hash_key, self.k.dash_ids, self.k.dash_stars(principal.name)], fn)
        return kind

    # --- versions ------------------------------------------------------------------------------

    def _history(self, ident: str, principal: Principal | None, scope: str | None) -> tuple[str, str]:
        """Which history `ident` has for the caller: ("personal" | "shared", its key)."""
        if principal is None:
            raise NotFound(f"no dashboard {ident!r}")
        own = self._record(self.r.hget(self.k.dash_user(principal.name), ident), f"dashboard {ident!r}")
        if own is not None and not own.copy:
            return PERSONAL, self.k.dash_versions(ident)
        if scope == PERSONAL or (scope is None and own is not None):
            if own is None:
                raise NotFound(f"no personal copy of {ident!r}")
            return PERSONAL, self.k.dash_versions(ident, principal.name)
        base = self._base(ident)
        if base is None or not self.visible(base[0].dashboard, principal, base[1] == PROVISIONED):
            raise NotFound(f"no dashboard {ident!r}")
        return SHARED, self.k.dash_versions(ident)

    def versions(self, ident: str, principal: Principal | None, scope: str | None = None) -> dict[str, Any]:
        """{"scope", "versions": [{n, at, by, summary, widgets}]} newest first: of the
        caller's personal copy (if they have one, or scope="personal") or of the shared
        definition (scope="shared")."""
        which, key = self._history(ident, principal, scope)
        rows = [orjson.loads(v) for v in self.r.lrange(key, 0, -1)]
        return {"id": ident, "scope": which, "versions": [
            {"n": v["n"], "at": fmt_ms(v["at"]), "by": v["by"], "summary": v["summary"],
             "title": v["definition"].get("title"), "widgets": len(v["definition"].get("widgets") or [])}
            for v in reversed(rows)]}

    def version(self, ident: str, n: int, principal: Principal | None, scope: str | None = None
                ) -> tuple[str, dict[str, Any]]:
        which, key = self._history(ident, principal, scope)
        for raw in self.r.lrange(key, 0, -1):
            v = orjson.loads(raw)
            if v["n"] == n:
                return which, v
        raise NotFound(f"no version {n} of {ident!r}")

    def restore(self, ident: str, n: int, principal: Principal | None, scope: str | None = None) -> Found:
        """Version n saved again, as a new version ("restored version 3; moved …")."""
        which, v = self.version(ident, n, principal, scope)
        current = self.get(ident, principal) if which == PERSONAL else None
        if which == SHARED:
            base = self._base(ident)
            current_def = base[0].dashboard if base else None
        else:
            current_def = current.dashboard if current else None
        dashboard = parse(v["definition"], f"version {n} of {ident!r}", ident)
        summary = f"restored version {n}; {summarize(current_def, dashboard)}"
        if which == PERSONAL:
            return self.save_personal(ident, principal, dashboard, summary=summary)
        return self.save_shared(ident, principal, dashboard, summary=summary)

    # --- stars ---------------------------------------------------------------------------------

    def star(self, ident: str, principal: Principal | None, on: bool = True) -> bool:
        """Star (or unstar) a dashboard the caller can see; answers the new state."""
        if principal is None or self.get(ident, principal) is None:
            raise NotFound(f"no dashboard {ident!r}")
        key = self.k.dash_stars(principal.name)
        (self.r.sadd if on else self.r.srem)(key, ident)
        return on

    def starred(self, principal: Principal | None) -> set[str]:
        if principal is None:
            return set()
        return {_text(s) for s in self.r.smembers(self.k.dash_stars(principal.name))}


def _key_type(key: str) -> str:
    """The Redis type of a {p}:dash:* key (data/keys.py): versions are lists, stars sets."""
    return "list" if ":dash:ver:" in key else "set" if ":dash:stars:" in key else "hash"


def _personal(dashboard: Dashboard, user: str) -> Dashboard:
    return dashboard.model_copy(update={"owner": user, "visibility": type(dashboard.visibility)()})


def _with_replies(pipe: Any, fn: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """Run `fn` then EXEC here (not in redis-py's transaction()) to keep EXEC's replies."""
    result = fn(pipe)
    replies = pipe.execute(raise_on_error=False)
    return result, replies
