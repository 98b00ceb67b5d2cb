"""What a web process's page draws did, summed and logged once a period (QMS_DRAW_STATS_S).

An operator sizing a deployment asks where the draw CPU goes: how many of a page's widget
bodies were kept (the BodyCache), shown from a little earlier because the server was busy,
or drawn; how long requests waited at the draw gate; which dashboards and timeframes drew.
Each web process keeps these counters in memory and logs them at INFO at the first fill
after its period ended (nothing is logged while no page is drawn), one line per process:

    draws 60s: 412 fills, bodies 7213 kept / 301 recent / 655 drawn / 12 shared (drawn 41.2 s wall,
    recent up to 95 s old),
    gate wait p50 0 ms p95 2,310 ms, 3 abandoned; drawn by view: qa 24h 180, executive 1h+scope 96, ...

`bench/load/run.py` sums these lines of its web workers' log into its report.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

log = logging.getLogger("qms.draws")


class DrawStats:
    """Counters of one process's fills since the last line was logged (thread- and
    greenlet-safe: a lock around plain additions)."""

    def __init__(self, period_s: float = 60.0, clock: Any = time.monotonic) -> None:
        self.period_s = float(period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._since = clock()
        self._reset()

    def _reset(self) -> None:
        self.fills = 0
        self.kept = 0
        self.recent = 0
        self.oldest_ms = 0               # the oldest body shown recent
        self.drawn = 0
        self.shared = 0                  # found drawn by another request after the single-flight wait
        self.abandoned = 0
        self.draw_s = 0.0
        self.waits_ms: list[float] = []
        self.by_view: Counter[str] = Counter()

    def fill(self, view: str, kept: int, recent: int, oldest_ms: int = 0) -> None:
        with self._lock:
            self.fills += 1
            self.kept += kept
            self.recent += recent
            self.oldest_ms = max(self.oldest_ms, int(oldest_ms))

    def waited(self, ms: float) -> None:
        with self._lock:
            self.waits_ms.append(ms)

    def drew(self, view: str, seconds: float) -> None:
        with self._lock:
            self.drawn += 1
            self.draw_s += seconds
            self.by_view[view] += 1

    def found_shared(self) -> None:
        with self._lock:
            self.shared += 1

    def gave_up(self) -> None:
        with self._lock:
            self.abandoned += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data (what `line` says)."""
        with self._lock:
            waits = sorted(self.waits_ms)
            return {"fills": self.fills, "kept": self.kept, "recent": self.recent, "oldest_s": self.oldest_ms // 1000,
                    "drawn": self.drawn,
                    "shared": self.shared, "abandoned": self.abandoned, "draw_s": round(self.draw_s, 3),
                    "waits": len(waits), "wait_p50_ms": _pct(waits, 0.50), "wait_p95_ms": _pct(waits, 0.95),
                    "by_view": dict(self.by_view.most_common())}

    def maybe_log(self) -> dict[str, Any] | None:
        """Log and reset when the period is over (returns what was logged)."""
        now = self._clock()
        if self.period_s <= 0 or now - self._since < self.period_s:
            return None
        with self._lock:
            if now - self._since < self.period_s:
                return None
            elapsed = now - self._since
            self._since = now
        snap = self.snapshot()
        with self._lock:
            self._reset()
        if snap["fills"]:
            log.info("%s", line(snap, elapsed))
        return snap


def _pct(values: list[float], q: float) -> int:
    if not values:
        return 0
    return int(values[min(len(values) - 1, int(q * len(values)))])


def line(snap: dict[str, Any], elapsed_s: float) -> str:
    views = ", ".join(f"{k} {n}" for k, n in list(snap["by_view"].items())[:12])
    return (f"draws {elapsed_s:.0f}s: {snap['fills']} fills, bodies {snap['kept']} kept / {snap['recent']} recent / "
            f"{snap['drawn']} drawn / {snap['shared']} shared (drawn {snap['draw_s']:.1f} s wall, "
            f"recent up to {snap['oldest_s']} s old), "
            f"gate waits {snap['waits']} p50 {snap['wait_p50_ms']} ms p95 {snap['wait_p95_ms']} ms, "
            f"{snap['abandoned']} abandoned; drawn by view: {views or '-'}")


def view_name(dashboard: str, view: dict[str, str], personal: bool) -> str:
    """A fill's view as the stats name it: dashboard, timeframe, whether filtered, whether the
    viewer's own (personal sources)."""
    scoped = any(k in view for k in ("repository", "team", "gate", "agent"))
    return f"{dashboard} {view.get('timeframe', '')}{'+scope' if scoped else ''}{' (own)' if personal else ''}"
