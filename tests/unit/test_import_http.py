"""The import's HTTP client and delivery builders, without a network: pages, rate limits,
retries, the token, and the webhook-shaped deliveries of one pull / merge request."""
from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests

from integrations.importer import (ApiError, Http, github_deliveries, gitlab_deliveries, make_source, parse_since,
                                   token_from_env)
from data.timeutil import DAY_MS, parse_iso

TOKEN = "ghp_secret-never-shown-0123456789"


def answer(status: int = 200, body: Any = (), headers: dict[str, str] | None = None, reason: str = "") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = orjson.dumps(list(body) if isinstance(body, tuple) else body)
    r.headers.update(headers or {})
    r.reason = reason or {200: "OK", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
                          502: "Bad Gateway"}.get(status, "")
    r.url = "https://api.example/x"
    return r


class Session:
    """Answers queued in order; each call recorded (url, params, headers)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Any, dict[str, str]]] = []

    def get(self, url: str, params: Any = None, headers: Any = None, timeout: Any = None,
            allow_redirects: bool = True) -> requests.Response:
        assert allow_redirects is False, "redirects are followed by the client, on its own host only"
        self.calls.append((url, params, dict(headers or {})))
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a


class Clock:
    """Time that moves only when the client sleeps."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def client(*answers: Any, **kw: Any) -> tuple[Http, Session, Clock]:
    s, c = Session(*answers), Clock()
    return Http("https://api.example", {"Authorization": f"Bearer {TOKEN}"}, session=s, sleep=c.sleep, clock=c,
                **kw), s, c


def test_import001_link_pages_are_followed_to_the_end() -> None:
    nxt = '<https://api.example/repos/a/b/pulls?per_page=2&page=2>; rel="next", <https://api.example/repos/a/b/pulls?per_page=2&page=3>; rel="last"'
    last = '<https://api.example/repos/a/b/pulls?per_page=2&page=3>; rel="next"'
    http, s, _ = client(answer(body=[1, 2], headers={"Link": nxt}), answer(body=[3, 4], headers={"Link": last}),
                        answer(body=[5]))
    assert list(http.pages("/repos/a/b/pulls", {"per_page": 2})) == [[1, 2], [3, 4], [5]]
    assert [c[0] for c in s.calls] == ["https://api.example/repos/a/b/pulls",
                                       "https://api.example/repos/a/b/pulls?per_page=2&page=2",
                                       "https://api.example/repos/a/b/pulls?per_page=2&page=3"]
    assert s.calls[0][1] == {"per_page": 2} and s.calls[1][1] is None, "the next link carries the query"
    assert all(c[2]["Authorization"] == f"Bearer {TOKEN}" for c in s.calls)


def test_import002_gitlab_x_next_page_without_link_and_a_list_inside_an_object() -> None:
    http, s, _ = client(answer(body=[1], headers={"X-Next-Page": "2"}), answer(body=[2], headers={"X-Next-Page": ""}))
    assert list(http.pages("/projects/1/merge_requests", {"per_page": 1})) == [[1], [2]]
    assert s.calls[1][1] == {"per_page": 1, "page": "2"}
    http, _, _ = client(answer(body={"total_count": 2, "check_runs": [{"id": 1}, {"id": 2}]}))
    assert list(http.pages("/x", key="check_runs")) == [[{"id": 1}, {"id": 2}]]
    http, _, _ = client(answer(body={"message": "oops"}))
    with pytest.raises(ApiError, match="expected a list"):
        list(http.pages("/x"))


def test_import003_remaining_zero_waits_for_the_reset_before_the_next_request() -> None:
    http, s, clock = client(answer(body=[1], headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000030"}),
                            answer(body=[2]))
    assert http.json("/a") == [1] and clock.slept == []
    assert http.json("/b") == [2]
    assert clock.slept == [31.0], "until the reset, plus a second"
    # a reset already past: no wait
    http, s, clock = client(answer(body=[1], headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}),
                            answer(body=[2]))
    http.json("/a"), http.json("/b")
    assert clock.slept == []


