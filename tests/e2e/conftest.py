"""Browser-test plumbing, faster than dash.testing's own `dash_duo` with the same interface:

- one headless Chromium for the whole session (starting and quitting one per test cost ~3 s
  a test); each test gets a fresh tab, no cookies, the default window size and an empty
  console log, so nothing of one test is seen by the next;
- the app served by werkzeug's `make_server` in a thread, shut down at once after the test
  (dash's ThreadedRunner kills its thread and waits for it), on the same port in every test
  of a session: the browser keeps the fingerprinted Dash and Plotly bundles (and their
  compiled code) in its cache from one test to the next instead of loading and compiling
  them afresh for a new origin each time;
- `dash_duo.sign_in(user, path)`: signs in over HTTP (the real sign-in form's POST, CSRF
  token and all), hands the session cookies to the browser and opens `path` — one page load
  instead of the form's page, the role's home page and then the page the test is about. The
  tests of the sign-in form itself (test_sign_out, test_outage, test_dash001) still type into it.
"""
from __future__ import annotations

import re
import socket
import threading
from typing import Any, Iterator

import pytest
import requests
from dash.testing.composite import DashComposite
from selenium.common.exceptions import NoSuchElementException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import PASSWORD


class _Server:
    """dash.testing's runner interface (`runner(app, **kwargs)`, `.url`, `.stop()`) on a
    werkzeug server: starts in milliseconds and stops at once. Connections still open at the
    stop (keep-alive, a live socket) are closed, so nothing of the app outlives its test."""

    def __init__(self, port: int = 0) -> None:
        self.srv: Any = None
        self.app: Any = None
        self.port = port
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __call__(self, app: Any, **kwargs: Any) -> None:
        self.stop()
        app.scripts.config.serve_locally = True
        app.css.config.serve_locally = True
        self.app = app
        runner = self

        try:
            srv = make_server("127.0.0.1", int(kwargs.get("port") or self.port), app.server, threaded=True)
        except OSError:                 # the session's port is taken: any port will do
            srv = make_server("127.0.0.1", 0, app.server, threaded=True)
        process_request, shutdown_request = srv.process_request, srv.shutdown_request

        def track(request: socket.socket, client_address: Any) -> None:
            with runner._lock:
                runner._open.add(request)
            process_request(request, client_address)

        def untrack(request: socket.socket) -> None:
            with runner._lock:
                runner._open.discard(request)
            shutdown_request(request)
        srv.process_request, srv.shutdown_request = track, untrack
        srv.daemon_threads = True
        self.srv, self.port = srv, srv.server_port
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name=f"e2e-server-{self.port}").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.srv is None:
            return
        hub = self.app.server.extensions.get("qms_hub") if self.app is not None else None
        if hub is not None:        # its thread waits for Redis up to a second: not the next test's time
            threading.Thread(target=hub.stop, daemon=True).start()
        self.srv.shutdown()
        self.srv.server_close()
        with self._lock:
            still_open, self._open = list(self._open), set()
        for sock in still_open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.srv = self.app = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SharedDuo(DashComposite):
    """A `dash_duo` over the session's browser and this test's server."""

    def __init__(self, server: Any, **kwargs: Any) -> None:   # noqa: D107 (see DashComposite)
        super().__init__(server, **kwargs)
        self.home_size = self.driver.get_window_size()
        # dash.testing sets an implicit wait of 2 s: every `find_elements` that rightly finds
        # nothing ("no widget on this page") waited 2 s. Instead `find_element` waits up to
        # 2 s for its element, as before, and `find_elements` reports what the page has now.
        self.driver.implicitly_wait(0)

    def find_element(self, selector: str, attribute: str = "CSS_SELECTOR") -> Any:
        by = getattr(By, attribute.upper())
        try:
            return WebDriverWait(self.driver, 2, poll_frequency=0.05, ignored_exceptions=(NoSuchElementException,)) \
                .until(lambda d: d.find_element(by, selector))
        except TimeoutException:
            return self.driver.find_element(by, selector)     # raises NoSuchElementException, as before

    def find_elements(self, selector: str, attribute: str = "CSS_SELECTOR") -> Any:
        return self.driver.find_elements(getattr(By, attribute.upper()), selector)

    def begin(self, server: _Server) -> None:
        """A fresh tab with the default size, no cookies and an empty console log."""
        self.server = server
        driver = self.driver
        old = driver.window_handles
        driver.switch_to.new_window("tab")
        for handle in old:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(driver.window_handles[0])
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        size = driver.get_window_size()
        if (size["width"], size["height"]) != (self.home_size["width"], self.home_size["height"]):
            driver.set_window_size(self.home_size["width"], self.home_size["height"])
        driver.get_log("browser")          # drained: what is left of the last test is not this one's
        self._last_ts = 0
        self._url = ""

    def end(self) -> None:
        """Forget the test's origin: its local storage, its cache, and the page."""
        try:
            if self.server is not None and self.server.port:   # all but the HTTP cache
                self.driver.execute_cdp_cmd("Storage.clearDataForOrigin", {
                    "origin": self.server.url,
                    "storageTypes": "cookies,local_storage,indexeddb,websql,service_workers,cache_storage,file_systems"})
            self.driver.get("about:blank")
        finally:
            if self.server is not None:
                self.server.stop()

    def sign_in(self, username: str, path: str = "/", password: str = PASSWORD, remember: bool = False) -> None:
        """Sign in through the sign-in form's POST (outside the browser), give the browser the
        session's cookies, and open `path`."""
        base = self.server.url
        http = requests.Session()
        form = http.get(base + "/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token, form.text[:300]
        res = http.post(base + "/login", data={"username": username, "password": password,
                                               "csrf_token": token.group(1),
                                               **({"remember": "on"} if remember else {})},
                        allow_redirects=False, timeout=10)
        assert res.status_code == 302, (res.status_code, res.text[:300])
        for c in http.cookies:
            self.driver.execute_cdp_cmd("Network.setCookie", {
                "name": c.name, "value": c.value, "url": base, "path": c.path or "/",
                "httpOnly": bool(c.has_nonstandard_attr("HttpOnly") or c.name == "qms_session"),
                **({"expires": c.expires} if c.expires else {})})
        self.driver.get(base + path)


@pytest.fixture(scope="session")
def _e2e_browser(request: Any, tmp_path_factory: Any) -> Iterator[SharedDuo]:
    duo = SharedDuo(
        None,
        browser=request.config.getoption("webdriver"),
        remote=request.config.getoption("remote"),
        remote_url=request.config.getoption("remote_url"),
        headless=request.config.getoption("headless"),
        options=request.config.hook.pytest_setup_options(),
        download_path=str(tmp_path_factory.mktemp("download")),
        percy_assets_root=request.config.getoption("percy_assets"),
        percy_finalize=request.config.getoption("nopercyfinalize"),
        pause=request.config.getoption("pause"),
    )
    duo.session_port = _free_port()
    try:
        yield duo
    finally:
        duo.__exit__(None, None, None)


@pytest.fixture
def dash_duo(request: Any, _e2e_browser: SharedDuo) -> Iterator[SharedDuo]:
    """dash.testing's `dash_duo` (a browser and `start_server`), over the session's browser."""
    duo = _e2e_browser
    try:
        duo.begin(_Server(duo.session_port))
    except WebDriverException:          # the browser died in an earlier test: a new one
        duo.__exit__(None, None, None)
        duo.__init__(None, browser=duo._browser, remote=duo._remote, remote_url=duo._remote_url,
                     headless=duo._headless, options=request.config.hook.pytest_setup_options(),
                     download_path=duo.download_path)
        duo.begin(_Server(duo.session_port))
    try:
        yield duo
    finally:
        duo.end()
