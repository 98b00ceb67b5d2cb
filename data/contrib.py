"""What each event contributes to the rollups — pure functions, no Redis.

Two kinds of contribution, both keyed by an event-time instant `ts` (ms):
- point (`step=False`): added to the bucket holding ts; a window KPI sums buckets in W.
- step (`step=True`): a change of a piecewise-constant state function at ts (active
  workflows, agents by status, open critical defects, ...). Buckets hold the deltas;
  TOTALS holds their sum over all time, so the state at an instant t is
  TOTALS - sum(deltas at ts >= t). Fields in INTEGRAL also keep a moment so the time
  integral over a window is exact (agent utilisation).

Events that are facts on their own (a gate ran) contribute directly. Events that change
an entity whose other events may come later or out of order (a workflow, a defect, a
reviewer's work on a workflow, a compliance policy) are folded into the entity's state,
and the entity's contributions are recomputed: the aggregator writes new - old, so a
late event retracts exactly what it invalidates.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from data import ledger_contrib
from data.events import GATE_TYPES, STEPS

Contribution = tuple[str, str, int, int, bool]   # (family, field, ts_ms, value, step)

# Families of rollup hashes, so a query reads only what it needs.
MAIN, USER, GATE, HIST, QUEUE, LATE, TYPES, DEFECTS = "m", "u", "g", "h", "q", "l", "t", "d"
# Per repository / team: copies of a workflow's MAIN and LATE fields as "<scope>|<field>" and
# "<scope>|L|<field>", scope "r:<repository>" or "t:<team>" (data.scopes reads them back).
SCOPE = "s"
# Families also written to the summed resolutions (timeutil.SUMMED): the gate-time histogram,
# whose fields do not grow with a bucket's span.
SUMMED_FAMILIES = frozenset({HIST})
INTEGRAL = frozenset({"s.ag.active", "s.ag.overloaded", "s.ag.idle"})
NEVER = 1 << 62
MICRO = 1_000_000  # money is summed in micro-dollars so sums stay exact integers


def entity_refs(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """The entity pages an event belongs on: its workflow ("wf") and the actors ("ac") that
    did it — the agent, the reviewer, whoever found a defect."""
    d = ev.get("data") or {}
    refs: list[tuple[str, str]] = []
    wf = d.get("workflow_id")
    if type(wf) is str:
        refs.append(("wf", wf))
    for name in ("agent_id", "reviewer", "found_by"):
        actor = d.get(name)
        if type(actor) is str and ("ac", actor) not in refs:
            refs.append(("ac", actor))
    return refs


def minute_of(ts: int) -> int:
    return ts // 60_000 * 60_000


def direct(ev: dict[str, Any], ts: int) -> Iterator[Contribution]:
    """Contributions that need no entity state: one per fact."""
    t = ev["type"]
    d = ev.get("data") or {}
    yield TYPES, t, ts, 1, False
    yield MAIN, "ev", ts, 1, False
    if t in GATE_TYPES:
        passed = gate_passed(ev)
        gate = d["gate_name"]
        yield MAIN, "gx", ts, 1, False
        yield GATE, "x:" + gate, ts, 1, False
        if passed:
            yield MAIN, "gp", ts, 1, False
            yield GATE, "p:" + gate, ts, 1, False
        et = d.get("execution_time")
        if et is not None:
            ms = int(round(et * 1000))
            yield MAIN, "gts", ts, ms, False
            yield MAIN, "gtn", ts, 1, False
            yield GATE, "tn:" + gate, ts, 1, False
            yield HIST, f"{gate}|{hist_bin(ms)}", ts, 1, False
    elif t == "workflow.defect_found":
        yield MAIN, "df", ts, 1, False
        yield MAIN, "s.dfk", ts, 1, True
        stage = d.get("stage", "review")
        if stage == "review":
            yield MAIN, "dfr", ts, 1, False
        # Defect analytics: counts by severity, category and stage.
        yield DEFECTS, "sev:" + d["severity"], ts, 1, False
        yield DEFECTS, "cat:" + (d.get("category") or "uncategorised"), ts, 1, False
        yield DEFECTS, "stage:" + stage, ts, 1, False
    elif t == "workflow.defect_resolved":
        yield MAIN, "dr", ts, 1, False
        if d["resolution"] == "false_positive":
            yield MAIN, "drfp", ts, 1, False
    elif t == "workflow.compliance_checked":
        yield MAIN, "cc", ts, 1, False
        yield MAIN, "s.cck", ts, 1, True
        if d["passed"]:
            yield MAIN, "cp", ts, 1, False
    elif t == "workflow.review_completed":
        yield MAIN, "rc", ts, 1, False
        yield MAIN, "cost", ts, int(round(float(d.get("cost_usd") or 0) * MICRO)), False
        yield USER, "rc:" + d["reviewer"], ts, 1, False
    elif t == "workflow.review_started":
        yield USER, "s.rsk:" + d["reviewer"], ts, 1, True
    elif t == "workflow.completed":
        yield MAIN, "wc", ts, 1, False
        if d["outcome"] == "merged":
            yield MAIN, "wm", ts, 1, False
    elif t == "workflow.pr_created":
        yield MAIN, "pc", ts, 1, False
        yield MAIN, "s.wfk", ts, 1, True
        if d.get("qms_tracked", True) is not False:
            yield MAIN, "pt", ts, 1, False
    elif t == "user.survey_submitted":
        yield MAIN, "ss", ts, int(round(float(d["score"]) * MICRO)), False
        yield MAIN, "sn", ts, 1, False
    elif t == "system.error_occurred":
        yield MAIN, "err", ts, 1, False


# The gate-time histogram (family HIST, fields "<gate>|<ms>") keeps HIST_BITS significant bits of
# each duration in ms: below 2**HIST_BITS ms exact, above, 2**(HIST_BITS-1) bins per doubling, each
# counted at its middle. Any duration's bin value is within HIST_ERROR (1/128, 0.78 %) of it, and
# binning keeps the order, so a nearest-rank percentile (kpis.gate_p95) read from the bins is
# the exact percentile's bin: within HIST_ERROR of it too. A hash then holds at most ~64 fields
# per gate per doubling of the durations seen (not one per distinct millisecond).
HIST_BITS = 7
HIST_ERROR = 2.0 ** -HIST_BITS


def hist_bin(ms: int) -> int:
    """The value a duration (ms, >= 0) is counted at in the gate-time histogram."""
    s = ms.bit_length() - HIST_BITS
    if s <= 0:
        return ms
    return (ms >> s << s) + (1 << (s - 1))


def gate_passed(ev: dict[str, Any]) -> bool:
    t = ev["type"]
    if t.endswith("_passed"):
        return True
    if t.endswith("_failed"):
        return False
    return ev["data"].get("passed") is True


# --- entity routing -----------------------------------------------------------------

def pair_id(a: str, b: str) -> str:
    """One id of two names (reviewer and workflow, workflow and policy), one to one: "a|b",
    or "\x1fa\x1fb" when a holds "|" (names hold no control characters), so reviewer "ann|x"
    on "W9" and "ann" on "x|W9" stay two reviews."""
    return f"{a}|{b}" if "|" not in a else f"\x1f{a}\x1f{b}"


def pair_of(ident: str) -> tuple[str, str]:
    """The two names of a pair_id."""
    if ident.startswith("\x1f"):
        a, _, b = ident[1:].partition("\x1f")
    else:
        a, _, b = ident.partition("|")
    return a, b


def user_field(name: str, user: str, rest: str) -> str:
    """A per-user field with a name after the user (a defect category): "name:user:rest", or
    "name\x1fuser\x1frest" when the user holds ":", so "ann:ops"'s fields never read as ann's."""
    return f"{name}:{user}:{rest}" if ":" not in user else f"{name}\x1f{user}\x1f{rest}"


def entity_keys(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, id) entities an event updates."""
    t = ev["type"]
    d = ev.get("data") or {}
    if t.startswith("workflow."):
        out = []
        if t in WF_TYPES:
            out.append(("wf", d["workflow_id"]))
        if t in ("workflow.defect_found", "workflow.defect_resolved"):
            out.append(("df", d["defect_id"]))
        elif t in ("workflow.compliance_checked", "workflow.violation_remediated"):
            out.append(("cp", pair_id(d["workflow_id"], d["policy"])))
        elif t in ("workflow.review_started", "workflow.review_completed"):
            out.append(("rv", pair_id(d["reviewer"], d["workflow_id"])))
        return out
    if t == "system.agent_status_changed":
        return [("ag", d["agent_id"])]
    if t == "system.queue_depth_updated":
        return [("q", d["queue"])]
    return []


