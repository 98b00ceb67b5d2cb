"""A redis-server of the test's own, for tests that stop, pause or restart Redis (the shared
one must never be touched): a fixed port and data folder, so a restart keeps the data."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from settings import Settings
from tests.conftest import _free_port, start_redis_server

KEY = "k" * 48


class PrivateRedis:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.data = tmp_path / "redis"
        self.data.mkdir(exist_ok=True)
        self.proc, self.url = start_redis_server(self.port, ["--dir", str(self.data)])

    def app(self, **overrides: Any) -> Any:
        """An app on this Redis (test settings: no aggregator thread, no demo)."""
        from tests.helpers import make_app
        settings = Settings.from_env({}, **{"redis_url": self.url, "run_aggregator": False, "demo": False,
                                            "secret_key": KEY, "data_dir": str(self.tmp_path / "app"), **overrides})
        return make_app(settings)

    def shutdown(self) -> None:
        """Stop it as an operator would (SHUTDOWN SAVE): the data is on disk for start()."""
        redis.Redis.from_url(self.url).shutdown(save=True)
        self.proc.wait(10)

    def start(self) -> None:
        self.proc, _ = start_redis_server(self.port, ["--dir", str(self.data)])

    def terminate(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def pause(self, paused: bool = True) -> None:
        """SIGSTOP: it keeps accepting connections but never answers."""
        os.kill(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    pr = PrivateRedis(tmp_path)
    yield pr
    pr.close()
