"""Who is asking: one `Principal` per request, from a Bearer credential (a signed JWT or a
named API token) or from the Flask-Login session — and the one authorization function
that pages, callbacks, REST endpoints and (later) WebSocket channels all call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from flask import current_app, g, request
from flask_login import UserMixin, current_user

from data.sessions import session_credential
from data.users import token_credential

JWT_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    name: str
    roles: tuple[str, ...]
    permissions: frozenset[str] = field(default_factory=frozenset)
    kind: str = "session"            # session | jwt | token
    # What its live sockets are closed by besides the user name: "session:<digest>" for a
    # browser sign-in, "token:<id>" for an API token (data.sessions, data.users).
    credential: str = ""
    # A JWT's end (epoch seconds) and the session epoch it was issued at: what a live socket
    # opened with it re-checks (live.routes), as every HTTP request checks them.
    expires: float | None = None
    epoch: int | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions


class SessionUser(UserMixin):
    """Flask-Login's user. Its id — kept in the session cookie and the remember-me cookie —
    names a server-side sign-in (data/sessions.py): ending that record (sign-out) or all of
    the user's (password change, role change, disabling) kills every copy of both cookies."""

    def __init__(self, name: str, roles: tuple[str, ...], sid: str, sid_digest: str) -> None:
        self.name = name
        self.roles = roles
        self.sid = sid
        self.sid_digest = sid_digest

    def get_id(self) -> str:
        return f"{self.sid}:{self.name}"


def load_session_user(user_id: str) -> SessionUser | None:
    sid, _, name = user_id.partition(":")
    found = current_app.extensions["qms"].users.signed_in(name, sid)
    if found is None:
        return None
    user, sign_in = found
    return SessionUser(user.name, tuple(user.roles), sid, sign_in.digest)


def issue_jwt(name: str, roles: list[str] | tuple[str, ...], ttl_s: int, secret: str, epoch: int | None = None) -> str:
    """A JWT for `name`. With `epoch` (the user's session epoch) it dies with a password
    change, a role change or disabling, like a session; without, `sub` need not be a user."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": name, "roles": list(roles), "iat": now, "exp": now + ttl_s}
    if epoch is not None:
        claims["ep"] = epoch
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


class BadCredentials(Exception):
    """A Bearer credential was sent but is not valid (expired, tampered, revoked...)."""


LIVE_PATHS = ("/ws", "/api/stream")


def _from_bearer(token: str) -> Principal:
    svc = current_app.extensions["qms"]
    rbac = svc.rbac
    if token.startswith("qms_"):
        api = svc.tokens.verify(token)
        if api is None:
            raise BadCredentials("unknown or revoked API token")
        return Principal(f"token:{api.name}", tuple(api.roles), rbac.permissions_for(api.roles), "token",
                         token_credential(api.id))
    try:
        claims = jwt.decode(token, svc.secret_key, algorithms=[JWT_ALGORITHM],
                            options={"require": ["sub", "exp", "roles"]})
    except jwt.PyJWTError as exc:
        raise BadCredentials(f"invalid token: {exc}") from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(x, str) for x in roles):
        raise BadCredentials("invalid token: roles must be a list of names")
    epoch = claims.get("ep")
    if "ep" in claims and not jwt_user_valid(svc.users, str(claims["sub"]), epoch):
        raise BadCredentials("token no longer valid: the user was changed or disabled")
    return Principal(str(claims["sub"]), tuple(roles), rbac.permissions_for(roles), "jwt",
                     expires=float(claims["exp"]), epoch=epoch)


def jwt_user_valid(users: Any, name: str, epoch: Any) -> bool:
    """Is a JWT issued at session epoch `epoch` still good for its user (no password, role or
    enabled change since)?"""
    user = users.get(name)
    return user is not None and user.accepts_session(epoch)


def current_principal() -> Principal | None:
    """The request's principal, resolved once per request. Raises BadCredentials for a bad
    Bearer credential (a client that sent one must be told, not treated as anonymous)."""
    if "qms_principal" in g:
        return g.qms_principal
    principal: Principal | None = None
    header = request.headers.get("Authorization", "")
    # Browsers cannot set headers on a WebSocket or EventSource: those two accept ?token=.
    query_token = request.args.get("token") if request.path in LIVE_PATHS else None
    if header[:7].lower() == "bearer ":
        principal = _from_bearer(header[7:].strip())
    elif query_token:
        principal = _from_bearer(query_token.strip())
    elif current_user and current_user.is_authenticated:
        roles = tuple(current_user.roles)
        principal = Principal(current_user.name, roles, current_app.extensions["qms"].rbac.permissions_for(roles),
                              "session", session_credential(current_user.sid_digest))
    g.qms_principal = principal
    return principal


def authorize(principal: Principal | None, permission: str) -> bool:
    """The single authorization decision: does this principal hold this permission?"""
    return principal is not None and principal.can(permission)


def audit(action: str, outcome: str = "ok", **details: Any) -> None:
    svc = current_app.extensions["qms"]
    principal = g.get("qms_principal")
    svc.audit.record(action, principal.name if principal else details.pop("user", None),
                     ip=request.remote_addr, details=details, outcome=outcome)
