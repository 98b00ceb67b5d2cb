"""A real alert leader process for the outbox tests: it evaluates once and dies on purpose
(os._exit, no clean-up, like a kill -9) at a chosen instant.

    python -m tests.alert_leader '<json: redis_url, rules, webhook, now, die_at, lease_s>'

die_at: "after_commit" — just after the transaction that records the transition returns;
"before_send" — when a channel's send is about to start (its delivery claimed).
"""
from __future__ import annotations

import os
import sys
import tempfile

import orjson


def main() -> None:
    cfg = orjson.loads(sys.argv[1])
    from alerts.notify import Notifier
    from alerts.service import AlertService
    from data.services import Services
    from settings import Settings
    svc = Services.build(Settings.from_env({}, redis_url=cfg["redis_url"], secret_key="k" * 48,
                                           data_dir=tempfile.mkdtemp(prefix="qms-leader-")))
    if cfg["die_at"] == "after_commit":
        committed = svc.redis.transaction

        def transaction_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
            result = committed(*args, **kwargs)
            os._exit(17)
            return result
        svc.redis.transaction = transaction_then_die    # type: ignore[method-assign]
    else:
        def die(*args, **kwargs):  # type: ignore[no-untyped-def]
            os._exit(17)
        Notifier._send_once = die    # type: ignore[method-assign]
    alerts = AlertService(svc.redis, svc.settings.key_prefix, svc.engine, cfg["rules"],
                          channels={"webhook": {"url": cfg["webhook"]}}, lock_ttl_s=cfg["lock_s"],
                          **({"delivery_lease_s": cfg["lease_s"]} if "lease_s" in cfg else {}))
    alerts.tick(cfg["now"])
    alerts.notifier.flush(10)
    os._exit(0)                      # not reached when it dies on purpose


if __name__ == "__main__":
    main()
