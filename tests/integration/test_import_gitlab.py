"""`import gitlab` against a fake GitLab REST API (v4) on a real port and a real Redis: pages by
Link / X-Next-Page through a 429 and a 502, events equal to the hooks' (the receiver's first,
then the import's are duplicates but for what only the API knows), resumed after an
interruption with nothing twice, and the command line."""
from __future__ import annotations

import uuid
from typing import Any, Iterator

import orjson
import pytest

from data.ingest import Ingestor
from data.keys import Keys
from data.timeutil import DAY_MS, now_ms, parse_iso
from integrations.importer import checkpoint_key, make_source, run_import
from integrations.mapping import load as load_mapping
from tests.fakes.gitlab_api import PREFIX, PROJECT, TOKEN, FakeGitLab, History
from tests.integration.test_import_github import fresh_import_shown, run_cli, stream_ids

@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab(History(now_ms())) as api:
        yield api


MAPPING = """
agents:
  - login: gitlab-duo
    id: duo
    kind: ai
labels:
  needs-review: code_review
"""


@pytest.fixture
def mapping_path(tmp_path: Any) -> str:
    path = tmp_path / "integrations.yaml"
    path.write_text(MAPPING)
    return str(path)


def run(r: Any, api: FakeGitLab, mapping_path: str, prefix: str = "qms", slept: list[float] | None = None,
        sent: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
    """One import; `sent` collects every event handed to the ingest."""
    ingestor = Ingestor(r, Keys(prefix))
    source = make_source("gitlab", PROJECT, api.base_url + "/api/v4", TOKEN,
                         sleep=(slept if slept is not None else []).append)

    def ingest(events: list[dict[str, Any]], origin: str) -> Any:
        (sent if sent is not None else []).extend(events)
        return ingestor.ingest(events, origin=origin)
    return run_import(source, r=r, prefix=prefix, ingest=ingest, since_ms=now_ms() - 30 * DAY_MS,
                      mapping=load_mapping(mapping_path), **kw)


def thread(iid: int, k: int = 0) -> str:
    return f"gl:{PROJECT}!{iid}:thread:{iid:02d}{k:038x}"


def test_import030_every_page_read_through_the_hiccups_and_the_events_ingested(r: Any, fake: FakeGitLab,
                                                                               mapping_path: str) -> None:
    slept: list[float] = []
    before = now_ms()
    s = run(r, fake, mapping_path, slept=slept)
    listing = fake.hits(f"{PREFIX}/merge_requests")
    assert [q.get("page", "1") for q in listing] == ["1", "1", "2"], "a 429 first, then both pages"
    bound = parse_iso(listing[0]["updated_after"])
    assert before - 30 * DAY_MS - 1000 <= bound <= now_ms() - 30 * DAY_MS
    assert all(q["scope"] == "all" and q["order_by"] == "updated_at" for q in listing)
    assert slept == [0.0, 1.0], "Retry-After: 0, then one back-off for the 502"
    assert len(fake.hits(f"{PREFIX}/merge_requests/2/discussions")) == 2
    assert not any("/merge_requests/5" in p for p in fake.paths()), "!5 is older than the bound"
    assert all(h.get("private-token") == TOKEN for _, _, h in fake.log)
    assert len(fake.hits(f"{PREFIX}/pipelines/2001/jobs")) == 2, "the retried jobs too, over two pages"

    assert (s.found, s.imported, s.rejected, s.errors) == (4, 4, 0, [])
    ids = stream_ids(r)
    assert s.accepted == len(ids) == len(set(ids)) and s.accepted + s.duplicates == s.events
    expected = [f"gl:{PROJECT}!{i}:opened" for i in (1, 2, 3, 4)] + [
        f"gl:{PROJECT}!1:job:4001", f"gl:{PROJECT}!1:job:4002",            # the flaky test re-run to a pass
        f"gl:{PROJECT}!1:merged", f"gl:{PROJECT}!2:job:4006",
        thread(1) + ":found", thread(1) + ":resolved", thread(2) + ":found", thread(2) + ":resolved"]
    assert [i for i in expected if i not in ids] == []
    assert not [i for i in ids if "!5:" in i or ":job:4007" in i], "nothing before the bound, no branch pipeline job"
    events = {orjson.loads(f[b"e"])["id"]: orjson.loads(f[b"e"]) for _, f in r.xrange(Keys("qms").stream)}
    assert events[thread(1) + ":resolved"]["data"]["resolution"] == "fixed", "resolved after a push"
    assert events[thread(2) + ":resolved"]["data"]["resolution"] == "false_positive", "the reply said so"
    approvals = [e for e in events.values() if e["type"] == "workflow.review_completed"]
    assert [(e["data"]["reviewer"], e["data"]["verdict"]) for e in approvals] == [("bob", "approved")]
    closed = {e["data"]["workflow_id"]: e["data"]["outcome"] for e in events.values() if e["type"] == "workflow.completed"}
    assert closed == {f"{PROJECT}!1": "merged", f"{PROJECT}!2": "rejected", f"{PROJECT}!4": "abandoned"}
    steps = sorted((e["data"]["workflow_id"], e["data"]["step"], e["timestamp"]) for e in events.values()
                   if e["type"] == "workflow.step_entered" and e["data"]["step"] != "dor_validation")
    h = fake.history
    at = {n["id"]: n["created_at"] for notes in h.notes.values() for n in notes}
    assert steps == sorted([(f"{PROJECT}!1", "code_review", at[308][:19] + "Z"),        # review requested
                            (f"{PROJECT}!3", "code_review", h.labels[3][0]["created_at"][:19] + "Z"),  # the label
                            (f"{PROJECT}!3", "code_review", at[309][:19] + "Z"),        # review requested
                            (f"{PROJECT}!4", "code_review", at[310][:19] + "Z")])       # marked ready
    assigned = [(e["data"]["workflow_id"], e["data"]["agent_id"]) for e in events.values()
                if e["type"] == "workflow.agent_assigned"]
    assert assigned == [(f"{PROJECT}!3", "duo")], "the AI reviewer asked for; carol is a human"
    finder = events[thread(1) + ":found"]["data"]
    assert (finder["found_by"], finder["found_by_kind"]) == ("duo", "ai")


@pytest.fixture
def app_with_token(settings: Any, r: Any, mapping_path: str) -> Any:
    from factory import create_app
    return create_app(settings.replace(gitlab_webhook_token="gl-hook-token", live=False, alerts=False,
                                       integrations_path=mapping_path))


def test_import031_hooks_first_then_the_import_adds_only_what_the_hooks_never_said(
        app_with_token: Any, r: Any, fake: FakeGitLab, mapping_path: str) -> None:
    client = app_with_token.server.test_client()
    for name, payload in fake.history.webhooks(fake.history.in_window()):
        resp = client.post("/api/webhooks/gitlab", data=orjson.dumps(payload), headers={
            "X-Gitlab-Event": name, "X-Gitlab-Token": "gl-hook-token", "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "Content-Type": "application/json"})
        assert resp.status_code == 202 and resp.get_json()["status"] in ("mapped", "ignored"), (name, resp.get_json())
    hooked = set(stream_ids(r))
    assert len(hooked) > 12
    sent: list[dict[str, Any]] = []
    s = run(r, fake, mapping_path, sent=sent)
    added = set(stream_ids(r)) - hooked
    # A thread resolved in GitLab sends no note hook: only the API tells that !1's finding was fixed.
    assert added == {thread(1) + ":resolved"} and s.accepted == 1 and s.rejected == 0
    assert s.duplicates == s.events - 1
    # the same events, to the field and the millisecond: hook times are to the second, so are the import's
    stored = {e["id"]: e for e in (orjson.loads(f[b"e"]) for _, f in r.xrange(Keys("qms").stream))}
    assert [e["id"] for e in sent if e != stored[e["id"]]] == []


def test_import032_interrupted_then_resumed_imports_the_rest_once(r: Any, fake: FakeGitLab, mapping_path: str) -> None:
    whole = run(r, fake, mapping_path, prefix="ref")

    def stop_after_two(i: int, item: dict[str, Any]) -> None:
        if i == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run(r, fake, mapping_path, after_item=stop_after_two, batch_max=3)
    done = {k.decode() for k in r.hgetall(checkpoint_key("qms", "gitlab", PROJECT)) if k.startswith(b"pr:")}
    assert done == {"pr:3", "pr:2"}, "newest update first: !3 then !2"
    rest = run(r, fake, mapping_path, batch_max=3)
    assert (rest.skipped, rest.imported) == (2, 2)
    assert set(stream_ids(r)) == set(stream_ids(r, "ref")) and len(stream_ids(r)) == whole.accepted


def test_import033_cli_gitlab_progress_and_summary(r: Any, redis_url: str, fake: FakeGitLab) -> None:
    fake.faults.clear()
    proc = run_cli(redis_url, "--project", PROJECT, "--since", "30d", "--api-url", fake.base_url + "/api/v4",
                   token=TOKEN, source="gitlab", token_env="GITLAB_TOKEN")
    n = fresh_import_shown(proc, r, f"gitlab {PROJECT}", 4, TOKEN)
    # both notes of !1's resolved thread say it was resolved: one event, once a duplicate
    assert f"events: accepted {n}, duplicates 1, rejected 0" in proc.stdout and n > 12
