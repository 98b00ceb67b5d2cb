"""Deterministic, realistic QMS activity generator (pure Python, no Redis, no I/O).

`Simulator(seed, rate).events_between(start, end)` yields bare event dicts of
shared/spec/EVENTS.md in non-decreasing timestamp order. It is a discrete-event
simulation: every running process (one per open pull request, plus a few system
processes) is a Python generator that yields its next event, and a timing wheel orders
them. Only live processes and scheduled future events are held, so memory is bounded by
the number of open workflows and defects, not by the simulated duration. A process's
code after a `yield` runs at the simulated time of the event it yielded, so shared state
(queue depths, agent states) is always read and written "as of now".

The same seed, start and end give the same events, ids included; successive calls
`events_between(a, b)`, `events_between(b, c)` continue one simulation (backfill, then
stream live; consume one window at a time). `rate` is the mean events per second over a
week: working hours run busier, nights and weekends quieter. Without `start`, the
simulation begins (empty, then announcing every agent and queue) at the first window's start.

The reviewer ledger's facts are in it too: reviews say who reviewed (`reviewer_kind` human, ai or
bot: a bot approves within a minute, an external AI agent comments beside the assigned reviewer),
findings say who raised them (`found_by`, `found_by_kind`) and end fixed, dismissed as false
positives or left, in proportions that differ per agent; merged pull requests sometimes escape a
defect to production (some reverted), and gate runs carry the commit they ran on (`head_sha`), so a
flaky failure is one re-run to a pass on the same commit.
"""
from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

Event = dict[str, Any]
T = TypeVar("T")
# What a process yields: (t_ms, type or None for a silent wake-up, data, priority, correlation_id)
Item = tuple[int, str | None, dict[str, Any], str, str]
Proc = Generator[Item, None, Any]
# (t_ms, seq: tie-break in creation order, process, type, data, priority, correlation_id). Flat, so that
# each pending event is one object for the GC to track rather than two.
Entry = tuple[int, int, Iterator[Any], str | None, dict[str, Any], str, str]
WF = tuple[str, str, str]  # (workflow_id, priority, correlation_id): strings only, so the GC never tracks it

S, MIN, H, DAY = 1000, 60_000, 3_600_000, 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def cum(*weights: float) -> list[float]:
    total = sum(weights)
    return [x / total for x in itertools.accumulate(weights)]


TEAMS: dict[str, list[str]] = {
    "platform": ["alice.chen", "bruno.silva", "chloe.martin", "dev.patel", "erik.larsen", "fatima.khan"],
    "payments": ["george.okafor", "hana.suzuki", "ivan.petrov", "julia.rossi", "kofi.mensah", "lena.schmidt"],
    "mobile": ["marco.bianchi", "nina.kowalski", "omar.haddad", "priya.nair", "quinn.obrien", "rosa.garcia"],
    "data": ["sam.taylor", "tara.singh", "umar.farouk", "vera.novak", "wei.zhang", "ximena.lopez"],
    "identity": ["yusuf.demir", "zoe.dubois", "aaron.kim", "bella.moreau", "carlos.reyes", "diana.ivanova"],
}
TEAM_NAMES = list(TEAMS)
DEVELOPERS = [d for devs in TEAMS.values() for d in devs]
REPOS = ["qms-core", "payments-service", "mobile-app", "data-pipeline", "identity-service", "web-frontend"]
TEAM_REPOS = {"platform": ["qms-core", "web-frontend"], "payments": ["payments-service"], "mobile": ["mobile-app"],
              "data": ["data-pipeline"], "identity": ["identity-service", "web-frontend"]}
AGENTS: dict[str, list[str]] = {
    "qms-dor-validator": ["requirements", "dor"], "qms-code-reviewer": ["python", "typescript", "review"],
    "qms-senior-code-reviewer": ["architecture", "review"], "qms-security-reviewer": ["security", "review"],
    "qms-security-scanner": ["sast", "dependencies"], "qms-testing-specialist": ["testing", "coverage"],
    "qms-coverage-analyst": ["coverage"], "qms-performance-tester": ["load-testing", "performance"],
    "qms-performance-analyst": ["profiling", "performance"], "qms-dod-validator": ["dod", "release"],
    "qms-compliance-auditor": ["compliance", "licensing"], "qms-style-linter": ["lint", "style"],
    "qms-documentation-reviewer": ["documentation"], "qms-final-approver": ["approval"],
    "qms-quality-coordinator": ["coordination", "approval"],
}
AGENT_IDS = list(AGENTS)
REVIEW_AGENTS = ["qms-code-reviewer", "qms-senior-code-reviewer", "qms-security-reviewer", "qms-documentation-reviewer"]
# Reviewers who are not colleagues (review events' `reviewer_kind`, findings' `found_by_kind`): the in-house
# review agents above and an external AI agent (CodeRabbit-like) are `ai`; BOT posts instant approvals.
EXTERNAL_AGENT, BOT = "coderabbit", "lint-bot[bot]"
P_EXTERNAL, P_BOT = 0.35, 0.25  # shares of pull requests the external agent and the bot review
QUEUES = ["dor_validation_queue", "code_review_queue", "security_scan_queue", "performance_test_queue",
          "final_review_queue"]
