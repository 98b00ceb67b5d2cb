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
            cache.put("k", 7, 1000, {"drawn": "first"})
            order.append("first out")

    def second() -> None:
        with cache.drawing("k"):
            order.append(f"second in, finds {cache.get('k', 7, 1000)}")

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
