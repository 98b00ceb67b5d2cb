"""Giving way to the loop. Under `cli.py serve` (gevent, patched threads) the web process's own
workers — the embedded aggregator, the demo's simulator — are greenlets on the loop that
answers every page, and whatever they compute between two waits on I/O, no page is answered
(a batch of 2000 events is ~100 ms of folding). Their long loops go through `paced`, so they
give way every couple of milliseconds there; in a process of their own (`cli.py aggregate`)
or beside Werkzeug's threads the pause is None and the loops are left as they are.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
Pause = Callable[[], None]

SLICE_S = 0.002      # the longest stretch of computation between two pauses (about)
# A request's own long loops (a computed view folding its window's events): a longer stretch,
# so that a draw keeps most of a busy loop while no other request waits more than this.
REQUEST_SLICE_S = 0.010
EVERY = 16           # items between two looks at the clock


def loop_pause(slice_s: float = SLICE_S) -> Pause | None:
    """Under gevent's patched threads, a pause once `slice_s` has passed since the last: a timer
    of 0 s, so the loop goes round once — polls its sockets without waiting, runs what is ready —
    and comes back (~3 µs when nothing is). `gevent.sleep(0)` runs only the greenlets already
    scheduled, not a request waiting on its socket; `gevent.idle()` would wait for a loop with
    nothing to do, which a busy server never has. Else None."""
    from gevent import monkey
    if not monkey.is_module_patched("threading"):
        return None
    import gevent
    clock = time.perf_counter
    last = clock()

    def pause() -> None:
        nonlocal last
        if clock() - last >= slice_s:
            hub = gevent.get_hub()
            hub.wait(hub.loop.timer(0))
            last = clock()
    return pause


def request_paced(items: Iterable[T]) -> Iterable[T]:
    """A request's own long loop (a computed view folding up to 50,000 events of its window):
    paced by REQUEST_SLICE_S under gevent, `items` itself elsewhere."""
    return paced(items, loop_pause(REQUEST_SLICE_S), 256)


def paced(items: Iterable[T], pause: Pause | None, every: int = EVERY) -> Iterable[T]:
    """`items` with `pause` called after every `every` of them; `items` itself when no pause."""
    if pause is None:
        return items
    return _paced(items, pause, every)


def _paced(items: Iterable[T], pause: Pause, every: int) -> Iterator[T]:
    n = 0
    for item in items:
        yield item
        n += 1
        if n == every:
            n = 0
            pause()
