"""A fake GitLab REST API (v4) serving one project's recorded history.

Objects have the shapes of GitLab's documented REST responses ("Get single project", "List
project merge requests" / "Get single MR", "List project merge request discussion items",
"List all merge request notes", "Get MR diff versions", "List MR pipelines", "Get a single
pipeline", "List pipeline jobs"; docs.gitlab.com/ee/api), trimmed of fields nothing reads.
Pages carry `Link` and GitLab's `X-Page` / `X-Next-Page` / `X-Total`; `updated_after` is
honoured like GitLab does. Hiccups: the merge request list answers once 429 with
`Retry-After: 0`, the discussions of !2 once 502.

`History.webhooks()` is what GitLab's hooks sent as it happened (hook shapes and time formats
from the webhook docs), the oracle the import is compared with.
"""
from __future__ import annotations

import copy
from typing import Any

from data.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, fmt_ms, parse_iso
from tests.fakes.http import FakeApi

PROJECT = "acme/web"
PROJECT_ID = 278964
TOKEN = "glpat-fake-token-for-tests-0123"
PREFIX = f"/api/v4/projects/{PROJECT}"          # the client sends acme%2Fweb; the server sees it decoded


def user(uid: int, username: str, bot: bool = False) -> dict[str, Any]:
    return {"id": uid, "username": username, "name": username.title(), "state": "active", "locked": False,
            "avatar_url": f"https://gitlab.example/uploads/{username}.png", "web_url": f"https://gitlab.example/{username}",
            **({"bot": True} if bot else {})}


USERS = {u["username"]: u for u in (user(11, "alice"), user(12, "bob"), user(13, "carol"),
                                    user(14, "gitlab-duo", bot=True))}


def hook_time(ms: int) -> str:
    """The hooks' older time format: '2015-05-17 18:08:09 UTC'."""
    return fmt_ms(ms - ms % 1000).replace("T", " ").replace("Z", " UTC")


def project() -> dict[str, Any]:
    return {"id": PROJECT_ID, "description": "The acme web app", "name": "web", "name_with_namespace": "acme / web",
            "path": "web", "path_with_namespace": PROJECT, "created_at": "2020-03-12T12:16:40.123Z",
            "default_branch": "main", "ssh_url_to_repo": f"git@gitlab.example:{PROJECT}.git",
            "http_url_to_repo": f"https://gitlab.example/{PROJECT}.git", "web_url": f"https://gitlab.example/{PROJECT}",
            "visibility": "internal", "namespace": {"id": 7, "name": "acme", "path": "acme", "kind": "group",
                                                    "full_path": "acme"}}


def merge_request(iid: int, title: str, author: str, created: int, updated: int, state: str = "opened",
                  done: int | None = None, by: str | None = None, description: str = "") -> dict[str, Any]:
    """ "Get single MR"."""
    return {"id": 90_000 + iid, "iid": iid, "project_id": PROJECT_ID, "title": title, "description": description,
            "state": state, "created_at": fmt_ms(created), "updated_at": fmt_ms(updated),
            "merged_by": USERS[by] if state == "merged" and by else None,
            "merge_user": USERS[by] if state == "merged" and by else None,
            "merged_at": fmt_ms(done) if state == "merged" and done else None,
            "closed_by": USERS[by] if state == "closed" and by else None,
            "closed_at": fmt_ms(done) if state == "closed" and done else None,
            "target_branch": "main", "source_branch": f"feature-{iid}", "upvotes": 0, "downvotes": 0,
            "author": USERS[author], "assignees": [], "reviewers": [], "source_project_id": PROJECT_ID,
            "target_project_id": PROJECT_ID, "labels": [], "draft": False, "work_in_progress": False,
            "milestone": None, "merge_when_pipeline_succeeds": False, "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable", "sha": f"{iid:04d}" + "cd" * 18, "merge_commit_sha": None,
            "squash_commit_sha": None, "user_notes_count": 1, "discussion_locked": None,
            "should_remove_source_branch": True, "force_remove_source_branch": False,
            "web_url": f"https://gitlab.example/{PROJECT}/-/merge_requests/{iid}",
            "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{PROJECT}!{iid}"},
            "time_stats": {"time_estimate": 0, "total_time_spent": 0}, "squash": False,
            "task_completion_status": {"count": 0, "completed_count": 0}, "has_conflicts": False,
            "blocking_discussions_resolved": True}


