"""Sign-in, sign-out, the 403 page, and JWTs for API clients (Flask views, not Dash:
they must work before any Dash data may be sent).

A sign-in is a server-side record (data/sessions.py) whose id both cookies carry; sign-out
is a POST with the CSRF token that deletes it. Failed sign-ins are limited per name ×
address and per address, and slowed per name (data/signin.py) — never a lock of a name for
every address."""
from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Response, current_app, redirect, render_template_string, request, session
from flask_login import current_user, login_user, logout_user
from pydantic import StringConstraints

from api.validation import Body, body
from auth.guard import CSRF_HEADER, csrf_ok, csrf_token
from auth.principal import SessionUser, audit, issue_jwt
from data.sessions import digest, session_credential

bp = Blueprint("auth", __name__)

PAGE = """<!doctype html>
<html lang="en" data-bs-theme="light"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · QMS Dashboard</title>
<link rel="stylesheet" href="/vendor/bootstrap/css/bootstrap.min.css"><link rel="stylesheet" href="/assets/qms.css">
</head><body class="bg-body-tertiary">
<main class="container" style="max-width: 26rem; margin-top: 12vh">
  <div class="card shadow-sm"><div class="card-body p-4">
    <h1 class="h4 mb-1 fw-bold text-primary">QMS Dashboard</h1>
    {% block body %}{% endblock %}
  </div></div>
</main></body></html>"""

LOGIN = PAGE.replace("{% block body %}{% endblock %}", """
    <p class="text-body-secondary mb-4">Sign in to see your dashboards.</p>
    {% if error %}<div class="alert alert-danger py-2" role="alert">{{ error }}</div>{% endif %}
    <form method="post" action="/login" autocomplete="on">
      <input type="hidden" name="csrf_token" value="{{ csrf }}"><input type="hidden" name="next" value="{{ next }}">
      <div class="mb-3"><label class="form-label" for="username">User name</label>
        <input class="form-control" id="username" name="username" value="{{ username }}" required autofocus
               autocomplete="username"></div>
      <div class="mb-3"><label class="form-label" for="password">Password</label>
        <input class="form-control" id="password" name="password" type="password" required
               autocomplete="current-password"></div>
      <div class="form-check mb-3"><input class="form-check-input" type="checkbox" id="remember" name="remember">
        <label class="form-check-label" for="remember">Remember me</label></div>
      <button class="btn btn-primary w-100" id="sign-in" type="submit">Sign in</button>
    </form>""")

SIGN_OUT = PAGE.replace("{% block body %}{% endblock %}", """
    <p class="text-body-secondary mb-4">Signed in as <strong>{{ name }}</strong>.</p>
    {% if error %}<div class="alert alert-warning py-2" role="alert">{{ error }}</div>{% endif %}
    <form method="post" action="/logout">
      <input type="hidden" name="csrf_token" value="{{ csrf }}">
      <button class="btn btn-primary w-100" id="confirm-sign-out" type="submit">Sign out</button>
    </form>
    <a class="btn btn-link w-100 mt-2" href="/">Back to your dashboards</a>""")

