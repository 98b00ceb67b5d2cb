"""A pull request's life as GitHub's webhooks tell it — opened → an AI reviewer requested →
a lint check that fails and passes on a re-run → the AI's review with two findings → a new
commit and its check → one finding fixed, one dismissed as a false positive → a human
approval → merged → reverted in production — delivered with real signatures (GitHub's
recorded payloads, their times moved into the last hour) gives the KPIs worked out by hand
below, equal to the reference calculator's, and the same again after every delivery is
redelivered under new delivery ids."""
from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from data import reference
from data.aggregator import Aggregator
from data.keys import Keys
from data.timeutil import HOUR_MS, fmt_ms, now_ms, to_datetime
from tests.fixtures.github.examples import SECRET, deliver, example

K = Keys("qms")
END = now_ms() // HOUR_MS * HOUR_MS
T0 = END - 55 * 60_000
SHA_A, SHA_B = "a" * 40, "b" * 40
MAPPING = """\
teams: [{repo: "Codertocat/*", team: hello}]
gates: [{check: "Octocoders-linter", gate: lint-gate, step: dod_validation}]
agents: [{login: "coderabbitai[bot]", id: coderabbit, kind: ai, cost_per_review_usd: 0.4}]
"""


def at(minutes: float) -> str:
    return fmt_ms(int(T0 + minutes * 60_000))


def pr_state(n: int = 2, updated: float = 0, head: str = SHA_A, **changes: Any) -> dict[str, Any]:
    pr = example("pull_request", "opened")["pull_request"]
    pr.update(number=n, created_at=at(0 if n == 2 else 45), updated_at=at(updated), review_comments=0,
              **changes)
    pr["head"]["sha"] = head
    return pr


def bot(login: str) -> dict[str, Any]:
    return {"login": login, "type": "Bot" if login.endswith("[bot]") else "User", "id": 1}


