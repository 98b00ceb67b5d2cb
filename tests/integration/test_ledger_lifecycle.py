"""The reviewer ledger of a pull request's life as GitHub's webhooks tell it (the deliveries of
test_gh_lifecycle: an AI reviewer with two findings, one fixed and one dismissed, a flaky lint
check, a human approval, merged, reverted in production): the figures worked out by hand below,
equal to the reference calculator's, through GET /api/reviewers and /api/reviewers/{id}."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from data import reference
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import HOUR_MS, fmt_ms, to_datetime
from tests.fixtures.github.examples import deliver
from tests.integration.test_gh_lifecycle import END, deliveries, gh  # noqa: F401  (gh: a fixture)
from tests.integration.test_ledger_engine import same

K = Keys("qms")
MIN = 60_000


def test_ledger_life001_a_pull_requests_ledger(gh: Any, r: Any, auth: Any) -> None:  # noqa: F811
    c = gh.test_client()
    for n, (event, payload) in enumerate(deliveries()):
        assert deliver(c, event, payload, f"ledger-{n}").status_code in (200, 202)
    events = [orjson.loads(f[b"e"]) for _sid, f in r.xrange(K.stream)]
    Aggregator(r, K).drain()
    c.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("admin")["Authorization"]
    res = c.get(f"/api/reviewers?timeframe=1h&end={fmt_ms(END)}")
    assert res.status_code == 200, res.data[:300]
    data = res.json["response"]["data"]
    rows = {row["reviewer"]: row for row in data["rows"]}
    assert set(rows) == {"coderabbit", "octocat"}
    ai, human = rows["coderabbit"], rows["octocat"]
    # The AI: one review asking for changes (its configured cost), two findings: one fixed, one dismissed.
    assert ai["kind"] == "ai" and ai["reviews_completed"] == 1 and ai["changes_requested"] == 1
    assert ai["findings_raised"] == 2 and ai["findings_accepted"] == 1 and ai["findings_dismissed"] == 1
    assert ai["precision"] == 50.0 and ai["cost_per_accepted_finding"] == pytest.approx(0.4)
    assert ai["time_to_first_review"] == pytest.approx((9 * MIN - 1) / HOUR_MS)   # its review began 1 ms before 9 min
    assert ai["escapes"] == 0 and ai["miss_rate"] is None
    # The human approved; the revert at 50 min is a production defect after that approval: an escape, a miss.
    assert human["kind"] == "human" and human["approvals"] == 1 and human["workflows_approved"] == 1
    assert human["escapes"] == 1 and human["miss_rate"] == 100.0 and human["precision"] is None
    assert human["time_to_first_review"] == pytest.approx((30 * MIN - 1) / HOUR_MS)
    fr = data["first_review"]
    assert fr["workflows_any"] == 1 and fr["time_to_first_review_any"] == pytest.approx((9 * MIN - 1) / HOUR_MS)
    assert fr["workflows_human"] == 1 and fr["time_to_first_human_review"] == pytest.approx((30 * MIN - 1) / HOUR_MS)
    # lint: failed then passed on the same commit (flaky), both passes followed by the revert.
    assert data["gates"] == [{"gate": "lint-gate", "passes": 2, "passes_followed_by_production_defect": 2,
                              "calibration_miss_rate": 100.0, "fails": 1, "flaky_fails": 1, "flakiness": 100.0}]
    want = reference.compute_ledger(events, to_datetime(END), timedelta(hours=1))
    got = {k: data[k] for k in ("kinds", "first_review", "gates")}
    got["rows"] = [{k: v for k, v in row.items() if k != "href"} for row in data["rows"]]
    assert same(got, want) == []
    # The events behind the AI's numbers: its two comments, the fix and the dismissal.
    one = c.get(f"/api/reviewers/coderabbit?timeframe=1h&end={fmt_ms(END)}").json["response"]["data"]
    assert sorted(row["event"]["id"] for row in one["rows"]["findings_raised"]) == [
        "gh:Codertocat/Hello-World#2:comment:501", "gh:Codertocat/Hello-World#2:comment:502"]
    assert [row["event"]["id"] for row in one["rows"]["findings_dismissed"]] == [
        "gh:Codertocat/Hello-World#2:comment:502:resolved"]
    esc = c.get(f"/api/reviewers/octocat?timeframe=1h&end={fmt_ms(END)}").json["response"]["data"]["rows"]["escapes"]
    assert [row["event"]["id"] for row in esc] == ["gh:Codertocat/Hello-World#2:revert:Codertocat/Hello-World#3"]
