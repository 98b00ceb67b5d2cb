"""The bytes of an entity state in Redis (`{p}:ent:<kind>:<id>`) — pure, no Redis.

`decode(encode(kind, state)) == state` for every state (tests/unit/test_entcodec.py): the
aggregator, drill-downs and entity pages see the same dicts as before; only the stored bytes
shrink (issue 13 part 4: a workflow ~1.6 KB of JSON -> ~0.8 KB).

A workflow's state repeats itself: every step, gate, review and ledger fact carries its
event id (ids of one workflow share a prefix: `sim-5-…-`, `gh:<repo>#<pr>:`) and a 13-digit
timestamp (a workflow's share their leading digits), its gates their head commit; and some
keys are copies of others, kept because contrib reads them (`g` of `lg`; `rv`, `ap`, `la` of
`lc`; `cc` of `ck`; `qt` is true but for untracked PRs; a defect's `r` of `lr`). So:
1. a derived key is left out when its value is exactly what `_derived` gives from the rest
   (else it stays: a state folded under older definitions stays exact; a derived key the
   state lacks is listed under `~a`);
2. the JSON (orjson) goes through a substitution: each of a few strings — the ids' common
   prefix, the head commits, the leading 7 and 5 digits of the workflow's creation time — is
   replaced by one control byte. orjson never writes a raw byte below 0x20 (JSON escapes
   them), so the markers cannot occur in the JSON, and each replacement is undone exactly by
   the reverse one, applied in reverse order.
Stored: 0x1C, the per-state strings separated by 0x1F, 0x1D, the substituted JSON (0x1E: the
same with a fixed list of names substituted too, as ce5641f wrote; still read). Anything else
(`{…}`) is a state written before, read as JSON. Both directions are a few C string operations
plus a pass over the lists (what the aggregator pays per entity touch).
Other kinds (reviews, compliance) are small: plain JSON.
"""
from __future__ import annotations

from typing import Any

import orjson

_loads = orjson.loads
_dumps = orjson.dumps
HEAD, SEP, BODY = b"\x1c", b"\x1f", b"\x1d"
HEAD_STATIC = b"\x1e"            # states written with the fixed strings substituted too (ce5641f): still read
MAX_DYNAMIC = 15                 # markers 0x01..0x0f for a state's own strings
# Fixed strings, markers 0x10.. in this order, in states that begin with HEAD_STATIC (no longer
# written: ten more replacements each way cost more aggregator time than the ~60 B they saved).
# Never change this list: those states read through it.
STATIC = (b'"dor_validation"', b'"code_review"', b'"dod_validation"', b'"final_approval"', b'"merged"',
          b'"review"', b'"fixed"', b'"false_positive"', b'"human"', b'"bot"')
_STATIC_M = tuple(bytes((0x10 + i,)) for i in range(len(STATIC)))
_DYN_M = tuple(bytes((1 + i,)) for i in range(MAX_DYNAMIC))
_DERIVED = {"wf": ("qt", "rv", "ap", "la", "g", "cc"), "df": ("r",)}


def encode(kind: str, state: dict[str, Any]) -> bytes:
    if kind == "wf":
        return _pack(_strip(state, _wf_derived(state), _DERIVED["wf"], "w"), *_wf_strings(state))
    if kind == "df":
        return _pack(_strip(state, _df_derived(state), _DERIVED["df"], "d"), *_df_strings(state))
    return _dumps(state)


def _json(raw: bytes) -> bytes:
    """The JSON of stored bytes: a compact state's substitutions undone (plain JSON as it is)."""
    first = raw[:1]
    if first != HEAD and first != HEAD_STATIC:
        return raw
    head, _, body = raw[1:].partition(BODY)
    if first == HEAD_STATIC:
        for i in range(len(STATIC) - 1, -1, -1):
            body = body.replace(_STATIC_M[i], STATIC[i])
    if head:
        subs = head.split(SEP)
        for i in range(len(subs) - 1, -1, -1):
            body = body.replace(_DYN_M[i], subs[i])
    return body


def creation(raw: bytes) -> list[Any] | None:
    """A workflow state's `c` (its pr_created: [ts, author, team, repository, pr, id]) or None,
    without the derived keys `decode` puts back (`c` is never derived): what views that only
    need a workflow's author, team and repository read of thousands of states."""
    found = _loads(_json(raw))
    c = found.get("c") if isinstance(found, dict) else None
    return c if isinstance(c, list) else None


def decode(raw: bytes) -> dict[str, Any]:
    """An entity state from its stored bytes (compact or plain JSON), bookkeeping included."""
    if raw[:1] != HEAD and raw[:1] != HEAD_STATIC:
        return _loads(raw)
    s = _loads(_json(raw))
    absent = s.pop("~a", None)
    kind = s.pop("~k", None)
    derived = _wf_derived(s) if kind == "w" else _df_derived(s)
    for key, value in derived.items():
        if key not in s:
            s[key] = value
    if absent:
        for key in absent:
            s.pop(key, None)
    return s


