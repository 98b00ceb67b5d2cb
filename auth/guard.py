"""Enforcement: REST endpoints (`require`), Dash callbacks (`secure_callback` + a check of
every `/_dash-update-component` POST before Dash runs anything), Dash pages, CSRF and
security headers. Every decision goes through `auth.principal.authorize`.

Callbacks are deny-by-default: an app whose callback map holds a callback that declared
no permission refuses to start, and a POST naming an unknown output gets 403. Each callback
also declares a type per input and state (`inputs=`, auth/callback_schema.py): the guard
answers 400 naming the field for a malformed body or an ill-typed value (or an input that
declared none) before a permission function or the callback reads it — one place, not a
try/except per callback. `twin=` names the REST endpoint serving the same data, which must
need the same permission (tests/integration/test_callback_twins.py walks them).
"""
from __future__ import annotations

import functools
import hmac
import secrets
from typing import Any, Callable

import redis
from dash import Dash
from flask import Flask, Response, current_app, g, redirect, request, session, url_for

from api.validation import InvalidInput, error_response, init_validation, loads
from auth.callback_schema import CallbackSchema
from auth.principal import BadCredentials, Principal, audit, authorize, current_principal
from data.redis_conn import RETRY_AFTER_S

# A permission (or several, all needed), or a function of the callback request body that
# returns them (for callbacks whose inputs pick the data — e.g. a dashboard name — so a
# forged input is still checked). The body reaches the function only once it is valid.
Permissions = str | tuple[str, ...]
PermissionSpec = Permissions | Callable[[dict[str, Any]], Permissions | None]
AUTHENTICATED = "authenticated"          # any signed-in principal
CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
PUBLIC_PREFIXES = ("/login", "/logout", "/vendor/", "/assets/", "/_dash-component-suites/", "/_favicon.ico",
                   "/health", "/api/openapi.json", "/forbidden")
DASH_XHR = ("/_dash-layout", "/_dash-dependencies", "/_reload-hash")


def _json_error(status: int, code: str, message: str) -> Response:
    return error_response(status, code, message)


def _principal_or_error() -> tuple[Principal | None, Response | None]:
    try:
        return current_principal(), None
    except BadCredentials as exc:
        return None, _json_error(401, "unauthorized", str(exc))


def allowed(principal: Principal | None, spec: PermissionSpec, body: dict[str, Any] | None = None) -> bool:
    permission = spec(body or {}) if callable(spec) else spec
    if not permission:
        return False
    needed = (permission,) if isinstance(permission, str) else permission
    return all(principal is not None if p == AUTHENTICATED else authorize(principal, p) for p in needed)


