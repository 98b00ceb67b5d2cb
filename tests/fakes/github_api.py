"""A fake GitHub REST API serving one repository's recorded history.

Objects have the shapes of GitHub's documented REST responses ("List pull requests", "Get a
pull request", "List reviews for a pull request", "List review comments on a pull request",
"List check runs for a Git reference", "Get a repository"; docs.github.com/rest), trimmed of
URL fields nothing reads. Times are relative to `now_ms`, so `--since 30d` selects the same
pull requests whenever the tests run.

Hiccups (`hiccups=True`): the second page of the pull list answers once 403 with
`Retry-After: 0` (a secondary rate limit), the first page says `X-RateLimit-Remaining: 0`
with a reset in the past, and the reviews of #102 answer once 502.
"""
from __future__ import annotations

import copy
from typing import Any

from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, fmt_ms
from tests.fakes.http import FakeApi

REPO = "acme/api"
TOKEN = "ghp_fake-token-for-tests-0123456789"


def user(login: str, uid: int, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}", "avatar_url": f"https://github.com/images/{login}.gif",
            "gravatar_id": "", "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}",
            "type": kind, "site_admin": False}


USERS = {
    "alice": user("alice", 1001), "bob": user("bob", 1002), "carol": user("carol", 1003),
    "dave": user("dave", 1004), "erin": user("erin", 1005),
    "coderabbitai[bot]": user("coderabbitai[bot]", 136622811, "Bot"),
    "dependabot[bot]": user("dependabot[bot]", 49699333, "Bot"),
    "github-actions[bot]": user("github-actions[bot]", 41898282, "Bot"),
}
OWNER = {**user("acme", 9000, "Organization")}


def repository() -> dict[str, Any]:
    return {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "api", "full_name": REPO,
            "owner": OWNER, "private": False, "html_url": f"https://github.com/{REPO}",
            "description": "The acme API", "fork": False, "url": f"https://api.github.com/repos/{REPO}",
            "default_branch": "main", "visibility": "public", "created_at": "2020-01-26T19:01:12Z",
            "updated_at": "2026-01-26T19:14:43Z", "pushed_at": "2026-01-26T19:06:43Z",
            "language": "Python", "archived": False, "disabled": False, "topics": ["api"]}


def _branch(ref: str, sha: str, who: dict[str, Any]) -> dict[str, Any]:
    return {"label": f"acme:{ref}", "ref": ref, "sha": sha, "user": who, "repo": repository()}


def pull(number: int, title: str, author: str, created: int, updated: int, *, closed: int | None = None,
         merged: int | None = None, body: str = "", draft: bool = False, merged_by: str | None = None,
         labels: tuple[str, ...] = ()) -> dict[str, Any]:
    """ "Get a pull request" (the list item is the same minus merged/merged_by/counts)."""
    sha = f"{number:04d}" + "ab" * 18
    base = f"https://api.github.com/repos/{REPO}"
    return {
        "url": f"{base}/pulls/{number}", "id": 1_000_000 + number, "node_id": f"MDExOlB1bGxSZXF1ZXN0{number}",
        "html_url": f"https://github.com/{REPO}/pull/{number}", "number": number,
        "state": "closed" if closed else "open", "locked": False, "title": title, "user": USERS[author],
        "body": body, "labels": [{"id": 208045946 + i, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=", "name": name,
                                  "description": "", "color": "f29513", "default": False}
                                 for i, name in enumerate(labels)],
        "milestone": None, "active_lock_reason": None,
        "created_at": fmt_ms(created), "updated_at": fmt_ms(updated),
        "closed_at": fmt_ms(closed) if closed else None, "merged_at": fmt_ms(merged) if merged else None,
        "merge_commit_sha": ("e5bd3914e2e596debea16f433f57875b5b90bcd6" if merged else None),
        "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": _branch(f"feature-{number}", sha, USERS[author]),
        "base": _branch("main", "6dcb09b5b57875f334f61aebed695e2e4193db5e", OWNER),
        "author_association": "MEMBER", "auto_merge": None, "draft": draft,
        # "Get a pull request" only:
        "merged": bool(merged), "mergeable": None if closed else True, "rebaseable": None,
        "mergeable_state": "clean", "merged_by": USERS[merged_by] if merged and merged_by else None,
        "comments": 0, "review_comments": 0, "maintainer_can_modify": False, "commits": 3,
        "additions": 100, "deletions": 3, "changed_files": 5,
    }


