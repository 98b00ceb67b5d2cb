"""The demo's simulated traffic: a restart resumes the same history instead of adding one."""
from __future__ import annotations

import time
from typing import Any

from data.services import Services
from data.workers import start_demo


def _run_until_live(svc: Any, timeout: float = 30.0) -> None:
    worker = start_demo(svc)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            cursor = svc.redis.hget(svc.keys.demo, "cursor")
            stream = svc.redis.xlen(svc.keys.stream) if svc.redis.exists(svc.keys.stream) else 0
            if cursor and stream and int(cursor) > time.time() * 1000 - 5000:
                return
            time.sleep(0.1)
        raise AssertionError("the demo did not catch up with now")
    finally:
        worker.stop()


def test_demo001_restart_resumes_instead_of_doubling_history(settings: Any, r: Any) -> None:
    svc = Services.build(settings.replace(demo=True, demo_rate=3.0, demo_backfill="2h", demo_seed=9))
    _run_until_live(svc)
    first = r.xlen(svc.keys.stream)
    epoch = int(r.hget(svc.keys.demo, "epoch"))
    assert first > 1000
    _run_until_live(svc)
    assert int(r.hget(svc.keys.demo, "epoch")) == epoch, "same simulation"
    added = r.xlen(svc.keys.stream) - first
    assert added < first / 10, f"a restart added {added} events to {first}: history was simulated twice"
