"""For child processes patched as `cli.py serve` patches itself (tests/integration/
test_serve_loop.py): a greenlet that runs only when gevent's loop polls its sockets, as a
browser's request waits on its socket, and counts how often it ran while a named stretch of
work was under way. Import it after `monkey.patch_all()`."""
from __future__ import annotations

import socket
from typing import Any

import gevent
from gevent.socket import wait_read


class Ticker:
    def __init__(self, *names: str) -> None:
        self.inside = {n: False for n in names}     # which stretches are under way
        self.ran = {n: 0 for n in names}            # how often the ticker ran inside each
        self._stop = False
        self._near, self._far = socket.socketpair()     # a connection that always has a byte to read
        self._greenlet: Any = None

    def start(self) -> "Ticker":
        self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        self._stop = True
        self._greenlet.join(5)

    def _run(self) -> None:
        self._far.send(b"x")
        while not self._stop:
            wait_read(self._near.fileno())      # through the loop's poll, even when the byte is there
            self._near.recv(1)
            for name, now in self.inside.items():
                if now:
                    self.ran[name] += 1
            self._far.send(b"x")

    def watch(self, obj: Any, attr: str, name: str | None = None) -> None:
        """`obj.attr` (a function) counted as the stretch `name` (default: attr) while it runs."""
        orig = getattr(obj, attr)
        name = name or attr

        def wrapped(*a: Any, **kw: Any) -> Any:
            self.inside[name] = True
            try:
                return orig(*a, **kw)
            finally:
                self.inside[name] = False
        setattr(obj, attr, wrapped)
