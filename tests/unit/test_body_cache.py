"""callbacks.dashboard.BodyCache.drawing: one draw of a key at a time — a request that misses
a key being drawn waits for that draw (and then takes its body) instead of drawing it too."""
from __future__ import annotations

import threading
import time

from callbacks.dashboard import BodyCache


def _until(cond: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not cond():                       # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_bdc001_a_second_draw_of_a_key_waits_for_the_first_and_finds_its_body() -> None:
    cache = BodyCache(stale_s=5)
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with cache.drawing("k"):
            order.append("first in")
            release.wait(10)
            cache.put(("k", "x"), 7, 1000, {"drawn": "first"})
            order.append("first out")

    def second() -> None:
        with cache.drawing("k"):
            order.append(f"second in, finds {cache.get(('k', 'x'), 7, 1000)}")

    t1 = threading.Thread(target=first)
    t1.start()
    _until(lambda: order == ["first in"], "the first draw started")
    t2 = threading.Thread(target=second)
    t2.start()
    _until(lambda: cache._drawing["k"][1] == 2, "the second request is at the key's lock")
    with cache.drawing("other"):              # another key is not held up
        order.append("other")
    assert order == ["first in", "other"]
    release.set()
    t1.join(10)
    t2.join(10)
    assert order == ["first in", "other", "first out", "second in, finds {'drawn': 'first'}"]
    assert cache._drawing == {}               # nothing kept once nobody draws
    with cache.drawing(None):                 # an uncacheable body: no lock at all
        pass


def test_bdc002_a_body_is_current_for_its_version_and_window_or_while_fresh_for_its_timeframe() -> None:
    """Reused for the same data version and windows; across versions and a moved window only
    while younger than its timeframe's staleness (long windows longer: STALE_FACTOR)."""
    cache = BodyCache(stale_s=5)
    assert cache.stale_ms_for("1h") == 5000 and cache.stale_ms_for("24h") == 15000
    assert cache.stale_ms_for("7d") == cache.stale_ms_for("30d") == 60000
    assert cache.redraw_ms() == {"1h": 5000, "4h": 10000, "24h": 15000, "7d": 60000, "30d": 60000}
    cache.put(("k", "w1"), 7, 1000, {"n": 1}, 15000)
    assert cache.get(("k", "w1"), 7, 100_000, 15000) == {"n": 1}          # its version and window
    assert cache.get(("k", "w2"), 7, 100_000, 15000) is None              # the window moved, not fresh
    assert cache.get(("k", "w2"), 8, 15_999, 15000) == {"n": 1}           # fresh for 24h
    assert cache.get(("k", "w2"), 8, 16_000, 15000) is None
    assert cache.get(("k", "w2"), 8, 5_999) == {"n": 1}                   # the base staleness
    assert BodyCache(stale_s=0).redraw_ms()["7d"] == 2000                # per version only: the client's 2 s
    assert BodyCache(stale_s=0).get(None, 7, 1000) is None


def test_bdc003_bodies_are_shared_through_redis_by_the_web_processes(r) -> None:
    """A body drawn by one process is found by another (its own memory empty), serialised once:
    the same JSON, the same validity; a body another process may not reuse is not returned."""
    from data.keys import Keys
    one, two = (BodyCache(stale_s=5, r=r, keys=Keys("qms")) for _ in range(2))
    body = {"props": {"children": ["a", 1.5, None]}, "type": "Div", "namespace": "dash_html_components"}
    one.put(("k", "w1"), 7, 1000, body, 15000)
    assert r.ttl("qms:cache:body:k") >= 16
    assert two.get(("k", "w1"), 7, 50_000, 15000) == body
    two.clear()
    assert two.get(("k", "w2"), 8, 20_000, 15000) is None
    assert two.get(("k", "w2"), 8, 10_000, 15000) == body
    assert two.get(("other", "w1"), 7, 1000, 15000) is None


def test_bdc004_the_draw_gate_lets_n_fills_draw_at_once_and_the_others_in_order_of_arrival() -> None:
    """callbacks.dashboard.DrawGate: a fill that draws waits for its turn (at most n at once);
    waiters go in the order they came; n = 0 is no gate at all."""
    from callbacks.dashboard import DrawGate
    gate = DrawGate(1)
    release = threading.Event()
    order: list[str] = []
    inside = [0, 0]                           # now, most at once

    def fill(name: str, hold: bool) -> None:
        with gate.turn():
            inside[0] += 1
            inside[1] = max(inside)
            order.append(name)
            if hold:
                release.wait(10)
            inside[0] -= 1

    first = threading.Thread(target=fill, args=("first", True))
    first.start()
    _until(lambda: order == ["first"], "the first fill draws")
    rest = []
    for name in ("second", "third", "fourth"):
        t = threading.Thread(target=fill, args=(name, False))
        t.start()
        rest.append(t)
        time.sleep(0.05)                      # arrived one after the other
    assert order == ["first"]                 # the others wait at the gate
    release.set()
    for t in (first, *rest):
        t.join(10)
    assert order == ["first", "second", "third", "fourth"] and inside[1] == 1
    free = DrawGate(0)
    with free.turn(), free.turn():            # no limit: nested turns do not wait
        pass
