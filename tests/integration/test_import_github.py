"""`import github` against a fake GitHub REST API on a real port and a real Redis: every page
read through a rate-limit hiccup and a 502, the events equal to what the webhooks gave (same
ids: the receiver's then the import's are duplicates), resumed after an interruption with
nothing twice, and the command line with its progress bar and summary."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import DAY_MS, fmt_ms, now_ms, parse_iso
from integrations.importer import ApiError, checkpoint_key, make_source, run_import
from integrations.mapping import load as load_mapping
from tests.fakes.github_api import REPO, TOKEN, FakeGitHub, History, review

ROOT = Path(__file__).resolve().parents[2]
K = Keys("qms")
SINCE_DAYS = 30


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(History(now_ms())) as api:
        yield api


class Run:
    """One import into the test Redis (prefix qms), sleeps recorded, ingest calls' sizes kept."""

    def __init__(self, r: Any, api: FakeGitHub, prefix: str = "qms") -> None:
        self.r, self.api, self.prefix = r, api, prefix
        self.ingestor = Ingestor(r, Keys(prefix))
        self.slept: list[float] = []
        self.batches: list[int] = []
        self.sent: list[dict[str, Any]] = []            # every event handed to the ingest

    def __call__(self, **kw: Any) -> Any:
        source = make_source("github", REPO, self.api.base_url, TOKEN, sleep=self.slept.append)

        def ingest(events: list[dict[str, Any]], origin: str) -> Any:
            assert origin == "import:github"
            self.batches.append(len(events))
            self.sent += events
            return self.ingestor.ingest(events, origin=origin)
        return run_import(source, r=self.r, prefix=self.prefix, ingest=ingest,
                          since_ms=now_ms() - SINCE_DAYS * DAY_MS, mapping=load_mapping(None), **kw)


def stream_ids(r: Any, prefix: str = "qms") -> list[str]:
    """The ids on the ingest stream of this key prefix, in order."""
    return [orjson.loads(f[b"e"])["id"] for _, f in r.xrange(Keys(prefix).stream)]


def test_import020_every_page_read_through_the_hiccups_and_the_events_ingested(r: Any, fake: FakeGitHub) -> None:
    run = Run(r, fake)
    s = run()
    pulls = fake.hits(f"/repos/{REPO}/pulls")
    assert [q.get("page", "1") for q in pulls] == ["1", "2", "2", "3", "4"], "page 2 answered 403 once, then read"
    assert all(q["state"] == "all" and q["sort"] == "updated" and q["direction"] == "desc" for q in pulls)
    assert run.slept == [0.0, 1.0], "Retry-After: 0 waited, the 502 backed off once; the past reset not at all"
    assert len(fake.hits(f"/repos/{REPO}/pulls/102/reviews")) == 2, "a 502, then read"
    assert not any("/pulls/90" in p for p in fake.paths()), "the PR updated before the bound is never read"
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for _, _, h in fake.log)
    runs_q = fake.hits(f"/repos/{REPO}/commits/{fake.history.prs[101]['head']['sha']}/check-runs")
    assert [q.get("filter") for q in runs_q] == ["all", "all"], "re-runs too, over two pages"

    assert (s.found, s.imported, s.skipped) == (7, 7, 0)
    ids = stream_ids(r)
    assert s.accepted == s.events == len(ids) == len(set(ids)) and s.duplicates == s.rejected == 0
    assert not s.errors and s.interrupted is None
    for n in fake.history.in_window():
        assert f"gh:{REPO}#{n}:opened" in ids
    closed = {i for i in ids if ":closed:" in i}
    assert {i.split(":closed:")[0] for i in closed} == {f"gh:{REPO}#{n}" for n in (101, 102, 104, 107)}
    expected_present = [f"gh:{REPO}#101:check:7001", f"gh:{REPO}#101:check:7002",        # a fail re-run to a pass
                        f"gh:{REPO}#101:check:7011", f"gh:{REPO}#101:status:5003",        # an earlier commit's
                        f"gh:{REPO}#101:review:8002:completed", f"gh:{REPO}#101:comment:9001",
                        f"gh:{REPO}#101:revert:{REPO}#104", f"gh:{REPO}#105:status:5002",
                        f"gh:{REPO}#102:review:8003:completed"]
    assert [i for i in expected_present if i not in ids] == []
    absent = [f"gh:{REPO}#90:opened", f"gh:{REPO}#103:review:8005:started",              # before the bound; pending
              f"gh:{REPO}#103:check:7006", f"gh:{REPO}#105:status:5001"]                   # running; pending status
    assert [i for i in absent if i in ids] == []
    events = {orjson.loads(f[b"e"])["id"]: orjson.loads(f[b"e"]) for _, f in r.xrange(K.stream)}
    ai = events[f"gh:{REPO}#101:comment:9001"]["data"]
    assert (ai["found_by"], ai["found_by_kind"], ai["severity"]) == ("coderabbit", "ai", "major")
    assert events[f"gh:{REPO}#102:review:8003:completed"]["data"]["verdict"] == "changes_requested"
    outcomes = {e["data"]["workflow_id"]: e["data"]["outcome"] for e in events.values()
                if e["type"] == "workflow.completed"}
    assert outcomes == {f"{REPO}#101": "merged", f"{REPO}#104": "merged",
                        f"{REPO}#102": "rejected",        # closed by erin (its issue events say), not its author
                        f"{REPO}#107": "abandoned"}       # closed by its author
    merged_at = parse_iso(fake.history.prs[101]["merged_at"])
    assert events[f"gh:{REPO}#101:closed:{fmt_ms(merged_at)}"]["data"]["outcome"] == "merged"
    cp = r.hgetall(checkpoint_key("qms", "github", REPO))
    assert {k.decode() for k in cp if k.startswith(b"pr:")} == {f"pr:{n}" for n in fake.history.in_window()}
    assert cp[b"pr:101"].decode() == fake.history.prs[101]["updated_at"] and b"finished_at" in cp