def require(spec: PermissionSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Flask view: 401 without credentials, 403 without the permission."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            principal, err = _principal_or_error()
            if err is not None:
                return err
            if principal is None:
                return _json_error(401, "unauthorized", "sign in or send Authorization: Bearer <token>")
            if principal.kind == "session" and request.method not in ("GET", "HEAD", "OPTIONS") \
                    and not csrf_ok(request.headers.get(CSRF_HEADER)):
                return _json_error(403, "csrf", "missing or wrong CSRF token")
            permission = spec(kwargs) if callable(spec) else spec
            if not allowed(principal, permission or "", kwargs):
                audit("authz.denied", "denied", path=request.path, permission=permission)
                return _json_error(403, "forbidden", f"this needs the permission {permission}")
            return view(*args, **kwargs)
        wrapped.qms_permission = spec  # type: ignore[attr-defined]
        return wrapped
    return decorator


def secure_callback(app: Dash, spec: PermissionSpec, *args: Any, inputs: dict[str, Any] | None = None,
                    twin: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`app.callback(*args, **kwargs)` that records the permission its output needs, the type
    of each input and state value (`inputs`: `"id.property"` -> a type pydantic checks) and
    the REST endpoint serving the same data (`twin`: `"METHOD /rule"`), if any."""
    registry: dict[str, PermissionSpec] = app.server.extensions.setdefault("qms_callback_permissions", {})
    schemas: dict[str, CallbackSchema] = app.server.extensions.setdefault("qms_callback_schemas", {})
    twins: dict[str, str] = app.server.extensions.setdefault("qms_callback_twins", {})

    def decorator(fn: Callable[..., Any]) -> Any:
        before = set(app.callback_map)
        result = app.callback(*args, **kwargs)(fn)
        for key in set(app.callback_map) - before:
            registry[key] = spec
            schemas[key] = CallbackSchema(key, app.callback_map[key], inputs or {})
            if twin:
                twins[key] = twin
        return result
    return decorator


def secure_clientside(app: Dash, spec: PermissionSpec, function: str, *args: Any, **kwargs: Any) -> None:
    """A clientside callback, recorded like the others (it never reaches the server, but the
    registry stays complete so the start-up check can deny undeclared callbacks)."""
    registry: dict[str, PermissionSpec] = app.server.extensions.setdefault("qms_callback_permissions", {})
    before = set(app.callback_map)
    app.clientside_callback(function, *args, **kwargs)
    for key in set(app.callback_map) - before:
        registry[key] = spec


def check_callback_permissions(app: Dash) -> None:
    """Refuse to start with a callback that declared no permission, or a server callback
    with an input or state of no declared type (deny by default)."""
    registry = app.server.extensions.get("qms_callback_permissions", {})
    missing = [k for k in app.callback_map if k not in registry]
    if missing:
        raise RuntimeError(f"callbacks without a declared permission: {missing}")
    schemas: dict[str, CallbackSchema] = app.server.extensions.get("qms_callback_schemas", {})
    untyped = {k: schemas[k].undeclared if k in schemas else ["all"] for k, cb in app.callback_map.items()
               if cb.get("callback") is not None and (k not in schemas or schemas[k].undeclared)}
    if untyped:
        raise RuntimeError(f"callback inputs without a declared type (secure_callback(inputs=...)): {untyped}")


def callback_input(body: dict[str, Any], component_id: str, prop: str) -> Any:
    """The value of one input/state in a `/_dash-update-component` request body."""
    for group in ("inputs", "state"):
        for item in body.get(group) or []:
            entries = item if isinstance(item, list) else [item]
            for entry in entries:
                if isinstance(entry, dict) and entry.get("id") == component_id and entry.get("property") == prop:
                    return entry.get("value")
    return None


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(sent: str | None) -> bool:
    token = session.get("csrf")
    if not (token and isinstance(sent, str) and sent):
        return False
    # As bytes: compare_digest raises TypeError for a str with any non-ASCII character.
    return hmac.compare_digest(token.encode(), sent.encode("utf-8", "surrogatepass"))


def init_guard(server: Flask, app: Dash) -> None:
    init_validation(server)

    @server.before_request
    def _guard() -> Any:
        path = request.path
        if path.startswith("/api/") and request.url_rule is not None and not request.url_rule.rule.startswith("/api/"):
            # Dash's catch-all page route would answer an unknown API path with the app's HTML.
            return _json_error(404, "not_found", f"no API endpoint {path[:200]}")
        if path.startswith(PUBLIC_PREFIXES) or path.startswith("/api/"):
            return None          # API views carry their own @require
        principal, err = _principal_or_error()
        if err is not None:
            return err
        if path == "/_dash-update-component":
            if principal is None:
                return _json_error(401, "unauthorized", "sign in first")
            if principal.kind == "session" and not csrf_ok(request.headers.get(CSRF_HEADER)):
                return _json_error(403, "csrf", "missing or wrong CSRF token")
            return _check_callback(principal)
        if path == "/ws":
            if principal is None:
                return _json_error(401, "unauthorized", "sign in first, or pass ?token=")
            if not origin_allowed(request.headers.get("Origin")):
                audit("authz.denied", "denied", path=path, origin=str(request.headers.get("Origin"))[:200])
                return _json_error(403, "origin", "this origin may not open a live connection")
            return None
        if principal is None:
            if path.startswith(DASH_XHR) or request.method != "GET":
                return _json_error(401, "unauthorized", "sign in first")
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else path))
        return None

    @server.after_request
    def _headers(resp: Response) -> Response:
        # A CSRF token for a signed-in caller that has none yet — but never by asking Redis
        # again after it failed (g.qms_redis_down) or for an error response: that second
        # look-up is what turned a 503 into a 500 and doubled the wait on a stuck Redis.
        if session.get("csrf") is None and resp.status_code < 500 and not g.get("qms_redis_down"):
            try:
                if current_principal_safe() is not None:
                    csrf_token()
            except redis.RedisError:
                g.qms_redis_down = True
        if resp.status_code == 503:
            resp.headers.setdefault("Retry-After", str(RETRY_AFTER_S))   # every 503 here is "retry shortly"
        if session.get("csrf") and request.cookies.get(CSRF_COOKIE) != session["csrf"]:
            resp.set_cookie(CSRF_COOKIE, session["csrf"], samesite="Lax", secure=server.config["SESSION_COOKIE_SECURE"],
                            httponly=False)   # Dash's renderer copies it into the X-CSRFToken header
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Content-Security-Policy", server.extensions.get("qms_csp", "default-src 'self'"))
        return resp


def _check_callback(principal: Principal) -> Response | None:
    """A callback request: a JSON object naming a registered callback (else 400/403), shaped
    as registered with values of the declared types (else 400), and permitted (else 403)."""
    try:
        body = loads(request.get_data(cache=True))
    except ValueError as exc:
        return _json_error(400, "bad_request", str(exc))
    if not isinstance(body, dict):
        return _json_error(400, "bad_request", "the body must be a JSON object")
    # Dash's dispatch reads the body with request.get_json(): it gets this parse (Werkzeug's
    # cache of it) instead of parsing and depth-checking the same bytes a second time.
    request._cached_json = (body, body)
    output = body.get("output")
    key = output if isinstance(output, str) else ""
    spec = current_app.extensions.get("qms_callback_permissions", {}).get(key)
    schema = current_app.extensions.get("qms_callback_schemas", {}).get(key)
    if spec is None or schema is None:
        audit("authz.denied", "denied", path=request.path, output=str(output)[:200])
        return _json_error(403, "forbidden", "you may not see this data")
    try:
        schema.check(body)
    except InvalidInput as exc:
        return error_response(400, "bad_request", exc.message, errors=exc.errors)
    if not allowed(principal, spec, body):
        audit("authz.denied", "denied", path=request.path, output=key[:200])
        return _json_error(403, "forbidden", "you may not see this data")
    return None


def origin_allowed(origin: str | None) -> bool:
    """Cross-site WebSocket hijacking: a browser sends the page's Origin; only the app's own
    and the configured ones may open /ws. No Origin means no browser (a script with a token)."""
    if origin is None:
        return True
    own = request.host_url.rstrip("/")
    extra = [o.strip().rstrip("/") for o in current_app.extensions["qms"].settings.allowed_origins.split(",")
             if o.strip()]
    return origin.rstrip("/") in (own, *extra)


def current_principal_safe() -> Principal | None:
    try:
        return current_principal()
    except BadCredentials:
        return None


def content_security_policy(app: Dash) -> str:
    """A CSP the app works under: Dash's inline scripts by hash; Plotly needs eval."""
    scripts = " ".join(["'self'", "'unsafe-eval'", *app.csp_hashes()])
    return ("default-src 'self'; script-src " + scripts + "; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