LIST_ONLY_DROPS = ("merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments",
                   "review_comments", "maintainer_can_modify", "commits", "additions", "deletions", "changed_files")


def review(rid: int, number: int, who: str, state: str, submitted: int | None, body: str = "") -> dict[str, Any]:
    return {"id": rid, "node_id": f"MDE3OlB1bGxSZXF1ZXN0UmV2aWV3{rid}", "user": USERS[who], "body": body,
            "state": state, "html_url": f"https://github.com/{REPO}/pull/{number}#pullrequestreview-{rid}",
            "pull_request_url": f"https://api.github.com/repos/{REPO}/pulls/{number}",
            "author_association": "MEMBER" if "[bot]" not in who else "NONE",
            "submitted_at": fmt_ms(submitted) if submitted else None,
            "commit_id": f"{number:04d}" + "ab" * 18}


def review_comment(cid: int, number: int, review_id: int, who: str, at: int, body: str, path: str = "app/cache.py",
                   line: int = 12, reply_to: int | None = None) -> dict[str, Any]:
    c = {"url": f"https://api.github.com/repos/{REPO}/pulls/comments/{cid}", "pull_request_review_id": review_id,
         "id": cid, "node_id": f"MDI0OlB1bGxSZXF1ZXN0UmV2aWV3Q29tbWVudD{cid}",
         "diff_hunk": "@@ -16,33 +16,40 @@ public class Connection : IConnection...", "path": path,
         "position": 1, "original_position": 4, "commit_id": f"{number:04d}" + "ab" * 18,
         "original_commit_id": "9c48853fa3dc5c1c3d6f1f1cd1f2743e72652840", "user": USERS[who], "body": body,
         "created_at": fmt_ms(at), "updated_at": fmt_ms(at),
         "html_url": f"https://github.com/{REPO}/pull/{number}#discussion-diff{cid}",
         "pull_request_url": f"https://api.github.com/repos/{REPO}/pulls/{number}",
         "author_association": "NONE" if "[bot]" in who else "MEMBER",
         "start_line": None, "original_start_line": None, "start_side": None, "line": line, "original_line": line,
         "side": "RIGHT", "subject_type": "line"}
    if reply_to:
        c["in_reply_to_id"] = reply_to
    return c