# gate -> (failure probability of a first run, median execution seconds, agents that run it,
#          metrics(passed, random) consistent with the verdict)
Metrics = Callable[[bool, Callable[[], float]], dict[str, Any]]
GATES: dict[str, tuple[float, float, list[str], Metrics]] = {
    "dor-checklist-gate": (0.06, 20, ["qms-dor-validator"],
                           lambda ok, r: {"items_checked": 12, "items_missing": 0 if ok else 1 + int(3 * r())}),
    "lint-gate": (0.10, 60, ["qms-style-linter"],
                  lambda ok, r: {"errors": 0 if ok else 1 + int(8 * r()), "warnings": int(15 * r())}),
    "security-scan-gate": (0.09, 200, ["qms-security-scanner"], lambda ok, r: {
        "high_vulnerabilities": 0 if ok else 1 + int(2 * r()), "medium_vulnerabilities": int(4 * r())}),
    "code-coverage-gate": (0.16, 280, ["qms-testing-specialist", "qms-coverage-analyst"], lambda ok, r: {
        "coverage_percentage": round(80 + 17 * r() if ok else 55 + 24.9 * r(), 1), "threshold": 80.0}),
    "performance-gate": (0.14, 420, ["qms-performance-tester", "qms-performance-analyst"], lambda ok, r: {
        "p95_latency_ms": round(250 * (0.5 + 0.5 * r() if ok else 1.02 + r()), 1), "threshold_ms": 250}),
}
# gate -> share of its failures that are flaky: re-run on the same commit (`head_sha`), they pass
FLAKY = {"dor-checklist-gate": 0.0, "lint-gate": 0.0, "security-scan-gate": 0.1, "code-coverage-gate": 0.25,
         "performance-gate": 0.45}
# policy -> (probability a PR is checked against it, failure probability)
POLICIES = [("secrets-scan", 1.0, 0.03), ("license-check", 0.7, 0.06), ("change-approval", 0.6, 0.08)]
# Weighted choices keep cumulative weights (ending at 1.0) for a bisect lookup.
SEVERITIES, SEV_W = ["critical", "major", "minor"], cum(0.05, 0.30, 0.65)
SEV_PRIO = {"critical": "critical", "major": "high", "minor": "normal"}
CATEGORIES = ["security", "performance", "style", "logic", "testing", "documentation"]
CAT_W, PROD_CAT_W = cum(0.14, 0.12, 0.25, 0.26, 0.15, 0.08), cum(0.25, 0.30, 0.0, 0.40, 0.05, 0.0)
# What becomes of a finding, by who raised it: cumulative weights of RESOLUTIONS. Agents differ (the
# reviewer ledger's precision): the senior reviewer is precise, the external agent noisy; colleagues'
# findings are mostly fixed; production defects are fixed (a revert, a hotfix) or left.
RESOLUTIONS = ["fixed", "false_positive", "wont_fix"]
FATE = {"qms-code-reviewer": cum(0.86, 0.09, 0.05), "qms-senior-code-reviewer": cum(0.94, 0.02, 0.04),
        "qms-security-reviewer": cum(0.84, 0.11, 0.05), "qms-documentation-reviewer": cum(0.78, 0.14, 0.08),
        EXTERNAL_AGENT: cum(0.60, 0.30, 0.10)}
HUMAN_FATE, PROD_FATE = cum(0.92, 0.03, 0.05), cum(0.95, 0.0, 0.05)
# Probability that a merged pull request's defect escapes to production, by the reviewer who approved it.
MISS = {"qms-code-reviewer": 0.11, "qms-senior-code-reviewer": 0.06, "qms-security-reviewer": 0.09,
        "qms-documentation-reviewer": 0.16}