WF_TYPES = frozenset({
    "workflow.pr_created", "workflow.step_entered", "workflow.completed", "workflow.review_started",
    "workflow.review_completed", "workflow.defect_found", "workflow.compliance_checked", *GATE_TYPES,
})
TIMELINE_KINDS = frozenset({"ag", "q"})


def _earlier(a: list[Any] | None, ts: int, eid: str) -> bool:
    return a is None or (ts, eid) < (a[0], a[-1])


def fold(kind: str, state: dict[str, Any], ev: dict[str, Any], ts: int) -> None:
    """Fold one event into an entity's state (order-independent: the result is the same
    whatever order the events arrive in)."""
    t = ev["type"]
    d = ev["data"]
    eid = ev["id"]
    if kind == "wf":
        if t == "workflow.pr_created":
            if _earlier(state.get("c"), ts, eid):
                state["c"] = [ts, d["author"], d.get("team"), d["repository"], d["pr_number"], eid]
                state["qt"] = d.get("qms_tracked", True) is not False
        elif t == "workflow.step_entered":
            state.setdefault("st", []).append([ts, eid, d["step"]])
            state["st"].sort()
        elif t == "workflow.completed":
            if _earlier(state.get("done"), ts, eid):
                state["done"] = [ts, d["outcome"], eid]
        elif t == "workflow.review_started":
            state["rs"] = min(state.get("rs", NEVER), ts)
            ledger_contrib.fold_wf(state, t, d, eid, ts, None)
        elif t == "workflow.review_completed":
            if d["verdict"] == "approved":
                state["ap"] = min(state.get("ap", NEVER), ts)
            state.setdefault("rv", []).append([ts, int(round(float(d.get("cost_usd") or 0) * MICRO))])
            ledger_contrib.fold_wf(state, t, d, eid, ts, None)
        elif t in GATE_TYPES:
            passed = gate_passed(ev)
            state.setdefault("g", []).append([ts, 1 if passed else 0])
            ledger_contrib.fold_wf(state, t, d, eid, ts, passed)
        elif t == "workflow.defect_found":
            state.setdefault("d", []).append([ts, d.get("category"), 1 if d.get("stage") == "production" else 0])
        elif t == "workflow.compliance_checked":
            state["cc"] = min(state.get("cc", NEVER), ts)
            state.setdefault("ck", []).append([ts, 1 if d["passed"] else 0])
    elif kind == "df":
        if t == "workflow.defect_found":
            if _earlier(state.get("f"), ts, eid):
                state["f"] = [ts, d["severity"], d["workflow_id"], eid]
        else:
            state.setdefault("r", []).append(ts)
        ledger_contrib.fold_df(state, t, d, eid, ts)
    elif kind == "cp":
        if t == "workflow.compliance_checked":
            if not d["passed"]:
                state.setdefault("f", []).append(ts)
        else:
            state.setdefault("r", []).append(ts)
    elif kind == "rv":
        state.setdefault("s" if t == "workflow.review_started" else "c", []).append(ts)