def note(nid: int, who: str, body: str, at: int, *, system: bool = False, diff: bool = False,
         resolved_at: int | None = None, resolver: str | None = None) -> dict[str, Any]:
    n = {"id": nid, "type": "DiffNote" if diff else None, "body": body, "attachment": None, "author": USERS[who],
         "created_at": fmt_ms(at), "updated_at": fmt_ms(resolved_at or at), "system": system, "noteable_id": None,
         "noteable_type": "MergeRequest", "project_id": PROJECT_ID, "resolvable": diff, "confidential": False,
         "internal": False, "noteable_iid": None}
    if diff:
        n.update(resolved=resolved_at is not None, resolved_by=USERS[resolver] if resolver else None,
                 resolved_at=fmt_ms(resolved_at) if resolved_at else None,
                 position={"base_sha": "b" * 40, "start_sha": "b" * 40, "head_sha": "c" * 40, "old_path": "app.js",
                           "new_path": "app.js", "position_type": "text", "old_line": None, "new_line": 18})
    return n


def version(vid: int, iid: int, sha: str, at: int) -> dict[str, Any]:
    return {"id": vid, "head_commit_sha": sha, "base_commit_sha": "b" * 40, "start_commit_sha": "b" * 40,
            "created_at": fmt_ms(at), "merge_request_id": 90_000 + iid, "state": "collected", "real_size": "1",
            "patch_id_sha": "d" * 40}


def pipeline(pid: int, iid: int, sha: str, status: str, start: int, seconds: int,
             source: str = "merge_request_event") -> dict[str, Any]:
    """ "Get a single pipeline"."""
    return {"id": pid, "iid": pid - 1000, "project_id": PROJECT_ID, "status": status, "source": source,
            "ref": f"refs/merge-requests/{iid}/head" if source == "merge_request_event" else f"feature-{iid}",
            "sha": sha, "before_sha": "0" * 40, "tag": False, "yaml_errors": None, "user": USERS["alice"],
            "created_at": fmt_ms(start - 5000), "updated_at": fmt_ms(start + seconds * 1000),
            "started_at": fmt_ms(start), "finished_at": fmt_ms(start + seconds * 1000),
            "committed_at": None, "duration": seconds, "queued_duration": 5, "coverage": None,
            "web_url": f"https://gitlab.example/{PROJECT}/-/pipelines/{pid}",
            "detailed_status": {"icon": f"status_{status}", "text": status, "label": status, "group": status}}


def job(jid: int, pipe: dict[str, Any], name: str, stage: str, status: str, start: int, seconds: int) -> dict[str, Any]:
    """ "List pipeline jobs"."""
    return {"id": jid, "status": status, "stage": stage, "name": name, "ref": pipe["ref"], "tag": False,
            "coverage": None, "allow_failure": False, "created_at": fmt_ms(start - 2000), "started_at": fmt_ms(start),
            "finished_at": fmt_ms(start + seconds * 1000), "erased_at": None, "duration": float(seconds),
            "queued_duration": 0.5, "user": USERS["alice"], "failure_reason": "script_failure" if status == "failed" else None,
            "commit": {"id": pipe["sha"], "short_id": pipe["sha"][:8], "title": "Change", "created_at": pipe["created_at"]},
            "pipeline": {"id": pipe["id"], "project_id": PROJECT_ID, "ref": pipe["ref"], "sha": pipe["sha"],
                         "status": pipe["status"]},
            "web_url": f"https://gitlab.example/{PROJECT}/-/jobs/{jid}", "artifacts": [], "tag_list": ["docker"],
            "runner": {"id": 32, "description": "shared", "active": True, "is_shared": True}}


def label_event(eid: int, iid: int, who: str, name: str, action: str, at: int) -> dict[str, Any]:
    """ "List project merge request label events"."""
    return {"id": eid, "user": USERS[who], "created_at": fmt_ms(at), "resource_type": "MergeRequest",
            "resource_id": 90_000 + iid, "label": {"id": 73, "name": name, "color": "#34495E",
                                                   "description": "Ready for a reviewer"}, "action": action}


