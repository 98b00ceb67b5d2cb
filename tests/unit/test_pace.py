"""data.pace: long loops that give way to gevent's loop, only where they share it."""
from __future__ import annotations

from data.pace import loop_pause, paced


def test_pace001_paced_calls_the_pause_every_n_items_and_keeps_them() -> None:
    calls: list[int] = []
    seen: list[int] = []
    for x in paced(range(50), lambda: calls.append(len(seen)), every=16):
        seen.append(x)
    assert seen == list(range(50))
    assert calls == [16, 32, 48]       # after the 16th, 32nd and 48th item


def test_pace002_no_pause_leaves_the_iterable_as_it_is() -> None:
    items = [1, 2, 3]
    assert paced(items, None) is items


def test_pace003_no_pause_outside_gevent() -> None:
    """The test process is not patched: nothing to give way to (cli.py aggregate, Werkzeug)."""
    assert loop_pause() is None
