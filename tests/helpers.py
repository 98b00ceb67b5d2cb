"""Helpers shared by test modules."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from data.timeutil import day_start, fmt_ms, now_ms, parse_iso

# The password hash method of the tests' apps: Argon2id, the production code path, at 64 KiB
# and one pass (0.04 ms a hash instead of ~20).
FAST_HASH = "argon2id:64:1:1"


def make_app(settings: Any) -> Any:
    """create_app(settings) whose account store hashes passwords with FAST_HASH."""
    from auth import passwords
    from factory import create_app
    app = create_app(settings)
    app.server.extensions["qms"].users._method = passwords.check_method(FAST_HASH)
    return app


def today_ago(longest_ago_ms: int, now: int | None = None) -> Callable[[float], int]:
    """Instants "so many ms ago" that all fall today (UTC), for tests of since-midnight KPIs
    such as completed_today. Past `longest_ago_ms` after midnight that is plain now minus the
    offset; closer to midnight the offsets shrink in proportion, so every instant lies between
    midnight and now in the same order. Within 2 s of midnight it first waits them out."""
    if now is None:
        now = now_ms()
        if now - day_start(now) < 2000:
            time.sleep((2000 - (now - day_start(now))) / 1000)
            now = now_ms()
    scale = min(1.0, (now - day_start(now) - 1) / max(longest_ago_ms, 1))
    return lambda ago_ms: now - int(ago_ms * scale)


# The end of a busy window of the simulator's (a Thursday's working day), for `busy_events`.
BUSY_END_MS = parse_iso("2026-12-03T18:00:00Z")


def busy_events(hours: float, end_ms: int, seed: int, rate: float, after_ms: int = 0) -> list[dict[str, Any]]:
    """The simulator's events of the `hours` before a busy moment (BUSY_END_MS) and `after_ms`
    past it, moved so that moment falls on `end_ms`: the same events whatever the hour and
    weekday the suite runs at. The simulator's activity follows both, and tests that simulated
    the hours before now failed at night (an hour held 98 events at 03:40 UTC on a Friday where
    a test needed more than 150). Its events carry no time but their timestamp."""
    from data.simulator import Simulator
    from data.timeutil import to_datetime
    start = to_datetime(BUSY_END_MS - int(hours * 3_600_000))
    events = Simulator(seed=seed, rate=rate, start=start).events_between(start, to_datetime(BUSY_END_MS + after_ms))
    by_ms = end_ms - BUSY_END_MS
    return [{**e, "timestamp": fmt_ms(parse_iso(e["timestamp"]) + by_ms)} for e in events]


def everything_in_redis(r: Any) -> bytes:
    """Every key name and value in the test database, concatenated."""
    out: list[bytes] = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key)
        if kind == b"string":
            out.append(r.get(key))
        elif kind == b"hash":
            for f, v in r.hgetall(key).items():
                out += [f, v]
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"zset":
            out += list(r.zrange(key, 0, -1))
        elif kind == b"list":
            out += list(r.lrange(key, 0, -1))
        elif kind == b"stream":
            for _, fields in r.xrange(key):
                for f, v in fields.items():
                    out += [f, v]
    return b"\x00".join(x for x in out if x is not None)



def admin_test_client(redis_url: str, data_dir: str, name: str = "admin-user") -> Any:
    """A module-scoped app (no aggregator, demo, live or alert threads) on `redis_url` and a
    test client acting as an admin through a Bearer JWT, for tests that load data once."""
    from auth.principal import issue_jwt
    from settings import Settings
    settings = Settings.from_env({}, redis_url=redis_url, run_aggregator=False, demo=False, live=False,
                                 alerts=False, secret_key="k" * 48, data_dir=data_dir)
    app = make_app(settings)
    svc = app.server.extensions["qms"]
    svc.users.add(name, ["admin"], "correct horse battery")
    client = app.server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + issue_jwt(name, ["admin"], 3600, svc.secret_key)
    return client


def expand_static(node: Any) -> Any:
    """A component tree (as JSON) with every StaticHtml (components/static_html.py) read back into
    the Dash-like nodes its HTML holds — {"type", "namespace", "props": {..., "children"}} — so
    tests that walk bodies read tiles, rows and cards as before. Links written for dcc.Link come
    back as dcc.Link; an element's only text child is its `children` string, as Dash writes it."""
    if isinstance(node, list):
        return [expand_static(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("namespace") == "qms_static":
        from bs4 import BeautifulSoup

        p = node.get("props") or {}
        root = {"className": p.get("className"), "style": p.get("style"), **(p.get("attrs") or {})}
        if p.get("id") is not None:
            root["id"] = p["id"]
        soup = BeautifulSoup(f"<{p['tag']}>{p.get('html', '')}</{p['tag']}>", "html.parser")
        return _dash_node(soup.find(p["tag"]), {k: v for k, v in root.items() if v is not None})
    return {k: expand_static(v) for k, v in node.items()}


def _dash_node(el: Any, props: dict[str, Any] | None = None) -> Any:
    from bs4 import NavigableString

    if isinstance(el, NavigableString):
        return str(el)
    out: dict[str, Any] = {}
    for k, v in el.attrs.items():
        v = " ".join(v) if isinstance(v, list) else v
        if k == "class":
            out["className"] = v
        elif k == "id":
            import json
            out["id"] = json.loads(v) if v.startswith("{") else v
        elif k != "data-dash-link":
            out[{"colspan": "colSpan", "rowspan": "rowSpan", "tabindex": "tabIndex", "for": "htmlFor"}.get(k, k)] = v
    out.update(props or {})
    kids = [_dash_node(c) for c in el.children]
    out["children"] = kids[0] if len(kids) == 1 and isinstance(kids[0], str) else (kids or None)
    if el.name == "a" and el.has_attr("data-dash-link"):
        return {"type": "Link", "namespace": "dash_core_components", "props": out}
    return {"type": el.name.capitalize(), "namespace": "dash_html_components", "props": out}