HUMAN_MISS, P_REVERT, P_ON_CALL = 0.08, 0.25, 0.5  # escapes: reverted; found by the on-call colleague
BURST, BURST_W = [0, 1, 2, 3, 4], cum(0.45, 0.25, 0.15, 0.09, 0.06)  # defects per first review
NOISY_BURST_W = cum(0.30, 0.30, 0.20, 0.12, 0.08)  # the external agent comments more
SCORES, SCORE_W = [1, 2, 3, 4, 5], cum(0.02, 0.05, 0.13, 0.40, 0.40)  # survey mean about 4.1
ERROR_SEVERITIES, ERROR_SEV_W = ["info", "warning", "critical"], cum(0.3, 0.6, 0.1)
ERROR_PRIO = {"info": "low", "warning": "normal", "critical": "critical"}
COMPONENTS = ["qms-orchestrator", "github-adapter", "gate-runner", "event-stream", "notification-service", "agent-pool"]
ERRORS = [("timeout", "upstream call timed out after 30s"), ("connection_refused", "connection refused"),
          ("rate_limited", "GitHub API rate limit reached"), ("validation_error", "payload failed schema validation"),
          ("internal_error", "unhandled exception in worker")]
THRESHOLDS = [("api_response_time_ms", 500.0), ("queue_wait_time_minutes", 60.0),
              ("gate_execution_time_seconds", 600.0), ("cpu_utilization", 0.85), ("memory_utilization", 0.90)]
# Configuration an operator changes now and then (dashboard annotations): key -> values it takes.
CONFIG = [("gates.code-coverage-gate.threshold", [80.0, 75.0, 85.0]), ("sla.hours", [8, 6, 12]),
          ("agents.qms-code-reviewer.max_load", [0.9, 0.8, 0.95]), ("queues.code_review_queue.alert_depth", [25, 20, 40]),
          ("policies.license-check.enabled", [True, False])]
CONFIG_CHANGERS = ["alice.chen", "george.okafor", "sam.taylor"]
TITLE_KINDS = ["feat", "fix", "refactor", "chore", "perf", "docs", "test"]
TITLE_VERBS = ["add", "fix", "update", "remove", "harden", "speed up", "simplify", "migrate"]
TITLE_OBJS = ["retry logic", "webhook handler", "login flow", "cache layer", "CSV export", "rate limiter",
              "audit log", "config loader", "search index", "API pagination", "error messages", "DB migration"]

# Relative PR activity per hour of a working day (UTC); weekends run at about a quarter of it.
_WORKDAY = [0.15, 0.12, 0.1, 0.1, 0.12, 0.2, 0.35, 0.6, 1.0, 1.4, 1.6, 1.6,
            1.3, 1.5, 1.6, 1.5, 1.3, 1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2]
_raw = [_WORKDAY[h] if d < 5 else 0.1 + 0.25 * _WORKDAY[h] for d in range(7) for h in range(24)]
PROFILE = [x * 168 / sum(_raw) for x in _raw]  # by hour of week (Mon 00h = 0); mean 1, so `rate` is the weekly mean
PEAK = max(PROFILE)
SLOWDOWN = [1.0 + 1.5 * (1.0 - p / PEAK) for p in PROFILE]  # human waits stretch up to 2.5x off-hours: SLA misses
# Mean events over a pull request's whole life, measured by running the simulator; turns `rate` into PR arrivals.
EVENTS_PER_PR = 25.3
AGENT_SHARE, QUEUE_SHARE = 0.03, 0.04  # fractions of `rate` spent on agent-load and queue-depth updates
_NONE: dict[str, Any] = {}  # data of silent wake-ups (never emitted)
_EXHAUSTED: Iterator[Any] = iter(())  # "continuation" of one-off scheduled events


