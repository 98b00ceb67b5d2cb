"""The compact entity encoding (data/entcodec.py): every state round-trips exactly — the ones
the aggregator folds from simulated activity after each event, states of older definitions,
and hand-made ones with names that look like the encoding's own markers — and the
contributions read back are the contributions written."""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import orjson
import pytest

from data import contrib, entcodec
from data.simulator import Simulator
from data.timeutil import HOUR_MS, parse_iso, to_datetime

SLA = 4 * HOUR_MS
# The simulated activity starts at a fixed working-day morning (a Wednesday, 08:00 UTC): the
# simulator runs busier in working hours, so a start relative to now gave a night or a weekend
# a fraction of the states depending on when the suite ran.
START_MS = parse_iso("2026-11-04T08:00:00Z")


def folded(hours: float = 30, seed: int = 13, every: bool = False) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Entity states as the aggregator folds them, by (kind, id): the final one, or (every)
    a copy after each event."""
    start = to_datetime(START_MS)
    evs = Simulator(seed=seed, rate=0.3, start=start).events_between(
        start, to_datetime(START_MS + int(hours * HOUR_MS)))
    states: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    seen: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for ev in evs:
        ts = parse_iso(ev["timestamp"])
        for kind, ident in contrib.entity_keys(ev):
            if kind in contrib.TIMELINE_KINDS:
                continue
            s = states[(kind, ident)]
            contrib.fold(kind, s, ev, ts)
            if every:
                seen[(kind, ident)].append(orjson.loads(orjson.dumps(s)))
    if not every:
        for key, s in states.items():
            seen[key].append(s)
    return seen


def roundtrip(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    raw = entcodec.encode(kind, state)
    assert isinstance(raw, bytes)
    return entcodec.decode(raw)


def test_enc001_every_folded_state_round_trips_after_every_event() -> None:
    kinds: dict[str, int] = defaultdict(int)
    for (kind, ident), states in folded(hours=8, every=True).items():
        for s in states:
            s["_v"] = contrib.basis(kind, SLA)
            got = roundtrip(kind, s)
            assert got == s, (kind, ident)
            assert orjson.dumps(got, option=orjson.OPT_SORT_KEYS) == orjson.dumps(s, option=orjson.OPT_SORT_KEYS)
            kinds[kind] += 1
    assert set(kinds) == {"wf", "df", "rv", "cp"} and kinds["wf"] > 500


def test_enc002_contributions_read_back_are_the_ones_written() -> None:
    """What the aggregator retracts (contrib.written of the stored bytes) is what it wrote."""
    n = 0
    for (kind, ident), (s,) in folded().items():
        s["_v"] = contrib.basis(kind, SLA)
        want = contrib.entity_contributions(kind, ident, {k: v for k, v in s.items() if k != "_v"}, SLA)
        got, exact = contrib.written(kind, ident, entcodec.decode(entcodec.encode(kind, s)), 0)
        assert exact and got == want, (kind, ident)
        n += bool(want)
    assert n > 1000


def test_enc003_compact_workflows_and_defects_are_smaller() -> None:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (kind, _ident), (s,) in folded().items():
        s["_v"] = contrib.basis(kind, SLA)
        sizes[kind][0] += len(orjson.dumps(s))
        sizes[kind][1] += len(entcodec.encode(kind, s))
    assert sizes["wf"][1] < 0.6 * sizes["wf"][0], sizes["wf"]
    assert sizes["df"][1] < 0.85 * sizes["df"][0], sizes["df"]
    assert sizes["rv"][1] == sizes["rv"][0] and sizes["cp"][1] == sizes["cp"][0]   # plain JSON


def test_enc004_a_completed_workflow_keeps_no_copies() -> None:
    """The derived keys are left out and the ids' prefix, commit, times shortened: the stored
    bytes hold each event id's tail once per fact, the head commit once."""
    # A tracked one: an untracked workflow's "qt": false is a fact of its events, kept as it is.
    wf = next(s for (kind, _i), (s,) in folded().items()
              if kind == "wf" and "done" in s and s.get("lc") and s.get("qt", True) is not False)
    wf["_v"] = contrib.basis("wf", SLA)
    raw = entcodec.encode("wf", wf)
    body = raw.partition(b"\x1d")[2]
    for key in (b'"g":', b'"rv":', b'"la":', b'"ap":', b'"qt":'):
        assert key not in body
    sha = wf["lg"][0][4]
    assert raw.count(sha.encode()) == 1
    assert b'"lg":' in body and b'"lc":' in body