def _strip(state: dict[str, Any], derived: dict[str, Any], keys: tuple[str, ...], tag: str) -> dict[str, Any]:
    """The state without the keys decode derives exactly (a copy: the caller's is untouched)."""
    out = dict(state)
    absent = []
    for k in keys:
        if k in derived:
            if k not in out:
                absent.append(k)
            elif out[k] == derived[k]:
                del out[k]
    out["~k"] = tag
    if absent:
        out["~a"] = absent
    return out


def common_prefix(strs: list[str]) -> str:
    """What os.path.commonprefix gives, found by bisection on slices of the least and the
    greatest string (compared in C) instead of a Python loop over their characters (2.6 % of
    the aggregator's own time)."""
    a, b = min(strs), max(strs)
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return a[:lo]


def _pack(state: dict[str, Any], ids: list[Any], ts: Any, extra: list[Any]) -> bytes:
    body = _dumps(state)
    subs: list[bytes] = []
    strs = [i for i in ids if type(i) is str]
    # As the JSON spells them (escaped char by char, so an id's JSON starts with its prefix's):
    # never a byte below 0x20, so never a marker or a separator of the header.
    if strs:
        prefix = common_prefix(strs)
        if len(prefix) > 2:
            subs.append(_dumps(prefix)[:-1])
    for h in extra:
        if type(h) is str and len(h) > 4 and len(subs) < MAX_DYNAMIC - 2:
            subs.append(_dumps(h))
    if type(ts) is int and ts > 10**9:
        digits = str(ts).encode()
        subs += [digits[:7], digits[:5]]
    for i, sub in enumerate(subs):
        body = body.replace(sub, _DYN_M[i])
    return HEAD + SEP.join(subs) + BODY + body


# --- workflow -----------------------------------------------------------------------------

def _wf_derived(s: dict[str, Any]) -> dict[str, Any]:
    """What contrib.fold / ledger_contrib.fold_wf keep as copies, from the lists they copy
    (same order; `la`: each reviewer's first approval by (ts, event id), first of equals)."""
    out: dict[str, Any] = {}
    if "c" in s:
        out["qt"] = True
    lc = s.get("lc")
    if lc:
        try:
            out["rv"] = [[x[0], x[5]] for x in lc]
            aps = [x[0] for x in lc if x[4]]
            if aps:
                out["ap"] = min(aps)
            la: dict[str, list[Any]] = {}
            for x in lc:
                if x[4]:
                    slot = la.get(x[2])
                    if slot is None or (x[0], x[1]) < (slot[0], slot[1]):
                        la[x[2]] = [x[0], x[1], x[3]]
            if la:
                out["la"] = la
        except (TypeError, IndexError, KeyError):
            pass
    lg = s.get("lg")
    if lg:
        try:
            out["g"] = [[x[0], x[3]] for x in lg]
        except (TypeError, IndexError, KeyError):
            pass
    ck = s.get("ck")
    if ck:
        try:
            out["cc"] = min(x[0] for x in ck)
        except (TypeError, IndexError, KeyError):
            pass
    return out


def _wf_strings(s: dict[str, Any]) -> tuple[list[Any], Any, list[Any]]:
    """A few of a workflow state's ids (the creation's, the first and last of each list: their
    common prefix is the lists' as a rule — any choice is exact, these make it cheap and short),
    a timestamp and the head commits, for the substitution."""
    ids: list[Any] = []
    shas: list[Any] = []
    ts = None
    try:
        c = s.get("c")
        if c:
            ids.append(c[-1])
            ts = c[0]
        for key in ("st", "lc", "lg"):
            rows = s.get(key)
            if rows:
                ids += (rows[0][1], rows[-1][1])
        lg = s.get("lg")
        if lg:
            shas = list(dict.fromkeys([x[4] for x in lg]))
        if ts is None:
            first = s.get("st") or lg
            ts = first[0][0] if first else None
    except (TypeError, IndexError, KeyError, AttributeError):
        pass
    return ids, ts, shas


# --- defect -------------------------------------------------------------------------------

def _df_derived(s: dict[str, Any]) -> dict[str, Any]:
    lr = s.get("lr")
    if lr:
        try:
            return {"r": [x[0] for x in lr]}
        except (TypeError, IndexError, KeyError):
            pass
    return {}


def _df_strings(s: dict[str, Any]) -> tuple[list[Any], Any, list[Any]]:
    ids: list[Any] = []
    ts = None
    try:
        lf = s.get("lf")
        if lf:
            ids.append(lf[1])
            ts = lf[0]
        ids += [x[1] for x in s.get("lr", ())]
    except (TypeError, IndexError, KeyError):
        pass
    return ids, ts, []
