"""GitHub payloads → QMS events (integrations/github.py) and the mapping file
(integrations/mapping.py), on GitHub's own recorded deliveries (@octokit/webhooks-examples).
No Redis: map_delivery is pure."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.events import check_item
from data.timeutil import fmt_ms, parse_iso
from integrations import github
from integrations.github import PayloadError, event_id, map_delivery
from integrations.mapping import DEFAULT_PATH, Mapping, MappingError, MappingFile, load, parse
from tests.fixtures.github.examples import example, examples, index

FAR = parse_iso("2100-01-01T00:00:00Z")
MAPPING = parse({
    "teams": [{"repo": "codertocat/hello-*", "team": "greeters"}, {"repo": "*", "team": "everyone"}],
    "agents": [{"login": "coderabbitai[bot]", "id": "coderabbit", "kind": "ai", "cost_per_review_usd": 0.25},
               {"login": "renovate", "kind": "bot"}],
    "labels": {"Ready": "code_review", "needs-dod": "dod_validation"},
}, "test mapping")
GATES = parse({"gates": [{"check": "Octocoders-*", "gate": "lint-gate", "step": "dod_validation"},
                         {"check": "test", "gate": "ci", "step": "final_approval", "kinds": ["workflow_run"]},
                         {"check": "default", "gate": "status-gate", "kinds": ["status"]}]}, "gates")
WF = "Codertocat/Hello-World#2"


def valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for ev in events:
        _, _, errors = check_item(ev, FAR, 0)
        assert errors == [], (ev["id"], errors)
        assert ev["source"] == "github" and ev["id"].startswith("gh:") and len(ev["id"]) <= 128
    return events


def by_type(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["type"].split(".", 1)[1]: e for e in events}


# --- every recorded example ---------------------------------------------------------------------

def test_gh001_every_recorded_example_maps_to_valid_events_or_is_said_unknown() -> None:
    mapped_kinds = set(github.HANDLERS)
    counts = {"events": 0, "unknown": 0, "ignored": 0}
    for name, payloads in index().items():
        for n, payload in enumerate(payloads):
            out = map_delivery(name, payload, MAPPING)
            if name not in mapped_kinds:
                assert out is None, (name, n)
                counts["unknown"] += 1
                continue
            assert isinstance(out, list), (name, n)
            ids = [e["id"] for e in valid(out)]
            assert len(ids) == len(set(ids)), (name, n, ids)
            counts["events" if out else "ignored"] += 1
    # 58 kinds recorded; 7 mapped plus check_suite, workflow_job and ping known but ignored.
    assert counts["unknown"] == sum(len(v) for k, v in index().items() if k not in mapped_kinds) > 200
    assert (counts["events"], counts["ignored"]) == (19, 61)


def test_gh002_the_same_payload_gives_the_same_events_every_time() -> None:
    for name in ("pull_request", "check_run", "pull_request_review"):
        for payload in examples(name):
            assert map_delivery(name, payload, MAPPING) == map_delivery(name, payload, MAPPING)


# --- pull_request --------------------------------------------------------------------------------

def test_gh003_opened_and_reopened_are_one_pr_created() -> None:
    opened = valid(map_delivery("pull_request", example("pull_request", "opened"), MAPPING))
    assert opened == [{"id": "gh:Codertocat/Hello-World#2:opened", "type": "workflow.pr_created",
                       "timestamp": "2019-05-15T15:20:33Z", "source": "github", "metadata": {"priority": "normal"},
                       "data": {"workflow_id": WF, "pr_number": 2, "repository": "Codertocat/Hello-World",
                                "author": "Codertocat", "team": "greeters",
                                "title": "Update the README with new information."}}]
    reopened = map_delivery("pull_request", example("pull_request", "reopened"), MAPPING)
    assert [e["id"] for e in reopened] == ["gh:Codertocat/Hello-World#2:opened"]
    assert reopened[0]["timestamp"] == "2019-05-15T15:20:33Z"        # created_at, whenever it was reopened
    assert map_delivery("pull_request", example("pull_request", "opened"), Mapping.default())[0]["data"].get("team") \
        is None


def test_gh004_ready_for_review_and_review_requested_enter_code_review() -> None:
    ready = example("pull_request", "ready_for_review")
    assert valid(map_delivery("pull_request", ready, MAPPING)) == [{
        "id": "gh:Codertocat/Hello-World#2:step:code_review:2019-05-15T15:21:18Z", "type": "workflow.step_entered",
        "timestamp": ready["pull_request"]["updated_at"], "source": "github", "metadata": {"priority": "normal"},
        "data": {"workflow_id": WF, "step": "code_review"}}]
    asked = example("pull_request", "review_requested")
    human = map_delivery("pull_request", asked, MAPPING)
    assert [e["type"] for e in human] == ["workflow.step_entered"]      # octocat is a person: no assignment
    asked["requested_reviewer"].update(login="coderabbitai[bot]", type="Bot")
    both = by_type(valid(map_delivery("pull_request", asked, MAPPING)))
    assert both["agent_assigned"]["data"] == {"workflow_id": WF, "agent_id": "coderabbit"}
    assert both["agent_assigned"]["id"] == "gh:Codertocat/Hello-World#2:assigned:coderabbit:2019-05-15T15:20:33Z"
    asked["requested_reviewer"].update(login="some-ci[bot]")
    assert by_type(map_delivery("pull_request", asked, MAPPING))["agent_assigned"]["data"]["agent_id"] == "some-ci[bot]"


def test_gh005_a_mapped_label_enters_its_step_others_nothing() -> None:
    labeled = example("pull_request", "labeled")
    assert labeled["label"]["name"] == "bug" and map_delivery("pull_request", labeled, MAPPING) == []
    labeled["label"]["name"] = "ready"                       # labels match without case
    [ev] = valid(map_delivery("pull_request", labeled, MAPPING))
    assert ev["data"] == {"workflow_id": WF, "step": "code_review"} and ev["timestamp"] == "2019-05-15T15:20:35Z"


def test_gh006_closed_merged_rejected_abandoned() -> None:
    closed = example("pull_request", "closed")
    assert closed["pull_request"]["review_comments"] == 1 and closed["sender"]["login"] == "Codertocat"
    [ev] = valid(map_delivery("pull_request", closed, MAPPING))
    assert ev["id"] == "gh:Codertocat/Hello-World#2:closed:2019-05-15T15:21:18Z"
    assert ev["data"] == {"workflow_id": WF, "outcome": "rejected"} and ev["timestamp"] == "2019-05-15T15:21:18Z"
    closed["pull_request"]["review_comments"] = 0                  # its author closed it, undiscussed
    assert map_delivery("pull_request", closed, MAPPING)[0]["data"]["outcome"] == "abandoned"
    closed["sender"]["login"] = "a-maintainer"                      # someone else closed it
    assert map_delivery("pull_request", closed, MAPPING)[0]["data"]["outcome"] == "rejected"
    closed["pull_request"]["draft"] = True
    assert map_delivery("pull_request", closed, MAPPING)[0]["data"]["outcome"] == "abandoned"
    closed["pull_request"].update(draft=False, merged=True, merged_at="2019-05-15T15:21:17Z")
    [merged] = valid(map_delivery("pull_request", closed, MAPPING))
    assert merged["data"]["outcome"] == "merged" and merged["timestamp"] == "2019-05-15T15:21:17Z"


def test_gh007_a_merged_revert_is_a_production_defect_of_the_reverted_pr() -> None:
    pr = example("pull_request", "closed")
    pr["pull_request"].update(merged=True, merged_at="2019-05-16T10:00:00Z", title='Revert "Add the thing"',
                              body="Reverts Codertocat/Hello-World#1\n\nBroke production.")
    events = by_type(valid(map_delivery("pull_request", pr, MAPPING)))
    assert events["completed"]["data"] == {"workflow_id": WF, "outcome": "merged"}
    defect = events["defect_found"]
    assert defect["id"] == "gh:Codertocat/Hello-World#1:revert:Codertocat/Hello-World#2"
    assert defect["data"] == {"workflow_id": "Codertocat/Hello-World#1", "defect_id": defect["id"],
                              "severity": "major", "category": "revert", "stage": "production",
                              "found_by": "Codertocat", "found_by_kind": "human"}
    assert defect["timestamp"] == "2019-05-16T10:00:00Z"
    pr["pull_request"]["body"] = "This reverts commit abc (#7)."
    assert by_type(map_delivery("pull_request", pr, MAPPING))["defect_found"]["data"]["workflow_id"] == \
        "Codertocat/Hello-World#7"
    pr["pull_request"]["merged"], pr["pull_request"]["merged_at"] = False, None    # not merged: no escape
    assert [e["type"] for e in map_delivery("pull_request", pr, MAPPING)] == ["workflow.completed"]


def test_gh008_other_pull_request_actions_are_known_but_map_to_nothing() -> None:
    for action in ("assigned", "converted_to_draft", "locked", "synchronize", "unlabeled", "review_request_removed"):
        assert map_delivery("pull_request", example("pull_request", action), MAPPING) == [], action


# --- reviews, comments, threads -------------------------------------------------------------------

def test_gh009_reviews_started_and_completed_with_the_verdict_and_the_reviewers_kind() -> None:
    review = example("pull_request_review", "submitted")
    assert review["review"]["state"] == "commented"
    [started] = valid(map_delivery("pull_request_review", review, MAPPING))
    assert started["id"] == "gh:Codertocat/Hello-World#2:review:237895671:started"
    assert started["type"] == "workflow.review_started" and started["timestamp"] == "2019-05-15T15:20:38Z"
    assert started["data"] == {"workflow_id": WF, "reviewer": "Codertocat", "reviewer_kind": "human"}
    review["review"]["state"] = "approved"
    s, c = valid(map_delivery("pull_request_review", review, MAPPING))
    assert (s["id"], c["id"]) == (started["id"], "gh:Codertocat/Hello-World#2:review:237895671:completed")
    assert s["timestamp"] == "2019-05-15T15:20:37.999Z" and c["timestamp"] == "2019-05-15T15:20:38Z"
    assert c["data"] == {"workflow_id": WF, "reviewer": "Codertocat", "reviewer_kind": "human", "verdict": "approved"}
    review["review"]["state"] = "CHANGES_REQUESTED"
    review["review"]["user"].update(login="coderabbitai[bot]", type="Bot")
    s, c = map_delivery("pull_request_review", review, MAPPING)
    assert c["data"] == {"workflow_id": WF, "reviewer": "coderabbit", "reviewer_kind": "ai",
                         "verdict": "changes_requested", "cost_usd": 0.25}
    assert s["data"]["reviewer_kind"] == "ai"
    review["review"]["user"].update(login="dependabot[bot]")
    assert map_delivery("pull_request_review", review, MAPPING)[1]["data"]["reviewer_kind"] == "bot"
    assert map_delivery("pull_request_review", example("pull_request_review", "dismissed"), MAPPING) == []


def test_gh010_a_review_comment_is_a_finding_of_its_author_replies_may_resolve_it() -> None:
    comment = example("pull_request_review_comment", "created")
    assert comment["comment"]["user"]["login"] == comment["pull_request"]["user"]["login"]
    assert map_delivery("pull_request_review_comment", comment, MAPPING) == []     # the author's own note
    comment["comment"]["user"].update(login="coderabbitai[bot]", type="Bot")
    [found] = valid(map_delivery("pull_request_review_comment", comment, MAPPING))
    did = "gh:Codertocat/Hello-World#2:comment:284312630"
    assert found["id"] == did and found["type"] == "workflow.defect_found"
    assert found["timestamp"] == "2019-05-15T15:20:37Z"
    assert found["data"] == {"workflow_id": WF, "defect_id": did, "severity": "minor", "category": "review_comment",
                             "stage": "review", "found_by": "coderabbit", "found_by_kind": "ai"}
    comment["comment"]["body"] = "⚠️ Potential issue: this drops the error.\n```suggestion\nraise\n```"
    data = map_delivery("pull_request_review_comment", comment, MAPPING)[0]["data"]
    assert (data["severity"], data["category"]) == ("major", "suggestion")
    comment["comment"]["body"] = "Critical: SQL injection here"
    assert map_delivery("pull_request_review_comment", comment, MAPPING)[0]["data"]["severity"] == "critical"
    reply = example("pull_request_review_comment", "created")
    reply["comment"].update(id=999, in_reply_to_id=284312630, body="Thanks, but this is a false positive.")
    [resolved] = valid(map_delivery("pull_request_review_comment", reply, MAPPING))
    assert resolved["id"] == did + ":resolved" and resolved["type"] == "workflow.defect_resolved"
    assert resolved["data"] == {"defect_id": did, "resolution": "false_positive", "workflow_id": WF}
    reply["comment"]["body"] = "Won't fix: out of scope"
    assert map_delivery("pull_request_review_comment", reply, MAPPING)[0]["data"]["resolution"] == "wont_fix"
    reply["comment"]["body"] = "Good point, done."
    assert map_delivery("pull_request_review_comment", reply, MAPPING) == []
    for action in ("edited", "deleted"):
        assert map_delivery("pull_request_review_comment", example("pull_request_review_comment", action),
                            MAPPING) == []


def test_gh011_a_resolved_thread_is_fixed_after_a_change_else_a_false_positive() -> None:
    thread = example("pull_request_review_thread", "resolved")
    root = thread["thread"]["comments"][0]
    assert root["user"]["login"] == "jide2020" != thread["pull_request"]["user"]["login"]
    assert thread["pull_request"]["head"]["sha"] == root["original_commit_id"]       # no change since
    [ev] = valid(map_delivery("pull_request_review_thread", thread, MAPPING))
    did = "gh:octo-org/octo-repo#118:comment:820867280"
    assert ev["id"] == did + ":resolved" and ev["timestamp"] == "2022-03-21T09:21:38Z"
    assert ev["data"] == {"defect_id": did, "resolution": "false_positive", "workflow_id": "octo-org/octo-repo#118"}
    thread["pull_request"]["head"]["sha"] = "f" * 40                                  # the code changed
    assert map_delivery("pull_request_review_thread", thread, MAPPING)[0]["data"]["resolution"] == "fixed"
    thread["thread"]["comments"].append({**root, "id": 5, "in_reply_to_id": root["id"], "body": "wontfix",
                                         "user": {"login": "octocat", "type": "User"}})
    assert map_delivery("pull_request_review_thread", thread, MAPPING)[0]["data"]["resolution"] == "wont_fix"
    assert map_delivery("pull_request_review_thread", example("pull_request_review_thread", "unresolved"),
                        MAPPING) == []
    own = example("pull_request_review_thread", "resolved", 1)      # opened by the PR's author: no finding
    assert map_delivery("pull_request_review_thread", own, MAPPING) == []


# --- checks, statuses, workflow runs ----------------------------------------------------------------

def test_gh012_a_completed_check_run_is_a_gate_run_of_each_of_its_pull_requests() -> None:
    failed, passed = (example("check_run", "completed", n) for n in (0, 1))
    assert (failed["check_run"]["conclusion"], passed["check_run"]["conclusion"]) == ("failure", "success")
    [ev] = valid(map_delivery("check_run", failed, Mapping.default()))
    assert ev["id"] == "gh:Codertocat/Hello-World#2:check:128620228" and ev["timestamp"] == "2019-05-15T15:21:12Z"
    assert ev["data"] == {"workflow_id": WF, "gate_name": "Octocoders-linter", "passed": False,
                          "step": "dod_validation", "execution_time": 0.0,
                          "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"}
    passed["check_run"].update(started_at="2019-05-15T15:20:00Z", id=128620229)
    passed["check_run"]["pull_requests"].append({"number": 3})
    two = valid(map_delivery("check_run", passed, GATES))
    assert [(e["data"]["workflow_id"], e["data"]["gate_name"], e["data"]["passed"], e["data"]["execution_time"])
            for e in two] == [(WF, "lint-gate", True, 72.0), ("Codertocat/Hello-World#3", "lint-gate", True, 72.0)]
    assert [e["id"] for e in two] == ["gh:Codertocat/Hello-World#2:check:128620229",
                                      "gh:Codertocat/Hello-World#3:check:128620229"]
    passed["check_run"]["name"] = "unlisted"                # gates configured: only what they name
    assert map_delivery("check_run", passed, GATES) == []
    for conclusion in ("neutral", "cancelled", "skipped", "stale"):
        failed["check_run"]["conclusion"] = conclusion
        assert map_delivery("check_run", failed, Mapping.default()) == [], conclusion
    failed["check_run"].update(conclusion="timed_out", pull_requests=[])   # not on a pull request
    assert map_delivery("check_run", failed, Mapping.default()) == []
    for action in ("created", "rerequested", "requested_action"):
        assert map_delivery("check_run", example("check_run", action), Mapping.default()) == [], action


def test_gh013_suites_and_jobs_are_not_counted_twice_workflow_runs_only_when_listed() -> None:
    for payload in examples("check_suite"):
        assert map_delivery("check_suite", payload, GATES) == []
    for payload in examples("workflow_job"):
        assert map_delivery("workflow_job", payload, Mapping.default()) == []
    run = example("workflow_run", "completed", 2)
    assert map_delivery("workflow_run", run, Mapping.default()) == []          # a sum of its jobs' check runs
    [ev] = valid(map_delivery("workflow_run", run, GATES))
    assert ev["id"] == "gh:octo-org/octo-repo#2:run:289782451:1" and ev["timestamp"] == "2020-10-05T16:33:49Z"
    assert ev["data"] == {"workflow_id": "octo-org/octo-repo#2", "gate_name": "ci", "passed": True,
                          "step": "final_approval", "execution_time": 0.0,     # run_started_at = updated_at here
                          "head_sha": run["workflow_run"]["head_sha"]}
    run["workflow_run"]["run_started_at"] = "2020-10-05T16:33:24Z"
    assert map_delivery("workflow_run", run, GATES)[0]["data"]["execution_time"] == 25.0
    assert map_delivery("workflow_run", example("workflow_run", "completed", 1), GATES) == []   # no pull request


def test_gh014_a_commit_status_maps_once_its_pull_request_is_known() -> None:
    status = example("status")
    assert map_delivery("status", status, GATES) == []              # names no pull request
    status["pull_requests"] = [{"number": 2}]
    [ev] = valid(map_delivery("status", status, GATES))
    assert ev["id"] == f"gh:Codertocat/Hello-World#2:status:{status['id']}"
    assert ev["timestamp"] == "2019-05-15T15:20:55Z" and "execution_time" not in ev["data"]
    assert ev["data"] == {"workflow_id": WF, "gate_name": "status-gate", "passed": True, "step": "dod_validation",
                          "head_sha": status["sha"]}
    status["state"] = "error"
    assert map_delivery("status", status, GATES)[0]["data"]["passed"] is False
    status["state"] = "pending"
    assert map_delivery("status", status, GATES) == []
    assert github.head_shas("pull_request", example("pull_request", "opened")) == \
        [("ec26c3e57ca3a959ca5aad62de7213c562f8c821", WF)]
    assert github.head_shas("check_run", example("check_run", "completed")) == \
        [("ec26c3e57ca3a959ca5aad62de7213c562f8c821", WF)]
    assert github.head_shas("check_run", example("check_run", "rerequested")) == []        # on no pull request
    assert github.head_shas("push", example("push")) == [] and github.head_shas("pull_request", {}) == []


def test_gh015_ping_ignored_unknown_kinds_none_missing_fields_named() -> None:
    assert map_delivery("ping", example("ping"), MAPPING) == []
    assert map_delivery("push", example("push"), MAPPING) is None
    assert map_delivery("", {}, MAPPING) is None
    pr = example("pull_request", "opened")
    del pr["pull_request"]["number"]
    with pytest.raises(PayloadError, match=r"^number: required"):
        map_delivery("pull_request", pr, MAPPING)
    pr = example("pull_request", "opened")
    pr["pull_request"]["created_at"] = "yesterday"
    with pytest.raises(PayloadError, match="created_at: not an ISO 8601 time"):
        map_delivery("pull_request", pr, MAPPING)
    with pytest.raises(PayloadError, match="repository.full_name: required"):
        map_delivery("check_run", {**example("check_run", "completed"), "repository": None}, MAPPING)


def test_gh016_long_ids_are_hashed_to_128_characters() -> None:
    assert event_id("a/b", 1, "opened") == "gh:a/b#1:opened"
    long = event_id("o/" + "r" * 90, 7, "assigned:" + "x" * 60 + ":1")
    assert len(long) <= 128 and long.startswith("gh:o/" + "r" * 90 + "#7:")
    assert event_id("o/" + "r" * 90, 7, "assigned:" + "x" * 60 + ":1") == long
    huge = event_id("o" * 100 + "/" + "r" * 100, 1, "opened")
    assert len(huge) == 43 and huge.startswith("gh:")


# --- the mapping file ----------------------------------------------------------------------------

def test_gh017_the_mapping_answers_teams_gates_actors_and_labels() -> None:
    assert MAPPING.team_of("Codertocat/Hello-World") == "greeters" and MAPPING.team_of("x/y") == "everyone"
    assert Mapping.default().team_of("x/y") is None
    assert Mapping.default().gate_of("build").gate == "build" and Mapping.default().gate_of("build").step == \
        "dod_validation"
    assert Mapping.default().gate_of("CI", "workflow_run") is None and Mapping.default().gate_of("x", "pipeline") is None
    assert GATES.gate_of("Octocoders-linter").gate == "lint-gate" and GATES.gate_of("test") is None
    assert GATES.gate_of("test", "workflow_run").step == "final_approval"
    assert GATES.gate_of("default", "check_run") is None and GATES.gate_of("default", "status").gate == "status-gate"
    assert MAPPING.actor("CodeRabbitAI[bot]").id == "coderabbit" and MAPPING.actor("renovate").kind == "bot"
    assert MAPPING.actor("ci", "Bot").kind == "bot" and MAPPING.actor("ann", "User").kind == "human"
    assert MAPPING.step_of_label("READY") == "code_review" and MAPPING.step_of_label("bug") is None


def test_gh018_a_bad_mapping_file_is_refused_naming_the_file_and_each_field(tmp_path: Path) -> None:
    bad = tmp_path / "integrations.yaml"
    bad.write_text("gates:\n  - check: lint\n    step: review\nagents:\n  - login: x\n    kind: robot\n"
                   "labels: {ready: nowhere}\nteam: []\n")
    with pytest.raises(MappingError) as exc:
        load(bad)
    lines = str(exc.value).splitlines()
    assert lines == [
        f"{bad}: gates[0].step: must be one of 'dor_validation', 'code_review', 'dod_validation' or 'final_approval'",
        f"{bad}: agents[0].kind: must be one of 'ai' or 'bot'",
        f"{bad}: labels.ready: must be one of 'dor_validation', 'code_review', 'dod_validation' or 'final_approval'",
        f"{bad}: team: unknown field"]
    bad.write_text("gates: [unclosed\n")
    with pytest.raises(MappingError, match="invalid YAML"):
        load(bad)
    with pytest.raises(MappingError, match="top level must be a mapping"):
        parse(["a"], "list.yaml")
    with pytest.raises(MappingError, match="no such file"):
        load(tmp_path / "missing.yaml")


def test_gh019_the_shipped_example_file_loads_and_a_refused_change_keeps_the_last_good(tmp_path: Path) -> None:
    shipped = load(DEFAULT_PATH)
    assert shipped.actor("copilot-pull-request-reviewer[bot]").kind == "ai"
    path = tmp_path / "m.yaml"
    path.write_text("labels: {ready: code_review}\n")
    live = MappingFile(str(path))
    assert live.get().step_of_label("ready") == "code_review" and live.error is None
    path.write_text("labels: {ready: 7}\n")
    live._checked = -10.0                                        # as if a second had passed
    assert live.get().step_of_label("ready") == "code_review"   # the last good mapping stays
    assert live.error and "labels.ready" in live.error
    path.write_text("labels: {done: final_approval}\n")
    live._checked = -10.0
    assert live.get().step_of_label("done") == "final_approval" and live.error is None


def test_gh020_timestamps_come_from_the_payload_never_the_clock() -> None:
    review = example("pull_request_review", "submitted")
    assert map_delivery("pull_request_review", review, MAPPING)[0]["timestamp"] == \
        fmt_ms(parse_iso(review["review"]["submitted_at"]))


def _paths(obj: Any, prefix: tuple[str, ...] = (), depth: int = 0) -> Any:
    if isinstance(obj, dict) and depth < 3:
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,), depth + 1)


def test_gh021_any_field_missing_or_of_another_type_is_a_payload_error_or_valid_events() -> None:
    """Each field (three levels deep) of a mapped example of each action removed, or replaced by
    a string, a number or a list: map_delivery names the field (PayloadError) or
    returns events the contract accepts — never another exception."""
    problems = []
    tried = 0
    for name, payloads in index().items():
        if name not in github.HANDLERS:
            continue
        one_per_action = {p.get("action"): p for p in payloads}          # the recorded copies differ little
        for original in one_per_action.values():
            for path in list(_paths(original)):
                for value in ("<missing>", "x", 7, []):
                    payload = parent = dict(original)          # copies along the path only: the rest is shared
                    for key in path[:-1]:
                        parent[key] = dict(parent[key])
                        parent = parent[key]
                    if value == "<missing>":
                        del parent[path[-1]]
                    else:
                        parent[path[-1]] = value
                    tried += 1
                    try:
                        for ev in map_delivery(name, payload, MAPPING) or []:
                            errors = check_item(ev, FAR, 0)[2]
                            if errors:
                                problems.append((name, ".".join(path), value, errors[0]))
                    except PayloadError:
                        pass
                    except Exception as exc:        # noqa: BLE001 (what this test looks for)
                        problems.append((name, ".".join(path), value, repr(exc)))
    assert tried > 10_000 and problems == []