FORBIDDEN = PAGE.replace("{% block body %}{% endblock %}", """
    <h2 class="h5 mt-3">You may not open this page</h2>
    <p class="text-body-secondary">Your role does not include <code>{{ permission }}</code>.
    Ask an administrator if you need it.</p>
    <a class="btn btn-outline-primary" href="/">Back to your dashboards</a>""")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme or host, no backslash, no control characters
    (browsers drop tabs and newlines, turning '/\t/evil' into '//evil')."""
    if not target or not target.startswith("/") or "\\" in target or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


def _login_page(error: str | None = None, status: int = 200, username: str = "") -> Response:
    html = render_template_string(LOGIN, title="Sign in", error=error, csrf=csrf_token(),
                                  next=_safe_next(request.values.get("next")), username=username)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/login")
def login() -> Response:
    return _login_page()


@bp.post("/login")
def login_post() -> Any:
    svc = current_app.extensions["qms"]
    username = (request.form.get("username") or "").strip()[:64]
    if not csrf_ok(request.form.get("csrf_token")):
        return _login_page("The form expired; please sign in again.", 400, username)
    ip = request.remote_addr or "-"
    verdict = svc.limiter.attempt(username, ip)
    if verdict.wait_s:
        audit("auth.sign_in_failed", "rate_limited", user=username)
        resp = _login_page(f"Too many failed attempts. Try again in {verdict.wait_s} s.", 429, username)
        resp.headers["Retry-After"] = str(verdict.wait_s)
        return resp
    _slow_down(verdict.delay_s)
    user = svc.users.check_password(username, request.form.get("password") or "")
    if user is None:
        svc.limiter.failure(username, ip)
        audit("auth.sign_in_failed", "denied", user=username)
        current_app.logger.warning("failed sign-in for %r from %s", username, ip)
        return _login_page("Wrong user name or password.", 401, username)
    svc.limiter.success(username, ip)
    remember = request.form.get("remember") == "on"
    ttl_s = svc.settings.remember_days * 86400 if remember else svc.settings.session_hours * 3600
    sid = svc.users.sessions.create(user.name, user.session_epoch, int(ttl_s), remember)
    session.clear()                      # a fresh session (and CSRF token) after sign-in
    session.permanent = True
    login_user(SessionUser(user.name, tuple(user.roles), sid, digest(sid)), remember=remember)
    csrf_token()
    audit("auth.sign_in", user=user.name)
    return redirect(_safe_next(request.form.get("next")))


def _slow_down(delay_s: float) -> None:
    """The per-name slowdown: wait before checking the password (a greenlet under gevent)."""
    if delay_s > 0:
        time.sleep(delay_s)


def _sign_out_page(error: str | None = None, status: int = 200) -> Response:
    html = render_template_string(SIGN_OUT, title="Sign out", error=error, csrf=csrf_token(), name=current_user.name)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/logout")
def logout_confirm() -> Any:
    """A GET never signs out (a link or an image on another site could): it shows the form."""
    if not current_user.is_authenticated:
        return redirect("/login")
    return _sign_out_page()


@bp.post("/logout")
def logout() -> Any:
    if not current_user.is_authenticated:
        return redirect("/login")
    if not csrf_ok(request.form.get("csrf_token") or request.headers.get(CSRF_HEADER)):
        return _sign_out_page("The sign-out form expired; sign out again.", 400)
    svc = current_app.extensions["qms"]
    audit("auth.sign_out", user=current_user.name)
    ended = svc.users.sessions.end(current_user.sid)
    if ended is not None:
        # This sign-in's live sockets close with it, wherever they were opened (a copied cookie too).
        from live.hub import announce_close_credential
        announce_close_credential(svc.redis, svc.keys, session_credential(ended.digest))
    logout_user()
    forget = session.get("_remember")          # Flask-Login's note to delete the remember cookie
    session.clear()
    if forget:
        session["_remember"] = forget
    resp = redirect("/login")
    resp.delete_cookie(current_app.config["REMEMBER_COOKIE_NAME"])
    return resp


@bp.get("/forbidden")
def forbidden() -> Response:
    html = render_template_string(FORBIDDEN, title="Not allowed", permission=request.args.get("permission", "?"))
    return Response(html, status=403, mimetype="text/html")


class TokenRequest(Body):
    """`POST /api/auth/token`'s body."""
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(max_length=1024)]


@bp.post("/api/auth/token")
def token() -> Response:
    """Exchange a user name and password for a short-lived JWT (API clients)."""
    svc = current_app.extensions["qms"]
    asked = body(TokenRequest)              # 400 naming the field for anything but {username, password}
    username, password = asked.username, asked.password
    ip = request.remote_addr or "-"
    verdict = svc.limiter.attempt(username, ip)
    if verdict.wait_s:
        audit("auth.sign_in_failed", "rate_limited", user=username, via="token")
        resp = _error(429, "too_many_attempts", "too many failed attempts; wait and retry")
        resp.headers["Retry-After"] = str(verdict.wait_s)
        return resp
    _slow_down(verdict.delay_s)
    user = svc.users.check_password(username, password)
    if user is None:
        svc.limiter.failure(username, ip)
        audit("auth.sign_in_failed", "denied", user=username, via="token")
        return _error(401, "unauthorized", "wrong user name or password")
    svc.limiter.success(username, ip)
    ttl = svc.settings.jwt_ttl_s
    jwt_token = issue_jwt(user.name, user.roles, ttl, svc.secret_key, user.session_epoch)
    audit("auth.sign_in", user=user.name, via="token")
    return Response(orjson.dumps({"access_token": jwt_token, "token_type": "Bearer", "expires_in": ttl}),
                    mimetype="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return Response(orjson.dumps({"response": {"status": "error", "error": {"code": code, "message": message}}}),
                    status=status, mimetype="application/json")
