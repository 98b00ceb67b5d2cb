"""Time handling: ISO 8601 parsing, the three rollup resolutions, and window planning.

All internal times are integer milliseconds since the epoch, UTC. A window's edges are
snapped to the finest resolution still retained at that age, so every KPI is computed
from whole buckets and is exact for the window the response reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Resolution:
    name: str
    step_ms: int
    retention_ms: int


# Finest first. Retention as the seed's §3.2: 1-minute kept 24 h, 5-minute 7 days, 1-hour 90 days;
# plus whole UTC days, kept as long as hours, so a 30-day window reads ~30 buckets, not ~720.
# Days are read only from the first day the aggregators wrote them whole (`cover`'s daily_from).
RESOLUTIONS: tuple[Resolution, ...] = (
    Resolution("1m", MINUTE_MS, DAY_MS),
    Resolution("5m", 5 * MINUTE_MS, 7 * DAY_MS),
    Resolution("1h", HOUR_MS, 90 * DAY_MS),
    Resolution("1d", DAY_MS, 90 * DAY_MS),
)
# Summed buckets of the gate-time histogram only (contrib.SUMMED_FAMILIES): 3, 6 and 12 hours
# and 2, 4, 8 and 16 days, aligned on the epoch (each divides the next), the days' kept as long
# as the days, the hours' 61 days (the oldest edge a default request has is a 30d window's
# previous one, 60 days back; older edges read hours, as exact). They only speed reads up:
# a window's whole days and edge hours tile with at most two of each (`cover`'s
# `summed_from`), and a histogram's fields do not grow with its span (its bins fill up): a
# 30-day window reads ~14 histograms instead of ~30 days and ~24 hours. Read only from the
# first day the aggregators wrote them whole (`{p}:meta` `summed_from`, rollups.mark_daily).
SUMMED: tuple[Resolution, ...] = tuple(
    Resolution(name, n * unit, (61 if unit == HOUR_MS else 90) * DAY_MS)
    for name, n, unit in (("3h", 3, HOUR_MS), ("6h", 6, HOUR_MS), ("12h", 12, HOUR_MS),
                          ("2d", 2, DAY_MS), ("4d", 4, DAY_MS), ("8d", 8, DAY_MS), ("16d", 16, DAY_MS)))
RES_NAME: dict[int, str] = {r.step_ms: r.name for r in RESOLUTIONS + SUMMED}

# Buckets live a little longer than their retention so a query planned just inside it
# still finds them; the planner treats them as gone `PLAN_MARGIN_MS` early.
EXPIRY_SLACK_MS = HOUR_MS
PLAN_MARGIN_MS = 10 * MINUTE_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)

TIMEFRAMES: dict[str, int] = {"1h": HOUR_MS, "4h": 4 * HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}


def parse_iso(value: str) -> int:
    """ISO 8601 with a zone -> epoch ms. Raises ValueError for anything else."""
    if not isinstance(value, str) or len(value) < 16 or len(value) > 40:
        raise ValueError("not ISO 8601")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not ISO 8601") from None
    if dt.tzinfo is None:
        raise ValueError("no time zone (use Z or +hh:mm)")
    return (dt - _EPOCH) // _ONE_MS


def fmt_ms(ms: int) -> str:
    """Epoch ms -> '2025-08-17T06:23:14Z' (milliseconds shown only when non-zero)."""
    sec, frac = divmod(ms, 1000)
    base = _fmt_sec(sec)
    return f"{base}.{frac:03d}Z" if frac else base + "Z"


@lru_cache(maxsize=8192)
def _fmt_sec(sec: int) -> str:
    # Events of a batch cluster in time: caching by second avoids most strftime calls.
    return datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def parse_duration(text: str) -> int:
    """'90s', '5m', '24h', '7d' -> ms."""
    units = {"ms": 1, "s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
    text = text.strip()
    for suffix in ("ms", "s", "m", "h", "d", "w"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return int(float(text[: -len(suffix)]) * units[suffix])
    raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 24h, 7d)")


def finest_step_at(t_ms: int, now: int) -> int:
    """The finest bucket step still retained for time t (ms)."""
    for res in RESOLUTIONS:
        if t_ms >= now - res.retention_ms + PLAN_MARGIN_MS:
            return res.step_ms
    return RESOLUTIONS[-1].step_ms


def retained(t_ms: int, now: int) -> bool:
    return t_ms >= now - RESOLUTIONS[-1].retention_ms + PLAN_MARGIN_MS


def snap(t_ms: int, now: int, up: bool = False) -> int:
    step = finest_step_at(t_ms, now)
    if up:
        return -(-t_ms // step) * step
    return t_ms // step * step


@dataclass(frozen=True)
class Bucket:
    step_ms: int
    start: int

    @property
    def end(self) -> int:
        return self.start + self.step_ms


def cover(a: int, b: int, now: int, daily_from: int | None = None,
          summed_from: int | None = None) -> list[Bucket]:
    """Tile [a, b) with the fewest retained buckets: coarse in the middle, fine at the edges.

    a and b must be multiples of the finest step retained at their age (see `snap`). Daily
    buckets only from `daily_from` on (the first day they hold whole; None: none); the
    SUMMED ones (a family that has them) only from `summed_from` on.
    """
    out: list[Bucket] = []
    t = a
    levels = _LEVELS if summed_from is not None else RESOLUTIONS
    while t < b:
        chosen = None
        for res in reversed(levels):
            if res.step_ms == DAY_MS and (daily_from is None or t < daily_from):
                continue
            if res.name in _SUMMED_NAMES and (summed_from is None or t < summed_from):
                continue
            if t % res.step_ms == 0 and t + res.step_ms <= b and t + res.step_ms > now - res.retention_ms + PLAN_MARGIN_MS:
                chosen = res
                break
        if chosen is None:
            raise ValueError(f"cannot cover {fmt_ms(t)} with retained buckets")
        out.append(Bucket(chosen.step_ms, t))
        t += chosen.step_ms
    return out


_LEVELS = tuple(sorted(RESOLUTIONS + SUMMED, key=lambda r: r.step_ms))
_SUMMED_NAMES = frozenset(r.name for r in SUMMED)


def day_start(t_ms: int) -> int:
    return t_ms // DAY_MS * DAY_MS


def as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def ms_of(dt: datetime) -> int:
    return int(round(as_utc(dt).timestamp() * 1000))


__all__ = [
    "RESOLUTIONS", "TIMEFRAMES", "Bucket", "cover", "snap", "parse_iso", "fmt_ms", "now_ms",
    "parse_duration", "day_start", "to_datetime", "ms_of", "timedelta",
]
