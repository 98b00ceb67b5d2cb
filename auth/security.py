"""Session and cookie hardening, and the secret key (from the environment, or generated
once and kept in the data folder with owner-only permissions — never in the repository)."""
from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager
from werkzeug.middleware.proxy_fix import ProxyFix

from auth.principal import load_session_user


def secret_key(settings: Any) -> str:
    if settings.secret_key:
        return str(settings.secret_key)
    path = Path(settings.data_dir) / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SESSION_REFRESH_S = 600          # a permanent session's cookie is re-sent at most this often


def now_s() -> int:
    """The session cookie's clock (a test moves it alone)."""
    return int(time.time())


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, its expiry moved on at most every SESSION_REFRESH_S
    instead of on every response: re-signing and re-sending the cookie was 2 % of a web
    worker's CPU under the 500-user load. The cookie only says who is signed in: when a
    sign-in ends is the server's record (data.sessions: a fixed expiry, sign-out,
    revocation, password change), checked on every request whatever the cookie says. The
    cookie's own expiry lags the last request by at most SESSION_REFRESH_S."""

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        now = now_s()
        sent = session.get("_rt")
        if isinstance(sent, int) and 0 <= now - sent < SESSION_REFRESH_S:
            return False
        session["_rt"] = now             # serialised with the rest (save_session asks this first)
        return True


def init_security(server: Flask, settings: Any, key: str) -> LoginManager:
    if settings.trusted_proxies:
        # Behind N proxies the client's address is the Nth from the right of X-Forwarded-For;
        # without this every request would come from the proxy, and the sign-in limits per
        # address would count everyone as one.
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    server.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.https),
        SESSION_COOKIE_NAME="qms_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        REMEMBER_COOKIE_DURATION=timedelta(days=settings.remember_days),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=bool(settings.https),
        REMEMBER_COOKIE_NAME="qms_remember",
    )
    server.session_interface = SessionCookies()
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.user_loader(load_session_user)
    manager.init_app(server)
    return manager
