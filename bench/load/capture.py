"""Record what a real browser sends for each action of the load test, so the locustfile
replays requests the guard (auth/guard.py: declared schema, CSRF header, permission) and Dash
accept as a browser's, not requests written by hand.

One headless Chromium (selenium, /usr/bin/chromium + chromedriver) per role signs in through
/login, with a fetch hook installed before the page's scripts (as bench/pages.py does) that
keeps every POST /_dash-update-component body and its answer's status. Per dashboard it
records:

  open       navigation to /dashboards/<d>: the page, /_dash-layout, /_dash-dependencies and
             the callback POSTs the renderer sends (the router's answer is the page drawn)
  timeframe  the timeframe picker set to 7d (Dash's set_props, the same request a click makes)
  filter     the repository/team picker set to its first option (dashboards that offer it)
  live       the refresh a live tick sends (assets/live.js bumps live-tick on a data_update)
  drilldown  a click on the first KPI card's link to /events/<kpi>: the router's POST and the
             events grid's first page of rows
  export     the dashboard's "Export CSV" link (a plain GET)

    python bench/load/capture.py --base http://127.0.0.1:PORT --users users.json --out payloads.json

(bench/load/run.py --capture calls it against the stack it started.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

HOOK_JS = r"""
(() => {
  const orig = window.fetch;
  window.__qmsCalls = [];
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : ((input && input.url) || '');
    const rec = {url: url.replace(location.origin, ''), method: (init && init.method) || 'GET',
                 body: init && typeof init.body === 'string' ? init.body : null, status: null, size: null,
                 start: performance.now(), end: null};
    window.__qmsCalls.push(rec);
    const p = orig.apply(this, arguments);
    p.then((resp) => { rec.status = resp.status; rec.end = performance.now();
                       resp.clone().text().then((t) => { rec.size = t.length; }, () => {}); },
           () => { rec.status = -1; rec.end = performance.now(); });
    return p;
  };
})();
"""

# Resolves once no fetch is pending and none started for `quiet` ms (or after `timeout` ms).
SETTLE_JS = r"""
const quiet = arguments[0], timeout = arguments[1], done = arguments[arguments.length - 1];
const t0 = performance.now();
function check() {
  const calls = window.__qmsCalls || [];
  const pending = calls.filter((c) => c.status === null).length;
  const last = calls.reduce((m, c) => Math.max(m, c.end || c.start), 0);
  if ((pending === 0 && performance.now() - last >= quiet) || performance.now() - t0 > timeout) {
    done(calls.length);
    return;
  }
  setTimeout(check, 50);
}
setTimeout(check, 50);
"""


def _bench_pages() -> Any:
    """bench/pages.py, loaded by path: its name would be the app's `pages` package."""
    import importlib.util
    bench = Path(__file__).resolve().parent.parent
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("bench_pages", bench / "pages.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def new_driver() -> Any:
    """bench/pages.py's Chromium, with the fetch hook installed before any page script."""
    driver = _bench_pages().new_driver()
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK_JS})
    return driver


def sign_in(driver: Any, base: str, user: str, password: str) -> None:
    """Through the /login form, as bench/pages.py signs in (the accounts share its password)."""
    pages = _bench_pages()
    if password != pages.PASSWORD:
        raise ValueError("bench/load accounts use bench/pages.py's PASSWORD")
    pages.sign_in(driver, base, user)


def settle(driver: Any, quiet_ms: int = 500, timeout_ms: int = 8000) -> None:
    driver.execute_async_script(SETTLE_JS, quiet_ms, timeout_ms)


def take(driver: Any) -> list[dict[str, Any]]:
    """The fetches since the last take (and forget them)."""
    calls = driver.execute_script("const c = window.__qmsCalls || []; window.__qmsCalls = []; return c;")
    return [c for c in calls if c.get("url")]


