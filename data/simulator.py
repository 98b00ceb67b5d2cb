"""Deterministic, realistic QMS activity generator (pure Python, no Redis, no I/O).

`Simulator(seed, rate).events_between(start, end)` yields bare event dicts of
shared/spec/EVENTS.md in non-decreasing timestamp order. It is a discrete-event
simulation: every running process (one per open pull request, plus a few system
processes) is a Python generator that yields its next event; a heap orders them.
Only live processes and scheduled future events are held, so memory is bounded by
the number of open workflows/defects, not by the simulated duration. A generator's
code after a `yield` runs at the simulated time of the event it yielded, so shared
state (queue depths, agent states) is always read and written "as of now".

The same seed, start and end give the same events, ids included; successive calls
`events_between(a, b)`, `events_between(b, c)` continue one simulation (backfill,
then stream live).
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

Event = dict[str, Any]
# What a process yields: (t_ms, type or None for a silent wake-up, data, priority, correlation_id)
Item = tuple[int, str | None, dict[str, Any], str, str]
Proc = Generator[Item, None, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
S, MIN, H, DAY = 1000, 60_000, 3_600_000, 86_400_000

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
QUEUES = ["dor_validation_queue", "code_review_queue", "security_scan_queue", "performance_test_queue", "final_review_queue"]
# gate -> (failure probability of a first run, median execution seconds, agents that run it)
GATES: dict[str, tuple[float, float, list[str]]] = {
    "dor-checklist-gate": (0.06, 20, ["qms-dor-validator"]),
    "lint-gate": (0.10, 60, ["qms-style-linter"]),
    "security-scan-gate": (0.09, 200, ["qms-security-scanner"]),
    "code-coverage-gate": (0.16, 280, ["qms-testing-specialist", "qms-coverage-analyst"]),
    "performance-gate": (0.14, 420, ["qms-performance-tester", "qms-performance-analyst"]),
}
# policy -> (probability a PR is checked against it, failure probability)
POLICIES = [("secrets-scan", 1.0, 0.03), ("license-check", 0.7, 0.06), ("change-approval", 0.6, 0.08)]
SEVERITIES, SEV_W = ["critical", "major", "minor"], [0.05, 0.30, 0.65]
SEV_PRIO = {"critical": "critical", "major": "high", "minor": "normal"}
CATEGORIES = ["security", "performance", "style", "logic", "testing", "documentation"]
CAT_W, PROD_CAT_W = [0.14, 0.12, 0.25, 0.26, 0.15, 0.08], [0.25, 0.30, 0.0, 0.40, 0.05, 0.0]
RESOLUTIONS, RES_W = ["fixed", "false_positive", "wont_fix"], [0.88, 0.08, 0.04]
COMPONENTS = ["qms-orchestrator", "github-adapter", "gate-runner", "event-stream", "notification-service", "agent-pool"]
ERRORS = [("timeout", "upstream call timed out after 30s"), ("connection_refused", "connection refused"),
          ("rate_limited", "GitHub API rate limit reached"), ("validation_error", "payload failed schema validation"),
          ("internal_error", "unhandled exception in worker")]
THRESHOLDS = [("api_response_time_ms", 500.0), ("queue_wait_time_minutes", 60.0), ("gate_execution_time_seconds", 600.0),
              ("cpu_utilization", 0.85), ("memory_utilization", 0.90)]
TITLE_KINDS = ["feat", "fix", "refactor", "chore", "perf", "docs", "test"]
TITLE_VERBS = ["add", "fix", "update", "remove", "harden", "speed up", "simplify", "migrate"]
TITLE_OBJS = ["retry logic", "webhook handler", "login flow", "cache layer", "CSV export", "rate limiter",
              "audit log", "config loader", "search index", "API pagination", "error messages", "DB migration"]

# Relative PR activity per hour of a working day (UTC); weekends run at a quarter of it.
_WORKDAY = [0.15, 0.12, 0.1, 0.1, 0.12, 0.2, 0.35, 0.6, 1.0, 1.4, 1.6, 1.6,
            1.3, 1.5, 1.6, 1.5, 1.3, 1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2]
_raw = [_WORKDAY[h] if d < 5 else 0.1 + 0.25 * _WORKDAY[h] for d in range(7) for h in range(24)]
PROFILE = [x * 168 / sum(_raw) for x in _raw]  # hour-of-week (Mon 00h = 0), mean 1 so `rate` is the weekly mean
PEAK = max(PROFILE)
# Human waits stretch up to 2.5x when few people are around (nights, weekends): SLA misses.
SLOWDOWN = [1.0 + 1.5 * (1.0 - p / PEAK) for p in PROFILE]
# Measured mean events per pull request over its whole life (see tests); turns `rate` into PR arrivals.
EVENTS_PER_PR = 23.2
AGENT_SHARE, QUEUE_SHARE = 0.03, 0.04  # fractions of `rate` spent on agent-load and queue-depth updates


def how(t: int) -> int:
    """Hour of week of epoch-ms `t`; 1970-01-01 was a Thursday (index 72)."""
    return (t // H + 72) % 168


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:  # naive datetimes are taken as UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // _MS


_EXHAUSTED: Iterator[Any] = iter(())  # continuation of one-off scheduled events
_NONE: dict[str, Any] = {}  # data of silent wake-ups (never emitted)


class Simulator:
    """Streams QMS events; see the module docstring."""

    def __init__(self, seed: int = 42, rate: float = 5.0, start: datetime | None = None,
                 source: str = "qms-simulator") -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.seed, self.rate, self.source = seed, rate, source
        self._rng = random.Random(seed)
        self._epoch: int | None = to_ms(start) if start is not None else None
        self._cursor = -(1 << 62)
        self._heap: list[tuple[int, int, Iterator[Any], Item]] = []
        self._seq = itertools.count()
        self._num = itertools.count(1)
        self._depth = [0] * len(QUEUES)  # workflows currently waiting in each queue
        self._agent_state = {a: "idle" for a in AGENT_IDS}
        self._agent_load = {a: 0.0 for a in AGENT_IDS}
        self._pr_numbers = {r: 1000 + 400 * i for i, r in enumerate(REPOS)}
        self._wf = self._defects = 0
        self._tag = ""

    # ---- public -------------------------------------------------------------
    def events_between(self, start: datetime, end: datetime) -> Iterator[Event]:
        """Events with start <= timestamp < end. Calls must not go back in time."""
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
        # The epoch goes into every id so two simulators started at different times never collide.
        self._tag = f"{self.seed}-{time.strftime('%y%m%d%H%M%S', time.gmtime(t0 // S))}"
        procs = [self._snapshot(t0), self._arrivals(t0), self._agent_ticker(t0), self._queue_ticker(t0),
                 self._outages(t0), self._training(t0), self._training(t0), self._errors(t0),
                 self._thresholds(t0), self._surveys(t0)]
        for p in procs:
            self._spawn(p)

    def _spawn(self, proc: Iterator[Item]) -> None:
        item = next(proc, None)
        if item is not None:
            heapq.heappush(self._heap, (item[0], next(self._seq), proc, item))

    def _schedule(self, item: Item) -> None:
        """A one-off future event (escaped defects, resolutions): no process kept alive for it."""
        heapq.heappush(self._heap, (item[0], next(self._seq), _EXHAUSTED, item))

    def _run(self, s: int, e: int) -> Iterator[Event]:
        heap, seq, num, src = self._heap, self._seq, self._num, self.source
        replace, pop = heapq.heapreplace, heapq.heappop
        idp = f"sim-{self._tag}-"
        last_sec, pfx = -1, ""
        while heap and heap[0][0] < e:
            _, _, proc, ev = heap[0]
            # Advance the process before handing the event out, so state is consistent
            # even if the consumer stops here and the next call resumes.
            nxt = next(proc, None)
            if nxt is None:
                pop(heap)
            else:
                replace(heap, (nxt[0], next(seq), proc, nxt))
            t, etype, data, prio, corr = ev
            if etype is None:
                continue
            n = next(num)
            if t < s:
                continue
            sec = t // S
            if sec != last_sec:
                last_sec, pfx = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            yield {"id": f"{idp}{n}", "type": etype, "timestamp": f"{pfx}.{t % S:03d}Z", "source": src,
                   "data": data, "metadata": {"priority": prio, "correlation_id": corr}}

    # ---- helpers ------------------------------------------------------------
    def _ln(self, median_s: float, sigma: float) -> int:
        """Lognormal duration in ms, capped at 20x the median to avoid absurd outliers."""
        return int(median_s * S * min(20.0, math.exp(sigma * self._rng.gauss(0.0, 1.0))))

    def _human(self, t: int, median_s: float, sigma: float) -> int:
        return int(self._ln(median_s, sigma) * SLOWDOWN[how(t)])

    def _poisson(self, t: int, per_day: float, modulated: bool = False) -> int:
        """Next arrival time of a Poisson process; `modulated` follows the weekly PR rhythm (thinning)."""
        r = self._rng
        peak = PEAK if modulated else 1.0
        while True:
            t += int(r.expovariate(per_day * peak / DAY)) + 1
            if not modulated or r.random() * PEAK < PROFILE[how(t)]:
                return t

    # ---- workflow -----------------------------------------------------------
    def _arrivals(self, t: int) -> Proc:
        per_day = self.rate * (1.0 - AGENT_SHARE - QUEUE_SHARE) / EVENTS_PER_PR * 86400
        while True:
            t = self._poisson(t, per_day, modulated=True)
            yield (t, None, _NONE, "low", "")
            self._spawn(self._workflow(t))

    def _gate(self, wid: str, prio: str, corr: str, t: int, gate: str) -> Generator[Item, None, tuple[int, bool]]:
        rnd = self._rng.random
        fail_p, median, agents = GATES[gate]
        agent = agents[0] if len(agents) == 1 else self._rng.choice(agents)
        for attempt in range(3):
            ex = int(median * (0.4 + 1.2 * rnd() + (2.5 * rnd() if rnd() < 0.05 else 0.0)))
            t += ex * S
            ok = rnd() >= fail_p * 0.5 ** attempt  # reruns after a fix pass more often
            if gate == "code-coverage-gate":
                m: dict[str, Any] = {"coverage_percentage": round(80 + 17 * rnd() if ok else 55 + 24.9 * rnd(), 1),
                                     "threshold": 80.0}
            elif gate == "performance-gate":
                m = {"p95_latency_ms": round(250 * (0.5 + 0.5 * rnd() if ok else 1.02 + rnd()), 1), "threshold_ms": 250}
            elif gate == "security-scan-gate":
                m = {"high_vulnerabilities": 0 if ok else 1 + int(2 * rnd()), "medium_vulnerabilities": int(4 * rnd())}
            elif gate == "lint-gate":
                m = {"errors": 0 if ok else 1 + int(8 * rnd()), "warnings": int(15 * rnd())}
            else:
                m = {"items_checked": 12, "items_missing": 0 if ok else 1 + int(3 * rnd())}
            yield (t, "workflow.quality_gate_executed", {"workflow_id": wid, "gate_name": gate, "passed": ok,
                   "agent_id": agent, "execution_time": ex, "metrics": m}, prio if ok else "high", corr)
            if ok:
                return t, True
            t += self._human(t, 1800, 0.8)  # the author fixes the failure, then the gate reruns
        return t, False

    def _defect(self, wid: str, corr: str, t: int, stage: str) -> Item:
        r = self._rng
        self._defects += 1
        sev = r.choices(SEVERITIES, SEV_W)[0]
        cat = r.choices(CATEGORIES, PROD_CAT_W if stage == "production" else CAT_W)[0]
        did = f"DEF-{self._tag}-{self._defects}"
        return (t, "workflow.defect_found", {"workflow_id": wid, "defect_id": did, "severity": sev,
                "category": cat, "stage": stage}, "critical" if stage == "production" else SEV_PRIO[sev], corr)

    def _resolve(self, found: Item, t: int) -> None:
        res = self._rng.choices(RESOLUTIONS, RES_W)[0]
        self._schedule((t, "workflow.defect_resolved", {"defect_id": found[2]["defect_id"], "resolution": res},
                        found[3], found[4]))

    def _workflow(self, t: int) -> Proc:
        r = self._rng
        rnd, ch, d, human = r.random, r.choice, self._depth, self._human
        self._wf += 1
        wid, corr = f"WF-{self._tag}-{self._wf}", f"corr-{self._tag}-{self._wf}"
        team = ch(TEAM_NAMES)
        author = ch(TEAMS[team])
        repo = ch(TEAM_REPOS[team]) if rnd() < 0.8 else ch(REPOS)
        self._pr_numbers[repo] += 1
        x = rnd()
        prio = "normal" if x < 0.75 else "high" if x < 0.9 else "low" if x < 0.98 else "critical"
        title = f"{ch(TITLE_KINDS)}: {ch(TITLE_VERBS)} {ch(TITLE_OBJS)}"
        yield (t, "workflow.pr_created", {"workflow_id": wid, "pr_number": self._pr_numbers[repo], "repository": repo,
               "author": author, "team": team, "title": title, "qms_tracked": rnd() < 0.89}, prio, corr)

        def step(t: int, name: str) -> Item:
            return (t, "workflow.step_entered", {"workflow_id": wid, "step": name}, prio, corr)

        def assign(t: int, agent: str, queue: str | None) -> Item:
            data = {"workflow_id": wid, "agent_id": agent}
            if queue:
                data["queue"] = queue
            return (t, "workflow.agent_assigned", data, prio, corr)

        def done(t: int, outcome: str) -> Item:
            return (t, "workflow.completed", {"workflow_id": wid, "outcome": outcome}, prio, corr)

        # 1. DoR validation: wait for the validator agent, then the checklist gate.
        t += self._ln(90, 0.6)
        yield step(t, "dor_validation")
        d[0] += 1
        t += human(t, 180, 0.8)
        yield assign(t, "qms-dor-validator", QUEUES[0])
        d[0] -= 1
        t, ok = yield from self._gate(wid, prio, corr, t, "dor-checklist-gate")
        if not ok or rnd() < 0.015:
            yield done(t + human(t, 1800, 1.0), "rejected" if not ok else "abandoned")
            return
        # 2. Code review: automated lint + security scan, then a reviewer (agent or colleague).
        t += self._ln(30, 0.5)
        yield step(t, "code_review")
        d[1] += 1
        d[2] += 1
        t += self._ln(60, 0.8)
        yield assign(t, "qms-security-scanner", QUEUES[2])
        t, ok = yield from self._gate(wid, prio, corr, t, "lint-gate")
        if ok:
            t, ok = yield from self._gate(wid, prio, corr, t, "security-scan-gate")
        d[2] -= 1
        if not ok:
            d[1] -= 1
            yield done(t + human(t, 1800, 1.0), "rejected")
            return
        agent = ch(REVIEW_AGENTS)
        reviewer = agent if rnd() < 0.6 else ch([dev for dev in DEVELOPERS if dev != author])
        t += self._ln(45, 0.5)
        yield assign(t, agent, QUEUES[1])
        t += human(t, 1200, 0.9)
        yield (t, "workflow.review_started", {"workflow_id": wid, "reviewer": reviewer}, prio, corr)
        d[1] -= 1
        for rnd_no in range(3):
            found = []
            n = r.choices((0, 1, 2, 3, 4), (0.45, 0.25, 0.15, 0.09, 0.06))[0] if rnd_no == 0 else int(rnd() < 0.3)
            for _ in range(n):  # defects come in a burst while the reviewer reads the diff
                t += int(rnd() * 240 * S) + S
                found.append(self._defect(wid, corr, t, "review"))
                yield found[-1]
            serious = any(f[2]["severity"] != "minor" for f in found)
            p_changes = (0.85 if serious else 0.3 if found else 0.08) * (0.5 if rnd_no else 1.0)
            t += human(t, 1200, 0.7)
            verdict = "changes_requested" if rnd() < p_changes else "approved"
            yield (t, "workflow.review_completed", {"workflow_id": wid, "reviewer": reviewer, "verdict": verdict,
                   "cost_usd": round(r.triangular(10, 80, 50), 2)}, prio, corr)
            if verdict == "approved":
                for f in found:  # leftovers (minor ones) are cleaned up after approval
                    self._resolve(f, t + self._ln(7200, 0.9))
                break
            if rnd() < 0.05:
                yield done(t + human(t, 3600, 1.0), "abandoned")
                return
            rework = human(t, 3600, 0.8)
            for f in found:  # fixed while the author reworks the PR
                self._resolve(f, t + int(rework * (0.2 + 0.75 * rnd())))
            t += rework
            yield (t, "workflow.review_started", {"workflow_id": wid, "reviewer": reviewer}, prio, corr)
        else:
            yield done(t + human(t, 1800, 1.0), "rejected")
            return
        # 3. DoD validation: coverage, sometimes performance, then compliance policies.
        t += self._ln(60, 0.5)
        yield step(t, "dod_validation")
        t += self._ln(60, 0.6)
        yield assign(t, "qms-dod-validator", None)
        gates = (["code-coverage-gate"] if rnd() < 0.85 else []) + (["performance-gate"] if rnd() < 0.4 else [])
        for gate in gates:
            perf = gate == "performance-gate"
            if perf:
                d[3] += 1
                t += human(t, 600, 0.8)
                yield assign(t, GATES[gate][2][0], QUEUES[3])
            t, ok = yield from self._gate(wid, prio, corr, t, gate)
            if perf:
                d[3] -= 1
            if not ok:
                yield done(t + human(t, 1800, 1.0), "rejected")
                return
        for policy, p_checked, p_fail in POLICIES:
            if rnd() >= p_checked:
                continue
            t += int(S * (5 + 55 * rnd()))
            ok = rnd() >= p_fail
            yield (t, "workflow.compliance_checked", {"workflow_id": wid, "policy": policy, "passed": ok},
                   prio if ok else "high", corr)
            if not ok:
                if rnd() < 0.85:
                    t += human(t, 3600, 0.9)
                    yield (t, "workflow.violation_remediated", {"workflow_id": wid, "policy": policy}, prio, corr)
                elif rnd() < 0.5:
                    yield done(t + human(t, 3600, 1.0), "rejected")
                    return
        # 4. Final approval.
        t += self._ln(60, 0.5)
        yield step(t, "final_approval")
        d[4] += 1
        t += human(t, 300, 0.8)
        yield assign(t, ch(("qms-final-approver", "qms-quality-coordinator")), QUEUES[4])
        t += human(t, 900, 0.9)
        merged = rnd() >= 0.04
        yield done(t, "merged" if merged else "rejected")
        d[4] -= 1
        if merged and rnd() < 0.1:  # the defect escaped review and is found in production later
            found_item = self._defect(wid, corr, t + self._ln(20 * 3600, 1.0), "production")
            self._schedule(found_item)
            self._resolve(found_item, found_item[0] + self._ln(6 * 3600, 0.9))

    # ---- system -------------------------------------------------------------
    def _agent_event(self, t: int, agent: str, status: str, prio: str = "low") -> Item:
        return (t, "system.agent_status_changed", {"agent_id": agent, "status": status,
                "load": round(self._agent_load[agent], 2), "skills": AGENTS[agent]}, prio, f"corr-{agent}")

    def _snapshot(self, t: int) -> Proc:
        """Announce every agent and queue at the epoch so operational views start complete."""
        for a in AGENT_IDS:
            self._agent_load[a] = load = round(0.1 + 0.7 * self._rng.random(), 2)
            self._agent_state[a] = "active" if load >= 0.2 else "idle"
            yield self._agent_event(t, a, self._agent_state[a])
        for q in QUEUES:
            yield (t, "system.queue_depth_updated", {"queue": q, "depth": 0}, "low", f"corr-{q}")

    def _agent_ticker(self, t: int) -> Proc:
        r = self._rng
        bias = {a: 0.8 + 0.4 * r.random() for a in AGENT_IDS}  # some agents are busier than others
        per_day = self.rate * AGENT_SHARE * 86400
        while True:
            # Wake up first, so the agent's state is read as of the event's own time.
            t = self._poisson(t, per_day)
            yield (t, None, _NONE, "low", "")
            a = r.choice(AGENT_IDS)
            if self._agent_state[a] in ("down", "training"):
                continue
            target = (0.25 + 0.5 * PROFILE[how(t)] / PEAK) * bias[a]
            load = 0.5 * self._agent_load[a] + 0.5 * target + r.gauss(0.0, 0.15)
            self._agent_load[a] = load = min(1.0, max(0.0, load))
            status = "overloaded" if load > 0.92 else "idle" if load < 0.2 else "active"
            self._agent_state[a] = status
            yield self._agent_event(t, a, status, "high" if status == "overloaded" else "low")

    def _queue_ticker(self, t: int) -> Proc:
        r = self._rng
        spike_until, spike_extra = [0] * len(QUEUES), [0] * len(QUEUES)
        per_day = self.rate * QUEUE_SHARE * 86400
        for i in itertools.cycle(range(len(QUEUES))):
            t = self._poisson(t, per_day)
            yield (t, None, _NONE, "low", "")  # wake up: read depths as of now
            if t >= spike_until[i] and r.random() < 0.01:  # a burst of work lands (batch re-run, release rush)
                spike_until[i] = t + int(r.uniform(5, 30) * MIN)
                spike_extra[i] = int(self._depth[i] * r.uniform(0.5, 1.5) + r.uniform(5, 30))
            depth = self._depth[i] + (spike_extra[i] if t < spike_until[i] else 0)
            yield (t, "system.queue_depth_updated", {"queue": QUEUES[i], "depth": max(0, depth)},
                   "high" if t < spike_until[i] else "low", f"corr-{QUEUES[i]}")

    def _outages(self, t: int) -> Proc:
        """About three times a day an agent goes down and comes back minutes later."""
        r = self._rng
        while True:
            t = self._poisson(t, 3.0)
            yield (t, None, _NONE, "low", "")
            up = [a for a in AGENT_IDS if self._agent_state[a] not in ("down", "training")]
            if not up:
                continue
            a = r.choice(up)
            self._agent_load[a], self._agent_state[a] = 0.0, "down"
            yield self._agent_event(t, a, "down", "critical")
            t += int(r.uniform(5, 40) * S)
            yield (t, "system.error_occurred", {"component": a, "error_type": "agent_unreachable",
                   "message": f"{a} missed 3 heartbeats", "severity": "critical"}, "critical", f"corr-{a}")
            t += int(r.uniform(2, 20) * MIN)
            yield (t, None, _NONE, "low", "")
            self._agent_load[a], self._agent_state[a] = 0.3, "active"
            yield self._agent_event(t, a, "active", "high")

    def _training(self, t: int) -> Proc:
        """Keeps agents cycling through training: a couple are in training much of the time."""
        r = self._rng
        t += int(r.uniform(1, 60) * S)
        while True:
            yield (t, None, _NONE, "low", "")  # wake up: pick among agents free right now
            cand = [a for a in AGENT_IDS if self._agent_state[a] in ("active", "idle")]
            if cand:
                a = r.choice(cand)
                self._agent_load[a], self._agent_state[a] = 0.0, "training"
                yield self._agent_event(t, a, "training")
                t += int(r.uniform(0.5, 3.0) * H)
                yield (t, None, _NONE, "low", "")
                self._agent_load[a], self._agent_state[a] = 0.1, "idle"
                yield self._agent_event(t, a, "idle")
            t = self._poisson(t, 24.0)

    def _errors(self, t: int) -> Proc:
        r = self._rng
        per_day = (1.0 + 0.1 * self.rate) * 24
        while True:
            t = self._poisson(t, per_day, modulated=True)
            etype, msg = r.choice(ERRORS)
            sev = r.choices(("info", "warning", "critical"), (0.3, 0.6, 0.1))[0]
            yield (t, "system.error_occurred", {"component": r.choice(COMPONENTS), "error_type": etype,
                   "message": msg, "severity": sev}, {"info": "low", "warning": "normal"}.get(sev, "critical"),
                   f"corr-err-{t}")

    def _thresholds(self, t: int) -> Proc:
        r = self._rng
        while True:
            t = self._poisson(t, 2.0 + 0.2 * self.rate, modulated=True)
            metric, limit = r.choice(THRESHOLDS)
            value = round(limit * r.uniform(1.05, 1.8), 3)
            yield (t, "system.performance_threshold_exceeded", {"metric": metric, "value": value,
                   "threshold": limit}, "high", f"corr-perf-{t}")

    def _surveys(self, t: int) -> Proc:
        r = self._rng
        while True:
            t = self._poisson(t, 4.0 + self.rate, modulated=True)  # people answer during working hours
            score = r.choices((1, 2, 3, 4, 5), (0.02, 0.05, 0.13, 0.40, 0.40))[0]
            yield (t, "user.survey_submitted", {"user": r.choice(DEVELOPERS), "score": score}, "low",
                   f"corr-survey-{t}")
