"""The Redis client's fail-fast settings (data/redis_conn.py, settings.py)."""
from __future__ import annotations

import pytest

from data.redis_conn import client_for
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