def test_import004_403_and_429_are_waited_out_and_retried_capped() -> None:
    http, s, clock = client(answer(403, {"message": "secondary rate limit"}, {"Retry-After": "7"}),
                            answer(429, {}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000107"}),
                            answer(body=["ok"]))
    assert http.json("/a") == ["ok"]
    assert clock.slept == [7.0, 101.0] and len(s.calls) == 3
    http, s, clock = client(answer(403, {"message": "You have exceeded a secondary rate limit. Please wait."}),
                            answer(body=["ok"]))
    assert http.json("/a") == ["ok"] and clock.slept == [60.0], "a bare 403 saying so: a minute, as GitHub asks"
    http, s, clock = client(answer(429, {}, {"Retry-After": "86400"}), answer(body=["ok"]), max_wait_s=60)
    assert http.json("/a") == ["ok"] and clock.slept == [60.0]
    http, s, clock = client(*[answer(429, {}, {"Retry-After": "1"})] * 3, rate_retries=2)
    with pytest.raises(ApiError, match="still rate limited after 2 waits"):
        http.json("/a")


def test_import005_a_refusal_is_not_retried_and_names_the_request_not_the_token() -> None:
    http, s, clock = client(answer(403, {"message": "Resource not accessible by integration"}))
    with pytest.raises(ApiError) as exc:
        http.json("/repos/a/b/pulls")
    assert str(exc.value) == "GET https://api.example/repos/a/b/pulls answered 403: Resource not accessible by integration"
    assert len(s.calls) == 1 and clock.slept == []
    http, _, _ = client(answer(404, {"message": "Not Found"}))
    with pytest.raises(ApiError, match=r"answered 404: Not Found \(is the name right"):
        http.json("/repos/a/nope")
    http, _, _ = client(answer(401, {"message": "Bad credentials"}))
    with pytest.raises(ApiError) as exc:
        http.json("/user")
    assert "Bad credentials" in str(exc.value) and TOKEN not in str(exc.value)


def test_import006_server_errors_retried_with_back_off_then_a_clear_error() -> None:
    http, s, clock = client(answer(502), requests.ConnectionError("reset"), answer(body=[1]))
    assert http.json("/a") == [1]
    assert clock.slept == [1.0, 2.0] and len(s.calls) == 3
    http, s, clock = client(*[answer(502)] * 5)
    with pytest.raises(ApiError) as exc:
        http.json("/a?token=x")
    assert str(exc.value) == "GET https://api.example/a answered 502 Bad Gateway after 5 attempts"
    assert clock.slept == [1.0, 2.0, 4.0, 8.0]
    http, s, clock = client(*[requests.Timeout("slow")] * 2, retries=1)
    with pytest.raises(ApiError, match="Timeout after 2 attempts"):
        http.json("/a")


def test_import011_the_token_never_leaves_the_apis_host() -> None:
    http, s, _ = client(answer(301, {}, {"Location": "/repositories/42/pulls?page=1"}), answer(body=[1]))
    assert http.json("/repos/old/name/pulls") == [1], "a renamed repository's 301 is followed"
    assert s.calls[1][0] == "https://api.example/repositories/42/pulls?page=1"
    http, s, _ = client(answer(302, {}, {"Location": "https://elsewhere.example/x"}))
    with pytest.raises(ApiError, match="GET https://elsewhere.example/x: not on https://api.example, not followed"):
        http.json("/a")
    assert len(s.calls) == 1
    http, s, _ = client(answer(body=[1], headers={"Link": '<http://api.example/a?page=2>; rel="next"'}))
    with pytest.raises(ApiError, match="not on https://api.example"):
        list(http.pages("/a"))
    assert len(s.calls) == 1, "a next link to plain http is not followed either"


def test_import012_the_list_stops_at_the_bound_and_keeps_a_request_once() -> None:
    pages = [[{"number": 3, "updated_at": "2026-11-30T00:00:00Z"}, {"number": 2, "updated_at": "2026-11-29T00:00:00Z"}],
             [{"number": 2, "updated_at": "2026-11-29T00:00:00Z"},     # moved down a page while it was read
              {"number": 1, "updated_at": "2026-11-20T00:00:00Z"}, {"number": 9, "updated_at": "2026-11-01T00:00:00Z"}],
             [{"number": 8, "updated_at": "2026-10-01T00:00:00Z"}]]
    nxt = '<https://api.example/repos/a/b/pulls?page={}>; rel="next"'
    http, s, _ = client(answer(body={"full_name": "a/b"}),
                        *[answer(body=p, headers={"Link": nxt.format(i + 2)}) for i, p in enumerate(pages)])
    source = make_source("github", "a/b", "https://api.example", TOKEN)
    source.http = http
    got = source.items(parse_iso("2026-11-15T00:00:00Z"))
    assert [pr["number"] for pr in got] == [3, 2, 1]
    assert len(s.calls) == 3, "the third page is never asked for: #9 is older than the bound"


def test_import007_tokens_from_the_environment_sent_as_each_forge_wants() -> None:
    assert token_from_env("github", {"GITHUB_TOKEN": " a ", "QMS_GITHUB_TOKEN": "b"}) == "a"
    assert token_from_env("github", {"QMS_GITHUB_TOKEN": "b"}) == "b"
    assert token_from_env("gitlab", {"GITHUB_TOKEN": "a"}) is None
    assert token_from_env("gitlab", {"QMS_GITLAB_TOKEN": "g"}) == "g"
    gh = make_source("github", "acme/api", None, "t1")
    assert gh.http.base == "https://api.github.com" and gh.http.auth["Authorization"] == "Bearer t1"
    gl = make_source("gitlab", "grp/sub/proj", "https://git.example/api/v4/", "t2")
    assert gl.http.base == "https://git.example/api/v4" and gl.http.auth == {"PRIVATE-TOKEN": "t2"}
    assert gl.base == "/projects/grp%2Fsub%2Fproj"
    assert "Authorization" not in make_source("github", "acme/api", None, None).http.auth
    with pytest.raises(ValueError, match="--repo: expected OWNER/NAME"):
        make_source("github", "acme", None, None)
    with pytest.raises(ValueError, match="--project: expected GROUP/NAME"):
        make_source("gitlab", "proj", None, None)


def test_import008_since_is_a_duration_or_a_date() -> None:
    now = parse_iso("2026-12-02T10:00:00Z")
    assert parse_since("30d", now) == now - 30 * DAY_MS
    assert parse_since("12h", now) == now - DAY_MS // 2
    assert parse_since("2026-11-01", now) == parse_iso("2026-11-01T00:00:00Z")
    assert parse_since("2026-11-01T08:00:00Z", now) == parse_iso("2026-11-01T08:00:00Z")
    with pytest.raises(ValueError, match="--since: not a duration or a date: 'lately'"):
        parse_since("lately", now)


def _u(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": hash(login) % 10_000, "type": kind}


def test_import009_a_pull_requests_deliveries_as_its_webhooks_sent_them() -> None:
    pr = {"number": 7, "id": 70, "url": "u", "state": "closed", "title": "T", "user": _u("ann"),
          "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-03T10:00:00Z",
          "closed_at": "2026-11-03T10:00:00Z", "merged_at": None, "merged": False, "merged_by": None,
          "head": {"ref": "f", "sha": "abc", "repo": {"id": 1}}, "base": {"ref": "main", "sha": "def", "repo": {"id": 1}}}
    repo = {"full_name": "acme/api"}
    reviews = [{"id": 1, "user": _u("bob"), "state": "APPROVED", "submitted_at": "2026-11-02T10:00:00Z"},
               {"id": 2, "user": _u("cy"), "state": "PENDING", "submitted_at": None}]
    comments = [{"id": 5, "user": _u("ai[bot]", "Bot"), "body": "x", "created_at": "2026-11-01T12:00:00Z"}]
    runs = [{"id": 9, "name": "test", "status": "completed", "conclusion": "success", "completed_at": "2026-11-01T11:00:00Z",
             "pull_requests": [{"number": 99}]},
            {"id": 10, "name": "lint", "status": "in_progress", "conclusion": None, "completed_at": None}]
    events = [{"event": "review_requested", "actor": _u("ann"), "created_at": "2026-11-01T10:30:00Z",
               "requested_reviewer": _u("bob")},
              {"event": "subscribed", "actor": _u("ann"), "created_at": "2026-11-01T10:31:00Z"},
              {"event": "closed", "actor": _u("dee"), "created_at": "2026-11-03T10:00:00Z"}]
    statuses = [{"id": 3, "context": "ci/x", "state": "failure", "created_at": "2026-11-01T11:30:00Z",
                 "updated_at": "2026-11-01T11:30:00Z", "creator": _u("ci")}]
    got = github_deliveries(pr, repo, reviews, comments, runs, events, statuses)
    assert [(n, p.get("action")) for n, p in got] == [
        ("pull_request", "opened"), ("pull_request", "review_requested"), ("check_run", "completed"),
        ("status", None), ("pull_request_review_comment", "created"), ("pull_request_review", "submitted"),
        ("pull_request", "closed")]
    opened = got[0][1]["pull_request"]
    assert (opened["state"], opened["closed_at"], opened["updated_at"]) == ("open", None, "2026-11-01T10:00:00Z")
    assert pr["state"] == "closed", "the caller's object is not changed"
    requested = got[1][1]
    assert requested["requested_reviewer"]["login"] == "bob"
    assert requested["pull_request"]["updated_at"] == "2026-11-01T10:30:00Z"
    assert [p["number"] for p in got[2][1]["check_run"]["pull_requests"]] == [7]
    assert got[3][1]["pull_requests"][0]["number"] == 7 and got[3][1]["sha"] == "abc"
    assert got[5][1]["review"]["state"] == "approved", "webhooks spell states in lower case"
    assert got[6][1]["sender"]["login"] == "dee", "who closed it, from the issue's events"


def test_import010_a_merge_requests_deliveries_in_the_shapes_the_gitlab_mapper_reads() -> None:
    mr = {"id": 500, "iid": 4, "title": "T", "state": "merged", "author": {"id": 1, "username": "ann"},
          "merged_by": {"id": 2, "username": "bob"}, "created_at": "2026-11-01T10:00:00.000Z",
          "updated_at": "2026-11-03T10:00:00.000Z", "merged_at": "2026-11-03T10:00:00.000Z", "sha": "h2",
          "web_url": "https://gitlab.example/g/p/-/merge_requests/4"}
    project = {"id": 9, "path_with_namespace": "g/p", "name": "p"}
    versions = [{"id": 2, "head_commit_sha": "h2", "created_at": "2026-11-02T12:00:00.000Z"},
                {"id": 1, "head_commit_sha": "h1", "created_at": "2026-11-01T10:00:00.000Z"}]
    notes = [{"id": 70, "system": True, "body": "approved this merge request", "author": {"id": 2, "username": "bob"},
              "created_at": "2026-11-02T09:00:00.000Z"},
             {"id": 71, "system": True, "body": "added 1 commit", "author": {"id": 1, "username": "ann"},
              "created_at": "2026-11-02T12:00:00.000Z"}]
    discussions = [{"id": "d1", "notes": [
        {"id": 80, "type": "DiffNote", "body": "bug here", "author": {"id": 3, "username": "rev"},
         "created_at": "2026-11-01T11:00:00.000Z", "resolved": True, "resolved_at": "2026-11-02T13:00:00.000Z"},
        {"id": 81, "system": True, "body": "resolved all threads", "author": {"id": 1, "username": "ann"},
         "created_at": "2026-11-02T13:00:00.000Z"}]}]
    pipelines = [({"id": 30, "ref": "refs/merge-requests/4/head", "source": "merge_request_event", "status": "success",
                   "sha": "h1", "finished_at": "2026-11-01T10:20:00.000Z"}, [{"id": 300, "name": "test"}]),
                 ({"id": 31, "ref": "feature", "source": "push", "status": "failed", "sha": "h1",
                   "finished_at": "2026-11-01T10:21:00.000Z"}, [])]
    got = gitlab_deliveries(mr, project, discussions, notes, versions, pipelines)
    assert [(n, (p.get("object_attributes") or {}).get("action")) for n, p in got] == [
        ("Merge Request Hook", "open"), ("Pipeline Hook", None), ("Pipeline Hook", None), ("Note Hook", None),
        ("Merge Request Hook", "approval"), ("Merge Request Hook", "merge")]
    opened = got[0][1]
    assert opened["user"]["username"] == "ann" and opened["object_attributes"]["state"] == "opened"
    assert opened["object_attributes"]["merged_at"] is None and opened["project"]["path_with_namespace"] == "g/p"
    note = got[3][1]
    assert note["object_attributes"]["discussion_id"] == "d1" and note["object_attributes"]["noteable_type"] == "MergeRequest"
    assert note["merge_request"]["last_commit"] == {"id": "h2", "timestamp": "2026-11-02T12:00:00Z"}, \
        "the head when the thread was resolved (times to the second, as hooks send them)"
    assert got[1][1]["merge_request"]["iid"] == 4 and got[1][1]["builds"] == [{"id": 300, "name": "test"}]
    assert "merge_request" not in got[2][1], "a branch pipeline's hook names no merge request"
    approval = got[4][1]
    assert approval["user"]["username"] == "bob"
    assert approval["object_attributes"]["last_commit"]["id"] == "h1", "the head at the approval"
    assert got[5][1]["user"]["username"] == "bob"
    assert got[5][1]["object_attributes"]["merged_at"] == "2026-11-03T10:00:00Z" != mr["merged_at"]
