"""GitLab deliveries → QMS events (integrations/gitlab.py), pure: GitLab's documented payload
samples (tests/fixtures/gitlab/, see its README) and variants of them that change only the
fields a test names; every event must pass the event contract (data/events.py)."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from data.events import validate
from integrations import gitlab
from integrations.mapping import Mapping, parse

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "gitlab"
EMPTY = Mapping.default()


def sample(name: str) -> dict[str, Any]:
    return json.loads((FIX / f"{name}.json").read_text())


def mapped(event: str, payload: dict[str, Any], mapping: Mapping = EMPTY) -> list[dict[str, Any]]:
    events = gitlab.map_delivery(event, payload, mapping)
    assert events is not None
    for ev in events:
        problems = validate(ev)[2]
        assert problems == [], (ev, problems)
    return events


def mr(action: str, **attrs: Any) -> dict[str, Any]:
    p = sample("merge_request")
    p["object_attributes"].update(action=action, **attrs)
    return p


WF = "gitlabhq/gitlab-test!1"


# ---- Merge Request Hook -----------------------------------------------------------------------

def test_gl001_open_is_pr_created_from_the_documented_sample() -> None:
    p = sample("merge_request")
    p["object_attributes"]["author_id"] = p["user"]["id"]      # the sample's opener is not its author id
    mapping = parse({"teams": [{"repo": "gitlabhq/*", "team": "platform"}]}, "t")
    (created,) = mapped("Merge Request Hook", p, mapping)
    assert created == {"id": f"gl:{WF}:opened", "type": "workflow.pr_created", "timestamp": "2013-12-03T17:23:34Z",
                       "source": "gitlab", "metadata": {"priority": "normal"},
                       "data": {"workflow_id": WF, "pr_number": 1, "repository": "gitlabhq/gitlab-test",
                                "author": "root", "team": "platform", "title": "MS-Viewport"}}


def test_gl002_open_by_someone_else_names_the_author_by_id_and_reopen_is_the_same_event() -> None:
    opened = mapped("Merge Request Hook", sample("merge_request"))   # user 1 acting, author_id 51
    assert opened[0]["data"]["author"] == "gitlab-user-51"
    reopened = mapped("Merge Request Hook", mr("reopen", updated_at="2014-01-01T00:00:00Z"))
    assert [e["id"] for e in reopened] == [e["id"] for e in opened]   # ingest counts a workflow once


def test_gl003_update_out_of_draft_is_code_review_and_a_mapped_label_its_step() -> None:
    p = mr("update", updated_at="2017-09-15T16:52:00Z")
    events = mapped("Merge Request Hook", p)
    assert [(e["id"], e["data"]["step"]) for e in events] == [(f"gl:{WF}:step:code_review:20170915165200", "code_review")]
    mapping = parse({"labels": {"Platform": "dod_validation"}}, "t")
    assert [e["data"]["step"] for e in mapped("Merge Request Hook", p, mapping)] == ["code_review", "dod_validation"]


def test_gl004_reviewers_added_is_code_review_once_and_other_updates_nothing() -> None:
    p = mr("update")
    p["changes"] = {"reviewers": {"previous": [], "current": [{"id": 6, "username": "user1"}]},
                    "draft": {"previous": True, "current": False}}
    assert [e["data"]["step"] for e in mapped("Merge Request Hook", p)] == ["code_review"]
    p["changes"] = {"reviewers": {"previous": [{"username": "user1"}],
                                  "current": [{"username": "user1"}, {"username": "review-bot"}, {"username": "ann"}]}}
    mapping = parse({"agents": [{"login": "review-bot", "id": "gl-ai-reviewer", "kind": "ai"}]}, "t")
    step, assigned = mapped("Merge Request Hook", p, mapping)
    assert step["data"]["step"] == "code_review"
    assert (assigned["id"], assigned["type"], assigned["data"]) == (
        f"gl:{WF}:assigned:gl-ai-reviewer:20131203172334", "workflow.agent_assigned",
        {"workflow_id": WF, "agent_id": "gl-ai-reviewer"})
    p["changes"] = {"reviewers": {"previous": [{"username": "user1"}], "current": []}}   # removed: no step
    assert mapped("Merge Request Hook", p) == []
    p["changes"] = {}                                                       # a push, an edit
    assert mapped("Merge Request Hook", p) == []


@pytest.mark.parametrize("action", ["approval", "approved"])
def test_gl005_approval_is_one_review_per_user_and_head_commit(action: str) -> None:
    mapping = parse({"agents": [{"login": "root", "id": "qms-gl-reviewer", "kind": "ai", "cost_per_review_usd": 0.4}]}, "t")
    started, done = mapped("Merge Request Hook", mr(action), mapping)
    base = f"gl:{WF}:review:qms-gl-reviewer:da1560886d4f"
    assert started["id"] == base + ":started" and started["type"] == "workflow.review_started"
    assert started["timestamp"] == "2013-12-03T17:23:33.999Z"               # 1 ms before its verdict
    assert done == {"id": base + ":approved", "type": "workflow.review_completed", "timestamp": "2013-12-03T17:23:34Z",
                    "source": "gitlab", "metadata": {"priority": "normal"}, "data": {"workflow_id": WF, "reviewer": "qms-gl-reviewer", "reviewer_kind": "ai",
                                                 "verdict": "approved", "cost_usd": 0.4}}
    human = mapped("Merge Request Hook", mr(action))[1]["data"]
    assert (human["reviewer"], human["reviewer_kind"]) == ("root", "human") and "cost_usd" not in human


@pytest.mark.parametrize("action", ["unapproved", "unapproval", None, "something-new"])
def test_gl006_unapproval_and_other_actions_are_known_with_nothing_to_emit(action: str | None) -> None:
    assert mapped("Merge Request Hook", mr(action)) == []   # type: ignore[arg-type]


def test_gl007_merge_is_completed_merged_at_merged_at_or_updated_at() -> None:
    (done,) = mapped("Merge Request Hook", mr("merge", updated_at="2013-12-04T10:00:00Z"))
    assert (done["id"], done["type"], done["timestamp"], done["data"]) == (
        f"gl:{WF}:merged", "workflow.completed", "2013-12-04T10:00:00Z", {"workflow_id": WF, "outcome": "merged"})
    (rest,) = mapped("Merge Request Hook", mr("merge", merged_at="2013-12-04T09:59:58.120Z"))
    assert rest["timestamp"] == "2013-12-04T09:59:58.120Z" and rest["id"] == done["id"]


def test_gl008_close_by_the_author_or_of_a_draft_is_abandoned_by_another_rejected() -> None:
    p = mr("close", updated_at="2013-12-05T08:00:00Z")
    (rejected,) = mapped("Merge Request Hook", p)                     # user 1 closes author 51's MR
    assert rejected["data"] == {"workflow_id": WF, "outcome": "rejected"}
    assert rejected["id"] == f"gl:{WF}:closed:20131205080000"
    p["object_attributes"]["draft"] = True
    assert mapped("Merge Request Hook", p)[0]["data"]["outcome"] == "abandoned"
    p["object_attributes"].update(draft=False, author_id=1)
    assert mapped("Merge Request Hook", p)[0]["data"]["outcome"] == "abandoned"


def test_gl009_a_merged_revert_is_a_production_defect_of_the_reverted_merge_request() -> None:
    p = mr("merge", iid=7, title='Revert "MS-Viewport"',
           description="This reverts merge request !1", updated_at="2013-12-06T00:00:00Z")
    done, defect = mapped("Merge Request Hook", p)
    assert done["data"] == {"workflow_id": "gitlabhq/gitlab-test!7", "outcome": "merged"}
    assert defect["id"] == f"gl:{WF}:revert:7:found"
    assert defect["data"] == {"workflow_id": WF, "defect_id": f"gl:{WF}:revert:7", "severity": "major",
                              "category": "revert", "stage": "production", "found_by": "root",
                              "found_by_kind": "human"}


def test_gl010_rest_api_objects_wrapped_like_a_hook_give_the_same_ids() -> None:
    """What the history import does: a merge request of the REST API (author object, merged_at,
    sha, labels as strings) wrapped as a hook delivery."""
    rest = {"iid": 1, "title": "MS-Viewport", "created_at": "2013-12-03T17:23:34.000Z",
            "updated_at": "2013-12-05T00:00:00.000Z", "merged_at": "2013-12-04T10:00:00.000Z",
            "author": {"id": 51, "username": "ann"}, "sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "labels": ["API"], "draft": False}
    wrap = {"object_kind": "merge_request", "project": {"path_with_namespace": "gitlabhq/gitlab-test"},
            "user": {"id": 51, "username": "ann"}}
    opened = mapped("Merge Request Hook", {**wrap, "object_attributes": {**rest, "action": "open"}})
    assert [e["id"] for e in opened] == [f"gl:{WF}:opened"]
    assert opened[0]["data"]["author"] == "ann" and opened[0]["timestamp"] == "2013-12-03T17:23:34Z"
    merged = mapped("Merge Request Hook", {**wrap, "object_attributes": {**rest, "action": "merge"}})
    assert merged[0]["id"] == f"gl:{WF}:merged" and merged[0]["timestamp"] == "2013-12-04T10:00:00Z"
    reviewer = {**wrap, "user": {"id": 6, "username": "user1"}, "object_attributes": {**rest, "action": "approval"}}
    assert mapped("Merge Request Hook", reviewer)[1]["id"] == f"gl:{WF}:review:user1:da1560886d4f:approved"


# ---- Note Hook ---------------------------------------------------------------------------------

def diff_note(**attrs: Any) -> dict[str, Any]:
    """The documented merge request comment as a diff note of a thread (GitLab sends `type`,
    `position` and `discussion_id` on diff notes)."""
    p = sample("note.merge_request")
    p["object_attributes"].update({"type": "DiffNote", "discussion_id": "6a9c1750b37d513a43987b574953fceb50b03ce7",
                                   "position": {"base_sha": "a" * 40, "new_path": "app.py", "new_line": 10}}, **attrs)
    return p


NWF = "gitlab-org/gitlab-test!1"
THREAD = f"gl:{NWF}:thread:6a9c1750b37d513a43987b574953fceb50b03ce7"


def test_gl011_a_diff_note_by_a_reviewer_is_a_review_finding() -> None:
    mapping = parse({"agents": [{"login": "root", "id": "gl-review-bot", "kind": "ai"}]}, "t")
    (found,) = mapped("Note Hook", diff_note(), mapping)
    assert found == {"id": THREAD + ":found", "type": "workflow.defect_found", "timestamp": "2015-05-17T18:21:36Z",
                     "source": "gitlab", "metadata": {"priority": "normal"}, "data": {"workflow_id": NWF, "defect_id": THREAD, "severity": "minor",
                                                  "category": "review_comment", "stage": "review",
                                                  "found_by": "gl-review-bot", "found_by_kind": "ai"}}
    assert mapped("Note Hook", diff_note(note="Critical: SQL injection here"))[0]["data"]["severity"] == "critical"
    assert mapped("Note Hook", diff_note(note="This is a bug: off by one"))[0]["data"]["severity"] == "major"
    suggestion = mapped("Note Hook", diff_note(note="```suggestion\nreturn x\n```"))[0]["data"]
    assert (suggestion["category"], suggestion["severity"]) == ("suggestion", "minor")


def test_gl012_general_comments_the_authors_own_notes_and_system_notes_raise_nothing() -> None:
    assert mapped("Note Hook", sample("note.merge_request")) == []            # the documented sample: no diff position
    assert mapped("Note Hook", diff_note(author_id=8)) == []                   # the MR's author (author_id 8)
    assert mapped("Note Hook", diff_note(system=True)) == []
    assert mapped("Note Hook", sample("note.commit")) == []                    # a commit comment, not a merge request


def test_gl013_a_reply_saying_false_positive_or_wont_fix_resolves_its_thread() -> None:
    (fp,) = mapped("Note Hook", diff_note(author_id=8, note="This is a false positive, the input is trusted.",
                                          created_at="2015-05-18 09:00:00 UTC"))
    assert fp == {"id": THREAD + ":resolved", "type": "workflow.defect_resolved", "timestamp": "2015-05-18T09:00:00Z",
                  "source": "gitlab", "metadata": {"priority": "normal"},
                  "data": {"defect_id": THREAD, "resolution": "false_positive", "workflow_id": NWF}}
    (wf,) = mapped("Note Hook", diff_note(note="Won't fix: out of scope"))
    assert wf["data"]["resolution"] == "wont_fix"
    assert mapped("Note Hook", sample("note.merge_request") | {"object_attributes": {
        **sample("note.merge_request")["object_attributes"], "note": "false positive", "discussion_id": "d1"}}) == []


def test_gl014_a_resolved_thread_is_fixed_after_a_push_else_a_false_positive() -> None:
    pushed = mapped("Note Hook", diff_note(resolved_at="2015-05-19T10:00:00Z", resolved_by_push=True))
    assert [e["type"] for e in pushed] == ["workflow.defect_found", "workflow.defect_resolved"]
    assert pushed[1]["timestamp"] == "2015-05-19T10:00:00Z" and pushed[1]["data"]["resolution"] == "fixed"
    # The documented sample's head commit timestamp is malformed ("2015-04-08T21: 00:25-07:00"):
    # no newer commit is known, so a thread resolved by hand was dismissed.
    by_hand = mapped("Note Hook", diff_note(resolved_at="2015-05-19T10:00:00Z"))[1]
    assert by_hand["data"]["resolution"] == "false_positive"
    p = diff_note(resolved=True, updated_at="2015-05-20 00:00:00 UTC")        # REST shape: resolved, no resolved_at
    p["merge_request"]["last_commit"]["timestamp"] = "2015-05-19T12:00:00+02:00"
    fixed = mapped("Note Hook", p)[1]
    assert fixed["timestamp"] == "2015-05-20T00:00:00Z" and fixed["data"]["resolution"] == "fixed"


def test_gl015_a_note_without_a_thread_id_is_its_own_thread() -> None:
    p = diff_note()
    del p["object_attributes"]["discussion_id"]
    (found,) = mapped("Note Hook", p)
    assert found["data"]["defect_id"] == f"gl:{NWF}:thread:1244"


# ---- Pipeline Hook and Job Hook ------------------------------------------------------------------

def test_gl016_the_documented_pipeline_gives_its_finished_jobs_as_gates() -> None:
    events = mapped("Pipeline Hook", sample("pipeline"))
    got = {e["id"]: (e["data"]["gate_name"], e["data"]["passed"], e["timestamp"]) for e in events}
    pwf = "gitlab-org/gitlab-test!1"
    assert got == {f"gl:{pwf}:job:377": ("test-image", True, "2016-08-12T15:26:29Z"),
                   f"gl:{pwf}:job:378": ("test-build", False, "2016-08-12T15:26:29Z"),
                   f"gl:{pwf}:job:376": ("build-image", True, "2016-08-12T15:25:26Z")}   # skipped / created: no run
    assert all(e["data"]["execution_time"] == 17.0 for e in events)
    assert all(e["data"]["head_sha"] == "bcbb5ec396a2c0f828686f14fac9b80b780504f2" for e in events)


def test_gl017_the_pipeline_itself_is_a_gate_only_where_a_rule_lists_kind_pipeline() -> None:
    mapping = parse({"gates": [{"check": "test-*", "gate": "tests", "step": "code_review"},
                               {"check": "Pipeline for *", "gate": "ci-pipeline", "kinds": ["pipeline"]}]}, "t")
    events = mapped("Pipeline Hook", sample("pipeline"), mapping)
    assert sorted((e["id"].rsplit(":", 2)[-2:][0], e["data"]["gate_name"]) for e in events) == [
        ("job", "tests"), ("job", "tests"), ("pipeline", "ci-pipeline")]
    pipe = next(e for e in events if ":pipeline:" in e["id"])
    assert pipe["id"] == "gl:gitlab-org/gitlab-test!1:pipeline:31"
    assert (pipe["data"]["passed"], pipe["data"]["execution_time"]) == (True, 63.0)


def test_gl018_a_branch_pipeline_belongs_to_no_merge_request() -> None:
    p = sample("pipeline")
    p["merge_request"] = None
    assert mapped("Pipeline Hook", p) == []
    p["object_attributes"]["ref"] = "refs/merge-requests/9/head"               # a detached MR pipeline's ref
    assert {e["data"]["workflow_id"] for e in mapped("Pipeline Hook", p)} == {"gitlab-org/gitlab-test!9"}


def finished_job(status: str) -> dict[str, Any]:
    p = sample("job")
    p.update(ref="refs/merge-requests/1/head", build_status=status, build_duration=17.0,
             build_started_at="2021-02-23T02:41:20.100Z", build_finished_at="2021-02-23T02:41:37.886Z",
             build_finished_at_iso="2021-02-23T02:41:37Z")
    return p


def test_gl019_a_finished_job_is_a_gate_run_and_the_same_event_as_its_pipelines_entry() -> None:
    (ev,) = mapped("Job Hook", finished_job("failed"))
    assert ev == {"id": "gl:gitlab-org/gitlab-test!1:job:1977", "type": "workflow.quality_gate_executed",
                  "timestamp": "2021-02-23T02:41:37.886Z", "source": "gitlab", "metadata": {"priority": "normal"},
                  "data": {"workflow_id": "gitlab-org/gitlab-test!1", "gate_name": "test", "passed": False,
                           "step": "dod_validation", "execution_time": 17.0,
                           "head_sha": "2293ada6b400935a1378653304eaf6221e0fdb8f"}}
    pipeline = sample("pipeline")
    pipeline["object_attributes"].update(sha="2293ada6b400935a1378653304eaf6221e0fdb8f")
    pipeline["builds"] = [{"id": 1977, "name": "test", "status": "failed", "duration": 17.0,
                           "finished_at": "2021-02-23T02:41:37.886Z"}]          # as the REST API's job
    assert mapped("Pipeline Hook", pipeline)[0] == ev


def test_gl020_unfinished_unmapped_and_branch_jobs_are_nothing() -> None:
    assert mapped("Job Hook", sample("job")) == []                            # documented: created, branch ref
    for status in ("created", "running", "canceled", "skipped"):
        assert mapped("Job Hook", finished_job(status)) == []
    mapping = parse({"gates": [{"check": "lint", "step": "code_review"}]}, "t")
    assert mapped("Job Hook", finished_job("success"), mapping) == []         # not a gate
    assert mapped("Job Hook", finished_job("success"))[0]["data"]["passed"] is True


# ---- dispatch, names, ids ----------------------------------------------------------------------

def test_gl021_unknown_hooks_are_none_and_system_hooks_map_by_object_kind() -> None:
    assert gitlab.map_delivery("Push Hook", sample("push"), EMPTY) is None
    assert gitlab.map_delivery("Tag Push Hook", sample("push"), EMPTY) is None
    assert gitlab.map_delivery("Merge Request Hook", [1, 2], EMPTY) is None    # type: ignore[arg-type]
    assert gitlab.map_delivery("System Hook", sample("push"), EMPTY) is None
    assert [e["id"] for e in mapped("System Hook", mr("merge"))] == [f"gl:{WF}:merged"]


def test_gl022_event_name_is_the_header_else_the_object_kind() -> None:
    assert gitlab.event_name(Headers({"X-Gitlab-Event": "Note Hook"}), {}) == "Note Hook"
    assert gitlab.event_name(Headers({"x-gitlab-event": "Job Hook"}), {}) == "Job Hook"
    assert gitlab.event_name(Headers(), sample("pipeline")) == "Pipeline Hook"
    assert gitlab.event_name(Headers(), sample("job")) == "Job Hook"
    assert gitlab.event_name(Headers(), sample("push")) == "push"


P = {"path_with_namespace": "a/b"}


@pytest.mark.parametrize("event, payload, problem", [
    ("Merge Request Hook", {}, "object_attributes: required"),
    ("Merge Request Hook", {"object_attributes": None}, "object_attributes: required"),
    ("Merge Request Hook", {"object_attributes": {"iid": 1, "action": "open"}}, "project.path_with_namespace: required"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": "1", "action": "open"}},
     "object_attributes.iid: must be a positive integer"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 0, "action": "merge"}},
     "object_attributes.iid: must be a positive integer"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 1, "action": "open"}},
     "object_attributes.created_at: required (a time)"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 1, "action": "open", "created_at": "2020-01-01T00:00:00Z"}},
     "object_attributes.author_id: required"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 1, "action": "merge", "updated_at": "yesterday"}},
     "object_attributes.merged_at: required (a time)"),
    ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 1, "action": "approval", "updated_at": "2020-01-01T00:00:00Z"}},
     "user.username: required"),
    ("Note Hook", {"object_attributes": [1]}, "object_attributes: required"),
    ("Note Hook", {"project": P, "object_attributes": {"noteable_type": "MergeRequest"}}, "merge_request: required"),
    ("Note Hook", {"project": P, "merge_request": {"iid": None}, "object_attributes": {"noteable_type": "MergeRequest"}},
     "merge_request.iid: must be a positive integer"),
    ("Note Hook", {"project": P, "merge_request": {"iid": 2}, "object_attributes": {"noteable_type": "MergeRequest"}},
     "object_attributes.created_at: required (a time)"),
    ("Pipeline Hook", {"project": P}, "object_attributes: required"),
    ("Pipeline Hook", {"object_attributes": {}}, "project.path_with_namespace: required"),
    ("Job Hook", {"ref": "refs/merge-requests/1/head"}, "project.path_with_namespace: required"),
])
def test_gl023_a_payload_missing_what_its_hook_needs_is_a_value_error_naming_the_field(
        event: str, payload: dict[str, Any], problem: str) -> None:
    """The receiver answers a ValueError with a 400 naming the field and stores the delivery as
    invalid; anything else odd in a payload that can still be read gives nothing."""
    with pytest.raises(ValueError) as exc:
        gitlab.map_delivery(event, copy.deepcopy(payload), EMPTY)
    assert str(exc.value) == problem


def test_gl023b_readable_payloads_with_odd_parts_give_nothing() -> None:
    for event, payload in (("Pipeline Hook", {"project": P, "builds": [None, 3], "object_attributes": {"ref": 5}}),
                           ("Pipeline Hook", {"project": P, "merge_request": {"iid": 1}, "builds": [None, {"id": 1}],
                                              "object_attributes": {"status": "success", "finished_at": "x"}}),
                           ("Job Hook", {"project": P, "ref": "refs/merge-requests/1/head", "build_status": "success"}),
                           ("Note Hook", {"object_attributes": {"noteable_type": "Issue"}}),
                           ("Merge Request Hook", {"project": P, "object_attributes": {"iid": 1, "action": 5}})):
        assert mapped(event, payload) == []


def test_gl024_long_ids_are_cut_with_a_hash_and_timestamps_normalised() -> None:
    long = gitlab.event_id("gl", "g/" + "x" * 200 + "!1", "opened")
    assert len(long) == 128 and long.startswith("gl:g/xxx")
    assert long != gitlab.event_id("gl", "g/" + "x" * 201 + "!1", "opened")
    assert gitlab.iso("2015-05-17 18:08:09 UTC") == "2015-05-17T18:08:09Z"
    assert gitlab.iso("2021-04-28 21:50:00 +0200") == "2021-04-28T19:50:00Z"
    assert gitlab.iso("2016-11-18T10:46:28+0100") == "2016-11-18T09:46:28Z"
    assert gitlab.iso("2021-02-23T02:41:37.886Z") == "2021-02-23T02:41:37.886Z"
    assert [gitlab.iso(v) for v in ("2015-04-08T21: 00:25-07:00", "", None, 7)] == [None] * 4


# ---- the receiver's side: token and delivery id --------------------------------------------------

def test_gl025_token_good_bad_missing() -> None:
    body = b'{"object_kind":"merge_request"}'
    assert gitlab.verify(Headers({"X-Gitlab-Token": "s3cret"}), body, "s3cret") is True
    assert gitlab.verify(Headers({"x-gitlab-token": "s3cret"}), body, "s3cret") is True
    assert gitlab.verify(Headers({"X-Gitlab-Token": "s3cret "}), body, "s3cret") is False
    assert gitlab.verify(Headers({"X-Gitlab-Token": "other"}), body, "s3cret") is False
    assert gitlab.verify(Headers({"X-Gitlab-Token": "ünïcode"}), body, "s3cret") is False
    assert gitlab.verify(Headers(), body, "s3cret") is False
    assert gitlab.verify(Headers({"X-Gitlab-Token": ""}), body, "") is False


def test_gl026_delivery_id_idempotency_key_then_event_uuid_then_body_hash() -> None:
    body = b'{"object_kind":"build"}'
    both = Headers({"Idempotency-Key": "k-1", "X-Gitlab-Event-UUID": "u-1"})
    assert gitlab.delivery_id(both, body, {}) == "k-1"
    assert gitlab.delivery_id(Headers({"X-Gitlab-Event-UUID": "u-1"}), body, {}) == "u-1"
    assert gitlab.delivery_id(Headers(), body, {}) == "sha256:" + hashlib.sha256(body).hexdigest()
    assert gitlab.SECRET_SETTING == "gitlab_webhook_token"


def test_gl027_an_imported_discussion_note_maps_like_its_hook() -> None:
    """A note of GET /projects/:id/merge_requests/:iid/discussions (REST: `body`, `author`,
    `resolved`, `resolved_at`) wrapped as the import does; the same thread ids as the hook's."""
    rest_note = {"id": 1244, "type": "DiffNote", "body": "Potential issue: this leaks the token",
                 "author": {"id": 1, "username": "root"}, "created_at": "2015-05-17T18:21:36.000Z",
                 "updated_at": "2015-05-19T10:00:00.000Z", "system": False, "noteable_iid": 1,
                 "position": {"new_path": "app.py", "new_line": 10}, "resolvable": True, "resolved": True,
                 "resolved_by": {"id": 8, "username": "author"}, "resolved_at": "2015-05-19T10:00:00.000Z"}
    rest_mr = {"iid": 1, "author": {"id": 8, "username": "author"},
               "last_commit": {"id": "b" * 40, "timestamp": "2015-05-18T08:00:00.000Z"}}
    payload = {"object_kind": "note", "project": {"path_with_namespace": "gitlab-org/gitlab-test"},
               "user": rest_note["author"], "merge_request": rest_mr,
               "object_attributes": {**rest_note, "noteable_type": "MergeRequest",
                                     "discussion_id": "6a9c1750b37d513a43987b574953fceb50b03ce7"}}
    found, resolved = mapped("Note Hook", payload)
    assert found["id"] == THREAD + ":found" and found["data"]["severity"] == "major"     # "potential issue"
    assert (resolved["id"], resolved["timestamp"], resolved["data"]["resolution"]) == (
        THREAD + ":resolved", "2015-05-19T10:00:00Z", "fixed")                           # a push after the note
    rest_mr["author"] = {"id": 1, "username": "root"}                                    # the author's own thread
    assert [e["type"] for e in mapped("Note Hook", payload)] == ["workflow.defect_resolved"]


def test_gl028_every_id_fits_128_characters_even_for_long_project_paths_and_thread_ids() -> None:
    path = "group/" + "sub/" * 40 + "project"
    p = diff_note(discussion_id="f" * 100, resolved_at="2015-05-19T10:00:00Z", resolved_by_push=True)
    p["project"]["path_with_namespace"] = path
    events = mapped("Note Hook", p)
    q = mr("approval")
    q["project"]["path_with_namespace"] = path
    events += mapped("Merge Request Hook", q)
    assert len(events) == 4 and all(len(e["id"]) <= 128 for e in events)
    assert len({e["id"] for e in events}) == 4
    assert events[0]["data"]["defect_id"] == events[1]["data"]["defect_id"]