def test_import021_webhooks_first_then_the_import_adds_nothing(app_with_secret: Any, r: Any, fake: FakeGitHub) -> None:
    """The same history delivered as GitHub's webhooks (signed, through the receiver), then
    imported: every event of the import is a duplicate of one the webhooks gave."""
    from integrations.github import sign
    client = app_with_secret.server.test_client()
    numbers = fake.history.in_window()
    webhook_events = 0
    for name, payload in fake.history.webhooks(numbers):
        body = orjson.dumps(payload)
        resp = client.post("/api/webhooks/github", data=body, headers={
            "X-GitHub-Event": name, "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, "whsec-test")})
        assert resp.status_code in (202,), (name, resp.get_json())
        answer = resp.get_json()
        assert answer["status"] in ("mapped", "ignored"), (name, answer)
        if answer["status"] == "mapped":
            assert answer["events"]["rejected"] == 0, answer
            webhook_events += answer["events"]["accepted"]
    before = set(stream_ids(r))
    assert len(before) == webhook_events > 30
    run = Run(r, fake)
    s = run()
    assert s.accepted == 0 and s.rejected == 0, [i for i in stream_ids(r) if i not in before]
    assert s.duplicates == s.events == webhook_events
    # a dismissed review (DISMISSED in the API) has the verdict it was sent with, from its issue event
    assert f"gh:{REPO}#106:review:8008:completed" in before
    # not only the same ids: the same events, to the field and the millisecond
    hooked = {e["id"]: e for e in (orjson.loads(f[b"e"]) for _, f in r.xrange(K.stream))}
    assert [e["id"] for e in run.sent if e != hooked[e["id"]]] == []


@pytest.fixture
def app_with_secret(settings: Any, r: Any) -> Any:
    from factory import create_app
    return create_app(settings.replace(github_webhook_secret="whsec-test", live=False, alerts=False))


def test_import022_interrupted_then_resumed_imports_the_rest_once(r: Any, fake: FakeGitHub) -> None:
    reference = Run(r, fake, prefix="ref")()                     # a whole import elsewhere: the expected ids

    class Killed(Exception):
        pass

    def kill_after_three(i: int, item: dict[str, Any]) -> None:
        if i == 2:
            raise Killed("stopped after 3 pull requests")
    run = Run(r, fake)
    with pytest.raises(Killed):
        run(after_item=kill_after_three, batch_max=5)
    first = stream_ids(r)
    done = {k.decode() for k in r.hgetall(checkpoint_key("qms", "github", REPO)) if k.startswith(b"pr:")}
    assert len(done) == 3, done
    assert 0 < len(first) < reference.accepted
    assert all(b <= 5 for b in run.batches), run.batches
    fake.log.clear()
    again = Run(r, fake)(batch_max=5)
    assert (again.found, again.skipped, again.imported) == (7, 3, 4)
    assert again.duplicates == 0 and again.accepted == reference.accepted - len(first)
    ids = stream_ids(r)
    assert len(ids) == len(set(ids)) and set(ids) == set(stream_ids(r, "ref"))
    read = {p.split("/")[5] for p in fake.paths() if p.startswith(f"/repos/{REPO}/pulls/")}
    assert len(read) == 4 and not read & {k[3:] for k in done}, "finished pull requests are not read again"


def test_import023_a_rerun_skips_what_is_unchanged_and_rereads_what_changed(r: Any, fake: FakeGitHub) -> None:
    first = Run(r, fake)()
    fake.log.clear()
    second = Run(r, fake)()
    assert (second.skipped, second.imported, second.accepted, second.duplicates) == (7, 0, 0, 0)
    assert [p for p in fake.paths() if "/pulls/" in p or "/commits/" in p or "/issues/" in p] == []
    # #103 gets a review after the import: only #103 is read again, only the review is new
    h, t = fake.history, now_ms()
    h.reviews[103].append(review(8100, 103, "erin", "APPROVED", t - 60_000))
    h.prs[103]["updated_at"] = fmt_ms(t - 60_000)
    fake.log.clear()
    third = Run(r, fake)()
    assert (third.skipped, third.imported) == (6, 1)
    assert third.accepted == 2 and third.duplicates == third.events - 2
    assert {p.split("/")[5] for p in fake.paths() if p.startswith(f"/repos/{REPO}/pulls/")} == {"103"}
    assert f"gh:{REPO}#103:review:8100:completed" in stream_ids(r)
    restart = Run(r, fake)(restart=True)
    assert restart.imported == 7 and restart.accepted == 0 and restart.duplicates == first.events + 2


def test_import024_a_failing_api_stops_with_what_was_read_kept(r: Any, fake: FakeGitHub) -> None:
    fake.broken[f"/repos/{REPO}/pulls/102/"] = 404          # 4th in update order
    with pytest.raises(ApiError, match=r"pulls/102/reviews answered 404"):
        Run(r, fake)()
    done = {k.decode() for k in r.hgetall(checkpoint_key("qms", "github", REPO)) if k.startswith(b"pr:")}
    assert done == {"pr:106", "pr:105", "pr:104", "pr:103"}
    fake.broken.clear()
    again = Run(r, fake)()
    assert (again.skipped, again.imported, again.duplicates) == (4, 3, 0)


def run_cli(redis_url: str, *args: str, token: str | None = TOKEN, source: str = "github",
            token_env: str = "QMS_GITHUB_TOKEN") -> subprocess.CompletedProcess[str]:
    """`cli.py import <source> ARGS` with only this token in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("GITHUB_TOKEN", "GITLAB_TOKEN"))}
    env.update(REDIS_URL=redis_url, **({token_env: token} if token else {}))
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "import", source, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def fresh_import_shown(proc: subprocess.CompletedProcess[str], r: Any, what: str, found: int, token: str) -> int:
    """A first run's output: its bar at 100 % of the requests found, the summary line, never
    the token; returns the events on the stream."""
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"import {what.split()[1]}: 100%" in proc.stderr and f"{found}/{found}" in proc.stderr
    assert f"{what}: {found} found, {found} imported, 0 already imported;" in proc.stdout
    assert token not in proc.stdout + proc.stderr
    return len(stream_ids(r))


def test_import025_cli_prints_a_progress_bar_and_the_summary_never_the_token(r: Any, redis_url: str,
                                                                           fake: FakeGitHub) -> None:
    fake.faults.clear()                                        # no real back-off sleeps in a subprocess
    proc = run_cli(redis_url, "--repo", REPO, "--since", "30d", "--api-url", fake.base_url)
    n = fresh_import_shown(proc, r, f"github {REPO}", 7, TOKEN)
    assert f"events: accepted {n}, duplicates 0, rejected 0" in proc.stdout and n > 30
    assert not r.hget(K.meta, "applied"), "no aggregator ran"
    again = run_cli(redis_url, "--repo", REPO, "--since", "30d", "--api-url", fake.base_url, "--restart", "--quiet",
                    "--wait")
    assert again.returncode == 0 and again.stderr == ""
    assert f"accepted 0, duplicates {n}, rejected 0" in again.stdout
    assert int(r.hget(K.meta, "applied")) == n, "--wait: aggregated before returning"


def test_import026_cli_errors_are_clear_and_resumable(r: Any, redis_url: str, fake: FakeGitHub) -> None:
    fake.faults.clear()
    bad = run_cli(redis_url, "--repo", REPO, "--api-url", fake.base_url, token="ghp_wrong-token-xyz")
    assert bad.returncode == 1
    assert f"error: GET {fake.base_url}/repos/{REPO} answered 401: Bad credentials (is the token right?" in bad.stderr
    assert "ghp_wrong-token-xyz" not in bad.stdout + bad.stderr
    assert run_cli(redis_url, "--repo", "acme", "--api-url", fake.base_url).stderr.strip() == \
        "error: --repo: expected OWNER/NAME, got 'acme'"
    fake.broken[f"/repos/{REPO}/pulls/102/"] = 404
    cut = run_cli(redis_url, "--repo", REPO, "--api-url", fake.base_url, "--quiet")
    assert cut.returncode == 1 and "pulls/102/reviews answered 404" in cut.stderr
    assert ("interrupted: github acme/api: 7 found, 4 imported, 0 already imported;" in cut.stderr
            and "run the same command again to resume" in cut.stderr)
    fake.broken.clear()
    rest = run_cli(redis_url, "--repo", REPO, "--api-url", fake.base_url, "--quiet")
    assert rest.returncode == 0 and "7 found, 3 imported, 4 already imported" in rest.stdout
    assert "duplicates 0" in rest.stdout


def test_import027_imported_history_is_on_the_workflow_page_and_in_the_reviewer_ledger(app: Any, client: Any, r: Any,
                                                                                     fake: FakeGitHub) -> None:
    """`import github` fills history the dashboards read: after aggregation #101 has its gate
    runs (its first commit's, the failed test and its re-run), the human approval, the AI's findings and its
    merge; the revert #104 is an escape of the reviewer who approved #101."""
    from data.aggregator import Aggregator
    svc = app.server.extensions["qms"]
    source = make_source("github", REPO, fake.base_url, TOKEN, sleep=lambda s: None)
    s = run_import(source, r=r, prefix="qms", ingest=lambda evs, origin: svc.ingestor.ingest(evs, origin=origin),
                   since_ms=now_ms() - 30 * DAY_MS, mapping=load_mapping(None))
    assert s.accepted > 30 and s.rejected == 0
    Aggregator.from_settings(r, svc.settings).drain(timeout_s=60)
    wf = client.get("/api/entities/workflow/acme/api%23101").get_json()["response"]["data"]
    assert (wf["summary"]["author"], wf["summary"]["outcome"]) == ("alice", "merged")
    assert [(g["id"].rsplit(":", 1)[1], g["gate_name"], g["passed"]) for g in wf["gates"]] == [
        ("7011", "lint", False), ("5003", "ci/circleci", False),                 # on the first commit
        ("7003", "lint", True), ("7001", "ci/test", False), ("7002", "ci/test", True)]
    assert [(v["reviewer"], v["verdict"]) for v in wf["reviews"]] == [("bob", "approved")]
    found = {d["defect_id"].rsplit(":", 1)[-1]: (d["severity"], d["found_by"]) for d in wf["defects"]
             if ":comment:" in d["defect_id"]}
    assert found == {"9001": ("major", "coderabbit"), "9002": ("minor", "coderabbit")}
    ledger = client.get("/api/reviewers?timeframe=30d").get_json()["response"]["data"]["rows"]
    by = {row["reviewer"]: row for row in ledger}
    assert (by["coderabbit"]["kind"], by["coderabbit"]["findings_raised"]) == ("ai", 3)
    assert (by["bob"]["kind"], by["bob"]["escapes"], by["bob"]["changes_requested"]) == ("human", 1, 1)


def test_import028_a_delivery_the_mapper_refuses_is_reported_and_its_pull_request_read_again(r: Any,
                                                                                           fake: FakeGitHub) -> None:
    from integrations.github import PayloadError, map_delivery

    def picky(name: str, payload: dict[str, Any], mapping: Any) -> Any:
        if name == "check_run" and payload["check_run"]["id"] == 7005:
            raise PayloadError("check_run.completed_at: not an ISO 8601 time")
        return map_delivery(name, payload, mapping)
    s = Run(r, fake)(mapper=picky)
    assert s.errors == ["#103 check_run: PayloadError: check_run.completed_at: not an ISO 8601 time"]
    assert f"gh:{REPO}#103:opened" in stream_ids(r), "the rest of #103 is ingested"
    done = {k.decode() for k in r.hgetall(checkpoint_key("qms", "github", REPO)) if k.startswith(b"pr:")}
    assert "pr:103" not in done and len(done) == 6
    again = Run(r, fake)()
    assert (again.skipped, again.imported, again.accepted, again.errors) == (6, 1, 1, [])
    assert f"gh:{REPO}#103:check:7005" in stream_ids(r)
