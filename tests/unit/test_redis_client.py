"""The Redis client's fail-fast settings (data/redis_conn.py, settings.py)."""
from __future__ import annotations

from typing import Any

import pytest
import redis
from redis._parsers.hiredis import _HiredisParser

from data.redis_conn import Sent, client_for, raw_pipeline
from settings import Settings, SettingsError


def test_rcl001_the_client_has_short_timeouts_and_no_retries() -> None:
    kwargs = client_for("redis://127.0.0.1:1/0", connect_timeout_s=0.5, socket_timeout_s=1.5).connection_pool \
        .connection_kwargs
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.5, 1.5)
    assert kwargs["retry"].get_retries() == 0


def test_rcl002_a_blocking_read_longer_than_the_socket_timeout_is_refused_at_start() -> None:
    """The aggregator's XREADGROUP BLOCK would otherwise end in a read timeout every time."""
    with pytest.raises(SettingsError, match="aggregator_block_ms: 2500 must be shorter than redis_socket_timeout_s"):
        Settings.from_env({"QMS_AGGREGATOR_BLOCK_MS": "2500"})
    assert Settings.from_env({"QMS_AGGREGATOR_BLOCK_MS": "2500", "QMS_REDIS_SOCKET_TIMEOUT_S": "3"}) \
        .aggregator_block_ms == 2500
    with pytest.raises(SettingsError, match="redis_connect_timeout_s: must be positive"):
        Settings.from_env({"QMS_REDIS_CONNECT_TIMEOUT_S": "0"})


def test_rcl003_a_connection_reset_while_replies_are_read_is_a_redis_connection_error(r: redis.Redis) -> None:
    """Sent.replies reads hiredis' reader itself (data.redis_conn._read_hiredis): a reset
    socket must come out as redis-py's read_response gives it, a redis.ConnectionError, not
    a bare OSError (Aggregator.process would take that for a bad event and dead-letter it)."""
    sent = Sent(r, [("PING",)])
    parser = sent.conn._parser
    assert type(parser) is _HiredisParser

    class Reset:
        def recv_into(self, *_: Any) -> int:
            raise ConnectionResetError(104, "Connection reset by peer")

        def settimeout(self, *_: Any) -> None:
            pass
    parser._sock = Reset()
    with pytest.raises(redis.ConnectionError, match="reset by peer"):
        sent.replies()
    assert sent.conn is None                     # discarded: closed and given back
    assert raw_pipeline(r, [("PING",)]) == [b"PONG"]


def test_rcl004_the_embedded_servers_ping_asks_once(tmp_path: Any) -> None:
    """Whether the embedded redis-server answers (at start, at stop) is asked once, within its
    1 s timeout: redis-py 8's default client would connect and ask three times more, with
    back-off, at a server that accepts and never answers (a hung one)."""
    import socket
    import threading

    from data.redis_conn import EmbeddedRedis
    emb = EmbeddedRedis(str(tmp_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(emb.socket)
    listener.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        assert emb._ping() is False
    finally:
        done.set()
        t.join(2)
        for c in accepted:
            c.close()
        listener.close()
    assert len(accepted) == 1, f"{len(accepted)} connections for one question"
