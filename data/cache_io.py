"""A page's cache traffic in a few round trips instead of one per widget.

A cold page draw (callbacks.dashboard.fill) asked Redis about 200 commands one at a time: the
data version again for every source and chart (4 of 10 commands), each widget's kept body
twice, each source's cached result, and a SET for every body, source result and chart series
it computed. Each round trip costs ~40 µs of the web process's CPU here (and, under gevent, a
trip through the loop), against ~15 µs for a command in a pipeline.

Within `batched(r)` (one request's draw; a context variable, so per greenlet or thread):

* `data.partition.data_version` answers from the version read when the batch began: the
  draw's caches are labelled with the version it started from, which is what they were
  already labelled with when a version came in during the draw (a result computed from data
  at least that new, found again by a request of that version; REST reads and exports are not
  batched and stay exact per version);
* `get` answers from what `prefetch` read in one pipeline, or what the batch wrote;
* `set` is kept and written with the others in one pipeline when the batch ends. A write
  that fails is logged and dropped: these are caches, recomputed when missing.

Outside a batch (REST, exports, the live publisher, the aggregator's threads) `get` and `set`
are plain Redis commands and the version is read every time.
"""
from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Any, Iterable, Iterator

import redis

log = logging.getLogger(__name__)


class Batch:
    """What one request read and will write (see the module's docstring)."""

    def __init__(self, r: Any, keys: Any) -> None:
        self.r = r
        self.keys = keys
        self.version: tuple[int, int | None] | None = None
        self._read: dict[str, Any] = {}
        self._writes: dict[str, tuple[Any, int | None, int | None]] = {}

    def owns(self, r: Any) -> bool:
        return r is self.r

    def prefetch(self, names: Iterable[str], fresh: bool = False) -> None:
        """Read these keys in one pipeline (those not read or written yet; `fresh`: those
        read before too, not those written)."""
        todo = [n for n in dict.fromkeys(names) if n not in self._writes and (fresh or n not in self._read)]
        if not todo:
            return
        with self.r.pipeline(transaction=False) as p:
            for n in todo:
                p.get(n)
            found = p.execute()
        self._read.update(zip(todo, found))

    def get(self, name: str) -> Any:
        if name in self._writes:
            return self._writes[name][0]
        if name in self._read:
            return self._read[name]
        found = self._read[name] = self.r.get(name)
        return found

    def set(self, name: str, value: Any, ex: int | None = None, px: int | None = None) -> None:
        self._writes[name] = (value, ex, px)

    def flush(self) -> None:
        writes, self._writes = self._writes, {}
        if not writes:
            return
        try:
            with self.r.pipeline(transaction=False) as p:
                for name, (value, ex, px) in writes.items():
                    p.set(name, value, ex=ex, px=px)
                replies = p.execute(raise_on_error=False)
        except redis.RedisError as exc:
            log.warning("cache writes of a page lost (%s): recomputed when next asked", exc)
            return
        failed = [r for r in replies if isinstance(r, Exception)]
        if failed:
            log.warning("%d of %d cache writes of a page failed (%s)", len(failed), len(replies), failed[0])


_CURRENT: ContextVar[Batch | None] = ContextVar("qms_cache_batch", default=None)


def current(r: Any) -> Batch | None:
    """The batch of this request, if it batches this Redis client's traffic."""
    b = _CURRENT.get()
    return b if b is not None and b.owns(r) else None


@contextlib.contextmanager
def batched(r: Any, keys: Any) -> Iterator[Batch]:
    """Batch this context's cache traffic on `r` (nested: the outer batch goes on)."""
    outer = current(r)
    if outer is not None:
        yield outer
        return
    b = Batch(r, keys)
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)
        b.flush()


def get(r: Any, name: str) -> Any:
    b = current(r)
    return b.get(name) if b is not None else r.get(name)


def set(r: Any, name: str, value: Any, ex: int | None = None, px: int | None = None) -> None:  # noqa: A001
    b = current(r)
    if b is not None:
        b.set(name, value, ex=ex, px=px)
    else:
        r.set(name, value, ex=ex, px=px)


def prefetch(r: Any, names: Iterable[str], fresh: bool = False) -> None:
    """Read these keys ahead in one pipeline when batching (else nothing)."""
    b = current(r)
    if b is not None:
        b.prefetch(names, fresh=fresh)
