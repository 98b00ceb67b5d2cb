"""The window's gate runs summed from digests of chunks of event time (quarter hours, and
whole past days inside the window), each read once while it holds the same runs.

Code quality and test coverage are means of the gate runs' metrics per step, gate, metric and
the run's workflow's team and repository (views.GateSums, any filter's sums of one pass).
Summed from the runs themselves, every new data version read and decoded the whole window's
runs again — ~9,500 events and ~40 ms of a cold QA page's ~100 under the load test — for the
newest minute's few runs. Here a web process keeps, per chunk, the sums of its runs per
minute, gate, metric and scope (a `Digest`), with how many runs it read there. A read counts
the window's runs per chunk in Redis (ZCOUNT of the raw indexes, one pipeline), reads again
only the chunks whose count changed — the newest quarter, or one a late event landed in —
and folds the digests into the window's steps. Raw events are never changed or removed in
the hot window (dedup keeps one copy; the archive mover and retention take whole days, read
here by the plain path), so an unchanged count is an unchanged chunk.

The sums are those of the runs read whole (`fold` of one `digest` of them, the path for days
with archived parts and windows of over MAX_EVENTS runs), added in another order — equal to
the last bits of a float — with two bounds: the caller's workflow information may be
WORKFLOW_INFO_TTL_S old (data.engine) and so may a digest; runs of workflows whose
pr_created is not known yet are kept by workflow and placed on every read, so they join
their repository as soon as it comes.
"""
from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import redis

from data import archive
from data.keys import Keys
from data.pace import request_paced
from data.timeutil import DAY_MS, MINUTE_MS
from data.views import GateSums, WorkflowInfo

CHUNK_MS = 15 * MINUTE_MS  # and whole days inside the window (chunks_of)
MAX_ENTRIES = 100_000      # sums a process keeps at most (~420 B each: ~40 MB); the load test's 24 h
                           # held 10,495 for 9,505 runs, so a window of 50,000 runs (MAX_EVENTS) fits

Runs = Sequence[tuple[int, dict[str, Any]]]
# (minute, gate, metric, team, repository) -> [sum, runs]; of unknown workflows
# (minute, gate, metric, workflow id) -> [sum, runs]
Known = dict[tuple[int, str | None, str, str | None, str | None], list[float]]
Unknown = dict[tuple[int, str | None, str, str], list[float]]


@dataclass
class Digest:
    count: int          # runs read in the chunk
    read_at: int        # ms
    known: Known
    unknown: Unknown

    @property
    def size(self) -> int:
        return len(self.known) + len(self.unknown) + 1


def digest(runs: Iterable[tuple[int, dict[str, Any]]], workflows: Mapping[str, WorkflowInfo | None],
           read_at: int) -> Digest:
    """The runs' measurements (finite numbers, not booleans, not the gate's `threshold…`
    settings) summed per minute, gate, metric and scope: the workflow's team and repository,
    or the workflow itself while its pr_created is not known (`fold` places it then). The
    rule is tested in place: this loop runs once per gate run read."""
    known: Known = {}
    unknown: Unknown = {}
    count = 0
    isfinite = math.isfinite
    for ts, ev in request_paced(runs):     # a window's gate runs: up to 50,000
        count += 1
        d = ev.get("data") or {}
        metrics = d.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            continue
        minute = ts - ts % MINUTE_MS
        name = d.get("gate_name")
        gate = name if isinstance(name, str) else None
        wf = d.get("workflow_id")
        info = workflows.get(wf)
        acc_of: dict[Any, list[float]] = known
        if info is not None:
            tail: tuple[Any, ...] = (info[1], info[2])
        elif isinstance(wf, str):
            acc_of, tail = unknown, (wf,)
        else:
            tail = (None, None)
        for metric, value in metrics.items():
            kind = type(value)
            if (kind is float or kind is int or (isinstance(value, (int, float)) and kind is not bool)) \
                    and isfinite(value) and not str(metric).startswith("threshold"):
                key = (minute, gate, metric, *tail)
                acc = acc_of.get(key)
                if acc is None:
                    acc_of[key] = [float(value), 1]
                else:
                    acc[0] += float(value)
                    acc[1] += 1
    return Digest(count, read_at, known, unknown)


def fold(digests: Iterable[Digest], cuts: list[int], workflows: Mapping[str, WorkflowInfo | None]) -> GateSums:
    """The digests' runs summed per step of `cuts` (whole minutes), gate, metric and scope,
    the unknown workflows placed by `workflows`."""
    sums: GateSums = {}
    if len(cuts) < 2:
        return sums
    first, last = cuts[0], cuts[-1]
    step: dict[int, int] = {}

    def placed(dg: Digest) -> Iterator[tuple[tuple[Any, ...], list[float]]]:
        yield from dg.known.items()
        for (minute, gate, metric, wf), acc in dg.unknown.items():
            info = workflows.get(wf)
            yield (minute, gate, metric, *((info[1], info[2]) if info else (None, None))), acc

    for dg in digests:
        for (minute, gate, metric, team, repo), (v, n) in placed(dg):
            if not first <= minute < last:
                continue
            i = step.get(minute)
            if i is None:
                i = step[minute] = bisect_right(cuts, minute) - 1
            acc = sums.get((i, gate, metric, team, repo))
            if acc is None:
                sums[(i, gate, metric, team, repo)] = [v, n]
            else:
                acc[0] += v
                acc[1] += n
    return sums


