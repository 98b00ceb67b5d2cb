"""Acc.add_core (one loop) adds exactly what adding each of contrib.expand's items does."""
from __future__ import annotations

import random
from typing import Any

from data import contrib, ledger_contrib
from data.batch import Acc

FAMILIES = [contrib.MAIN, contrib.SCOPED_ONLY, contrib.LATE, ledger_contrib.LEDGER, contrib.GATE, contrib.HIST,
            contrib.QUEUE, contrib.SCOPE]
FIELDS = ["n", "cost", "s.ag.active", "s.ag.idle", "wip", "x|y"]


def _plain(core: list[Any], scopes: tuple[str, ...], sign: int) -> Acc:
    acc = Acc()
    for c in core:
        if c[0] != contrib.SCOPED_ONLY:
            acc.add(c, sign)
        if scopes:
            for x in contrib.copies(c, scopes):
                acc.add(x, sign)
    return acc


def _dicts(acc: Acc) -> tuple[dict[Any, dict[str, int]], dict[str, dict[str, int]]]:
    return ({k: dict(v) for k, v in acc.buckets.items()}, {k: dict(v) for k, v in acc.totals.items()})


def test_acc001_add_core_equals_adding_every_item_and_copy() -> None:
    rnd = random.Random(5)
    for _ in range(500):
        core = [(rnd.choice(FAMILIES), rnd.choice(FIELDS), 1_700_000_000_000 + rnd.randrange(0, 600_000),
                 rnd.randrange(-5, 6), rnd.random() < 0.5) for _ in range(rnd.randrange(0, 12))]
        scopes = tuple(rnd.sample(["r:api", "t:core", "r:web", "t:ops"], rnd.randrange(0, 3)))
        sign = rnd.choice((1, -1))
        got = Acc()
        got.add_core([list(c) if rnd.random() < 0.3 else c for c in core], scopes, sign)
        assert _dicts(got) == _dicts(_plain(core, scopes, sign)), (core, scopes, sign)