class History:
    """Four merge requests updated in the last 30 days, one 40 days ago."""

    def __init__(self, now_ms: int) -> None:
        t, d, h, m = now_ms, DAY_MS, HOUR_MS, MINUTE_MS
        self.mrs: dict[int, dict[str, Any]] = {}
        self.discussions: dict[int, list[dict[str, Any]]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.versions: dict[int, list[dict[str, Any]]] = {}
        self.pipelines: dict[int, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
        self.labels: dict[int, list[dict[str, Any]]] = {}

        def add(mr: dict[str, Any], versions: list[Any], threads: list[list[Any]] = (), system: list[Any] = (),
                pipelines: list[Any] = (), labels: list[Any] = ()) -> None:
            iid = mr["iid"]
            self.labels[iid] = list(labels)
            self.mrs[iid] = mr
            self.versions[iid] = sorted(versions, key=lambda v: v["created_at"], reverse=True)
            self.discussions[iid] = [{"id": f"{iid:02d}" + f"{k:038x}", "individual_note": len(notes) == 1,
                                      "notes": notes} for k, notes in enumerate(threads)]
            self.notes[iid] = sorted([n for th in threads for n in th] + list(system), key=lambda n: n["created_at"])
            self.pipelines[iid] = list(pipelines)

        # !1: a bot's finding fixed by a push, a flaky test job re-run to a pass, approved, merged
        mr = merge_request(1, "Add the settings page", "alice", t - 9 * d, t - 8 * d, "merged", t - 8 * d, "bob")
        sha1, sha2 = "1111" + "cd" * 18, mr["sha"]
        p1 = pipeline(2001, 1, sha1, "success", t - 9 * d + 5 * m, 600)
        p2 = pipeline(2002, 1, sha2, "success", t - 9 * d + 3 * h, 400)
        add(mr, [version(1, 1, sha1, t - 9 * d), version(2, 1, sha2, t - 9 * d + 3 * h - m)],
            [[note(301, "gitlab-duo", "**Bug**: the form is never validated.", t - 9 * d + h, diff=True,
                   resolved_at=t - 9 * d + 3 * h, resolver="alice"),
              note(302, "alice", "Good catch, fixed.", t - 9 * d + 3 * h - 2 * m, diff=True,      # replies in a
                   resolved_at=t - 9 * d + 3 * h, resolver="alice")],                              # diff thread are diff notes
             [note(303, "bob", "Nice work overall!", t - 9 * d + 5 * h)]],
            [note(308, "alice", "requested review from @bob", t - 9 * d + 10 * m, system=True),
             note(304, "alice", "added 1 commit", t - 9 * d + 3 * h - m, system=True),
             note(305, "bob", "approved this merge request", t - 9 * d + 5 * h, system=True)],
            [(p1, [job(4001, p1, "test", "test", "failed", t - 9 * d + 5 * m, 300),
                   job(4002, p1, "test", "test", "success", t - 9 * d + 12 * m, 280),
                   job(4003, p1, "lint", "test", "success", t - 9 * d + 5 * m, 40)]),
             (p2, [job(4004, p2, "test", "test", "success", t - 9 * d + 3 * h, 290),
                   job(4005, p2, "lint", "test", "success", t - 9 * d + 3 * h, 35)])])
        # !2: changes asked in a thread dismissed as a false positive; closed by a reviewer
        mr = merge_request(2, "Switch to a new date library", "carol", t - 5 * d, t - 3 * d, "closed", t - 3 * d, "bob")
        p3 = pipeline(2003, 2, mr["sha"], "failed", t - 5 * d + 10 * m, 500)
        add(mr, [version(3, 2, mr["sha"], t - 5 * d)],
            [[note(306, "bob", "This breaks time zones.", t - 5 * d + h, diff=True),
              note(307, "carol", "False positive: the tests cover it.", t - 5 * d + 2 * h, diff=True)]],
            [], [(p3, [job(4006, p3, "test", "test", "failed", t - 5 * d + 10 * m, 480)])])
        # !3: open; a branch pipeline (not a merge request pipeline)
        mr = merge_request(3, "Faster search", "bob", t - 2 * d, t - 1 * d)
        p4 = pipeline(2004, 3, mr["sha"], "success", t - 2 * d + 5 * m, 300, source="push")
        add(mr, [version(4, 3, mr["sha"], t - 2 * d)], [],
            [note(309, "bob", "requested review from @gitlab-duo and @carol", t - 2 * d + h, system=True)],
            [(p4, [job(4007, p4, "test", "test", "success", t - 2 * d + 5 * m, 280)])],
            [label_event(501, 3, "bob", "needs-review", "add", t - 2 * d + 30 * m),
             label_event(502, 3, "bob", "needs-review", "remove", t - 2 * d + 50 * m)])
        # !4: opened and closed by its author
        mr = merge_request(4, "Draft: experiment", "alice", t - 20 * d, t - 19 * d, "closed", t - 19 * d, "alice")
        add(mr, [version(5, 4, mr["sha"], t - 20 * d)], [],
            [note(310, "alice", "marked this merge request as **ready**", t - 20 * d + h, system=True)])
        # !5: before the bound
        mr = merge_request(5, "Old", "carol", t - 50 * d, t - 40 * d, "merged", t - 40 * d, "bob")
        add(mr, [version(6, 5, mr["sha"], t - 50 * d)])

    def listed(self, updated_after: str | None) -> list[dict[str, Any]]:
        bound = parse_iso(updated_after) if updated_after else None
        mrs = sorted(self.mrs.values(), key=lambda mr: mr["updated_at"], reverse=True)
        return [copy.deepcopy(mr) for mr in mrs if bound is None or parse_iso(mr["updated_at"]) >= bound]

    def in_window(self) -> list[int]:
        return [1, 2, 3, 4]

    def webhooks(self, iids: list[int]) -> list[tuple[str, dict[str, Any]]]:
        """What GitLab's hooks sent as it happened (hook shapes, hook time formats)."""
        proj = {"id": PROJECT_ID, "name": "web", "web_url": f"https://gitlab.example/{PROJECT}",
                "path_with_namespace": PROJECT, "namespace": "acme", "default_branch": "main"}
        sent: list[tuple[str, str, dict[str, Any]]] = []

        def head(iid: int, at: str) -> dict[str, Any]:
            v = max((v for v in self.versions[iid] if v["created_at"] <= at), key=lambda v: v["created_at"])
            return {"id": v["head_commit_sha"], "timestamp": v["created_at"]}

        for iid in iids:
            mr = self.mrs[iid]
            hook_user = lambda u: {k: u[k] for k in ("id", "name", "username", "avatar_url")}  # noqa: E731

            def mr_hook(action: str, at: str, who: dict[str, Any], state: str) -> dict[str, Any]:
                attrs = {"id": mr["id"], "iid": iid, "title": mr["title"], "description": mr["description"],
                         "state": state, "created_at": hook_time(parse_iso(mr["created_at"])),
                         "updated_at": hook_time(parse_iso(at)), "author_id": mr["author"]["id"],
                         "source_branch": mr["source_branch"], "target_branch": mr["target_branch"],
                         "last_commit": head(iid, at), "url": mr["web_url"], "action": action,
                         "merge_status": "can_be_merged", "draft": False, "work_in_progress": False}
                return {"object_kind": "merge_request", "event_type": "merge_request", "user": hook_user(who),
                        "project": proj, "object_attributes": attrs, "labels": [], "changes": {}}
            sent.append((mr["created_at"], "Merge Request Hook", mr_hook("open", mr["created_at"], mr["author"], "opened")))
            for n in self.notes[iid]:
                if n["system"] and n["body"].startswith("approved"):
                    sent.append((n["created_at"], "Merge Request Hook", mr_hook("approval", n["created_at"], n["author"],
                                                                              "opened")))
                elif n["system"] and n["body"].startswith("requested review from"):
                    hook = mr_hook("update", n["created_at"], n["author"], "opened")
                    names = n["body"].split("from ", 1)[1].replace(" and ", " ").replace(",", " ").split()
                    hook["changes"] = {"reviewers": {"previous": [], "current": [
                        hook_user(USERS[x.lstrip("@")]) for x in names]}}
                    sent.append((n["created_at"], "Merge Request Hook", hook))
                elif n["system"] and n["body"].startswith("marked this merge request as **ready**"):
                    hook = mr_hook("update", n["created_at"], n["author"], "opened")
                    hook["changes"] = {"draft": {"previous": True, "current": False}}
                    sent.append((n["created_at"], "Merge Request Hook", hook))
            for ev in self.labels[iid]:
                if ev["action"] == "add":
                    hook = mr_hook("update", ev["created_at"], ev["user"], "opened")
                    hook["changes"] = {"labels": {"previous": [], "current": [
                        {"id": ev["label"]["id"], "title": ev["label"]["name"], "color": ev["label"]["color"]}]}}
                    sent.append((ev["created_at"], "Merge Request Hook", hook))
            for disc in self.discussions[iid]:
                for n in disc["notes"]:
                    attrs = {"id": n["id"], "note": n["body"], "noteable_type": "MergeRequest", "author_id": n["author"]["id"],
                             "created_at": hook_time(parse_iso(n["created_at"])),
                             "updated_at": hook_time(parse_iso(n["created_at"])), "project_id": PROJECT_ID,
                             "system": False, "type": n["type"], "position": n.get("position"),
                             "discussion_id": disc["id"], "action": "create",
                             "url": f"{mr['web_url']}#note_{n['id']}"}
                    sent.append((n["created_at"], "Note Hook", {
                        "object_kind": "note", "event_type": "note", "user": hook_user(n["author"]),
                        "project_id": PROJECT_ID, "project": proj, "object_attributes": attrs,
                        "merge_request": {"id": mr["id"], "iid": iid, "title": mr["title"], "state": "opened",
                                          "author_id": mr["author"]["id"], "last_commit": head(iid, n["created_at"]),
                                          "source_branch": mr["source_branch"], "target_branch": "main"}}))
            for pipe, jobs in self.pipelines[iid]:
                payload = {"object_kind": "pipeline",
                           "object_attributes": {"id": pipe["id"], "iid": pipe["iid"], "ref": pipe["ref"], "tag": False,
                                                 "sha": pipe["sha"], "before_sha": pipe["before_sha"],
                                                 "source": pipe["source"], "status": pipe["status"],
                                                 "detailed_status": pipe["status"], "stages": ["test"],
                                                 "created_at": hook_time(parse_iso(pipe["created_at"])),
                                                 "finished_at": hook_time(parse_iso(pipe["finished_at"])),
                                                 "duration": pipe["duration"], "queued_duration": 5,
                                                 "url": pipe["web_url"]},
                           "user": hook_user(pipe["user"]), "project": proj, "commit": {"id": pipe["sha"]},
                           "builds": [{"id": j["id"], "stage": j["stage"], "name": j["name"], "status": j["status"],
                                       "created_at": hook_time(parse_iso(j["created_at"])),
                                       "started_at": hook_time(parse_iso(j["started_at"])),
                                       "finished_at": hook_time(parse_iso(j["finished_at"])),
                                       "duration": j["duration"], "queued_duration": 0.5, "when": "on_success",
                                       "manual": False, "allow_failure": False, "user": hook_user(j["user"])}
                                      for j in jobs]}
                if pipe["source"] == "merge_request_event":
                    payload["merge_request"] = {"id": mr["id"], "iid": iid, "title": mr["title"], "state": "opened",
                                                "url": mr["web_url"]}
                sent.append((pipe["finished_at"], "Pipeline Hook", payload))
            if mr["state"] == "merged":
                sent.append((mr["merged_at"], "Merge Request Hook", mr_hook("merge", mr["merged_at"], mr["merged_by"],
                                                                            "merged")))
            elif mr["state"] == "closed":
                sent.append((mr["closed_at"], "Merge Request Hook", mr_hook("close", mr["closed_at"], mr["closed_by"],
                                                                            "closed")))
        sent.sort(key=lambda s: s[0])
        return [(name, payload) for _, name, payload in sent]


class FakeGitLab(FakeApi):
    def __init__(self, history: History, *, page_size: int = 2, hiccups: bool = True) -> None:
        super().__init__(page_size=page_size, token_header="PRIVATE-TOKEN", token_value=TOKEN)
        self.history = history
        self.routes[PREFIX] = lambda req: project()
        self.routes[f"{PREFIX}/merge_requests"] = lambda req: self.history.listed(req.args.get("updated_after"))
        for iid in history.mrs:
            base = f"{PREFIX}/merge_requests/{iid}"
            self.routes[base] = (lambda iid: lambda req: copy.deepcopy(self.history.mrs[iid]))(iid)
            self.routes[f"{base}/discussions"] = (lambda iid: lambda req: self.history.discussions[iid])(iid)
            self.routes[f"{base}/notes"] = (lambda iid: lambda req: self.history.notes[iid])(iid)
            self.routes[f"{base}/versions"] = (lambda iid: lambda req: self.history.versions[iid])(iid)
            self.routes[f"{base}/resource_label_events"] = (lambda iid: lambda req: self.history.labels[iid])(iid)
            self.routes[f"{base}/pipelines"] = (lambda iid: lambda req: [
                {k: p[k] for k in ("id", "iid", "project_id", "sha", "ref", "status", "source", "created_at",
                                   "updated_at", "web_url")} for p, _ in self.history.pipelines[iid]])(iid)
            for pipe, jobs in history.pipelines[iid]:
                self.routes[f"{PREFIX}/pipelines/{pipe['id']}"] = (lambda p: lambda req: p)(pipe)
                self.routes[f"{PREFIX}/pipelines/{pipe['id']}/jobs"] = (lambda j: lambda req: j)(jobs)
        if hiccups:
            self.fault(f"{PREFIX}/merge_requests", 429, {"Retry-After": "0", "RateLimit-Remaining": "0",
                                                         "RateLimit-Reset": "1000000"},
                       {"message": "Retry later"}, page=1)
            self.fault(f"{PREFIX}/merge_requests/2/discussions", 502, {}, {"message": "502 Bad Gateway"})

    def link_style_next(self, headers: dict[str, str], page: int) -> None:
        headers["X-Next-Page"] = str(page)
        headers["X-Page"] = str(page - 1)