class GateChunks:
    """Digests of chunks kept by a web process (least recently used first out, at most
    `max_entries` sums, each at most `max_age_ms` old)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_age_ms: int = 300_000) -> None:
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self._d: OrderedDict[tuple[Any, ...], Digest] = OrderedDict()
        self._entries = 0
        self._lock = threading.Lock()

    def sums(self, r: redis.Redis, keys: Keys, types: Sequence[str], cuts: list[int], now: int, limit: int,
             read: Callable[[int, int], tuple[Runs, bool]],
             workflow_info: Callable[[list[Any]], Mapping[str, WorkflowInfo | None]]) -> GateSums | None:
        """The sums (`fold`) of the runs of `types` in [cuts[0], cuts[-1]), or None when this way
        does not apply (the caller reads the window whole): cuts not on whole minutes, a day
        with archived parts, more than `limit` runs in the chunks. `read(s, e)`: the runs of
        [s, e) and whether more were left out; `workflow_info(ids)`: their workflows."""
        if len(cuts) < 2 or any(c % MINUTE_MS for c in cuts):
            return None
        s, e = cuts[0], cuts[-1]
        arch = archive.of(keys)
        if arch is not None and any(arch.parts(day) for day in range(s // DAY_MS, (e - 1) // DAY_MS + 1)):
            return None
        spans = chunks_of(s, e)
        with r.pipeline(transaction=False) as p:
            for a, b in spans:
                for t in types:
                    p.zcount(keys.raw_index(t, a // DAY_MS), a, f"({b}")
            found = p.execute()
        n = len(types)
        counts = {span: sum(found[i * n:(i + 1) * n]) for i, span in enumerate(spans)}
        if sum(counts.values()) > limit:
            return None
        tag = (keys.n, tuple(types))
        have: dict[tuple[int, int], Digest] = {}
        with self._lock:
            for span in spans:
                dg = self._d.get((*tag, *span))
                if dg is not None and dg.count == counts[span] and 0 <= now - dg.read_at < self.max_age_ms:
                    self._d.move_to_end((*tag, *span))
                    have[span] = dg
        stale = [span for span in spans if span not in have and counts[span]]
        by_span: dict[tuple[int, int], list[tuple[int, dict[str, Any]]]] = {span: [] for span in stale}
        starts = [a for a, _ in stale]
        for lo, hi in _runs_of(spans, set(stale), have):     # stale chunks between kept ones, a read each
            runs, more = read(lo, hi)
            if more:
                return None
            for ts, ev in runs:
                j = bisect_right(starts, ts) - 1
                if j >= 0 and ts < stale[j][1]:
                    by_span[stale[j]].append((ts, ev))
        # One read of workflows: the new runs' and those still unknown in the kept digests.
        info = workflow_info([(ev.get("data") or {}).get("workflow_id") for span in stale for _, ev in by_span[span]]
                             + sorted({k[3] for dg in have.values() for k in dg.unknown}))
        if stale:
            fresh = {span: digest(by_span[span], info, now) for span in stale}
            have.update(fresh)
            with self._lock:
                for span, dg in fresh.items():
                    old = self._d.pop((*tag, *span), None)
                    self._entries += dg.size - (old.size if old else 0)
                    self._d[(*tag, *span)] = dg
                while self._entries > self.max_entries and self._d:
                    self._entries -= self._d.popitem(last=False)[1].size
        return fold((have[span] for span in spans if span in have), cuts, info)


def chunks_of(s: int, e: int) -> list[tuple[int, int]]:
    """[s, e) in chunks on fixed boundaries: whole UTC days inside it (a past day is counted
    with one ZCOUNT per type), quarter hours elsewhere (the day the window ends in, where new
    runs land, and the day it starts in); the first and last may reach past s and e."""
    out: list[tuple[int, int]] = []
    t = s - s % CHUNK_MS
    while t < e:
        if t % DAY_MS == 0 and t + DAY_MS <= e:
            out.append((t, t + DAY_MS))
            t += DAY_MS
        else:
            out.append((t, t + CHUNK_MS))
            t += CHUNK_MS
    return out


def _runs_of(spans: list[tuple[int, int]], stale: set[tuple[int, int]],
             kept: Mapping[tuple[int, int], Any]) -> list[tuple[int, int]]:
    """(start, end) of each run of stale chunks between kept ones (an empty chunk, neither,
    joins the run around it)."""
    out: list[tuple[int, int]] = []
    open_ = False
    for span in spans:
        if span in kept:
            open_ = False
        elif span in stale:
            if open_:
                out[-1] = (out[-1][0], span[1])
            else:
                out.append(span)
                open_ = True
    return out