def dash_posts(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in calls:
        if "_dash-update-component" in c["url"] and c.get("body"):
            out.append({"body": json.loads(c["body"]), "status": c["status"], "size": c["size"]})
    return out


def set_props(driver: Any, component: str, props: dict[str, Any]) -> None:
    driver.execute_script("window.dash_clientside.set_props(arguments[0], arguments[1]);", component, props)


def first_option(driver: Any, component: str) -> Any:
    """The first option of a dropdown, from Dash's layout store (what a click would pick)."""
    return driver.execute_script(
        "const c = window.dash_component_api && window.dash_component_api.getLayout(arguments[0]);"
        "const o = c && c.props && c.props.options; return o && o.length ? (o[0].value ?? o[0]) : null;", component)


def capture_dashboard(driver: Any, base: str, dash: str, live_wait_s: float,
                      live_ingest: Callable[[bool], None]) -> dict[str, Any]:
    """The actions on one dashboard. Live ingest is paused (live_ingest(False)) but for the
    live step: every data_update makes the page send a refresh, and a page that never goes
    quiet cannot tell which request an action caused."""
    rec: dict[str, Any] = {}
    take(driver)
    driver.get(f"{base}/dashboards/{dash}")
    settle(driver, 800)
    calls = take(driver)
    rec["open"] = {"gets": sorted({c["url"] for c in calls if c["method"] == "GET"}), "posts": dash_posts(calls)}

    # A live tick: the refresh assets/live.js causes on a data_update.
    # A page with no data channel (the developer's) redraws its "live" widgets every
    # refresh_ms instead: its widgets' intervals pass through the w-due store.
    live_ingest(True)
    deadline = time.monotonic() + live_wait_s
    live: list[dict[str, Any]] = []
    interval: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not (live or interval):
        time.sleep(0.5)
        for p in dash_posts(take(driver)):
            changed = [str(c) for c in p["body"].get("changedPropIds") or []]
            if any(c.startswith("live-tick") for c in changed):
                live.append(p)
            elif changed == ["w-due.data"]:
                interval.append(p)
    live_ingest(False)
    settle(driver)
    take(driver)
    rec["live"] = {"posts": live[:1]}
    rec["interval"] = {"posts": interval[:1]}

    set_props(driver, "dash-timeframe", {"value": "7d"})
    settle(driver)
    rec["timeframe"] = {"value": "7d", "posts": [p for p in dash_posts(take(driver))
                                                 if "dash-timeframe.value" in (p["body"].get("changedPropIds") or [])]}
    set_props(driver, "dash-timeframe", {"value": "24h"})
    settle(driver)
    take(driver)

    option = first_option(driver, "dash-scope")
    visible = driver.execute_script("const f = document.getElementById('dash-filters');"
                                    "return !!f && !f.classList.contains('d-none');")
    if option and visible:
        set_props(driver, "dash-scope", {"value": option})
        settle(driver)
        rec["filter"] = {"value": option, "options": options(driver, "dash-scope"),
                         "posts": [p for p in dash_posts(take(driver))
                                                    if "dash-scope.value" in (p["body"].get("changedPropIds") or [])]}
        set_props(driver, "dash-scope", {"value": None})
        settle(driver)
        take(driver)

    rec["export"] = {"href": driver.execute_script(
        "const a = document.getElementById('dash-export'); return a ? a.getAttribute('href') : null;")}

    href = driver.execute_script(
        "const a = document.querySelector('[data-type=\"kpi_card\"] a[href^=\"/events/\"]');"
        "if (!a) return null; const h = a.getAttribute('href'); a.click(); return h;")
    if href:
        settle(driver, 1000)
        calls = take(driver)
        # What the click sent (a page's own interval refreshes may fall in the same moment).
        rec["drilldown"] = {"href": href, "gets": sorted({c["url"] for c in calls if c["method"] == "GET"}),
                            "posts": [p for p in dash_posts(calls) if '"w-body"' not in p["body"]["output"]]}
    return rec


def options(driver: Any, component: str) -> list[Any]:
    return driver.execute_script(
        "const c = window.dash_component_api && window.dash_component_api.getLayout(arguments[0]);"
        "return ((c && c.props && c.props.options) || []).map((o) => o.value ?? o);", component) or []


def capture(base: str, users: list[dict[str, Any]], live_wait_s: float = 15.0,
            live_ingest: Callable[[bool], None] = lambda on: None) -> dict[str, Any]:
    """One account per role; each dashboard of that role (admin's are covered by the others)."""
    out: dict[str, Any] = {"base": base, "captured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "dashboards": {}}
    seen_roles: set[str] = set()
    for u in users:
        if u["role"] in seen_roles or u["role"] == "admin":
            continue
        seen_roles.add(u["role"])
        driver = new_driver()
        try:
            sign_in(driver, base, u["name"], u["password"])
            for dash in u["dashboards"]:
                t0 = time.perf_counter()
                out["dashboards"][dash] = {"role": u["role"],
                                           **capture_dashboard(driver, base, dash, live_wait_s, live_ingest)}
                print(f"  captured {dash} as {u['name']} ({u['role']}) in {time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            driver.quit()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--users", required=True, help="JSON list of {name, role, password, dashboards}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--live-wait", type=float, default=15.0)
    args = ap.parse_args()
    users = json.loads(Path(args.users).read_text())
    Path(args.out).write_text(json.dumps(capture(args.base, users, args.live_wait), indent=1))


if __name__ == "__main__":
    main()
