"""CPU-bound work off the gevent event loop.

Under gevent (`cli.py serve`, `gunicorn -k gevent`) one loop serves every request of a
process: a 20-100 ms password hash run on it holds every other request, socket and live relay
of the process as long. `off_loop` runs such a call on a small pool of native threads
(argon2-cffi and hashlib's scrypt release the GIL) while the loop goes on; the calling greenlet waits for
the result. Without gevent (threaded server, tests, scripts) it is a plain call.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")
THREADS = 4             # hashes at once per process: with 2, sign-ins arriving together waited
                        # for a thread (p95 51 ms under the 500-user load; 9 ms with 4); each
                        # holds 19 MiB while it runs

_pool: Any = None       # None: not looked up yet; False: no gevent here
_lock = threading.Lock()


def _the_pool() -> Any:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                found: Any = False
                try:
                    from gevent import monkey
                    if monkey.is_module_patched("socket"):
                        from gevent.threadpool import ThreadPool
                        found = ThreadPool(THREADS)
                except ImportError:
                    pass
                _pool = found
    return _pool


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on a native thread when the process runs on gevent, else here. `fn` must not
    touch gevent objects (sockets, locks): a pure computation such as a password hash."""
    pool = _the_pool()
    if pool is False:         # (a pool with no task is falsy: len() counts its tasks)
        return fn(*args)
    return pool.apply(fn, args)