def test_enc005_states_of_older_definitions_and_odd_states_stay_exact() -> None:
    t = 1_795_000_000_000
    cases: list[tuple[str, dict[str, Any]]] = [
        # before the reviewer ledger: rv and g without lc and lg
        ("wf", {"c": [t, "ann", None, "api", 1, "e1"], "qt": True, "rv": [[t + 5, 10]], "g": [[t + 1, 1]], "ap": t + 5}),
        # lc present, rv missing (the codec must not invent it)
        ("wf", {"c": [t, "ann", "t", "api", 1, "e1"], "qt": True,
                "lc": [[t + 9, "e9", "bob", "", 1, 0]], "la": {"bob": [t + 9, "e9", ""]}, "ap": t + 9}),
        # rv longer than lc (reviews folded before and after the ledger)
        ("wf", {"c": [t, "ann", "t", "api", 1, "e1"], "qt": False, "rv": [[t + 1, 0], [t + 9, 0]],
                "lc": [[t + 9, "e9", "bob", "", 0, 0]]}),
        # no creation yet: steps and gates only; equal timestamps ordered by id
        ("wf", {"st": [[t, "x-2", "code_review"], [t, "x-10", "dor_validation"]],
                "g": [[t, 0], [t, 1]], "lg": [[t, "x-2", "lint", 0, None], [t, "x-1", "lint", 1, "abcdef"]]}),
        # two approvals of one reviewer at the same instant: the smaller id is the first
        ("wf", {"c": [t, "a", "", "r", 2, "id"], "qt": True,
                "lc": [[t + 1, "b", "ann", "human", 1, 3], [t + 1, "a", "ann", "ai", 1, 4], [t, "z", "bob", "", 0, 0]],
                "rv": [[t + 1, 3], [t + 1, 4], [t, 0]], "ap": t + 1, "la": {"ann": [t + 1, "a", "ai"]},
                "ck": [[t + 3, 0], [t + 2, 1]], "cc": t + 2, "d": [[t + 4, None, 1], [t + 5, "style", 0]],
                "done": [t + 9, "merged", "idd"], "_v": [1, SLA]}),
        # names that look like the encoding: its markers, quotes, the ids' prefix, the times' digits
        ("wf", {"c": [t, "\x01\x1e\x1d\x1f", "\"team\"", "1795000", 3, "gh:o/r#3:pr"], "qt": True,
                "st": [[t + 1, "gh:o/r#3:s", "\x10"]], "done": [t + 2, "\x14", "gh:o/r#3:done"],
                "lg": [[t + 1, "gh:o/r#3:g", "\"gh:o/r#3:", 1, "\"1795000\""]], "g": [[t + 1, 1]],
                "lv": {"\"gh:o/r#3:x": [t + 1, "gh:o/r#3:l", "bot"]}, "rs": t + 1}),
        # a key the codec does not know
        ("wf", {"c": [t, "a", None, "r", 1, "e"], "qt": True, "zz": {"k": [1, 2]}}),
        # defects: found, resolved twice; resolved before found; a stored r that differs
        ("df", {"f": [t, "critical", "W1", "e1"], "lf": [t, "e1", "ann", "human", "review"],
                "r": [t + 5, t + 9], "lr": [[t + 5, "e5", "fixed"], [t + 9, "e9", "false_positive"]], "_v": 1}),
        ("df", {"r": [t + 5], "lr": [[t + 5, "e5", "fixed"]]}),
        ("df", {"f": [t, "minor", "W1", "e1"], "lf": [t, "e1", None, "", "production"], "r": [t + 5]}),
        ("df", {}),
        ("wf", {}),
        ("rv", {"s": [t], "c": [t + 1], "_v": 1}),
        ("cp", {"f": [t], "_v": 1}),
    ]
    for kind, s in cases:
        assert roundtrip(kind, s) == s, (kind, s)


def test_enc006_plain_json_states_are_read_as_before() -> None:
    legacy = {"c": [1, "a", None, "r", 1, "e"], "qt": True, "_c": [["m", "x", 1, 1, False]]}
    assert entcodec.decode(orjson.dumps(legacy)) == legacy
    assert entcodec.decode(b'{"_v":1}') == {"_v": 1}


