"""The QA page's gate sums (data.gate_chunks: test coverage and code quality of every filter
from one pass over the window's gate runs), timed on synthetic runs: `digest` (the runs of a
chunk read again, or a window read whole) and `fold` (every read: the kept digests summed
into the window's steps).

    .venv/bin/python bench/gate_sums.py [--runs 5000] [--rounds 6]

A benchmark that prints numbers (not a test): ms per call, each round the mean of ten calls,
and the fastest round. Run it in two checkouts to compare them.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import views  # noqa: E402
from data.gate_chunks import digest, fold  # noqa: E402
from data.timeutil import HOUR_MS  # noqa: E402

T0 = 1_796_000_000_000 // HOUR_MS * HOUR_MS
WORKFLOWS = {"W1": ("ann", "payments", "pay-svc"), "W2": ("bob", "mobile", "app"), "W3": ("carl", "mobile", None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5000, help="gate runs in the window")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    rnd = random.Random(1)
    runs = [(T0 + rnd.randint(0, 3 * HOUR_MS),
             {"data": {"workflow_id": rnd.choice(list(WORKFLOWS)), "gate_name": rnd.choice(["lint-gate", "coverage-gate"]),
                       "metrics": {"errors": rnd.randint(0, 5), "warnings": 2, "threshold": 3}}})
            for _ in range(args.runs)]
    cuts = views.cuts_of(T0, T0 + 3 * HOUR_MS, 7 * 60_000)
    kept = [digest(runs, WORKFLOWS, 0)]
    for name, call in (("digest", lambda: digest(runs, WORKFLOWS, 0)), ("fold", lambda: fold(kept, cuts, WORKFLOWS)),
                       ("digest+fold", lambda: fold([digest(runs, WORKFLOWS, 0)], cuts, WORKFLOWS))):
        rounds = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            for _ in range(10):
                call()
            rounds.append((time.perf_counter() - t) / 10 * 1000)
        print(f"{name}: {args.runs} runs, {len(cuts) - 1} steps: " + " ".join(f"{x:.2f}" for x in rounds)
              + f" ms per call; fastest {min(rounds):.2f} ms")


if __name__ == "__main__":
    main()
