"""The reviewer ledger's contributions (docs/METRICS.md, "The reviewer ledger") — pure, no Redis.

The ledger's facts live in two entities the aggregator already keeps:
- the workflow ("wf"): each reviewer's first review event and first approval, its completed
  reviews, its gate runs (with head_sha) and its production defects (the existing "d" list);
- the defect ("df"): its first `defect_found` (finder, kind, stage) and every resolution.
On each batch the aggregator recomputes an entity's contributions and writes new − old, so a
late `pr_created`, approval, defect or resolution retracts exactly what it changes.

Fields of the LEDGER family are `metric \x1f actor \x1f kind \x1f extra` (names hold no control
characters, so the split is one to one). `kind` is the event's explicit kind, or "" when the
event named none: whether "" means `ai` (a known agent) or `human` is decided when the figures
are read (data/ledger.py), so an agent announced after its reviews still counts as one. Figures
"before end" (an approval's escape, a pass followed by a production defect, a fail followed by
a pass) carry the minute of that later event in `extra`; the reader counts them when the
minute is before the window's end (window edges are whole minutes).

LEDGER_SCOPED holds the workflow's ledger fields again per scope, `r:<repository>` or `t:<team>` of
the workflow's creation (the team/repository filters; data.contrib.copies): in a rollup family
of the scope's own, `scoped_family` ("w" and the scope's UTF-8 in hex), under the LEDGER field's
name. They were one family "w" with fields `scope \x1f field`: ~1,400 fields an hour and ~5,000 a
day at 1 event/s, past the 512 entries (and, with a long repository and actor name, the 64 bytes
a field) under which Redis keeps a hash as a listpack (~25 B a field here) instead of a hash
table (~96 B). Buckets of that family are still read and summed with the scope's own
(data.ledger.figures): sums are additive, so a copy written there and retracted into the scope's
family nets out exactly.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

Contribution = tuple[str, str, int, int, bool]

LEDGER, LEDGER_SCOPED = "v", "w"
SEP = "\x1f"
PRED_SEP = "\x1e"
MICRO = 1_000_000


@lru_cache(maxsize=4096)
def scoped_family(scope: str) -> str:
    """The rollup family that holds one scope's LEDGER_SCOPED copies (hex: any scope name makes
    a key part of [0-9a-f], no ':' or hash tag)."""
    return LEDGER_SCOPED + scope.encode().hex()

# metric codes (field names stay short: every bucket holds them)
RC, AP, CR, COST = "rc", "ap", "cr", "cost"              # reviews completed / approvals / changes / µ$
TTF_S, TTF_N = "ttf_s", "ttf_n"                          # reviewer × workflow first review − creation
FR, FA, FD, FW = "fr", "fa", "fd", "fw"                  # findings raised / accepted / dismissed / won't fix
ESC = "esc"                                              # production defects on workflows approved
WA, WX = "wa", "wx"                                      # workflows approved / … with an escape (extra: minute)
FRA_S, FRA_N = "fra_s", "fra_n"                          # per workflow: first review by anyone
FRH_S, FRH_N = "frh_s", "frh_n"                          # per workflow: first human review (conditional)
GP, GPX, GF, GFF = "gp", "gpx", "gf", "gff"              # gate passes / … followed by prod defect / fails / flaky


def field(metric: str, actor: str = "", kind: str = "", extra: str = "") -> str:
    return SEP.join((metric, actor, kind, extra))


def parse(f: str) -> tuple[str, str, str, str] | None:
    parts = f.split(SEP)
    return (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 else None


def minute_of(ts: int) -> int:
    return ts // 60_000 * 60_000


def _first(slot: list[Any] | None, ts: int, eid: str) -> bool:
    return slot is None or (ts, eid) < (slot[0], slot[1])


def fold_wf(state: dict[str, Any], t: str, d: dict[str, Any], eid: str, ts: int, passed: bool | None) -> None:
    """The workflow's ledger facts (called by contrib.fold for review and gate events)."""
    if t in ("workflow.review_started", "workflow.review_completed"):
        who, kind = d["reviewer"], d.get("reviewer_kind") or ""
        first = state.setdefault("lv", {})
        if _first(first.get(who), ts, eid):
            first[who] = [ts, eid, kind]
        if t == "workflow.review_completed":
            cost = int(round(float(d.get("cost_usd") or 0) * MICRO))
            approved = d["verdict"] == "approved"
            state.setdefault("lc", []).append([ts, eid, who, kind, 1 if approved else 0, cost])
            if approved:
                aps = state.setdefault("la", {})
                if _first(aps.get(who), ts, eid):
                    aps[who] = [ts, eid, kind]
    elif passed is not None:
        state.setdefault("lg", []).append([ts, eid, d["gate_name"], 1 if passed else 0, d.get("head_sha")])


