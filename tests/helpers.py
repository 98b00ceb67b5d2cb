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



def admin_test_client(redis_url: str, data_dir: str, name: str = "admin-user") -> Any:
    """A module-scoped app (no aggregator, demo, live or alert threads) on `redis_url` and a
    test client acting as an admin through a Bearer JWT, for tests that load data once."""
    from auth.principal import issue_jwt
    from factory import create_app
    from settings import Settings
    settings = Settings.from_env({}, redis_url=redis_url, run_aggregator=False, demo=False, live=False,
                                 alerts=False, secret_key="k" * 48, data_dir=data_dir)
    app = create_app(settings)
    svc = app.server.extensions["qms"]
    svc.users._method = "scrypt:1024:8:1"
    svc.users.add(name, ["admin"], "correct horse battery")
    client = app.server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + issue_jwt(name, ["admin"], 3600, svc.secret_key)
    return client
