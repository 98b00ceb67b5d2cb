"""Locust users of the QMS dashboard: what a person in a browser does, as the browser sends it.

Each user takes an account (LOAD_USERS: JSON list of {name, role, password, dashboards}),
signs in through the /login form with its CSRF token, opens its role dashboards (the page,
/_dash-layout, /_dash-dependencies and the callback POSTs the renderer sends), keeps the
page's live socket open (/ws, subscribed to the page's channels as assets/live.js does; a
data_update after the first snapshot of a channel makes the page redraw its live widgets,
at most once per 2 s per channel — or per the page's redraw period for its timeframe
(live-config data-redraw) — exactly as live.js's tick does), switches timeframes and
filters, drills down to the events behind a KPI and exports the dashboard as CSV.

The callback bodies are the ones a real Chromium sent (LOAD_PAYLOADS, recorded by
bench/load/capture.py); per request the locustfile only puts in what the browser would:
this page's end_id, the widget bodies and definition the router's answer drew, the
timeframe or filter picked, the live tick's payload. Request types are named by action
("dash: open executive", "dash: timeframe 7d", ...) so the report reads per type.

Run through bench/load/run.py (which starts the deployment and reports), or by hand:
    LOAD_USERS=users.json LOAD_PAYLOADS=payloads.json python bench/load/locust_main.py \
        -f bench/load/locustfile.py --headless -u 20 -r 5 -t 30s --host http://127.0.0.1:PORT
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import time
from typing import Any
from urllib.parse import urlencode

import gevent
import orjson
import websocket                        # websocket-client: blocking, cooperative under gevent's patches
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

from dashjson import Dependencies, find_component, page_facts, set_input

USERS: list[dict[str, Any]] = json.load(open(os.environ["LOAD_USERS"]))
PAYLOADS: dict[str, Any] = json.load(open(os.environ["LOAD_PAYLOADS"]))["dashboards"]
LIVE_REFRESH = os.environ.get("LOAD_LIVE_REFRESH", "1") == "1"
OUT = os.environ.get("LOAD_OUT")
TOUR = os.environ.get("LOAD_TOUR") == "1"
# Smoke mode: the last page stays open until a live update has come over its socket and the
# redraw it causes has been sent (a fixed 8 s saw none on a fast machine, 4 s none under CI
# load), at most TOUR_LIVE_WAIT_S; then TOUR_LINGER_S more.
TOUR_LIVE_WAIT_S = 60.0
TOUR_LINGER_S = 1.0
TOURS_DONE: list[str] = []
TICK_S = 2.0                             # assets/live.js TICK_MS
DEPS: list[Dependencies] = []            # /_dash-dependencies, parsed once per process
TIMEFRAMES = ("1h", "4h", "7d", "30d", "24h")
_accounts = itertools.count()

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
DASH_CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


def _dump_greenlets() -> None:
    """Every greenlet's stack into <LOAD_OUT>.greenlets.txt (SIGUSR1; bench/load/run.py sends it
    to a locust that has not quit past its run time: py-spy sees only the idle hub)."""
    import gevent.util
    with open((OUT or "/tmp/locust-extra.json") + ".greenlets.txt", "w") as fh:
        gevent.util.print_run_info(file=fh)


gevent.signal_handler(signal.SIGUSR1, _dump_greenlets)

# What the run tells beyond locust's own request statistics (written to LOAD_OUT at the end).
COUNTS: dict[str, int] = {"ws_opened": 0, "ws_failed": 0, "ws_closed_by_server": 0, "ws_messages": 0,
                          "ws_data_updates": 0, "ws_live_updates": 0, "ws_alerts": 0, "ws_errors": 0, "ws_subscribed": 0,
                          "live_refreshes": 0, "interval_refreshes": 0, "sign_ins": 0, "pages_with_kpis": 0,
                          "drilldowns_pinned": 0}
STATUS: dict[str, dict[str, int]] = {}       # request type -> status -> count
LATENCY: list[float] = []                    # data_update: now - message timestamp (ms)


def _count_status(name: str, status: int) -> None:
    per = STATUS.setdefault(name, {})
    per[str(status)] = per.get(str(status), 0) + 1


def label(body: dict[str, Any], dash: str) -> str:
    """A request type for a callback POST, by what it draws."""
    out = str(body.get("output", ""))
    changed = body.get("changedPropIds") or []
    if "page.children" in out:
        path = next((i.get("value") for i in body.get("inputs") or []
                     if i.get("property") == "pathname" or i.get("id") == "route-path"), "")
        return "dash: drilldown open" if str(path).startswith("/events/") else f"dash: open {dash}"
    if '"w-body"' in out:
        # On a page load: Dash's initial call ([] changed, or every input when a grid arrives).
        return f"dash: page refresh {dash}" if len(changed) != 1 else f"dash: refresh {dash}"
    if "events-grid" in out or b"getRowsRequest" in orjson.dumps(body.get("inputs")):
        return "dash: drilldown rows"
    return "dash: " + re.sub(r"[^a-z-]+", " ", out.split(".")[2] if out.count(".") > 2 else out).strip()[:40]


def _copy(body: Any) -> Any:
    """A recorded request body to fill in (plain JSON: a round trip through orjson is a
    fraction of copy.deepcopy's cost)."""
    return orjson.loads(orjson.dumps(body))


class Page:
    """What the current page drew (the router's answer) and how the browser addresses it."""

    def __init__(self, dash: str, end_id: str) -> None:
        self.dash = dash
        self.end_id = end_id
        self.bodies: list[str] = []
        self.defn: Any = None
        self.channels: list[str] = []
        self.timeframe = "24h"
        self.scope: str | None = None
        self.kpis = 0
        self.intervals: dict[str, int] = {}
        self.can_export = False
        self.redraw_s: dict[str, float] = {}     # live-config data-redraw, by timeframe

    def tick_s(self) -> float:
        """live.js tickMs(): the page's redraw period for its timeframe, at least TICK_S."""
        return max(TICK_S, self.redraw_s.get(self.timeframe, 0.0))


class DashboardUser(FastHttpUser):
    wait_time = between(float(os.environ.get("LOAD_WAIT_MIN", "5")), float(os.environ.get("LOAD_WAIT_MAX", "15")))
    network_timeout = float(os.environ.get("LOAD_TIMEOUT", "30"))
    connection_timeout = float(os.environ.get("LOAD_TIMEOUT", "30"))

    def on_start(self) -> None:
        self.account = USERS[next(_accounts) % len(USERS)]
        self.page: Page | None = None
        self.ws: Any = None
        self.ws_greenlet: Any = None
        self.poller: Any = None
        self.ticks: dict[str, dict[str, Any]] = {}
        self.live_updates = 0            # data updates after a channel's snapshot, on the open page's socket
        self.live_refreshes = 0          # redraws they caused (COUNTS counts every user's)
        self.sign_in()
        self.open_dashboard(self.account["dashboards"][0])
        if TOUR:
            self.tour()

    def tour(self) -> None:
        """Smoke mode: every action once (each dashboard of the role), the last page left
        open until a live update and its redraw came (at most TOUR_LIVE_WAIT_S); when every user
        is through, the run ends."""
        for i, dash in enumerate(self.account["dashboards"]):
            if i:
                self.open_dashboard(dash)
            for action in (self.timeframe, self.filter, self.export, self.drilldown):
                action()
        self.open_dashboard(self.account["dashboards"][0])
        deadline = time.monotonic() + TOUR_LIVE_WAIT_S
        refreshed = self.live_refreshes
        while self.page is not None and self.page.channels and time.monotonic() < deadline:
            if self.live_updates and self.live_refreshes > refreshed:
                break
            gevent.sleep(0.2)
        gevent.sleep(TOUR_LINGER_S)
        TOURS_DONE.append(self.account["name"])
        if len(TOURS_DONE) >= self.environment.parsed_options.num_users:
            gevent.spawn(self.environment.runner.quit)
        raise StopUser()

    def on_stop(self) -> None:
        self.close_ws()
        if self.poller is not None:
            self.poller.kill(block=False)

    # --- requests --------------------------------------------------------------------------

    def _csrf(self) -> str:
        for c in self.client.cookiejar:
            if c.name == "_csrf_token":
                return str(c.value)
        return ""

    def get(self, path: str, name: str, expect: int = 200, headers: dict[str, str] | None = None) -> Any:
        with self.client.get(path, name=name, catch_response=True, allow_redirects=False,
                             headers=headers) as resp:
            _count_status(name, resp.status_code)
            if resp.status_code != expect:
                resp.failure(f"HTTP {resp.status_code} (expected {expect}): {str(resp.text)[:200]}")
            return resp

    def dash_post(self, body: dict[str, Any], name: str, page: Page) -> Any:
        if DEPS:
            # The served app's declaration of this callback, with the recorded values. The
            # router's input is the path (assets' ROUTE_JS copies url.pathname to route-path).
            path = next((i.get("value") for i in body.get("inputs") or []
                         if isinstance(i, dict) and i.get("property") == "pathname"), None)
            body = DEPS[0].reshape(body, {("route-path", "data"): path, ("url", "search"): "",
                                          ("theme", "data"): "light"})
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": self._csrf()}
        path = "/_dash-update-component" + (f"?endId={page.end_id}" if page.end_id else "")
        with self.client.post(path, data=orjson.dumps(body), headers=headers, name=name,
                              catch_response=True) as resp:
            _count_status(name, resp.status_code)
            if resp.status_code not in (200, 204):
                resp.failure(f"HTTP {resp.status_code}: {str(resp.text)[:200]}")
                return None
            if resp.status_code == 204:
                return {}
            try:
                return orjson.loads(resp.content)["response"]
            except (ValueError, KeyError, TypeError) as exc:
                resp.failure(f"not a Dash answer: {exc}")
                return None

    # --- sign-in --------------------------------------------------------------------------------

    def sign_in(self) -> None:
        form = self.get("/login", "auth: login form")
        m = CSRF_FIELD.search(form.text or "")
        if not m:
            raise RuntimeError("no csrf_token in the sign-in form")
        form_body = urlencode({"csrf_token": m.group(1), "next": "/", "username": self.account["name"],
                               "password": self.account["password"]})
        with self.client.post("/login", name="auth: sign in", allow_redirects=False, catch_response=True,
                              data=form_body, headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
            _count_status("auth: sign in", resp.status_code)
            if resp.status_code != 302 or "/login" in (resp.headers.get("Location") or ""):
                resp.failure(f"sign-in answered {resp.status_code}")
                raise RuntimeError("sign-in failed")
        COUNTS["sign_ins"] += 1

    # --- pages ----------------------------------------------------------------------------------

    def open_dashboard(self, dash: str) -> None:
        """A full page load of /dashboards/<dash>: the HTML, Dash's layout and dependencies,
        then the callbacks the renderer sends. The page comes drawn in the layout answer (the
        browser's request carries the page as its Referer), or in the router's answer."""
        self.close_ws()
        rec = PAYLOADS[dash]
        html = self.get(f"/dashboards/{dash}", "page: /dashboards/*")
        m = DASH_CONFIG.search(html.text or "")
        end_id = orjson.loads(m.group(1)).get("end_id", "") if m else ""
        layout = self.get("/_dash-layout", "dash: layout", headers={"Referer": f"{self.host}/dashboards/{dash}"})
        deps = self.get("/_dash-dependencies", "dash: dependencies")
        if not DEPS and deps.status_code == 200:
            DEPS.append(Dependencies(orjson.loads(deps.content)))
        page = Page(dash, end_id)
        if layout.status_code == 200:
            self.read_page(orjson.loads(layout.content), page)
        for post in rec["open"]["posts"]:
            body = _copy(post["body"])
            name = label(body, dash)
            if name.startswith("dash: open"):
                answer = self.dash_post(body, name, page)
                if answer:
                    self.read_page(answer.get("page", {}).get("children"), page)
                self.page = page
            else:
                self.dash_post(self.refresh_body(body, page), name, page)
        self.page = page
        if page.channels:
            self.open_ws(page)
        if page.intervals and PAYLOADS[dash].get("interval", {}).get("posts"):
            self.poller = gevent.spawn(self.poll, page)

    def poll(self, page: Page) -> None:
        """The widgets' own intervals (a page with no data channel: "live" widgets poll at
        refresh_ms): one refresh of the due widgets per period while the page is open."""
        every = min(page.intervals.values()) / 1000
        due = sorted(w for w, ms in page.intervals.items() if ms / 1000 <= every)
        while True:
            gevent.sleep(every)
            if self.page is not page:
                return
            body = self.refresh_body(PAYLOADS[page.dash]["interval"]["posts"][0]["body"], page)
            set_input(body, "w-due", "data", {"w": due, "t": int(time.time() * 1000)})
            COUNTS["interval_refreshes"] += 1
            self.dash_post(body, f"dash: interval refresh {page.dash}", page)

    def read_page(self, layout: Any, page: Page) -> None:
        """What a drawn dashboard page holds: its widget bodies, definition, live channels,
        widget intervals, KPI cards and whether its "Export CSV" link shows (d-none for roles
        without export:reports). A layout without the dashboard leaves the page as it was."""
        facts = page_facts(layout)
        defn = facts["components"].get("dash-def")
        if defn is None:
            return
        page.bodies = facts["bodies"]
        page.defn = defn.get("data")
        cfg = facts["components"].get("live-config") or {}
        page.channels = str(cfg.get("data-channels") or "").split()
        try:
            page.redraw_s = {str(k): float(v) / 1000 for k, v in json.loads(cfg.get("data-redraw") or "{}").items()}
        except (ValueError, AttributeError):
            page.redraw_s = {}
        page.kpis = len(facts["kpis"])
        page.intervals = facts["intervals"]
        export = facts["components"].get("dash-export") or {}
        page.can_export = "d-none" not in str(export.get("className", "d-none"))
        if page.kpis:
            COUNTS["pages_with_kpis"] += 1

    def refresh_body(self, template: dict[str, Any], page: Page) -> dict[str, Any]:
        """A refresh request for this page: its drawn widgets and definition, its view."""
        body = _copy(template)
        if page.bodies and isinstance(body.get("outputs"), list) and isinstance(body["outputs"][0], list):
            body["outputs"][0] = [{"id": {"type": "w-body", "w": w}, "property": "children"} for w in page.bodies]
        if page.defn is not None:
            set_input(body, "dash-def", "data", page.defn)
        set_input(body, "dash-timeframe", "value", page.timeframe)
        set_input(body, "dash-scope", "value", page.scope)
        return body

    def on_dashboard(self) -> Page:
        if self.page is None or self.page.dash == "events":
            self.open_dashboard(random.choice(self.account["dashboards"]))
        assert self.page is not None
        return self.page

    # --- tasks ------------------------------------------------------------------------------------

    @task(2)
    def reopen(self) -> None:
        self.open_dashboard(random.choice(self.account["dashboards"]))

    @task(4)
    def timeframe(self) -> None:
        page = self.on_dashboard()
        rec = PAYLOADS[page.dash].get("timeframe", {})
        if not rec.get("posts"):
            return
        page.timeframe = random.choice([t for t in TIMEFRAMES if t != page.timeframe])
        self.dash_post(self.refresh_body(rec["posts"][0]["body"], page), f"dash: timeframe {page.timeframe}", page)

    @task(3)
    def filter(self) -> None:
        page = self.on_dashboard()
        rec = PAYLOADS[page.dash].get("filter")
        if not rec or not rec.get("posts"):
            return self.timeframe()
        options = self.scope_options(page)
        page.scope = None if page.scope else (random.choice(options) if options else rec["value"])
        self.dash_post(self.refresh_body(rec["posts"][0]["body"], page), f"dash: filter {page.dash}", page)

    def scope_options(self, page: Page) -> list[str]:
        return PAYLOADS[page.dash].get("filter", {}).get("options") or []

    @task(2)
    def drilldown(self) -> None:
        """A click on a KPI card's link: the router draws the events page, the grid asks
        for its first rows. The live socket stays open (the page has no live channels)."""
        page = self.on_dashboard()
        rec = PAYLOADS[page.dash].get("drilldown")
        if not rec:
            return
        events_page = Page("events", page.end_id)
        pinned: Any = None               # the window the events page pinned (its events-kpi store)
        for post in rec["posts"]:
            body = _copy(post["body"])
            if pinned is not None:
                set_input(body, "events-kpi", "data", pinned)
            got = self.dash_post(body, label(body, page.dash), events_page)
            store = find_component(got, "events-kpi") if isinstance(got, dict) else None
            if store is not None and store.get("data"):
                # As the browser: the grid asks for the window the router's answer pinned now,
                # not the recorded one (captured on another day: every workflow since then
                # looked like one that left its state after the window's end).
                pinned = store["data"]
                COUNTS["drilldowns_pinned"] += 1
        self.unsubscribe_all()
        self.page = events_page

    @task(1)
    def export(self) -> None:
        page = self.on_dashboard()
        if not page.can_export:          # no link on this user's page
            return
        scope = f"&{page.scope}" if page.scope else ""
        resp = self.get(f"/api/export/{page.dash}.csv?timeframe={page.timeframe}{scope}", "csv export")
        if resp.status_code == 200 and not (resp.text or "").count("\n"):
            resp.failure("an empty CSV")

    # --- the live socket (assets/live.js) -----------------------------------------------------------

    def open_ws(self, page: Page) -> None:
        base = self.host.rstrip("/")
        url = "ws" + base[4:] + "/ws"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.client.cookiejar)
        t0 = time.perf_counter()
        exc: Exception | None = None
        try:
            # As a browser would, minus the UTF-8 check websocket-client does in pure Python (a
            # twentieth of locust's CPU; the server sends orjson's UTF-8).
            ws = websocket.create_connection(url, header=[f"Cookie: {cookie}"], origin=base, timeout=30,
                                             skip_utf8_validation=True)
            ws.send(json.dumps({"type": "subscribe", "channels": page.channels}))
        except Exception as e:           # noqa: BLE001 - reported as a failed "ws connect"
            exc, ws = e, None
        events.request.fire(request_type="WS", name="ws connect", response_time=(time.perf_counter() - t0) * 1000,
                            response_length=0, exception=exc, context={})
        _count_status("ws connect", 101 if exc is None else 0)
        if ws is None:
            COUNTS["ws_failed"] += 1
            return
        COUNTS["ws_opened"] += 1
        self.ws = ws
        self.ticks = {}
        self.live_updates = 0
        self.ws_greenlet = gevent.spawn(self.ws_loop, ws, page)

    def ws_loop(self, ws: Any, page: Page) -> None:
        ws.settimeout(None)
        seen: set[str] = set()
        while True:
            try:
                raw = ws.recv()
            except Exception:            # noqa: BLE001 - closed by us (page left) or by the server
                if self.ws is ws:
                    COUNTS["ws_closed_by_server"] += 1
                return
            if not raw:
                if self.ws is ws:
                    COUNTS["ws_closed_by_server"] += 1
                return
            COUNTS["ws_messages"] += 1
            try:
                msg = orjson.loads(raw)
            except ValueError:
                continue
            kind = msg.get("type")
            if kind == "subscribed":
                COUNTS["ws_subscribed"] += 1
            elif kind == "error":
                COUNTS["ws_errors"] += 1
            elif kind == "alert":
                COUNTS["ws_alerts"] += 1
            elif kind == "data_update":
                COUNTS["ws_data_updates"] += 1
                channel = str(msg.get("channel"))
                if channel in seen:      # the snapshot after subscribing holds what the page drew
                    # Push latency of live updates only: a snapshot carries the time its data
                    # was published, possibly long before this socket subscribed.
                    if isinstance(msg.get("timestamp"), (int, float)):
                        LATENCY.append(time.time() * 1000 - msg["timestamp"])
                    self.live_updates += 1
                    COUNTS["ws_live_updates"] += 1
                    self.tick(page, channel, {"channel": channel, "version": (msg.get("data") or {}).get("version"),
                                              "timestamp": msg.get("timestamp")})
                elif page.tick_s() > TICK_S:     # live.js: the next redraw a period after the page's drawing
                    self.ticks.setdefault(channel, {"last": 0.0, "pending": None, "timer": None})["last"] = \
                        time.monotonic()
                seen.add(channel)

    def tick(self, page: Page, channel: str, payload: dict[str, Any]) -> None:
        """live.js's tick: at most one per the page's redraw period (TICK_S at least) per
        channel, the trailing one kept."""
        t = self.ticks.setdefault(channel, {"last": 0.0, "pending": None, "timer": None})
        wait = t["last"] + page.tick_s() - time.monotonic()
        if wait <= 0 and t["timer"] is None:
            self.fire_tick(page, t, payload)
            return
        t["pending"] = payload
        if t["timer"] is None:
            def later() -> None:
                t["timer"] = None
                pending, t["pending"] = t["pending"], None
                if pending:
                    self.fire_tick(page, t, pending)
            t["timer"] = gevent.spawn_later(max(wait, 0), later)

    def fire_tick(self, page: Page, t: dict[str, Any], payload: dict[str, Any]) -> None:
        t["last"] = time.monotonic()
        rec = PAYLOADS[page.dash].get("live", {})
        if not LIVE_REFRESH or self.page is not page or not rec.get("posts"):
            return
        body = self.refresh_body(rec["posts"][0]["body"], page)
        set_input(body, "live-tick", "data", payload)
        COUNTS["live_refreshes"] += 1
        self.live_refreshes += 1
        self.dash_post(body, f"dash: live refresh {page.dash}", page)

    def unsubscribe_all(self) -> None:
        if self.ws is not None and self.page is not None and self.page.channels:
            try:
                self.ws.send(json.dumps({"type": "unsubscribe", "channels": self.page.channels}))
            except Exception:            # noqa: BLE001 - the loop notices a broken socket
                pass

    def close_ws(self) -> None:
        ws, self.ws = self.ws, None
        for t in self.ticks.values():
            if t.get("timer") is not None:
                t["timer"].kill(block=False)
        self.ticks = {}
        if self.ws_greenlet is not None:
            self.ws_greenlet.kill(block=False)
            self.ws_greenlet = None
        if ws is not None:
            # The close frame, then the socket closed, as a page left does — not ws.close(),
            # which waits for the server's close frame inside a bare `except: pass`: a user
            # stopped at the run's end while waiting there swallowed locust's GreenletExit, went
            # back to sleep between tasks and was never killed, so locust never quit (the greenlet
            # dump of a hung run showed it: its User.stop waiting in killone).
            try:
                ws.send_close()
            except Exception:            # noqa: BLE001
                pass
            ws.shutdown()


@events.quitting.add_listener
def _write_out(environment: Any, **_: Any) -> None:
    if not OUT:
        return
    lat = sorted(LATENCY)
    pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None)  # noqa: E731
    with open(OUT, "w") as fh:
        json.dump({"counts": COUNTS, "status": STATUS,
                   "push_latency_ms": {"n": len(lat), "p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99)}}, fh)