def contributions(kind: str, state: dict[str, Any], sla_ms: int) -> list[Contribution]:
    if not state:
        return []
    if kind == "wf":
        return expand(*wf_core(state, sla_ms))
    if kind == "df":
        return _df(state) + ledger_contrib.df_contributions(state)
    if kind == "cp":
        return _cp(state)
    if kind == "rv":
        raise ValueError("rv contributions need the reviewer: use rv_contributions")
    raise ValueError(kind)


def _steps(points: Iterable[int], value_after: Any, fam: str) -> list[Contribution]:
    """Step deltas of a piecewise function given its value just after each change point."""
    out: list[Contribution] = []
    prev: dict[str, int] = {}
    for p in sorted(set(points)):
        cur = value_after(p)
        for f in cur.keys() | prev.keys():
            delta = cur.get(f, 0) - prev.get(f, 0)
            if delta:
                out.append((fam, f, p, delta, True))
        prev = cur
    return out


def _wf_state(c_ts: int, end: int, steps: list[list[Any]], rs: int, out: list[Contribution]) -> None:
    """Step deltas of the workflow's state: active on [c_ts, end), in its latest step
    (steps sorted by (ts, id)), suggested while in code_review with no review started."""
    points = {c_ts}
    for st in steps:
        if c_ts < st[0] < end:
            points.add(st[0])
    if c_ts < end < NEVER:
        points.add(end)
    if c_ts < rs < end:
        points.add(rs)
    prev_a, prev_s, prev_g = 0, None, 0
    i, n, latest = 0, len(steps), None
    for p in sorted(points):
        while i < n and steps[i][0] <= p:
            latest = steps[i][2]
            i += 1
        a = 1 if c_ts <= p < end else 0
        st = latest if a else None
        g = 1 if a and st == "code_review" and rs > p else 0
        if a != prev_a:
            out.append((MAIN, "s.active", p, a - prev_a, True))
        if st != prev_s:
            if prev_s:
                out.append((MAIN, "s.step." + prev_s, p, -1, True))
            if st:
                out.append((MAIN, "s.step." + st, p, 1, True))
        if g != prev_g:
            out.append((MAIN, "s.sugg", p, g - prev_g, True))
        prev_a, prev_s, prev_g = a, st, g