def fold_df(state: dict[str, Any], t: str, d: dict[str, Any], eid: str, ts: int) -> None:
    """The defect's ledger facts: its first finding (finder, kind, stage), its resolutions."""
    if t == "workflow.defect_found":
        if _first(state.get("lf"), ts, eid):
            state["lf"] = [ts, eid, d.get("found_by"), d.get("found_by_kind") or "", d.get("stage") or "review"]
    else:
        state.setdefault("lr", []).append([ts, eid, d["resolution"]])


def wf_contributions(s: dict[str, Any]) -> list[Contribution]:
    """The workflow's ledger contributions, without their LEDGER_SCOPED copies (made by
    data.contrib.copies under the workflow's scopes, data.contrib.wf_core)."""
    out: list[Contribution] = []
    add = out.append
    for ts, _eid, who, kind, approved, cost in s.get("lc", ()):
        add((LEDGER, field(RC, who, kind), ts, 1, False))
        add((LEDGER, field(AP if approved else CR, who, kind), ts, 1, False))
        if cost:
            add((LEDGER, field(COST, who, kind), ts, cost, False))
    prod = sorted(x[0] for x in s.get("d", ()) if x[2])
    for who, (a_ts, _eid, kind) in s.get("la", {}).items():
        add((LEDGER, field(WA, who, kind), a_ts, 1, False))
        later = next((p for p in prod if p >= a_ts), None)
        if later is not None:
            add((LEDGER, field(WX, who, kind, str(minute_of(later))), a_ts, 1, False))
        for p in prod:
            if p >= a_ts:
                add((LEDGER, field(ESC, who, kind), p, 1, False))
    _gates(s.get("lg", ()), prod, add)
    c = s.get("c")
    if c:
        created = c[0]
        firsts = sorted((v[0], v[1], who, v[2]) for who, v in s.get("lv", {}).items())
        for ts, _eid, who, kind in firsts:
            add((LEDGER, field(TTF_S, who, kind), ts, ts - created, False))
            add((LEDGER, field(TTF_N, who, kind), ts, 1, False))
        if firsts:
            add((LEDGER, field(FRA_S), firsts[0][0], firsts[0][0] - created, False))
            add((LEDGER, field(FRA_N), firsts[0][0], 1, False))
        _first_human(firsts, created, add)
    return out


def _first_human(firsts: list[tuple[int, str, str, str]], created: int, add: Any) -> None:
    """The workflow's first human review, whoever turns out to be an agent: each reviewer
    without an explicit kind that could be it is a candidate, its field naming the reviewers
    before it that must all be agents (and it not one) for it to count. Explicit ai/bot
    reviewers never are; the first explicit human ends the list. Exactly one candidate holds
    once kinds are known (data.ledger)."""
    before: list[str] = []
    for ts, _eid, who, kind in firsts:
        if kind in ("ai", "bot"):
            continue
        extra = PRED_SEP.join(before)
        add((LEDGER, field(FRH_S, who, kind, extra), ts, ts - created, False))
        add((LEDGER, field(FRH_N, who, kind, extra), ts, 1, False))
        if kind == "human":
            return
        before.append(who)


def _gates(runs: Any, prod: list[int], add: Any) -> None:
    passes: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for ts, eid, gate, passed, sha in runs:
        if passed and sha:
            passes.setdefault((gate, sha), []).append((ts, eid))
    for ts, eid, gate, passed, sha in runs:
        if passed:
            add((LEDGER, field(GP, gate), ts, 1, False))
            later = next((p for p in prod if p >= ts), None)
            if later is not None:
                add((LEDGER, field(GPX, gate, "", str(minute_of(later))), ts, 1, False))
        else:
            add((LEDGER, field(GF, gate), ts, 1, False))
            if sha:
                rerun = min((p for p in passes.get((gate, sha), ()) if p > (ts, eid)), default=None)
                if rerun is not None:
                    add((LEDGER, field(GFF, gate, "", str(minute_of(rerun[0]))), ts, 1, False))


def df_contributions(s: dict[str, Any]) -> list[Contribution]:
    f = s.get("lf")
    if not f or not f[2] or f[4] != "review":
        return []
    _ts, _eid, who, kind, _stage = f
    out: list[Contribution] = [(LEDGER, field(FR, who, kind), f[0], 1, False)]
    res = s.get("lr")
    if res:
        r_ts, _rid, resolution = max(res, key=lambda x: (x[0], x[1]))
        metric = {"fixed": FA, "false_positive": FD}.get(resolution, FW)
        out.append((LEDGER, field(metric, who, kind), r_ts, 1, False))
    return out