def check_run(rid: int, pr: dict[str, Any], name: str, conclusion: str | None, started: int, seconds: int,
              status: str = "completed") -> dict[str, Any]:
    sha = pr["head"]["sha"]
    return {"id": rid, "head_sha": sha, "node_id": f"MDg6Q2hlY2tSdW4{rid}", "external_id": "",
            "url": f"https://api.github.com/repos/{REPO}/check-runs/{rid}",
            "html_url": f"https://github.com/{REPO}/runs/{rid}", "details_url": "https://example.com",
            "status": status, "conclusion": conclusion if status == "completed" else None,
            "started_at": fmt_ms(started),
            "completed_at": fmt_ms(started + seconds * 1000) if status == "completed" else None,
            "output": {"title": f"{name} report", "summary": "There are 0 failures, 2 warnings, and 1 notices.",
                       "text": "", "annotations_count": 2,
                       "annotations_url": f"https://api.github.com/repos/{REPO}/check-runs/{rid}/annotations"},
            "name": name, "check_suite": {"id": 5 + rid // 10},
            "app": {"id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=",
                    "owner": USERS["github-actions[bot]"], "name": "GitHub Actions", "description": "",
                    "external_url": "https://help.github.com/en/actions", "html_url": "https://github.com/apps/github-actions",
                    "created_at": "2018-07-30T09:30:17Z", "updated_at": "2019-12-10T19:04:12Z",
                    "permissions": {"checks": "write", "metadata": "read"}, "events": []},
            "pull_requests": [{"url": pr["url"], "id": pr["id"], "number": pr["number"],
                               "head": {"ref": pr["head"]["ref"], "sha": sha,
                                        "repo": {"id": 1296269, "url": f"https://api.github.com/repos/{REPO}", "name": "api"}},
                               "base": {"ref": "main", "sha": pr["base"]["sha"],
                                        "repo": {"id": 1296269, "url": f"https://api.github.com/repos/{REPO}", "name": "api"}}}]}


def issue_event(eid: int, who: str, kind: str, at: int, **extra: Any) -> dict[str, Any]:
    """ "List issue events" (a pull request is an issue)."""
    return {"id": eid, "node_id": f"MDEwOklzc3VlRXZlbnQ{eid}", "url": f"https://api.github.com/repos/{REPO}/issues/events/{eid}",
            "actor": USERS[who], "event": kind, "commit_id": None, "commit_url": None, "created_at": fmt_ms(at),
            "performed_via_github_app": None, **extra}


def status(sid: int, context: str, state: str, at: int) -> dict[str, Any]:
    """ "List commit statuses for a reference"."""
    return {"url": f"https://api.github.com/repos/{REPO}/statuses/{sid}", "avatar_url": "https://github.com/images/error/hubot_happy.gif",
            "id": sid, "node_id": f"MDY6U3RhdHVz{sid}", "state": state, "description": f"{context}: {state}",
            "target_url": "https://ci.example.com/1000/output", "context": context, "created_at": fmt_ms(at),
            "updated_at": fmt_ms(at), "creator": USERS["github-actions[bot]"]}


def commit(sha: str) -> dict[str, Any]:
    """ "List commits on a pull request" (trimmed)."""
    return {"sha": sha, "node_id": f"MDY6Q29tbWl0{sha[:8]}", "url": f"https://api.github.com/repos/{REPO}/commits/{sha}",
            "commit": {"author": {"name": "Monalisa Octocat", "email": "support@github.com", "date": "2011-04-14T16:00:49Z"},
                       "message": "Fix all the bugs", "comment_count": 0},
            "author": USERS["alice"], "committer": USERS["alice"], "parents": []}


class History:
    """Eight pull requests: seven updated in the last 30 days, one 40 days ago."""

    def __init__(self, now_ms: int) -> None:
        t = now_ms
        d, h, m = DAY_MS, HOUR_MS, MINUTE_MS
        self.prs: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.commits: dict[int, list[str]] = {}

        def add(pr: dict[str, Any], reviews: list[Any] = (), comments: list[Any] = (), runs: list[Any] = (),
                events: list[Any] = (), statuses: list[Any] = ()) -> None:
            self.prs[pr["number"]] = pr
            self.reviews[pr["number"]] = list(reviews)
            self.comments[pr["number"]] = list(comments)
            self.runs[pr["head"]["sha"]] = list(runs)
            self.events[pr["number"]] = list(events)
            self.statuses[pr["head"]["sha"]] = list(statuses)
            self.commits[pr["number"]] = [pr["head"]["sha"]]

        # 101: an AI review with two findings, a flaky test re-run to a pass, a human approval, merged
        p = pull(101, "Add a response cache", "alice", t - 10 * d, t - 9 * d, closed=t - 9 * d, merged=t - 9 * d,
                 merged_by="bob", body="Caches GET /items.")
        add(p, [review(8001, 101, "coderabbitai[bot]", "COMMENTED", t - 10 * d + 20 * m, "Two issues found."),
                review(8002, 101, "bob", "APPROVED", t - 10 * d + 5 * h, "LGTM")],
            [review_comment(9001, 101, 8001, "coderabbitai[bot]", t - 10 * d + 20 * m,
                            "**Potential issue**: the cache key ignores the query string."),
             review_comment(9002, 101, 8001, "coderabbitai[bot]", t - 10 * d + 20 * m,
                            "_Nitpick_: prefer a named constant.", line=40),
             review_comment(9003, 101, 8002, "alice", t - 10 * d + 2 * h, "Fixed in 2b1c9a.", reply_to=9001)],
            [check_run(7001, p, "ci/test", "failure", t - 10 * d + 5 * m, 240),
             check_run(7002, p, "ci/test", "success", t - 10 * d + 15 * m, 230),
             check_run(7003, p, "lint", "success", t - 10 * d + 5 * m, 30)],
            [issue_event(6001, "alice", "review_requested", t - 10 * d + 2 * m, requested_reviewer=USERS["bob"],
                         review_requester=USERS["alice"]),
             issue_event(6002, "alice", "review_requested", t - 10 * d + 3 * m,
                         requested_reviewer=USERS["coderabbitai[bot]"], review_requester=USERS["alice"]),
             issue_event(6003, "bob", "merged", t - 9 * d), issue_event(6004, "bob", "closed", t - 9 * d)])
        # ... whose first commit failed lint before the push that became its head
        first = "0101" + "ef" * 18
        self.commits[101].insert(0, first)
        self.runs[first] = [{**check_run(7011, p, "lint", "failure", t - 10 * d + m, 25), "head_sha": first,
                             "pull_requests": []}]                   # an old head: GitHub lists no PR now
        self.statuses[first] = [status(5003, "ci/circleci", "failure", t - 10 * d + 2 * m)]
        # 102: changes requested, then approved; closed without merging
        p = pull(102, "Rewrite the auth layer", "carol", t - 6 * d, t - 4 * d, closed=t - 4 * d)
        add(p, [review(8003, 102, "bob", "CHANGES_REQUESTED", t - 6 * d + 3 * h, "Please split this."),
                review(8004, 102, "erin", "APPROVED", t - 5 * d, "")],
            [], [check_run(7004, p, "ci/test", "success", t - 6 * d + 10 * m, 300)],
            [issue_event(6005, "carol", "ready_for_review", t - 6 * d + m),
             issue_event(6006, "erin", "closed", t - 4 * d)])
        # 103: open; a pending review (not submitted: no webhook) and a check still running
        p = pull(103, "Add rate limits", "dave", t - 3 * d, t - 2 * d)
        add(p, [review(8005, 103, "alice", "PENDING", None)], [],
            [check_run(7005, p, "ci/test", "success", t - 3 * d + 10 * m, 200),
             check_run(7006, p, "lint", None, t - 2 * d, 0, status="in_progress")])
        # 104: a revert of 101, merged
        p = pull(104, 'Revert "Add a response cache"', "bob", t - 2 * d, t - 2 * d + 2 * h, closed=t - 2 * d + 2 * h,
                 merged=t - 2 * d + 2 * h, merged_by="bob", body=f"Reverts {REPO}#101")
        add(p, [review(8006, 104, "alice", "APPROVED", t - 2 * d + h)], [],
            [check_run(7007, p, "ci/test", "success", t - 2 * d + 10 * m, 210)])
        # 105: a bot's pull request, no review yet
        p = pull(105, "Bump requests from 2.31.0 to 2.32.0", "dependabot[bot]", t - 1 * d, t - 1 * d + h,
                 labels=("dependencies",))
        add(p, [], [], [check_run(7008, p, "ci/test", "success", t - 1 * d + 10 * m, 190)],
            [issue_event(6007, "dependabot[bot]", "labeled", t - 1 * d, label={"name": "dependencies", "color": "0366d6"})],
            [status(5001, "ci/circleci", "pending", t - 1 * d + 2 * m),
             status(5002, "ci/circleci", "success", t - 1 * d + 9 * m)])
        # 106: an approval by the bot and a human; a dismissed review
        p = pull(106, "Speed up the item list", "erin", t - 20 * d, t - 12 * h)
        add(p, [review(8007, 106, "coderabbitai[bot]", "APPROVED", t - 20 * d + 30 * m),
                review(8008, 106, "carol", "DISMISSED", t - 19 * d, "Stale.")],
            [review_comment(9004, 106, 8007, "coderabbitai[bot]", t - 20 * d + 30 * m, "Consider caching this.")],
            [check_run(7009, p, "ci/test", "failure", t - 20 * d + 10 * m, 250)],
            [issue_event(6009, "erin", "review_dismissed", t - 18 * d,
                         dismissed_review={"state": "changes_requested", "review_id": 8008,
                                           "dismissal_message": "Stale.", "dismissal_commit_id": None})])
        # 107: opened and closed the same day
        p = pull(107, "WIP: try a new ORM", "alice", t - 15 * d, t - 15 * d + 3 * h, closed=t - 15 * d + 3 * h)
        add(p, [], [], [], [issue_event(6008, "alice", "closed", t - 15 * d + 3 * h)])
        # 90: updated 40 days ago: before the bound, never read beyond the list
        p = pull(90, "Old work", "carol", t - 45 * d, t - 40 * d, closed=t - 40 * d, merged=t - 40 * d, merged_by="bob")
        add(p, [review(8000, 90, "bob", "APPROVED", t - 44 * d)], [], [check_run(7000, p, "ci/test", "success", t - 45 * d, 100)])

    def listed(self) -> list[dict[str, Any]]:
        """The pull list, newest update first, in the list endpoint's shape."""
        out = []
        for pr in sorted(self.prs.values(), key=lambda p: p["updated_at"], reverse=True):
            item = copy.deepcopy(pr)
            for k in LIST_ONLY_DROPS:
                item.pop(k, None)
            out.append(item)
        return out

    def webhooks(self, numbers: list[int]) -> list[tuple[str, dict[str, Any]]]:
        """What GitHub's webhooks sent as these pull requests happened, in time order (the
        oracle of the import: written from GitHub's side, not with the importer's code). A
        dismissed review was sent when submitted, with the verdict it had then."""
        repo, sent = repository(), []
        for n in numbers:
            pr = self.prs[n]
            then = {**copy.deepcopy(pr), "state": "open", "merged": False, "merged_at": None, "closed_at": None,
                    "merged_by": None}
            sent.append((pr["created_at"], "pull_request", {"action": "opened", "number": n, "repository": repo,
                                                            "pull_request": {**then, "updated_at": pr["created_at"]},
                                                            "sender": pr["user"]}))
            for ev in self.events[n]:
                if ev["event"] in ("review_requested", "ready_for_review", "labeled"):
                    extra = {k: ev[k] for k in ("requested_reviewer", "label") if k in ev}
                    sent.append((ev["created_at"], "pull_request", {
                        "action": ev["event"], "number": n, "pull_request": {**then, "updated_at": ev["created_at"]},
                        "repository": repo, "sender": ev["actor"], **extra}))
            for rv in self.reviews[n]:
                if rv["submitted_at"]:
                    sent_as = [e["dismissed_review"]["state"] for e in self.events[n]
                               if e["event"] == "review_dismissed" and e["dismissed_review"]["review_id"] == rv["id"]]
                    state = sent_as[0] if rv["state"] == "DISMISSED" else rv["state"].lower()
                    sent.append((rv["submitted_at"], "pull_request_review", {
                        "action": "submitted", "review": {**rv, "state": state}, "pull_request": then,
                        "repository": repo, "sender": rv["user"]}))
            for cm in self.comments[n]:
                sent.append((cm["created_at"], "pull_request_review_comment", {
                    "action": "created", "comment": cm, "pull_request": then, "repository": repo, "sender": cm["user"]}))
            for sha in self.commits[n]:           # at the time, each run named the PR it was the head of
                for run in self.runs[sha]:
                    if run["status"] == "completed":
                        sent.append((run["completed_at"], "check_run", {
                            "action": "completed", "check_run": {**run, "pull_requests": [{"number": n}]},
                            "repository": repo, "sender": run["app"]["owner"]}))
            for st in (st | {"sha": sha} for sha in self.commits[n] for st in self.statuses[sha]):
                if st["sha"] != pr["head"]["sha"]:    # the receiver learns a head from a synchronize
                    sent.append((st["created_at"], "pull_request", {
                        "action": "synchronize", "number": n, "repository": repo, "sender": pr["user"],
                        "pull_request": {**then, "updated_at": st["created_at"], "head": {**pr["head"], "sha": st["sha"]}}}))
                sent.append((st["updated_at"], "status", {
                    "id": st["id"], "sha": st["sha"], "name": REPO, "context": st["context"],
                    "state": st["state"], "description": st["description"], "target_url": st["target_url"],
                    "created_at": st["created_at"], "updated_at": st["updated_at"], "repository": repo,
                    "sender": st["creator"], "branches": []}))
            if pr["closed_at"]:
                closer = next((e["actor"] for e in self.events[n] if e["event"] == "closed"), pr["user"])
                sent.append((pr["closed_at"], "pull_request", {"action": "closed", "number": n, "pull_request": pr,
                                                               "repository": repo, "sender": closer}))
        sent.sort(key=lambda t: t[0])
        return [(name, payload) for _, name, payload in sent]

    def in_window(self) -> list[int]:
        return [p["number"] for p in self.listed() if p["number"] != 90]


class FakeGitHub(FakeApi):
    def __init__(self, history: History, *, token: str | None = TOKEN, page_size: int = 2, hiccups: bool = True,
                 past_reset: int = 1_000_000) -> None:
        super().__init__(page_size=page_size, token=token)
        self.history = history
        base = f"/repos/{REPO}"
        self.routes[base] = lambda req: repository()
        self.routes[f"{base}/pulls"] = lambda req: self.history.listed()
        for n, pr in history.prs.items():
            self.routes[f"{base}/pulls/{n}"] = (lambda pr: lambda req: copy.deepcopy(pr))(pr)
            self.routes[f"{base}/pulls/{n}/reviews"] = (lambda n: lambda req: self.history.reviews[n])(n)
            self.routes[f"{base}/pulls/{n}/comments"] = (lambda n: lambda req: self.history.comments[n])(n)
            self.routes[f"{base}/issues/{n}/events"] = (lambda n: lambda req: self.history.events[n])(n)
            self.routes[f"{base}/pulls/{n}/commits"] = (lambda n: lambda req: [
                commit(sha) for sha in self.history.commits[n]])(n)
            for sha in history.commits[n]:
                self.routes[f"{base}/commits/{sha}/statuses"] = (lambda sha: lambda req: self.history.statuses[sha])(sha)
                path = f"{base}/commits/{sha}/check-runs"
                self.routes[path] = (lambda sha: lambda req: self._runs(req, sha))(sha)
                self.list_key[path] = "check_runs"
        if hiccups:
            self.fault(f"{base}/pulls", 403, {"Retry-After": "0", "X-RateLimit-Remaining": "12"},
                       {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
                       page=2)
            self.extra_headers[(f"{base}/pulls", 1)] = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                                                        "X-RateLimit-Reset": str(past_reset),
                                                        "X-RateLimit-Resource": "core"}
            self.fault(f"{base}/pulls/102/reviews", 502, {}, {"message": "Server Error"})

    def _runs(self, req: Any, sha: str) -> dict[str, Any]:
        runs = self.history.runs[sha]
        if req.args.get("filter", "latest") == "latest":           # GitHub's default: the latest run per name
            latest: dict[str, dict[str, Any]] = {}
            for run in runs:
                if run["name"] not in latest or run["started_at"] > latest[run["name"]]["started_at"]:
                    latest[run["name"]] = run
            runs = list(latest.values())
        return {"total_count": len(runs), "check_runs": runs}


def serve_from_env() -> None:       # pragma: no cover - a manual aid: python -m tests.fakes.github_api
    import time

    from data.timeutil import now_ms
    fake = FakeGitHub(History(now_ms()))
    print(fake.start(), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":          # pragma: no cover
    serve_from_env()