def _wf(s: dict[str, Any], sla_ms: int) -> list[Contribution]:
    out: list[Contribution] = []
    c = s.get("c")
    done = s.get("done")
    steps = s.get("st", [])
    rs = s.get("rs", NEVER)
    if c:
        _wf_state(c[0], done[0] if done else NEVER, steps, rs, out)
    if done:
        d_ts, outcome = done[0], done[1]
        if c:
            dur = d_ts - c[0]
            out.append((MAIN, "sla_n", d_ts, 1, False))
            if dur <= sla_ms:
                out.append((MAIN, "sla_ok", d_ts, 1, False))
            if outcome == "merged":
                out.append((MAIN, "ttm_s", d_ts, dur, False))
                out.append((MAIN, "ttm_n", d_ts, 1, False))
                if c[2]:
                    out.append((USER, "tm:" + c[2], d_ts, 1, False))
        if outcome == "merged":
            out.append((MAIN, "mw", d_ts, 1, False))
            prod = [x[0] for x in s.get("d", []) if x[2]]
            if prod:
                first = min(prod)
                # d <= completion implies d < any window end that holds the completion.
                if first <= d_ts:
                    out.append((MAIN, "mwpd", d_ts, 1, False))
                else:
                    out.append((LATE, f"pd:{minute_of(first)}", d_ts, 1, False))
        out.append((MAIN, "arn", d_ts, 1, False))
        firsts = {}
        for st in steps:
            firsts.setdefault(st[2], st[0])
        if len(firsts) == len(STEPS) and "cc" in s:
            ready = max(max(firsts.values()), s["cc"])
            if ready <= d_ts:
                out.append((MAIN, "ary", d_ts, 1, False))
            else:
                out.append((LATE, f"ar:{minute_of(ready)}", d_ts, 1, False))
    ap = s.get("ap")
    if ap is not None and rs != NEVER:
        out.append((MAIN, "rct_s", ap, ap - rs, False))
        out.append((MAIN, "rct_n", ap, 1, False))
    if c:
        author = c[1]
        for g_ts, passed in s.get("g", []):
            out.append((USER, "gx:" + author, g_ts, 1, False))
            if passed:
                out.append((USER, "gp:" + author, g_ts, 1, False))
        for d_ts2, cat, _prod in s.get("d", []):
            if cat:
                out.append((USER, user_field("dc", author, cat), d_ts2, 1, False))
        _scoped_own(s, c, done, out)
    return out