@pytest.mark.parametrize("seed", range(4))
def test_enc007_random_names_round_trip(seed: int) -> None:
    """Names drawn from an alphabet heavy in the encoding's own bytes, quotes, digits and the
    ids' prefix: whatever substitution the encoder picks, decode undoes it."""
    rnd = random.Random(seed)
    alphabet = ["\x01", "\x02", "\x10", "\x1d", "\x1e", "\x1f", '"', "\\", "gh:", "17950", "-", "a", "é", "0"]

    def name() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6)))
    t = 1_795_000_000_000 + rnd.randint(0, 10**6)
    for _ in range(200):
        ids = ["gh:" + name() for _ in range(8)]
        lc = [[t + rnd.randint(-5, 5), rnd.choice(ids), name(), rnd.choice(["", "ai", "human"]), rnd.randint(0, 1),
               rnd.randint(0, 9)] for _ in range(rnd.randint(0, 3))]
        lg = [[t + rnd.randint(0, 9), rnd.choice(ids), name(), rnd.randint(0, 1), rnd.choice([None, name(), "abcdef"])]
              for _ in range(rnd.randint(0, 3))]
        s: dict[str, Any] = {"c": [t, name(), rnd.choice([None, name()]), name(), 1, ids[0]], "qt": True,
                             "st": [[t + 1, ids[1], name()]], "lv": {name(): [t, ids[2], name()]}, "lc": lc, "lg": lg,
                             "_v": [1, SLA]}
        s.update(entcodec._wf_derived(s))
        assert roundtrip("wf", s) == s
        s.pop("rv", None)
        assert roundtrip("wf", s) == s
        d = {"f": [t, name(), name(), ids[3]], "lf": [t, ids[3], name(), name(), name()],
             "lr": [[t + 1, ids[4], name()]], "r": [t + 1]}
        assert roundtrip("df", d) == d


def test_enc008_states_written_with_the_fixed_names_substituted_still_read() -> None:
    """ce5641f wrote 0x1E states whose step and outcome names were markers too: decode still
    undoes them (this is such a state's bytes as that commit encoded them)."""
    t = 1_795_000_000_000
    s = {"c": [t, "ann", None, "api", 1, "sim-1-5"], "qt": True,
         "st": [[t + 1, "sim-1-6", "code_review"]], "done": [t + 9, "merged", "sim-1-9"], "_v": [1, SLA]}
    old = (b'\x1e"sim-1-\x1f1795000\x1f17950\x1d{"~k":"w","c":[\x02000000,"ann",null,"api",1,\x015"],'
           b'"st":[[\x02000001,\x016",\x11]],"done":[\x02000009,\x14,\x019"],"_v":[1,14400000]}')
    assert entcodec.decode(old) == s
    assert entcodec.encode("wf", s)[:1] == b"\x1c" and roundtrip("wf", s) == s


def test_enc009_creation_reads_a_workflow_s_pr_created_as_decode_does() -> None:
    """entcodec.creation (the `c` alone, no derived keys): what decode gives as `c`, for folded
    workflows (compact), random names, a ce5641f state and plain JSON; None without one."""
    n = 0
    for (kind, _), states in folded(hours=8).items():
        if kind != "wf":
            continue
        raw = entcodec.encode(kind, {**states[-1], "_v": contrib.basis(kind, SLA)})
        assert entcodec.creation(raw) == entcodec.decode(raw).get("c")
        n += entcodec.creation(raw) is not None
    assert n > 100
    t = 1_795_000_000_000
    old = (b'\x1e"sim-1-\x1f1795000\x1f17950\x1d{"~k":"w","c":[\x02000000,"ann",null,"api",1,\x015"],'
           b'"st":[[\x02000001,\x016",\x11]],"done":[\x02000009,\x14,\x019"],"_v":[1,14400000]}')
    assert entcodec.creation(old) == [t, "ann", None, "api", 1, "sim-1-5"]
    odd = {"c": [t, "\x01\x1d\"", "\x1f", "gh:\x02", 1, "gh:\x02-1"], "st": [[t + 1, "gh:\x02-2", "x"]], "_v": [1, SLA]}
    assert entcodec.creation(entcodec.encode("wf", odd)) == odd["c"]
    assert entcodec.creation(orjson.dumps({"c": [1, "a", None, "r", 1, "e"], "_c": []})) == [1, "a", None, "r", 1, "e"]
    assert entcodec.creation(entcodec.encode("wf", {"st": [[t, "e", "x"]], "_v": [1, SLA]})) is None
    assert entcodec.creation(b'{"_v":1}') is None


def test_common_prefix_is_os_path_commonprefix() -> None:
    """entcodec.common_prefix (bisection on slices) gives what os.path.commonprefix gives."""
    import random
    from os.path import commonprefix

    from data.entcodec import common_prefix
    rnd = random.Random(7)
    for _ in range(3000):
        base = "".join(rnd.choice("ab-é1") for _ in range(rnd.randrange(0, 12)))
        strs = [base + "".join(rnd.choice("ab-é1") for _ in range(rnd.randrange(0, 6))) for _ in range(rnd.randrange(1, 5))]
        assert common_prefix(strs) == commonprefix(strs), strs
    assert common_prefix(["wf-123", "wf-124", "wf-2"]) == "wf-" and common_prefix(["x"]) == "x"
