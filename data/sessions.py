"""Sign-ins kept server-side, so they can be ended: one Redis record per browser sign-in.

The browser's session cookie and its remember-me cookie carry only a random sign-in id
(signed by Flask and Flask-Login); the record says whose it is and at which session epoch
it was made. Sign-out deletes the record, and a password change, a role change or disabling
deletes every record of the user — after that no copy of either cookie signs anyone in.

Only a SHA-256 digest of the id is kept (like API token secrets): reading Redis does not
give a cookie's content. The digest also names the sign-in on the live control channel.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from data.keys import Keys
from data.timeutil import now_ms

SID_RE = re.compile(r"[A-Za-z0-9_-]{43}")       # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SignIn:
    digest: str          # sha256 of the id: how Redis and the live control channel name it
    user: str
    epoch: int           # the user's session epoch at sign-in
    remember: bool
    created: int         # epoch ms


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def to_sign_in(sid_digest: str, h: dict[Any, Any]) -> SignIn | None:
    """A sign-in from its Redis hash (None when the hash is gone)."""
    if not h:
        return None
    t = {_text(k): _text(v) for k, v in h.items()}
    return SignIn(sid_digest, t["user"], int(t["epoch"]), t.get("remember") == "1", int(t.get("created", 0)))


def session_credential(sid_digest: str) -> str:
    """The name of a sign-in on the live control channel (its sockets close with it)."""
    return f"session:{sid_digest}"


class SessionStore:
    """`{p}:session:<digest>` hash per sign-in (TTL = its lifetime) and
    `{p}:user-sessions:<name>` sorted set of a user's digests scored by expiry (to end them
    all; the expired drop out by score, without reading each record)."""

    MAX_PER_USER = 100    # a script signing in through the form over and over ends its oldest sign-ins

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self._r = r
        self._keys = keys

    def create(self, user: str, epoch: int, ttl_s: int, remember: bool = False) -> str:
        """A new sign-in; returns its id (for the cookies, never stored in clear)."""
        sid = secrets.token_urlsafe(32)
        d = digest(sid)
        key, members = self._keys.session(d), self._keys.user_sessions(user)
        now = now_ms()
        expires = now + max(1, int(ttl_s)) * 1000
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user, "epoch": epoch, "remember": int(remember), "created": now})
            pipe.pexpireat(key, expires)
            pipe.zadd(members, {d: expires})
            pipe.zremrangebyscore(members, "-inf", now)
            pipe.zcard(members)
            pipe.zrange(members, -1, -1, withscores=True)
            *_, count, last = pipe.execute()
        # The set lives as long as its longest sign-in.
        self._r.pexpireat(members, int(last[0][1]) if last else expires)
        if count > self.MAX_PER_USER:
            self._end(user, [_text(m) for m, _ in self._r.zpopmin(members, count - self.MAX_PER_USER)])
        return sid

    def get(self, sid: str) -> SignIn | None:
        """The live sign-in of this id, or None (ended, expired, or not an id at all)."""
        if not isinstance(sid, str) or not SID_RE.fullmatch(sid):
            return None
        return to_sign_in(digest(sid), self._r.hgetall(self._keys.session(digest(sid))))

    def end(self, sid: str) -> SignIn | None:
        """End one sign-in (sign-out); returns what it was."""
        sign_in = self.get(sid)
        if sign_in is not None:
            self._end(sign_in.user, [sign_in.digest])
        return sign_in

    def end_all(self, user: str) -> list[str]:
        """End every sign-in of a user; returns their digests."""
        digests = [_text(m) for m in self._r.zrange(self._keys.user_sessions(user), 0, -1)]
        self._end(user, digests)
        return digests

    def _end(self, user: str, digests: list[str]) -> None:
        if not digests:
            return
        with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(*(self._keys.session(d) for d in digests))
            pipe.zrem(self._keys.user_sessions(user), *digests)
            pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