def _scoped_own(s: dict[str, Any], c: list[Any], done: list[Any] | None, out: list[Contribution]) -> None:
    """The facts that MAIN takes straight from events (gates, defects, checks, reviews and
    their cost, creation, completion), here from the workflow's own folded events, as
    SCOPED_ONLY items: they count only under the workflow's repository and team (`expand`),
    so a filtered dashboard adds up exactly what belongs to that repository or team."""
    own = out.append
    own((SCOPED_ONLY, "s.wfk", c[0], 1, True))
    own((SCOPED_ONLY, "pc", c[0], 1, False))
    if s.get("qt", True):
        own((SCOPED_ONLY, "pt", c[0], 1, False))
    for g_ts, passed in s.get("g", []):
        own((SCOPED_ONLY, "gx", g_ts, 1, False))
        if passed:
            own((SCOPED_ONLY, "gp", g_ts, 1, False))
    for d_ts, _cat, prod in s.get("d", []):
        own((SCOPED_ONLY, "df", d_ts, 1, False))
        if not prod:
            own((SCOPED_ONLY, "dfr", d_ts, 1, False))
    for r_ts, cost in s.get("rv", []):
        own((SCOPED_ONLY, "rc", r_ts, 1, False))
        own((SCOPED_ONLY, "cost", r_ts, cost, False))
    for k_ts, passed in s.get("ck", []):
        own((SCOPED_ONLY, "cc", k_ts, 1, False))
        if passed:
            own((SCOPED_ONLY, "cp", k_ts, 1, False))
    if done:
        own((SCOPED_ONLY, "wc", done[0], 1, False))
        if done[1] == "merged":
            own((SCOPED_ONLY, "wm", done[0], 1, False))


# --- a workflow's contributions as core items and the scopes they are copied under ----------
# ~70 % of a workflow's contributions are copies of others under its repository and team
# (families SCOPE and LEDGER_SCOPED). The aggregator retracts and re-adds an entity's
# contributions on every event: it diffs the core items (a third as many) and expands only
# what changed (Acc.add_core_diff), exact because a copy is a linear function of its item.
SCOPED_ONLY = "+m"   # a core item that contributes only its copies (a MAIN fact taken from events)


def wf_scopes(s: dict[str, Any]) -> tuple[str, ...]:
    """The scopes a workflow's contributions are copied under: its repository and team."""
    c = s.get("c")
    if not c:
        return ()
    return ("r:" + c[3], "t:" + c[2]) if c[2] else ("r:" + c[3],)


def wf_core(s: dict[str, Any], sla_ms: int) -> tuple[list[Contribution], tuple[str, ...]]:
    """(core items, scopes): `expand` of them is the workflow's contributions."""
    if not s:
        return [], ()
    return _wf(s, sla_ms) + ledger_contrib.wf_contributions(s), wf_scopes(s)


def copies(c: Contribution, scopes: tuple[str, ...]) -> list[Contribution]:
    """A core item's copies under the scopes (none for a family that is not copied)."""
    fam, f, ts, v, step = c
    if fam == MAIN or fam == SCOPED_ONLY:
        return [(SCOPE, f"{sc}|{f}", ts, v, step) for sc in scopes]
    if fam == LATE:
        return [(SCOPE, f"{sc}|L|{f}", ts, v, step) for sc in scopes]
    if fam == ledger_contrib.LEDGER:
        return [(ledger_contrib.scoped_family(sc), f, ts, v, False) for sc in scopes]
    return []


def expand(core: list[Contribution], scopes: tuple[str, ...]) -> list[Contribution]:
    """Contributions from core items: each item (but SCOPED_ONLY ones) and its copies."""
    out = [c for c in core if c[0] != SCOPED_ONLY]
    if scopes:
        for c in core:
            out += copies(c, scopes)
    return out


def _df(s: dict[str, Any]) -> list[Contribution]:
    out: list[Contribution] = []
    f = s.get("f")
    res = s.get("r", [])
    if f is None:
        return out
    f_ts = f[0]
    if f[1] == "critical":
        first_res = min(res) if res else NEVER
        if first_res > f_ts:
            out.append((MAIN, "s.crit", f_ts, 1, True))
            if first_res != NEVER:
                out.append((MAIN, "s.crit", first_res, -1, True))
    for r in res:
        out.append((MAIN, "drt_s", r, r - f_ts, False))
        out.append((MAIN, "drt_n", r, 1, False))
    return out


def _cp(s: dict[str, Any]) -> list[Contribution]:
    out: list[Contribution] = []
    rems = sorted(s.get("r", []))
    for c in s.get("f", []):
        out.append((MAIN, "s.rem", c, 1, True))
        later = next((r for r in rems if r > c), None)
        if later is not None:
            out.append((MAIN, "s.rem", later, -1, True))
    return out