def how(t: int) -> int:
    """Hour of week of epoch-ms `t`; 1970-01-01 was a Thursday (index 72)."""
    return (t // H + 72) % 168


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:  # naive datetimes are taken as UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _step(t: int, w: WF, step: str) -> Item:
    return (t, "workflow.step_entered", {"workflow_id": w[0], "step": step}, w[1], w[2])


def _assign(t: int, w: WF, agent: str, queue: str | None = None) -> Item:
    data = {"workflow_id": w[0], "agent_id": agent}
    if queue:
        data["queue"] = queue
    return (t, "workflow.agent_assigned", data, w[1], w[2])


def _review(t: int, w: WF, reviewer: str, kind: str) -> Item:
    return (t, "workflow.review_started", {"workflow_id": w[0], "reviewer": reviewer, "reviewer_kind": kind}, w[1], w[2])


def _verdict(t: int, w: WF, reviewer: str, kind: str, verdict: str, cost: float) -> Item:
    return (t, "workflow.review_completed", {"workflow_id": w[0], "reviewer": reviewer, "reviewer_kind": kind,
            "verdict": verdict, "cost_usd": cost}, w[1], w[2])


def _done(t: int, w: WF, outcome: str) -> Item:
    return (t, "workflow.completed", {"workflow_id": w[0], "outcome": outcome}, w[1], w[2])


class Simulator:
    """Streams QMS events; see the module docstring."""

    def __init__(self, seed: int = 42, rate: float = 5.0, start: datetime | None = None,
                 source: str = "qms-simulator") -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0")
        self.seed, self.rate, self.source = seed, rate, source
        self._rng = random.Random(seed)
        # Bound methods cached once: processes reference these instead of creating their own,
        # which keeps the number of GC-tracked objects per open workflow small (GC cost dominates at scale).
        self._rnd = self._rng.random
        self._epoch: int | None = to_ms(start) if start is not None else None
        self._cursor = -(1 << 62)
        # A timing wheel with one slot per second: appending to a far slot is O(1), and only the
        # current second is a (small) heap, ordered by (t, seq). A single big heap of every
        # pending event was twice as slow at high rates (cache misses on each sift).
        self._wheel: dict[int, list[Entry]] = {}
        self._seconds: list[int] = []  # heap of the wheel's occupied seconds
        self._now: list[Entry] = []  # heap of the second being emitted
        self._now_sec = -(1 << 62)
        self._seq, self._num = itertools.count(), itertools.count(1)
        self._depth = [0] * len(QUEUES)  # workflows currently waiting in each queue
        self._agent_state = {a: "idle" for a in AGENT_IDS}
        self._agent_load = {a: 0.0 for a in AGENT_IDS}
        self._pr_numbers = {r: 1000 + 400 * i for i, r in enumerate(REPOS)}
        self._wf = self._defects = 0
        self._tag = ""

    def events_between(self, start: datetime, end: datetime) -> Iterator[Event]:
        """Events with start <= timestamp < end. Successive calls must not go back in time."""
        s, e = to_ms(start), to_ms(end)
        if e < s:
            raise ValueError("end before start")
        if s < self._cursor:
            raise ValueError("events_between cannot go back before the end of the previous call")
        if self._epoch is None:
            self._epoch = s
        if not self._tag:
            self._begin(self._epoch)
        self._cursor = e
        return self._run(s, e)

    # ---- engine -------------------------------------------------------------
    def _begin(self, t0: int) -> None:
        # The epoch goes into every id, so simulators started at different times never collide.
        self._tag = f"{self.seed}-{time.strftime('%y%m%d%H%M%S', time.gmtime(t0 // S))}"
        for proc in (self._arrivals(t0), self._agent_ticker(t0), self._queue_ticker(t0),
                     self._absences(t0, "down", 3.0, (2, 20)), self._absences(t0, "training", 12.0, (30, 180)),
                     self._absences(t0, "training", 12.0, (30, 180)), self._incidents(t0),
                     self._config_changes(t0)):
            self._spawn(proc)

    def _push(self, entry: Entry) -> None:
        sec = entry[0] // S
        if sec == self._now_sec:
            heapq.heappush(self._now, entry)
        elif (slot := self._wheel.get(sec)) is not None:
            slot.append(entry)
        else:
            self._wheel[sec] = [entry]
            heapq.heappush(self._seconds, sec)

    def _spawn(self, proc: Iterator[Item]) -> None:
        if (item := next(proc, None)) is not None:
            self._schedule(item, proc)

    def _schedule(self, item: Item, proc: Iterator[Any] = _EXHAUSTED) -> None:
        """Queue `item`; without `proc` it is a one-off event (resolutions, escapes) with no process behind it."""
        t, etype, data, prio, corr = item
        self._push((t, next(self._seq), proc, etype, data, prio, corr))

    def _run(self, s: int, e: int) -> Iterator[Event]:
        wheel, seconds, seq, num, src = self._wheel, self._seconds, self._seq, self._num, self.source
        heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
        idp = f"sim-{self._tag}-"
        cur, sec = self._now, self._now_sec
        pfx = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(max(sec, 0)))
        while True:
            if not cur:
                if not seconds or seconds[0] * S >= e:
                    return
                sec = heappop(seconds)
                cur = wheel.pop(sec)
                heapq.heapify(cur)
                self._now, self._now_sec = cur, sec
                pfx = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            t, _, proc, etype, data, prio, corr = cur[0]
            if t >= e:
                return
            # Advance the process before handing the event out: state stays consistent even
            # if the consumer stops here and a later call resumes.
            nxt = next(proc, None)
            if nxt is None:
                heappop(cur)
            else:
                t2, et2, d2, p2, c2 = nxt
                entry = (t2, next(seq), proc, et2, d2, p2, c2)
                if (nsec := t2 // S) == sec:
                    heapreplace(cur, entry)
                else:
                    heappop(cur)
                    if (slot := wheel.get(nsec)) is not None:
                        slot.append(entry)
                    else:
                        wheel[nsec] = [entry]
                        heappush(seconds, nsec)
            if etype is None:
                continue
            n = next(num)  # counted even when skipped, so ids do not depend on how calls split time
            if t < s:
                continue
            yield {"id": f"{idp}{n}", "type": etype, "timestamp": f"{pfx}.{t % S:03d}Z", "source": src,
                   "data": data, "metadata": {"priority": prio, "correlation_id": corr}}

    # ---- random helpers -----------------------------------------------------
    def _ln(self, median_s: float, sigma: float) -> int:
        """Lognormal duration in ms, capped at 20x the median to avoid absurd outliers."""
        return int(median_s * S * min(20.0, math.exp(sigma * self._rng.gauss(0.0, 1.0))))

    def _pick(self, seq: Sequence[T]) -> T:
        return seq[int(self._rnd() * len(seq))]

    def _weighted(self, seq: Sequence[T], cum_weights: list[float]) -> T:
        return seq[bisect.bisect(cum_weights, self._rnd())]

    def _human(self, t: int, median_s: float, sigma: float) -> int:
        return int(self._ln(median_s, sigma) * SLOWDOWN[how(t)])

    def _poisson(self, t: int, per_day: float, modulated: bool = False) -> int:
        """Next arrival of a Poisson process; `modulated` follows the weekly rhythm (by thinning)."""
        peak = PEAK if modulated else 1.0
        while True:
            t += int(self._rng.expovariate(per_day * peak / DAY)) + 1
            if not modulated or self._rnd() * PEAK < PROFILE[how(t)]:
                return t

    # ---- workflows ----------------------------------------------------------
    def _arrivals(self, t: int) -> Proc:
        per_day = self.rate * (1.0 - AGENT_SHARE - QUEUE_SHARE) / EVENTS_PER_PR * 86400
        while True:
            t = self._poisson(t, per_day, modulated=True)
            yield (t, None, _NONE, "low", "")
            self._spawn(self._workflow(t))

    def _sha(self) -> str:
        """A new commit's id (40 hex digits)."""
        return f"{self._rng.getrandbits(160):040x}"

    def _gate(self, w: WF, t: int, gate: str, agent: str, sha: str
              ) -> Generator[Item, None, tuple[int, bool, str]]:
        """Runs `gate` on commit `sha` until it passes (three strikes reject); returns (t, passed, head sha)."""
        rnd = self._rnd
        fail_p, median, _, metrics = GATES[gate]
        rerun = False  # this run re-runs a flaky failure on the same commit
        for attempt in range(3):
            ex = int(median * (0.4 + 1.2 * rnd() + (2.5 * rnd() if rnd() < 0.05 else 0.0)))  # long tail: p95
            t += ex * S
            ok = rnd() >= (0.1 if rerun else fail_p * 0.5 ** attempt)  # reruns after a fix pass more often
            data = {"workflow_id": w[0], "gate_name": gate, "passed": ok, "agent_id": agent, "execution_time": ex,
                    "metrics": metrics(ok, rnd), "head_sha": sha}
            etype = "workflow.quality_gate_executed"
            if gate == "lint-gate":  # CI reports lint as passed/failed types, `passed` implied (EVENTS.md allows it)
                del data["passed"]
                etype = "workflow.quality_gate_passed" if ok else "workflow.quality_gate_failed"
            yield (t, etype, data, w[1] if ok else "high", w[2])
            if ok:
                return t, True, sha
            rerun = rnd() < FLAKY[gate]
            if rerun:  # a flaky failure: somebody re-runs the job on the same commit
                t += self._human(t, 300, 0.8)
            else:  # the author pushes a fix (a new commit), then the gate reruns
                t += self._human(t, 1800, 0.8)
                sha = self._sha()
        yield _done(t, w, "rejected")  # three strikes
        return t, False, sha

    def _defect(self, w: WF, t: int, stage: str, found_by: str | None = None, kind: str | None = None,
                category: str | None = None) -> Item:
        self._defects += 1
        sev = self._weighted(SEVERITIES, SEV_W)
        cat = category or self._weighted(CATEGORIES, PROD_CAT_W if stage == "production" else CAT_W)
        data = {"workflow_id": w[0], "defect_id": f"DEF-{self._tag}-{self._defects}", "severity": sev,
                "category": cat, "stage": stage}
        if found_by:     # the reviewer who raised it (the ledger counts its accepted and dismissed findings)
            data["found_by"] = found_by
            data["found_by_kind"] = kind or "human"
        return (t, "workflow.defect_found", data, "critical" if stage == "production" else SEV_PRIO[sev], w[2])

    def _resolve(self, found: Item, t: int, fate: list[float]) -> None:
        res = self._weighted(RESOLUTIONS, fate)
        self._schedule((t, "workflow.defect_resolved", {"defect_id": found[2]["defect_id"], "resolution": res},
                        found[3], found[4]))

    def _side_review(self, w: WF, t: int, reviewer: str) -> None:
        """A review beside the assigned reviewer's, with no say in the merge, scheduled from `t` on: the bot's
        instant approval, or the external AI agent's comments (findings, resolved later by their fate)."""
        rnd = self._rnd
        if reviewer == BOT:
            self._schedule(_review(t, w, BOT, "bot"))
            self._schedule(_verdict(t + int(S * (1 + 20 * rnd())), w, BOT, "bot", "approved", 0.0))
            return
        self._schedule(_review(t, w, reviewer, "ai"))
        serious = False
        for _ in range(self._weighted(BURST, NOISY_BURST_W)):
            t += int(rnd() * 60 * S) + S
            found = self._defect(w, t, "review", reviewer, "ai")
            serious = serious or found[2]["severity"] != "minor"
            self._schedule(found)
            self._resolve(found, t + self._ln(3 * 3600, 0.9), FATE[reviewer])
        t += int(S * (20 + 100 * rnd()))
        self._schedule(_verdict(t, w, reviewer, "ai", "changes_requested" if serious else "approved",
                                round(self._rng.triangular(0.5, 4.0, 1.5), 2)))

    def _workflow(self, t: int) -> Proc:
        rnd, ch, d = self._rnd, self._pick, self._depth
        self._wf += 1
        x = rnd()
        prio = "normal" if x < 0.75 else "high" if x < 0.9 else "low" if x < 0.98 else "critical"
        w: WF = (f"WF-{self._tag}-{self._wf}", prio, f"corr-{self._tag}-{self._wf}")
        team = ch(TEAM_NAMES)
        author = ch(TEAMS[team])
        repo = ch(TEAM_REPOS[team]) if rnd() < 0.8 else ch(REPOS)
        self._pr_numbers[repo] += 1
        yield (t, "workflow.pr_created", {"workflow_id": w[0], "pr_number": self._pr_numbers[repo], "repository": repo,
               "author": author, "team": team, "title": f"{ch(TITLE_KINDS)}: {ch(TITLE_VERBS)} {ch(TITLE_OBJS)}",
               "qms_tracked": rnd() < 0.89}, prio, w[2])
        # 1. DoR validation: wait for the validator agent, then the checklist gate.
        t += self._ln(90, 0.6)
        yield _step(t, w, "dor_validation")
        d[0] += 1
        t += self._human(t, 180, 0.8)
        yield _assign(t, w, "qms-dor-validator", QUEUES[0])
        d[0] -= 1
        sha = self._sha()  # the pull request's head commit: gates run on it, each push replaces it
        t, ok, sha = yield from self._gate(w, t, "dor-checklist-gate", "qms-dor-validator", sha)
        if not ok:
            return
        if rnd() < 0.015:
            return (yield _done(t + self._human(t, 1800, 1.0), w, "abandoned"))
        # 2. Code review: automated lint and security scan, then a reviewer (an agent or a colleague).
        t += self._ln(30, 0.5)
        yield _step(t, w, "code_review")
        d[1] += 1
        d[2] += 1
        t += self._ln(60, 0.8)
        yield _assign(t, w, "qms-security-scanner", QUEUES[2])
        t, ok, sha = yield from self._gate(w, t, "lint-gate", "qms-style-linter", sha)
        if ok:
            t, ok, sha = yield from self._gate(w, t, "security-scan-gate", "qms-security-scanner", sha)
        d[2] -= 1
        if not ok:
            d[1] -= 1
            return
        agent = ch(REVIEW_AGENTS)
        reviewer = agent if rnd() < 0.6 else ch(DEVELOPERS)
        if reviewer == author:
            reviewer = agent
        kind = "ai" if reviewer == agent else "human"
        fate = FATE[reviewer] if kind == "ai" else HUMAN_FATE
        t += self._ln(45, 0.5)
        yield _assign(t, w, agent, QUEUES[1])
        if rnd() < P_BOT:  # the bot approves within a minute ("time to review: 1 min")
            self._side_review(w, t + int(S * (3 + 40 * rnd())), BOT)
        if rnd() < P_EXTERNAL:  # the external AI agent comments within minutes
            self._side_review(w, t + self._ln(150, 0.5), EXTERNAL_AGENT)
        t += self._human(t, 1200, 0.9)
        yield _review(t, w, reviewer, kind)
        d[1] -= 1
        for round_no in range(3):
            found = []
            n = self._weighted(BURST, BURST_W) if round_no == 0 else int(rnd() < 0.3)
            for _ in range(n):  # defects come in a burst while the reviewer reads the diff
                t += int(rnd() * 240 * S) + S
                found.append(self._defect(w, t, "review", reviewer, kind))
                yield found[-1]
            serious = any(f[2]["severity"] != "minor" for f in found)
            p_changes = (0.85 if serious else 0.3 if found else 0.08) * (0.5 if round_no else 1.0)
            t += self._human(t, 1200, 0.7)
            verdict = "changes_requested" if rnd() < p_changes else "approved"
            yield _verdict(t, w, reviewer, kind, verdict, round(self._rng.triangular(10, 80, 50), 2))
            if verdict == "approved":
                for f in found:  # leftovers (minor ones) are cleaned up after approval
                    self._resolve(f, t + self._ln(7200, 0.9), fate)
                break
            if rnd() < 0.05:
                return (yield _done(t + self._human(t, 3600, 1.0), w, "abandoned"))
            rework = self._human(t, 3600, 0.8)
            for f in found:  # fixed while the author reworks the PR
                self._resolve(f, t + int(rework * (0.2 + 0.75 * rnd())), fate)
            t += rework
            sha = self._sha()  # the rework is a new push
            yield _review(t, w, reviewer, kind)
        else:
            return (yield _done(t + self._human(t, 1800, 1.0), w, "rejected"))
        del found
        # 3. DoD validation: coverage, sometimes performance, then compliance policies.
        t += self._ln(60, 0.5)
        yield _step(t, w, "dod_validation")
        t += self._ln(60, 0.6)
        yield _assign(t, w, "qms-dod-validator")
        if rnd() < 0.85:
            t, ok, sha = yield from self._gate(w, t, "code-coverage-gate", ch(GATES["code-coverage-gate"][2]), sha)
            if not ok:
                return
        if rnd() < 0.4:
            d[3] += 1
            agent = ch(GATES["performance-gate"][2])
            t += self._human(t, 600, 0.8)
            yield _assign(t, w, agent, QUEUES[3])
            t, ok, sha = yield from self._gate(w, t, "performance-gate", agent, sha)
            d[3] -= 1
            if not ok:
                return
        for policy, p_checked, p_fail in POLICIES:
            if rnd() >= p_checked:
                continue
            t += int(S * (5 + 55 * rnd()))
            ok = rnd() >= p_fail
            yield (t, "workflow.compliance_checked", {"workflow_id": w[0], "policy": policy, "passed": ok},
                   prio if ok else "high", w[2])
            if not ok:
                if rnd() < 0.85:
                    t += self._human(t, 3600, 0.9)
                    yield (t, "workflow.violation_remediated", {"workflow_id": w[0], "policy": policy}, prio, w[2])
                elif rnd() < 0.5:  # otherwise the violation is waived and stays pending
                    return (yield _done(t + self._human(t, 3600, 1.0), w, "rejected"))
        # 4. Final approval.
        t += self._ln(60, 0.5)
        yield _step(t, w, "final_approval")
        d[4] += 1
        t += self._human(t, 300, 0.8)
        yield _assign(t, w, ch(("qms-final-approver", "qms-quality-coordinator")), QUEUES[4])
        t += self._human(t, 900, 0.9)
        merged = rnd() >= 0.04
        yield _done(t, w, "merged" if merged else "rejected")
        d[4] -= 1
        if merged and rnd() < (MISS[reviewer] if kind == "ai" else HUMAN_MISS):
            # A defect escaped the reviewers who approved and is found in production later: by monitoring or
            # a customer (no finder), or by the team's on-call colleague; some merges are reverted.
            revert = rnd() < P_REVERT
            on_call = ch(TEAMS[team]) if revert or rnd() < P_ON_CALL else None
            escaped = self._defect(w, t + self._ln(20 * 3600, 1.0), "production", on_call, "human",
                                   "revert" if revert else None)
            self._schedule(escaped)
            self._resolve(escaped, escaped[0] + self._ln(6 * 3600, 0.9), PROD_FATE)

    # ---- system -------------------------------------------------------------
    def _agent_event(self, t: int, agent: str, status: str, prio: str = "low") -> Item:
        self._agent_state[agent] = status
        return (t, "system.agent_status_changed", {"agent_id": agent, "status": status,
                "load": round(self._agent_load[agent], 2), "skills": list(AGENTS[agent])}, prio, f"corr-{agent}")

    def _agent_ticker(self, t: int) -> Proc:
        bias = {a: 0.8 + 0.4 * self._rnd() for a in AGENT_IDS}  # some agents are busier than others
        per_day = self.rate * AGENT_SHARE * 86400
        for a in AGENT_IDS:  # announce every agent at the epoch, so operational views start complete
            self._agent_load[a] = load = 0.1 + 0.7 * self._rnd()
            yield self._agent_event(t, a, "active" if load >= 0.2 else "idle")
        while True:
            t = self._poisson(t, per_day)
            yield (t, None, _NONE, "low", "")  # wake up first: read the agent's state as of now
            a = self._pick(AGENT_IDS)
            if self._agent_state[a] in ("down", "training"):
                continue
            target = (0.25 + 0.5 * PROFILE[how(t)] / PEAK) * bias[a]  # busier in working hours
            load = 0.5 * self._agent_load[a] + 0.5 * target + self._rng.gauss(0.0, 0.15)
            self._agent_load[a] = load = min(1.0, max(0.0, load))
            status = "overloaded" if load > 0.92 else "idle" if load < 0.2 else "active"
            yield self._agent_event(t, a, status, "high" if status == "overloaded" else "low")

    def _queue_ticker(self, t: int) -> Proc:
        spike_until, spike_extra = [0] * len(QUEUES), [0] * len(QUEUES)
        per_day = self.rate * QUEUE_SHARE * 86400
        for q in QUEUES:  # announce every queue at the epoch
            yield (t, "system.queue_depth_updated", {"queue": q, "depth": 0}, "low", f"corr-{q}")
        for i in itertools.cycle(range(len(QUEUES))):
            t = self._poisson(t, per_day)
            yield (t, None, _NONE, "low", "")  # wake up first: read depths as of now
            if t >= spike_until[i] and self._rnd() < 0.01:  # a burst of work lands (batch re-run, release rush)
                spike_until[i] = t + int(self._rng.uniform(5, 30) * MIN)
                spike_extra[i] = int(self._depth[i] * self._rng.uniform(0.5, 1.5) + self._rng.uniform(5, 30))
            spiking = t < spike_until[i]
            yield (t, "system.queue_depth_updated", {"queue": QUEUES[i], "depth": self._depth[i] +
                   (spike_extra[i] if spiking else 0)}, "high" if spiking else "low", f"corr-{QUEUES[i]}")

    def _absences(self, t: int, status: str, per_day: float, minutes: tuple[float, float]) -> Proc:
        """Now and then takes an agent out of service for a while: `down` (with an error) or `training`."""
        while True:
            t = self._poisson(t, per_day)
            yield (t, None, _NONE, "low", "")  # wake up first: pick among agents in service right now
            up = [a for a in AGENT_IDS if self._agent_state[a] not in ("down", "training")]
            if not up:
                continue
            a = self._pick(up)
            self._agent_load[a] = 0.0
            yield self._agent_event(t, a, status, "critical" if status == "down" else "low")
            if status == "down":
                t += int(self._rng.uniform(5, 40) * S)
                yield (t, "system.error_occurred", {"component": a, "error_type": "agent_unreachable",
                       "message": f"{a} missed 3 heartbeats", "severity": "critical"}, "critical", f"corr-{a}")
            t += int(self._rng.uniform(*minutes) * MIN)
            yield (t, None, _NONE, "low", "")
            self._agent_load[a] = 0.2
            yield self._agent_event(t, a, "active" if status == "down" else "idle")

    def _incidents(self, t: int) -> Proc:
        """Errors (about one an hour), threshold breaches (a few a day), surveys (a few a day), all
        busier in working hours and growing slowly with the load."""
        kinds, weights = ["error", "threshold", "survey"], cum(24 + 2.4 * self.rate, 6 + 0.2 * self.rate, 4 + self.rate)
        while True:
            t = self._poisson(t, 34 + 3.6 * self.rate, modulated=True)
            kind = self._weighted(kinds, weights)
            if kind == "error":
                (etype, msg), sev = self._pick(ERRORS), self._weighted(ERROR_SEVERITIES, ERROR_SEV_W)
                yield (t, "system.error_occurred", {"component": self._pick(COMPONENTS), "error_type": etype,
                       "message": msg, "severity": sev}, ERROR_PRIO[sev], f"corr-err-{t}")
            elif kind == "threshold":
                metric, limit = self._pick(THRESHOLDS)
                yield (t, "system.performance_threshold_exceeded", {"metric": metric, "threshold": limit,
                       "value": round(limit * self._rng.uniform(1.05, 1.8), 3)}, "high", f"corr-perf-{t}")
            else:
                yield (t, "user.survey_submitted", {"user": self._pick(DEVELOPERS), "score": self._weighted(
                       SCORES, SCORE_W)}, "low", f"corr-survey-{t}")

    def _config_changes(self, t: int) -> Proc:
        """About two configuration changes a day (who changed which key, from what to what).
        Its own random stream, so adding it left every other event of a seed as it was (the
        ids after a change are numbered one on)."""
        rng = random.Random(self.seed * 7919 + 17)
        current = {key: values[0] for key, values in CONFIG}
        while True:
            t += int(rng.expovariate(2.0 / DAY)) + 1
            key, values = CONFIG[int(rng.random() * len(CONFIG))]
            new = values[int(rng.random() * len(values))]
            if new == current[key]:
                continue
            yield (t, "system.configuration_changed", {"key": key, "old": current[key], "new": new,
                   "changed_by": CONFIG_CHANGERS[int(rng.random() * len(CONFIG_CHANGERS))]}, "normal", f"corr-config-{t}")
            current[key] = new