def deliveries() -> list[tuple[str, dict[str, Any]]]:
    base = example("pull_request", "opened")
    repo, sender = base["repository"], base["sender"]

    def pr_event(action: str, pr: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
        return "pull_request", {"action": action, "number": pr["number"], "pull_request": pr, "repository": repo,
                                "sender": sender, **extra}

    def check(run_id: int, conclusion: str, started: float, done: float, head: str) -> tuple[str, dict[str, Any]]:
        p = example("check_run", "completed", 0)
        p["check_run"].update(id=run_id, conclusion=conclusion, started_at=at(started), completed_at=at(done),
                              head_sha=head)
        p["check_run"]["pull_requests"][0]["number"] = 2
        return "check_run", p

    def comment(cid: int, minutes: float, body: str) -> dict[str, Any]:
        c = example("pull_request_review_comment", "created")["comment"]
        c.update(id=cid, created_at=at(minutes), updated_at=at(minutes), body=body, user=bot("coderabbitai[bot]"),
                 commit_id=SHA_A, original_commit_id=SHA_A, pull_request_review_id=9001, in_reply_to_id=None)
        return c

    def review(rid: int, who: str, state: str, minutes: float, head: str) -> tuple[str, dict[str, Any]]:
        p = example("pull_request_review", "submitted")
        p["review"].update(id=rid, user=bot(who), state=state, submitted_at=at(minutes), commit_id=head)
        p["pull_request"] = pr_state(updated=minutes, head=head)
        p["repository"] = repo
        return "pull_request_review", p

    def thread(root: dict[str, Any], minutes: float, head: str, *replies: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        p = example("pull_request_review_thread", "resolved")
        p.update(repository=repo, pull_request=pr_state(updated=minutes, head=head))
        p["thread"]["comments"] = [root, *replies]
        return "pull_request_review_thread", p

    c1 = comment(501, 8, "⚠️ Potential issue: the error is swallowed here.")
    c2 = comment(502, 8, "Nit: this name could be clearer.")
    reply = {**copy.deepcopy(c2), "id": 503, "in_reply_to_id": 502, "user": bot("Codertocat"), "created_at": at(20.5),
             "body": "This is a false positive: the name follows the API."}
    merged = pr_state(updated=40, head=SHA_B, state="closed", closed_at=at(40), merged_at=at(40), merged=True)
    revert = pr_state(3, updated=50, head="c" * 40, state="closed", closed_at=at(50), merged_at=at(50), merged=True,
                      title='Revert "Update the README with new information."',
                      body="Reverts Codertocat/Hello-World#2")
    requested = pr_state(updated=1)
    ping = example("ping")
    return [
        ("ping", ping),
        pr_event("opened", pr_state()),
        pr_event("review_requested", requested, requested_reviewer=bot("coderabbitai[bot]")),
        check(1001, "failure", 2, 3, SHA_A),
        check(1002, "success", 5, 6, SHA_A),                      # a re-run of the same commit passes
        ("pull_request_review_comment", {"action": "created", "comment": c1, "pull_request": pr_state(updated=8),
                                         "repository": repo, "sender": bot("coderabbitai[bot]")}),
        ("pull_request_review_comment", {"action": "created", "comment": c2, "pull_request": pr_state(updated=8),
                                         "repository": repo, "sender": bot("coderabbitai[bot]")}),
        review(9001, "coderabbitai[bot]", "changes_requested", 9, SHA_A),
        pr_event("synchronize", pr_state(updated=12, head=SHA_B)),
        check(1003, "success", 14, 15, SHA_B),
        thread(c1, 20, SHA_B),                                    # resolved after a new commit: fixed
        ("pull_request_review_comment", {"action": "created", "comment": reply, "pull_request": pr_state(updated=20.5),
                                         "repository": repo, "sender": sender}),
        thread(c2, 21, SHA_B, reply),                             # the reply said so: a false positive
        review(9002, "octocat", "approved", 30, SHA_B),
        pr_event("closed", merged),
        pr_event("opened", pr_state(3, updated=45, head="c" * 40)),
        pr_event("closed", revert),
    ]


@pytest.fixture
def gh(settings: Any, r: Any, tmp_path: Path) -> Any:
    from factory import create_app
    mapping = tmp_path / "integrations.yaml"
    mapping.write_text(MAPPING)
    return create_app(settings.replace(github_webhook_secret=SECRET, integrations_path=str(mapping))).server


def widgets(client: Any, dash: str) -> dict[str, Any]:
    res = client.get(f"/api/dashboard/{dash}?timeframe=1h&end={fmt_ms(END)}")
    assert res.status_code == 200, res.data[:300]
    return {w["id"]: w["data"]["current_value"] for w in res.json["response"]["data"]["widgets"]}


def test_ghl001_a_pull_requests_webhooks_give_the_expected_kpis(gh: Any, r: Any, auth: Any) -> None:
    c = gh.test_client()
    statuses = [deliver(c, event, payload, f"life-{n}").json["status"] for n, (event, payload) in
                enumerate(deliveries())]
    assert statuses == ["ignored", "mapped", "mapped", "mapped", "mapped", "mapped", "mapped", "mapped", "ignored",
                        "mapped", "mapped", "mapped", "mapped", "mapped", "mapped", "mapped", "mapped"]
    events = [orjson.loads(f[b"e"]) for _sid, f in r.xrange(K.stream)]
    assert sorted(e["id"] for e in events) == sorted([
        "gh:Codertocat/Hello-World#2:opened", f"gh:Codertocat/Hello-World#2:step:code_review:{at(1)}",
        f"gh:Codertocat/Hello-World#2:assigned:coderabbit:{at(1)}",
        "gh:Codertocat/Hello-World#2:check:1001", "gh:Codertocat/Hello-World#2:check:1002",
        "gh:Codertocat/Hello-World#2:comment:501", "gh:Codertocat/Hello-World#2:comment:502",
        "gh:Codertocat/Hello-World#2:review:9001:started", "gh:Codertocat/Hello-World#2:review:9001:completed",
        "gh:Codertocat/Hello-World#2:check:1003", "gh:Codertocat/Hello-World#2:comment:501:resolved",
        "gh:Codertocat/Hello-World#2:comment:502:resolved",       # from the reply; the thread's is the same id
        "gh:Codertocat/Hello-World#2:review:9002:started", "gh:Codertocat/Hello-World#2:review:9002:completed",
        f"gh:Codertocat/Hello-World#2:closed:{at(40)}", "gh:Codertocat/Hello-World#3:opened",
        f"gh:Codertocat/Hello-World#3:closed:{at(50)}",
        "gh:Codertocat/Hello-World#2:revert:Codertocat/Hello-World#3"])
    by_id = {e["id"]: e for e in events}
    assert by_id["gh:Codertocat/Hello-World#2:comment:501:resolved"]["data"]["resolution"] == "fixed"
    assert by_id["gh:Codertocat/Hello-World#2:comment:502:resolved"]["data"]["resolution"] == "false_positive"
    assert by_id["gh:Codertocat/Hello-World#2:opened"]["data"]["team"] == "hello"
    Aggregator(r, K).drain()
    c.environ_base["HTTP_AUTHORIZATION"] = auth.bearer("admin")["Authorization"]
    qa, ex = widgets(c, "qa"), widgets(c, "executive")
    assert qa["total_gates_executed"] == 3 and qa["gates_failed"] == 1
    assert qa["gate.lint-gate.pass_rate"] == pytest.approx(200 / 3)
    assert qa["defects_found"] == 3                                    # two review findings and the revert
    assert ex["defect_detection_rate"] == pytest.approx(200 / 3)       # 2 of 3 found in review
    assert ex["false_positive_rate"] == pytest.approx(50.0)            # 1 of 2 resolved findings
    assert ex["workflow_completion_rate"] == pytest.approx(100.0)
    assert ex["time_to_merge"] == pytest.approx((40 + 5) / 2 / 60)     # #2 in 40 min, the revert in 5
    # From the AI's review start (1 ms before its submission at 9 min) to the human approval at 30.
    assert ex["average_review_cycle_time"] == pytest.approx((21 * 60_000 + 1) / HOUR_MS)
    assert ex["cost_per_review"] == pytest.approx(0.4 / 2)             # the AI's review cost, over both reviews
    # The reference calculator, from the same events, agrees on every KPI of both dashboards.
    for dash, got in (("qa", qa), ("executive", ex)):
        want = reference.compute_dashboard(events, dash, to_datetime(END), timedelta(hours=1), gates=["lint-gate"])
        for kpi, value in got.items():
            expected = want[kpi]["current_value"] if isinstance(want.get(kpi), dict) else want.get(kpi)
            assert reference.agrees(kpi, value, expected), (dash, kpi, value, expected)
    # GitHub redelivers everything (new delivery ids): nothing changes.
    again = [deliver(c, event, payload, f"again-{n}").json for n, (event, payload) in enumerate(deliveries())]
    assert sum(a.get("events", {}).get("accepted", 0) for a in again) == 0
    Aggregator(r, K).drain()
    assert widgets(c, "qa") == qa and widgets(c, "executive") == ex
