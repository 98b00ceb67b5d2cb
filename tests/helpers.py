"""Helpers shared by test modules."""
from __future__ import annotations

from typing import Any


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