def rv_contributions(user: str, s: dict[str, Any]) -> list[Contribution]:
    starts = sorted(s.get("s", []))
    comps = sorted(s.get("c", []))
    out: list[Contribution] = []
    if starts:
        def value_after(p: int) -> dict[str, int]:
            latest = max((x for x in starts if x <= p), default=None)
            if latest is None or any(latest < c <= p for c in comps):
                return {}
            return {"s.pend:" + user: 1}
        out += _steps(starts + comps, value_after, USER)
    for c in comps:
        prior = max((x for x in starts if x < c), default=None)
        if prior is not None:
            out.append((USER, "fbs:" + user, c, c - prior, False))
            out.append((USER, "fbn:" + user, c, 1, False))
    return out


def entity_contributions(kind: str, ident: str, state: dict[str, Any], sla_ms: int) -> list[Contribution]:
    return expand(*entity_core(kind, ident, state, sla_ms))


def entity_core(kind: str, ident: str, state: dict[str, Any], sla_ms: int) -> tuple[list[Contribution], tuple[str, ...]]:
    """An entity's contributions as (core items, scopes) (see `wf_core`); other kinds than
    workflows have no copies."""
    if kind == "wf":
        return wf_core(state, sla_ms)
    if kind == "rv":
        return (rv_contributions(pair_of(ident)[0], state) if state else []), ()
    return contributions(kind, state, sla_ms), ()


# The version of the entity contribution definitions above. An entity stores the basis its
# contributions were computed on (`_v`: this version, and the SLA target for a workflow)
# instead of the contributions themselves, and the aggregator recomputes them from its state
# to retract them on the entity's next event. Changing what an entity contributes changes
# what that recomputation gives: bump the version and run `cli.py rebuild`.
VERSION = 1


def basis(kind: str, sla_ms: int) -> Any:
    """What an entity's contributions depend on besides its state (stored as `_v`)."""
    return [VERSION, sla_ms] if kind == "wf" else VERSION


def written(kind: str, ident: str, state: dict[str, Any], sla_ms: int) -> tuple[list[Any], bool]:
    """The contributions an entity state read back from Redis last wrote, and whether they are
    exact; removes the state's bookkeeping (`_v`, or `_c`: the contributions themselves, as
    entities stored them before). Exact unless the state was written under another VERSION
    (then the current definitions stand in for the old ones). `sla_ms` serves states that
    carry no basis."""
    core, scopes, exact = written_core(kind, ident, state, sla_ms)
    return expand(core, scopes), exact


def written_core(kind: str, ident: str, state: dict[str, Any], sla_ms: int) -> tuple[list[Any], tuple[str, ...], bool]:
    """`written` as (core items, scopes, exact) (see `wf_core`); stored contributions (`_c`)
    are their own core, with no scopes."""
    kept = state.pop("_c", None)
    b = state.pop("_v", None)
    if kept is not None:
        return kept, (), True
    if not state:
        return [], (), True
    version = b[0] if type(b) is list else b
    sla = b[1] if type(b) is list else sla_ms
    core, scopes = entity_core(kind, ident, state, sla)
    return core, scopes, version in (None, VERSION)


# --- timelines: agents and queues -----------------------------------------------------

def timeline_value(kind: str, ident: str, value: str) -> dict[tuple[str, str], int]:
    """The contribution vector of one timeline value (an agent's status, a queue's depth)."""
    if kind == "ag":
        return {(MAIN, "s.ag." + value): 1, (MAIN, "s.agk"): 1}
    return {(QUEUE, "s.q:" + ident): int(value), (QUEUE, "s.qk:" + ident): 1}


def timeline_steps(kind: str, ident: str, prev_value: str | None, points: list[tuple[int, str]]) -> list[Contribution]:
    """Step deltas of points (sorted (ts, value)), starting from the value before them."""
    out: list[Contribution] = []
    prev = timeline_value(kind, ident, prev_value) if prev_value is not None else {}
    for ts, value in points:
        cur = timeline_value(kind, ident, value)
        for key in cur.keys() | prev.keys():
            delta = cur.get(key, 0) - prev.get(key, 0)
            if delta:
                out.append((key[0], key[1], ts, delta, True))
        prev = cur
    return out
