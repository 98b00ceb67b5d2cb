"""User accounts (with their server-side sign-ins, data/sessions.py) and named API tokens, stored in Redis.

The only module that reads or writes these keys. Passwords are kept as Argon2id hashes
(auth/passwords.py; older scrypt ones are hashed again at their next sign-in) and API token
secrets as SHA-256 digests; neither clear text is ever stored,
logged or returned. Which roles exist is the RBAC file's business (auth/rbac.py): this
module only checks that role names are well formed.
"""
from __future__ import annotations

import builtins
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import redis

from auth import passwords
from auth.offload import off_loop
from data.keys import Keys
from data.sessions import SID_RE, SessionStore, SignIn, digest, to_sign_in
from data.timeutil import now_ms

NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
ROLE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024              # a hash's cost grows with input; nobody types more
DEFAULT_HASH_METHOD = passwords.DEFAULT_METHOD      # Argon2id, 19 MiB, 2 passes, 1 lane
TOKEN_ID_RE = re.compile(r"[0-9a-f]{16}")
TOKEN_RE = re.compile(r"qms_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
LAST_USED_EVERY_MS = 60_000      # a busy producer would otherwise write on every request


_REHASH_LUA = """
if redis.call('HGET', KEYS[1], 'pw') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'pw', ARGV[2])
  return 1
end
return 0
"""


class UserError(ValueError):
    """A request the account stores refuse; the message is fit to show an administrator."""


class UnknownUser(UserError):
    pass


class UnknownToken(UserError):
    pass


class _IdTaken(Exception):
    pass


@dataclass(frozen=True)
class User:
    """An account as the app sees it. The password hash deliberately stays in Redis, so a
    User can be logged or rendered without leaking it."""

    name: str
    roles: tuple[str, ...]
    disabled: bool
    created: int              # epoch ms
    password_changed: int     # epoch ms
    session_epoch: int        # bumped on password, disable/enable and role changes

    def accepts_session(self, epoch: int) -> bool:
        """Is a session issued at `epoch` still valid? Sessions from before a change are not."""
        return not self.disabled and epoch == self.session_epoch


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    roles: tuple[str, ...]
    created: int              # epoch ms
    created_by: str
    revoked: int              # epoch ms of revocation, 0 while active
    last_used: int            # epoch ms, 0 = never; refreshed at most once a minute


def check_name(name: str, what: str = "user name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ @ -")
    return name


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    if isinstance(roles, str):
        raise UserError("roles must be a list of role names")
    out = tuple(dict.fromkeys(roles))
    if not out:
        raise UserError("at least one role is required")
    for role in out:
        if not isinstance(role, str) or not ROLE_RE.fullmatch(role):
            raise UserError(f"{role!r} is not a role name")
    return out


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password must be at most {MAX_PASSWORD} characters")


def _text(h: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in h.items()}


@functools.lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    # Checked against for unknown users, so they cost as much as known ones.
    return passwords.hash_password(secrets.token_urlsafe(16), method)


class UserStore:
    """Accounts: hash `{p}:user:{name}` per user, set `{p}:users` of names."""

    def __init__(self, r: redis.Redis, keys: Keys, hash_method: str = DEFAULT_HASH_METHOD) -> None:
        self._r = r
        self._keys = keys
        self._method = passwords.check_method(hash_method)
        self.sessions = SessionStore(r, keys)
        _dummy_hash(hash_method)   # paid now, not by the first unknown-user sign-in

    def add(self, name: str, roles: Sequence[str], password: str) -> User:
        check_name(name)
        role_t = check_roles(roles)
        check_password_policy(password)
        now = now_ms()
        fields = {"roles": orjson.dumps(list(role_t)), "pw": passwords.hash_password(password, self._method),
                  "disabled": 0, "created": now, "password_changed": now, "session_epoch": 1}
        key = self._keys.user(name)

        def create(pipe: Any) -> None:
            if pipe.exists(key):
                raise UserError(f"user {name!r} already exists")
            pipe.multi()
            pipe.hset(key, mapping=fields)
            pipe.sadd(self._keys.users, name)

        self._r.transaction(create, key)
        return User(name, role_t, False, now, now, 1)

    def get(self, name: str) -> User | None:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            return None
        return _to_user(name, _text(self._r.hgetall(self._keys.user(name))))

    def signed_in(self, name: str, sid: str) -> tuple[User, SignIn] | None:
        """The user of a browser sign-in, if that sign-in is still live and was made at the
        user's current session epoch by an enabled account (one round trip)."""
        if not isinstance(sid, str) or not SID_RE.fullmatch(sid):
            return None
        return self.still_signed_in(name, digest(sid))

    def still_signed_in(self, name: str, sid_digest: str) -> tuple[User, SignIn] | None:
        """signed_in() for a sign-in known by its digest (a live socket re-checking its own)."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or not sid_digest:
            return None
        with self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.user(name))
            pipe.hgetall(self._keys.session(sid_digest))
            h_user, h_session = pipe.execute()
        user, sign_in = _to_user(name, _text(h_user)), to_sign_in(sid_digest, h_session)
        if user is None or sign_in is None or sign_in.user != name or not user.accepts_session(sign_in.epoch):
            return None
        return user, sign_in

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the password is right and the account enabled, else None.

        Unknown, disabled and wrong-password cases all cost one hash check, so response
        times do not tell which names exist. A right password whose stored hash is not the
        store's method (an older scrypt one, other parameters) is hashed again by it, without
        touching the account's sessions.
        """
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        h: dict[str, str] = {}
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            h = _text(self._r.hgetall(self._keys.user(name)))
        stored = h.get("pw")
        if not stored:
            off_loop(passwords.verify, _dummy_hash(self._method), password)
            return None
        # The hash (~20 ms of CPU, scrypt's ~75) on a native thread: under gevent the loop
        # serves others meanwhile.
        ok = off_loop(passwords.verify, stored, password)   # compares in constant time
        user = _to_user(name, h)
        if not ok or user is None or user.disabled:
            return None
        if passwords.needs_rehash(stored, self._method):
            self._rehash(name, stored, off_loop(passwords.hash_password, password, self._method))
        return user

    def _rehash(self, name: str, old: str, new: str) -> None:
        """The password's hash by the current method, in place of `old` if it is still the
        stored one (a password changed meanwhile stays); not a password change: the
        account's sessions and password_changed stay as they are."""
        self._r.eval(_REHASH_LUA, 1, self._keys.user(name), old, new)

    def set_password(self, name: str, password: str) -> None:
        check_password_policy(password)
        self._update(name, {"pw": passwords.hash_password(password, self._method), "password_changed": now_ms()})

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._update(name, {"disabled": int(bool(disabled))})

    def set_roles(self, name: str, roles: Sequence[str]) -> None:
        self._update(name, {"roles": orjson.dumps(list(check_roles(roles)))})

    def list(self) -> builtins.list[User]:
        names = sorted(m.decode() if isinstance(m, bytes) else m for m in self._r.smembers(self._keys.users))
        with self._r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._keys.user(name))
            rows = pipe.execute()
        return [u for u in (_to_user(n, _text(h)) for n, h in zip(names, rows, strict=True)) if u is not None]

    def count(self) -> int:
        return int(self._r.scard(self._keys.users))

    def _update(self, name: str, fields: dict[str, Any]) -> None:
        """Write fields and bump session_epoch in one transaction, so no session survives the change."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise UnknownUser(f"no user {name!r}")
        key = self._keys.user(name)

        def update(pipe: Any) -> None:
            if not pipe.exists(key):
                raise UnknownUser(f"no user {name!r}")
            pipe.multi()
            pipe.hset(key, mapping=fields)
            pipe.hincrby(key, "session_epoch", 1)
            # Open live sockets of this user close too (live.hub listens on this channel).
            pipe.publish(self._keys.live_control, orjson.dumps({"close_user": name}))

        self._r.transaction(update, key)
        # The epoch bump above already refuses every earlier sign-in; deleting the records
        # makes that visible in Redis and frees them.
        self.sessions.end_all(name)


def _to_user(name: str, h: dict[str, str]) -> User | None:
    if not h.get("pw"):
        return None
    return User(name=name, roles=tuple(orjson.loads(h.get("roles", "[]"))), disabled=h.get("disabled") == "1",
                created=int(h.get("created", 0)), password_changed=int(h.get("password_changed", 0)),
                session_epoch=int(h.get("session_epoch", 0)))


class TokenStore:
    """Named API tokens: hash `{p}:token:{id}` per token, set `{p}:tokens` of ids.

    The secret `qms_<id>_<43 url-safe chars>` is returned once by create(); only its
    SHA-256 is kept. A fast hash is enough here: the secret has 256 random bits, unlike a
    password, so there is nothing to brute-force.
    """

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self._r = r
        self._keys = keys

    def create(self, name: str, roles: Sequence[str], created_by: str) -> tuple[str, str]:
        check_name(name, "token name")
        role_t = check_roles(roles)
        if not isinstance(created_by, str) or not created_by.strip() or len(created_by) > 128 \
                or not created_by.isprintable():
            raise UserError("created_by must be 1-128 printable characters")
        while True:
            token_id = secrets.token_hex(8)
            secret = f"qms_{token_id}_{secrets.token_urlsafe(32)}"
            fields = {"name": name, "roles": orjson.dumps(list(role_t)), "created": now_ms(),
                      "created_by": created_by, "hash": _sha256(secret)}
            if self._store_new(token_id, fields):
                return token_id, secret

    def _store_new(self, token_id: str, fields: dict[str, Any]) -> bool:
        key = self._keys.token(token_id)

        def store(pipe: Any) -> None:
            if pipe.exists(key):   # 64-bit ids: a collision is only theoretical, but never overwrite
                raise _IdTaken
            pipe.multi()
            pipe.hset(key, mapping=fields)
            pipe.sadd(self._keys.tokens, token_id)

        try:
            self._r.transaction(store, key)
        except _IdTaken:
            return False
        return True

    def verify(self, secret: str) -> ApiToken | None:
        """The token if `secret` is a valid, unrevoked token; None otherwise."""
        if not isinstance(secret, str):
            return None
        m = TOKEN_RE.fullmatch(secret)
        if m is None:
            return None
        h = _text(self._r.hgetall(self._keys.token(m.group(1))))
        if not h or not hmac.compare_digest(_sha256(secret), h.get("hash", "")):
            return None
        token = _to_token(m.group(1), h)
        if token.revoked:
            return None
        now = now_ms()
        if now - token.last_used >= LAST_USED_EVERY_MS:
            self._r.hset(self._keys.token(token.id), "last_used", now)
            token = replace(token, last_used=now)
        return token

    def revoke(self, token_id: str) -> None:
        """Revoke a token for good; the record stays (with the time) for the audit trail."""
        key = self._keys.token(token_id) if _is_token_id(token_id) else None
        if key is None or not self._r.exists(key):
            raise UnknownToken(f"no API token {token_id!r}")
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "revoked", now_ms())    # revoking twice keeps the first time
            # Its open sockets and event streams close now (live.hub listens on this channel).
            pipe.publish(self._keys.live_control, orjson.dumps({"close_credential": token_credential(token_id)}))
            pipe.execute()

    def get(self, token_id: str) -> ApiToken | None:
        if not _is_token_id(token_id):
            return None
        h = _text(self._r.hgetall(self._keys.token(token_id)))
        return _to_token(token_id, h) if h else None

    def list(self) -> builtins.list[ApiToken]:
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in self._r.smembers(self._keys.tokens))
        with self._r.pipeline(transaction=False) as pipe:
            for token_id in ids:
                pipe.hgetall(self._keys.token(token_id))
            rows = pipe.execute()
        tokens = [_to_token(i, _text(h)) for i, h in zip(ids, rows, strict=True) if h]
        return sorted(tokens, key=lambda t: (t.created, t.id))


def token_credential(token_id: str) -> str:
    """The name of an API token on the live control channel (its sockets close with it)."""
    return f"token:{token_id}"


def _is_token_id(token_id: str) -> bool:
    return isinstance(token_id, str) and TOKEN_ID_RE.fullmatch(token_id) is not None


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _to_token(token_id: str, h: dict[str, str]) -> ApiToken:
    return ApiToken(id=token_id, name=h.get("name", ""), roles=tuple(orjson.loads(h.get("roles", "[]"))),
                    created=int(h.get("created", 0)), created_by=h.get("created_by", ""),
                    revoked=int(h.get("revoked", 0)), last_used=int(h.get("last_used", 0)))
